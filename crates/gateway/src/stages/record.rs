//! The record stage: every call that acts is written to the audit log twice —
//! the decision before anything is forwarded, the outcome before the answer is
//! released — and each write is durable before the call moves on. When the log
//! cannot be written the call is denied (fail closed) and the gateway reports
//! itself unhealthy. Records carry hashes and ids, never bodies or secrets.
//! The classify stage's holds (pin drift, flagged definitions, refused spawns) and the
//! result-signing key in force are recorded here too.
//!
//! The evidence is typed: recording an allowed decision yields [`Decided`], recording the
//! outcome consumes it and yields [`Recorded`] — the log's `DurableReceipt`, or, only when
//! the operator turned the log off, the loudly named [`danger::AuditOff`] marker — and an
//! answer to an acting call is released only with a `Recorded` (see `stages::receipts`).
use std::{
    sync::Arc,
    time::{Instant, SystemTime},
};

use portcullis_attest::VerifiedCall;
use portcullis_audit::{AuditLog, AuditRecord, Decision, DurableReceipt, Outcome, RecordKind, Sha256Hex};
use portcullis_core::{CallId, Principal, ServerName, Tier};
use portcullis_mcp::{Message, canonical::canonical_sha256};
use portcullis_policy::{Arguments, DecisionRequest, Permit};
use serde_json::Value;

use crate::stages::classify::Hold;

/// The audit log could not take a record: the call must not proceed.
#[derive(Debug, thiserror::Error)]
#[error("the audit log cannot be written ({0}); the call was denied because nothing may happen unrecorded")]
pub struct RecordError(String);

/// The replay cache could not be restored from the audit log at start.
#[derive(Debug, thiserror::Error)]
#[error(
    "cannot restore the replay cache of host signatures from the audit log ({0}); check the log with `portcullis audit verify`"
)]
pub struct RestoreError(String);

/// What the authorise stage decided, as recorded.
#[derive(Debug, Clone)]
pub struct Verdict {
    pub allowed: bool,
    /// Why (policy ids; never policy text or arguments).
    pub reason: String,
    pub decision_id: String,
    pub policy_hash: String,
}

fn hex_digest(text: &str) -> Option<Sha256Hex> {
    let bytes: [u8; 32] = hex::decode(text).ok()?.try_into().ok()?;
    Some(Sha256Hex::from_digest(bytes))
}

/// The facts about one call that every record of it repeats.
#[derive(Debug, Clone)]
pub struct CallFacts {
    pub call_id: CallId,
    pub principal: Principal,
    pub server: ServerName,
    pub method: String,
    pub target: Option<String>,
    pub args_sha256: Option<[u8; 32]>,
    /// The arguments themselves, kept only for redacted body capture.
    pub arguments: Option<Value>,
    /// The host signature the call carried, once verified: its records name the key, the
    /// nonce it consumed and its expiry, so a restart can restore the replay cache (T13).
    pub signature: Option<SignatureFacts>,
    /// What the policy saw of the call beyond the record's own fields: the caller's reason
    /// and the tier, so a logged decision says why it was asked and can be replayed.
    pub decided: Option<DecidedFacts>,
    /// The approval the call was allowed with (the approvals stage), named in its records.
    pub approval: Option<ApprovalFacts>,
    /// The break-glass window the call was decided under: every record of it is flagged.
    pub break_glass: Option<String>,
    /// The call's credential (the scope stage): which rule and source, and once minted its
    /// grant id and expiry. Never the secret.
    pub credential: Option<CredentialFacts>,
}

/// A call's credential as its records keep it.
#[derive(Debug, Clone)]
pub struct CredentialFacts {
    /// What the broker mints, chosen before the decision (the policy saw it).
    pub plan: portcullis_broker::Plan,
    /// The arguments' lowercase hex digest, which a `jwt` credential carries.
    pub args_sha256: String,
    /// Set once minted: the grant's id and when the credential expires (unix seconds).
    pub grant: Option<(String, u64)>,
}

