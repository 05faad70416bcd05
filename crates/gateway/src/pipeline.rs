//! The per-call path, top to bottom. Every client request passes here:
//!
//! 1. route     — what the method is and which server it is for (namespacing);
//!    attest    — a `tools/call` carries a valid host signature where one is required;
//!    classify  — the tool is pinned by the server's manifest and not held back;
//! 2. authorise — a policy decision made for this call alone; a deny ends here
//!    (recorded first); forwarding needs the `Permit`. Lists are filtered to
//!    what the caller may use;
//! 3. record    — the decision, durably, before anything is forwarded;
//! 4. forward   — to the session's own connection to that server, bridging the
//!    protocol revision when client and server differ;
//! 5. record    — the outcome, durably, before the answer is released; the
//!    answer carries the audit receipt and, for `tools/call`, the gateway's signed
//!    receipt over request, result, decision and log index. A failed write denies the call.
//!
//! Answers are returned as raw JSON: the relay never re-types a message.
use std::{sync::Arc, time::Instant};

use portcullis_attest::{HashedFacts, Receipt, ReceiptError, host::unix_now, sign_hashed_receipt, strip_gateway_meta};
use portcullis_audit::DurableReceipt;
use portcullis_core::ServerName;
use portcullis_mcp::{
    Era, ErrorCode, Message, MethodClass, NotificationClass,
    canonical::canonical_sha256,
    error_response,
    message::response,
    method::ListKind,
    revision::{META_CLIENT_CAPABILITIES, META_CLIENT_INFO, META_PROTOCOL_VERSION},
};
use portcullis_policy::{Arguments, Deny, Permit};
use serde_json::{Map, Value, json};

use crate::{
    authorise::Attested,
    caller::Caller,
    connect::UpstreamEra,
    error::NotificationRefused,
    gateway::Gateway,
    namespace::RouteBy,
    record::{CallFacts, Recorder, Verdict, attach_receipt, new_call_id},
    session::{Connected, Session},
};

/// Most pages fetched from one server when merging lists of several servers.
const MAX_LIST_PAGES: usize = 100;

impl Gateway {
    /// Handles one client request in `session` and returns the JSON-RPC answer.
    pub async fn handle_request(&self, session: &Arc<Session>, caller: &Caller, mut msg: Message) -> Value {
        let id = msg.id().cloned();
        let method = msg.method().unwrap_or_default().to_owned();
        let fail = |code: ErrorCode, text: &str| error_response(id.as_ref(), code, text, None);
        let class = MethodClass::of(&method);
        if session.era() == Era::Modern && MethodClass::removed_in_modern(&method) {
            return fail(
                ErrorCode::MethodNotFound,
                &format!("`{method}` does not exist in protocol 2026-07-28"),
            );
        }
        // The request as the client sent it (before routing rewrites names): what the signed
        // result's receipt covers.
        let request_sha256 = match (class, &self.config.attest.receipts) {
            (MethodClass::CallTool, Some(_)) => msg.params_value().map(canonical_sha256),
            _ => None,
        };
        let route = match class {
            MethodClass::Initialize => {
                return fail(ErrorCode::InvalidRequest, "this session is already initialized");
            }
            MethodClass::Ping => return response(id.unwrap_or(Value::Null), json!({})).into_value(),
            MethodClass::Discover => return self.discover(session, id).await,
            MethodClass::List(kind) if self.namespacer.enabled() => {
                return self.merged_list(session, caller, kind, &msg).await;
            }
            MethodClass::Broadcast => return self.broadcast(session, caller, msg).await,
            MethodClass::Subscribe => match self.namespacer.servers() {
                [server] => Ok(server.clone()),
                _ => {
                    let text = "subscriptions/listen is not relayed across several servers yet";
                    return fail(ErrorCode::MethodNotFound, text);
                }
            },
            MethodClass::List(_) => self.namespacer.route_name("").map(|(server, _)| server),
            MethodClass::CallTool | MethodClass::GetPrompt => self.namespacer.route_request(&mut msg, RouteBy::Name),
            MethodClass::Resource => self.namespacer.route_request(&mut msg, RouteBy::Uri),
            MethodClass::Complete => self.namespacer.route_request(&mut msg, RouteBy::Ref),
            MethodClass::Other if self.namespacer.enabled() => self.namespacer.route_request(&mut msg, RouteBy::Name),
            MethodClass::Other => self.namespacer.route_name("").map(|(server, _)| server),
        };
        let server = match route {
            Ok(server) => server,
            Err(e) => {
                let code = match class {
                    MethodClass::Other => ErrorCode::MethodNotFound,
                    _ => ErrorCode::InvalidParams,
                };
                return fail(code, &e.to_string());
            }
        };
        if !class.acts() {
            let mut answer = self.forward(session, &server, msg).await;
            if let (MethodClass::List(kind), Some(config)) = (class, self.servers.get(&server))
                && let Some(result) = answer.get_mut("result")
            {
                if kind == ListKind::Tools {
                    self.screen_tools(session, &server, result).await;
                }
                self.authoriser.filter_list(&caller.facts(), config, kind, result);
            }
            return answer;
        }
        self.act(session, caller, class, &server, msg, request_sha256).await
    }

