//! The issuer's signing keys (JWK Set), cached, refreshed on an unknown `kid` at most once
//! per interval, and fetched with no redirects, a timeout and a size cap.
//!
//! Consulted by the validator for every bearer token; key rotation at the issuer takes
//! effect on the first token signed with the new key.
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Instant;

use jsonwebtoken::jwk::{AlgorithmParameters, Jwk, PublicKeyUse};
use jsonwebtoken::{AlgorithmFamily, DecodingKey};
use tokio::sync::{Mutex, RwLock};

use super::error::JwtError;
use super::settings::{JwksRefresh, JwksSource, SigningAlgorithm};

/// One usable verification key.
#[derive(Clone)]
pub(crate) struct VerificationKey {
    pub(crate) decoding: DecodingKey,
    /// When the JWK names an `alg`, tokens must use exactly it.
    pub(crate) alg: Option<SigningAlgorithm>,
}

struct Cached {
    keys: Arc<HashMap<String, VerificationKey>>,
    fetched_at: Instant,
}

pub(crate) struct JwksCache {
    source: JwksSource,
    client: reqwest::Client,
    refresh: JwksRefresh,
    cached: RwLock<Option<Cached>>,
    /// Serialises fetches and remembers the last attempt (successful or not) for the rate limit.
    last_attempt: Mutex<Option<Instant>>,
}

impl JwksCache {
    pub(crate) fn new(source: JwksSource, refresh: JwksRefresh) -> Result<Self, JwtError> {
        let mut builder = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none());
        if let JwksSource::Url { url, timeout, .. } = &source {
            let loopback = matches!(url.host_str(), Some("127.0.0.1" | "[::1]" | "localhost"));
            if url.scheme() != "https" && !(url.scheme() == "http" && loopback) {
                return Err(JwtError::InvalidSettings {
                    reason: format!("jwks url `{url}` must use https (plain http only on loopback)"),
                });
            }
            builder = builder.timeout(*timeout).connect_timeout(*timeout);
        }
        let client = builder.build().map_err(|e| JwtError::InvalidSettings {
            reason: format!("cannot build the jwks http client: {e}"),
        })?;
        Ok(Self {
            source,
            client,
            refresh,
            cached: RwLock::new(None),
            last_attempt: Mutex::new(None),
        })
    }

    /// The key for `kid`, fetching the key set first if it is missing, stale, or (rate
    /// limited) lacks this `kid`.
    pub(crate) async fn key(&self, kid: &str) -> Result<VerificationKey, JwtError> {
        if let Some(cached) = self.cached.read().await.as_ref()
            && cached.fetched_at.elapsed() < self.refresh.max_age
            && let Some(key) = cached.keys.get(kid)
        {
            return Ok(key.clone());
        }
        let mut last_attempt = self.last_attempt.lock().await;
        // Another task may have refreshed while this one waited for the lock.
        let (have_keys, stale, known) = match self.cached.read().await.as_ref() {
            Some(c) => (
                true,
                c.fetched_at.elapsed() >= self.refresh.max_age,
                c.keys.contains_key(kid),
            ),
            None => (false, false, false),
        };
        // Every fetch, whatever its reason, is rate limited: an issuer that is down must not
        // be hit once per incoming token.
        let may_refetch = last_attempt.is_none_or(|at| at.elapsed() >= self.refresh.min_interval);
        if !have_keys && !may_refetch {
            return Err(JwtError::JwksUnavailable {
                reason: "the last fetch failed; the next attempt waits for the minimum refresh interval".to_string(),
            });
        }
        if may_refetch && (!have_keys || stale || !known) {
            *last_attempt = Some(Instant::now());
            match self.load().await {
                Ok(keys) => {
                    *self.cached.write().await = Some(Cached {
                        keys: Arc::new(keys),
                        fetched_at: Instant::now(),
                    });
                }
                Err(error) if have_keys => {
                    tracing::warn!(%error, "jwks refresh failed; still using the cached keys");
                }
                Err(error) => return Err(error),
            }
        }
        drop(last_attempt);
        let cached = self.cached.read().await;
        cached
            .as_ref()
            .and_then(|c| c.keys.get(kid).cloned())
            .ok_or_else(|| JwtError::UnknownKid { kid: kid.to_string() })
    }

    async fn load(&self) -> Result<HashMap<String, VerificationKey>, JwtError> {
        let body = match &self.source {
            JwksSource::File(path) => tokio::fs::read(path).await.map_err(|e| JwtError::JwksUnavailable {
                reason: format!("cannot read `{}`: {e}", path.display()),
            })?,
            JwksSource::Url { url, max_bytes, .. } => self.fetch(url, *max_bytes).await?,
        };
        parse_key_set(&body)
    }

    async fn fetch(&self, url: &url::Url, max_bytes: usize) -> Result<Vec<u8>, JwtError> {
        let unavailable = |reason: String| JwtError::JwksUnavailable { reason };
        let mut response = self
            .client
            .get(url.clone())
            .header(reqwest::header::ACCEPT, "application/json")
            .send()
            .await
            .map_err(|e| unavailable(format!("request to `{url}` failed: {e}")))?;
        if !response.status().is_success() {
            // Redirects land here too: they are never followed.
            return Err(unavailable(format!("`{url}` answered {}", response.status())));
        }
        let too_big = || unavailable(format!("`{url}` sent more than {max_bytes} bytes"));
        if response.content_length().is_some_and(|len| len > max_bytes as u64) {
            return Err(too_big());
        }
        let mut body = Vec::new();
        while let Some(chunk) = response
            .chunk()
            .await
            .map_err(|e| unavailable(format!("reading `{url}` failed: {e}")))?
        {
            if body.len() + chunk.len() > max_bytes {
                return Err(too_big());
            }
            body.extend_from_slice(&chunk);
        }
        Ok(body)
    }
}

