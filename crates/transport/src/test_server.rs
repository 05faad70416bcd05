//! Test support: a real HTTP/1.1 server on loopback, written out by hand so the tests see
//! exactly what the client sent (request heads) and how it used connections.
use std::sync::{
    Arc, Mutex,
    atomic::{AtomicUsize, Ordering},
};

use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::{TcpListener, TcpStream},
};

/// A real HTTP/1.1 server on loopback that echoes each body, records each request head
/// and counts connections; with `close_after_first`, it closes each connection after
/// its first answer (as a server whose keep-alive timed out).
pub(crate) struct EchoServer {
    pub(crate) url: reqwest::Url,
    pub(crate) connections: Arc<AtomicUsize>,
    pub(crate) heads: Arc<Mutex<Vec<String>>>,
}

pub(crate) async fn echo_server(close_after_first: bool) -> EchoServer {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let connections = Arc::new(AtomicUsize::new(0));
    let heads = Arc::new(Mutex::new(Vec::new()));
    let (count, seen) = (connections.clone(), heads.clone());
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            count.fetch_add(1, Ordering::SeqCst);
            tokio::spawn(serve(stream, seen.clone(), close_after_first));
        }
    });
    EchoServer {
        url: reqwest::Url::parse(&format!("http://127.0.0.1:{port}/mcp?tenant=a")).unwrap(),
        connections,
        heads,
    }
}

async fn serve(mut stream: TcpStream, heads: Arc<Mutex<Vec<String>>>, close_after_first: bool) {
    let mut buf = Vec::new();
    loop {
        let end = loop {
            if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                break end + 4;
            }
            let mut chunk = [0u8; 4096];
            match stream.read(&mut chunk).await {
                Ok(0) | Err(_) => return,
                Ok(n) => buf.extend_from_slice(&chunk[..n]),
            }
        };
        let head = String::from_utf8_lossy(&buf[..end]).to_string();
        let length: usize = head
            .lines()
            .find_map(|l| {
                l.to_ascii_lowercase()
                    .strip_prefix("content-length:")
                    .map(|v| v.trim().parse().unwrap())
            })
            .unwrap_or(0);
        while buf.len() < end + length {
            let mut chunk = [0u8; 4096];
            match stream.read(&mut chunk).await {
                Ok(0) | Err(_) => return,
                Ok(n) => buf.extend_from_slice(&chunk[..n]),
            }
        }
        let body = buf[end..end + length].to_vec();
        buf.drain(..end + length);
        heads.lock().unwrap().push(head);
        let answer = format!("HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {length}\r\n\r\n");
        stream.write_all(answer.as_bytes()).await.unwrap();
        stream.write_all(&body).await.unwrap();
        if close_after_first {
            return;
        }
    }
}
