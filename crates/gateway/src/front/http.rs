//! The Streamable HTTP front at `/mcp`.
//!
//! POST carries one JSON-RPC message; requests are answered with JSON or with
//! an SSE stream carrying the related notifications before the answer. Legacy
//! clients (2025-03-26 … 2025-11-25) open a session with `initialize` and get
//! an `Mcp-Session-Id`, a GET stream and DELETE; 2026-07-28 clients are
//! stateless and their `Mcp-Method`/`Mcp-Name` headers must agree with the body.
//! Every request first passes the Host/Origin guard (T6) and the size, depth and
//! duplicate-key checks (T13, T17); its body must arrive within `listen.body_timeout`, and
//! requests (`initialize` too) pass the caller's concurrency and rate limits before they
//! are handled (T17). Connections are accepted, capped and timed by
//! `portcullis_identity::serve`.
#![allow(
    clippy::result_large_err,
    reason = "refusals are finished HTTP responses handed straight back to axum"
)]

use std::{convert::Infallible, future::Future, sync::Arc, time::Duration};

use axum::{
    Extension, Router,
    body::Body,
    extract::State,
    http::{HeaderMap, HeaderValue, StatusCode, header},
    response::{IntoResponse, Response},
    routing::{get, post},
};
use bytes::Bytes;
use http_body_util::BodyExt;
use portcullis_identity::{PeerCertificates, jwt::WELL_KNOWN_PRM};
use portcullis_mcp::{
    ErrorCode, Message, MessageKind, ProtocolVersion, error_response, headers,
    revision::{META_CLIENT_CAPABILITIES, META_PROTOCOL_VERSION},
};
use portcullis_transport::sse;
use serde_json::{Value, json};
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;

use tokio_rustls::TlsAcceptor;

use crate::{
    caller::Caller,
    deny::Deny,
    front::{identify::identify, origin::OriginGuard},
    gateway::Gateway,
    limits::Admitted,
    session::{Session, sink::SinkReceiver},
};

const SESSION_HEADER: &str = "mcp-session-id";
const VERSION_HEADER: &str = "mcp-protocol-version";
const KEEPALIVE: Duration = Duration::from_secs(15);

struct Front {
    gateway: Arc<Gateway>,
    guard: OriginGuard,
}

/// The client certificates of a request's connection, when served over TLS.
type Peer = Option<Extension<PeerCertificates>>;

/// Serves the HTTP front on `listener` (over TLS when `tls` is given) within the
/// configured connection limits until `shutdown` completes, then lets in-flight requests
/// finish.
pub async fn serve_http(
    gateway: Arc<Gateway>,
    listener: tokio::net::TcpListener,
    tls: Option<TlsAcceptor>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let listen = &gateway.config().listen;
    let front = Arc::new(Front {
        guard: OriginGuard::new(&listen.allowed_hosts, &listen.allowed_origins),
        gateway: gateway.clone(),
    });
    let reaper = tokio::spawn({
        let gateway = gateway.clone();
        async move {
            let mut tick = tokio::time::interval(Duration::from_secs(30));
            loop {
                tick.tick().await;
                gateway.reap_idle();
            }
        }
    });
    let mut app = Router::new()
        .route("/mcp", post(post_mcp).get(get_mcp).delete(delete_mcp))
        .route("/healthz", get(healthz));
    if let Some(bearer) = &listen.auth.bearer {
        let path = bearer.resource.metadata_path();
        if path != WELL_KNOWN_PRM {
            app = app.route(&path, get(protected_resource));
        }
        app = app.route(WELL_KNOWN_PRM, get(protected_resource));
    }
    let app = app.with_state(front);
    let stop = gateway.clone();
    let shutdown = async move {
        shutdown.await;
        // Stop accepting; end GET streams so only in-flight calls keep the server up.
        stop.begin_shutdown();
    };
    let result = portcullis_identity::serve(listener, tls, app, listen.connections, shutdown).await;
    reaper.abort();
    result
}

