//! A test token issuer: real RSA and EC keys, a JWKS served over HTTP by axum on
//! 127.0.0.1:0 (with a fetch counter), and helpers to mint honest and hostile tokens.
//! Compiled only with the `test-util` feature (threat tests of this crate and the
//! end-to-end suite); the release binary never contains it.
#![allow(
    clippy::unwrap_used,
    reason = "test support: a failure here is a broken test environment, reported by the panic"
)]
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use jsonwebtoken::jwk::Jwk;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{Value, json};

pub const ISSUER: &str = "https://auth.example.com";
pub const AUDIENCE: &str = "https://gateway.example.com/mcp";

pub struct TestKey {
    pub kid: String,
    pub alg: Algorithm,
    pub encoding: EncodingKey,
    pub public_pem: String,
    pub jwk: Value,
}

impl TestKey {
    pub fn rsa(kid: &str) -> Self {
        let pair = rcgen::KeyPair::generate_rsa_for(&rcgen::PKCS_RSA_SHA256, rcgen::RsaKeySize::_2048).unwrap();
        let encoding = EncodingKey::from_rsa_pem(pair.serialize_pem().as_bytes()).unwrap();
        Self::new(kid, Algorithm::RS256, encoding, pair.public_key_pem())
    }

    pub fn ec(kid: &str) -> Self {
        let pair = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
        let encoding = EncodingKey::from_ec_pem(pair.serialize_pem().as_bytes()).unwrap();
        Self::new(kid, Algorithm::ES256, encoding, pair.public_key_pem())
    }

    fn new(kid: &str, alg: Algorithm, encoding: EncodingKey, public_pem: String) -> Self {
        let mut jwk = Jwk::from_encoding_key(&encoding, alg).unwrap();
        jwk.common.key_id = Some(kid.to_string());
        let jwk = serde_json::to_value(jwk).unwrap();
        Self {
            kid: kid.to_string(),
            alg,
            encoding,
            public_pem,
            jwk,
        }
    }

    pub fn header(&self) -> Header {
        let mut header = Header::new(self.alg);
        header.kid = Some(self.kid.clone());
        header
    }

    pub fn sign(&self, claims: &Value) -> String {
        self.sign_with(&self.header(), claims)
    }

    pub fn sign_with(&self, header: &Header, claims: &Value) -> String {
        jsonwebtoken::encode(header, claims, &self.encoding).unwrap()
    }
}

pub fn now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs()
}

/// Claims every check accepts; tests change one field at a time.
pub fn good_claims() -> Value {
    let now = now();
    json!({
        "iss": ISSUER,
        "aud": AUDIENCE,
        "sub": "alice",
        "iat": now,
        "nbf": now - 10,
        "exp": now + 300,
        "scope": "tools:read tools:call",
    })
}

#[derive(Clone)]
struct Published {
    jwks: Arc<Mutex<Value>>,
    hits: Arc<AtomicUsize>,
}

pub struct Issuer {
    pub addr: SocketAddr,
    published: Published,
}

impl Issuer {
    pub async fn start(keys: &[&TestKey]) -> Self {
        let published = Published {
            jwks: Arc::new(Mutex::new(Value::Null)),
            hits: Arc::new(AtomicUsize::new(0)),
        };
        let app = Router::new()
            .route("/jwks", get(jwks))
            .route("/redirect", get(redirect))
            .route("/huge", get(huge))
            .with_state(published.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await });
        let issuer = Self { addr, published };
        issuer.publish(keys);
        issuer
    }

    /// Replaces the served key set (key rotation at the issuer).
    pub fn publish(&self, keys: &[&TestKey]) {
        let set = json!({ "keys": keys.iter().map(|k| k.jwk.clone()).collect::<Vec<_>>() });
        *self.published.jwks.lock().unwrap() = set;
    }

    /// How many times the JWKS was fetched.
    pub fn fetches(&self) -> usize {
        self.published.hits.load(Ordering::SeqCst)
    }

    pub fn url(&self, path: &str) -> url::Url {
        url::Url::parse(&format!("http://{}{path}", self.addr)).unwrap()
    }
}

async fn jwks(State(published): State<Published>) -> Response {
    published.hits.fetch_add(1, Ordering::SeqCst);
    let body = published.jwks.lock().unwrap().clone();
    axum::Json(body).into_response()
}

async fn redirect() -> Response {
    (StatusCode::FOUND, [(header::LOCATION, "/jwks")]).into_response()
}

async fn huge() -> Response {
    let padding = "x".repeat(1024 * 1024);
    axum::Json(json!({ "keys": [], "padding": padding })).into_response()
}
