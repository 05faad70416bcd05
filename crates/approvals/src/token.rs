//! Approval tokens: `pca1.<binding>.<kid>.<signature>`, the binding's JSON bytes and the
//! Ed25519 signature base64url-encoded (no padding), `kid` the approver key's id (16 hex
//! digits, as every Portcullis key file names its key). The signature covers
//! [`DOMAIN`] followed by the binding bytes, so a token can never pass for another kind
//! of Portcullis signature. Tokens carry no secret: they may travel in chat or tickets.
use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD as B64};
use ed25519_dalek::{Signature, Signer, SigningKey, VerifyingKey};

use crate::{binding::Binding, error::ApprovalError};

/// Prefix of every token of this format.
pub const PREFIX: &str = "pca1";
/// Domain separation for the signed bytes.
pub const DOMAIN: &[u8] = b"portcullis-approval-v1\n";

/// A token taken apart; its signature is not checked yet (see [`crate::Approvers`]).
#[derive(Debug, Clone)]
pub struct Token {
    pub binding: Binding,
    binding_bytes: Vec<u8>,
    pub kid: String,
    signature: Signature,
}

/// Signs `binding` with an approver's key.
pub fn sign(binding: &Binding, key: &SigningKey, kid: &str) -> String {
    let bytes = binding.to_bytes();
    let signature = key.sign(&signed_bytes(&bytes));
    format!(
        "{PREFIX}.{}.{kid}.{}",
        B64.encode(&bytes),
        B64.encode(signature.to_bytes())
    )
}

fn signed_bytes(binding: &[u8]) -> Vec<u8> {
    let mut m = Vec::with_capacity(DOMAIN.len() + binding.len());
    m.extend_from_slice(DOMAIN);
    m.extend_from_slice(binding);
    m
}

impl Token {
    /// Takes a token apart (bounded: a token longer than 8 KiB is refused unread).
    pub fn parse(text: &str) -> Result<Self, ApprovalError> {
        if text.len() > 8 * 1024 {
            return Err(ApprovalError::Malformed("longer than 8 KiB".into()));
        }
        let mut parts = text.trim().split('.');
        let (Some(prefix), Some(binding), Some(kid), Some(sig), None) =
            (parts.next(), parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(ApprovalError::Malformed(
                "expected pca1.<binding>.<kid>.<signature>".into(),
            ));
        };
        if prefix != PREFIX {
            return Err(ApprovalError::Malformed(format!("unknown token format `{prefix}`")));
        }
        if kid.is_empty() || kid.len() > 64 || !kid.bytes().all(|b| b.is_ascii_alphanumeric()) {
            return Err(ApprovalError::Malformed("the key id is not a key id".into()));
        }
        let binding_bytes = B64
            .decode(binding)
            .map_err(|_| ApprovalError::Malformed("the binding is not base64url".into()))?;
        let sig: [u8; 64] = B64
            .decode(sig)
            .ok()
            .and_then(|s| s.try_into().ok())
            .ok_or_else(|| ApprovalError::Malformed("the signature is not 64 base64url bytes".into()))?;
        Ok(Self {
            binding: Binding::from_slice(&binding_bytes)?,
            binding_bytes,
            kid: kid.to_owned(),
            signature: Signature::from_bytes(&sig),
        })
    }

    /// Verifies the signature with `key` (strict verification: no malleable signatures).
    pub fn verify(&self, key: &VerifyingKey) -> Result<(), ApprovalError> {
        key.verify_strict(&signed_bytes(&self.binding_bytes), &self.signature)
            .map_err(|_| ApprovalError::BadSignature)
    }

    /// Lowercase hex SHA-256 of the signature, for the audit record (never the signature).
    pub fn signature_sha256(&self) -> String {
        use sha2::Digest;
        hex::encode(sha2::Sha256::digest(self.signature.to_bytes()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::binding::{BINDING_VERSION, BindingPrincipal};

    fn binding() -> Binding {
        Binding {
            v: BINDING_VERSION,
            id: "ab".into(),
            principal: BindingPrincipal {
                workload: "w".into(),
                user: None,
            },
            server: "s".into(),
            method: "tools/call".into(),
            target: "t".into(),
            arguments_sha256: "00".repeat(32),
            policy_sha256: "11".repeat(32),
            nonce: "22".repeat(16),
            expires_at: 10,
        }
    }

    #[test]
    fn a_signed_token_verifies_and_an_altered_one_does_not() {
        let key = SigningKey::from_bytes(&[7; 32]);
        let token = sign(&binding(), &key, "00aa");
        let parsed = Token::parse(&token).unwrap();
        assert_eq!(parsed.binding, binding());
        assert_eq!(parsed.kid, "00aa");
        parsed.verify(&key.verifying_key()).unwrap();
        let other = SigningKey::from_bytes(&[8; 32]);
        assert_eq!(parsed.verify(&other.verifying_key()), Err(ApprovalError::BadSignature));
        // Another binding under the same signature.
        let mut b = binding();
        b.target = "u".into();
        let forged = format!(
            "{PREFIX}.{}.00aa.{}",
            B64.encode(b.to_bytes()),
            token.rsplit('.').next().unwrap()
        );
        assert_eq!(
            Token::parse(&forged).unwrap().verify(&key.verifying_key()),
            Err(ApprovalError::BadSignature)
        );
    }

    #[test]
    fn malformed_tokens_are_refused_with_a_reason() {
        for bad in [
            "",
            "pca1",
            "pca2.a.b.c",
            "pca1.!!.00aa.AAAA",
            "pca1.e30.00aa.AAAA",
            "pca1.a.b.c.d",
        ] {
            assert!(matches!(Token::parse(bad), Err(ApprovalError::Malformed(_))), "{bad}");
        }
    }
}
