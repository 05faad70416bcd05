//! One connected upstream server as a JSON-RPC peer: the gateway's requests get
//! fresh ids (clients of one shared child can never collide), answers are
//! matched back and given the client's id again, and everything the server
//! starts on its own is handed to the session that owns the related call.
//!
//! Progress tokens are rewritten like ids: a request's `_meta.progressToken` goes to the
//! server as the gateway's id of that request, and a progress notification is routed by
//! that token alone and handed back with the client's own token (T3: two sessions on a
//! shared child may choose the same token).
//!
//! A server that exits, closes, times out or writes garbage fails its pending
//! calls with a clean JSON-RPC error; nothing waits forever.
use std::{
    collections::HashMap,
    sync::{
        Arc, Mutex, Weak,
        atomic::{AtomicBool, AtomicU64, Ordering},
    },
    time::Duration,
};

use portcullis_core::ServerName;
use portcullis_mcp::{ErrorCode, Message, MessageKind, error_response, message};
use portcullis_transport::{CallHeader, DirectRequests, Link, LinkEvent, LinkGuard};
use serde_json::{Value, json};
use tokio::sync::{mpsc, oneshot};

use crate::error::UpstreamError;

/// `_meta` key naming the `subscriptions/listen` request a notification belongs to.
const SUBSCRIPTION_ID: &str = "io.modelcontextprotocol/subscriptionId";

/// Where messages a server starts on its own (requests, notifications) go.
pub trait ServerMessageRoute: Send + Sync {
    /// `related` is the client's id of the call the message belongs to, if known.
    fn deliver(&self, server: &ServerName, msg: Message, related: Option<Value>);
}

struct Pending {
    answer: oneshot::Sender<Result<Message, UpstreamError>>,
    client_id: Value,
    /// The client's own progress token; the server saw the request's gateway id instead.
    progress_token: Option<Value>,
    owner: Weak<dyn ServerMessageRoute>,
}

/// How the server stays reachable; stdio garbage is fatal, HTTP garbage is per request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LinkKind {
    Stdio,
    Http,
}

/// A live connection to one server.
pub struct UpstreamPeer {
    server: ServerName,
    kind: LinkKind,
    tx: mpsc::Sender<Message>,
    /// HTTP: requests are posted from the caller's task and a JSON answer comes straight back.
    direct: Option<DirectRequests>,
    pending: Mutex<HashMap<u64, Pending>>,
    next_id: AtomicU64,
    /// One child serves every session (`shared = true`): a server message that names no
    /// call is never guessed to belong to the only call in flight.
    shared: bool,
    alive: AtomicBool,
    closed_reason: Mutex<Option<String>>,
    timeout: Duration,
    default_route: Mutex<Option<Weak<dyn ServerMessageRoute>>>,
    /// Counts `notifications/tools/list_changed` from the server: the classify stage
    /// re-lists the tools when it differs from the count its pins were checked at.
    tools_changed: AtomicU64,
    _guard: LinkGuard,
}

impl UpstreamPeer {
    /// Wraps `link` and starts reading from it. `shared`: the connection serves several
    /// sessions.
    pub fn start(server: ServerName, kind: LinkKind, link: Link, timeout: Duration, shared: bool) -> Arc<Self> {
        let Link {
            tx,
            rx,
            guard,
            direct,
            handler,
        } = link;
        let peer = Arc::new(Self {
            server,
            kind,
            tx,
            direct,
            pending: Mutex::new(HashMap::new()),
            next_id: AtomicU64::new(1),
            shared,
            alive: AtomicBool::new(true),
            closed_reason: Mutex::new(None),
            timeout,
            default_route: Mutex::new(None),
            tools_changed: AtomicU64::new(0),
            _guard: guard,
        });
        // Events read before the handler is set (or from a transport without one) come
        // through the pump; stdio's later ones are handled on its reader's task, so an
        // answer goes straight from the reader to the waiting call.
        tokio::spawn(pump(Arc::downgrade(&peer), rx));
        if let Some(slot) = handler {
            let weak = Arc::downgrade(&peer);
            let _ = slot.set(Arc::new(move |event| {
                weak.upgrade().is_some_and(|peer| peer.on_event(event))
            }));
        }
        peer
    }