    /// The acting path for one server: every method that reads or changes server state
    /// (T21) is attested and classified (`tools/call`), decided, recorded, forwarded and
    /// recorded again.
    async fn act(
        &self,
        session: &Arc<Session>,
        caller: &Caller,
        class: MethodClass,
        server: &ServerName,
        mut msg: Message,
        request_sha256: Option<[u8; 32]>,
    ) -> Value {
        let id = msg.id().cloned();
        let fail = |code: ErrorCode, text: &str| error_response(id.as_ref(), code, text, None);
        let server = server.clone();
        let Some(config) = self.servers.get(&server) else {
            return fail(
                ErrorCode::InvalidParams,
                &format!("server `{server}` is not configured"),
            );
        };
        let mut attested = Attested::default();
        if matches!(class, MethodClass::CallTool) {
            let tool = msg.param_str("name").unwrap_or_default().to_owned();
            // attest: the host's signature over this exact call.
            match self
                .config
                .attest
                .check_call(&caller.principal, server.as_str(), &tool, &mut msg)
            {
                Ok(verified) => attested.signed = verified.is_some(),
                Err(e) => {
                    let call = call_facts_before_policy(session, &server, &msg, &self.recorder);
                    return self
                        .deny_before_policy(id.as_ref(), &call, "attest", e.to_string())
                        .await;
                }
            }
            // classify: the tool is pinned (if the server has a manifest) and not held back.
            match self.classify_call(session, &server, &tool).await {
                Ok(findings) => attested.findings = findings,
                Err(reason) => {
                    let call = call_facts_before_policy(session, &server, &msg, &self.recorder);
                    return self.deny_before_policy(id.as_ref(), &call, "classify", reason).await;
                }
            }
        }
        // authorise: a decision made for this call alone (never cached).
        let (request, outcome) = self.authoriser.decide_call(caller.facts(), config, attested, &mut msg);
        let call = call_facts(session, &server, &msg, &request.arguments, &self.recorder);
        let permit = match outcome {
            Ok(permit) => permit,
            Err(deny) => {
                let verdict = Verdict {
                    allowed: false,
                    reason: denial_reason(&deny),
                    decision_id: deny.decision_id().to_owned(),
                    policy_hash: deny.policy_hash().to_owned(),
                };
                tracing::info!(server = %server, method = %request.method, target = %request.target, decision = %deny.decision_id(), "call denied by policy");
                return self.deny(id.as_ref(), &call, &verdict, deny.client_message()).await;
            }
        };
        // record (decision): durable before anything is forwarded.
        let verdict = Verdict {
            allowed: true,
            reason: permit.reasons().join(","),
            decision_id: permit.decision_id().to_owned(),
            policy_hash: permit.policy_hash().to_owned(),
        };
        if let Err(e) = self.recorder.decision(&call, &verdict).await {
            return fail(ErrorCode::Denied, &e.to_string());
        }
        let started = Instant::now();
        let mut answer = self.forward_permitted(permit, class, session, &server, msg).await;
        // filter: only the gateway writes receipts into a result.
        if let Some(result) = answer.get_mut("result")
            && strip_gateway_meta(result)
        {
            tracing::warn!(server = %server, "the server's result carried gateway receipt entries; removed");
        }
        // record (outcome): durable before the answer is released; then the result is signed.
        let recorded = match self.recorder.outcome(&call, &answer, started.elapsed()).await {
            Ok(recorded) => recorded,
            Err(e) => return fail(ErrorCode::Denied, &e.to_string()),
        };
        if let Some(receipt) = &recorded.receipt {
            let signed = match self.sign_result(request_sha256, recorded.result_sha256, &verdict.decision_id, receipt) {
                Ok(signed) => signed,
                Err(e) => return fail(ErrorCode::Denied, &format!("the result could not be signed: {e}")),
            };
            attach_receipt(&mut answer, &call.call_id, receipt, signed.as_ref());
        }
        if call.method == "resources/read"
            && let Some(result) = answer.get_mut("result")
        {
            self.namespacer.outbound_read_result(&server, result);
        }
        answer
    }

