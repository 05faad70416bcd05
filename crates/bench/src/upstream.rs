//! The bench upstream: [`wire::answer`] served over stdio (newline-delimited
//! JSON) or Streamable HTTP (JSON or SSE answers, see [`Answers`]; no server-to-client
//! stream), counting the TCP connections it accepts.
use std::{
    convert::Infallible,
    io::{BufRead, Write},
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
};

use axum::{
    Router,
    body::{Body, Bytes},
    http::{HeaderMap, HeaderValue, StatusCode, header},
    response::{IntoResponse, Response},
    routing::{get, post},
};
use serde::Serialize;
use serde_json::Value;

use crate::wire;

/// Serves stdin → stdout until stdin closes. Malformed lines are skipped.
pub fn serve_stdio() -> std::io::Result<()> {
    let stdin = std::io::stdin().lock();
    let mut stdout = std::io::BufWriter::new(std::io::stdout().lock());
    for line in stdin.split(b'\n') {
        let line = line?;
        let Ok(msg) = serde_json::from_slice::<Value>(&line) else {
            continue;
        };
        if let Some(answer) = wire::answer(&msg) {
            serde_json::to_writer(&mut stdout, &answer)?;
            stdout.write_all(b"\n")?;
            stdout.flush()?;
        }
    }
    Ok(())
}

/// How the HTTP upstream answers a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Answers {
    /// One `application/json` body.
    #[default]
    Json,
    /// An SSE stream (`text/event-stream`, chunked) of one `message` event carrying the
    /// answer, then the end of the stream: what the official SDKs' servers (rmcp's stateful
    /// Streamable HTTP server, the TypeScript SDK's by default) send.
    Sse,
}

/// The path where the HTTP upstream tells how many TCP connections it accepted so far.
pub const CONNECTIONS_PATH: &str = "/connections";

/// The HTTP app: POST /mcp answers (as `answers` says), GET is refused (no stream), DELETE
/// ends nothing; GET [`CONNECTIONS_PATH`] reads `accepted`, which the server counts.
pub fn http_app(answers: Answers, accepted: Arc<AtomicU64>) -> Router {
    static SESSIONS: AtomicU64 = AtomicU64::new(0);
    async fn post_mcp(body: Bytes, answers: Answers) -> Response {
        let Ok(msg) = serde_json::from_slice::<Value>(&body) else {
            return (StatusCode::BAD_REQUEST, "malformed JSON").into_response();
        };
        let Some(answer) = wire::answer(&msg) else {
            return StatusCode::ACCEPTED.into_response();
        };
        let bytes = serde_json::to_vec(&answer).unwrap_or_default();
        let mut response = match answers {
            Answers::Json => (StatusCode::OK, [(header::CONTENT_TYPE, "application/json")], bytes).into_response(),
            Answers::Sse => sse(bytes),
        };
        if msg.get("method").and_then(Value::as_str) == Some("initialize") {
            let id = format!("bench-{}", SESSIONS.fetch_add(1, Ordering::Relaxed));
            if let Ok(v) = HeaderValue::from_str(&id) {
                response.headers_mut().insert("mcp-session-id", v);
            }
        }
        response
    }
    async fn no_stream(_headers: HeaderMap) -> StatusCode {
        StatusCode::METHOD_NOT_ALLOWED
    }
    async fn delete(_headers: HeaderMap) -> StatusCode {
        StatusCode::OK
    }
    Router::new()
        .route(
            "/mcp",
            post(move |body: Bytes| post_mcp(body, answers))
                .get(no_stream)
                .delete(delete),
        )
        .route(
            CONNECTIONS_PATH,
            get(move || async move { accepted.load(Ordering::Relaxed).to_string() }),
        )
}

/// `answer` as an SSE stream of one `message` event, streamed (chunked, as an SDK server's
/// stream is) and ended after it. As rmcp's server does, the response head goes out before
/// the event (the stream is not ready when the head is written) and Nagle's algorithm is
/// left on, so the event and the stream's end are separate small writes — which is what
/// exposes a client that delays its ACKs on a reused connection.
fn sse(answer: Vec<u8>) -> Response {
    let mut event = Vec::with_capacity(answer.len() + 24);
    event.extend_from_slice(b"event: message\ndata: ");
    event.extend_from_slice(&answer);
    event.extend_from_slice(b"\n\n");
    let stream = futures::stream::once(async move {
        tokio::task::yield_now().await;
        Ok::<_, Infallible>(Bytes::from(event))
    });
    let headers = [
        (header::CONTENT_TYPE, "text/event-stream"),
        (header::CACHE_CONTROL, "no-cache"),
    ];
    (StatusCode::OK, headers, Body::from_stream(stream)).into_response()
}