fn rpc_error(status: StatusCode, id: Option<&Value>, code: ErrorCode, text: &str) -> Response {
    json_response(status, &error_response(id, code, text, None))
}

fn json_response(status: StatusCode, body: &Value) -> Response {
    json_bytes_response(status, portcullis_mcp::encode::to_vec(body))
}

fn json_bytes_response(status: StatusCode, bytes: Vec<u8>) -> Response {
    (status, [(header::CONTENT_TYPE, "application/json")], bytes).into_response()
}

/// A call's answer as JSON: the bytes it came in when it is relayed unchanged.
fn answer_response(answer: &Message, modern: bool) -> Response {
    json_bytes_response(status_for(answer, modern), answer.to_bytes())
}

/// A refusal as an HTTP answer: its own status (403 if it has none), the JSON-RPC error,
/// and `Retry-After` when a limit says when to come back.
fn deny_response(deny: &Deny, id: Option<&Value>) -> Response {
    let mut resp = json_response(deny.http_status().unwrap_or(StatusCode::FORBIDDEN), &deny.answer(id));
    if let Deny::Limit(limit) = deny
        && let Some(secs) = limit.retry_after_secs()
    {
        resp.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(secs));
    }
    resp
}

fn header_str<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

impl Front {
    fn check_origin(&self, headers: &HeaderMap) -> Result<(), Response> {
        let host = header_str(headers, "host");
        let origin = header_str(headers, "origin");
        self.guard.check(host, origin).map_err(|e| {
            tracing::warn!("refused request: {e}");
            rpc_error(StatusCode::FORBIDDEN, None, ErrorCode::InvalidRequest, &e.to_string())
        })
    }

    /// The identify stage: who is calling, from this request's credentials alone. A refusal
    /// because the gateway could not check the credentials (503: the issuer's key set is
    /// unavailable) is recorded, and quotes its decision id.
    async fn identify(&self, headers: &HeaderMap, peer: &Peer) -> Result<Caller, Response> {
        let config = self.gateway.config();
        let peer = peer.as_ref().map(|Extension(p)| p);
        let refusal = match identify(&config.listen.auth, &config.anonymous_principal, headers, peer).await {
            Ok(caller) => return Ok(caller),
            Err(refusal) => refusal,
        };
        let (mut message, mut data) = (refusal.message, None);
        if refusal.status == StatusCode::SERVICE_UNAVAILABLE {
            match self.gateway.recorder().unchecked_credentials(&message).await {
                Ok(Some(decision)) => {
                    message = format!("{message} (decision {decision})");
                    data = Some(json!({ "decisionId": decision }));
                }
                Ok(None) => {}
                Err(e) => message = format!("{message}; {e}"),
            }
        }
        let body = error_response(None, ErrorCode::InvalidRequest, &message, data);
        let mut resp = json_response(refusal.status, &body);
        if let Some(value) = refusal.challenge.and_then(|c| HeaderValue::from_str(&c).ok()) {
            resp.headers_mut().insert(header::WWW_AUTHENTICATE, value);
        }
        Err(resp)
    }

    /// The Host/Origin guard, then the identify stage.
    async fn admit(&self, headers: &HeaderMap, peer: &Peer) -> Result<Caller, Response> {
        self.check_origin(headers)?;
        self.identify(headers, peer).await
    }

    fn session(&self, headers: &HeaderMap, caller: &Caller) -> Option<Result<Arc<Session>, Response>> {
        let id = header_str(headers, SESSION_HEADER)?;
        Some(
            self.gateway
                .session(id, &caller.principal)
                .map_err(|e| rpc_error(e.http_status, None, e.code, &e.message)),
        )
    }

    /// The caller's concurrency and rate limits, for a request about to be handled (T17).
    fn within_limits(&self, caller: &Caller, id: Option<&Value>) -> Result<Admitted, Response> {
        self.gateway
            .admit(&caller.principal)
            .map_err(|deny| deny_response(&deny, id))
    }

