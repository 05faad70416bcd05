//! The binding: the exact call one approval is for. Its JSON form (fields in this order,
//! as `serde_json` writes the struct) is what an approver signs and what
//! `portcullis approvals show --json` prints as `CALL.json`.
use serde::{Deserialize, Serialize};

use crate::error::ApprovalError;

/// Version of the binding format; a token for another version is refused.
pub const BINDING_VERSION: u32 = 1;

/// Who makes the call.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BindingPrincipal {
    pub workload: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
}

/// One call, as an approval names it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Binding {
    /// [`BINDING_VERSION`].
    pub v: u32,
    /// The pending approval request (random, lowercase hex).
    pub id: String,
    pub principal: BindingPrincipal,
    pub server: String,
    /// `tools/call`, `resources/read`, `prompts/get`, …
    pub method: String,
    /// Tool or prompt name, or resource URI (the server's own names).
    pub target: String,
    /// Lowercase hex SHA-256 over the RFC 8785 form of the arguments (the audit record's digest).
    pub arguments_sha256: String,
    /// The policy set that asked for the approval; a later policy needs a new approval.
    pub policy_sha256: String,
    /// Random, chosen by the gateway when it opened the request; usable once.
    pub nonce: String,
    /// Unix seconds after which the approval counts for nothing.
    pub expires_at: u64,
}

impl Binding {
    /// The bytes an approver signs.
    pub fn to_bytes(&self) -> Vec<u8> {
        // A struct of strings and integers: serialising cannot fail.
        serde_json::to_vec(self).unwrap_or_default()
    }

    /// Parses a binding (e.g. `CALL.json`), refusing unknown fields and other versions.
    pub fn from_slice(bytes: &[u8]) -> Result<Self, ApprovalError> {
        let binding: Self =
            serde_json::from_slice(bytes).map_err(|e| ApprovalError::Malformed(format!("binding: {e}")))?;
        if binding.v != BINDING_VERSION {
            return Err(ApprovalError::Malformed(format!(
                "binding version {} (this gateway reads {BINDING_VERSION})",
                binding.v
            )));
        }
        Ok(binding)
    }

    /// Checks that `self` (what was signed) is for the same call as `expected` (what the
    /// gateway opened the request for): every field must agree.
    pub fn check_same_call(&self, expected: &Binding) -> Result<(), ApprovalError> {
        let request: [(&'static str, bool); 4] = [
            ("version", self.v == expected.v),
            ("request id", self.id == expected.id),
            ("nonce", self.nonce == expected.nonce),
            ("expiry", self.expires_at == expected.expires_at),
        ];
        match request.iter().find(|(_, same)| !same) {
            Some((field, _)) => Err(ApprovalError::WrongCall(field)),
            None => self.check_call_fields(expected),
        }
    }

    /// Checks that `self` and `call` name the same call: principal, server, method, target,
    /// arguments and policy (not the request id, nonce or expiry).
    pub fn check_call_fields(&self, call: &Binding) -> Result<(), ApprovalError> {
        let fields: [(&'static str, bool); 6] = [
            ("principal", self.principal == call.principal),
            ("server", self.server == call.server),
            ("method", self.method == call.method),
            ("target", self.target == call.target),
            ("arguments", self.arguments_sha256 == call.arguments_sha256),
            ("policy", self.policy_sha256 == call.policy_sha256),
        ];
        match fields.iter().find(|(_, same)| !same) {
            Some((field, _)) => Err(ApprovalError::WrongCall(field)),
            None => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(crate) fn sample() -> Binding {
        Binding {
            v: BINDING_VERSION,
            id: "00ff".into(),
            principal: BindingPrincipal {
                workload: "spiffe://example.org/agent".into(),
                user: Some("alice".into()),
            },
            server: "files".into(),
            method: "tools/call".into(),
            target: "delete".into(),
            arguments_sha256: "ab".repeat(32),
            policy_sha256: "cd".repeat(32),
            nonce: "12".repeat(16),
            expires_at: 2_000_000_000,
        }
    }

    #[test]
    fn round_trips_and_names_the_first_differing_field() {
        let b = sample();
        let parsed = Binding::from_slice(&b.to_bytes()).unwrap();
        assert_eq!(parsed, b);
        assert!(parsed.check_same_call(&b).is_ok());
        let mut other = b.clone();
        other.arguments_sha256 = "ef".repeat(32);
        assert_eq!(other.check_same_call(&b), Err(ApprovalError::WrongCall("arguments")));
        let mut other = b.clone();
        other.principal.user = Some("mallory".into());
        assert_eq!(other.check_same_call(&b), Err(ApprovalError::WrongCall("principal")));
    }

    #[test]
    fn refuses_unknown_fields_and_other_versions() {
        let mut v: serde_json::Value = serde_json::from_slice(&sample().to_bytes()).unwrap();
        v["extra"] = 1.into();
        assert!(Binding::from_slice(v.to_string().as_bytes()).is_err());
        let mut b = sample();
        b.v = 2;
        assert!(matches!(
            Binding::from_slice(&b.to_bytes()),
            Err(ApprovalError::Malformed(_))
        ));
    }
}
