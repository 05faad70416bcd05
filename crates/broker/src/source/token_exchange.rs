//! The `token-exchange` source: OAuth 2.0 Token Exchange (RFC 8693). The caller's bearer
//! token is the subject token; the token endpoint returns an access token for the
//! upstream (audience) and the call's scope. Results are cached per (principal, audience,
//! scope, subject token) until 30 s before they expire; errors never are.
//!
//! Faults: unreachable, timed out or 5xx → `Unavailable`; 4xx → `Refused` with the OAuth
//! `error` code only (an endpoint's body is never quoted: it may echo tokens).
use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use portcullis_core::Secret;
use sha2::{Digest, Sha256};

use super::{Minted, grant_id, unix_now};
use crate::CallFacts;
use crate::config::TokenExchangeConfig;
use crate::error::BrokerError;

/// A cached token is handed out until this long before it expires.
pub const REUSE_MARGIN: u64 = 30;
/// Beyond this many cached tokens, expired ones are pruned on insert.
const CACHE_PRUNE_AT: usize = 1024;
const GRANT_TYPE: &str = "urn:ietf:params:oauth:grant-type:token-exchange";
const ACCESS_TOKEN_TYPE: &str = "urn:ietf:params:oauth:token-type:access_token";

pub(crate) struct TokenExchange {
    name: String,
    endpoint: reqwest::Url,
    client_id: String,
    client_secret: Option<Secret<String>>,
    audience: Option<String>,
    scope: Option<String>,
    timeout: Duration,
    http: reqwest::Client,
    cache: Mutex<HashMap<CacheKey, Cached>>,
}

/// Workload, user, audience, scope, and the SHA-256 of the subject token: a token is
/// reused only for the same principal *and* the same bearer token (a refreshed or
/// different bearer exchanges afresh).
#[derive(Hash, PartialEq, Eq)]
struct CacheKey(String, Option<String>, String, String, [u8; 32]);

struct Cached {
    grant_id: String,
    token: Secret<String>,
    expires_at: u64,
}

impl TokenExchange {
    pub fn new(name: String, config: TokenExchangeConfig) -> Result<Self, BrokerError> {
        let subject = format!("source `{name}`");
        let endpoint = reqwest::Url::parse(&config.token_endpoint).map_err(|e| {
            BrokerError::config(
                &subject,
                "token_endpoint",
                format!("`{}` is not a URL ({e})", config.token_endpoint),
            )
        })?;
        let loopback = matches!(endpoint.host_str(), Some("127.0.0.1" | "[::1]" | "localhost"));
        if endpoint.scheme() != "https" && !(endpoint.scheme() == "http" && loopback) {
            return Err(BrokerError::config(
                &subject,
                "token_endpoint",
                format!(
                    "`{endpoint}` must use https (plain http only on loopback): the caller's bearer token is sent \
                     to it"
                ),
            ));
        }
        if config.client_id.is_empty() {
            return Err(BrokerError::config(
                &subject,
                "client_id",
                "name the gateway's client id at the token endpoint",
            ));
        }
        if config.timeout.is_zero() {
            return Err(BrokerError::config(&subject, "timeout", "must be above zero"));
        }
        for (key, value) in [("audience", &config.audience), ("scope", &config.scope)] {
            if value.as_deref() == Some("") {
                return Err(BrokerError::config(
                    &subject,
                    key,
                    "leave it out for the default, or give a value",
                ));
            }
        }
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(config.timeout)
            .connect_timeout(config.timeout)
            .build()
            .map_err(|e| {
                BrokerError::config(&subject, "token_endpoint", format!("cannot build an HTTP client ({e})"))
            })?;
        Ok(Self {
            name,
            endpoint,
            client_id: config.client_id,
            client_secret: config.client_secret,
            audience: config.audience,
            scope: config.scope,
            timeout: config.timeout,
            http,
            cache: Mutex::new(HashMap::new()),
        })
    }

    /// The `scope` asked for a call of `target`.
    pub fn scope_for<'a>(&'a self, target: &'a str) -> &'a str {
        self.scope.as_deref().unwrap_or(target)
    }

    pub async fn mint(&self, call: &CallFacts<'_>) -> Result<Minted, BrokerError> {
        let Some(bearer) = call.bearer else {
            return Err(BrokerError::NoBearer {
                source_name: self.name.clone(),
            });
        };
        let audience = self.audience.as_deref().unwrap_or(call.server);
        let scope = self.scope_for(call.target);
        let key = CacheKey(
            call.workload.to_owned(),
            call.user.map(str::to_owned),
            audience.to_owned(),
            scope.to_owned(),
            Sha256::digest(bearer.expose().as_bytes()).into(),
        );
        let now = unix_now();
        if let Some(hit) = self.cache().get(&key).filter(|c| c.expires_at > now + REUSE_MARGIN) {
            return Ok(Minted {
                grant_id: hit.grant_id.clone(),
                secret: hit.token.clone(),
                expires_at: hit.expires_at,
                owned: None,
            });
        }
        let (token, expires_in) = self.exchange(bearer, audience, scope).await?;
        let id = grant_id();
        // No `expires_in`: the lifetime is unknown (0) and the token is not cached.
        let expires_at = expires_in.map_or(0, |s| now.saturating_add(s));
        if expires_in.is_some_and(|s| s > REUSE_MARGIN) {
            let mut cache = self.cache();
            if cache.len() >= CACHE_PRUNE_AT {
                cache.retain(|_, c| c.expires_at > now + REUSE_MARGIN);
            }
            cache.insert(
                key,
                Cached {
                    grant_id: id.clone(),
                    token: token.clone(),
                    expires_at,
                },
            );
        }
        Ok(Minted {
            grant_id: id,
            secret: token,
            expires_at,
            owned: None,
        })
    }