    /// The request body, within the size limit and the body timeout (T17).
    async fn read_body(&self, body: Body) -> Result<Bytes, Response> {
        let config = self.gateway.config();
        let max = config.limits.max_bytes;
        let limit = config.listen.body_timeout;
        match tokio::time::timeout(limit, http_body_util::Limited::new(body, max).collect()).await {
            Ok(Ok(collected)) => Ok(collected.to_bytes()),
            Ok(Err(_)) => {
                let text = format!("message is over the limit of {max} bytes; send smaller messages");
                Err(rpc_error(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    None,
                    ErrorCode::InvalidRequest,
                    &text,
                ))
            }
            Err(_) => {
                tracing::debug!("request body not received within {limit:?}");
                let text = format!(
                    "the request body did not arrive within {} s (`listen.body_timeout_secs`); send it at once",
                    limit.as_secs()
                );
                let mut resp = rpc_error(StatusCode::REQUEST_TIMEOUT, None, ErrorCode::InvalidRequest, &text);
                // The rest of the body is never read: the connection cannot carry another request.
                resp.headers_mut()
                    .insert(header::CONNECTION, HeaderValue::from_static("close"));
                Err(resp)
            }
        }
    }
}

async fn post_mcp(State(front): State<Arc<Front>>, peer: Peer, headers: HeaderMap, body: Body) -> Response {
    let caller = match front.admit(&headers, &peer).await {
        Ok(caller) => caller,
        Err(r) => return r,
    };
    let content_type = header_str(&headers, "content-type").unwrap_or_default();
    if !content_type.to_ascii_lowercase().starts_with("application/json") {
        let text = "Content-Type must be application/json";
        return rpc_error(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            None,
            ErrorCode::InvalidRequest,
            text,
        );
    }
    let bytes = match front.read_body(body).await {
        Ok(bytes) => bytes,
        Err(r) => return r,
    };
    let msg = match Message::parse_forwardable(bytes, front.gateway.config().limits) {
        Ok(msg) => msg,
        Err(e) => return rpc_error(StatusCode::BAD_REQUEST, None, e.code(), &e.to_string()),
    };
    let modern = header_str(&headers, SESSION_HEADER).is_none() && is_modern(&headers, &msg);
    if msg.kind() == MessageKind::Request && msg.method() == Some("initialize") && !modern {
        return match front.within_limits(&caller, msg.id()) {
            Ok(admitted) => initialize(&front, admitted, &msg).await,
            Err(r) => r,
        };
    }
    let session = match front.session(&headers, &caller) {
        Some(Ok(session)) => {
            if let Some(v) = header_str(&headers, VERSION_HEADER)
                && ProtocolVersion::parse(v).is_none()
            {
                let text = format!("unsupported MCP-Protocol-Version `{v}`");
                return rpc_error(StatusCode::BAD_REQUEST, msg.id(), ErrorCode::InvalidRequest, &text);
            }
            session
        }
        Some(Err(r)) => return r,
        None => match stateless_session(&front, &caller, &headers, &msg) {
            Ok(session) => session,
            Err(r) => return r,
        },
    };
    match msg.kind() {
        MessageKind::Request => match front.within_limits(&caller, msg.id()) {
            Ok(admitted) => answer(front, admitted, session, caller, msg, &headers).await,
            Err(r) => r,
        },
        MessageKind::Notification => match front.gateway.handle_notification(&session, msg).await {
            Ok(()) => StatusCode::ACCEPTED.into_response(),
            // Streamable HTTP: a notification that cannot be accepted gets an HTTP error and
            // may carry a JSON-RPC error without an id.
            Err(deny) => deny_response(&deny, None),
        },
        MessageKind::Response => {
            front.gateway.handle_response(&session, msg).await;
            StatusCode::ACCEPTED.into_response()
        }
    }
}

