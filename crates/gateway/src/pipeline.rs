//! The acting path, one line per stage. Every request that reads or changes server state
//! ([`MethodClass::acts`]) comes here from [`crate::dispatch`]:
//!
//! 1. route     — which server the call is for (namespacing, T9);
//! 2. attest    — a `tools/call` carries a valid host signature where one is required (T13);
//! 3. classify  — the tool is pinned by the server's manifest and not held back (T7, T8);
//! 4. authorise — a policy decision made for this call alone, never cached (T14);
//! 5. approve   — a call the policy allows only with an approval waits for, or brings,
//!    approvals bound to that exact call, then is decided afresh with `approval_present`;
//! 6. scope     — the credential broker mints the call's own credential, if a
//!    `[[credentials]]` rule gives it one (the policy saw which, as `context.credential`);
//! 7. record    — the decision, durably, before anything is forwarded;
//! 8. forward   — to the session's own connection to that server (or a child started for
//!    this call alone), with the credential; needs the `Permit`; the credential is then
//!    released (a database role dropped);
//! 9. record    — the outcome, durably, before the answer is released (T15);
//! 10. release  — receipts attached (the audit receipt; for `tools/call`, the gateway's
//!     signed receipt over request, result, decision and log index); needs `Recorded`.
//!
//! The order matters where it says so: attest runs on the call as the host signed it
//! (before the reason argument is stripped), the decision is durable before the server
//! sees anything, and the outcome before the client does. A stage that refuses returns a
//! [`Deny`]; denies of attest, classify, authorise and approve are recorded before the
//! client hears of them. Answers are raw JSON: the relay never re-types a message.
use std::sync::Arc;

use portcullis_approvals::{ApprovalError, Opening, PendingEntry, PendingState};
use portcullis_attest::VerifiedCall;
use portcullis_broker::{CallMatch, Lease, Plan};
use portcullis_core::{CallId, ServerName};
use portcullis_mcp::{Message, MethodClass};
use portcullis_policy::{DecisionRequest, Permit};
use serde_json::Value;

use crate::{
    caller::Caller,
    config::{ServerConfig, Spawn},
    deny::Deny,
    gateway::Gateway,
    relay::{Clearance, lists},
    session::Session,
    stages::{
        approve::{self, ApprovalRefusal},
        authorise::{Attested, Authoriser},
        classify::ClassifyError,
        receipts::Released,
        record::{ApprovalFacts, CallFacts, CredentialFacts, RecordError, Verdict},
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

/// What the authorise stage hands the approve stage: the call, the request the policy
/// saw, and its verdict (a deny is not recorded yet).
pub(crate) struct Authorised {
    call: CallFacts,
    request: DecisionRequest,
    outcome: Result<Permit, portcullis_policy::Deny>,
}

/// A call the policy denied, on its way through the approve stage: its facts and decision
/// request, the deny, and the approvals it carried (taken out of the message).
struct Held {
    call: CallFacts,
    request: DecisionRequest,
    deny: portcullis_policy::Deny,
    tokens: Result<Vec<portcullis_approvals::token::Token>, ApprovalError>,
    /// A 2026-07-28 retry's `requestState` and the user's answer.
    round_trip: Option<(String, Option<Value>)>,
}

/// What an approval request shows approvers of a call: its tier, the caller's reason and
/// the arguments, redacted and bounded as captured bodies are.
fn opening(call: portcullis_approvals::Binding, call_id: &str, request: &DecisionRequest) -> Opening {
    Opening {
        call,
        call_id: call_id.to_owned(),
        tier: request.tier.to_string(),
        reason: request.effective_reason().map(crate::stages::redact::reason),
        arguments_summary: crate::stages::redact::capture(request.arguments.value()),
    }
}

/// A user who may approve their own call, and the request of theirs it waits on.
struct AskUser<'s> {
    session: &'s Session,
    related: Value,
}

/// Progress notifications to a client waiting for approval (it sent a `progressToken`).
struct WaitProgress<'s> {
    session: &'s Session,
    token: Value,
    request_id: Value,
}

impl<'s> WaitProgress<'s> {
    /// Every this often, a waiting client is told it still waits.
    const EVERY: std::time::Duration = std::time::Duration::from_secs(5);

