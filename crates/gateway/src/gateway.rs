//! The gateway's shared state: configured servers, live sessions, shared
//! children, and the session lifecycle (open, find, reap, close). Every session in the
//! table holds a place in the session limits ([`crate::limits`]), taken before its
//! upstreams are started and given back when it leaves the table.
use std::{
    collections::{BTreeMap, HashMap},
    sync::{Arc, Mutex, Weak},
};

use portcullis_broker::Sweep;
use portcullis_core::{Principal, ServerName};
use portcullis_mcp::{ErrorCode, Message};
use portcullis_transport::CallHeader;
use serde_json::Value;

use crate::{
    config::{GatewayConfig, Isolation, ServerConfig, UpstreamTransport},
    deny::Deny,
    error::UpstreamError,
    limits::{Admitted, LimitExceeded, Limiter, SessionPlace},
    relay::{
        Clearance, Connected, bridge, connect::connect, hello::ClientHello, http_clients::HttpClients,
        upstream::ServerMessageRoute,
    },
    session::Session,
    stages::{
        approve::ApprovalGate,
        authorise::Authoriser,
        classify::{Classifier, Hold},
        receipts::Receipts,
        record::{RecordError, Recorder, RestoreError},
        route::Namespacer,
    },
};

/// A refusal to open or find a session, with the JSON-RPC code to report and the HTTP
/// status it has on the Streamable HTTP front.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{message}")]
pub struct SessionError {
    pub code: ErrorCode,
    pub message: String,
    pub http_status: http::StatusCode,
}

impl SessionError {
    fn limit(limit: LimitExceeded) -> Self {
        Self {
            code: ErrorCode::Overloaded,
            message: limit.to_string(),
            http_status: limit.http_status(),
        }
    }

    fn upstream(e: &UpstreamError) -> Self {
        Self {
            code: e.code(),
            message: e.to_string(),
            http_status: http::StatusCode::BAD_GATEWAY,
        }
    }
}

/// A session in the table, with its place in the session limits.
struct Held {
    session: Arc<Session>,
    _place: SessionPlace,
}

/// The running gateway.
pub struct Gateway {
    pub(crate) config: GatewayConfig,
    pub(crate) servers: BTreeMap<ServerName, ServerConfig>,
    pub(crate) namespacer: Namespacer,
    pub(crate) recorder: Recorder,
    pub(crate) authoriser: Authoriser,
    pub(crate) classifier: Classifier,
    pub(crate) receipts: Receipts,
    pub(crate) approvals: ApprovalGate,
    http: HttpClients,
    limits: Limiter,
    sessions: Mutex<HashMap<String, Held>>,
    stateless: Mutex<HashMap<Principal, Held>>,
    shared: tokio::sync::Mutex<HashMap<ServerName, Connected>>,
    /// Route for shared children's unrelated messages: nobody (they are per-session facts).
    shared_route: Arc<NoRoute>,
    /// Flips to true when the gateway starts shutting down: long-lived streams end.
    stopping: tokio::sync::watch::Sender<bool>,
}

impl Gateway {
    /// A gateway for `config`, recording to `recorder`.
    pub fn new(config: GatewayConfig, recorder: Recorder, authoriser: Authoriser) -> Arc<Self> {
        let servers: BTreeMap<_, _> = config.servers.iter().map(|s| (s.name.clone(), s.clone())).collect();
        let namespacer = Namespacer::new(servers.keys().cloned().collect());
        let http = HttpClients::new(&config.servers);
        let classifier = Classifier::new(config.attest.manifests.clone(), config.attest.scan);
        let receipts = Receipts::new(config.attest.receipts.clone());
        let limits = Limiter::new(config.listen.max_sessions, config.principal_limits);
        let store = config.approvals.shared.clone().unwrap_or_else(|| {
            portcullis_approvals::ApprovalStore::memory(
                config.approvals.pending.clone(),
                config.approvals.break_glass_max_ttl.as_secs(),
            )
        });
        let approvals = ApprovalGate {
            approvers: config.approvals.approvers.clone(),
            request_states: store.request_states(config.approvals.pending.ttl_secs),
            store,
            wait: config.approvals.wait,
        };
        Arc::new(Self {
            config,
            servers,
            namespacer,
            recorder,
            authoriser,
            classifier,
            receipts,
            approvals,
            http,
            limits,
            sessions: Mutex::new(HashMap::new()),
            stateless: Mutex::new(HashMap::new()),
            shared: tokio::sync::Mutex::new(HashMap::new()),
            shared_route: Arc::new(NoRoute),
            stopping: tokio::sync::watch::Sender::new(false),
        })
    }