    pub fn server(&self) -> &ServerName {
        &self.server
    }

    pub fn is_alive(&self) -> bool {
        self.alive.load(Ordering::Acquire)
    }

    /// How many times the server announced that its tool list changed.
    pub fn tools_changed(&self) -> u64 {
        self.tools_changed.load(Ordering::Acquire)
    }

    /// Sets where unrelated server messages (list_changed, logging) go.
    pub fn set_default_route(&self, route: Weak<dyn ServerMessageRoute>) {
        if let Ok(mut slot) = self.default_route.lock() {
            *slot = Some(route);
        }
    }

    /// Sends a request and waits (at most the server's timeout) for its answer,
    /// which carries the client's id again.
    pub async fn call(&self, msg: Message, owner: Weak<dyn ServerMessageRoute>) -> Result<Message, UpstreamError> {
        self.call_within(msg, owner, Some(self.timeout), None).await
    }

    /// [`Self::call`] with a header on this request alone (a per-call credential). A
    /// transport that cannot carry it (stdio) fails the call: it is never sent without it.
    pub async fn call_with_header(
        &self,
        msg: Message,
        owner: Weak<dyn ServerMessageRoute>,
        header: &CallHeader,
    ) -> Result<Message, UpstreamError> {
        self.call_within(msg, owner, Some(self.timeout), Some(header)).await
    }

    /// Like [`Self::call`] but without a timeout: for streams the client ends itself.
    pub async fn call_unbounded(
        &self,
        msg: Message,
        owner: Weak<dyn ServerMessageRoute>,
    ) -> Result<Message, UpstreamError> {
        self.call_within(msg, owner, None, None).await
    }

    async fn call_within(
        &self,
        mut msg: Message,
        owner: Weak<dyn ServerMessageRoute>,
        limit: Option<Duration>,
        header: Option<&CallHeader>,
    ) -> Result<Message, UpstreamError> {
        if !self.is_alive() {
            return Err(self.closed_error());
        }
        let is_request = msg.kind() == MessageKind::Request && msg.method() != Some("initialize");
        if header.is_some() && (self.direct.is_none() || !is_request) {
            return Err(UpstreamError::Closed {
                server: self.server.to_string(),
                reason: "its transport cannot carry the call's credential header; the call was not sent".into(),
            });
        }
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let client_id = msg.replace_id(json!(id)).unwrap_or(Value::Null);
        let progress_token = rewrite_progress_token(&mut msg, json!(id));
        let (answer, wait) = oneshot::channel();
        self.lock_pending().insert(
            id,
            Pending {
                answer,
                client_id: client_id.clone(),
                progress_token,
                owner,
            },
        );
        let mut cancel_guard = CancelOnDrop {
            peer: self,
            id,
            armed: true,
        };
        let direct = self
            .direct
            .as_ref()
            .filter(|_| msg.kind() == MessageKind::Request && msg.method() != Some("initialize"));
        let exchange = async {
            match direct {
                // The hot path: posted from this task; a JSON answer comes straight back.
                Some(direct) => {
                    let answered = match header {
                        None => direct.request(msg).await,
                        Some(header) => match direct.request_with_header(msg, header).await {
                            Ok(answered) => answered,
                            Err(_) => return Exchanged::NotSent,
                        },
                    };
                    if let Some(answer) = answered {
                        let ours = answer.id().and_then(Value::as_u64) == Some(id);
                        if ours && self.lock_pending().remove(&id).is_some() {
                            return Exchanged::Answer(Ok(answer));
                        }
                        self.on_message(answer, None);
                    }
                }
                None => {
                    if self.tx.send(msg).await.is_err() {
                        return Exchanged::NotSent;
                    }
                }
            }
            // Answers that come another way (SSE streams, failures) arrive through the pump.
            match wait.await {
                Ok(answer) => Exchanged::Answer(answer),
                Err(_) => Exchanged::Dropped,
            }
        };
        let outcome = match limit {
            Some(limit) => tokio::time::timeout(limit, exchange).await.ok(),
            None => Some(exchange.await),
        };
        cancel_guard.armed = false;
        match outcome {
            Some(Exchanged::Answer(Ok(mut answer))) => {
                answer.replace_id(client_id);
                Ok(answer)
            }
            Some(Exchanged::Answer(Err(e))) => Err(e),
            Some(Exchanged::NotSent) => {
                self.lock_pending().remove(&id);
                Err(self.closed_error())
            }
            Some(Exchanged::Dropped) => Err(self.closed_error()),
            None => {
                self.cancel(id, "timed out in the gateway");
                Err(UpstreamError::Timeout {
                    server: self.server.to_string(),
                    after: self.timeout,
                })
            }
        }
    }