async fn initialize(front: &Front, admitted: Admitted, msg: &Message) -> Response {
    match front.gateway.open_session(admitted, msg).await {
        Ok((session, result)) => {
            let body = json!({"jsonrpc": "2.0", "id": msg.id(), "result": result});
            let mut resp = json_response(StatusCode::OK, &body);
            if let Ok(v) = HeaderValue::from_str(&session.id) {
                resp.headers_mut().insert(SESSION_HEADER, v);
            }
            resp
        }
        Err(e) => rpc_error(e.http_status, msg.id(), e.code, &e.message),
    }
}

/// A request without a session: it must be a well-formed 2026-07-28 request.
fn stateless_session(
    front: &Front,
    caller: &Caller,
    headers: &HeaderMap,
    msg: &Message,
) -> Result<Arc<Session>, Response> {
    let header_version = header_str(headers, VERSION_HEADER);
    let meta = msg.meta();
    let body_version = meta.and_then(|m| m.get(META_PROTOCOL_VERSION)).and_then(Value::as_str);
    let bad = |code: ErrorCode, text: String| rpc_error(StatusCode::BAD_REQUEST, msg.id(), code, &text);
    let requested = match (header_version, body_version) {
        (None, None) => {
            let text = "missing Mcp-Session-Id: send initialize first, or use protocol 2026-07-28 with `_meta`";
            return Err(bad(ErrorCode::InvalidRequest, text.into()));
        }
        (Some(h), Some(b)) if h == b => h,
        (Some(h), Some(b)) => {
            let text = format!("MCP-Protocol-Version header `{h}` does not match body `_meta` version `{b}`");
            return Err(bad(ErrorCode::HeaderMismatch, text));
        }
        (None, Some(_)) => {
            return Err(bad(
                ErrorCode::HeaderMismatch,
                "missing required header `MCP-Protocol-Version`".into(),
            ));
        }
        (Some(h), None) => match ProtocolVersion::parse(h).map(|v| v.era()) {
            Some(portcullis_mcp::Era::Legacy) => {
                return Err(bad(
                    ErrorCode::InvalidRequest,
                    "missing Mcp-Session-Id: send initialize first".into(),
                ));
            }
            _ => {
                let text = format!("`params._meta` must carry `{META_PROTOCOL_VERSION}` on every 2026-07-28 request");
                return Err(bad(ErrorCode::InvalidParams, text));
            }
        },
    };
    if ProtocolVersion::parse(requested) != Some(ProtocolVersion::V2026_07_28) {
        let data = json!({"supported": ["2026-07-28"], "requested": requested});
        let text = format!("unsupported protocol version `{requested}` without a session");
        let body = error_response(msg.id(), ErrorCode::UnsupportedProtocolVersion, &text, Some(data));
        return Err(json_response(StatusCode::BAD_REQUEST, &body));
    }
    if msg.kind() == MessageKind::Request {
        if meta.is_none_or(|m| !m.get(META_CLIENT_CAPABILITIES).is_some_and(Value::is_object)) {
            let text = format!("`params._meta` must carry `{META_CLIENT_CAPABILITIES}` on every 2026-07-28 request");
            return Err(bad(ErrorCode::InvalidParams, text));
        }
        let (method, name) = (header_str(headers, "mcp-method"), header_str(headers, "mcp-name"));
        if let Err(e) = headers::check_request_headers(msg, method, name) {
            return Err(bad(ErrorCode::HeaderMismatch, e.to_string()));
        }
    }
    front
        .gateway
        .stateless_session(&caller.principal, msg)
        .map_err(|e| rpc_error(e.http_status, msg.id(), e.code, &e.message))
}

/// Whether a request without a session speaks 2026-07-28 (by header or by `_meta`).
fn is_modern(headers: &HeaderMap, msg: &Message) -> bool {
    let by_header = header_str(headers, VERSION_HEADER).is_some_and(|v| v == ProtocolVersion::V2026_07_28.as_str());
    let by_meta = msg.meta().is_some_and(|m| m.contains_key(META_PROTOCOL_VERSION));
    by_header || by_meta
}

