//! Streamable HTTP upstreams: each message to the server is a POST; answers
//! arrive as one JSON body or an SSE stream scoped to that request. For legacy
//! sessions the server's `Mcp-Session-Id` is kept and a GET stream carries
//! server-initiated messages; the session is DELETEd when the link closes.
use std::sync::Arc;

use bytes::Bytes;
use futures::StreamExt;
use http::{HeaderMap, HeaderName, HeaderValue, uri::PathAndQuery};
use http_body_util::Full;
use portcullis_core::Secret;
use portcullis_mcp::{ErrorCode, Limits, Message, MessageKind, error_response, revision::META_PROTOCOL_VERSION};
use serde_json::Value;
use tokio::sync::{Mutex, mpsc, oneshot};

use crate::{
    Link, LinkEvent,
    http1_conns::{Http1Conn, Http1Conns, HttpClient},
    link::{Direct, DirectRequests, LINK_CAPACITY, LinkGuard},
    param_headers::{ParamHeaders, header_safe},
    sse,
};

/// How to reach one Streamable HTTP server.
#[derive(Debug, Clone)]
pub struct HttpSpec {
    pub name: String,
    pub url: String,
    /// Extra headers sent on every request (credentials, routing).
    pub headers: Vec<(String, Secret<String>)>,
    pub limits: Limits,
}

#[derive(Default)]
struct SessionState {
    session_id: Option<String>,
    protocol_version: Option<String>,
    param_headers: ParamHeaders,
}

#[derive(Clone)]
pub(crate) struct Conn {
    spec: Arc<HttpSpec>,
    /// `spec.url` parsed once (reqwest would parse the string on every request);
    /// `None` if it does not parse, and then each request reports why.
    url: Option<reqwest::Url>,
    client: HttpClient,
    /// The configured headers (`spec.headers`) as sent on every request, built once; `Err`
    /// says which one is not a valid HTTP header.
    configured: Arc<Result<HeaderMap, String>>,
    /// The upstream's shared connections and the request target, when it is plain
    /// `http://` (the hot path).
    http1: Option<(Arc<Http1Conns>, PathAndQuery)>,
    state: Arc<Mutex<SessionState>>,
    events: mpsc::Sender<LinkEvent>,
}

/// How often a broken answer stream is resumed before the call fails.
const MAX_RESUMES: usize = 3;

/// How reading one SSE connection ended.
enum Read {
    Answered,
    Ended,
    ReceiverGone,
}

/// What to do when a request's answer arrives on its stream.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Answer {
    Plain,
    Initialize,
    /// A `tools/list` answer: learn the tools' `x-mcp-header` annotations.
    ToolsList,
}

/// Opens a link to an HTTP server. No request is made until a message is sent.
pub fn connect_http(spec: HttpSpec, client: HttpClient) -> Link {
    let (tx, mut outbox) = mpsc::channel::<Message>(LINK_CAPACITY);
    let (events, rx) = mpsc::channel::<LinkEvent>(LINK_CAPACITY);
    let (stop_tx, mut stop_rx) = oneshot::channel::<()>();
    let url = reqwest::Url::parse(&spec.url).ok();
    let conn = Conn {
        configured: Arc::new(configured_headers(&spec)),
        http1: url.as_ref().and_then(|url| client.plain(url)),
        url,
        spec: Arc::new(spec),
        client,
        state: Arc::new(Mutex::new(SessionState::default())),
        events,
    };
    let direct = DirectRequests(Direct::Http(conn.clone()));
    tokio::spawn(async move {
        loop {
            tokio::select! {
                next = outbox.recv() => match next {
                    Some(msg) => conn.dispatch(msg).await,
                    None => break,
                },
                _ = &mut stop_rx => break,
            }
        }
        conn.close().await;
    });
    Link {
        tx,
        rx,
        guard: LinkGuard { _stop: stop_tx },
        direct: Some(direct),
    }
}

impl Conn {
    /// Requests run concurrently; `initialize`, notifications and responses are
    /// sent in order so the server sees the handshake before anything else.
    async fn dispatch(&self, msg: Message) {
        let ordered = msg.kind() != MessageKind::Request || msg.method() == Some("initialize");
        if ordered {
            self.post(msg).await;
        } else {
            let this = self.clone();
            tokio::spawn(async move { this.post(msg).await });
        }
    }

    async fn post(&self, msg: Message) {
        let id = msg.id().cloned();
        if let Some(answer) = self.post_direct(msg).await {
            let _ = self
                .events
                .send(LinkEvent::Message {
                    msg: answer,
                    related: id,
                })
                .await;
        }
    }

