//! T1: token passthrough and audience confusion. Every hostile token is refused with the
//! error that names its defect; a good token yields the user and scopes.
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::{Algorithm, EncodingKey};
use portcullis_identity::jwt::{JwksRefresh, JwksSource, JwtError, JwtSettings, JwtValidator};
use serde_json::{Value, json};

use portcullis_identity::test_issuer::*;

fn settings(issuer: &Issuer, refresh: JwksRefresh) -> JwtSettings {
    let mut settings = JwtSettings::new(ISSUER, AUDIENCE, JwksSource::url(issuer.url("/jwks")));
    settings.refresh = refresh;
    settings
}

fn eager() -> JwksRefresh {
    JwksRefresh {
        min_interval: Duration::ZERO,
        max_age: Duration::from_secs(3600),
    }
}

fn with(claims: Value, key: &str, value: Value) -> Value {
    let mut claims = claims;
    claims[key] = value;
    claims
}

fn without(claims: Value, key: &str) -> Value {
    let mut claims = claims;
    claims.as_object_mut().unwrap().remove(key);
    claims
}

fn unsigned(kid: &str, claims: &Value) -> String {
    let header = URL_SAFE_NO_PAD.encode(json!({"alg": "none", "typ": "JWT", "kid": kid}).to_string());
    let payload = URL_SAFE_NO_PAD.encode(claims.to_string());
    format!("{header}.{payload}.")
}

#[tokio::test]
async fn t01_token_matrix() {
    let rsa = TestKey::rsa("rsa-1");
    let ec = TestKey::ec("ec-1");
    let issuer = Issuer::start(&[&rsa, &ec]).await;
    let validator = JwtValidator::new(settings(&issuer, eager())).unwrap();
    let now = now();

    let mut hs256 = jsonwebtoken::Header::new(Algorithm::HS256);
    hs256.kid = Some(rsa.kid.clone());
    let hs256_with_public_key = jsonwebtoken::encode(
        &hs256,
        &good_claims(),
        &EncodingKey::from_secret(rsa.public_pem.as_bytes()),
    )
    .unwrap();
    let mut jku = rsa.header();
    jku.jku = Some("https://evil.example/jwks".into());
    let mut x5u = rsa.header();
    x5u.x5u = Some("https://evil.example/cert.pem".into());
    let mut x5c = rsa.header();
    x5c.x5c = Some(vec!["MIIB".into()]);
    let mut embedded_jwk = rsa.header();
    embedded_jwk.jwk = Some(serde_json::from_value(rsa.jwk.clone()).unwrap());
    let mut crit = rsa.header();
    crit.crit = Some(vec!["exp".into()]);
    let mut unknown_kid = rsa.header();
    unknown_kid.kid = Some("who-knows".into());

    let cases: Vec<(&str, String, JwtError)> = vec![
        (
            "wrong aud",
            rsa.sign(&with(good_claims(), "aud", json!("https://other.example.com"))),
            JwtError::WrongAudience,
        ),
        (
            "missing aud",
            rsa.sign(&without(good_claims(), "aud")),
            JwtError::MissingAudience,
        ),
        (
            "multi aud",
            rsa.sign(&with(
                good_claims(),
                "aud",
                json!([AUDIENCE, "https://other.example.com"]),
            )),
            JwtError::WrongAudience,
        ),
        (
            "expired",
            rsa.sign(&with(good_claims(), "exp", json!(now - 120))),
            JwtError::Expired,
        ),
        (
            "future nbf",
            ec.sign(&with(good_claims(), "nbf", json!(now + 600))),
            JwtError::NotYetValid,
        ),
        ("alg none", unsigned(&rsa.kid, &good_claims()), JwtError::AlgNone),
        (
            "hs256 keyed with the rsa public key",
            hs256_with_public_key,
            JwtError::DisallowedAlgorithm { alg: "HS256".into() },
        ),
        (
            "unknown kid",
            rsa.sign_with(&unknown_kid, &good_claims()),
            JwtError::UnknownKid {
                kid: "who-knows".into(),
            },
        ),
        (
            "jku header",
            rsa.sign_with(&jku, &good_claims()),
            JwtError::ForbiddenHeader { name: "jku" },
        ),
        (
            "x5u header",
            rsa.sign_with(&x5u, &good_claims()),
            JwtError::ForbiddenHeader { name: "x5u" },
        ),
        (
            "x5c header",
            rsa.sign_with(&x5c, &good_claims()),
            JwtError::ForbiddenHeader { name: "x5c" },
        ),
        (
            "embedded jwk header",
            rsa.sign_with(&embedded_jwk, &good_claims()),
            JwtError::ForbiddenHeader { name: "jwk" },
        ),
        (
            "crit header",
            rsa.sign_with(&crit, &good_claims()),
            JwtError::CriticalHeader,
        ),
        (
            "wrong issuer",
            rsa.sign(&with(good_claims(), "iss", json!("https://evil.example"))),
            JwtError::WrongIssuer,
        ),
        (
            "missing exp",
            rsa.sign(&without(good_claims(), "exp")),
            JwtError::MissingExpiry,
        ),
    ];
    for (name, token, want) in cases {
        let got = validator.validate(&token).await;
        assert_eq!(got, Err(want.clone()), "{name}");
        assert_eq!(want.status(), 401, "{name}");
    }

    // A signature by a different key under a known kid.
    let impostor = TestKey::rsa("rsa-1");
    assert_eq!(
        validator.validate(&impostor.sign(&good_claims())).await,
        Err(JwtError::BadSignature)
    );
    // An RS256 key cannot verify an ES256 token.
    let mut mixed = ec.header();
    mixed.kid = Some(rsa.kid.clone());
    let got = validator.validate(&ec.sign_with(&mixed, &good_claims())).await;
    assert!(matches!(got, Err(JwtError::KeyAlgorithmMismatch { .. })), "{got:?}");
}

