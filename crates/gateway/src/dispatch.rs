//! The dispatcher: where every client message from a front goes first.
//!
//! A request is classified once ([`MethodClass`]); what does not act is handled here —
//! `ping`, `server/discover`, listings (relayed, or merged across several servers, and
//! filtered to what the caller may use) — and everything that reads or changes server
//! state goes through the acting path, [`crate::pipeline`] (`logging/setLevel` once per
//! server). Notifications pass only when the protocol lets a client send them (T21); a
//! client's answers to server-initiated requests go back to the server that asked.
use std::sync::Arc;

use portcullis_core::ServerName;
use portcullis_mcp::{
    Era, Message, MethodClass, NonActing, NotificationClass,
    canonical::canonical_sha256,
    message::{self, response},
    method::ListKind,
};
use serde_json::{Value, json};

use crate::{
    caller::Caller,
    deny::Deny,
    gateway::Gateway,
    limits::Admitted,
    pipeline::CallContext,
    relay::{Clearance, bridge, lists},
    session::Session,
};

impl Gateway {
    /// Handles one client request in `session` and returns the JSON-RPC answer. `admitted`
    /// is the proof that the request passed its principal's concurrency and rate limits
    /// ([`Gateway::admit`]); its concurrency place is held until the answer is ready.
    pub async fn handle_request(
        &self,
        _admitted: Admitted,
        session: &Arc<Session>,
        caller: &Caller,
        msg: Message,
    ) -> Message {
        let id = msg.id().cloned();
        let method = msg.method().unwrap_or_default();
        let class = MethodClass::of(method);
        if session.era() == Era::Modern && MethodClass::removed_in_modern(method) {
            let deny = Deny::RemovedMethod {
                method: method.to_owned(),
            };
            return deny.message(id.as_ref());
        }
        match (class, class.non_acting()) {
            (MethodClass::Initialize, _) => Deny::AlreadyInitialized.message(id.as_ref()),
            (MethodClass::Ping, _) => response(id.unwrap_or(Value::Null), json!({})),
            (MethodClass::Discover, _) => self.discover(session, id).await,
            (MethodClass::List(kind), Some(clearance)) => self.list(clearance, session, caller, kind, msg).await,
            (MethodClass::Broadcast, _) => self.broadcast(session, caller, msg).await,
            _ => {
                // The request as the client sent it (before routing rewrites names): what the
                // signed result's receipt covers.
                let request_sha256 = match (class, &self.config.attest.receipts) {
                    (MethodClass::CallTool, Some(_)) => msg.params_value().map(canonical_sha256),
                    _ => None,
                };
                let cx = CallContext {
                    session,
                    caller,
                    class,
                    to: None,
                    request_sha256,
                };
                self.act(&cx, msg).await
            }
        }
    }

    /// One call down the acting path; a deny becomes its JSON-RPC answer.
    async fn act(&self, cx: &CallContext<'_>, msg: Message) -> Message {
        let id = msg.id().cloned();
        match self.run(cx, msg).await {
            Ok(released) => released.into_message(),
            Err(deny) => deny.message(id.as_ref()),
        }
    }

    /// `logging/setLevel`: every server gets it, each as its own decided and recorded call
    /// (it changes the server's state); the first deny or error is reported.
    async fn broadcast(&self, session: &Arc<Session>, caller: &Caller, msg: Message) -> Message {
        let id = msg.id().cloned();
        for server in self.namespacer.servers() {
            let cx = CallContext {
                session,
                caller,
                class: MethodClass::Broadcast,
                to: Some(server),
                request_sha256: None,
            };
            let answer = self.act(&cx, msg.clone()).await;
            if answer.error().is_some() {
                return answer;
            }
        }
        response(id.unwrap_or(Value::Null), json!({}))
    }

