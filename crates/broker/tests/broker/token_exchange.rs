//! The `token-exchange` source against a token endpoint served by axum on 127.0.0.1: the
//! RFC 8693 form, HTTP Basic client authentication, caching per principal and subject
//! token, and every fault (5xx, 4xx with an OAuth error, no bearer, unreachable, too slow).
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use base64::Engine;
use portcullis_broker::{Broker, BrokerError, CallFacts, Lease, SourceConfig, SourceKind, TokenExchangeConfig};
use portcullis_core::Secret;

use crate::support::{call_match, facts, rule};

/// One request's form fields and Authorization header.
type Seen = (HashMap<String, String>, Option<String>);

/// What the endpoint saw.
#[derive(Clone, Default)]
pub struct Endpoint {
    pub seen: Arc<Mutex<Vec<Seen>>>,
}

impl Endpoint {
    pub fn requests(&self) -> usize {
        self.seen.lock().unwrap().len()
    }
}

/// The subject token picks the answer: `fail-500`, `fail-400`, `slow`, else a token.
async fn token(State(endpoint): State<Endpoint>, headers: HeaderMap, body: String) -> (StatusCode, String) {
    let form: HashMap<String, String> = url::form_urlencoded::parse(body.as_bytes()).into_owned().collect();
    let auth = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let n = {
        let mut seen = endpoint.seen.lock().unwrap();
        seen.push((form.clone(), auth));
        seen.len()
    };
    match form.get("subject_token").map(String::as_str) {
        Some("fail-500") => (StatusCode::INTERNAL_SERVER_ERROR, "upstream exploded".into()),
        Some("fail-400") => (
            StatusCode::BAD_REQUEST,
            r#"{"error":"invalid_grant","error_description":"expired","access_token":"leaked-in-error-body"}"#.into(),
        ),
        Some("slow") => {
            tokio::time::sleep(Duration::from_secs(30)).await;
            (StatusCode::OK, "{}".into())
        }
        _ => (
            StatusCode::OK,
            serde_json::json!({
                "access_token": format!("exchanged-{n}"),
                "issued_token_type": "urn:ietf:params:oauth:token-type:access_token",
                "token_type": "Bearer",
                "expires_in": 300,
            })
            .to_string(),
        ),
    }
}

/// Serves the endpoint on a free loopback port; returns its URL.
pub async fn serve(endpoint: Endpoint) -> String {
    let app = axum::Router::new().route("/token", post(token)).with_state(endpoint);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move { axum::serve(listener, app).await });
    format!("http://{addr}/token")
}

pub fn source(endpoint: &str, client_secret: Option<&str>, timeout: Duration) -> SourceConfig {
    SourceConfig {
        name: "idp".into(),
        kind: SourceKind::TokenExchange(TokenExchangeConfig {
            token_endpoint: endpoint.into(),
            client_id: "portcullis gw".into(),
            client_secret: client_secret.map(|s| Secret::new(s.to_owned())),
            audience: None,
            scope: None,
            timeout,
        }),
    }
}

async fn mint(broker: &Broker, bearer: Option<&Secret<String>>, user: Option<&str>) -> Result<Lease, BrokerError> {
    let plan = broker.plan(&call_match("github", "search_issues")).expect("plan");
    let call = CallFacts {
        bearer,
        user,
        ..facts("github", "search_issues", "s1")
    };
    broker.mint(&plan, &call).await
}