    /// Records a deny and answers with it: the deny is durable before the client hears of it.
    async fn deny(&self, id: Option<&Value>, call: &CallFacts, verdict: &Verdict, text: &str) -> Value {
        if let Err(e) = self.recorder.decision(call, verdict).await {
            return error_response(id, ErrorCode::Denied, &e.to_string(), None);
        }
        let text = format!("{text} (decision {})", verdict.decision_id);
        error_response(
            id,
            ErrorCode::Denied,
            &text,
            Some(json!({"decisionId": verdict.decision_id})),
        )
    }

    /// A deny by a stage before authorise (attest, classify), recorded like a policy deny.
    async fn deny_before_policy(&self, id: Option<&Value>, call: &CallFacts, stage: &str, reason: String) -> Value {
        tracing::info!(server = %call.server, target = ?call.target, "call denied by {stage}: {reason}");
        let verdict = Verdict {
            allowed: false,
            reason: format!("{stage}: {reason}"),
            decision_id: new_call_id(),
            policy_hash: String::new(),
        };
        self.deny(id, call, &verdict, &reason).await
    }

    /// The signed receipt for a `tools/call` result, when result signing is on.
    fn sign_result(
        &self,
        request_sha256: Option<[u8; 32]>,
        result_sha256: Option<[u8; 32]>,
        decision_id: &str,
        receipt: &DurableReceipt,
    ) -> Result<Option<Receipt>, ReceiptError> {
        let (Some(key), Some(request_sha256), Some(result_sha256)) =
            (&self.config.attest.receipts, request_sha256, result_sha256)
        else {
            return Ok(None);
        };
        let facts = HashedFacts {
            request_sha256,
            result_sha256,
            decision_id,
            audit_index: receipt.index(),
            time: unix_now(),
        };
        sign_hashed_receipt(&key.key, &key.kid, facts).map(Some)
    }

    /// Forwards a call that acts: only with the permit the policy stage issued for it.
    async fn forward_permitted(
        &self,
        _permit: Permit,
        class: MethodClass,
        session: &Arc<Session>,
        server: &ServerName,
        msg: Message,
    ) -> Value {
        match class {
            MethodClass::Subscribe => self.listen(session, server, msg).await,
            _ => self.forward(session, server, msg).await,
        }
    }

