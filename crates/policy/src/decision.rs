//! What the authorise stage hands on: a [`Decision`] for the log, and either a
//! [`Permit`] (the only way past the stage) or a [`Deny`].
//!
//! Only this crate can build a `Permit`; forwarding a call requires one, so
//! authorisation cannot be skipped by mistake. A `Deny` carries a message that is
//! safe to show the client (never policy text) and the internal reasons for the log.
use std::fmt;

use serde::{Deserialize, Serialize};

/// The outcome of one evaluation, as recorded in the audit log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Decision {
    /// `true` only if the engine said allow, reported no errors, and the policy set was current.
    pub allowed: bool,
    /// Random 128-bit id, lowercase hex; quoted to the client on deny.
    pub decision_id: String,
    /// SHA-256 over the sorted policy sources that were in force.
    pub policy_hash: String,
    /// Policy ids that determined the decision: the permits that matched on allow, the
    /// forbids that matched on deny (Rego: `allow` on allow, `deny_reasons` on deny).
    pub reasons: Vec<String>,
    /// Client-safe deny messages: `@reason` annotations of the matched Cedar forbids, or
    /// Rego's `deny_reasons`.
    pub messages: Vec<String>,
    /// Evaluation errors. Any error means deny.
    pub errors: Vec<String>,
    /// Set (to the limit, in milliseconds) when the evaluation ran over its time limit:
    /// one of the `errors`, and the one the client is told about by name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub time_limit_exceeded_ms: Option<u64>,
}

impl Decision {
    /// A fresh random decision id.
    pub(crate) fn new_id() -> String {
        format!("{:032x}", rand::random::<u128>())
    }

    /// The message shown to the client on deny: no policy text, no internal errors.
    pub fn client_message(&self) -> String {
        if let Some(limit) = self.time_limit_exceeded_ms {
            return format!(
                "call denied: the policy could not be evaluated within its time limit of {limit} ms; ask the operator \
                 to look up decision `{}`",
                self.decision_id
            );
        }
        if !self.errors.is_empty() {
            return format!(
                "call denied: the policy could not be evaluated; ask the operator to look up decision `{}`",
                self.decision_id
            );
        }
        if self.messages.is_empty() {
            return "call denied by policy: no policy allows this call".to_owned();
        }
        format!("call denied by policy: {}", self.messages.join("; "))
    }
}

/// Proof that the authorise stage allowed this call. Built only by this crate; not `Clone`.
#[must_use = "a Permit is the proof a call may be forwarded; pass it on"]
#[derive(Debug, PartialEq, Eq)]
pub struct Permit {
    decision_id: String,
    policy_hash: String,
    reasons: Vec<String>,
}

impl Permit {
    /// Only an allowed decision becomes a permit.
    pub(crate) fn from_allowed(decision: Decision) -> Result<Self, Deny> {
        if decision.allowed && decision.errors.is_empty() {
            Ok(Self {
                decision_id: decision.decision_id,
                policy_hash: decision.policy_hash,
                reasons: decision.reasons,
            })
        } else {
            Err(Deny::from_decision(Decision {
                allowed: false,
                ..decision
            }))
        }
    }

    /// A permit for tests of later stages. Never enabled in the release binary.
    #[cfg(feature = "test-util")]
    pub fn for_test(decision_id: impl Into<String>) -> Self {
        Self {
            decision_id: decision_id.into(),
            policy_hash: "test".to_owned(),
            reasons: Vec::new(),
        }
    }

    pub fn decision_id(&self) -> &str {
        &self.decision_id
    }

    pub fn policy_hash(&self) -> &str {
        &self.policy_hash
    }

    /// The permit policies that allowed the call, for the audit record.
    pub fn reasons(&self) -> &[String] {
        &self.reasons
    }
}

/// A refused call: the decision for the log and a client-safe message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct Deny {
    // Boxed: keeps `Result<Permit, Deny>` small on the allow path.
    decision: Box<Decision>,
    message: String,
}

impl Deny {
    pub(crate) fn from_decision(decision: Decision) -> Self {
        let message = decision.client_message();
        Self {
            decision: Box::new(decision),
            message,
        }
    }

    pub fn decision_id(&self) -> &str {
        &self.decision.decision_id
    }

    /// Adds a sentence to the client's message (how to fix what the caller can fix); the
    /// decision and its record are unchanged.
    pub fn with_hint(mut self, hint: &str) -> Self {
        self.message.push_str(" (");
        self.message.push_str(hint);
        self.message.push(')');
        self
    }

    pub fn policy_hash(&self) -> &str {
        &self.decision.policy_hash
    }

    /// Safe to return to the client.
    pub fn client_message(&self) -> &str {
        &self.message
    }

    /// Policy ids (or Rego deny reasons) behind the deny; for the log only.
    pub fn reasons(&self) -> &[String] {
        &self.decision.reasons
    }

    /// Evaluation errors; for the log only (they may quote policy text).
    pub fn errors(&self) -> &[String] {
        &self.decision.errors
    }

    /// The whole decision, for the audit record.
    pub fn decision(&self) -> &Decision {
        &self.decision
    }
}

/// Why a decision came out as it did (`portcullis policy explain`).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Explanation {
    /// The decision the gateway would enforce.
    pub decision: Decision,
    /// Every permit policy whose scope and conditions held.
    pub permits: Vec<String>,
    /// Every forbid policy whose scope and conditions held.
    pub forbids: Vec<String>,
    /// How many policies the index selected for this request (Rego: all rules).
    pub policies_considered: usize,
    /// The input document the engines saw.
    pub input: serde_json::Value,
}

impl fmt::Display for Explanation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let verdict = if self.decision.allowed { "allow" } else { "deny" };
        writeln!(f, "decision: {verdict} (id {})", self.decision.decision_id)?;
        writeln!(f, "policy set: {}", self.decision.policy_hash)?;
        writeln!(f, "policies considered: {}", self.policies_considered)?;
        writeln!(f, "permits matched: {}", list(&self.permits))?;
        writeln!(f, "forbids matched: {}", list(&self.forbids))?;
        writeln!(f, "messages: {}", list(&self.decision.messages))?;
        write!(f, "errors: {}", list(&self.decision.errors))
    }
}

fn list(items: &[String]) -> String {
    if items.is_empty() {
        "none".to_owned()
    } else {
        items.join(", ")
    }
}
