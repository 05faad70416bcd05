//! Test support: real HTTP/1.1 servers on loopback, written out by hand so the tests see
//! exactly what the client sent (request heads) and how it used connections: one echoing
//! JSON bodies, one answering with SSE streams (that end, stay open, or break).
use std::sync::{
    Arc, Mutex,
    atomic::{AtomicUsize, Ordering},
};

use serde_json::json;
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
    while let Some((head, body)) = read_request(&mut stream, &mut buf).await {
        heads.lock().unwrap().push(head);
        let answer = format!(
            "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n",
            body.len()
        );
        stream.write_all(answer.as_bytes()).await.unwrap();
        stream.write_all(&body).await.unwrap();
        if close_after_first {
            return;
        }
    }
}

/// Reads one request (head and `content-length` body) from `stream`, keeping what follows in
/// `buf`; `None` once the client closed the connection.
async fn read_request(stream: &mut TcpStream, buf: &mut Vec<u8>) -> Option<(String, Vec<u8>)> {
    let end = loop {
        if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break end + 4;
        }
        read_more(stream, buf).await?;
    };
    let head = String::from_utf8_lossy(&buf[..end]).to_string();
    let length: usize = header(&head, "content-length").map_or(0, |v| v.parse().unwrap());
    while buf.len() < end + length {
        read_more(stream, buf).await?;
    }
    let body = buf[end..end + length].to_vec();
    buf.drain(..end + length);
    Some((head, body))
}

async fn read_more(stream: &mut TcpStream, buf: &mut Vec<u8>) -> Option<()> {
    let mut chunk = [0u8; 4096];
    match stream.read(&mut chunk).await {
        Ok(0) | Err(_) => None,
        Ok(n) => {
            buf.extend_from_slice(&chunk[..n]);
            Some(())
        }
    }
}

/// The value of header `name` in a request head.
fn header<'a>(head: &'a str, name: &str) -> Option<&'a str> {
    head.lines().find_map(|l| {
        let (k, v) = l.split_once(':')?;
        k.eq_ignore_ascii_case(name).then(|| v.trim())
    })
}

/// How the SSE server answers each request POSTed to it (notifications get `202`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SseAnswer {
    /// `notes` progress notifications, the answer, then the end of the stream — written
    /// event by event, as rmcp's Streamable HTTP server does.
    Ends { notes: usize },
    /// The answer, then nothing: the stream stays open until the client goes.
    StaysOpen,
    /// The answer, then 1 KiB keep-alive comments without end.
    Chatters,
    /// A notification with event id `ev-1`, then the connection breaks mid-stream; a GET with
    /// `Last-Event-ID: ev-1` gets the answer, then the end of that stream.
    Breaks,
}

/// A real HTTP/1.1 Streamable HTTP server on loopback answering every request with an SSE
/// stream as [`SseAnswer`] says. It counts the connections it accepted and those that ended
/// (the client closed them), and records each request head.
pub(crate) struct SseServer {
    pub(crate) url: reqwest::Url,
    pub(crate) connections: Arc<AtomicUsize>,
    pub(crate) ended: tokio::sync::watch::Receiver<usize>,
    pub(crate) heads: Arc<Mutex<Vec<String>>>,
}

pub(crate) async fn sse_server(answer: SseAnswer) -> SseServer {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let connections = Arc::new(AtomicUsize::new(0));
    let heads = Arc::new(Mutex::new(Vec::new()));
    let (ended_tx, ended) = tokio::sync::watch::channel(0);
    let ended_tx = Arc::new(ended_tx);
    // The id of the request whose stream broke, answered on the resumed stream.
    let broken = Arc::new(Mutex::new(None));
    let (count, seen) = (connections.clone(), heads.clone());
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            count.fetch_add(1, Ordering::SeqCst);
            let (seen, ended, broken) = (seen.clone(), ended_tx.clone(), broken.clone());
            tokio::spawn(async move {
                serve_sse(stream, seen, answer, broken).await;
                ended.send_modify(|n| *n += 1);
            });
        }
    });
    SseServer {
        url: reqwest::Url::parse(&format!("http://127.0.0.1:{port}/mcp")).unwrap(),
        connections,
        ended,
        heads,
    }
}