    /// Sends a notification or a response as-is.
    pub async fn send(&self, msg: Message) -> Result<(), UpstreamError> {
        let msg = match &self.direct {
            Some(direct) => match direct.send(msg).await {
                Ok(true) => return Ok(()),
                Ok(false) => return Err(self.closed_error()),
                Err(msg) => msg,
            },
            None => msg,
        };
        self.tx.send(msg).await.map_err(|_| self.closed_error())
    }

    /// The upstream id of the pending call the client knows as `client_id`.
    pub fn upstream_id_of(&self, client_id: &Value) -> Option<u64> {
        self.lock_pending()
            .iter()
            .find(|(_, p)| &p.client_id == client_id)
            .map(|(id, _)| *id)
    }

    /// Forgets a pending call and tells the server to stop working on it.
    pub fn cancel(&self, id: u64, reason: &str) {
        if self.lock_pending().remove(&id).is_none() {
            return;
        }
        let note = message::notification("notifications/cancelled", json!({"requestId": id, "reason": reason}));
        let _ = self.tx.try_send(note);
    }

    fn closed_error(&self) -> UpstreamError {
        let reason = self
            .closed_reason
            .lock()
            .ok()
            .and_then(|r| r.clone())
            .unwrap_or_else(|| "connection closed".into());
        UpstreamError::Closed {
            server: self.server.to_string(),
            reason,
        }
    }

    fn lock_pending(&self) -> std::sync::MutexGuard<'_, HashMap<u64, Pending>> {
        // A poisoned lock only means another task panicked mid-update; the map is still usable.
        self.pending.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn fail_all(&self, reason: String) {
        self.alive.store(false, Ordering::Release);
        if let Ok(mut slot) = self.closed_reason.lock() {
            slot.get_or_insert(reason.clone());
        }
        let drained: Vec<Pending> = self.lock_pending().drain().map(|(_, p)| p).collect();
        for p in drained {
            let _ = p.answer.send(Err(UpstreamError::Closed {
                server: self.server.to_string(),
                reason: reason.clone(),
            }));
        }
    }

    /// The owner and client id of the call a server-initiated message relates to.
    /// A 2026-07-28 subscription notification names its `subscriptions/listen`
    /// request; that id is the gateway's, so it is rewritten to the client's.
    fn related(
        &self,
        msg: &mut Message,
        hint: Option<&Value>,
    ) -> (Option<Weak<dyn ServerMessageRoute>>, Option<Value>) {
        let pending = self.lock_pending();
        let subscription = msg.meta().and_then(|m| m.get(SUBSCRIPTION_ID)).and_then(Value::as_u64);
        if let Some(p) = subscription.and_then(|id| pending.get(&id)) {
            let client_id = p.client_id.clone();
            let owner = p.owner.clone();
            drop(pending);
            msg.with_params(|params| {
                if let Some(meta) = params.get_mut("_meta").and_then(Value::as_object_mut) {
                    meta.insert(SUBSCRIPTION_ID.to_owned(), client_id.clone());
                }
            });
            return (Some(owner), Some(client_id));
        }
        let by_hint = hint
            .and_then(Value::as_u64)
            .and_then(|id| Some(id).zip(pending.get(&id)));
        // A progress token is the gateway id of the request it was sent with.
        let token = msg
            .params()
            .and_then(|p| p.get("progressToken"))
            .and_then(Value::as_u64);
        let by_token = || {
            let id = token?;
            Some(id).zip(pending.get(&id).filter(|p| p.progress_token.is_some()))
        };
        // With exactly one call in flight on a session's own connection, whatever the
        // server says now belongs to it (never on a shared connection).
        let only = || {
            if pending.len() == 1 && !self.shared {
                pending.iter().next().map(|(id, p)| (*id, p))
            } else {
                None
            }
        };
        let Some((id, p)) = by_hint.or_else(by_token).or_else(only) else {
            return (None, None);
        };
        let (owner, client_id) = (p.owner.clone(), p.client_id.clone());
        // The client gets its own token back, never the gateway's.
        let client_token = p.progress_token.clone().filter(|_| token == Some(id));
        drop(pending);
        if let Some(client_token) = client_token {
            msg.with_params(|params| params.insert("progressToken".into(), client_token));
        }
        (Some(owner), Some(client_id))
    }