    /// POSTs `msg`. A plain JSON answer is returned (the caller delivers it); anything
    /// else (SSE streams, failures) is delivered on the link's events here.
    pub(crate) async fn post_direct(&self, msg: Message) -> Option<Message> {
        let id = msg.id().cloned();
        let is_request = msg.kind() == MessageKind::Request;
        let is_initialize = msg.method() == Some("initialize");
        let is_tools_list = msg.method() == Some("tools/list");
        let response = match self.send_post(&msg).await {
            Ok(sent) => sent,
            Err(text) => {
                self.fail(id.as_ref(), is_request, &text).await;
                return None;
            }
        };
        let status = response.status();
        if is_initialize && status.is_success() {
            let sid = response
                .headers()
                .get("mcp-session-id")
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned);
            self.state.lock().await.session_id = sid;
        }
        if !is_request {
            if !status.is_success() {
                tracing::warn!(server = %self.spec.name, %status, "upstream refused a notification");
            }
            // An empty answer (202 Accepted) leaves the connection ready for the next request;
            // any other body is not waited for (the connection closes with it).
            if response.content_length() == Some(0) {
                self.reuse(response.into_conn());
            }
            return None;
        }
        let content_type = response
            .headers()
            .get(http::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_ascii_lowercase();
        if content_type.starts_with("text/event-stream") {
            let on_answer = match (is_initialize && status.is_success(), is_tools_list) {
                (true, _) => Answer::Initialize,
                (false, true) => Answer::ToolsList,
                (false, false) => Answer::Plain,
            };
            self.read_stream(response.into_reqwest(), id.clone(), on_answer).await;
            return None;
        }
        let (body, conn) = match response.body().await {
            Ok(read) => read,
            Err(e) => {
                let text = format!("upstream `{}` broke off its answer: {e}", self.spec.name);
                self.fail(id.as_ref(), true, &text).await;
                return None;
            }
        };
        self.reuse(conn);
        match self.parse(&body) {
            Ok(msg) => {
                if is_initialize && status.is_success() {
                    self.initialized(&msg).await;
                }
                if is_tools_list {
                    self.learn_tools(&msg).await;
                }
                return Some(msg);
            }
            Err(_) if !status.is_success() => {
                let text = format!("upstream `{}` answered HTTP {status}", self.spec.name);
                self.fail(id.as_ref(), true, &text).await;
            }
            Err(reason) => {
                let _ = self.events.send(LinkEvent::Malformed { reason: reason.clone() }).await;
                let text = format!("upstream `{}` sent a malformed answer: {reason}", self.spec.name);
                self.fail(id.as_ref(), true, &text).await;
            }
        }
        None
    }

    /// Sends the POST of `msg`: on the upstream's shared HTTP/1.1 connections when it is
    /// plain `http://`, else with the reqwest client. Returns the answer (see [`Posted`]);
    /// `Err` says what failed.
    async fn send_post(&self, msg: &Message) -> Result<Posted, String> {
        let name = &self.spec.name;
        let headers = self
            .post_headers(msg)
            .await
            .map_err(|e| format!("cannot send this request to upstream `{name}`: {e}"))?;
        let unreachable = |causes: String| format!("upstream `{name}` is unreachable: {causes}");
        let body = Bytes::from(msg.to_bytes());
        if let Some((conns, target)) = &self.http1 {
            let mut request = http::Request::new(Full::new(body));
            *request.method_mut() = http::Method::POST;
            *request.headers_mut() = headers;
            let (response, conn) = conns
                .send(target, request)
                .await
                .map_err(|e| unreachable(with_causes(&*e)))?;
            return Ok(Posted::Plain(response, conn));
        }
        let request = match &self.url {
            Some(url) => self.client.reqwest().post(url.clone()),
            None => self.client.reqwest().post(&self.spec.url),
        };
        let response = request
            .headers(headers)
            .body(body)
            .send()
            .await
            .map_err(|e| unreachable(with_causes(&e)))?;
        Ok(Posted::Reqwest(response))
    }

    fn reuse(&self, conn: Option<Http1Conn>) {
        if let (Some((conns, _)), Some(conn)) = (&self.http1, conn) {
            conns.reuse(conn);
        }
    }