    /// Handles a client notification. Only the notifications a client may send pass
    /// (T21); any other method sent without an id — `tools/call` as a notification would
    /// make a server act with no decision and no record — is refused, logged and recorded.
    pub async fn handle_notification(&self, session: &Arc<Session>, msg: Message) -> Result<(), NotificationRefused> {
        let method = msg.method().unwrap_or_default();
        match NotificationClass::of(method) {
            // The gateway completed each upstream's handshake itself.
            NotificationClass::Initialized => {}
            NotificationClass::Cancelled => {
                let Some(request_id) = msg.params().and_then(|p| p.get("requestId")) else {
                    return Ok(());
                };
                if let Some((c, upstream_id)) = session.pending_call(request_id) {
                    let reason = msg.param_str("reason").unwrap_or("cancelled by the client");
                    c.peer.cancel(upstream_id, reason);
                }
            }
            NotificationClass::Relayed => {
                for (_, c) in session.upstreams() {
                    let _ = c.peer.send(msg.clone()).await;
                }
            }
            NotificationClass::Refused => {
                let refused = NotificationRefused {
                    method: method.chars().take(128).collect(),
                };
                tracing::warn!(session = %session.id, principal = %session.principal.workload, method = %refused.method, "notification refused");
                if let Err(e) = self
                    .recorder
                    .refused_notification(&session.principal, &refused.method, &refused.to_string())
                    .await
                {
                    tracing::error!("the refused notification could not be recorded: {e}");
                }
                return Err(refused);
            }
        }
        Ok(())
    }

    /// Handles a client's answer to a server-initiated request.
    pub async fn handle_response(&self, session: &Arc<Session>, msg: Message) {
        if !session.answer_server_request(msg).await {
            tracing::debug!(session = %session.id, "client answered a request nobody is waiting for");
        }
    }

    /// `subscriptions/listen`, once permitted: relayed to a 2026-07-28 server for as long as
    /// the client keeps it open (no timeout; the client closing the stream cancels it).
    async fn listen(&self, session: &Arc<Session>, server: &ServerName, msg: Message) -> Value {
        let id = msg.id().cloned();
        let connected = match self.ensure_upstream(session, server).await {
            Ok(c) => c,
            Err(e) => return error_response(id.as_ref(), e.code(), &e.to_string(), None),
        };
        if !connected.era.is_modern() {
            let text = "the upstream server speaks a protocol without subscriptions/listen";
            return error_response(id.as_ref(), ErrorCode::MethodNotFound, text, None);
        }
        match connected.peer.call_unbounded(msg, session.as_route()).await {
            Ok(answer) => answer.into_value(),
            Err(e) => error_response(id.as_ref(), e.code(), &e.to_string(), None),
        }
    }

    /// Sends `msg` to `server` for `session` and returns the answer with the client's id.
    async fn forward(&self, session: &Arc<Session>, server: &ServerName, mut msg: Message) -> Value {
        let id = msg.id().cloned();
        let connected = match self.ensure_upstream(session, server).await {
            Ok(c) => c,
            Err(e) => return error_response(id.as_ref(), e.code(), &e.to_string(), None),
        };
        bridge_request(session, &connected, &mut msg);
        let cacheable = matches!(
            msg.method().unwrap_or_default(),
            "tools/list" | "prompts/list" | "resources/list" | "resources/templates/list" | "resources/read"
        );
        match connected.peer.call(msg, session.as_route()).await {
            Ok(mut answer) => {
                bridge_response(session, &connected, cacheable, &mut answer);
                answer.into_value()
            }
            Err(e) => error_response(id.as_ref(), e.code(), &e.to_string(), None),
        }
    }

    async fn discover(&self, session: &Arc<Session>, id: Option<Value>) -> Value {
        let mut eras = Vec::new();
        for server in self.namespacer.servers() {
            match self.ensure_upstream(session, server).await {
                Ok(c) => eras.push(c.era),
                Err(e) => return error_response(id.as_ref(), e.code(), &e.to_string(), None),
            }
        }
        response(id.unwrap_or(Value::Null), self.discover_result(&eras)).into_value()
    }