/// The `ext` keys of a call's credential.
pub const CREDENTIAL_RULE: &str = "credential_rule";
pub const CREDENTIAL_SOURCE: &str = "credential_source";
pub const CREDENTIAL_KIND: &str = "credential_kind";
pub const CREDENTIAL_SCOPE: &str = "credential_scope";
pub const CREDENTIAL_GRANT: &str = "credential_grant";
pub const CREDENTIAL_EXPIRES_AT: &str = "credential_expires_at";

/// The approval a call used: its request id and who gave it.
#[derive(Debug, Clone)]
pub struct ApprovalFacts {
    pub id: String,
    pub approvers: Vec<String>,
}

/// The `ext` keys of a call's approval.
pub const APPROVAL_ID: &str = "approval_id";
/// The `ext` key of an outcome record's request digest (SHA-256 of the RFC 8785 form of the
/// `tools/call` params), recorded when results are signed.
pub const REQUEST_SHA256: &str = "request_sha256";
pub const APPROVED_BY: &str = "approved_by";
/// The `ext` key naming the break-glass window a call was decided under.
pub const BREAK_GLASS: &str = "break_glass";

/// The inputs of a decision that the record keeps (the reason redacted and bounded).
#[derive(Debug, Clone)]
pub struct DecidedFacts {
    pub tier: Tier,
    pub reason: Option<String>,
}

/// The `ext` keys of a decision's inputs.
pub const CALLER_REASON: &str = "caller_reason";
pub const TIER: &str = "tier";

/// A verified host signature, as the records keep it (never the signature itself).
#[derive(Debug, Clone)]
pub struct SignatureFacts {
    pub kid: String,
    pub nonce: String,
    pub exp: u64,
    /// SHA-256 of the signed bytes.
    pub signed_sha256: String,
}

impl RestoreError {
    pub(crate) fn new(text: impl Into<String>) -> Self {
        Self(text.into())
    }
}

/// The `ext` keys of a record's signature facts.
pub const SIGNED_KID: &str = "signed_kid";
pub const SIGNED_NONCE: &str = "signed_nonce";
pub const SIGNED_EXP: &str = "signed_exp";
pub const SIGNED_SHA256: &str = "signed_sha256";

impl CallFacts {
    /// The facts of a routed call (the server's own names). The argument digest is the one
    /// the authorise stage computed (arguments are canonicalised once); with the audit log
    /// off nothing is digested, and the arguments themselves are copied only when the
    /// records capture bodies.
    pub fn of(
        principal: &Principal,
        server: &ServerName,
        msg: &Message,
        digested: &Arguments,
        recorder: &Recorder,
    ) -> Self {
        let target = msg
            .param_str("name")
            .or_else(|| msg.param_str("uri"))
            .map(str::to_owned);
        let given = msg.param("arguments");
        let args_sha256 = given.filter(|_| recorder.log().is_some()).map(|_| digested.sha256());
        let arguments = given.filter(|_| recorder.captures_bodies()).cloned();
        CallFacts {
            call_id: CallId::random(),
            principal: principal.clone(),
            server: server.clone(),
            method: msg.method().unwrap_or_default().to_owned(),
            target,
            args_sha256,
            arguments,
            signature: None,
            decided: None,
            approval: None,
            break_glass: None,
            credential: None,
        }
    }

    /// The same facts, with the policy's inputs that the decision record keeps (only when
    /// there is a log to keep them).
    pub fn decided_under(self, request: &DecisionRequest, recorder: &Recorder) -> Self {
        if recorder.log().is_none() {
            return self;
        }
        Self {
            decided: Some(DecidedFacts {
                tier: request.tier,
                reason: request.effective_reason().map(crate::stages::redact::reason),
            }),
            ..self
        }
    }

    /// The same facts, naming the verified host signature the call carried.
    pub fn signed_with(self, verified: Option<&VerifiedCall>) -> Self {
        Self {
            signature: verified.map(|v| SignatureFacts {
                kid: v.kid.clone(),
                nonce: v.nonce.clone(),
                exp: v.exp,
                signed_sha256: v.signed_sha256.clone(),
            }),
            ..self
        }
    }