    /// The headers of the POST of `msg`: content negotiation, the configured headers, and
    /// the session or 2026-07-28 routing headers.
    async fn post_headers(&self, msg: &Message) -> Result<HeaderMap, String> {
        let mut headers = self.configured.as_ref().clone()?;
        headers.insert(
            http::header::ACCEPT,
            HeaderValue::from_static("application/json, text/event-stream"),
        );
        headers.insert(http::header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
        let modern = msg
            .meta()
            .and_then(|m| m.get(META_PROTOCOL_VERSION))
            .and_then(Value::as_str);
        if let Some(version) = modern {
            put(&mut headers, "mcp-protocol-version", version)?;
            if let Some(method) = msg.method() {
                put(&mut headers, "mcp-method", method)?;
            }
            if let Some(name) = msg.param_str("name").or_else(|| msg.param_str("uri")) {
                put(&mut headers, "mcp-name", &header_safe(name))?;
            }
            if msg.method() == Some("tools/call") {
                for (k, v) in self.state.lock().await.param_headers.headers_for(msg) {
                    put(&mut headers, &k, &v)?;
                }
            }
        } else {
            let state = self.state.lock().await;
            if let Some(sid) = &state.session_id {
                put(&mut headers, "mcp-session-id", sid)?;
            }
            if let Some(v) = &state.protocol_version {
                put(&mut headers, "mcp-protocol-version", v)?;
            }
        }
        Ok(headers)
    }

    /// Reads an SSE answer stream. When it breaks before the answer arrived and the
    /// server gave event ids, it resumes with a GET carrying `Last-Event-ID`
    /// (2025-11-25 resumability), at most `MAX_RESUMES` times.
    async fn read_stream(&self, response: reqwest::Response, related: Option<Value>, on_answer: Answer) {
        let mut parser = sse::Parser::new(self.spec.limits.max_bytes);
        let mut answered = false;
        let mut response = Some(response);
        for attempt in 0..=MAX_RESUMES {
            if attempt > 0 {
                let Some(next) = self.resume(&parser).await else { break };
                response = Some(next);
                parser.reset();
            }
            let Some(current) = response.take() else { break };
            match self
                .read_events(current, &mut parser, related.as_ref(), on_answer)
                .await
            {
                Read::Answered => answered = true,
                Read::ReceiverGone => return,
                Read::Ended => {}
            }
            if answered || related.is_none() {
                break;
            }
        }
        if !answered && related.is_some() {
            let text = format!("upstream `{}` closed the stream without answering", self.spec.name);
            self.fail(related.as_ref(), true, &text).await;
        }
    }

    async fn read_events(
        &self,
        response: reqwest::Response,
        parser: &mut sse::Parser,
        related: Option<&Value>,
        on_answer: Answer,
    ) -> Read {
        let mut body = response.bytes_stream();
        let mut answered = false;
        while let Some(chunk) = body.next().await {
            let Ok(chunk) = chunk else { break };
            let events = match parser.push(&chunk) {
                Ok(events) => events,
                Err(e) => {
                    let _ = self.events.send(LinkEvent::Malformed { reason: e.to_string() }).await;
                    break;
                }
            };
            for event in events {
                match self.parse(event.data.as_bytes()) {
                    Ok(msg) => {
                        let is_answer = msg.kind() == MessageKind::Response && msg.id() == related;
                        if is_answer && on_answer == Answer::Initialize {
                            self.initialized(&msg).await;
                        }
                        if is_answer && on_answer == Answer::ToolsList {
                            self.learn_tools(&msg).await;
                        }
                        answered |= is_answer;
                        let ev = LinkEvent::Message {
                            msg,
                            related: related.cloned(),
                        };
                        if self.events.send(ev).await.is_err() {
                            return Read::ReceiverGone;
                        }
                    }
                    Err(reason) => {
                        let _ = self.events.send(LinkEvent::Malformed { reason }).await;
                    }
                }
            }
        }
        if answered { Read::Answered } else { Read::Ended }
    }

    /// Reopens a broken legacy stream from its last event id, after the server's `retry:` delay.
    async fn resume(&self, parser: &sse::Parser) -> Option<reqwest::Response> {
        let last_id = parser.last_event_id()?.to_owned();
        let (sid, version) = {
            let state = self.state.lock().await;
            (state.session_id.clone(), state.protocol_version.clone())
        };
        let delay = parser.retry_ms().unwrap_or(1000).min(5000);
        tokio::time::sleep(std::time::Duration::from_millis(delay)).await;
        let mut req = self
            .client
            .reqwest()
            .get(&self.spec.url)
            .header(http::header::ACCEPT, "text/event-stream")
            .header("last-event-id", last_id);
        if let Some(sid) = sid {
            req = req.header("mcp-session-id", sid);
        }
        if let Some(v) = version {
            req = req.header("mcp-protocol-version", v);
        }
        match req.headers(self.configured.as_ref().clone().ok()?).send().await {
            Ok(resp) if resp.status().is_success() => Some(resp),
            Ok(resp) => {
                tracing::debug!(server = %self.spec.name, status = %resp.status(), "stream resumption refused");
                None
            }
            Err(e) => {
                tracing::debug!(server = %self.spec.name, "stream resumption failed: {e}");
                None
            }
        }
    }

    fn open_get_stream(&self) {
        let this = self.clone();
        tokio::spawn(async move {
            let sid = this.state.lock().await.session_id.clone();
            let Some(sid) = sid else { return };
            let mut req = this
                .client
                .reqwest()
                .get(&this.spec.url)
                .header(http::header::ACCEPT, "text/event-stream")
                .header("mcp-session-id", sid);
            if let Some(v) = this.state.lock().await.protocol_version.clone() {
                req = req.header("mcp-protocol-version", v);
            }
            let Ok(configured) = this.configured.as_ref().clone() else {
                return;
            };
            match req.headers(configured).send().await {
                Ok(resp) if resp.status().is_success() => this.read_stream(resp, None, Answer::Plain).await,
                Ok(resp) => {
                    tracing::debug!(server = %this.spec.name, status = %resp.status(), "no GET stream")
                }
                Err(e) => tracing::debug!(server = %this.spec.name, "GET stream failed: {e}"),
            }
        });
    }

    async fn learn_tools(&self, msg: &Message) {
        if let Some(result) = msg.result() {
            self.state.lock().await.param_headers.learn(result);
        }
    }

    /// After a successful `initialize`: use the negotiated version on later
    /// requests and open the session's GET stream for server-initiated messages.
    async fn initialized(&self, msg: &Message) {
        let Some(result) = msg.result() else { return };
        if let Some(v) = result.get("protocolVersion").and_then(Value::as_str) {
            self.state.lock().await.protocol_version = Some(v.to_owned());
        }
        self.open_get_stream();
    }

    fn parse(&self, bytes: &[u8]) -> Result<Message, String> {
        Message::parse(bytes, self.spec.limits).map_err(|e| e.to_string())
    }

    /// Answers a request that failed at the HTTP level with a JSON-RPC error.
    async fn fail(&self, id: Option<&Value>, is_request: bool, text: &str) {
        tracing::warn!(server = %self.spec.name, "{text}");
        if !is_request {
            return;
        }
        let value = error_response(id, ErrorCode::UpstreamFailed, text, None);
        if let Ok(msg) = Message::from_value(value) {
            let _ = self
                .events
                .send(LinkEvent::Message {
                    msg,
                    related: id.cloned(),
                })
                .await;
        }
    }

    async fn close(&self) {
        let sid = self.state.lock().await.session_id.take();
        if let (Some(sid), Ok(configured)) = (sid, self.configured.as_ref()) {
            let req = self.client.reqwest().delete(&self.spec.url);
            let _ = req
                .header("mcp-session-id", sid)
                .headers(configured.clone())
                .send()
                .await;
        }
        let reason = format!("connection to upstream `{}` closed", self.spec.name);
        let _ = self.events.send(LinkEvent::Closed { reason }).await;
    }
}

/// The configured headers of `spec` as a header map, values marked sensitive (they often
/// carry credentials); `Err` names the first that is not a valid HTTP header.
fn configured_headers(spec: &HttpSpec) -> Result<HeaderMap, String> {
    let mut headers = HeaderMap::with_capacity(spec.headers.len());
    for (k, v) in &spec.headers {
        let (Ok(name), Ok(mut value)) = (HeaderName::from_bytes(k.as_bytes()), HeaderValue::from_str(v.expose()))
        else {
            return Err(format!(
                "its configured header `{k}` is not a valid HTTP header name and value; fix it in the config"
            ));
        };
        value.set_sensitive(true);
        headers.append(name, value);
    }
    Ok(headers)
}

/// Sets header `name` to `value`, or says why it cannot be sent.
fn put(headers: &mut HeaderMap, name: &str, value: &str) -> Result<(), String> {
    match (HeaderName::from_bytes(name.as_bytes()), HeaderValue::from_str(value)) {
        (Ok(name), Ok(value)) => {
            headers.insert(name, value);
            Ok(())
        }
        _ => Err(format!("header `{name}` cannot carry this request's value")),
    }
}

/// `e` and its chain of causes, `: `-separated: reqwest's own message ("error sending
/// request") hides the useful part (connection refused, certificate rejected, ...).
fn with_causes(e: &(dyn std::error::Error + 'static)) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(cause) = source {
        let part = cause.to_string();
        if !text.contains(&part) {
            text.push_str(": ");
            text.push_str(&part);
        }
        source = cause.source();
    }
    text
}

/// An upstream's answer to a POST: on a plain-HTTP keep-alive connection (hyper's
/// response, read here without any conversion; the connection goes back for reuse once the
/// body is read in full), or from reqwest (`https://`).
enum Posted {
    Plain(http::Response<hyper::body::Incoming>, Http1Conn),
    Reqwest(reqwest::Response),
}

impl Posted {
    fn status(&self) -> http::StatusCode {
        match self {
            Self::Plain(r, _) => r.status(),
            Self::Reqwest(r) => r.status(),
        }
    }