#[tokio::test]
async fn t01_good_tokens_yield_user_and_scopes() {
    let rsa = TestKey::rsa("rsa-1");
    let ec = TestKey::ec("ec-1");
    let issuer = Issuer::start(&[&rsa, &ec]).await;
    let validator = JwtValidator::new(settings(&issuer, eager())).unwrap();

    let user = validator.validate(&rsa.sign(&good_claims())).await.unwrap();
    assert_eq!(user.subject, "alice");
    assert_eq!(user.issuer, ISSUER);
    assert_eq!(user.scopes, ["tools:read", "tools:call"]);
    assert_eq!(user.claims["sub"], "alice");

    let scp = with(without(good_claims(), "scope"), "scp", json!(["db:read"]));
    let single_aud = with(scp, "aud", json!([AUDIENCE]));
    let user = validator.validate(&ec.sign(&single_aud)).await.unwrap();
    assert_eq!(user.scopes, ["db:read"]);
}

#[tokio::test]
async fn jwks_refresh_follows_key_rotation() {
    let old = TestKey::rsa("2026-01");
    let issuer = Issuer::start(&[&old]).await;
    let validator = JwtValidator::new(settings(&issuer, eager())).unwrap();
    assert!(validator.validate(&old.sign(&good_claims())).await.is_ok());
    assert_eq!(issuer.fetches(), 1);

    let new = TestKey::ec("2026-02");
    issuer.publish(&[&new]);
    // Known kid, fresh cache: no fetch.
    assert!(validator.validate(&old.sign(&good_claims())).await.is_ok());
    assert_eq!(issuer.fetches(), 1);
    // Unknown kid: one refetch picks up the rotated key; the retired key is gone.
    assert!(validator.validate(&new.sign(&good_claims())).await.is_ok());
    assert_eq!(issuer.fetches(), 2);
}

#[tokio::test]
async fn jwks_refresh_on_unknown_kid_is_rate_limited() {
    let old = TestKey::rsa("2026-01");
    let issuer = Issuer::start(&[&old]).await;
    let hourly = JwksRefresh {
        min_interval: Duration::from_secs(3600),
        max_age: Duration::from_secs(3600),
    };
    let validator = JwtValidator::new(settings(&issuer, hourly)).unwrap();
    assert!(validator.validate(&old.sign(&good_claims())).await.is_ok());
    assert_eq!(issuer.fetches(), 1);

    let new = TestKey::rsa("2026-02");
    issuer.publish(&[&old, &new]);
    for _ in 0..5 {
        let got = validator.validate(&new.sign(&good_claims())).await;
        assert_eq!(got, Err(JwtError::UnknownKid { kid: "2026-02".into() }));
    }
    assert_eq!(issuer.fetches(), 1, "unknown kids must not trigger a fetch per token");
}

#[tokio::test]
async fn jwks_fetch_refuses_redirects_and_oversized_sets() {
    let rsa = TestKey::rsa("rsa-1");
    let issuer = Issuer::start(&[&rsa]).await;
    let token = rsa.sign(&good_claims());
    for path in ["/redirect", "/huge"] {
        let settings = JwtSettings::new(ISSUER, AUDIENCE, JwksSource::url(issuer.url(path)));
        let validator = JwtValidator::new(settings).unwrap();
        let got = validator.validate(&token).await;
        assert!(matches!(got, Err(JwtError::JwksUnavailable { .. })), "{path}: {got:?}");
        assert_eq!(got.unwrap_err().status(), 503);
    }
    assert_eq!(issuer.fetches(), 0, "the redirect must not have been followed");
}

#[tokio::test]
async fn jwks_from_file_and_plain_http_only_on_loopback() {
    let ec = TestKey::ec("ec-1");
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("jwks.json");
    std::fs::write(&path, json!({"keys": [ec.jwk]}).to_string()).unwrap();
    let validator = JwtValidator::new(JwtSettings::new(ISSUER, AUDIENCE, JwksSource::File(path))).unwrap();
    assert_eq!(
        validator.validate(&ec.sign(&good_claims())).await.unwrap().subject,
        "alice"
    );

    let remote_http = url::Url::parse("http://auth.example.com/jwks").unwrap();
    let got = JwtValidator::new(JwtSettings::new(ISSUER, AUDIENCE, JwksSource::url(remote_http)));
    assert!(matches!(got, Err(JwtError::InvalidSettings { .. })));
}
