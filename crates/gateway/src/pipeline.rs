//! The acting path, one line per stage. Every request that reads or changes server state
//! ([`MethodClass::acts`]) comes here from [`crate::dispatch`]:
//!
//! 1. route     — which server the call is for (namespacing, T9);
//! 2. attest    — a `tools/call` carries a valid host signature where one is required (T13);
//! 3. classify  — the tool is pinned by the server's manifest and not held back (T7, T8);
//! 4. authorise — a policy decision made for this call alone, never cached (T14);
//!    (approvals and the credential broker slot in here, each one line);
//! 5. record    — the decision, durably, before anything is forwarded;
//! 6. forward   — to the session's own connection to that server; needs the `Permit`;
//! 7. record    — the outcome, durably, before the answer is released (T15);
//! 8. release   — receipts attached (the audit receipt; for `tools/call`, the gateway's
//!    signed receipt over request, result, decision and log index); needs `Recorded`.
//!
//! The order matters where it says so: attest runs on the call as the host signed it
//! (before the reason argument is stripped), the decision is durable before the server
//! sees anything, and the outcome before the client does. A stage that refuses returns a
//! [`Deny`]; denies of attest, classify and authorise are recorded before the client hears
//! of them. Answers are raw JSON: the relay never re-types a message.
use std::sync::Arc;

use portcullis_attest::VerifiedCall;
use portcullis_core::{CallId, ServerName};
use portcullis_mcp::{Message, MethodClass};
use portcullis_policy::Permit;
use serde_json::Value;

use crate::{
    caller::Caller,
    config::ServerConfig,
    deny::Deny,
    gateway::Gateway,
    relay::{Clearance, lists},
    session::Session,
    stages::{
        authorise::Attested,
        classify::ClassifyError,
        receipts::Released,
        record::{CallFacts, RecordError, Verdict},
    },
};

/// One acting request: who sends it, in which session, and what it is.
pub(crate) struct CallContext<'a> {
    pub session: &'a Arc<Session>,
    pub caller: &'a Caller,
    pub class: MethodClass,
    /// A server fixed by the dispatcher (`logging/setLevel` goes to each server in turn);
    /// `None`: the route stage finds it in the request.
    pub to: Option<&'a ServerName>,
    /// SHA-256 of the request as the client sent it (before routing rewrote names): what a
    /// signed result's receipt covers. Only for `tools/call` with result signing on.
    pub request_sha256: Option<[u8; 32]>,
}

/// Where a call goes: the server and its configuration.
pub(crate) struct Route<'g> {
    pub server: ServerName,
    pub config: &'g ServerConfig,
}

impl Gateway {
    /// The acting path (see the module docs).
    pub(crate) async fn run(&self, cx: &CallContext<'_>, mut msg: Message) -> Result<Released, Deny> {
        let route = self.route(cx, &mut msg)?; // which server
        let signed = self.attest(cx, &route, &mut msg).await?; // the host's signature, as sent
        let findings = self.classify(cx, &route, &msg, signed.as_ref()).await?; // pinned, not held back
        let (call, permit) = self.authorise(cx, &route, signed, findings, &mut msg).await?; // policy, this call only
        let decided = self.recorder.permitted(&call, &permit).await?; // durable before forwarding
        let answer = self.forward(permit, cx, &route, msg).await; // needs the Permit
        let recorded = self.recorder.outcome(decided, &call, &answer).await?; // durable before release
        let released = self.receipts.release(answer, &call, cx.request_sha256, recorded)?; // needs Recorded
        Ok(self.names_for_client(&route, &call, released))
    }