    fn headers(&self) -> &HeaderMap {
        match self {
            Self::Plain(r, _) => r.headers(),
            Self::Reqwest(r) => r.headers(),
        }
    }

    /// The body's length when the answer states it.
    fn content_length(&self) -> Option<u64> {
        match self {
            Self::Plain(r, _) => hyper::body::Body::size_hint(r.body()).exact(),
            Self::Reqwest(r) => r.content_length(),
        }
    }

    /// The connection, for reuse when nothing more will be read from it.
    fn into_conn(self) -> Option<Http1Conn> {
        match self {
            Self::Plain(_, conn) => Some(conn),
            Self::Reqwest(_) => None,
        }
    }

    /// As a reqwest response, for reading an SSE stream (the connection is not reused).
    fn into_reqwest(self) -> reqwest::Response {
        match self {
            Self::Plain(r, _) => reqwest::Response::from(r.map(reqwest::Body::wrap)),
            Self::Reqwest(r) => r,
        }
    }

    /// The whole body, then the connection it came on (reusable now).
    async fn body(self) -> Result<(Bytes, Option<Http1Conn>), String> {
        match self {
            Self::Plain(r, conn) => {
                let collected = http_body_util::BodyExt::collect(r.into_body())
                    .await
                    .map_err(|e| e.to_string())?;
                Ok((collected.to_bytes(), Some(conn)))
            }
            Self::Reqwest(r) => r.bytes().await.map(|b| (b, None)).map_err(|e| e.to_string()),
        }
    }
}

#[cfg(test)]
mod tests {
    use portcullis_mcp::message;
    use serde_json::json;

