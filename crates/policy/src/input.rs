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
//!   "server_scopes": ["read-sensitive"],
//!   "credential": { "rule": "sales-read", "source": "sales_db", "kind": "postgres-role",
//!                   "scope": "SELECT on schema sales" } }
//! ```
use std::collections::BTreeMap;
use std::time::Duration;

use portcullis_core::Tier;
use serde::Serialize;

use crate::canonical::Arguments;
use crate::request::{CredentialFact, DecisionRequest, TargetKind, Timestamp};

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

/// The normalised input document (see the module docs for its JSON shape). It borrows
/// from its [`DecisionRequest`]: building it copies nothing large (the arguments are not
/// cloned), and the derived facts that cost real work — the arguments' canonical hash and
/// the RFC 3339 time — are computed only when an engine reads them (see `Digest`,
/// `Rfc3339`), so a decision that needs no facts (an unconditional permit) pays for none.
#[derive(Debug, Clone, Serialize)]
pub struct Input<'a> {
    pub principal: InputPrincipal<'a>,
    pub server: &'a str,
    pub method: &'a str,
    /// `tools/call`, `resources/read`, `prompts/get`, or `other` for any other method.
    pub action: &'static str,
    pub target: InputTarget<'a>,
    pub tier: Tier,
    pub arguments: &'a serde_json::Value,
    /// Lowercase hex SHA-256 over the RFC 8785 canonical form of `arguments`.
    pub arguments_sha256: Digest<'a>,
    /// Absent when the caller gave none or a blank one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<&'a str>,
    pub require_reason: bool,
    pub listing: bool,
    /// Unix seconds.
    pub time: i64,
    pub time_rfc3339: Rfc3339,
    pub approval_present: bool,
    pub break_glass: bool,
    pub session_labels: &'a [String],
    pub call_signed: bool,
    pub tool_findings: &'a [String],
    /// The caller's scopes of the form `<server>:<x>` for this call's server, as `<x>`.
    /// Cedar has no string concatenation, so `db:read-sensitive` is offered as
    /// `read-sensitive` when the call goes to server `db`.
    pub server_scopes: Vec<&'a str>,
    /// The credential the broker mints for the call if it is allowed; absent when none.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub credential: Option<&'a CredentialFact>,
}

/// The caller in the input document.
#[derive(Debug, Clone, Serialize)]
pub struct InputPrincipal<'a> {
    pub workload: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user: Option<&'a str>,
    pub anonymous: bool,
    pub claims: &'a BTreeMap<String, serde_json::Value>,
    pub scopes: &'a [String],
}

/// What the call acts on.
#[derive(Debug, Clone, Serialize)]
pub struct InputTarget<'a> {
    pub kind: TargetKind,
    /// Tool or prompt name, resource URI, or the method for `other`.
    pub name: &'a str,
    /// `<server>/<name>`: the Cedar entity id of the target.
    pub id: String,
}

/// `arguments_sha256`: the request's argument digest, computed (once, by [`Arguments`]) the
/// first time it is read. Serialises as the lowercase hex string.
#[derive(Debug, Clone, Copy)]
pub struct Digest<'a>(&'a Arguments);

impl Digest<'_> {
    /// The lowercase hex digest.
    pub fn hex(&self) -> String {
        hex::encode(self.0.sha256())
    }
}

impl Serialize for Digest<'_> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.hex())
    }
}

/// `time_rfc3339`: the decision time as RFC 3339 text, formatted only when serialised.
#[derive(Debug, Clone, Copy)]
pub struct Rfc3339(pub Timestamp);

impl Serialize for Rfc3339 {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.0.rfc3339())
    }
}

impl<'a> Input<'a> {
    /// Normalises `request` under `settings`, borrowing from it.
    pub fn new(request: &'a DecisionRequest, settings: Settings) -> Self {
        let server = request.server.as_str();
        let kind = request.target_kind();
        let server_scopes = request
            .principal
            .scopes
            .iter()
            .filter_map(|s| s.strip_prefix(server).and_then(|rest| rest.strip_prefix(':')))
            .collect();
        let principal = &request.principal;
        Self {
            principal: InputPrincipal {
                workload: &principal.workload,
                user: principal.user.as_deref(),
                anonymous: principal.anonymous,
                claims: &principal.claims,
                scopes: &principal.scopes,
            },
            server,
            method: &request.method,
            action: kind.action(),
            target: InputTarget {
                kind,
                name: &request.target,
                id: format!("{server}/{}", request.target),
            },
            tier: request.tier,
            arguments: request.arguments.value(),
            arguments_sha256: Digest(&request.arguments),
            reason: request.effective_reason(),
            require_reason: settings.require_reason,
            listing: request.listing,
            time: request.time.unix(),
            time_rfc3339: Rfc3339(request.time),
            approval_present: request.approval_present,
            break_glass: request.break_glass,
            session_labels: &request.session_labels,
            call_signed: request.call_signed,
            tool_findings: &request.tool_findings,
            server_scopes,
            credential: request.credential.as_ref(),
        }
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
        let input = Input::new(&request, Settings::default());
        assert_eq!(input.server_scopes, ["read-sensitive"]);
        assert_eq!(input.reason, None, "blank reasons count as none");
        assert_eq!(input.action, "other");
        assert_eq!(input.target.id, "db/x/y");
        let json = serde_json::to_value(&input).unwrap();
        assert!(json.get("reason").is_none(), "absent, not null");
        assert_eq!(json["target"]["kind"], "other");
        assert_eq!(json["tier"], "write");
        assert_eq!(
            json["arguments_sha256"],
            crate::arguments_sha256(&serde_json::Value::Null).unwrap()
        );
        assert_eq!(json["time_rfc3339"], "1970-01-01T00:00:00Z");
    }
}