/// Answers a request. The call runs in the request's own task (no spawn, no
/// channel hop): a client that hangs up drops it, which cancels the upstream
/// request. If the answer comes before any related notification it is sent as
/// JSON (with the HTTP status a 2026-07-28 client expects for its error);
/// otherwise an SSE stream starts, and a task carries the notifications and then
/// the answer on it.
async fn answer(
    front: Arc<Front>,
    admitted: Admitted,
    session: Arc<Session>,
    caller: Caller,
    msg: Message,
    headers: &HeaderMap,
) -> Response {
    let accepts_sse = header_str(headers, "accept").is_some_and(|a| a.contains("text/event-stream"));
    let modern = session.era() == portcullis_mcp::Era::Modern;
    let id = msg.id().cloned().unwrap_or(Value::Null);
    let calling = session.clone();
    let mut call = Box::pin(async move { front.gateway.handle_request(admitted, &calling, &caller, msg).await });
    let Some(related) = accepts_sse.then(|| session.sink.open_request(&id)) else {
        let answer = call.await;
        return answer_response(&answer, modern);
    };
    let mut related = OpenStream { related, session, id };
    let (first, answered) = tokio::select! {
        biased;
        Some(note) = related.related.recv() => (note, None),
        answer = &mut call => match related.related.try_recv() {
            // Notifications came with the answer: they go first, on an SSE stream.
            Some(note) => (note, Some(answer)),
            None => return answer_response(&answer, modern),
        },
    };
    let (out, body) = mpsc::channel::<Result<Bytes, Infallible>>(64);
    tokio::spawn(stream_rest(call, answered, related, first, out));
    sse_response(body)
}

/// A request's own stream of related notifications, closed however the request ends.
struct OpenStream {
    related: SinkReceiver,
    session: Arc<Session>,
    id: Value,
}

impl Drop for OpenStream {
    fn drop(&mut self) {
        self.session.sink.close_request(&self.id);
    }
}

/// The SSE rest of a call: `first`, the notifications that follow, then the answer.
/// Stops (dropping the call, which cancels it upstream) when the client hangs up.
async fn stream_rest<F: Future<Output = Message>>(
    mut call: std::pin::Pin<Box<F>>,
    answered: Option<Message>,
    mut related: OpenStream,
    first: Value,
    out: mpsc::Sender<Result<Bytes, Infallible>>,
) {
    if out.send(Ok(encode(&first))).await.is_err() {
        return;
    }
    let answer = match answered {
        Some(answer) => answer,
        None => loop {
            tokio::select! {
                biased;
                Some(note) = related.related.recv() => {
                    if out.send(Ok(encode(&note))).await.is_err() {
                        return;
                    }
                }
                answer = &mut call => break answer,
                _ = out.closed() => return,
            }
        },
    };
    while let Some(note) = related.related.try_recv() {
        if out.send(Ok(encode(&note))).await.is_err() {
            return;
        }
    }
    let _ = out.send(Ok(sse_event(&answer.to_bytes()))).await;
}

/// HTTP status for a JSON answer: 2026-07-28 maps some JSON-RPC errors onto HTTP.
fn status_for(answer: &Message, modern: bool) -> StatusCode {
    let code = answer.error().and_then(|e| e.get("code")).and_then(Value::as_i64);
    match (modern, code) {
        (true, Some(-32601)) => StatusCode::NOT_FOUND,
        // HeaderMismatch, MissingRequiredClientCapability, UnsupportedProtocolVersion.
        (true, Some(-32022..=-32020)) => StatusCode::BAD_REQUEST,
        _ => StatusCode::OK,
    }
}

fn encode(msg: &Value) -> Bytes {
    sse_event(&portcullis_mcp::encode::to_vec(msg))
}

/// One message's bytes as an SSE event.
fn sse_event(bytes: &[u8]) -> Bytes {
    Bytes::from(sse::encode(bytes))
}