    fn of(session: &'s Arc<Session>, msg: &Message) -> Option<Self> {
        Some(Self {
            session,
            token: msg.meta()?.get("progressToken")?.clone(),
            request_id: msg.id()?.clone(),
        })
    }

    /// Tells the client at once, then every [`Self::EVERY`], that the call waits for
    /// approval request `id`; never returns (the wait's end drops it).
    async fn tell_while_waiting(&self, id: &str, wait: std::time::Duration) -> std::convert::Infallible {
        let started = tokio::time::Instant::now();
        let mut tick = tokio::time::interval(Self::EVERY);
        loop {
            tick.tick().await;
            let waited = started.elapsed().as_secs();
            let note = serde_json::json!({
                "jsonrpc": "2.0",
                "method": "notifications/progress",
                "params": {
                    "progressToken": self.token,
                    "progress": waited,
                    "total": wait.as_secs(),
                    "message": format!("waiting for approval (request {id}); an approver runs `portcullis approvals approve {id}`"),
                },
            });
            // A full backlog only costs this note; the call itself is unaffected.
            let _ = self.session.sink.deliver(note, Some(&self.request_id));
        }
    }
}

/// Withdraws a call's approval request when the call goes away while it waits (the
/// client disconnected, or the gateway stopped): approvers no longer see it, and the log
/// says so. The withdrawal may need the shared store, so it runs as a task of its own.
struct WithdrawOnDrop<'g> {
    gateway: &'g Gateway,
    binding: Option<portcullis_approvals::Binding>,
    call_id: String,
}

impl WithdrawOnDrop<'_> {
    fn disarm(mut self) {
        self.binding = None;
    }
}