    /// Handles a client notification. Only the notifications a client may send pass
    /// (T21); any other method sent without an id — `tools/call` as a notification would
    /// make a server act with no decision and no record — is refused, logged and recorded.
    pub async fn handle_notification(&self, session: &Arc<Session>, msg: Message) -> Result<(), Deny> {
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
                let method: String = method.chars().take(128).collect();
                tracing::warn!(session = %session.id, principal = %session.principal.workload, method = %method, "notification refused");
                let deny = Deny::Notification { method };
                let reason = deny.audit_reason().unwrap_or_default();
                if let Deny::Notification { method } = &deny
                    && let Err(e) = self
                        .recorder
                        .refused_notification(&session.principal, method, &reason)
                        .await
                {
                    tracing::error!("the refused notification could not be recorded: {e}");
                }
                return Err(deny);
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

    async fn discover(&self, session: &Arc<Session>, id: Option<Value>) -> Message {
        let mut eras = Vec::new();
        for server in self.namespacer.servers() {
            match self.ensure_upstream(session, server).await {
                Ok(c) => eras.push(c.era),
                Err(e) => return message::error(id.as_ref(), e.code(), &e.to_string()),
            }
        }
        response(id.unwrap_or(Value::Null), bridge::discover_result(&eras, self.served()))
    }

    /// A listing: relayed from the one server, or merged across several; held tools hidden
    /// (classify) and items the caller may not use filtered out (authorise).
    async fn list(
        &self,
        clearance: NonActing,
        session: &Arc<Session>,
        caller: &Caller,
        kind: ListKind,
        mut msg: Message,
    ) -> Message {
        if self.namespacer.enabled() {
            return self.merged_list(clearance, session, caller, kind, &msg).await;
        }
        let server = match self.namespacer.route(MethodClass::List(kind), &mut msg) {
            Ok(server) => server,
            Err(error) => {
                let deny = Deny::Route {
                    error,
                    unknown_method: false,
                };
                return deny.message(msg.id());
            }
        };
        let mut answer = self
            .exchange(Clearance::NonActing(clearance), session, &server, msg)
            .await;
        if let Some(result) = answer.result_mut() {
            self.screen(session, caller, &server, kind, result).await;
        }
        answer
    }

    /// A listing across several servers: every page of every server, namespaced, in one answer.
    async fn merged_list(
        &self,
        _clearance: NonActing,
        session: &Arc<Session>,
        caller: &Caller,
        kind: ListKind,
        msg: &Message,
    ) -> Message {
        let id = msg.id().cloned();
        if msg.params().is_some_and(|p| p.contains_key("cursor")) {
            let text = "with several servers the gateway returns complete lists; there is no next page";
            return message::error(id.as_ref(), portcullis_mcp::ErrorCode::InvalidParams, text);
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
            let Some(page_clearance) = MethodClass::List(kind).non_acting() else {
                continue;
            };
            match lists::list_all(
                page_clearance,
                &connected,
                &session.hello,
                &session.as_route(),
                kind,
                msg,
            )
            .await
            {
                Ok(got) => {
                    let mut page = json!({ kind.field(): got });
                    self.screen(session, caller, server, kind, &mut page).await;
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
        let result = bridge::list_result(session.era(), kind.field(), items);
        response(id.unwrap_or(Value::Null), result)
    }

    /// A listing of `server` as the caller may see it: held tools hidden (classify), then
    /// the items the caller may not use filtered out (authorise); the reason argument is
    /// added to tool schemas when enabled.
    async fn screen(
        &self,
        session: &Session,
        caller: &Caller,
        server: &ServerName,
        kind: ListKind,
        result: &mut Value,
    ) {
        let Some(config) = self.servers.get(server) else {
            return;
        };
        if kind == ListKind::Tools && self.classifier.applies(server) {
            let connected = session.upstream(server);
            let holds = match &connected {
                Some(c) => {
                    let mut gate = c.gate.lock().await;
                    self.classifier.screen(Some(&mut gate), server, result)
                }
                None => self.classifier.screen(None, server, result),
            };
            if let Err(e) = self.record_holds(server, holds).await {
                tracing::error!(server = %server, "tool holds could not be recorded: {e}");
            }
        }
        self.authoriser.filter_list(&caller.facts(), config, kind, result);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The size of the future `handle` returns, without calling it.
    fn future_size<'a, F, Fut>(_handle: F) -> usize
    where
        F: FnOnce(&'a Gateway, crate::limits::Admitted, &'a Arc<Session>, &'a Caller, Message) -> Fut,
    {
        std::mem::size_of::<Fut>()
    }

    /// Every request's future is moved into a box (the HTTP front) or a task (stdio):
    /// the approval wait and the upstream connect, each tens of KiB, must stay boxed
    /// where they are entered, not carried by every call (docs/benchmarks.md, "The call's
    /// future, boxed where it is cold (issue 21 item 5, 2026-12-06, ninth session)").
    /// Unoptimised sizes: 33,624 bytes with them inline, 7,088 boxed.
    #[test]
    fn a_requests_future_does_not_carry_the_cold_paths() {
        let size = future_size(Gateway::handle_request);
        assert!(size < 16 * 1024, "handle_request's future is {size} bytes");
    }
}