    /// [`CallFacts::of`] for a call refused before the authorise stage canonicalised its
    /// arguments.
    pub fn before_policy(principal: &Principal, server: &ServerName, msg: &Message, recorder: &Recorder) -> Self {
        let arguments = msg.param("arguments").cloned();
        let digested = Arguments::new(arguments.unwrap_or(Value::Null));
        Self::of(principal, server, msg, &digested, recorder)
    }

    fn record(&self, kind: RecordKind) -> AuditRecord {
        let mut r = AuditRecord::new(kind, SystemTime::now());
        r.call_id = Some(self.call_id.to_string());
        r.principal = Some(portcullis_audit::Principal {
            workload: Some(self.principal.workload.clone()),
            user: self.principal.user.clone(),
        });
        r.server = Some(self.server.to_string());
        r.method = Some(self.method.clone());
        r.tool = self.target.clone();
        r.args_sha256 = self.args_sha256.map(Sha256Hex::from_digest);
        if let Some(sig) = &self.signature {
            r.ext.insert(SIGNED_KID.into(), sig.kid.clone());
            r.ext.insert(SIGNED_NONCE.into(), sig.nonce.clone());
            r.ext.insert(SIGNED_EXP.into(), sig.exp.to_string());
            r.ext.insert(SIGNED_SHA256.into(), sig.signed_sha256.clone());
        }
        if let Some(approval) = &self.approval {
            r.ext.insert(APPROVAL_ID.into(), approval.id.clone());
            r.ext.insert(APPROVED_BY.into(), approval.approvers.join(","));
        }
        if let Some(window) = &self.break_glass {
            r.ext.insert(BREAK_GLASS.into(), window.clone());
        }
        if let Some(credential) = &self.credential {
            r.ext.insert(CREDENTIAL_RULE.into(), credential.plan.rule.clone());
            r.ext.insert(CREDENTIAL_SOURCE.into(), credential.plan.source.clone());
            r.ext.insert(CREDENTIAL_KIND.into(), credential.plan.kind.to_owned());
            r.ext.insert(CREDENTIAL_SCOPE.into(), credential.plan.scope.clone());
            if let Some((grant, expires_at)) = &credential.grant {
                r.ext.insert(CREDENTIAL_GRANT.into(), grant.clone());
                r.ext.insert(CREDENTIAL_EXPIRES_AT.into(), expires_at.to_string());
            }
        }
        r
    }
}

/// Where records go: the audit log, or nowhere when the operator turned it off.
#[derive(Clone, Default)]
pub struct Recorder {
    log: Option<Arc<AuditLog>>,
    capture_bodies: bool,
}

/// What an approval step is recorded against: a call's approval request, or a break-glass
/// window (as the step leaves it) and who took the step.
enum Subject<'a> {
    Approval {
        binding: &'a portcullis_approvals::Binding,
        call_id: &'a str,
    },
    BreakGlass {
        window: &'a portcullis_approvals::Window,
        by: &'a str,
    },
}

impl Recorder {
    pub fn new(log: Option<Arc<AuditLog>>) -> Self {
        Self {
            log,
            capture_bodies: false,
        }
    }

    /// Also keep (redacted) arguments and results in the records.
    pub fn capturing_bodies(self) -> Self {
        Self {
            capture_bodies: true,
            ..self
        }
    }

    /// Whether records keep (redacted) arguments and results.
    pub fn captures_bodies(&self) -> bool {
        self.capture_bodies && self.log.is_some()
    }

    /// False once the log failed a write (calls are denied meanwhile).
    pub fn healthy(&self) -> bool {
        self.log.as_ref().is_none_or(|l| l.healthy())
    }

    pub fn log(&self) -> Option<&Arc<AuditLog>> {
        self.log.as_ref()
    }

    /// Records an allowed decision durably, before anything is forwarded.
    pub(crate) async fn permitted(&self, call: &CallFacts, permit: &Permit) -> Result<Decided, RecordError> {
        let verdict = Verdict {
            allowed: true,
            reason: permit.reasons().join(","),
            decision_id: permit.decision_id().to_owned(),
            policy_hash: permit.policy_hash().to_owned(),
        };
        self.decision(call, &verdict).await?;
        Ok(Decided {
            decision_id: verdict.decision_id,
            at: Instant::now(),
        })
    }

