//! The input document: one normalised view of a [`DecisionRequest`] that every engine reads.
//!
//! Rego receives it verbatim as `input`; the Cedar engine builds its principal,
//! resource and context from the same fields (see `schema/portcullis.cedarschema`).
//! Derived facts — the argument hash, the trimmed reason, the server-qualified
//! scopes, the `require_reason` switch — are computed here, once, by the library,
//! so neither engine nor caller can disagree about them.
//!
//! ```json
//! { "principal": { "workload": "spiffe://example.org/agent", "user": "alice", "anonymous": false,
//!                  "claims": { "email": "alice@example.org" }, "scopes": ["mcp:read-sensitive"] },
//!   "server": "db", "method": "tools/call", "action": "tools/call",
//!   "target": { "kind": "tool", "name": "query", "id": "db/query" },
//!   "tier": "read-sensitive", "arguments": { "sql": "select 1" }, "arguments_sha256": "…",
//!   "reason": "ticket 42", "require_reason": true, "listing": false,
//!   "time": 1777627800, "time_rfc3339": "2026-05-01T09:30:00Z",
//!   "approval_present": false, "break_glass": false, "session_labels": [],
//!   "call_signed": true, "tool_findings": [],
//!   "server_scopes": ["read-sensitive"] }
//! ```
use std::collections::BTreeMap;
use std::time::Duration;

use portcullis_core::Tier;
use serde::Serialize;

use crate::canonical::CanonicalError;
use crate::request::{DecisionRequest, TargetKind};

/// Operator settings for decisions: facts of the deployment rather than of the call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Settings {
    /// Calls must carry a non-blank reason (default `true`). Exposed to policies as
    /// `context.require_reason` / `input.require_reason`, so switching it needs no policy edit.
    pub require_reason: bool,
    /// Bound on one evaluation (default 100 ms). Rego enforces it while running (its
    /// execution timer); for either engine a slower evaluation is denied afterwards.
    pub time_limit: Duration,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            require_reason: true,
            time_limit: Duration::from_millis(100),
        }
    }
}

/// The normalised input document (see the module docs for its JSON shape).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Input {
    pub principal: InputPrincipal,
    pub server: String,
    pub method: String,
    /// `tools/call`, `resources/read`, `prompts/get`, or `other` for any other method.
    pub action: &'static str,
    pub target: InputTarget,
    pub tier: Tier,
    pub arguments: serde_json::Value,
    /// Lowercase hex SHA-256 over the RFC 8785 canonical form of `arguments`.
    pub arguments_sha256: String,
    /// Absent when the caller gave none or a blank one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    pub require_reason: bool,
    pub listing: bool,
    /// Unix seconds.
    pub time: i64,
    pub time_rfc3339: String,
    pub approval_present: bool,
    pub break_glass: bool,
    pub session_labels: Vec<String>,
    pub call_signed: bool,
    pub tool_findings: Vec<String>,
    /// The caller's scopes of the form `<server>:<x>` for this call's server, as `<x>`.
    /// Cedar has no string concatenation, so `db:read-sensitive` is offered as
    /// `read-sensitive` when the call goes to server `db`.
    pub server_scopes: Vec<String>,
}

/// The caller in the input document.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct InputPrincipal {
    pub workload: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    pub anonymous: bool,
    pub claims: BTreeMap<String, serde_json::Value>,
    pub scopes: Vec<String>,
}

/// What the call acts on.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct InputTarget {
    pub kind: TargetKind,
    /// Tool or prompt name, resource URI, or the method for `other`.
    pub name: String,
    /// `<server>/<name>`: the Cedar entity id of the target.
    pub id: String,
}

impl Input {
    /// Normalises `request` under `settings`. Fails only if the arguments cannot be canonicalised.
    pub fn new(request: &DecisionRequest, settings: Settings) -> Result<Self, CanonicalError> {
        let server = request.server.as_str();
        let kind = request.target_kind();
        let prefix = format!("{server}:");
        let server_scopes = request
            .principal
            .scopes
            .iter()
            .filter_map(|s| s.strip_prefix(&prefix))
            .map(str::to_owned)
            .collect();
        Ok(Self {
            principal: InputPrincipal {
                workload: request.principal.workload.clone(),
                user: request.principal.user.clone(),
                anonymous: request.principal.anonymous,
                claims: request.principal.claims.clone(),
                scopes: request.principal.scopes.clone(),
            },
            server: server.to_owned(),
            method: request.method.clone(),
            action: kind.action(),
            target: InputTarget {
                kind,
                name: request.target.clone(),
                id: format!("{server}/{}", request.target),
            },
            tier: request.tier,
            arguments: request.arguments.value().clone(),
            arguments_sha256: hex::encode(request.arguments.sha256()?),
            reason: request.effective_reason().map(str::to_owned),
            require_reason: settings.require_reason,
            listing: request.listing,
            time: request.time.unix(),
            time_rfc3339: request.time.rfc3339(),
            approval_present: request.approval_present,
            break_glass: request.break_glass,
            session_labels: request.session_labels.clone(),
            call_signed: request.call_signed,
            tool_findings: request.tool_findings.clone(),
            server_scopes,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::request::{PrincipalFacts, Timestamp};
    use portcullis_core::ServerName;

    #[test]
    fn derives_facts_once_for_every_engine() {
        let mut principal = PrincipalFacts::workload("spiffe://example.org/agent");
        principal.scopes = vec!["db:read-sensitive".into(), "dbx:admin".into(), "mcp:read".into()];
        let server = ServerName::new("db").unwrap();
        let mut request = DecisionRequest::call(principal, server, "x/y", "x/y", Tier::Write, Timestamp::from_unix(0));
        request.reason = Some("  ".into());
        let input = Input::new(&request, Settings::default()).unwrap();
        assert_eq!(input.server_scopes, ["read-sensitive"]);
        assert_eq!(input.reason, None, "blank reasons count as none");
        assert_eq!(input.action, "other");
        assert_eq!(input.target.id, "db/x/y");
        assert_eq!(input.time_rfc3339, "1970-01-01T00:00:00Z");
        let json = serde_json::to_value(&input).unwrap();
        assert!(json.get("reason").is_none(), "absent, not null");
        assert_eq!(json["target"]["kind"], "other");
        assert_eq!(json["tier"], "write");
    }
}