    fn cache(&self) -> std::sync::MutexGuard<'_, HashMap<CacheKey, Cached>> {
        self.cache.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The form of one RFC 8693 request (`client_id` in it when there is no client secret
    /// to authenticate with).
    fn form(&self, bearer: &Secret<String>, audience: &str, scope: &str) -> String {
        let mut form = url::form_urlencoded::Serializer::new(String::new());
        form.append_pair("grant_type", GRANT_TYPE)
            .append_pair("subject_token", bearer.expose())
            .append_pair("subject_token_type", ACCESS_TOKEN_TYPE)
            .append_pair("requested_token_type", ACCESS_TOKEN_TYPE)
            .append_pair("audience", audience)
            .append_pair("scope", scope);
        if self.client_secret.is_none() {
            form.append_pair("client_id", &self.client_id);
        }
        form.finish()
    }

    /// One RFC 8693 request: the access token and its `expires_in`.
    async fn exchange(
        &self,
        bearer: &Secret<String>,
        audience: &str,
        scope: &str,
    ) -> Result<(Secret<String>, Option<u64>), BrokerError> {
        // Built by a plain function: the serializer is not `Send` (it may hold an encoding
        // callback) and must not live across an await.
        let form_body = self.form(bearer, audience, scope);
        let mut request = self
            .http
            .post(self.endpoint.clone())
            .header(http::header::CONTENT_TYPE, "application/x-www-form-urlencoded")
            .header(http::header::ACCEPT, "application/json");
        if let Some(secret) = &self.client_secret {
            let mut value =
                http::HeaderValue::try_from(basic_auth(&self.client_id, secret.expose())).map_err(|_| {
                    BrokerError::unavailable(&self.name, "the client credentials cannot be sent in a header")
                })?;
            value.set_sensitive(true);
            request = request.header(http::header::AUTHORIZATION, value);
        }
        let response = request
            .body(form_body)
            .send()
            .await
            .map_err(|e| self.transport_error(&e))?;
        let status = response.status();
        let body = response.bytes().await.map_err(|e| self.transport_error(&e))?;
        if status.is_client_error() {
            return Err(BrokerError::Refused {
                source_name: self.name.clone(),
                reason: format!("the token endpoint answered {status} with {}", oauth_error(&body)),
            });
        }
        if !status.is_success() {
            return Err(BrokerError::unavailable(
                &self.name,
                format!("the token endpoint answered {status}"),
            ));
        }
        let answer: serde_json::Value = serde_json::from_slice(&body).map_err(|_| {
            BrokerError::unavailable(
                &self.name,
                "the token endpoint's answer is not JSON; check `token_endpoint`",
            )
        })?;
        let Some(token) = answer
            .get("access_token")
            .and_then(|t| t.as_str())
            .filter(|t| !t.is_empty())
        else {
            return Err(BrokerError::unavailable(
                &self.name,
                "the token endpoint's answer has no `access_token`",
            ));
        };
        if let Some(kind) = answer.get("token_type").and_then(|t| t.as_str()) {
            tracing::debug!(source = %self.name, token_type = kind, "token exchanged");
        }
        let expires_in = answer.get("expires_in").and_then(serde_json::Value::as_u64);
        Ok((Secret::new(token.to_owned()), expires_in))
    }

    fn transport_error(&self, e: &reqwest::Error) -> BrokerError {
        let what = if e.is_timeout() {
            format!(
                "the token endpoint did not answer within {} ms",
                self.timeout.as_millis()
            )
        } else if e.is_connect() {
            format!("cannot connect to the token endpoint `{}`", self.endpoint)
        } else {
            format!("the exchange with the token endpoint `{}` failed", self.endpoint)
        };
        BrokerError::unavailable(&self.name, what)
    }
}

/// `Basic base64(urlencode(id) ":" urlencode(secret))` (RFC 6749, section 2.3.1).
fn basic_auth(id: &str, secret: &str) -> String {
    let encode = |s: &str| url::form_urlencoded::byte_serialize(s.as_bytes()).collect::<String>();
    format!(
        "Basic {}",
        STANDARD.encode(format!("{}:{}", encode(id), encode(secret)))
    )
}

/// The OAuth `error` code of an error answer (RFC 6749, section 5.2), its characters
/// checked; never the rest of the body.
fn oauth_error(body: &[u8]) -> String {
    let code = serde_json::from_slice::<serde_json::Value>(body)
        .ok()
        .and_then(|v| v.get("error").and_then(|e| e.as_str()).map(str::to_owned));
    match code {
        Some(code)
            if !code.is_empty()
                && code.len() <= 64
                && code
                    .bytes()
                    .all(|b| (0x20..=0x7e).contains(&b) && b != b'"' && b != b'\\') =>
        {
            format!("error `{code}`")
        }
        _ => "no OAuth error code".to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn basic_auth_encodes_each_part() {
        // "a b:c" → "a+b" ":" "c%3A" ... base64 of `a+b:c%3Ad`.
        assert_eq!(
            basic_auth("a b", "c:d"),
            format!("Basic {}", STANDARD.encode("a+b:c%3Ad"))
        );
    }

    #[test]
    fn only_a_clean_error_code_is_quoted() {
        assert_eq!(
            oauth_error(br#"{"error":"invalid_grant","access_token":"x"}"#),
            "error `invalid_grant`"
        );
        assert_eq!(oauth_error(br#"{"error":"bad\"quote"}"#), "no OAuth error code");
        assert_eq!(oauth_error(b"<html>"), "no OAuth error code");
        assert_eq!(
            oauth_error(format!(r#"{{"error":"{}"}}"#, "a".repeat(65)).as_bytes()),
            "no OAuth error code"
        );
    }
}
