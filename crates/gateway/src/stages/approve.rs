//! The approvals stage's judgement: a call the policy refused *only* for want of an
//! approval (it would be allowed with `approval_present`) proceeds when approvals bound
//! to that exact call are given — signed tokens sent with the call, or approvers answering
//! through the admin API while the call waits. The orchestration (waiting, records, the
//! fresh decision with `approval_present`) is `pipeline::approve`; the binding, tokens,
//! approvers and the store of pending requests are the `approvals` crate's.
use std::time::Duration;

use portcullis_approvals::{
    APPROVAL_META_KEY, ApprovalError, ApprovalStore, Approver, Approvers, Binding, BindingPrincipal, Grant,
    PendingEntry, PendingState, token::Token, unix_now,
};
use portcullis_core::Principal;
use portcullis_mcp::Message;
use serde_json::Value;

/// The approvers, the calls waiting for them, and how long a call waits.
pub struct ApprovalGate {
    pub approvers: Approvers,
    /// The pending requests, used nonces and break-glass windows (in which the policy
    /// sees `break_glass`): this gateway's memory, or PostgreSQL shared by replicas.
    pub store: ApprovalStore,
    /// How long a call needing approval is held for an answer (0: refused at once, with
    /// the request it opened).
    pub wait: Duration,
    /// `requestState` of 2026-07-28 clients approving their own calls.
    pub request_states: portcullis_approvals::RequestStates,
}

/// What a `granted` record says of a grant: who approved, through which channel (`token`,
/// `admin`, `admin-token`, …) and, when the approval was signed, the SHA-256 of the
/// signature (never the signature itself).
pub fn grant_detail(grant: &Grant) -> Vec<(&'static str, String)> {
    let mut detail = vec![("approver", grant.approver.clone()), ("channel", grant.channel.clone())];
    if let Some(sig) = &grant.signature_sha256 {
        detail.push(("signature_sha256", sig.clone()));
    }
    detail
}

/// The `inputRequests` key of the gateway's approval question, and the prefix of its
/// `requestState` (other states are the server's own and pass untouched).
pub const INPUT_KEY: &str = "io.portcullis/approval";
pub const STATE_PREFIX: &str = "pcs1.";

/// The elicitation that asks a user whether their call may proceed (form mode).
pub fn approval_question(binding: &Binding, arguments: &str, reason: Option<&str>, tier: &str) -> Value {
    let message = format!(
        "Allow `{target}` on server `{server}`?\nArguments: {arguments}\nReason given: {reason}\n(approval request {id}, tier {tier})",
        target = binding.target,
        server = binding.server,
        reason = reason.unwrap_or("none"),
        id = binding.id,
    );
    serde_json::json!({
        "mode": "form",
        "message": message,
        "requestedSchema": {
            "type": "object",
            "properties": {"approve": {"type": "boolean", "title": "Allow this call",
                "description": "The gateway forwards the call only if you allow it."}},
            "required": ["approve"],
        },
    })
}

/// Whether an elicitation answer allows the call: accepted, with `approve: true`.
pub fn user_allowed(answer: Option<&Value>) -> bool {
    answer.and_then(|r| r.get("action")).and_then(Value::as_str) == Some("accept")
        && answer
            .and_then(|r| r.pointer("/content/approve"))
            .and_then(Value::as_bool)
            == Some(true)
}

/// Takes the gateway's own `requestState` and answer out of a 2026-07-28 retry (the server
/// never sees them): `None` when the request carries no state of the gateway's.
pub fn take_round_trip(msg: &mut Message) -> Option<(String, Option<Value>)> {
    let state = msg.param_str("requestState")?;
    if !state.starts_with(STATE_PREFIX) {
        return None;
    }
    msg.with_params(|p| {
        let state = p
            .shift_remove("requestState")?
            .as_str()?
            .trim_start_matches(STATE_PREFIX)
            .to_owned();
        let responses = p.get_mut("inputResponses").and_then(Value::as_object_mut);
        let answer = responses.and_then(|r| r.shift_remove(INPUT_KEY));
        if p.get("inputResponses")
            .and_then(Value::as_object)
            .is_some_and(serde_json::Map::is_empty)
        {
            p.shift_remove("inputResponses");
        }
        Some((state, answer))
    })
}

