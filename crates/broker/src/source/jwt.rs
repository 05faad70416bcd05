//! The `jwt` source: a compact JWS (EdDSA, Ed25519) the gateway signs for each call to an
//! HTTP upstream — audience that server, subject the workload, scope the call's target,
//! the decision id and argument digest as claims, valid for the source's ttl. Nothing is
//! cached: every call gets its own token (`jti` = the grant id). The upstream verifies
//! it with the gateway's JWKS ([`crate::Broker::jwks`]).
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ed25519_dalek::{Signer, SigningKey};
use portcullis_core::Secret;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use super::{Minted, grant_id, ttl_secs, unix_now};
use crate::CallFacts;
use crate::config::JwtConfig;
use crate::error::BrokerError;

pub(crate) struct Jwt {
    issuer: String,
    audience: Option<String>,
    ttl: u64,
    key: SigningKey,
    kid: String,
    /// `b64url(header) + "."`, the same for every token.
    header_part: String,
}

impl Jwt {
    pub fn new(name: String, config: JwtConfig) -> Result<Self, BrokerError> {
        let subject = format!("source `{name}`");
        if config.issuer.is_empty() {
            return Err(BrokerError::config(
                subject,
                "issuer",
                "name the issuer (`iss`) the upstream expects",
            ));
        }
        if config.ttl.as_secs() == 0 {
            return Err(BrokerError::config(subject, "ttl", "must be at least 1 s"));
        }
        if config.audience.as_deref() == Some("") {
            return Err(BrokerError::config(
                subject,
                "audience",
                "leave it out to use the server's name, or name one",
            ));
        }
        let kid = if config.kid.is_empty() {
            derived_kid(&config.key)
        } else {
            config.kid
        };
        let header = json!({"alg": "EdDSA", "typ": "JWT", "kid": kid});
        let header_part = format!("{}.", URL_SAFE_NO_PAD.encode(header.to_string()));
        Ok(Self {
            issuer: config.issuer,
            audience: config.audience,
            ttl: ttl_secs(config.ttl),
            key: config.key,
            kid,
            header_part,
        })
    }

    /// This source's JWK (RFC 8037 `OKP` / `Ed25519`).
    pub fn jwk(&self) -> Value {
        json!({
            "kty": "OKP",
            "crv": "Ed25519",
            "x": URL_SAFE_NO_PAD.encode(self.key.verifying_key().as_bytes()),
            "kid": self.kid,
            "alg": "EdDSA",
            "use": "sig",
        })
    }

    pub fn mint(&self, call: &CallFacts<'_>) -> Result<Minted, BrokerError> {
        let id = grant_id();
        let iat = unix_now();
        let exp = iat + self.ttl;
        let mut claims = json!({
            "iss": self.issuer,
            "sub": call.workload,
            "aud": self.audience.as_deref().unwrap_or(call.server),
            "scope": call.target,
            "decision_id": call.decision_id,
            "args_sha256": call.arguments_sha256,
            "iat": iat,
            "nbf": iat,
            "exp": exp,
            "jti": id,
        });
        if let (Some(user), Some(map)) = (call.user, claims.as_object_mut()) {
            map.insert("user".into(), Value::from(user));
        }
        let mut token = self.header_part.clone();
        token.push_str(&URL_SAFE_NO_PAD.encode(claims.to_string()));
        let signature = self.key.sign(token.as_bytes());
        token.push('.');
        token.push_str(&URL_SAFE_NO_PAD.encode(signature.to_bytes()));
        Ok(Minted {
            grant_id: id,
            secret: Secret::new(token),
            expires_at: exp,
            owned: None,
        })
    }
}

/// The first 16 hex digits of the SHA-256 of the raw public key.
fn derived_kid(key: &SigningKey) -> String {
    let mut kid = hex::encode(Sha256::digest(key.verifying_key().as_bytes()));
    kid.truncate(16);
    kid
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kid_is_derived_from_the_public_key() {
        let key = SigningKey::from_bytes(&[7; 32]);
        let kid = derived_kid(&key);
        assert_eq!(kid.len(), 16);
        assert_eq!(kid, hex::encode(Sha256::digest(key.verifying_key().as_bytes()))[..16]);
        assert_ne!(kid, derived_kid(&SigningKey::from_bytes(&[8; 32])));
    }
}