    /// The policy store in force (for reloads and `policy explain`).
    pub fn policy(&self) -> &Arc<portcullis_policy::PolicyStore> {
        &self.authoriser.store
    }

    /// The audit log, if recording is on.
    pub fn recorder(&self) -> &Recorder {
        &self.recorder
    }

    pub fn config(&self) -> &GatewayConfig {
        &self.config
    }

    /// False while a control the gateway depends on is failing (the audit log).
    pub fn healthy(&self) -> bool {
        self.recorder.healthy()
    }

    /// Admits one request of `principal` past its concurrency and rate limits (T17); the
    /// proof goes with the request to [`Gateway::handle_request`] or
    /// [`Gateway::open_session`] and holds its concurrency place until dropped.
    pub fn admit(&self, principal: &Principal) -> Result<Admitted, Deny> {
        Ok(self.limits.admit(principal)?)
    }

    /// Opens a legacy session for an admitted `initialize` request and answers it.
    ///
    /// The session's place (in all, and its principal's) is taken before any upstream is
    /// started, so concurrent `initialize` requests cannot overshoot the limits while
    /// their handshakes run; a failed or abandoned handshake gives the place back.
    pub async fn open_session(
        &self,
        admitted: Admitted,
        init: &Message,
    ) -> Result<(Arc<Session>, Value), SessionError> {
        let principal = admitted.principal().clone();
        let place = self.limits.reserve_session(&principal).map_err(SessionError::limit)?;
        let (session, result) = self.open_detached_session(principal, init).await?;
        let held = Held {
            session: session.clone(),
            _place: place,
        };
        self.lock_sessions().insert(session.id.clone(), held);
        tracing::info!(session = %session.id, principal = %session.principal, "session opened");
        Ok((session, result))
    }

    /// Opens a session kept by the caller (the stdio front's one session).
    pub async fn open_detached_session(
        &self,
        principal: Principal,
        init: &Message,
    ) -> Result<(Arc<Session>, Value), SessionError> {
        let hello = ClientHello::from_initialize(init);
        let session = Session::new(principal, hello, self.namespacer.clone());
        let connected =
            futures::future::join_all(self.servers.keys().map(|name| self.ensure_upstream(&session, name))).await;
        let mut eras = Vec::new();
        for result in connected {
            let c = result.map_err(|e| SessionError::upstream(&e))?;
            eras.push(c.era);
        }
        let result = bridge::initialize_result(&session.hello, &eras, self.served());
        Ok((session, result))
    }

    /// The session with this id, if it exists and belongs to `principal` (T3).
    pub fn session(&self, id: &str, principal: &Principal) -> Result<Arc<Session>, SessionError> {
        let found = self.lock_sessions().get(id).map(|held| held.session.clone());
        match found {
            Some(s) if &s.principal == principal => {
                s.touch();
                Ok(s)
            }
            Some(_) => {
                tracing::warn!(session = %id, caller = %principal, "session id presented by another principal");
                Err(SessionError {
                    code: ErrorCode::InvalidRequest,
                    message: "this session belongs to another principal".into(),
                    http_status: http::StatusCode::FORBIDDEN,
                })
            }
            None => Err(SessionError {
                code: ErrorCode::InvalidRequest,
                message: "unknown or expired session; send initialize to start a new one".into(),
                http_status: http::StatusCode::NOT_FOUND,
            }),
        }
    }