    fn on_message(&self, msg: Message, hint: Option<Value>) {
        if msg.kind() == MessageKind::Response {
            let id = msg.id().and_then(Value::as_u64);
            let pending = id.and_then(|id| self.lock_pending().remove(&id));
            match pending {
                Some(p) => {
                    let _ = p.answer.send(Ok(msg));
                }
                None => tracing::debug!(server = %self.server, "answer to no pending call dropped"),
            }
            return;
        }
        if msg.method() == Some("notifications/tools/list_changed") {
            self.tools_changed.fetch_add(1, Ordering::AcqRel);
        }
        let mut msg = msg;
        let (owner, related) = self.related(&mut msg, hint.as_ref());
        let route = owner.or_else(|| self.default_route.lock().ok().and_then(|r| r.clone()));
        match route.and_then(|r| r.upgrade()) {
            Some(route) => route.deliver(&self.server, msg, related),
            None => self.refuse_unroutable(msg),
        }
    }

    /// One event from the link, from the pump or straight from the stdio reader. `false`:
    /// stop reading (the link closed, or stdio framing can no longer be trusted).
    fn on_event(&self, event: LinkEvent) -> bool {
        match event {
            LinkEvent::Message { msg, related } => {
                self.on_message(msg, related);
                true
            }
            LinkEvent::Malformed { reason } => {
                tracing::warn!(server = %self.server, "malformed output from upstream: {reason}");
                if self.kind == LinkKind::Stdio {
                    // Framing can no longer be trusted: fail closed and stop the child.
                    self.fail_all(format!("sent malformed output ({reason})"));
                    return false;
                }
                true
            }
            LinkEvent::Closed { reason } => {
                self.fail_all(reason);
                false
            }
        }
    }

    /// A server request nobody can answer gets an error, so the server is not left waiting.
    fn refuse_unroutable(&self, msg: Message) {
        tracing::debug!(server = %self.server, method = ?msg.method(), "server message with no session to deliver to");
        if msg.kind() == MessageKind::Request {
            let text = "no client session can take this request";
            let reply = error_response(msg.id(), ErrorCode::MethodNotFound, text, None);
            if let Ok(reply) = Message::from_value(reply) {
                let _ = self.tx.try_send(reply);
            }
        }
    }
}

/// Replaces a request's `_meta.progressToken` with `ours`; returns the client's token.
fn rewrite_progress_token(msg: &mut Message, ours: Value) -> Option<Value> {
    msg.meta()?.get("progressToken")?;
    msg.with_params(|params| {
        let meta = params.get_mut("_meta")?.as_object_mut()?;
        meta.insert("progressToken".into(), ours)
    })
}

/// How one request's exchange with the server ended (before the time limit).
enum Exchanged {
    Answer(Result<Message, UpstreamError>),
    /// The link is gone: the request was never sent.
    NotSent,
    /// The link closed before answering.
    Dropped,
}

struct CancelOnDrop<'a> {
    peer: &'a UpstreamPeer,
    id: u64,
    armed: bool,
}

impl Drop for CancelOnDrop<'_> {
    /// The client went away mid-call: tell the server to stop.
    fn drop(&mut self) {
        if self.armed {
            self.peer.cancel(self.id, "the client went away");
        }
    }
}

async fn pump(peer: Weak<UpstreamPeer>, mut rx: mpsc::Receiver<LinkEvent>) {
    while let Some(event) = rx.recv().await {
        let Some(peer) = peer.upgrade() else { return };
        if !peer.on_event(event) {
            return;
        }
    }
    if let Some(peer) = peer.upgrade() {
        peer.fail_all("connection closed".into());
    }
}
