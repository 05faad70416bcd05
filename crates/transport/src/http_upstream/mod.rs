//! Streamable HTTP upstreams: each message to the server is a POST; answers
//! arrive as one JSON body or an SSE stream scoped to that request. For legacy
//! sessions the server's `Mcp-Session-Id` is kept and a GET stream carries
//! server-initiated messages; the session is DELETEd when the link closes.
//!
//! This module is the link itself: the [`HttpSpec`], the connection state every
//! request shares ([`Conn`]), the task that turns the link's outbox into POSTs, and
//! how failures become JSON-RPC errors. The request flow continues in:
//! - [`headers`]: the headers of each POST (configured, negotiation, session or routing);
//! - [`post`]: sending the POST and reading a JSON answer (or handing an SSE one on);
//! - [`stream`]: reading SSE streams up to the answer, resuming a broken one from its last
//!   event id;
//! - [`rest`]: the rest of an answer stream, read in the background so the connection is
//!   reused;
//! - [`sse_body`]: an SSE body read chunk by chunk, and its connection's way back to the pool;
//! - [`session`]: what `initialize` starts (negotiated version, GET stream) and the
//!   DELETE at close.
use std::sync::Arc;

use http::{HeaderMap, uri::PathAndQuery};
use portcullis_core::Secret;
use portcullis_mcp::{ErrorCode, Limits, Message, MessageKind, error_response};
use serde_json::Value;
use tokio::sync::{Mutex, mpsc, oneshot};

use crate::{
    Link, LinkEvent,
    http1_conns::{Http1Conns, HttpClient},
    link::{Direct, DirectRequests, LINK_CAPACITY, LinkGuard},
    param_headers::ParamHeaders,
};

mod headers;
mod post;
mod rest;
mod session;
mod sse_body;
#[cfg(test)]
mod sse_tests;
mod stream;

use headers::configured_headers;

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
        handler: None,
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
        if let Some(answer) = self.post_direct(msg, None).await {
            let _ = self
                .events
                .send(LinkEvent::Message {
                    msg: answer,
                    related: id,
                })
                .await;
        }
    }

    /// Reads an answer, keeping its bytes to forward ([`Message::parse_forwardable`]).
    fn parse(&self, bytes: bytes::Bytes) -> Result<Message, String> {
        Message::parse_forwardable(bytes, self.spec.limits).map_err(|e| e.to_string())
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
}