    /// route: the server the call is for, rewritten to that server's own names.
    fn route(&self, cx: &CallContext<'_>, msg: &mut Message) -> Result<Route<'_>, Deny> {
        let server = match cx.to {
            Some(server) => server.clone(),
            None => self.namespacer.route(cx.class, msg).map_err(|error| Deny::Route {
                unknown_method: cx.class == MethodClass::Other
                    || error == crate::stages::route::RouteError::NotAcrossServers,
                error,
            })?,
        };
        match self.servers.get(&server) {
            Some(config) => Ok(Route { server, config }),
            None => Err(Deny::UnknownServer(server)),
        }
    }

    /// attest: the host's signature over this exact `tools/call`, removed once verified
    /// (its nonce is then consumed, and the call's records name it).
    async fn attest(
        &self,
        cx: &CallContext<'_>,
        route: &Route<'_>,
        msg: &mut Message,
    ) -> Result<Option<VerifiedCall>, Deny> {
        if cx.class != MethodClass::CallTool {
            return Ok(None);
        }
        let tool = msg.param_str("name").unwrap_or_default().to_owned();
        let checked = self
            .config
            .attest
            .check_call(&cx.caller.principal, route.server.as_str(), &tool, msg);
        match checked {
            Ok(verified) => Ok(verified),
            Err(error) => {
                let deny = Deny::Attest {
                    error,
                    decision_id: CallId::random().to_string(),
                };
                Err(self.refuse_before_policy(cx, route, msg, None, deny).await)
            }
        }
    }

    /// classify: the tool is pinned (if the server has a manifest) and not held back; the
    /// scanner's findings on it go to the policy.
    async fn classify(
        &self,
        cx: &CallContext<'_>,
        route: &Route<'_>,
        msg: &Message,
        signed: Option<&VerifiedCall>,
    ) -> Result<Vec<String>, Deny> {
        if cx.class != MethodClass::CallTool || !self.classifier.applies(&route.server) {
            return Ok(Vec::new());
        }
        let tool = msg.param_str("name").unwrap_or_default();
        match self.tool_verdict(cx.session, &route.server, tool).await? {
            Ok(findings) => Ok(findings),
            Err(error) => {
                let deny = Deny::Classify {
                    error,
                    decision_id: CallId::random().to_string(),
                };
                Err(self.refuse_before_policy(cx, route, msg, signed, deny).await)
            }
        }
    }

    /// The classify stage's verdict on `tool`, after judging the gateway's own listing of
    /// the connection's tools when the verdicts are stale (first call, `list_changed`).
    /// The outer error: the holds found could not be recorded.
    async fn tool_verdict(
        &self,
        session: &Arc<Session>,
        server: &ServerName,
        tool: &str,
    ) -> Result<Result<Vec<String>, ClassifyError>, RecordError> {
        let connected = match self.ensure_upstream(session, server).await {
            Ok(connected) => connected,
            Err(e) => return Ok(Err(ClassifyError::Upstream(e))),
        };
        let mut gate = connected.gate.lock().await;
        let changes = connected.peer.tools_changed();
        if gate.stale(changes) {
            let listed = match lists::list_tools(&connected, &session.hello, &session.as_route()).await {
                Ok(listed) => listed,
                Err(reason) => {
                    let server = server.clone();
                    return Ok(Err(ClassifyError::Listing { server, reason }));
                }
            };
            let holds = self.classifier.refresh(&mut gate, server, &listed, changes);
            self.record_holds(server, holds).await?;
        }
        Ok(gate.verdict(server, tool))
    }

    /// authorise: a decision made for this call alone (never cached); a deny is recorded.
    async fn authorise(
        &self,
        cx: &CallContext<'_>,
        route: &Route<'_>,
        signed: Option<VerifiedCall>,
        findings: Vec<String>,
        msg: &mut Message,
    ) -> Result<(CallFacts, Permit), Deny> {
        let attested = Attested {
            signed: signed.is_some(),
            findings,
        };
        let (request, outcome) = self
            .authoriser
            .decide_call(cx.caller.facts(), route.config, attested, msg);
        let call = CallFacts::of(
            &cx.session.principal,
            &route.server,
            msg,
            &request.arguments,
            &self.recorder,
        )
        .signed_with(signed.as_ref())
        .decided_under(&request, &self.recorder);
        match outcome {
            Ok(permit) => Ok((call, permit)),
            Err(deny) => {
                // Who, what, and why (the rules, and what the caller was told), so an
                // operator can act on the line alone; never arguments or policy text.
                tracing::info!(
                    workload = %call.principal.workload, user = call.principal.user.as_deref().unwrap_or("-"),
                    server = %route.server, method = %request.method, target = %request.target, tier = %request.tier,
                    rules = %deny.reasons().join(","), decision = %deny.decision_id(),
                    "call denied by policy: {}", deny.client_message()
                );
                Err(self.record_deny(&call, Deny::Policy(deny)).await)
            }
        }
    }

    /// forward: to the session's connection to the server, with the permit the authorise
    /// stage issued for this call. `subscriptions/listen` stays open as long as the client
    /// keeps it. Receipt entries the server wrote are removed.
    async fn forward(&self, permit: Permit, cx: &CallContext<'_>, route: &Route<'_>, msg: Message) -> Value {
        let clearance = Clearance::Permitted(permit);
        let mut answer = match cx.class {
            MethodClass::Subscribe => self.listen(clearance, cx.session, &route.server, msg).await,
            _ => self.exchange(clearance, cx.session, &route.server, msg).await,
        };
        self.receipts.filter(&route.server, &mut answer);
        answer
    }

    /// The route stage's outbound half: a read resource's URIs carry the server's prefix.
    fn names_for_client(&self, route: &Route<'_>, call: &CallFacts, mut released: Released) -> Released {
        if call.method == "resources/read"
            && let Some(result) = released.result_mut()
        {
            self.namespacer.outbound_read_result(&route.server, result);
        }
        released
    }

    /// A deny by a stage before authorise (attest, classify), recorded like a policy deny.
    async fn refuse_before_policy(
        &self,
        cx: &CallContext<'_>,
        route: &Route<'_>,
        msg: &Message,
        signed: Option<&VerifiedCall>,
        deny: Deny,
    ) -> Deny {
        let call =
            CallFacts::before_policy(&cx.session.principal, &route.server, msg, &self.recorder).signed_with(signed);
        tracing::info!(
            workload = %call.principal.workload, user = call.principal.user.as_deref().unwrap_or("-"),
            server = %call.server, target = ?call.target,
            "call denied by {}: {}", deny.stage().label(), deny.audit_reason().unwrap_or_default()
        );
        self.record_deny(&call, deny).await
    }

    /// Records a deny durably before the client hears of it; when the log cannot take it,
    /// the client hears that instead (fail closed either way).
    async fn record_deny(&self, call: &CallFacts, deny: Deny) -> Deny {
        let verdict = Verdict {
            allowed: false,
            reason: deny.audit_reason().unwrap_or_default(),
            decision_id: deny.decision_id().unwrap_or_default().to_owned(),
            policy_hash: match &deny {
                Deny::Policy(policy) => policy.policy_hash().to_owned(),
                _ => String::new(),
            },
        };
        match self.recorder.decision(call, &verdict).await {
            Ok(()) => deny,
            Err(e) => Deny::Record(e),
        }
    }
}
