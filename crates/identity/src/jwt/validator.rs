//! Validation of OAuth 2.1 bearer tokens (JWS-signed JWTs) presented to the HTTP front.
//!
//! Order matters and is fail-fast: the header is inspected *before* any key is looked up,
//! so tokens that try to choose their own key (`jku`, `x5u`, `jwk`, `x5c`), drop the
//! signature (`alg: none`) or switch to HMAC never reach the key set or the verifier (T1).
//! Only then is the signature verified with the issuer's key, and only then are the claims
//! read.
use std::time::SystemTime;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::{AlgorithmFamily, Validation};
use serde_json::{Map, Value};

use super::claims::{UserIdentity, check_claims};
use super::error::JwtError;
use super::jwks::JwksCache;
use super::settings::{JwtSettings, SigningAlgorithm};

/// Tokens longer than this are refused before any parsing.
const MAX_TOKEN_BYTES: usize = 16 * 1024;
/// Header parameters that point at, or embed, a key: an attacker would pick their own.
const KEY_REFERENCE_HEADERS: [&str; 4] = ["jku", "x5u", "jwk", "x5c"];

/// Validates bearer tokens against one issuer and audience.
pub struct JwtValidator {
    settings: JwtSettings,
    keys: JwksCache,
}

impl std::fmt::Debug for JwtValidator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JwtValidator")
            .field("settings", &self.settings)
            .finish_non_exhaustive()
    }
}

impl JwtValidator {
    /// Checks the settings; keys are fetched on first use.
    pub fn new(settings: JwtSettings) -> Result<Self, JwtError> {
        if settings.algorithms.is_empty() {
            return Err(JwtError::InvalidSettings {
                reason: "no signing algorithm allowed; list at least one (e.g. RS256)".to_string(),
            });
        }
        if settings.issuer.is_empty() || settings.audience.is_empty() {
            return Err(JwtError::InvalidSettings {
                reason: "issuer and audience (the gateway's resource URI) must both be set".to_string(),
            });
        }
        let keys = JwksCache::new(settings.jwks.clone(), settings.refresh)?;
        Ok(Self { settings, keys })
    }

    pub fn settings(&self) -> &JwtSettings {
        &self.settings
    }

    /// Validates `token` (without the `Bearer ` prefix) at the current time.
    pub async fn validate(&self, token: &str) -> Result<UserIdentity, JwtError> {
        self.validate_at(token, SystemTime::now()).await
    }

    /// Validates `token` as of `now`.
    pub async fn validate_at(&self, token: &str, now: SystemTime) -> Result<UserIdentity, JwtError> {
        if token.len() > MAX_TOKEN_BYTES {
            return Err(JwtError::Malformed {
                reason: "token too long",
            });
        }
        let header = decode_header(token)?;
        let (alg, kid) = self.check_header(&header)?;
        let key = self.keys.key(&kid).await?;
        if key.alg.is_some_and(|key_alg| key_alg != alg) || key.decoding.family() != family(alg) {
            return Err(JwtError::KeyAlgorithmMismatch {
                kid,
                alg: format!("{alg:?}"),
            });
        }
        let claims = verify_signature(token, &key.decoding, alg)?;
        check_claims(claims, &self.settings, now)
    }

    fn check_header(&self, header: &Map<String, Value>) -> Result<(SigningAlgorithm, String), JwtError> {
        if let Some(name) = KEY_REFERENCE_HEADERS.into_iter().find(|h| header.contains_key(*h)) {
            return Err(JwtError::ForbiddenHeader { name });
        }
        if header.contains_key("crit") {
            return Err(JwtError::CriticalHeader);
        }
        let alg = match header.get("alg") {
            Some(Value::String(alg)) => alg,
            _ => {
                return Err(JwtError::Malformed {
                    reason: "no `alg` header",
                });
            }
        };
        if alg.eq_ignore_ascii_case("none") {
            return Err(JwtError::AlgNone);
        }
        let allowed = SigningAlgorithm::from_jws(alg).filter(|a| self.settings.algorithms.contains(a));
        let Some(alg) = allowed else {
            return Err(JwtError::DisallowedAlgorithm { alg: alg.clone() });
        };
        let kid = match header.get("kid") {
            Some(Value::String(kid)) if !kid.is_empty() => kid.clone(),
            _ => return Err(JwtError::MissingKid),
        };
        Ok((alg, kid))
    }
}

fn decode_header(token: &str) -> Result<Map<String, Value>, JwtError> {
    let mut parts = token.split('.');
    let (Some(header), Some(_payload), Some(_signature), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(JwtError::Malformed {
            reason: "expected three dot-separated parts",
        });
    };
    let bytes = URL_SAFE_NO_PAD.decode(header).map_err(|_| JwtError::Malformed {
        reason: "header is not base64url",
    })?;
    serde_json::from_slice(&bytes).map_err(|_| JwtError::Malformed {
        reason: "header is not a JSON object",
    })
}

fn family(alg: SigningAlgorithm) -> AlgorithmFamily {
    use SigningAlgorithm as S;
    match alg {
        S::RS256 | S::RS384 | S::RS512 | S::PS256 | S::PS384 | S::PS512 => AlgorithmFamily::Rsa,
        S::ES256 | S::ES384 => AlgorithmFamily::Ec,
        S::EdDSA => AlgorithmFamily::Ed,
    }
}

/// Signature only: all claim checks are ours (strict audience, explicit `now`).
fn verify_signature(
    token: &str,
    key: &jsonwebtoken::DecodingKey,
    alg: SigningAlgorithm,
) -> Result<Map<String, Value>, JwtError> {
    let mut validation = Validation::new(alg.to_jsonwebtoken());
    validation.validate_exp = false;
    validation.validate_nbf = false;
    validation.validate_aud = false;
    validation.required_spec_claims.clear();
    validation.leeway = 0;
    let data = jsonwebtoken::decode::<Map<String, Value>>(token, key, &validation).map_err(|e| {
        use jsonwebtoken::errors::ErrorKind;
        match e.kind() {
            ErrorKind::InvalidSignature => JwtError::BadSignature,
            ErrorKind::InvalidAlgorithm | ErrorKind::InvalidKeyFormat => JwtError::KeyAlgorithmMismatch {
                kid: String::new(),
                alg: format!("{alg:?}"),
            },
            _ => JwtError::Malformed {
                reason: "payload is not a JSON object or signature is not base64url",
            },
        }
    })?;
    Ok(data.claims)
}