    /// A listing across several servers: every page of every server, namespaced, in one answer.
    async fn merged_list(&self, session: &Arc<Session>, caller: &Caller, kind: ListKind, msg: &Message) -> Value {
        let id = msg.id().cloned();
        if msg.params().is_some_and(|p| p.contains_key("cursor")) {
            let text = "with several servers the gateway returns complete lists; there is no next page";
            return error_response(id.as_ref(), ErrorCode::InvalidParams, text, None);
        }
        let mut items = Vec::new();
        for server in self.namespacer.servers() {
            let connected = match self.ensure_upstream(session, server).await {
                Ok(c) => c,
                Err(e) => {
                    tracing::warn!(server = %server, "left out of the list: {e}");
                    continue;
                }
            };
            if connected.era.capabilities().get(kind.capability()).is_none() {
                continue;
            }
            match self.list_all(session, &connected, kind, msg).await {
                Ok(got) => {
                    let mut page = json!({ kind.field(): got });
                    if kind == ListKind::Tools {
                        self.screen_tools(session, server, &mut page).await;
                    }
                    if let Some(config) = self.servers.get(server) {
                        self.authoriser.filter_list(&caller.facts(), config, kind, &mut page);
                    }
                    let Value::Array(mut got) = page[kind.field()].take() else {
                        continue;
                    };
                    for item in &mut got {
                        self.namespacer.outbound_item(server, kind, item);
                    }
                    items.extend(got);
                }
                Err(text) => tracing::warn!(server = %server, "left out of the list: {text}"),
            }
        }
        let mut result = Map::new();
        result.insert(kind.field().to_owned(), Value::Array(items));
        if session.era() == Era::Modern {
            result.insert("resultType".into(), json!("complete"));
            result.insert("ttlMs".into(), json!(0));
            result.insert("cacheScope".into(), json!("private"));
        }
        response(id.unwrap_or(Value::Null), Value::Object(result)).into_value()
    }

    pub(crate) async fn list_all(
        &self,
        session: &Arc<Session>,
        connected: &Connected,
        kind: ListKind,
        original: &Message,
    ) -> Result<Vec<Value>, String> {
        let mut items = Vec::new();
        let mut cursor: Option<Value> = None;
        for _ in 0..MAX_LIST_PAGES {
            let mut page = original.clone();
            if let Some(c) = cursor.take() {
                page.with_params(|p| p.insert("cursor".into(), c));
            }
            bridge_request(session, connected, &mut page);
            let answer = connected
                .peer
                .call(page, session.as_route())
                .await
                .map_err(|e| e.to_string())?;
            let result = answer.result().ok_or_else(|| {
                answer
                    .error()
                    .map(Value::to_string)
                    .unwrap_or_else(|| "no result".into())
            })?;
            if let Some(list) = result.get(kind.field()).and_then(Value::as_array) {
                items.extend(list.iter().cloned());
            }
            match result.get("nextCursor") {
                Some(next) if !next.is_null() => cursor = Some(next.clone()),
                _ => return Ok(items),
            }
        }
        Err(format!("more than {MAX_LIST_PAGES} pages"))
    }

    /// `logging/setLevel`: every server gets it, each as its own decided and recorded call
    /// (it changes the server's state); the first deny or error is reported.
    async fn broadcast(&self, session: &Arc<Session>, caller: &Caller, msg: Message) -> Value {
        let id = msg.id().cloned();
        for server in self.namespacer.servers().to_vec() {
            let answer = self
                .act(session, caller, MethodClass::Broadcast, &server, msg.clone(), None)
                .await;
            if answer.get("error").is_some() {
                return answer;
            }
        }
        response(id.unwrap_or(Value::Null), json!({})).into_value()
    }
}

/// Why a call was denied, for the audit record: policy ids and engine errors, never policy text.
fn denial_reason(deny: &Deny) -> String {
    let mut parts: Vec<String> = deny.reasons().to_vec();
    parts.extend(deny.errors().iter().map(|e| format!("error: {e}")));
    if parts.is_empty() {
        parts.push("no permit matched".into());
    }
    parts.join("; ")
}