    /// Records a decision durably: an allow before forwarding, a deny before answering.
    pub(crate) async fn decision(&self, call: &CallFacts, verdict: &Verdict) -> Result<(), RecordError> {
        if self.log.is_none() {
            // Audit off: build nothing (the record's hashes and clones are per-call work).
            return Ok(());
        }
        let mut r = call.record(RecordKind::Decision);
        r.decision = Some(if verdict.allowed {
            Decision::Allow
        } else {
            Decision::Deny
        });
        r.reason = Some(verdict.reason.clone());
        r.decision_id = Some(verdict.decision_id.clone());
        r.policy_sha256 = hex_digest(&verdict.policy_hash);
        if let Some(decided) = &call.decided {
            r.ext.insert(TIER.into(), decided.tier.as_str().into());
            if let Some(reason) = &decided.reason {
                r.ext.insert(CALLER_REASON.into(), reason.clone());
            }
        }
        if let (true, Some(args)) = (self.capture_bodies, &call.arguments) {
            r.ext.insert("arguments".into(), crate::stages::redact::capture(args));
        }
        self.append(&r).await.map(|_| ())
    }

    /// Records a client notification the gateway refused to relay (T21), durably, as a
    /// denied decision: a `tools/call` sent without an id leaves a trace.
    pub(crate) async fn refused_notification(
        &self,
        principal: &Principal,
        method: &str,
        why: &str,
    ) -> Result<(), RecordError> {
        if self.log.is_none() {
            return Ok(());
        }
        let mut r = AuditRecord::new(RecordKind::Decision, SystemTime::now());
        r.call_id = Some(CallId::random().to_string());
        r.principal = Some(portcullis_audit::Principal {
            workload: Some(principal.workload.clone()),
            user: principal.user.clone(),
        });
        r.method = Some(method.to_owned());
        r.decision = Some(Decision::Deny);
        r.decision_id = Some(CallId::random().to_string());
        r.reason = Some(why.to_owned());
        r.ext.insert("message".into(), "notification".into());
        self.append(&r).await.map(|_| ())
    }

    /// Records a request the HTTP front refused because the gateway could not check its
    /// credentials (the issuer's key set is unavailable), durably, as a denied decision
    /// with the reason prefixed `identify:` and no target (the body is not read yet). The
    /// failure is the gateway's own, so each such refusal is recorded; bad credentials are
    /// not (a flood of them must not become writes). Returns the decision id the refusal
    /// quotes; `None` with the log off.
    pub async fn unchecked_credentials(&self, why: &str) -> Result<Option<String>, RecordError> {
        if self.log.is_none() {
            return Ok(None);
        }
        let decision_id = CallId::random().to_string();
        let mut r = AuditRecord::new(RecordKind::Decision, SystemTime::now());
        r.call_id = Some(CallId::random().to_string());
        r.decision = Some(Decision::Deny);
        r.decision_id = Some(decision_id.clone());
        r.reason = Some(format!("identify: {why}"));
        self.append(&r).await.map(|_| Some(decision_id))
    }

    /// Records a change of the policy set in force (reload), with its hash.
    pub async fn policy_change(&self, policy_hash: &str, detail: &str) -> Result<(), RecordError> {
        let mut r = AuditRecord::new(RecordKind::PolicyChange, SystemTime::now());
        r.policy_sha256 = hex_digest(policy_hash);
        r.reason = Some(detail.to_owned());
        self.append(&r).await.map(|_| ())
    }