/// Why a call that needs approval does not have it.
#[derive(Debug)]
pub enum ApprovalRefusal {
    /// No (or not enough) approval yet: the request stays open until `binding.expires_at`.
    Required {
        binding: Box<Binding>,
        required: usize,
        granted: usize,
    },
    /// An approver said no.
    Denied { by: String, id: String },
    /// A token sent with the call does not count.
    Invalid(ApprovalError),
    /// The request could not be opened (the pending set is full), or the shared store
    /// failed.
    Unavailable(ApprovalError),
    /// The configuration registers no approver, so no approval can ever be given.
    NoApprovers,
    /// The policy changed while the call waited; the approval was for the old one.
    PolicyChanged,
    /// A 2026-07-28 client is asked (multi-round-trip): the call ends with this
    /// `input_required` result, and the client makes it again with the user's answer.
    InputRequired { result: Value, id: String },
}

impl std::fmt::Display for ApprovalRefusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Required {
                binding,
                required,
                granted,
            } => write!(
                f,
                "approval required: this call needs {required} approval(s) from registered approvers and has {granted}; \
                 it is pending as approval request `{id}` until {exp} (Unix seconds): an approver runs \
                 `portcullis approvals approve {id}`, then make the same call again (or send approvers' signed tokens \
                 in `params._meta[\"{APPROVAL_META_KEY}\"]`, made with `portcullis approvals sign`)",
                id = binding.id,
                exp = binding.expires_at,
            ),
            Self::Denied { by, id } => write!(f, "approval request `{id}` was denied by approver `{by}`"),
            Self::Invalid(e) => write!(f, "approval not accepted: {e}"),
            Self::Unavailable(e) => e.fmt(f),
            Self::NoApprovers => f.write_str(
                "approval required, but this gateway registers no approvers; ask the operator to add \
                 `[[approvals.approvers]]` to the config",
            ),
            Self::PolicyChanged => f.write_str(
                "the policy changed while the call waited for approval; make the call again (it needs a new approval)",
            ),
            Self::InputRequired { id, .. } => write!(
                f,
                "approval required: the user is asked (input_required, approval request `{id}`); make the call again with their answer"
            ),
        }
    }
}

impl ApprovalRefusal {
    /// What the deny record says (short; the client's text explains the way out).
    pub fn audit_text(&self) -> String {
        match self {
            Self::Required {
                binding,
                required,
                granted,
            } => format!(
                "approval: required ({granted} of {required}); request {} open until {}",
                binding.id, binding.expires_at
            ),
            other => format!("approval: {other}"),
        }
    }

    /// The open request, when the caller can still get it approved.
    pub fn binding(&self) -> Option<&Binding> {
        match self {
            Self::Required { binding, .. } => Some(binding),
            _ => None,
        }
    }
}

/// A store error as the call's refusal: the shared store failing makes the approval
/// unavailable (the store names itself and what to do); anything else is an approval
/// that does not count.
pub fn refusal(error: ApprovalError) -> ApprovalRefusal {
    match error {
        ApprovalError::Store { .. } => ApprovalRefusal::Unavailable(error),
        other => ApprovalRefusal::Invalid(other),
    }
}

/// The facts of a call an approval binds, as plain values (the request id, nonce and
/// expiry are filled in when a request is opened).
pub fn call_binding(
    principal: &Principal,
    server: &str,
    method: &str,
    target: &str,
    arguments_sha256: [u8; 32],
    policy_sha256: &str,
) -> Binding {
    Binding {
        v: portcullis_approvals::BINDING_VERSION,
        id: String::new(),
        principal: BindingPrincipal {
            workload: principal.workload.clone(),
            user: principal.user.clone(),
        },
        server: server.to_owned(),
        method: method.to_owned(),
        target: target.to_owned(),
        arguments_sha256: hex::encode(arguments_sha256),
        policy_sha256: policy_sha256.to_owned(),
        nonce: String::new(),
        expires_at: 0,
    }
}

