//! The bench upstream: [`wire::answer`] served over stdio (newline-delimited
//! JSON) or Streamable HTTP (JSON answers only, no server-to-client stream).
use std::io::{BufRead, Write};
use std::sync::atomic::{AtomicU64, Ordering};

use axum::{
    Router,
    body::Bytes,
    http::{HeaderMap, HeaderValue, StatusCode, header},
    response::{IntoResponse, Response},
    routing::post,
};
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

/// The HTTP app: POST /mcp answers, GET is refused (no stream), DELETE ends nothing.
pub fn http_app() -> Router {
    static SESSIONS: AtomicU64 = AtomicU64::new(0);
    async fn post_mcp(body: Bytes) -> Response {
        let Ok(msg) = serde_json::from_slice::<Value>(&body) else {
            return (StatusCode::BAD_REQUEST, "malformed JSON").into_response();
        };
        let Some(answer) = wire::answer(&msg) else {
            return StatusCode::ACCEPTED.into_response();
        };
        let bytes = serde_json::to_vec(&answer).unwrap_or_default();
        let mut response = (StatusCode::OK, [(header::CONTENT_TYPE, "application/json")], bytes).into_response();
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
    Router::new().route("/mcp", post(post_mcp).get(no_stream).delete(delete))
}