    /// Records one step of a call's approval (`requested`, `granted`, `denied`, `expired`,
    /// `withdrawn`, `used`), linked to the call by its id: `audit show --call-id` shows the
    /// whole story. `detail`: who, through which channel, a signature's digest — never a
    /// signature or key.
    pub async fn approval(
        &self,
        binding: &portcullis_approvals::Binding,
        call_id: &str,
        step: &str,
        detail: &[(&str, String)],
    ) -> Result<(), RecordError> {
        if self.log.is_none() {
            return Ok(());
        }
        let mut r = AuditRecord::new(RecordKind::Approval, SystemTime::now());
        r.call_id = Some(call_id.to_owned());
        r.principal = Some(portcullis_audit::Principal {
            workload: Some(binding.principal.workload.clone()),
            user: binding.principal.user.clone(),
        });
        r.server = Some(binding.server.clone());
        r.method = Some(binding.method.clone());
        r.tool = Some(binding.target.clone());
        r.args_sha256 = hex_digest(&binding.arguments_sha256);
        r.policy_sha256 = hex_digest(&binding.policy_sha256);
        r.reason = Some(format!("approval {step}"));
        r.ext.insert(APPROVAL_ID.into(), binding.id.clone());
        r.ext.insert("approval_step".into(), step.to_owned());
        r.ext.insert("approval_nonce".into(), binding.nonce.clone());
        r.ext
            .insert("approval_expires_at".into(), binding.expires_at.to_string());
        for (key, value) in detail {
            r.ext.insert((*key).to_owned(), value.clone());
        }
        self.append(&r).await.map(|_| ())
    }

    /// Records approval step `step`, then gives it effect with `change`: the record is
    /// durable before the store shows the step to anyone, so a call released by a grant
    /// (on this replica or another) records `used` after `granted`, and a step the log
    /// cannot take changes nothing. A change the store then refuses (another approver or
    /// replica decided first, the request lapsed) is recorded `void`, naming the step and
    /// why. The outer error: a record could not be written.
    pub async fn approval_then<T>(
        &self,
        binding: &portcullis_approvals::Binding,
        call_id: &str,
        step: &str,
        detail: &[(&str, String)],
        change: impl Future<Output = Result<T, portcullis_approvals::ApprovalError>>,
    ) -> Result<Result<T, portcullis_approvals::ApprovalError>, RecordError> {
        self.recorded_then(Subject::Approval { binding, call_id }, step, detail, change)
            .await
    }

    /// [`Self::approval_then`] for a break-glass window: the window as the change will
    /// leave it is recorded (`step`), then `change` makes it so; a refusal after the
    /// record is recorded `void`.
    pub async fn break_glass_then<T>(
        &self,
        window: &portcullis_approvals::Window,
        step: &str,
        by: &str,
        change: impl Future<Output = Result<T, portcullis_approvals::ApprovalError>>,
    ) -> Result<Result<T, portcullis_approvals::ApprovalError>, RecordError> {
        self.recorded_then(Subject::BreakGlass { window, by }, step, &[], change)
            .await
    }

    /// Records `step` (with `detail`) of `subject`, then makes `change`: what the step
    /// decides counts only once its record is durable. A change refused after its record
    /// is recorded `void`, naming the step (`voids`) and why. The outer error: a record
    /// could not be written (then nothing changed, or the refusal's `void` is missing).
    async fn recorded_then<T>(
        &self,
        subject: Subject<'_>,
        step: &str,
        detail: &[(&str, String)],
        change: impl Future<Output = Result<T, portcullis_approvals::ApprovalError>>,
    ) -> Result<Result<T, portcullis_approvals::ApprovalError>, RecordError> {
        self.record_step(&subject, step, detail).await?;
        let changed = change.await;
        if let Err(e) = &changed {
            let why = [("voids", step.to_owned()), ("why", e.to_string())];
            self.record_step(&subject, "void", &why).await?;
        }
        Ok(changed)
    }

    async fn record_step(
        &self,
        subject: &Subject<'_>,
        step: &str,
        detail: &[(&str, String)],
    ) -> Result<(), RecordError> {
        match *subject {
            Subject::Approval { binding, call_id } => self.approval(binding, call_id, step, detail).await,
            Subject::BreakGlass { window, by } => self.break_glass(window, step, by, detail).await,
        }
    }