impl Drop for WithdrawOnDrop<'_> {
    fn drop(&mut self) {
        let Some(binding) = self.binding.take() else { return };
        // Without a runtime the process is ending: a request in memory ends with it, one
        // in the shared store expires at its TTL.
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        let store = self.gateway.approvals.store.clone();
        let recorder = self.gateway.recorder.clone();
        let call_id = std::mem::take(&mut self.call_id);
        runtime.spawn(async move {
            match store.withdraw(&binding.id).await {
                Ok(Some(_)) => {}
                Ok(None) => return,
                Err(e) => {
                    tracing::error!(approval = %binding.id, "cannot withdraw the request of a call that went away (it expires at its TTL): {e}");
                    return;
                }
            }
            tracing::info!(approval = %binding.id, "approval request withdrawn: the waiting call went away");
            if let Err(e) = recorder.approval(&binding, &call_id, "withdrawn", &[]).await {
                tracing::error!("cannot record a withdrawn approval request: {e}");
            }
        });
    }
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
        let authorised = self.authorise(cx, &route, signed, findings, &mut msg).await?; // policy, this call only
        let (call, permit) = self.approve(cx, &route, authorised, &mut msg).await?; // approvals bound to this call
        let (call, credential) = self.scope(cx, call, &permit).await?; // this call's own credential
        let decided = self.recorder.permitted(&call, &permit).await?; // durable before forwarding
        let answer = self.forward(permit, cx, &route, msg, credential.as_ref()).await; // needs the Permit
        self.release(credential).await; // the credential ends with the call
        let recorded = self
            .recorder
            .outcome(decided, &call, &answer, cx.request_sha256)
            .await?; // durable before release
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
            .check_call(&cx.caller.principal, route.server.as_str(), &tool, msg)
            .await;
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

    /// authorise: a decision made for this call alone (never cached), knowing whether a
    /// break-glass window is active for the caller (windows past their TTL are ended and
    /// recorded first; while the approvals store cannot say, no window is in force — a
    /// window only ever lets more through). A deny is recorded by the approve stage, which
    /// first sees whether an approval would change it.
    async fn authorise(
        &self,
        cx: &CallContext<'_>,
        route: &Route<'_>,
        signed: Option<VerifiedCall>,
        findings: Vec<String>,
        msg: &mut Message,
    ) -> Result<Authorised, Deny> {
        let workload = &cx.session.principal.workload;
        let (ended, window) = match self.approvals.store.expire_and_find_window(workload).await {
            Ok(found) => found,
            Err(e) => {
                tracing::warn!(workload = %workload, "no break-glass window is in force for this call: {e}");
                (Vec::new(), None)
            }
        };
        self.record_break_glass_ends(ended).await?;
        let plan = self.credential_plan(cx, route, msg);
        let attested = Attested {
            signed: signed.is_some(),
            findings,
            break_glass: window.is_some(),
            credential: plan.as_ref().map(|plan| portcullis_policy::CredentialFact {
                rule: plan.rule.clone(),
                source: plan.source.clone(),
                kind: plan.kind.to_owned(),
                scope: plan.scope.clone(),
            }),
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
        let credential = plan.map(|plan| CredentialFacts {
            plan,
            args_sha256: hex::encode(request.arguments.sha256()),
            grant: None,
        });
        let call = CallFacts {
            break_glass: window,
            credential,
            ..call
        };
        Ok(Authorised { call, request, outcome })
    }

    /// Records the end of windows whose TTL ran out.
    pub(crate) async fn record_break_glass_ends(
        &self,
        ended: Vec<portcullis_approvals::Window>,
    ) -> Result<(), RecordError> {
        for window in ended {
            tracing::warn!(break_glass = %window.id, "break-glass window ended: its TTL ran out");
            self.recorder.break_glass(&window, "ended", "ttl", &[]).await?;
        }
        Ok(())
    }

    /// approve: a call the policy refused only for want of an approval (it would be allowed
    /// with `approval_present`) proceeds with approvals bound to it — tokens sent with the
    /// call, an approval given through the admin API before a retry, or one given while the
    /// call waits — and is then decided afresh. Any other deny is recorded as it is.
    async fn approve(
        &self,
        cx: &CallContext<'_>,
        route: &Route<'_>,
        authorised: Authorised,
        msg: &mut Message,
    ) -> Result<(CallFacts, Permit), Deny> {
        let Authorised { call, request, outcome } = authorised;
        // Tokens never reach the server, whatever the decision.
        let tokens = approve::take_tokens(msg);
        let round_trip = approve::take_round_trip(msg);
        match outcome {
            Ok(permit) => Ok((call, permit)),
            // Boxed: the approval paths (the wait, the approvals store's queries) make a
            // future some 70 KiB large, which a permitted call would otherwise carry, and
            // copy, on every call (docs/benchmarks.md, "The call's future, boxed where it
            // is cold (issue 21 item 5, 2026-12-06, ninth session)").
            Err(deny) => {
                let held = Held {
                    call,
                    request,
                    deny,
                    tokens,
                    round_trip,
                };
                Box::pin(self.approve_denied(cx, route, held, msg)).await
            }
        }
    }

    /// The approve stage for a call the policy denied: see [`Self::approve`].
    async fn approve_denied(
        &self,
        cx: &CallContext<'_>,
        route: &Route<'_>,
        held: Held,
        msg: &mut Message,
    ) -> Result<(CallFacts, Permit), Deny> {
        let Held {
            call,
            mut request,
            deny,
            tokens,
            round_trip,
        } = held;
        if !self.authoriser.approval_would_allow(&request) {
            return Err(self.policy_deny(route, &call, &request, deny).await);
        }
        let gate = &self.approvals;
        if gate.approvers.is_empty() {
            let deny = deny.with_hint(
                "no approver is registered on this gateway; ask the operator to add `[[approvals.approvers]]`",
            );
            return Err(self.policy_deny(route, &call, &request, deny).await);
        }
        let decision_id = deny.decision_id().to_owned();
        let this_call = approve::call_binding(
            &call.principal,
            route.server.as_str(),
            &request.method,
            &request.target,
            request.arguments.sha256(),
            deny.policy_hash(),
        );
        let approved = match tokens {
            Err(e) => Err(ApprovalRefusal::Invalid(e)),
            Ok(tokens) if !tokens.is_empty() => self.approve_by_tokens(&call, &tokens, &this_call).await?,
            Ok(_) if round_trip.is_some() || self.asks_modern_user(cx.session, &request, msg) => {
                self.approve_by_round_trip(&call, &request, this_call, round_trip)
                    .await?
            }
            Ok(_) => match gate.store.take_granted_for(&this_call).await {
                Ok(Some(entry)) => Ok(entry),
                Ok(None) => {
                    let progress = WaitProgress::of(cx.session, msg);
                    let ask_user = self.user_may_approve(cx.session, &request, msg);
                    self.wait_for_approval(&call, &request, this_call, progress, ask_user)
                        .await?
                }
                Err(e) => Err(approve::refusal(e)),
            },
        };
        let entry = match approved {
            Ok(entry) => entry,
            Err(refusal) => {
                tracing::info!(
                    workload = %call.principal.workload, user = call.principal.user.as_deref().unwrap_or("-"),
                    server = %route.server, target = %request.target, decision = %decision_id,
                    "call held for approval refused: {}", refusal.audit_text()
                );
                return Err(self.record_deny(&call, Deny::Approval { refusal, decision_id }).await);
            }
        };
        let approvers: Vec<String> = entry.grants.iter().map(|g| g.approver.clone()).collect();
        self.recorder
            .approval(
                &entry.binding,
                &call.call_id.to_string(),
                "used",
                &[("approved_by", approvers.join(","))],
            )
            .await?;
        // A fresh decision, now with the approval: never the first one reused.
        request.approval_present = true;
        let call = CallFacts {
            approval: Some(ApprovalFacts {
                id: entry.binding.id.clone(),
                approvers,
            }),
            ..call
        };
        match self.authoriser.store.authorize(&request) {
            Ok(permit) if permit.policy_hash() == entry.binding.policy_sha256 => Ok((call, permit)),
            Ok(_) => {
                let refusal = ApprovalRefusal::PolicyChanged;
                Err(self.record_deny(&call, Deny::Approval { refusal, decision_id }).await)
            }
            Err(deny) => Err(self.policy_deny(route, &call, &request, deny).await),
        }
    }

    /// The signed tokens sent with the call: once all are checked, each grant whose
    /// approver is new to the request is recorded (`granted`: approver, channel `token`,
    /// the signature's digest) and then given to the request, before the request is used:
    /// an approval the log cannot take never counts. The outer error: a step could not be
    /// recorded.
    async fn approve_by_tokens(
        &self,
        call: &CallFacts,
        tokens: &[portcullis_approvals::token::Token],
        this_call: &portcullis_approvals::Binding,
    ) -> Result<Result<PendingEntry, ApprovalRefusal>, RecordError> {
        let gate = &self.approvals;
        let checked = match gate.check_tokens(tokens, this_call).await {
            Ok(checked) => checked,
            Err(refusal) => return Ok(Err(refusal)),
        };
        let binding = &checked.entry.binding;
        let call_id = call.call_id.to_string();
        let mut grants = checked.entry.grants.clone();
        for (approver, grant) in &checked.grants {
            // The same approver twice counts once (and is recorded once).
            if grants.iter().any(|g| g.approver == grant.approver) {
                continue;
            }
            let given = self
                .recorder
                .approval_then(
                    binding,
                    &call_id,
                    "granted",
                    &approve::grant_detail(grant),
                    gate.store.grant(&binding.id, approver, grant.clone()),
                )
                .await?;
            match given {
                Ok(after) => grants = after.grants,
                // Granted meanwhile (through the admin API): settled below, used once.
                Err(ApprovalError::AlreadyDecided(_, "granted")) => break,
                Err(e) => return Ok(Err(approve::refusal(e))),
            }
        }
        Ok(gate.settle(&binding.id).await)
    }

    /// Opens an approval request for a call, once the requests that lapsed unused are swept
    /// and recorded `expired` (their records come before the new request's, and they give
    /// their room back). The request is recorded `requested` (with `detail` of it) before it
    /// is opened: no approver can list, grant or deny a request whose record is not durable.
    /// One the store then refuses (its queue full) is recorded `withdrawn`. The outer error:
    /// the log could not take a record (the request is then never opened).
    async fn open_request(
        &self,
        opening: Opening,
        detail: impl FnOnce(&PendingEntry) -> Vec<(&'static str, String)>,
    ) -> Result<Result<PendingEntry, ApprovalError>, RecordError> {
        self.expire_approval_requests().await?;
        let store = &self.approvals.store;
        let entry = store.prepare(opening);
        let call_id = entry.call_id.clone();
        self.recorder
            .approval(&entry.binding, &call_id, "requested", &detail(&entry))
            .await?;
        let binding = entry.binding.clone();
        match store.admit(entry).await {
            Ok(opened) => Ok(Ok(opened)),
            Err(refused) => {
                self.recorder
                    .approval(&binding, &call_id, "withdrawn", &[("why", refused.to_string())])
                    .await?;
                Ok(Err(refused))
            }
        }
    }

    /// Opens an approval request for the call and holds the call until approvers answer,
    /// the wait ends, or the client goes away (then the request is withdrawn). The outer
    /// error: a step could not be recorded.
    async fn wait_for_approval(
        &self,
        call: &CallFacts,
        request: &DecisionRequest,
        this_call: portcullis_approvals::Binding,
        progress: Option<WaitProgress<'_>>,
        ask_user: Option<AskUser<'_>>,
    ) -> Result<Result<PendingEntry, ApprovalRefusal>, RecordError> {
        let gate = &self.approvals;
        let call_id = call.call_id.to_string();
        let opening = opening(this_call, &call_id, request);
        let requested = |entry: &PendingEntry| vec![("approvals_required", entry.required.to_string())];
        let (binding, required) = match self.open_request(opening, requested).await? {
            Ok(opened) => (opened.binding, opened.required),
            Err(e) => return Ok(Err(ApprovalRefusal::Unavailable(e))),
        };
        tracing::info!(
            approval = %binding.id, server = %binding.server, target = %binding.target,
            workload = %binding.principal.workload, required,
            "call waiting for approval: `portcullis approvals approve {}`", binding.id
        );
        if gate.wait.is_zero() {
            return Ok(Err(self.still_required(binding, required).await));
        }
        let withdraw = WithdrawOnDrop {
            gateway: self,
            binding: Some(binding.clone()),
            call_id: call_id.clone(),
        };
        // Woken by the decision, wherever it is given (another replica's, through the store).
        let answer = gate.store.wait_decided(&binding.id);
        // While it waits: the client hears progress if it asked for it, and the user is asked
        // (elicitation) when the config lets users approve this tier and the client can answer.
        let tell = async {
            match &progress {
                Some(progress) => progress.tell_while_waiting(&binding.id, gate.wait).await,
                None => std::future::pending().await,
            }
        };
        let user = self.ask_user(ask_user, &binding, &call_id, request);
        let sides = async {
            let (never, _) = tokio::join!(tell, user);
            never
        };
        let answered = tokio::select! {
            answer = tokio::time::timeout(gate.wait, answer) => answer,
            never = sides => match never {},
        };
        Ok(match answered {
            Ok(Ok(PendingState::Granted)) => {
                withdraw.disarm();
                gate.store.consume(&binding.id).await.map_err(approve::refusal)
            }
            Ok(Ok(PendingState::Denied { by })) => {
                withdraw.disarm();
                if let Err(e) = gate.store.withdraw(&binding.id).await {
                    tracing::warn!(approval = %binding.id, "the denied request stays listed until it expires: {e}");
                }
                Err(ApprovalRefusal::Denied { by, id: binding.id })
            }
            // Still waiting when the wait ended: the request stays open for a retry.
            Ok(Ok(PendingState::Waiting)) | Err(_) => {
                withdraw.disarm();
                self.recorder
                    .approval(
                        &binding,
                        &call_id,
                        "wait-ended",
                        &[("waited_secs", gate.wait.as_secs().to_string())],
                    )
                    .await?;
                Err(self.still_required(binding, required).await)
            }
            // The store failed while the call waited: denied, and the request withdrawn
            // (by the guard, once the store answers again).
            Ok(Err(e @ ApprovalError::Store { .. })) => Err(ApprovalRefusal::Unavailable(e)),
            Ok(Err(_)) => {
                withdraw.disarm();
                Err(ApprovalRefusal::Invalid(ApprovalError::UnknownRequest(binding.id)))
            }
        })
    }

    /// The refusal of a call whose request is still open: how many approvals it needs and
    /// has, as the store says now.
    async fn still_required(&self, binding: portcullis_approvals::Binding, required: usize) -> ApprovalRefusal {
        let (required, granted) = match self.approvals.store.get(&binding.id).await {
            Ok(entry) => (entry.required, entry.grants.len()),
            Err(_) => (required, 0),
        };
        ApprovalRefusal::Required {
            binding: Box::new(binding),
            required,
            granted,
        }
    }

    /// Whether the caller's user may approve this call themselves: the config names its
    /// tier and the client (2025-11-25 era) declared the elicitation capability.
    fn user_may_approve<'s>(
        &self,
        session: &'s Session,
        request: &DecisionRequest,
        msg: &Message,
    ) -> Option<AskUser<'s>> {
        let allowed = self.config.approvals.user_may_approve.contains(&request.tier);
        let can_answer = session.era() != portcullis_mcp::Era::Modern
            && session
                .hello
                .capabilities
                .get("elicitation")
                .is_some_and(Value::is_object);
        let related = msg.id()?.clone();
        (allowed && can_answer).then_some(AskUser { session, related })
    }

    /// Whether a 2026-07-28 client's user may approve this call: the config names its
    /// tier and the request declares the elicitation capability in its `_meta`.
    fn asks_modern_user(&self, session: &Session, request: &DecisionRequest, msg: &Message) -> bool {
        session.era() == portcullis_mcp::Era::Modern
            && self.config.approvals.user_may_approve.contains(&request.tier)
            && msg
                .meta()
                .and_then(|m| m.get(portcullis_mcp::revision::META_CLIENT_CAPABILITIES))
                .and_then(|c| c.get("elicitation"))
                .is_some_and(Value::is_object)
    }

    /// The multi-round-trip approval of a 2026-07-28 client's user: the first round opens a
    /// request and ends with an `input_required` result (the question and an
    /// integrity-protected `requestState` bound to principal, call and a short expiry); the
    /// retry's state is checked against the call, and the user's answer grants (once: the
    /// request is consumed) or refuses it. The outer error: a step could not be recorded.
    async fn approve_by_round_trip(
        &self,
        call: &CallFacts,
        request: &DecisionRequest,
        this_call: portcullis_approvals::Binding,
        round_trip: Option<(String, Option<Value>)>,
    ) -> Result<Result<PendingEntry, ApprovalRefusal>, RecordError> {
        let gate = &self.approvals;
        let call_id = call.call_id.to_string();
        let Some((state, answer)) = round_trip else {
            let opening = opening(this_call, &call_id, request);
            let requested = |_: &PendingEntry| vec![("channel", "input_required".to_owned())];
            let binding = match self.open_request(opening, requested).await? {
                Ok(opened) => opened.binding,
                Err(e) => return Ok(Err(ApprovalRefusal::Unavailable(e))),
            };
            let question = approve::approval_question(
                &binding,
                &crate::stages::redact::capture(request.arguments.value()),
                request.effective_reason().map(crate::stages::redact::reason).as_deref(),
                &request.tier.to_string(),
            );
            let result = serde_json::json!({
                "resultType": "input_required",
                "inputRequests": {approve::INPUT_KEY: {"method": "elicitation/create", "params": question}},
                "requestState": format!("{}{}", approve::STATE_PREFIX, gate.request_states.issue(&binding)),
            });
            return Ok(Err(ApprovalRefusal::InputRequired { result, id: binding.id }));
        };
        let binding = match gate.request_states.check(&state, &this_call) {
            Ok(binding) => binding,
            Err(e) => return Ok(Err(ApprovalRefusal::Invalid(e))),
        };
        let by = format!(
            "user:{}",
            binding.principal.user.as_deref().unwrap_or(&binding.principal.workload)
        );
        let detail = [("approver", by.clone()), ("channel", "input_required".to_owned())];
        // A request used, lapsed or decided already records nothing more (a replayed state).
        let undecided = gate.store.get(&binding.id).await.and_then(|entry| entry.undecided());
        if let Err(e) = undecided
            && !matches!(e, ApprovalError::AlreadyDecided(_, "granted"))
        {
            return Ok(Err(approve::refusal(e)));
        }
        if approve::user_allowed(answer.as_ref()) {
            let grant = portcullis_approvals::Grant {
                approver: by,
                channel: "input_required".into(),
                signature_sha256: None,
            };
            // Recorded, then granted; granted once: a second retry with the same state
            // finds the request used.
            let confirm = async {
                match gate.store.confirm_by_caller(&binding.id, grant).await {
                    Ok(_) | Err(ApprovalError::AlreadyDecided(_, "granted")) => Ok(()),
                    Err(e) => Err(e),
                }
            };
            let confirmed = self
                .recorder
                .approval_then(&binding, &call_id, "granted", &detail, confirm)
                .await?;
            if let Err(e) = confirmed {
                return Ok(Err(approve::refusal(e)));
            }
            Ok(gate.store.consume(&binding.id).await.map_err(approve::refusal))
        } else {
            let refused = self
                .recorder
                .approval_then(
                    &binding,
                    &call_id,
                    "denied",
                    &detail,
                    gate.store.refuse_by_caller(&binding.id, &by),
                )
                .await?;
            if let Err(e) = refused {
                return Ok(Err(approve::refusal(e)));
            }
            if let Err(e) = gate.store.withdraw(&binding.id).await {
                tracing::warn!(approval = %binding.id, "the refused request stays listed until it expires: {e}");
            }
            Ok(Err(ApprovalRefusal::Denied { by, id: binding.id }))
        }
    }

    /// Asks the user (elicitation, form mode) whether the call may proceed, and turns the
    /// answer into a grant or a refusal of the request; never returns (the wait's end
    /// drops it). Without `ask`, only waits.
    async fn ask_user(
        &self,
        ask: Option<AskUser<'_>>,
        binding: &portcullis_approvals::Binding,
        call_id: &str,
        request: &DecisionRequest,
    ) -> std::convert::Infallible {
        if let Some(ask) = ask {
            let who = binding.principal.user.as_deref().unwrap_or(&binding.principal.workload);
            let params = approve::approval_question(
                binding,
                &crate::stages::redact::capture(request.arguments.value()),
                request.effective_reason().map(crate::stages::redact::reason).as_deref(),
                &request.tier.to_string(),
            );
            if let Some(answer) = ask.session.ask_client("elicitation/create", params, &ask.related)
                && let Ok(answer) = answer.await
            {
                let result = answer.result();
                let accepted = result.and_then(|r| r.get("action")).and_then(Value::as_str) == Some("accept")
                    && result
                        .and_then(|r| r.pointer("/content/approve"))
                        .and_then(Value::as_bool)
                        == Some(true);
                let by = format!("user:{who}");
                let store = &self.approvals.store;
                let detail = [("approver", by.clone()), ("channel", "elicitation".to_owned())];
                // Recorded before it counts: the waiting call is released (and this
                // future dropped) only once the answer's record is durable.
                let recorded = if accepted {
                    let grant = portcullis_approvals::Grant {
                        approver: by.clone(),
                        channel: "elicitation".into(),
                        signature_sha256: None,
                    };
                    let confirm = async { store.confirm_by_caller(&binding.id, grant).await.map(drop) };
                    self.recorder
                        .approval_then(binding, call_id, "granted", &detail, confirm)
                        .await
                } else {
                    let refuse = store.refuse_by_caller(&binding.id, &by);
                    self.recorder
                        .approval_then(binding, call_id, "denied", &detail, refuse)
                        .await
                };
                if let Err(e) = recorded {
                    // Unrecorded, the user's answer does not count (nothing changed).
                    tracing::error!("cannot record the user's approval answer: {e}");
                }
            }
        }
        std::future::pending().await
    }

    /// The credential the broker's rules give this call, if any (before the decision).
    pub(crate) fn credential_plan(&self, cx: &CallContext<'_>, route: &Route<'_>, msg: &Message) -> Option<Plan> {
        let broker = self.config.credentials.broker.as_ref()?;
        let (_, _, target, tier) = Authoriser::target_of(route.config, msg);
        let principal = &cx.session.principal;
        broker.plan(&CallMatch {
            server: route.server.as_str(),
            target: &target,
            tier,
            workload: &principal.workload,
            user: principal.user.as_deref(),
        })
    }

    /// scope: mints the call's credential, named by its plan, for this call alone. A
    /// failure is a recorded deny.
    pub(crate) async fn scope(
        &self,
        cx: &CallContext<'_>,
        mut call: CallFacts,
        permit: &Permit,
    ) -> Result<(CallFacts, Option<Lease>), Deny> {
        let (Some(credential), Some(broker)) = (&call.credential, &self.config.credentials.broker) else {
            return Ok((call, None));
        };
        let facts = portcullis_broker::CallFacts {
            workload: &call.principal.workload,
            user: call.principal.user.as_deref(),
            server: call.server.as_str(),
            target: call.target.as_deref().unwrap_or(&call.method),
            decision_id: permit.decision_id(),
            arguments_sha256: &credential.args_sha256,
            session: &cx.session.id,
            bearer: cx.caller.bearer.as_ref(),
        };
        match broker.mint(&credential.plan, &facts).await {
            Ok(lease) => {
                if let Some(credential) = call.credential.as_mut() {
                    credential.grant = Some((lease.grant_id.clone(), lease.expires_at));
                }
                Ok((call, Some(lease)))
            }
            Err(error) => {
                tracing::warn!(
                    workload = %call.principal.workload, server = %call.server, target = ?call.target,
                    rule = %credential.plan.rule, source = %credential.plan.source, decision = %permit.decision_id(),
                    "call denied: its credential could not be issued: {error}"
                );
                let deny = Deny::Credential {
                    error,
                    decision_id: permit.decision_id().to_owned(),
                };
                Err(self.record_deny(&call, deny).await)
            }
        }
    }

    /// Ends the call's credential now that its answer is in (a per-call database role is
    /// dropped). A failure leaves the sweeper to finish the job; the role expires anyway.
    pub(crate) async fn release(&self, credential: Option<Lease>) {
        let Some(lease) = credential else { return };
        let grant = lease.grant_id.clone();
        if let Err(e) = lease.release().await {
            tracing::warn!(grant = %grant, "a call's credential could not be released now (the sweeper retries): {e}");
        }
    }

    /// A policy deny, logged and recorded.
    async fn policy_deny(
        &self,
        route: &Route<'_>,
        call: &CallFacts,
        request: &DecisionRequest,
        deny: portcullis_policy::Deny,
    ) -> Deny {
        // Who, what, and why (the rules, and what the caller was told), so an operator can
        // act on the line alone; never arguments or policy text.
        tracing::info!(
            workload = %call.principal.workload, user = call.principal.user.as_deref().unwrap_or("-"),
            server = %route.server, method = %request.method, target = %request.target, tier = %request.tier,
            rules = %deny.reasons().join(","), decision = %deny.decision_id(),
            "call denied by policy: {}", deny.client_message()
        );
        self.record_deny(call, Deny::Policy(deny)).await
    }

    /// forward: to the session's connection to the server, with the permit the authorise
    /// stage issued for this call and the call's credential (a request header), or to a
    /// child started for this call alone (`spawn = "per-call"`, the credential in its
    /// environment). `subscriptions/listen` stays open as long as the client keeps it.
    /// Receipt entries the server wrote are removed.
    async fn forward(
        &self,
        permit: Permit,
        cx: &CallContext<'_>,
        route: &Route<'_>,
        msg: Message,
        credential: Option<&Lease>,
    ) -> Message {
        let clearance = Clearance::Permitted(permit);
        let mut answer = match cx.class {
            MethodClass::Subscribe => self.listen(clearance, cx.session, &route.server, msg).await,
            // Boxed: starting a child is a large future that calls to a running server
            // should not carry.
            _ if route.config.spawn == Spawn::PerCall => {
                Box::pin(self.exchange_per_call(clearance, cx.session, route.config, msg, credential)).await
            }
            _ => match credential.and_then(|lease| Some((crate::stages::scope::header_of(lease)?, lease))) {
                // A credential that cannot travel as a header is not sent without it.
                Some((None, lease)) => portcullis_mcp::message::error(
                    msg.id(),
                    portcullis_mcp::ErrorCode::Denied,
                    &format!(
                        "the call's credential (grant {}) cannot be sent as an HTTP header; the call was not forwarded",
                        lease.grant_id
                    ),
                ),
                header => {
                    let header = header.and_then(|(header, _)| header);
                    self.exchange_with(clearance, cx.session, &route.server, msg, header)
                        .await
                }
            },
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
    pub(crate) async fn record_deny(&self, call: &CallFacts, deny: Deny) -> Deny {
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
