//! The `jwt` source: tokens verify with the served JWKS through an independent
//! implementation (jsonwebtoken's `DecodingKey::from_jwk`) and carry the call's facts.
use std::time::Duration;

use ed25519_dalek::SigningKey;
use jsonwebtoken::{Algorithm, DecodingKey, Validation, jwk::Jwk};
use portcullis_broker::{Broker, JwtConfig, SourceConfig, SourceKind};
use serde_json::Value;

use crate::support::{WORKLOAD, call_match, facts, rule};

fn jwt_source(name: &str, seed: u8, audience: Option<&str>, kid: &str) -> SourceConfig {
    SourceConfig {
        name: name.into(),
        kind: SourceKind::Jwt(JwtConfig {
            issuer: "https://gateway.example".into(),
            audience: audience.map(str::to_owned),
            ttl: Duration::from_secs(120),
            key: SigningKey::from_bytes(&[seed; 32]),
            kid: kid.into(),
        }),
    }
}

/// Verifies `token` with the JWKS key of its `kid`, expecting `audience`.
fn verify(jwks: &Value, token: &str, audience: &str) -> Value {
    let kid = jsonwebtoken::decode_header(token).expect("header").kid.expect("a kid");
    let jwk = jwks["keys"]
        .as_array()
        .expect("keys")
        .iter()
        .find(|k| k["kid"] == kid.as_str())
        .unwrap_or_else(|| panic!("no JWKS key `{kid}`"));
    let jwk: Jwk = serde_json::from_value(jwk.clone()).expect("a JWK");
    let key = DecodingKey::from_jwk(&jwk).expect("decoding key");
    let mut validation = Validation::new(Algorithm::EdDSA);
    validation.set_audience(&[audience]);
    validation.set_issuer(&["https://gateway.example"]);
    validation.set_required_spec_claims(&["exp", "nbf", "aud", "iss", "sub"]);
    jsonwebtoken::decode::<Value>(token, &key, &validation)
        .expect("the token verifies with the JWKS")
        .claims
}

#[tokio::test]
async fn token_verifies_with_the_jwks_and_carries_the_call() {
    let broker = Broker::new(
        vec![rule("gh", "github", "signer"), rule("wiki", "wiki", "other")],
        vec![
            jwt_source("signer", 5, None, ""),
            jwt_source("other", 6, Some("wiki-api"), "wiki-key-1"),
        ],
    )
    .expect("broker");
    let jwks = broker.jwks();
    let keys = jwks["keys"].as_array().expect("keys");
    assert_eq!(keys.len(), 2);
    for key in keys {
        assert_eq!(
            (key["kty"].as_str(), key["crv"].as_str()),
            (Some("OKP"), Some("Ed25519"))
        );
        assert_eq!((key["alg"].as_str(), key["use"].as_str()), (Some("EdDSA"), Some("sig")));
    }
    assert!(keys.iter().any(|k| k["kid"] == "wiki-key-1"), "configured kid served");

    let plan = broker.plan(&call_match("github", "search_issues")).expect("plan");
    assert_eq!((plan.kind, plan.scope.as_str()), ("jwt", "search_issues"));
    let call = facts("github", "search_issues", "s1");
    let lease = broker.mint(&plan, &call).await.expect("mint");
    let claims = verify(&jwks, lease.secret().expose(), "github");
    assert_eq!(claims["sub"], WORKLOAD);
    assert_eq!(claims["user"], "alice");
    assert_eq!(claims["aud"], "github", "audience defaults to the server");
    assert_eq!(claims["scope"], "search_issues");
    assert_eq!(claims["decision_id"], call.decision_id);
    assert_eq!(claims["args_sha256"], call.arguments_sha256);
    assert_eq!(claims["jti"], lease.grant_id.as_str());
    let (iat, exp) = (
        claims["iat"].as_u64().expect("iat"),
        claims["exp"].as_u64().expect("exp"),
    );
    assert_eq!(exp, iat + 120);
    assert_eq!(claims["nbf"].as_u64(), Some(iat));
    assert_eq!(lease.expires_at, exp);
    // The derived kid: first 16 hex digits of SHA-256 of the public key.
    let header = jsonwebtoken::decode_header(lease.secret().expose()).expect("header");
    assert_eq!(header.alg, Algorithm::EdDSA);
    assert_eq!(header.kid.as_deref().map(str::len), Some(16));
    assert_eq!(
        lease.header_value().expect("header delivery").expose(),
        &format!("Bearer {}", lease.secret().expose())
    );

    // Every call its own token; no user, no `user` claim; a configured audience.
    let again = broker.mint(&plan, &call).await.expect("mint");
    assert_ne!(again.secret(), lease.secret());
    assert_ne!(again.grant_id, lease.grant_id);
    let wiki_plan = broker.plan(&call_match("wiki", "page")).expect("plan");
    let wiki_call = portcullis_broker::CallFacts {
        user: None,
        ..facts("wiki", "page", "s1")
    };
    let wiki = broker.mint(&wiki_plan, &wiki_call).await.expect("mint");
    let claims = verify(&jwks, wiki.secret().expose(), "wiki-api");
    assert!(claims.get("user").is_none(), "{claims}");

    // A token does not verify for another audience or under the other source's key.
    let mut validation = Validation::new(Algorithm::EdDSA);
    validation.set_audience(&["wiki-api"]);
    let github_key: Jwk = serde_json::from_value(
        keys.iter()
            .find(|k| k["kid"] != "wiki-key-1")
            .expect("github key")
            .clone(),
    )
    .expect("jwk");
    assert!(
        jsonwebtoken::decode::<Value>(
            wiki.secret().expose(),
            &DecodingKey::from_jwk(&github_key).expect("key"),
            &validation
        )
        .is_err(),
        "verified under the wrong key"
    );
    let mut wrong_audience = Validation::new(Algorithm::EdDSA);
    wrong_audience.set_audience(&["wiki-api"]);
    assert!(
        jsonwebtoken::decode::<Value>(
            lease.secret().expose(),
            &DecodingKey::from_jwk(&github_key).expect("key"),
            &wrong_audience
        )
        .is_err(),
        "verified for the wrong audience"
    );
}

#[test]
fn jwks_is_empty_without_jwt_sources() {
    let broker = Broker::new(vec![], vec![]).expect("broker");
    assert_eq!(broker.jwks(), serde_json::json!({"keys": []}));
}