    /// Records a step of a break-glass window (`requested`, `approved`, `active`, `ended`,
    /// `void`): who, why (the reason, redacted and bounded), for how long, for whom, and
    /// `detail` (for `void`: the step undone and why).
    pub async fn break_glass(
        &self,
        window: &portcullis_approvals::Window,
        step: &str,
        by: &str,
        detail: &[(&str, String)],
    ) -> Result<(), RecordError> {
        let mut r = AuditRecord::new(RecordKind::Admin, SystemTime::now());
        r.reason = Some(format!("break-glass {step}"));
        r.ext.insert(BREAK_GLASS.into(), window.id.clone());
        r.ext.insert("break_glass_step".into(), step.to_owned());
        r.ext.insert("by".into(), by.to_owned());
        r.ext.insert(
            "break_glass_reason".into(),
            crate::stages::redact::reason(&window.reason),
        );
        r.ext.insert("ttl_secs".into(), window.ttl_secs.to_string());
        r.ext.insert("approvers".into(), window.approvers.join(","));
        if let Some(workload) = &window.workload {
            r.ext.insert("workload".into(), workload.clone());
        }
        if let portcullis_approvals::WindowState::Active { until } = window.state {
            r.ext.insert("until".into(), until.to_string());
        }
        for (key, value) in detail {
            r.ext.insert((*key).to_owned(), value.clone());
        }
        self.append(&r).await.map(|_| ())
    }

    /// Records that the gateway (re)started with a config: what it runs is auditable.
    pub async fn config_loaded(&self, config_sha256: [u8; 32], servers: &[String]) -> Result<(), RecordError> {
        let mut r = AuditRecord::new(RecordKind::ConfigChange, SystemTime::now());
        r.reason = Some("gateway started".into());
        r.ext.insert("config_sha256".into(), hex::encode(config_sha256));
        r.ext.insert("servers".into(), servers.join(","));
        self.append(&r).await.map(|_| ())
    }

    /// Records the call's outcome, durably, before the answer is released. Needs the
    /// [`Decided`] of the call's decision record; the latency recorded is the time since it.
    pub(crate) async fn outcome(
        &self,
        decided: Decided,
        call: &CallFacts,
        answer: &Message,
        request_sha256: Option<[u8; 32]>,
    ) -> Result<Recorded, RecordError> {
        let latency = decided.at.elapsed();
        if self.log.is_none() {
            // Audit off: no record, so no canonical form and hash of the result either (and
            // no signed receipt, which names a log index).
            return Ok(Recorded::AuditOff(danger::AuditOff { _not_recorded: () }));
        }
        let mut r = call.record(RecordKind::Call);
        r.latency_us = Some(u64::try_from(latency.as_micros()).unwrap_or(u64::MAX));
        // The decision this outcome followed (a batch receipt attests it from this record).
        r.decision_id = Some(decided.decision_id.clone());
        if let Some(digest) = request_sha256 {
            // What a batch receipt's verifier checks the request against (the signed
            // receipt's `requestHash`).
            r.ext.insert(REQUEST_SHA256.into(), hex::encode(digest));
        }
        if self.capture_bodies
            && let Some(body) = answer.result().or_else(|| answer.error())
        {
            r.ext.insert("result".into(), crate::stages::redact::capture(body));
        }
        let mut result_sha256 = None;
        match (answer.result(), answer.error()) {
            (Some(result), _) => {
                r.outcome = Some(Outcome::Ok);
                let digest = canonical_sha256(result);
                result_sha256 = Some(digest);
                r.result_sha256 = Some(Sha256Hex::from_digest(digest));
            }
            (None, error) => {
                r.outcome = Some(Outcome::Error);
                // Only the code: an upstream's error text may carry data we must not keep.
                let code = error
                    .and_then(|e| e.get("code"))
                    .and_then(Value::as_i64)
                    .unwrap_or_default();
                r.error = Some(format!("json-rpc error {code}"));
                if let Some(e) = error {
                    r.result_sha256 = Some(Sha256Hex::from_digest(canonical_sha256(e)));
                }
            }
        }
        match self.append(&r).await? {
            Some(receipt) => Ok(Recorded::Durable {
                receipt,
                result_sha256,
                decision_id: decided.decision_id,
            }),
            None => Ok(Recorded::AuditOff(danger::AuditOff { _not_recorded: () })),
        }
    }