/// Takes the approval tokens out of the call's `_meta` (the server never sees them): one
/// string or an array of strings; at most 16.
pub fn take_tokens(msg: &mut Message) -> Result<Vec<Token>, ApprovalError> {
    if msg.meta().is_none_or(|m| !m.contains_key(APPROVAL_META_KEY)) {
        return Ok(Vec::new());
    }
    let value = msg.with_params(|p| {
        p.get_mut("_meta")
            .and_then(Value::as_object_mut)
            .and_then(|m| m.shift_remove(APPROVAL_META_KEY))
    });
    let texts: Vec<&str> = match &value {
        Some(Value::String(one)) => vec![one.as_str()],
        Some(Value::Array(many)) if many.len() <= 16 => many.iter().filter_map(Value::as_str).collect(),
        _ => {
            return Err(ApprovalError::Malformed(format!(
                "`_meta[\"{APPROVAL_META_KEY}\"]` must be a token string or an array of at most 16"
            )));
        }
    };
    texts.into_iter().map(Token::parse).collect()
}

/// The tokens sent with a call, checked against the request they name (see
/// [`ApprovalGate::check_tokens`]): each approver's grant, ready to be given.
pub struct CheckedTokens<'g> {
    /// The request the tokens name, as it stood when they were checked.
    pub entry: PendingEntry,
    /// One grant per token, in the order sent (channel `token`, with the signature's digest).
    pub grants: Vec<(&'g Approver, Grant)>,
}

impl ApprovalGate {
    /// Checks the tokens sent with a call, all before any counts: they name one open
    /// request, for this same call, and each is signed over its binding by a registered,
    /// unrevoked approver who is not the caller. Nothing is granted yet (the pipeline gives
    /// each grant and records it, then [`Self::settle`]s).
    pub async fn check_tokens(&self, tokens: &[Token], call: &Binding) -> Result<CheckedTokens<'_>, ApprovalRefusal> {
        let Some(first) = tokens.first() else {
            return Err(ApprovalRefusal::Invalid(ApprovalError::Malformed("no token".into())));
        };
        let id = first.binding.id.as_str();
        if tokens.iter().any(|t| t.binding.id != id) {
            return Err(ApprovalRefusal::Invalid(ApprovalError::Malformed(
                "the tokens are for different approval requests".into(),
            )));
        }
        let entry = self.store.get(id).await.map_err(refusal)?;
        entry
            .binding
            .check_call_fields(call)
            .map_err(ApprovalRefusal::Invalid)?;
        let now = unix_now();
        let grants = tokens
            .iter()
            .map(|token| {
                let approver = self
                    .approvers
                    .verify(token, &entry.binding, now)
                    .map_err(ApprovalRefusal::Invalid)?;
                let grant = Grant {
                    approver: approver.name.clone(),
                    channel: "token".into(),
                    signature_sha256: Some(token.signature_sha256()),
                };
                Ok((approver, grant))
            })
            .collect::<Result<Vec<_>, ApprovalRefusal>>()?;
        Ok(CheckedTokens { entry, grants })
    }

    /// Where request `id` leaves the call once its tokens are counted: granted — it is
    /// consumed (used once); denied; or still short of approvals.
    pub async fn settle(&self, id: &str) -> Result<PendingEntry, ApprovalRefusal> {
        match self.store.consume(id).await {
            Ok(used) => return Ok(used),
            Err(ApprovalError::AlreadyDecided(..)) => {}
            Err(e) => return Err(refusal(e)),
        }
        let entry = self.store.get(id).await.map_err(refusal)?;
        match entry.state {
            // Granted since (an approver answered meanwhile): used now, once.
            PendingState::Granted => self.store.consume(id).await.map_err(refusal),
            PendingState::Denied { by } => Err(ApprovalRefusal::Denied { by, id: id.to_owned() }),
            PendingState::Waiting => Err(ApprovalRefusal::Required {
                granted: entry.grants.len(),
                required: entry.required,
                binding: Box::new(entry.binding),
            }),
        }
    }
}
