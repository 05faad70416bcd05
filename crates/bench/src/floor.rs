//! The floor: an HTTP/1.1 forwarder that does nothing but forward, built on the same
//! hyper and tokio the gateway runs on. It parses no JSON, checks nothing and keeps no
//! session: each client connection gets its own keep-alive connection to the upstream
//! and every request and answer is passed through as it comes, body streamed. It uses
//! hyper's connection API directly rather than the gateway's `http1_conns` pool, so the
//! reference depends on none of the code it is compared with.
//!
//! Measured like a gateway (CPU per call from its process counters), it shows what an
//! HTTP-in, HTTP-out hop costs on the machine at hand, before any gateway work: the
//! lowest figure a relay built this way could reach. It is a reference, not a product.
use std::{convert::Infallible, net::SocketAddr, sync::Arc};

use hyper::{
    Request, Response, body::Incoming, client::conn::http1 as client, server::conn::http1 as server,
    service::service_fn,
};
use hyper_util::rt::TokioIo;
use tokio::{
    net::{TcpListener, TcpStream},
    sync::Mutex,
};

/// Forwards every connection accepted on `listener` to `upstream` until the process ends.
pub async fn serve(listener: TcpListener, upstream: SocketAddr) -> std::io::Result<()> {
    loop {
        let (stream, _) = listener.accept().await?;
        tokio::spawn(async move {
            if let Err(e) = forward_connection(stream, upstream).await {
                eprintln!("floor: connection ended: {e}");
            }
        });
    }
}

async fn forward_connection(stream: TcpStream, upstream: SocketAddr) -> anyhow::Result<()> {
    stream.set_nodelay(true)?;
    let up = TcpStream::connect(upstream).await?;
    up.set_nodelay(true)?;
    let (sender, conn) = client::handshake::<_, Incoming>(TokioIo::new(up)).await?;
    tokio::spawn(async move {
        let _ = conn.await;
    });
    // One client connection's requests come one after another (HTTP/1.1), so the
    // lock is never contended; it only makes the sender shareable with the service.
    let sender = Arc::new(Mutex::new(sender));
    let service = service_fn(move |request: Request<Incoming>| {
        let sender = Arc::clone(&sender);
        async move {
            let mut sender = sender.lock().await;
            let answer = match sender.send_request(request).await {
                Ok(answer) => answer.map(http_body_util::Either::Left),
                Err(e) => {
                    let text = format!("floor: upstream failed: {e}");
                    let mut answer = Response::new(http_body_util::Either::Right(http_body_util::Full::new(
                        bytes::Bytes::from(text),
                    )));
                    *answer.status_mut() = hyper::StatusCode::BAD_GATEWAY;
                    answer
                }
            };
            Ok::<_, Infallible>(answer)
        }
    });
    server::Builder::new()
        .serve_connection(TokioIo::new(stream), service)
        .await?;
    Ok(())
}
