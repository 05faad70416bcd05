//! The POST of one message and its answer: sent on the upstream's shared HTTP/1.1
//! connections for plain `http://` (the hot path) or with reqwest for `https://`. A
//! JSON answer is read here and handed back to the caller; an SSE answer goes to
//! [`super::stream`] (with its connection, reused once the stream ends); a transport
//! failure becomes the call's JSON-RPC error.
use std::sync::Arc;

use bytes::Bytes;
use http::HeaderMap;
use http_body_util::Full;
use portcullis_mcp::{Message, MessageKind};

use super::{Conn, sse_body::SseBody, stream::Answer};
use crate::{
    CallHeader, LinkEvent,
    http1_conns::{Http1Conn, Http1Conns},
};

impl Conn {
    /// POSTs `msg` (with `header` on this request alone: a per-call credential). A JSON
    /// answer, or an SSE one that is the first message of its stream, is returned (the
    /// caller delivers it); anything else (the other messages of SSE streams, an answer that
    /// follows them, failures) is delivered on the link's events here.
    pub(crate) async fn post_direct(&self, msg: Message, header: Option<&CallHeader>) -> Option<Message> {
        let id = msg.id().cloned();
        let is_request = msg.kind() == MessageKind::Request;
        let is_initialize = msg.method() == Some("initialize");
        let is_tools_list = msg.method() == Some("tools/list");
        let response = match self.send_post(&msg, header).await {
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
            let body = response.into_sse(self.http1.as_ref().map(|(conns, _)| conns));
            return self.read_stream(body, id, on_answer).await;
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
        match self.parse(body) {
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
    async fn send_post(&self, msg: &Message, header: Option<&CallHeader>) -> Result<Posted, String> {
        let name = &self.spec.name;
        let mut headers = self
            .post_headers(msg)
            .await
            .map_err(|e| format!("cannot send this request to upstream `{name}`: {e}"))?;
        if let Some(CallHeader { name, value }) = header {
            headers.insert(name.clone(), value.clone());
        }
        // Reached, but what came back was not HTTP: say so, not "unreachable".
        let unreachable = |e: &(dyn std::error::Error + 'static)| {
            if not_http(e) {
                format!("upstream `{name}` sent an answer that is not HTTP: {}", with_causes(e))
            } else {
                format!("upstream `{name}` is unreachable: {}", with_causes(e))
            }
        };
        let body = Bytes::from(msg.to_bytes());
        if let Some((conns, target)) = &self.http1 {
            let mut request = http::Request::new(Full::new(body));
            *request.method_mut() = http::Method::POST;
            *request.headers_mut() = headers;
            let (response, conn) = conns.send(target, request).await.map_err(|e| unreachable(&*e))?;
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
            .map_err(|e| unreachable(&e))?;
        Ok(Posted::Reqwest(response))
    }

    fn reuse(&self, conn: Option<Http1Conn>) {
        if let (Some((conns, _)), Some(conn)) = (&self.http1, conn) {
            conns.reuse(conn);
        }
    }
}

/// `e` and its chain of causes, `: `-separated: reqwest's own message ("error sending
/// request") hides the useful part (connection refused, certificate rejected, ...); a TLS
/// failure is followed by what it means (`tls_words`).
fn with_causes(e: &(dyn std::error::Error + 'static)) -> String {
    let mut text = e.to_string();
    let words = crate::tls_words::explain(e);
    let mut source = e.source();
    while let Some(cause) = source {
        let part = cause.to_string();
        if !text.contains(&part) {
            text.push_str(": ");
            text.push_str(&part);
        }
        source = cause.source();
    }
    if let Some(words) = words {
        text.push_str(" — ");
        text.push_str(&words);
    }
    text
}

/// Whether `e` (or one of its causes) is hyper failing to parse the answer: the upstream
/// was reached and sent bytes that are not an HTTP response.
fn not_http(e: &(dyn std::error::Error + 'static)) -> bool {
    let mut next = Some(e);
    while let Some(error) = next {
        if error
            .downcast_ref::<hyper::Error>()
            .is_some_and(|h| h.is_parse() || h.is_parse_status())
        {
            return true;
        }
        next = error.source();
    }
    false
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

    /// The body, for reading an SSE stream; a plain-HTTP connection goes with it, back to
    /// `conns` once the stream ends.
    fn into_sse(self, conns: Option<&Arc<Http1Conns>>) -> SseBody {
        match self {
            Self::Plain(r, conn) => SseBody::Plain {
                body: r.into_body(),
                conn: conns.map(|conns| (conn, conns.clone())),
            },
            Self::Reqwest(r) => SseBody::Reqwest(r),
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