    /// The stateless (2026-07-28) session of `principal`, created on first use. It holds
    /// its own upstream connections, so it takes a session place like a legacy session.
    pub fn stateless_session(&self, principal: &Principal, msg: &Message) -> Result<Arc<Session>, SessionError> {
        let mut table = self.stateless.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(held) = table.get(principal) {
            held.session.touch();
            return Ok(held.session.clone());
        }
        let place = self.limits.reserve_session(principal).map_err(SessionError::limit)?;
        let session = Session::new(
            principal.clone(),
            ClientHello::from_modern_request(msg),
            self.namespacer.clone(),
        );
        let held = Held {
            session: session.clone(),
            _place: place,
        };
        table.insert(principal.clone(), held);
        Ok(session)
    }

    /// A stateless session kept by the caller (the stdio front with a 2026-07-28 client).
    pub fn detached_stateless_session(&self, principal: Principal, msg: &Message) -> Arc<Session> {
        Session::new(
            principal,
            ClientHello::from_modern_request(msg),
            self.namespacer.clone(),
        )
    }

    pub fn close_session(&self, id: &str) -> bool {
        let removed = self.lock_sessions().remove(id);
        if let Some(held) = &removed {
            held.session.close();
            self.end_session_credentials(&held.session.id);
            tracing::info!(session = %id, "session closed");
        }
        removed.is_some()
    }

    /// Releases a closed session's per-session credentials (database roles), in the
    /// background; what fails is left to the sweeper (the roles expire anyway).
    fn end_session_credentials(&self, id: &str) {
        if let Some(broker) = self.config.credentials.broker.clone()
            && let Ok(runtime) = tokio::runtime::Handle::try_current()
        {
            let id = id.to_owned();
            runtime.spawn(async move { broker.end_session(&id).await });
        }
    }

    /// Sessions held now: legacy ones and principals' stateless ones.
    pub fn session_count(&self) -> usize {
        self.limits.sessions_held()
    }

    /// Closes sessions idle for longer than the configured timeout.
    pub fn reap_idle(&self) {
        let limit = self.config.listen.session_idle_timeout;
        let idle: Vec<String> = self
            .lock_sessions()
            .iter()
            .filter(|(_, held)| held.session.idle_for() > limit && !held.session.sink.has_general())
            .map(|(id, _)| id.clone())
            .collect();
        for id in idle {
            self.close_session(&id);
        }
        let mut stateless = self.stateless.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let mut ended = Vec::new();
        stateless.retain(|_, held| {
            let keep = held.session.idle_for() <= limit;
            if !keep {
                ended.push(held.session.id.clone());
            }
            keep
        });
        drop(stateless);
        for id in ended {
            self.end_session_credentials(&id);
        }
        self.limits.prune();
    }

    /// Starts shutting down: long-lived streams (GET) close so in-flight calls can drain.
    pub fn begin_shutdown(&self) {
        self.stopping.send_replace(true);
    }

    /// Completes once shutdown has begun.
    pub fn stopping(&self) -> tokio::sync::watch::Receiver<bool> {
        self.stopping.subscribe()
    }

    /// Closes everything: children get EOF on stdin and are stopped.
    pub async fn shutdown(&self) {
        let all: Vec<Held> = self.lock_sessions().drain().map(|(_, held)| held).collect();
        for held in all {
            held.session.close();
            if let Some(broker) = &self.config.credentials.broker {
                broker.end_session(&held.session.id).await;
            }
        }
        self.stateless
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clear();
        self.shared.lock().await.clear();
        if let Some(log) = self.recorder.log() {
            match log.checkpoint_now().await {
                Ok(c) => tracing::info!(size = c.checkpoint.size, "audit log: final checkpoint written"),
                Err(e) => tracing::error!("audit log: final checkpoint failed: {e}"),
            }
        }
    }