/// The facts every audit record of this call repeats (after routing: the server's own names).
/// The argument digest is the one the authorise stage computed (arguments are canonicalised once);
/// with the audit log off nothing is digested, and the arguments themselves are copied only
/// when the records capture bodies.
fn call_facts(
    session: &Session,
    server: &ServerName,
    msg: &Message,
    digested: &Arguments,
    recorder: &Recorder,
) -> CallFacts {
    let target = msg
        .param_str("name")
        .or_else(|| msg.param_str("uri"))
        .map(str::to_owned);
    let given = msg.params().and_then(|p| p.get("arguments"));
    let args_sha256 = given.filter(|_| recorder.log().is_some()).map(|_| digested.sha256());
    let arguments = given.filter(|_| recorder.captures_bodies()).cloned();
    CallFacts {
        call_id: new_call_id(),
        principal: session.principal.clone(),
        server: server.clone(),
        method: msg.method().unwrap_or_default().to_owned(),
        target,
        args_sha256,
        arguments,
    }
}

/// [`call_facts`] for a deny before the authorise stage canonicalised the arguments.
fn call_facts_before_policy(session: &Session, server: &ServerName, msg: &Message, recorder: &Recorder) -> CallFacts {
    let arguments = msg.params().and_then(|p| p.get("arguments")).cloned();
    let digested = Arguments::new(arguments.unwrap_or(Value::Null));
    call_facts(session, server, msg, &digested, recorder)
}

/// Adapts a request to the upstream's era: modern upstreams need the client's
/// context in `_meta`; legacy upstreams get the client↔gateway keys removed.
fn bridge_request(session: &Session, connected: &Connected, msg: &mut Message) {
    match (session.era(), connected.era.is_modern()) {
        (Era::Legacy, true) => msg.with_params(|params| {
            let meta = params.entry("_meta").or_insert_with(|| json!({}));
            if let Some(meta) = meta.as_object_mut() {
                for (k, v) in session.hello.modern_meta() {
                    meta.entry(k).or_insert(v);
                }
            }
        }),
        (Era::Modern, false) => {
            let Some(params) = msg.params_mut() else {
                return;
            };
            let now_empty = match params.get_mut("_meta").and_then(Value::as_object_mut) {
                Some(meta) => {
                    for k in [META_PROTOCOL_VERSION, META_CLIENT_CAPABILITIES, META_CLIENT_INFO] {
                        meta.shift_remove(k);
                    }
                    meta.is_empty()
                }
                None => false,
            };
            if now_empty {
                params.shift_remove("_meta");
            }
        }
        _ => {}
    }
}

/// Adapts an answer to the client's era.
fn bridge_response(session: &Session, connected: &Connected, cacheable: bool, answer: &mut Message) {
    match (session.era(), &connected.era) {
        (Era::Modern, UpstreamEra::Legacy { .. }) => {
            if let Some(result) = answer.result_mut().and_then(Value::as_object_mut) {
                result.entry("resultType").or_insert(json!("complete"));
                if cacheable {
                    // 2026-07-28 requires cache hints on these results; results depend on
                    // the caller, so: private, and fresh for no time at all.
                    result.entry("ttlMs").or_insert(json!(0));
                    result.entry("cacheScope").or_insert(json!("private"));
                }
            }
        }
        (Era::Legacy, UpstreamEra::Modern { .. }) => {
            let needs_input = answer
                .result()
                .and_then(|r| r.get("resultType"))
                .and_then(Value::as_str)
                == Some("input_required");
            if needs_input {
                let text = "the upstream asked for more input (2026-07-28 multi round-trip), which the gateway cannot yet bridge to a 2025 client";
                let err = error_response(answer.id(), ErrorCode::UpstreamFailed, text, None);
                if let Ok(m) = Message::from_value(err) {
                    *answer = m;
                }
            }
        }
        _ => {}
    }
}