/// One `data:` event as one chunk of a chunked body.
fn event(data: &serde_json::Value) -> Vec<u8> {
    chunk(format!("event: message\ndata: {data}\n\n").as_bytes())
}

fn chunk(bytes: &[u8]) -> Vec<u8> {
    let mut out = format!("{:x}\r\n", bytes.len()).into_bytes();
    out.extend_from_slice(bytes);
    out.extend_from_slice(b"\r\n");
    out
}

const SSE_HEAD: &[u8] = b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ntransfer-encoding: chunked\r\n\r\n";
const LAST_CHUNK: &[u8] = b"0\r\n\r\n";

async fn serve_sse(
    mut stream: TcpStream,
    heads: Arc<Mutex<Vec<String>>>,
    answer: SseAnswer,
    broken: Arc<Mutex<Option<serde_json::Value>>>,
) {
    let mut buf = Vec::new();
    while let Some((head, body)) = read_request(&mut stream, &mut buf).await {
        heads.lock().unwrap().push(head.clone());
        if head.starts_with("GET ") {
            let resumed = broken.lock().unwrap().take();
            match resumed {
                Some(id) if header(&head, "last-event-id") == Some("ev-1") => {
                    let mut out = SSE_HEAD.to_vec();
                    out.extend(event(&json!({"jsonrpc": "2.0", "id": id, "result": {"resumed": true}})));
                    out.extend_from_slice(LAST_CHUNK);
                    stream.write_all(&out).await.unwrap();
                }
                _ => stream
                    .write_all(b"HTTP/1.1 405 Method Not Allowed\r\ncontent-length: 0\r\n\r\n")
                    .await
                    .unwrap(),
            }
            continue;
        }
        let msg: serde_json::Value = serde_json::from_slice(&body).unwrap();
        let Some(id) = msg.get("id").cloned() else {
            stream
                .write_all(b"HTTP/1.1 202 Accepted\r\ncontent-length: 0\r\n\r\n")
                .await
                .unwrap();
            continue;
        };
        let note = |n: usize| json!({"jsonrpc": "2.0", "method": "notifications/progress", "params": {"progressToken": id, "progress": n}});
        let result = json!({"jsonrpc": "2.0", "id": id, "result": {"echo": msg["params"]}});
        // Written piece by piece, as a server streaming events does.
        let mut pieces = vec![SSE_HEAD.to_vec()];
        match answer {
            SseAnswer::Ends { notes } => {
                pieces.extend((1..=notes).map(|n| event(&note(n))));
                pieces.push(event(&result));
                pieces.push(LAST_CHUNK.to_vec());
            }
            SseAnswer::StaysOpen | SseAnswer::Chatters => pieces.push(event(&result)),
            SseAnswer::Breaks => {
                *broken.lock().unwrap() = Some(id.clone());
                pieces.push(chunk(format!("id: ev-1\nretry: 1\ndata: {}\n\n", note(1)).as_bytes()));
            }
        }
        for piece in pieces {
            if stream.write_all(&piece).await.is_err() {
                return;
            }
        }
        match answer {
            SseAnswer::Ends { .. } => {}
            // Nothing more; the connection ends when the client closes it.
            SseAnswer::StaysOpen => {
                while read_more(&mut stream, &mut buf).await.is_some() {}
                return;
            }
            SseAnswer::Chatters => {
                let comment = chunk(format!(":{}\n\n", "-".repeat(1024)).as_bytes());
                while stream.write_all(&comment).await.is_ok() {}
                return;
            }
            // The connection breaks in the middle of the stream.
            SseAnswer::Breaks => return,
        }
    }
}