    use super::*;
    use crate::test_server::echo_server;

    #[tokio::test]
    async fn configured_headers_go_with_every_post_and_a_bad_one_fails_the_request() {
        let server = echo_server(false).await;
        let spec = |value: &str| HttpSpec {
            name: "up".into(),
            url: server.url.to_string(),
            headers: vec![("Authorization".into(), Secret::new(value.to_owned()))],
            limits: Limits::default(),
        };
        let link = connect_http(spec("Bearer t0ken"), HttpClient::default());
        let direct = link.direct.clone().unwrap();
        for id in 1..=2 {
            let answer = direct
                .request(message::request(json!(id), "tools/list", json!({})))
                .await;
            assert!(answer.is_some(), "the echoed body comes straight back");
        }
        let heads = server.heads.lock().unwrap().clone();
        assert_eq!(heads.len(), 2);
        for head in &heads {
            let head = head.to_ascii_lowercase();
            assert!(head.contains("authorization: bearer t0ken\r\n"), "{head}");
            assert!(
                head.contains("accept: application/json, text/event-stream\r\n"),
                "{head}"
            );
        }

        // A value HTTP cannot carry: nothing is sent, the call gets an error naming the header.
        let mut link = connect_http(spec("line\nbreak"), HttpClient::default());
        let direct = link.direct.clone().unwrap();
        let answer = direct
            .request(message::request(json!(3), "tools/list", json!({})))
            .await;
        assert!(answer.is_none());
        let Some(LinkEvent::Message { msg, .. }) = link.rx.recv().await else {
            panic!("the failure is delivered on the link");
        };
        let text = msg.as_value_string();
        assert!(text.contains("configured header `Authorization`"), "{text}");
        assert!(!text.contains("line"), "the value is never echoed: {text}");
        assert_eq!(server.heads.lock().unwrap().len(), 2);
    }
}
