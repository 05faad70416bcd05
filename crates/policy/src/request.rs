//! The facts one authorisation decision is made on: [`DecisionRequest`].
//!
//! The gateway fills a `DecisionRequest` after the identify, attest, classify and
//! validate stages, then hands it to the authorise stage. The same struct,
//! serialised, is the fixture format of `portcullis policy test` and the input
//! of `portcullis policy explain`, so a decision can always be replayed offline.
use std::collections::BTreeMap;

use portcullis_core::{ServerName, Tier};
use serde::{Deserialize, Serialize};

pub use crate::canonical::Arguments;
pub use crate::time::Timestamp;

/// Everything the policy engines see about one call (or one listing check).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DecisionRequest {
    /// Who is calling.
    pub principal: PrincipalFacts,
    /// The upstream server the call goes to.
    pub server: ServerName,
    /// The JSON-RPC method as received, e.g. `tools/call`.
    pub method: String,
    /// The tool or prompt name, or the resource URI, without the server namespace.
    /// For a method that names no target, the method itself.
    pub target: String,
    /// The tool's tier from the operator-signed manifest.
    pub tier: Tier,
    /// The call's arguments (`params.arguments`); `null` when there are none. Their
    /// canonical digest is computed once, when they are set, and shared with the audit record.
    #[serde(default)]
    pub arguments: Arguments,
    /// The caller's stated reason for the call, if any. Blank reasons count as none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// When the call was received.
    pub time: Timestamp,
    /// `true` for a listing check ("may this principal use this tool?") rather than a call.
    #[serde(default)]
    pub listing: bool,
    /// A valid approval bound to this call was presented (filled by the approvals stage).
    #[serde(default)]
    pub approval_present: bool,
    /// The call is made under an active break-glass window.
    #[serde(default)]
    pub break_glass: bool,
    /// Labels the session has collected so far (e.g. `private-data`, `untrusted-content`, T10).
    #[serde(default)]
    pub session_labels: Vec<String>,
    /// The call carried a valid host signature (filled by the attest stage).
    #[serde(default)]
    pub call_signed: bool,
    /// Scanner findings on the tool's definition that did not hold it back (filled by the
    /// classify stage), e.g. `hidden-instruction`, `invisible-character`.
    #[serde(default)]
    pub tool_findings: Vec<String>,
    /// The credential the broker mints for this call if it is allowed (a `[[credentials]]`
    /// rule applies); absent when the server gets none. Never the secret itself.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub credential: Option<CredentialFact>,
}

/// What a call's credential would be, as policy sees it (`context.credential`): the rule
/// that grants it, the source that mints it, the source's kind and a readable scope.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CredentialFact {
    /// The `[[credentials]]` rule's `id`.
    pub rule: String,
    /// The `[broker.sources.NAME]` that mints it.
    pub source: String,
    /// `postgres-role`, `jwt`, `token-exchange` or `secret`.
    pub kind: String,
    /// What it allows, e.g. `SELECT on schema sales`.
    pub scope: String,
}

/// The caller, as established by the identify stage.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PrincipalFacts {
    /// SPIFFE ID of the calling workload, or the configured name on the stdio front.
    pub workload: String,
    /// OAuth subject of the user, when a token was presented.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    /// `true` when no identity could be established (a configured anonymous principal).
    #[serde(default)]
    pub anonymous: bool,
    /// Validated token claims, by name.
    #[serde(default)]
    pub claims: BTreeMap<String, serde_json::Value>,
    /// OAuth scopes granted to the caller.
    #[serde(default)]
    pub scopes: Vec<String>,
}

impl PrincipalFacts {
    /// An identified workload with no user, claims or scopes.
    pub fn workload(workload: impl Into<String>) -> Self {
        Self {
            workload: workload.into(),
            user: None,
            anonymous: false,
            claims: BTreeMap::new(),
            scopes: Vec::new(),
        }
    }
}

impl From<&portcullis_core::Principal> for PrincipalFacts {
    fn from(p: &portcullis_core::Principal) -> Self {
        Self {
            user: p.user.clone(),
            ..Self::workload(p.workload.clone())
        }
    }
}

/// The kind of thing a method acts on; decides the Cedar action and resource type.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TargetKind {
    /// `tools/call`: Cedar `Action::"tools/call"`, resource `Tool`.
    Tool,
    /// `resources/read`: Cedar `Action::"resources/read"`, resource `Resource`.
    Resource,
    /// `prompts/get`: Cedar `Action::"prompts/get"`, resource `Prompt`.
    Prompt,
    /// Any other method: Cedar `Action::"other"`, resource `Method`. Denied unless a policy allows it.
    Other,
}

impl TargetKind {
    /// Classifies a JSON-RPC method.
    pub fn of_method(method: &str) -> Self {
        match method {
            "tools/call" => Self::Tool,
            "resources/read" => Self::Resource,
            "prompts/get" => Self::Prompt,
            _ => Self::Other,
        }
    }

    /// The Cedar action id (and `input.action` in Rego) for this kind.
    pub fn action(self) -> &'static str {
        match self {
            Self::Tool => "tools/call",
            Self::Resource => "resources/read",
            Self::Prompt => "prompts/get",
            Self::Other => "other",
        }
    }

    /// The Cedar entity type of the target.
    pub fn entity_type(self) -> &'static str {
        match self {
            Self::Tool => "Tool",
            Self::Resource => "Resource",
            Self::Prompt => "Prompt",
            Self::Other => "Method",
        }
    }

    /// The method a listing check evaluates for items of this kind.
    fn acting_method(self) -> &'static str {
        self.action()
    }
}

impl DecisionRequest {
    /// A call request with no arguments, reason or later facts; set those fields as needed.
    pub fn call(
        principal: PrincipalFacts,
        server: ServerName,
        method: impl Into<String>,
        target: impl Into<String>,
        tier: Tier,
        time: Timestamp,
    ) -> Self {
        Self {
            principal,
            server,
            method: method.into(),
            target: target.into(),
            tier,
            arguments: Arguments::default(),
            reason: None,
            time,
            listing: false,
            approval_present: false,
            break_glass: false,
            session_labels: Vec::new(),
            call_signed: false,
            tool_findings: Vec::new(),
            credential: None,
        }
    }

    /// The listing flavour: "may `principal` use this tool (prompt, resource)?".
    ///
    /// It evaluates the same policies as a call, with the acting method
    /// (`tools/call` for a tool), no arguments and `listing = true`, so one policy
    /// set decides both what a caller may call and what `tools/list` shows.
    pub fn listing(
        principal: PrincipalFacts,
        server: ServerName,
        kind: TargetKind,
        target: impl Into<String>,
        tier: Tier,
        time: Timestamp,
    ) -> Self {
        Self {
            listing: true,
            ..Self::call(principal, server, kind.acting_method(), target, tier, time)
        }
    }

    /// The kind of target this request's method acts on.
    pub fn target_kind(&self) -> TargetKind {
        TargetKind::of_method(&self.method)
    }

    /// The reason, trimmed; `None` when absent or blank.
    pub fn effective_reason(&self) -> Option<&str> {
        self.reason.as_deref().map(str::trim).filter(|r| !r.is_empty())
    }
}
