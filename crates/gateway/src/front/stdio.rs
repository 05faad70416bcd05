//! The stdio front: `portcullis stdio`, launched by a desktop host as if it
//! were the MCP server. One client, one session; requests are handled
//! concurrently and answered in whatever order they finish, like any server.
//! The principal comes from the config — nothing is assumed from being local. Every
//! request passes the principal's concurrency and rate limits first (T17): a host that
//! floods is refused, never queued without bound.
use std::{future::Future, sync::Arc};

use portcullis_mcp::{ErrorCode, Message, MessageKind, message, revision::META_PROTOCOL_VERSION};
use portcullis_transport::LineReader;
use serde_json::Value;
use tokio::{
    io::{AsyncRead, AsyncWrite, AsyncWriteExt, BufReader},
    sync::mpsc,
    task::JoinSet,
};

use crate::{caller::Caller, gateway::Gateway, session::Session};

/// Serves one client on `input`/`output` until end of input or `shutdown`;
/// requests already started are finished and answered before returning.
pub async fn serve_stdio(
    gateway: Arc<Gateway>,
    input: impl AsyncRead + Unpin + Send + 'static,
    output: impl AsyncWrite + Unpin + Send + 'static,
    shutdown: impl Future<Output = ()> + Send,
) -> std::io::Result<()> {
    let limits = gateway.config().limits;
    // Each message goes to the writer as its bytes, ready for the line (a relayed answer as
    // the bytes it came in; see `Message::to_bytes`).
    let (out_tx, mut out_rx) = mpsc::channel::<Vec<u8>>(256);
    let writer = tokio::spawn(async move {
        let mut output = output;
        while let Some(mut bytes) = out_rx.recv().await {
            bytes.push(b'\n');
            if output.write_all(&bytes).await.is_err() || output.flush().await.is_err() {
                break;
            }
        }
    });
    let mut lines = LineReader::new(BufReader::new(input), limits.max_bytes);
    let mut session: Option<Arc<Session>> = None;
    let caller = Arc::new(Caller::known(gateway.config().stdio_principal.clone()));
    let mut in_flight = JoinSet::new();
    tokio::pin!(shutdown);
    loop {
        let line = tokio::select! {
            line = lines.next_line() => line,
            _ = &mut shutdown => break,
        };
        let bytes = match line {
            Ok(Some(bytes)) if bytes.iter().all(u8::is_ascii_whitespace) => continue,
            Ok(Some(bytes)) => bytes,
            Ok(None) => break,
            Err(e) => {
                let _ = out_tx
                    .send(message::error(None, ErrorCode::InvalidRequest, &e.to_string()).to_bytes())
                    .await;
                continue;
            }
        };
        let msg = match Message::parse_forwardable(bytes.into(), limits) {
            Ok(m) => m,
            Err(e) => {
                let _ = out_tx
                    .send(message::error(None, e.code(), &e.to_string()).to_bytes())
                    .await;
                continue;
            }
        };
        let current = match ensure_session(&gateway, &mut session, &msg, &out_tx).await {
            Some(s) => s,
            None => continue,
        };
        let gateway = gateway.clone();
        let out = out_tx.clone();
        let caller = caller.clone();
        match msg.kind() {
            MessageKind::Request if msg.method() == Some("initialize") => {}
            MessageKind::Request => match gateway.admit(&caller.principal) {
                Ok(admitted) => {
                    in_flight.spawn(async move {
                        let answer = gateway.handle_request(admitted, &current, &caller, msg).await;
                        let _ = out.send(answer.to_bytes()).await;
                    });
                }
                Err(deny) => {
                    let _ = out.send(deny.message(msg.id()).to_bytes()).await;
                }
            },
            // A refused notification is logged and recorded; JSON-RPC gives it no answer.
            MessageKind::Notification => {
                let _ = gateway.handle_notification(&current, msg).await;
            }
            MessageKind::Response => gateway.handle_response(&current, msg).await,
        }
    }
    while in_flight.join_next().await.is_some() {}
    if let Some(s) = session {
        s.close();
    }
    drop(out_tx);
    let _ = writer.await;
    Ok(())
}

/// The front's session, opened by `initialize` (legacy) or the first 2026-07-28
/// request; `None` (after answering the client) when the message cannot proceed.
async fn ensure_session(
    gateway: &Arc<Gateway>,
    slot: &mut Option<Arc<Session>>,
    msg: &Message,
    out: &mpsc::Sender<Vec<u8>>,
) -> Option<Arc<Session>> {
    let principal = gateway.config().stdio_principal.clone();
    let is_initialize = msg.kind() == MessageKind::Request && msg.method() == Some("initialize");
    if is_initialize {
        if slot.is_some() {
            let text = "this session is already initialized";
            let _ = out
                .send(message::error(msg.id(), ErrorCode::InvalidRequest, text).to_bytes())
                .await;
            return None;
        }
        match gateway.open_detached_session(principal, msg).await {
            Ok((session, result)) => {
                forward_general(&session, out);
                let _ = out
                    .send(message::response(msg.id().cloned().unwrap_or(Value::Null), result).to_bytes())
                    .await;
                *slot = Some(session.clone());
                return Some(session);
            }
            Err(e) => {
                let _ = out.send(message::error(msg.id(), e.code, &e.message).to_bytes()).await;
                return None;
            }
        }
    }
    if let Some(s) = slot {
        return Some(s.clone());
    }
    let modern = msg.meta().is_some_and(|m| m.contains_key(META_PROTOCOL_VERSION));
    if modern {
        let session = gateway.detached_stateless_session(principal, msg);
        forward_general(&session, out);
        *slot = Some(session.clone());
        return Some(session);
    }
    if msg.kind() == MessageKind::Request {
        let text = "send initialize first (or use protocol 2026-07-28 with `_meta` on every request)";
        let _ = out
            .send(message::error(msg.id(), ErrorCode::InvalidRequest, text).to_bytes())
            .await;
    }
    None
}

/// Everything the session's servers send the client goes to stdout.
fn forward_general(session: &Arc<Session>, out: &mpsc::Sender<Vec<u8>>) {
    let Some(mut rx) = session.sink.open_general(256) else {
        return;
    };
    let out = out.clone();
    tokio::spawn(async move {
        while let Some(msg) = rx.recv().await {
            if out.send(portcullis_mcp::encode::to_vec(&msg)).await.is_err() {
                break;
            }
        }
    });
}