fn sse_response(body: mpsc::Receiver<Result<Bytes, Infallible>>) -> Response {
    let mut resp = Response::new(Body::from_stream(ReceiverStream::new(body)));
    let h = resp.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static("text/event-stream"));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    h.insert("x-accel-buffering", HeaderValue::from_static("no"));
    resp
}

/// Health for load balancers: 503 while a control the gateway depends on fails.
async fn healthz(State(front): State<Arc<Front>>, headers: HeaderMap) -> Response {
    if let Err(r) = front.check_origin(&headers) {
        return r;
    }
    match front.gateway.healthy() {
        true => json_response(StatusCode::OK, &json!({"status": "ok"})),
        false => json_response(
            StatusCode::SERVICE_UNAVAILABLE,
            &json!({"status": "unhealthy", "reason": "the audit log cannot be written; calls are denied"}),
        ),
    }
}

/// OAuth Protected Resource Metadata (RFC 9728): where clients get tokens for this gateway.
async fn protected_resource(State(front): State<Arc<Front>>, headers: HeaderMap) -> Response {
    if let Err(r) = front.check_origin(&headers) {
        return r;
    }
    match &front.gateway.config().listen.auth.bearer {
        Some(bearer) => json_response(StatusCode::OK, &bearer.resource.metadata_document()),
        None => StatusCode::NOT_FOUND.into_response(),
    }
}

/// The legacy server-to-client stream of a session.
async fn get_mcp(State(front): State<Arc<Front>>, peer: Peer, headers: HeaderMap) -> Response {
    let caller = match front.admit(&headers, &peer).await {
        Ok(caller) => caller,
        Err(r) => return r,
    };
    let session = match front.session(&headers, &caller) {
        Some(Ok(s)) => s,
        Some(Err(r)) => return r,
        None => {
            let text = "GET needs an Mcp-Session-Id (2026-07-28 clients use subscriptions/listen)";
            return rpc_error(StatusCode::METHOD_NOT_ALLOWED, None, ErrorCode::InvalidRequest, text);
        }
    };
    let accepts_sse = header_str(&headers, "accept").is_some_and(|a| a.contains("text/event-stream"));
    if !accepts_sse {
        let text = "GET must accept text/event-stream";
        return rpc_error(StatusCode::NOT_ACCEPTABLE, None, ErrorCode::InvalidRequest, text);
    }
    let Some(mut messages) = session.sink.open_general(64) else {
        let text = "this session already has an open GET stream";
        return rpc_error(StatusCode::CONFLICT, None, ErrorCode::InvalidRequest, text);
    };
    let (out, body) = mpsc::channel::<Result<Bytes, Infallible>>(64);
    let mut stopping = front.gateway.stopping();
    tokio::spawn(async move {
        let mut keepalive = tokio::time::interval(KEEPALIVE);
        loop {
            let chunk = tokio::select! {
                _ = stopping.wait_for(|s| *s) => break,
                msg = messages.recv() => match msg {
                    Some(m) => encode(&m),
                    None => break,
                },
                _ = keepalive.tick() => Bytes::from_static(b": keepalive\n\n"),
                _ = out.closed() => break,
            };
            if out.send(Ok(chunk)).await.is_err() {
                break;
            }
        }
    });
    sse_response(body)
}

async fn delete_mcp(State(front): State<Arc<Front>>, peer: Peer, headers: HeaderMap) -> Response {
    let caller = match front.admit(&headers, &peer).await {
        Ok(caller) => caller,
        Err(r) => return r,
    };
    match front.session(&headers, &caller) {
        Some(Ok(s)) => {
            front.gateway.close_session(&s.id);
            StatusCode::OK.into_response()
        }
        Some(Err(r)) => r,
        None => {
            let text = "DELETE needs an Mcp-Session-Id";
            rpc_error(StatusCode::BAD_REQUEST, None, ErrorCode::InvalidRequest, text)
        }
    }
}