    /// The session's connection to `server`, starting it when needed.
    ///
    /// Legacy sessions connect everything at `initialize` and never reconnect (the
    /// server's session state would be lost); stateless sessions reconnect freely.
    pub async fn ensure_upstream(
        &self,
        session: &Arc<Session>,
        server: &ServerName,
    ) -> Result<Connected, UpstreamError> {
        if let Some(c) = session.upstream(server) {
            let reconnect = !c.peer.is_alive() && session.era() == portcullis_mcp::Era::Modern;
            if !reconnect {
                return Ok(c);
            }
        }
        // Boxed: connecting (the handshake, a shared upstream's lock, a child's start) is
        // a future of some 12 KiB that a call on a live connection should not carry.
        Box::pin(self.connect_upstream(session, server)).await
    }

    /// [`Self::ensure_upstream`] when the session has no live connection to `server`.
    async fn connect_upstream(&self, session: &Arc<Session>, server: &ServerName) -> Result<Connected, UpstreamError> {
        let _one_at_a_time = session.connecting.lock().await;
        if let Some(c) = session.upstream(server).filter(|c| c.peer.is_alive()) {
            return Ok(c);
        }
        let config = self.servers.get(server).ok_or_else(|| UpstreamError::Start {
            server: server.to_string(),
            reason: "not configured".into(),
        })?;
        let connected = match config.isolation {
            Isolation::Shared => self.shared_upstream(config).await?,
            Isolation::PerSession => {
                self.check_transport(config).await?;
                let (peer, era) = connect(
                    config,
                    &session.hello,
                    self.config.limits,
                    &self.http,
                    session.as_route(),
                )
                .await?;
                Connected::new(peer, era)
            }
        };
        session.insert_upstream(server.clone(), connected.clone());
        Ok(connected)
    }

    async fn shared_upstream(&self, config: &ServerConfig) -> Result<Connected, UpstreamError> {
        let mut shared = self.shared.lock().await;
        if let Some(c) = shared.get(&config.name).filter(|c| c.peer.is_alive()) {
            return Ok(c.clone());
        }
        let route: std::sync::Weak<dyn ServerMessageRoute> = {
            let weak: std::sync::Weak<NoRoute> = Arc::downgrade(&self.shared_route);
            weak
        };
        self.check_transport(config).await?;
        let (peer, era) = connect(config, &ClientHello::gateway(), self.config.limits, &self.http, route).await?;
        let c = Connected::new(peer, era);
        shared.insert(config.name.clone(), c.clone());
        Ok(c)
    }

    /// Restores the replay cache of host signatures from the audit log (T13): the signatures
    /// the calls recorded within the replay horizon consumed are remembered again, and the
    /// verifier's start-time guard is lifted. Returns how many were restored; `None` when
    /// there is no verifier or no log (the guard then stays: signatures issued before the
    /// start plus the allowed skew are refused).
    pub async fn restore_replay_cache(&self) -> Result<Option<usize>, RestoreError> {
        let (Some(verifier), Some(log)) = (&self.config.attest.verifier, self.recorder.log()) else {
            return Ok(None);
        };
        let now = portcullis_attest::host::unix_now();
        let horizon = verifier.replay_horizon_secs();
        let since = i64::try_from(now.saturating_sub(horizon)).unwrap_or(i64::MAX);
        let consumed = crate::stages::record::consumed_signatures(log, since).await?;
        let restored = verifier
            .restore(consumed, now)
            .map_err(|e| RestoreError::new(format!("the replay cache cannot hold them: {e}")))?;
        Ok(Some(restored))
    }