    /// Records that a server's tools or transport no longer match their pins, or that a tool
    /// definition was flagged (the classify stage).
    pub(crate) async fn pin_drift(&self, server: &ServerName, hold: &Hold) -> Result<(), RecordError> {
        let mut r = AuditRecord::new(RecordKind::PinDrift, SystemTime::now());
        r.server = Some(server.to_string());
        r.tool = hold.tool.clone();
        r.reason = Some(hold.reason.clone());
        if let Some(listed) = &hold.listed {
            r.ext.insert("listed_definition_sha256".into(), listed.clone());
        }
        if let Some(pinned) = &hold.pinned {
            r.ext.insert("pinned_definition_sha256".into(), pinned.clone());
        }
        self.append(&r).await.map(|_| ())
    }

    /// Records the key that signs results from now on, so every receipt's key can be found
    /// in the log and a rotation shows as a change between two of these records (T20).
    pub async fn receipt_key(&self, kid: &str, public_key: &[u8; 32]) -> Result<(), RecordError> {
        let mut r = AuditRecord::new(RecordKind::Admin, SystemTime::now());
        r.reason = Some("result signing key in force".into());
        r.ext.insert("receipt_kid".into(), kid.to_owned());
        r.ext.insert("receipt_public_key".into(), hex::encode(public_key));
        self.append(&r).await.map(|_| ())
    }

    async fn append(&self, record: &AuditRecord) -> Result<Option<DurableReceipt>, RecordError> {
        let Some(log) = &self.log else { return Ok(None) };
        match log.append(record).await {
            Ok(receipt) => Ok(Some(receipt)),
            Err(e) => {
                tracing::error!("audit append failed; denying calls until the log is writable: {e}");
                Err(RecordError(e.to_string()))
            }
        }
    }
}

/// Proof that a call's allowed decision is in the log (or that the log is off): the
/// outcome record needs it, so a call's outcome can never be recorded without its decision.
#[must_use = "the outcome record needs the decision's evidence"]
pub struct Decided {
    decision_id: String,
    /// When the decision was durable: the call is forwarded right after.
    at: Instant,
}

/// What the outcome record left behind; releasing an answer to an acting call needs it.
#[must_use = "an answer to an acting call is released only with its Recorded"]
pub enum Recorded {
    /// The outcome is durable in the log: its receipt, the digest of the result it recorded
    /// (the signed receipt's `resultHash`; `None` for an error answer), and the decision.
    Durable {
        receipt: DurableReceipt,
        result_sha256: Option<[u8; 32]>,
        decision_id: String,
    },
    /// The operator turned the audit log off: nothing was recorded.
    AuditOff(danger::AuditOff),
}

/// What weakens the audit guarantee, named so nobody reaches for it by accident.
pub mod danger {
    /// Stands in for a `DurableReceipt` when the audit log is off (`[audit] enabled =
    /// false`): the answer is released with no record of it. Built only by the recorder.
    #[derive(Debug)]
    pub struct AuditOff {
        pub(super) _not_recorded: (),
    }
}

/// How many records are read at a time when scanning the log's tail backwards.
const TAIL_CHUNK: u64 = 4096;

/// The host signatures consumed by calls recorded at or after `since` (Unix seconds), read
/// back from the log's tail, newest first: `(kid, nonce, exp)`. The scan stops at the first
/// record older than `since`.
pub async fn consumed_signatures(log: &AuditLog, since: i64) -> Result<Vec<(String, String, u64)>, RestoreError> {
    let fail = |e: portcullis_audit::AuditError| RestoreError(e.to_string());
    let mut consumed = Vec::new();
    let mut end = log.len().await.map_err(fail)?;
    while end > 0 {
        let start = end.saturating_sub(TAIL_CHUNK);
        for record in log.read(start..end).await.map_err(fail)?.iter().rev() {
            let at = portcullis_policy::Timestamp::parse_rfc3339(&record.time).map(|t| t.unix());
            if at.is_ok_and(|t| t < since) {
                return Ok(consumed);
            }
            let (Some(kid), Some(nonce), Some(exp)) = (
                record.ext.get(SIGNED_KID),
                record.ext.get(SIGNED_NONCE),
                record.ext.get(SIGNED_EXP).and_then(|e| e.parse().ok()),
            ) else {
                continue;
            };
            consumed.push((kid.clone(), nonce.clone(), exp));
        }
        end = start;
    }
    Ok(consumed)
}
