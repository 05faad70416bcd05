//! The identify stage of the HTTP front, run on every request before anything
//! else touches it: the workload from the connection's client certificate (the
//! SPIFFE check re-run with the current time, because a connection can outlive
//! its certificate, T16) and the user from an OAuth bearer token (T1). Config
//! decides which of the two are required. The token is only read here; it is
//! never forwarded upstream.
use std::{collections::BTreeMap, time::SystemTime};

use axum::http::{HeaderMap, StatusCode, header};
use portcullis_identity::{Identity, PeerCertificates, jwt::BearerChallenge};

use crate::{caller::Caller, config::HttpAuth};

/// Why a request is refused before it reaches the gateway.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    pub status: StatusCode,
    /// The `WWW-Authenticate` value, for bearer-token refusals.
    pub challenge: Option<String>,
    pub message: String,
}

/// Identifies the caller of one request.
pub async fn identify(
    auth: &HttpAuth,
    anonymous: &portcullis_core::Principal,
    headers: &HeaderMap,
    peer: Option<&PeerCertificates>,
) -> Result<Caller, Refusal> {
    let unauthorised = |message: String| Refusal {
        status: StatusCode::UNAUTHORIZED,
        challenge: None,
        message,
    };
    let peer = peer.filter(|p| p.leaf().is_some());
    let workload = match (&auth.svid, peer) {
        (Some(policy), Some(peer)) => match policy.connection_workload_id(peer, SystemTime::now()) {
            Ok(id) => Some(id),
            Err(e) => {
                tracing::warn!("refused a call: client certificate: {e}");
                return Err(unauthorised(format!(
                    "client certificate refused: {e}; present a current SVID of a trusted trust domain"
                )));
            }
        },
        _ => None,
    };
    if auth.require_workload && workload.is_none() {
        return Err(unauthorised(
            "this gateway requires a client certificate (an X.509-SVID); connect over mutual TLS".into(),
        ));
    }
    // The validated token itself, for a `token-exchange` credential (its subject token).
    let mut presented = None;
    let user = match (&auth.bearer, bearer_token(headers)) {
        (_, Err(e)) => {
            let challenge = BearerChallenge::InvalidToken { description: e.into() };
            return Err(bearer_refusal(auth, &challenge, format!("invalid bearer token: {e}")));
        }
        (Some(bearer), Ok(Some(token))) => match bearer.validator.validate(token).await {
            Ok(user) => {
                presented = Some(portcullis_core::Secret::new(token.to_owned()));
                Some(user)
            }
            Err(e) => {
                tracing::warn!("refused a call: bearer token: {e}");
                let mut refusal = bearer_refusal(auth, &e.challenge(), e.to_string());
                // 503 when the token could not be checked (the issuer's keys are unavailable).
                refusal.status = StatusCode::from_u16(e.status()).unwrap_or(StatusCode::UNAUTHORIZED);
                return Err(refusal);
            }
        },
        (None, Ok(Some(_))) => {
            tracing::debug!("ignored an Authorization header: this gateway has no [listen.oauth] settings");
            None
        }
        (_, Ok(None)) => None,
    };
    if auth.require_user && user.is_none() {
        let message = "this gateway requires an OAuth bearer token; see the WWW-Authenticate header for where \
                       to obtain one";
        return Err(bearer_refusal(auth, &BearerChallenge::MissingToken, message.into()));
    }
    if let (Some(bearer), Some(user)) = (&auth.bearer, &user) {
        let missing: Vec<&str> = bearer
            .required_scopes
            .iter()
            .filter(|s| !user.has_scope(s))
            .map(String::as_str)
            .collect();
        if !missing.is_empty() {
            let challenge = BearerChallenge::InsufficientScope {
                scopes: bearer.required_scopes.clone(),
            };
            let message = format!(
                "the bearer token lacks the scopes {}; request a token with them",
                missing.join(", ")
            );
            return Err(bearer_refusal(auth, &challenge, message));
        }
    }
    match Identity::new(workload, user, &auth.unattested_workload) {
        Ok(identity) => {
            let (scopes, claims) = match identity.user {
                Some(user) => (user.scopes, user.claims.into_iter().collect()),
                None => (Vec::new(), BTreeMap::new()),
            };
            Ok(Caller {
                principal: identity.principal,
                anonymous: false,
                scopes,
                claims,
                bearer: presented,
            })
        }
        Err(_) => Ok(Caller::anonymous(anonymous.clone())),
    }
}

/// A 401/403 in the MCP authorization style: with a challenge pointing at the
/// Protected Resource Metadata when bearer tokens are configured.
fn bearer_refusal(auth: &HttpAuth, challenge: &BearerChallenge, message: String) -> Refusal {
    Refusal {
        status: StatusCode::from_u16(challenge.status()).unwrap_or(StatusCode::UNAUTHORIZED),
        challenge: auth.bearer.as_ref().map(|b| b.resource.challenge_header(challenge)),
        message,
    }
}

/// The token of a single `Authorization: Bearer …` header; `Ok(None)` without one.
fn bearer_token(headers: &HeaderMap) -> Result<Option<&str>, &'static str> {
    let mut values = headers.get_all(header::AUTHORIZATION).iter();
    let Some(value) = values.next() else {
        return Ok(None);
    };
    if values.next().is_some() {
        return Err("more than one Authorization header");
    }
    let value = value.to_str().map_err(|_| "the Authorization header is not ASCII")?;
    match value.split_once(' ') {
        Some((scheme, token)) if scheme.eq_ignore_ascii_case("bearer") && !token.trim().is_empty() => {
            Ok(Some(token.trim()))
        }
        _ => Err("the Authorization header must be `Bearer <token>`"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bearer_header_forms() {
        let mut h = HeaderMap::new();
        assert_eq!(bearer_token(&h), Ok(None));
        h.insert(header::AUTHORIZATION, "Bearer abc".parse().unwrap());
        assert_eq!(bearer_token(&h), Ok(Some("abc")));
        h.insert(header::AUTHORIZATION, "bearer  abc ".parse().unwrap());
        assert_eq!(bearer_token(&h), Ok(Some("abc")));
        h.insert(header::AUTHORIZATION, "Basic abc".parse().unwrap());
        assert!(bearer_token(&h).is_err());
        h.insert(header::AUTHORIZATION, "Bearer ".parse().unwrap());
        assert!(bearer_token(&h).is_err());
        h.insert(header::AUTHORIZATION, "Bearer a".parse().unwrap());
        h.append(header::AUTHORIZATION, "Bearer b".parse().unwrap());
        assert!(bearer_token(&h).is_err());
    }

    #[tokio::test]
    async fn nothing_presented_is_anonymous_unless_required() {
        let anonymous = portcullis_core::Principal::workload("anonymous");
        let headers = HeaderMap::new();
        let open = HttpAuth::default();
        let caller = identify(&open, &anonymous, &headers, None).await.unwrap();
        assert!(caller.anonymous);
        assert_eq!(caller.principal, anonymous);

        let strict = HttpAuth {
            require_workload: true,
            ..HttpAuth::default()
        };
        let refused = identify(&strict, &anonymous, &headers, None).await.unwrap_err();
        assert_eq!(refused.status, StatusCode::UNAUTHORIZED);
        assert!(refused.message.contains("client certificate"));

        let user = HttpAuth {
            require_user: true,
            ..HttpAuth::default()
        };
        let refused = identify(&user, &anonymous, &headers, None).await.unwrap_err();
        assert_eq!(refused.status, StatusCode::UNAUTHORIZED);
    }
}
