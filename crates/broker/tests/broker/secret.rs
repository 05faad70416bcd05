//! The `secret` source: read from a file at every mint (rotation without restart, trailing
//! newline trimmed, a missing or empty file denies) or from the gateway's environment.
use portcullis_broker::{Broker, BrokerError, Delivery, SecretConfig, SecretFrom, SourceConfig, SourceKind};
use portcullis_core::Secret;

use crate::support::{call_match, facts, rule};

fn broker(from: SecretFrom, delivery: Delivery) -> Broker {
    Broker::new(
        vec![portcullis_broker::Rule {
            delivery,
            ..rule("static", "legacy", "s")
        }],
        vec![SourceConfig {
            name: "s".into(),
            kind: SourceKind::Secret(SecretConfig { from }),
        }],
    )
    .expect("broker")
}

async fn mint(broker: &Broker) -> Result<portcullis_broker::Lease, BrokerError> {
    let plan = broker.plan(&call_match("legacy", "any")).expect("plan");
    broker.mint(&plan, &facts("legacy", "any", "s1")).await
}

fn env_delivery() -> Delivery {
    Delivery::Env {
        var: "LEGACY_TOKEN".into(),
    }
}

#[tokio::test]
async fn file_is_read_at_every_mint() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("token");
    std::fs::write(&path, "first-value\n").expect("write");
    let broker = broker(SecretFrom::File(path.clone()), env_delivery());
    let lease = mint(&broker).await.expect("mint");
    assert_eq!(lease.secret().expose(), "first-value", "trailing newline trimmed");
    assert_eq!(lease.env(), Some(("LEGACY_TOKEN", lease.secret())));
    assert_eq!(lease.header_value(), None);
    assert_eq!((lease.kind, lease.expires_at), ("secret", 0));

    std::fs::write(&path, "rotated-value\r\n").expect("rotate");
    assert_eq!(mint(&broker).await.expect("mint").secret().expose(), "rotated-value");

    std::fs::write(&path, "\n").expect("empty");
    assert!(matches!(mint(&broker).await, Err(BrokerError::Unavailable { reason, .. }) if reason.contains("empty")));
}

#[tokio::test]
async fn missing_file_denies_naming_the_path() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("absent");
    let broker = broker(SecretFrom::File(path.clone()), env_delivery());
    match mint(&broker).await {
        Err(e @ BrokerError::Unavailable { .. }) => {
            let message = e.to_string();
            assert!(message.contains(&path.display().to_string()), "{message}");
            assert!(message.contains("credential source `s`"), "{message}");
        }
        other => panic!("expected Unavailable, got {other:?}"),
    }
}

#[tokio::test]
async fn an_environment_variable_read_at_load_is_delivered_and_an_empty_one_denies() {
    let env = |value: &str| SecretFrom::Env {
        var: "API_TOKEN".into(),
        value: Secret::new(value.into()),
    };
    let lease = mint(&broker(env("from-the-environment"), env_delivery()))
        .await
        .expect("mint");
    assert_eq!(lease.secret().expose(), "from-the-environment");
    match mint(&broker(env(""), env_delivery())).await {
        Err(e @ BrokerError::Unavailable { .. }) => assert!(e.to_string().contains("empty"), "{e}"),
        other => panic!("expected Unavailable, got {other:?}"),
    }
}

#[tokio::test]
async fn a_secret_that_cannot_be_a_header_value_is_not_delivered() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("token");
    std::fs::write(&path, "line-one\r\nX-Injected: yes").expect("write");
    let header = Delivery::Header {
        name: "X-Api-Key".into(),
        prefix: String::new(),
    };
    match mint(&broker(SecretFrom::File(path), header)).await {
        Err(e @ BrokerError::Unavailable { .. }) => {
            let message = e.to_string();
            assert!(message.contains("HTTP header value"), "{message}");
            assert!(!message.contains("line-one"), "{message}");
        }
        other => panic!("expected Unavailable, got {other:?}"),
    }
}