    /// The configured servers, for the handshake answers that merge them.
    pub(crate) fn served(&self) -> bridge::Servers<'_> {
        bridge::Servers {
            names: self.namespacer.servers(),
            namespaced: self.namespacer.enabled(),
        }
    }

    /// Sends `msg` to `server` for `session` (starting the connection when needed) and
    /// returns the answer with the client's id, bridged to the client's era. The clearance
    /// is the proof the request may go: a `Permit`, or a non-acting method.
    pub(crate) async fn exchange(
        &self,
        clearance: Clearance,
        session: &Arc<Session>,
        server: &ServerName,
        msg: Message,
    ) -> Message {
        self.exchange_with(clearance, session, server, msg, None).await
    }

    /// [`Self::exchange`], with the call's credential header on this request alone.
    pub(crate) async fn exchange_with(
        &self,
        clearance: Clearance,
        session: &Arc<Session>,
        server: &ServerName,
        msg: Message,
        header: Option<CallHeader>,
    ) -> Message {
        let id = msg.id().cloned();
        if let Clearance::Permitted(permit) = &clearance {
            tracing::trace!(server = %server, decision = %permit.decision_id(), "forwarding a permitted call");
        }
        let connected = match self.ensure_upstream(session, server).await {
            Ok(c) => c,
            Err(e) => return portcullis_mcp::message::error(id.as_ref(), e.code(), &e.to_string()),
        };
        Self::call_on(&connected, session, msg, header.as_ref()).await
    }

    /// Sends `msg` on `connected` for `session`, bridging protocol eras both ways.
    async fn call_on(
        connected: &Connected,
        session: &Arc<Session>,
        mut msg: Message,
        header: Option<&CallHeader>,
    ) -> Message {
        let id = msg.id().cloned();
        bridge::bridge_request(&session.hello, &connected.era, &mut msg);
        let cacheable = bridge::cacheable(msg.method().unwrap_or_default());
        let answered = match header {
            None => connected.peer.call(msg, session.as_route()).await,
            Some(header) => connected.peer.call_with_header(msg, session.as_route(), header).await,
        };
        match answered {
            Ok(mut answer) => {
                bridge::bridge_response(session.era(), &connected.era, cacheable, &mut answer);
                answer
            }
            Err(e) => portcullis_mcp::message::error(id.as_ref(), e.code(), &e.to_string()),
        }
    }

    /// A permitted call to a `spawn = "per-call"` stdio server: a child started for this
    /// call alone (its executable pin and pinned files checked first, as at every start),
    /// with the server's `env` plus the call's credential, introduced with the session's
    /// handshake, asked the one call, and stopped when the answer is in (dropping the
    /// connection kills the child), so no credential outlives its call.
    pub(crate) async fn exchange_per_call(
        &self,
        clearance: Clearance,
        session: &Arc<Session>,
        config: &ServerConfig,
        msg: Message,
        credential: Option<&portcullis_broker::Lease>,
    ) -> Message {
        let id = msg.id().cloned();
        if let Clearance::Permitted(permit) = &clearance {
            tracing::debug!(server = %config.name, decision = %permit.decision_id(), "starting a child for one call");
        }
        let mut config = config.clone();
        if let (Some((var, value)), UpstreamTransport::Stdio { env, .. }) =
            (credential.and_then(crate::stages::scope::env_of), &mut config.transport)
        {
            env.insert(var, value);
        }
        let started = async {
            self.check_transport(&config).await?;
            connect(
                &config,
                &session.hello,
                self.config.limits,
                &self.http,
                session.as_route(),
            )
            .await
        };
        let connected = match started.await {
            Ok((peer, era)) => Connected::new(peer, era),
            Err(e) => return portcullis_mcp::message::error(id.as_ref(), e.code(), &e.to_string()),
        };
        let answer = Self::call_on(&connected, session, msg, None).await;
        drop(connected);
        answer
    }

    /// `subscriptions/listen`, once permitted: relayed to a 2026-07-28 server for as long as
    /// the client keeps it open (no timeout; the client closing the stream cancels it).
    pub(crate) async fn listen(
        &self,
        clearance: Clearance,
        session: &Arc<Session>,
        server: &ServerName,
        msg: Message,
    ) -> Message {
        let id = msg.id().cloned();
        let connected = match self.ensure_upstream(session, server).await {
            Ok(c) => c,
            Err(e) => return portcullis_mcp::message::error(id.as_ref(), e.code(), &e.to_string()),
        };
        if let Clearance::Permitted(permit) = &clearance {
            tracing::debug!(server = %server, decision = %permit.decision_id(), "subscription permitted");
        }
        if !connected.era.is_modern() {
            let text = "the upstream server speaks a protocol without subscriptions/listen";
            return portcullis_mcp::message::error(id.as_ref(), ErrorCode::MethodNotFound, text);
        }
        match connected.peer.call_unbounded(msg, session.as_route()).await {
            Ok(answer) => answer,
            Err(e) => portcullis_mcp::message::error(id.as_ref(), e.code(), &e.to_string()),
        }
    }

    /// Drops what an earlier run of this gateway left behind (database roles under its
    /// prefixes: a crash mid-call), then, every `[broker] sweep_interval_secs`, roles
    /// whose TTL has passed. A sweep that fails is logged and retried at the next
    /// interval; minted roles expire by themselves anyway (`VALID UNTIL`).
    pub async fn start_credential_sweeper(self: &Arc<Self>) {
        let Some(broker) = self.config.credentials.broker.clone() else {
            return;
        };
        match broker.sweep(Sweep::Start).await {
            Ok(0) => {}
            Ok(dropped) => tracing::warn!(dropped, "dropped credentials an earlier run left behind"),
            Err(e) => tracing::warn!("cannot sweep leftover credentials at start (retried every interval): {e}"),
        }
        let every = self.config.credentials.sweep_interval;
        let gateway: Weak<Gateway> = Arc::downgrade(self);
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(every);
            tick.tick().await;
            loop {
                tick.tick().await;
                if gateway.strong_count() == 0 {
                    return;
                }
                match broker.sweep(Sweep::Expired).await {
                    Ok(0) => {}
                    Ok(dropped) => tracing::info!(dropped, "dropped expired credentials"),
                    Err(e) => tracing::warn!("cannot sweep expired credentials: {e}"),
                }
            }
        });
    }

    /// Checks `config`'s transport against its pin before starting it; a refusal is recorded.
    async fn check_transport(&self, config: &ServerConfig) -> Result<(), UpstreamError> {
        let Err(reason) = self.classifier.check_transport(config) else {
            return Ok(());
        };
        tracing::error!(server = %config.name, "refusing to start the server: {reason}");
        let hold = Hold {
            tool: None,
            reason: format!("server not started: {reason}"),
            listed: None,
            pinned: None,
        };
        if let Err(e) = self.recorder.pin_drift(&config.name, &hold).await {
            tracing::error!(server = %config.name, "the refusal could not be recorded: {e}");
        }
        Err(UpstreamError::Start {
            server: config.name.to_string(),
            reason,
        })
    }

    /// Records the classify stage's holds not recorded before, and logs them.
    pub(crate) async fn record_holds(&self, server: &ServerName, holds: Vec<Hold>) -> Result<(), RecordError> {
        for hold in self.classifier.unrecorded(server, holds) {
            tracing::warn!(server = %server, tool = ?hold.tool, "tool held back: {}", hold.reason);
            self.recorder.pin_drift(server, &hold).await?;
        }
        Ok(())
    }

    fn lock_sessions(&self) -> std::sync::MutexGuard<'_, HashMap<String, Held>> {
        self.sessions.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// Shared children serve many sessions; their unrelated messages have no single owner.
struct NoRoute;

impl ServerMessageRoute for NoRoute {
    fn deliver(&self, server: &ServerName, msg: Message, _related: Option<Value>) {
        tracing::debug!(server = %server, method = ?msg.method(), "shared server message with no owner dropped");
    }
}