#[derive(serde::Deserialize)]
struct RawKeySet {
    keys: Vec<serde_json::Value>,
}

/// Usable signature keys by `kid`. Keys without a `kid`, symmetric keys, encryption keys
/// and keys for algorithms outside [`SigningAlgorithm`] are skipped; so are later
/// duplicates of a `kid`.
pub(crate) fn parse_key_set(body: &[u8]) -> Result<HashMap<String, VerificationKey>, JwtError> {
    let raw: RawKeySet = serde_json::from_slice(body).map_err(|e| JwtError::JwksUnavailable {
        reason: format!("the key set is not a JWK Set: {e}"),
    })?;
    let mut keys = HashMap::new();
    for value in raw.keys {
        let Ok(jwk) = serde_json::from_value::<Jwk>(value) else {
            tracing::warn!("skipping a jwks entry that is not a valid JWK");
            continue;
        };
        let Some(kid) = jwk.common.key_id.clone() else { continue };
        if matches!(jwk.common.public_key_use, Some(ref u) if *u != PublicKeyUse::Signature)
            || matches!(jwk.algorithm, AlgorithmParameters::OctetKey(_))
        {
            continue;
        }
        let alg = match jwk.common.key_algorithm {
            Some(a) => match SigningAlgorithm::from_jws(&a.to_string()) {
                Some(a) => Some(a),
                None => continue,
            },
            None => None,
        };
        let Ok(decoding) = DecodingKey::from_jwk(&jwk) else {
            tracing::warn!(%kid, "skipping a jwks key that cannot be decoded");
            continue;
        };
        if decoding.family() == AlgorithmFamily::Hmac {
            continue;
        }
        if keys.contains_key(&kid) {
            tracing::warn!(%kid, "duplicate kid in jwks; keeping the first");
            continue;
        }
        keys.insert(kid, VerificationKey { decoding, alg });
    }
    Ok(keys)
}