#[tokio::test]
async fn exchange_sends_rfc_8693_form_with_basic_auth_and_caches_per_principal() {
    let endpoint = Endpoint::default();
    let url = serve(endpoint.clone()).await;
    let broker = Broker::new(
        vec![rule("gh", "github", "idp")],
        vec![source(&url, Some("client:secret"), Duration::from_secs(5))],
    )
    .expect("broker");
    let plan = broker.plan(&call_match("github", "search_issues")).expect("plan");
    assert_eq!((plan.kind, plan.scope.as_str()), ("token-exchange", "search_issues"));

    let bearer = Secret::new("caller-access-token".to_owned());
    let lease = mint(&broker, Some(&bearer), Some("alice")).await.expect("mint");
    assert_eq!(lease.secret().expose(), "exchanged-1");
    assert_eq!(lease.header_value().expect("header").expose(), "Bearer exchanged-1");
    {
        let seen = endpoint.seen.lock().unwrap();
        let (form, auth) = &seen[0];
        let expected: HashMap<String, String> = [
            ("grant_type", "urn:ietf:params:oauth:grant-type:token-exchange"),
            ("subject_token", "caller-access-token"),
            ("subject_token_type", "urn:ietf:params:oauth:token-type:access_token"),
            ("requested_token_type", "urn:ietf:params:oauth:token-type:access_token"),
            ("audience", "github"),
            ("scope", "search_issues"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect();
        assert_eq!(form, &expected, "with Basic auth the client id is not in the form");
        // RFC 6749 2.3.1: each part form-urlencoded, then base64.
        let basic = base64::engine::general_purpose::STANDARD.encode("portcullis+gw:client%3Asecret");
        assert_eq!(auth.as_deref(), Some(format!("Basic {basic}").as_str()));
    }

    // Cached for the same principal and bearer; a new exchange for another user or bearer.
    let again = mint(&broker, Some(&bearer), Some("alice")).await.expect("mint");
    assert_eq!(again.secret().expose(), "exchanged-1");
    assert_eq!(again.grant_id, lease.grant_id);
    assert_eq!(endpoint.requests(), 1, "the cached token was exchanged again");
    let bob = mint(&broker, Some(&bearer), Some("bob")).await.expect("mint");
    assert_eq!(bob.secret().expose(), "exchanged-2");
    let refreshed = Secret::new("caller-access-token-2".to_owned());
    let other_bearer = mint(&broker, Some(&refreshed), Some("alice")).await.expect("mint");
    assert_eq!(other_bearer.secret().expose(), "exchanged-3");
    assert_eq!(endpoint.requests(), 3);
}

#[tokio::test]
async fn without_a_client_secret_the_client_id_is_in_the_form() {
    let endpoint = Endpoint::default();
    let url = serve(endpoint.clone()).await;
    let broker = Broker::new(
        vec![rule("gh", "github", "idp")],
        vec![source(&url, None, Duration::from_secs(5))],
    )
    .expect("broker");
    let bearer = Secret::new("t".to_owned());
    mint(&broker, Some(&bearer), None).await.expect("mint");
    let seen = endpoint.seen.lock().unwrap();
    assert_eq!(seen[0].0.get("client_id").map(String::as_str), Some("portcullis gw"));
    assert_eq!(seen[0].1, None, "no Authorization header");
}

#[tokio::test]
async fn faults_deny_and_are_never_cached() {
    let endpoint = Endpoint::default();
    let url = serve(endpoint.clone()).await;
    let broker = Broker::new(
        vec![rule("gh", "github", "idp")],
        vec![source(&url, Some("s"), Duration::from_millis(500))],
    )
    .expect("broker");

    let fail = Secret::new("fail-500".to_owned());
    for _ in 0..2 {
        match mint(&broker, Some(&fail), Some("alice")).await {
            Err(BrokerError::Unavailable { source_name, reason }) => {
                assert_eq!(source_name, "idp");
                assert!(reason.contains("500"), "{reason}");
            }
            other => panic!("expected Unavailable, got {other:?}"),
        }
    }
    assert_eq!(endpoint.requests(), 2, "an error was cached");

    let refused = Secret::new("fail-400".to_owned());
    match mint(&broker, Some(&refused), Some("alice")).await {
        Err(e @ BrokerError::Refused { .. }) => {
            let message = e.to_string();
            assert!(message.contains("`invalid_grant`"), "{message}");
            assert!(message.contains("400"), "{message}");
            assert!(!message.contains("leaked-in-error-body"), "{message}");
            assert!(!message.contains("expired"), "the description is not quoted: {message}");
        }
        other => panic!("expected Refused, got {other:?}"),
    }

    match mint(&broker, None, Some("alice")).await {
        Err(BrokerError::NoBearer { source_name }) => assert_eq!(source_name, "idp"),
        other => panic!("expected NoBearer, got {other:?}"),
    }
    let requests = endpoint.requests();

    let slow = Secret::new("slow".to_owned());
    match mint(&broker, Some(&slow), Some("alice")).await {
        Err(BrokerError::Unavailable { reason, .. }) => {
            assert!(reason.contains("did not answer within 500 ms"), "{reason}")
        }
        other => panic!("expected Unavailable, got {other:?}"),
    }
    assert_eq!(endpoint.requests(), requests + 1);
}

#[tokio::test]
async fn unreachable_endpoint_denies() {
    // A port that was free a moment ago and has no listener now.
    let port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        listener.local_addr().expect("addr").port()
    };
    let broker = Broker::new(
        vec![rule("gh", "github", "idp")],
        vec![source(
            &format!("http://127.0.0.1:{port}/token"),
            None,
            Duration::from_secs(2),
        )],
    )
    .expect("broker");
    let bearer = Secret::new("t".to_owned());
    match mint(&broker, Some(&bearer), None).await {
        Err(BrokerError::Unavailable { reason, .. }) => assert!(reason.contains("cannot connect"), "{reason}"),
        other => panic!("expected Unavailable, got {other:?}"),
    }
}
