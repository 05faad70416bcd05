//! A client session: who opened it, how the client introduced itself, its own
//! upstream connections (one child per session by default, T3), and the
//! bookkeeping that lets server-initiated requests find their way back.
pub(crate) mod sink;

use std::{
    collections::HashMap,
    sync::{
        Arc, Mutex, Weak,
        atomic::{AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

use portcullis_core::{Principal, ServerName};
use portcullis_mcp::{Era, ErrorCode, Message, MessageKind, error_response};
use serde_json::{Value, json};

use crate::{
    relay::{Connected, hello::ClientHello, upstream::ServerMessageRoute},
    session::sink::{ClientSink, IdKey, id_key},
    stages::route::Namespacer,
};

/// Most server-initiated requests that may wait for one client's answer (T23).
const MAX_SERVER_REQUESTS: usize = 64;
/// How long a server-initiated request waits for the client before it is forgotten.
const SERVER_REQUEST_TTL: Duration = Duration::from_secs(600);

/// A request a server sent the client, waiting for the client's answer.
struct ServerRequest {
    server: ServerName,
    /// The server's own id, restored on the client's answer.
    original: Value,
    at: Instant,
}

/// One client session (legacy: opened by `initialize`; modern: one per principal).
pub struct Session {
    pub id: String,
    pub principal: Principal,
    pub hello: ClientHello,
    pub sink: ClientSink,
    namespacer: Namespacer,
    upstreams: Mutex<HashMap<ServerName, Connected>>,
    /// Serialises connecting, so two requests never start two children for one server.
    pub(crate) connecting: tokio::sync::Mutex<()>,
    /// Server-initiated requests waiting for the client's answer, by the id the client saw.
    server_requests: Mutex<HashMap<IdKey, ServerRequest>>,
    next_server_request: AtomicU64,
    /// Requests the gateway itself sent the client (an approval asked of the user), by id.
    gateway_requests: Mutex<HashMap<IdKey, tokio::sync::oneshot::Sender<Message>>>,
    last_used: Mutex<Instant>,
}

impl Session {
    pub fn new(principal: Principal, hello: ClientHello, namespacer: Namespacer) -> Arc<Self> {
        Arc::new(Self {
            id: new_session_id(),
            principal,
            hello,
            sink: ClientSink::default(),
            namespacer,
            upstreams: Mutex::new(HashMap::new()),
            connecting: tokio::sync::Mutex::new(()),
            server_requests: Mutex::new(HashMap::new()),
            next_server_request: AtomicU64::new(1),
            gateway_requests: Mutex::new(HashMap::new()),
            last_used: Mutex::new(Instant::now()),
        })
    }

    /// Sends the client a request of the gateway's own (e.g. `elicitation/create`) on the
    /// stream of its request `related`; the receiver gets the client's answer. `None`: the
    /// client's backlog is full. Dropping the receiver forgets the request.
    pub fn ask_client(
        &self,
        method: &str,
        params: Value,
        related: &Value,
    ) -> Option<tokio::sync::oneshot::Receiver<Message>> {
        let n = self.next_server_request.fetch_add(1, Ordering::Relaxed);
        let id = json!(format!("pg-{n}"));
        let (tx, rx) = tokio::sync::oneshot::channel();
        self.lock_gateway_requests().retain(|_, waiting| !waiting.is_closed());
        self.lock_gateway_requests().insert(id_key(&id), tx);
        let request = json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params});
        if self.sink.deliver(request, Some(related)).is_err() {
            self.lock_gateway_requests().remove(&id_key(&id));
            return None;
        }
        Some(rx)
    }

    fn lock_gateway_requests(
        &self,
    ) -> std::sync::MutexGuard<'_, HashMap<IdKey, tokio::sync::oneshot::Sender<Message>>> {
        self.gateway_requests
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    pub fn era(&self) -> Era {
        self.hello.era()
    }

    pub fn touch(&self) {
        if let Ok(mut t) = self.last_used.lock() {
            *t = Instant::now();
        }
    }

    pub fn idle_for(&self) -> std::time::Duration {
        self.last_used.lock().map(|t| t.elapsed()).unwrap_or_default()
    }

    pub fn upstream(&self, server: &ServerName) -> Option<Connected> {
        self.lock_upstreams().get(server).cloned()
    }

    pub fn upstreams(&self) -> Vec<(ServerName, Connected)> {
        let mut all: Vec<_> = self
            .lock_upstreams()
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        all.sort_by(|a, b| a.0.cmp(&b.0));
        all
    }

    pub fn insert_upstream(&self, server: ServerName, connected: Connected) {
        self.lock_upstreams().insert(server, connected);
    }

    /// Ends the session: its own children are stopped when the last handle drops, and
    /// requests its servers sent the client are forgotten.
    pub fn close(&self) {
        self.lock_upstreams().clear();
        self.lock_requests().clear();
        self.lock_gateway_requests().clear();
    }

    pub fn as_route(self: &Arc<Self>) -> Weak<dyn ServerMessageRoute> {
        let weak: Weak<Session> = Arc::downgrade(self);
        weak
    }

    /// Sends the client's answer to a server-initiated request back to that server.
    pub async fn answer_server_request(&self, mut msg: Message) -> bool {
        let Some(id) = msg.id() else { return false };
        if let Some(waiting) = self.lock_gateway_requests().remove(&id_key(id)) {
            return waiting.send(msg).is_ok();
        }
        let entry = self.lock_requests().remove(&id_key(id));
        let Some(ServerRequest { server, original, .. }) = entry else {
            return false;
        };
        msg.replace_id(original);
        match self.upstream(&server) {
            Some(c) => c.peer.send(msg).await.is_ok(),
            None => false,
        }
    }

    /// Maps the client's id of a pending call to `(server, upstream id)`, for cancellation.
    pub fn pending_call(&self, client_id: &Value) -> Option<(Connected, u64)> {
        self.upstreams().into_iter().find_map(|(_, c)| {
            let id = c.peer.upstream_id_of(client_id)?;
            Some((c, id))
        })
    }

    fn lock_upstreams(&self) -> std::sync::MutexGuard<'_, HashMap<ServerName, Connected>> {
        self.upstreams.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn lock_requests(&self) -> std::sync::MutexGuard<'_, HashMap<IdKey, ServerRequest>> {
        self.server_requests
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

impl ServerMessageRoute for Session {
    fn deliver(&self, server: &ServerName, mut msg: Message, related: Option<Value>) {
        let mut gateway_id = None;
        if msg.kind() == MessageKind::Request {
            if self.era() == Era::Modern {
                // Stateless clients take no server requests on this hop (MRTR bridging is
                // not implemented): answer at once so the server does not wait.
                let text = "the client uses protocol 2026-07-28 and cannot take server requests through the gateway";
                self.refuse_server_request(server, msg.id(), text);
                return;
            }
            if let Err(text) = self.admit_server_request() {
                tracing::warn!(session = %self.id, server = %server, "server request refused: {text}");
                self.refuse_server_request(server, msg.id(), &text);
                return;
            }
            let n = self.next_server_request.fetch_add(1, Ordering::Relaxed);
            let id = json!(format!("pc-{n}"));
            let original = msg.replace_id(id.clone()).unwrap_or(Value::Null);
            self.lock_requests().insert(
                id_key(&id),
                ServerRequest {
                    server: server.clone(),
                    original,
                    at: Instant::now(),
                },
            );
            gateway_id = Some(id);
        }
        if msg.method() == Some("notifications/cancelled") {
            self.rewrite_cancelled(server, &mut msg);
        }
        self.namespacer.outbound_notification(server, &mut msg);
        if let Err(full) = self.sink.deliver(msg.into_value(), related.as_ref()) {
            // T23: the client is not reading; the message is dropped, and a server request
            // is answered for the client so the server does not wait for it.
            tracing::warn!(session = %self.id, server = %server, "server message dropped: {full}");
            if let Some(id) = gateway_id
                && let Some(request) = self.lock_requests().remove(&id_key(&id))
            {
                self.refuse_server_request(server, Some(&request.original), &full.to_string());
            }
        }
    }
}

impl Session {
    /// Whether one more server-initiated request may wait for the client (T23): unanswered
    /// requests expire after [`SERVER_REQUEST_TTL`] and at most [`MAX_SERVER_REQUESTS`] wait.
    fn admit_server_request(&self) -> Result<(), String> {
        let mut requests = self.lock_requests();
        requests.retain(|_, r| r.at.elapsed() < SERVER_REQUEST_TTL);
        if requests.len() >= MAX_SERVER_REQUESTS {
            return Err(format!(
                "{MAX_SERVER_REQUESTS} requests to the client are already waiting for an answer"
            ));
        }
        Ok(())
    }

    /// Answers a server's request (its own id) for the client with an error, so the server
    /// does not wait.
    fn refuse_server_request(&self, server: &ServerName, id: Option<&Value>, text: &str) {
        let reply = error_response(id, ErrorCode::MethodNotFound, text, None);
        if let (Ok(reply), Some(c)) = (Message::from_value(reply), self.upstream(server)) {
            tokio::spawn(async move {
                let _ = c.peer.send(reply).await;
            });
        }
    }
}

impl Session {
    /// A server cancelling its own request: translate its id to the one the client saw.
    fn rewrite_cancelled(&self, server: &ServerName, msg: &mut Message) {
        let Some(upstream_id) = msg.params().and_then(|p| p.get("requestId")).cloned() else {
            return;
        };
        let requests = self.lock_requests();
        let found = requests
            .iter()
            .find(|(_, r)| &r.server == server && r.original == upstream_id)
            .map(|(key, _)| key.clone());
        drop(requests);
        if let Some(gateway_id) = found.and_then(|key| key.value()) {
            msg.with_params(|p| p.insert("requestId".into(), gateway_id));
        }
    }
}

/// 128 bits from the OS generator, hex-encoded (T3).
fn new_session_id() -> String {
    let bytes: [u8; 16] = rand::random();
    hex::encode(bytes)
}
