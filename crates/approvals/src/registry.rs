//! Who may approve: approvers registered in the config by SPIFFE ID (the admin listener's
//! mutual TLS) and/or Ed25519 public key (signed tokens). An approver never approves a
//! call made under their own workload or user identity.
use ed25519_dalek::VerifyingKey;

use crate::{binding::Binding, error::ApprovalError, token::Token};

/// One registered approver.
#[derive(Debug, Clone)]
pub struct Approver {
    /// Shown in records and listings.
    pub name: String,
    /// The approver's SVID identity on the admin listener.
    pub spiffe_id: Option<String>,
    /// The user identity of the approver: a call made as this user cannot be approved by
    /// them (defaults to `name`).
    pub user: String,
    /// Key id and public key of the approver's signing key.
    pub key: Option<(String, VerifyingKey)>,
    /// A revoked approver's tokens and requests are refused.
    pub revoked: bool,
}

impl Approver {
    /// Whether the call `binding` names was made by this approver.
    pub fn is_caller_of(&self, binding: &Binding) -> bool {
        self.spiffe_id.as_deref() == Some(binding.principal.workload.as_str())
            || binding.principal.user.as_deref() == Some(self.user.as_str())
    }

    fn usable(&self) -> Result<&Self, ApprovalError> {
        if self.revoked {
            let kid = self.key.as_ref().map_or(self.name.as_str(), |(kid, _)| kid.as_str());
            Err(ApprovalError::Revoked(kid.to_owned()))
        } else {
            Ok(self)
        }
    }
}

/// The registered approvers.
#[derive(Debug, Clone, Default)]
pub struct Approvers {
    list: Vec<Approver>,
}

impl Approvers {
    pub fn new(list: Vec<Approver>) -> Self {
        Self { list }
    }

    pub fn is_empty(&self) -> bool {
        self.list.is_empty()
    }

    pub fn len(&self) -> usize {
        self.list.len()
    }

    /// The approver holding key `kid`.
    pub fn by_kid(&self, kid: &str) -> Result<&Approver, ApprovalError> {
        self.list
            .iter()
            .find(|a| a.key.as_ref().is_some_and(|(k, _)| k == kid))
            .ok_or_else(|| ApprovalError::UnknownKey(kid.to_owned()))?
            .usable()
    }

    /// The approver with SVID `spiffe_id`.
    pub fn by_spiffe_id(&self, spiffe_id: &str) -> Result<&Approver, ApprovalError> {
        self.list
            .iter()
            .find(|a| a.spiffe_id.as_deref() == Some(spiffe_id))
            .ok_or_else(|| ApprovalError::NotAnApprover(spiffe_id.to_owned()))?
            .usable()
    }

    /// Checks a token against the call the gateway has in hand: a registered, unrevoked
    /// key, a valid signature, the same call in every field, not expired at `now`, and not
    /// the approver's own call. Returns who approved.
    pub fn verify(&self, token: &Token, expected: &Binding, now: u64) -> Result<&Approver, ApprovalError> {
        let approver = self.by_kid(&token.kid)?;
        let Some((_, key)) = &approver.key else {
            return Err(ApprovalError::UnknownKey(token.kid.clone()));
        };
        token.verify(key)?;
        token.binding.check_same_call(expected)?;
        if now > token.binding.expires_at {
            return Err(ApprovalError::Expired(token.binding.expires_at));
        }
        if approver.is_caller_of(expected) {
            return Err(ApprovalError::SelfApproval(approver.name.clone()));
        }
        Ok(approver)
    }
}

#[cfg(test)]
mod tests {
    use ed25519_dalek::SigningKey;

    use super::*;
    use crate::binding::{BINDING_VERSION, BindingPrincipal};

    fn binding() -> Binding {
        Binding {
            v: BINDING_VERSION,
            id: "ab".into(),
            principal: BindingPrincipal {
                workload: "spiffe://example.org/agent".into(),
                user: Some("alice".into()),
            },
            server: "s".into(),
            method: "tools/call".into(),
            target: "t".into(),
            arguments_sha256: "00".repeat(32),
            policy_sha256: "11".repeat(32),
            nonce: "22".repeat(16),
            expires_at: 100,
        }
    }

    fn approver(name: &str, seed: u8) -> (Approver, SigningKey) {
        let key = SigningKey::from_bytes(&[seed; 32]);
        (
            Approver {
                name: name.into(),
                spiffe_id: None,
                user: name.into(),
                key: Some((format!("{seed:016x}"), key.verifying_key())),
                revoked: false,
            },
            key,
        )
    }

    #[test]
    fn verify_checks_key_signature_call_expiry_and_self() {
        let (bob, bob_key) = approver("bob", 1);
        let (alice, alice_key) = approver("alice", 2);
        let (mut carol, carol_key) = approver("carol", 3);
        carol.revoked = true;
        let approvers = Approvers::new(vec![bob, alice, carol]);
        let b = binding();
        let token = |key: &SigningKey, seed: u8, b: &Binding| {
            Token::parse(&crate::token::sign(b, key, &format!("{seed:016x}"))).unwrap()
        };
        assert_eq!(approvers.verify(&token(&bob_key, 1, &b), &b, 50).unwrap().name, "bob");
        assert_eq!(
            approvers.verify(&token(&alice_key, 2, &b), &b, 50).unwrap_err(),
            ApprovalError::SelfApproval("alice".into())
        );
        assert!(matches!(
            approvers.verify(&token(&carol_key, 3, &b), &b, 50),
            Err(ApprovalError::Revoked(_))
        ));
        assert_eq!(
            approvers.verify(&token(&bob_key, 1, &b), &b, 101).unwrap_err(),
            ApprovalError::Expired(100)
        );
        let unknown = SigningKey::from_bytes(&[9; 32]);
        assert!(matches!(
            approvers.verify(&token(&unknown, 9, &b), &b, 50),
            Err(ApprovalError::UnknownKey(_))
        ));
        let mut other = b.clone();
        other.server = "x".into();
        assert_eq!(
            approvers.verify(&token(&bob_key, 1, &other), &b, 50).unwrap_err(),
            ApprovalError::WrongCall("server")
        );
    }
}
