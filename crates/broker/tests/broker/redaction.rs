//! No secret in `Debug` output, error messages or logs: each source mints (or fails) with
//! every log line captured at TRACE, and the real secret values — passwords, connection
//! strings, verifiers, tokens, the caller's bearer, client secrets, admin URLs — are looked
//! for in all of it.
use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use portcullis_broker::{Broker, BrokerError, CallFacts, Per, SecretConfig, SecretFrom, SourceConfig, SourceKind};
use portcullis_core::Secret;

use crate::support::{Db, call_match, credentials, database_url, facts, rule};

/// Every log line of the current thread (the tests run on a current-thread runtime).
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Captured {
    fn install(&self) -> tracing::subscriber::DefaultGuard {
        let writer = self.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_max_level(tracing::Level::TRACE)
            .with_ansi(false)
            .with_writer(move || writer.clone())
            .finish();
        tracing::subscriber::set_default(subscriber)
    }

    fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
    }
}

fn assert_absent(haystack: &str, secrets: &[&str], what: &str) {
    for secret in secrets {
        assert!(!secret.is_empty());
        assert!(
            !haystack.contains(secret),
            "{what} contains a secret `{secret}`:\n{haystack}"
        );
    }
}

#[tokio::test]
async fn postgres_role_secrets_stay_out_of_debug_errors_and_logs() {
    let Some(url) = database_url("the postgres-role redaction test") else {
        return;
    };
    let logs = Captured::default();
    let _guard = logs.install();
    let db = Db::new(&url).await;
    let source = db.source("pg", Per::Call, Duration::from_secs(60));
    assert!(format!("{source:?}").contains("admin_url: [redacted]"), "{source:?}");
    let broker = Broker::new(vec![rule("sales-read", "db", "pg")], vec![source]).expect("broker");
    let plan = broker.plan(&call_match("db", "query")).expect("plan");
    let lease = broker.mint(&plan, &facts("db", "query", "s1")).await.expect("mint");
    let connect_url = lease.secret().expose().clone();
    let (role, password) = credentials(&connect_url);
    let verifier: String = sqlx::query_scalar("SELECT rolpassword FROM pg_authid WHERE rolname = $1")
        .bind(&role)
        .fetch_one(&db.admin)
        .await
        .expect("pg_authid");
    let debug = format!("{lease:?} {plan:?} {:?}", lease.header_value());
    assert!(debug.contains(&role), "the role name is not secret and helps: {debug}");
    assert!(debug.contains("[redacted]"), "{debug}");
    lease.release().await.expect("release");

    // The admin password of an unreachable server, and of a malformed admin URL.
    let mut down = db.source("pg", Per::Call, Duration::from_secs(60));
    let mut bad = db.source("pg", Per::Call, Duration::from_secs(60));
    let admin_password = "admin-pw-7f3a9c";
    if let (SourceKind::PostgresRole(d), SourceKind::PostgresRole(b)) = (&mut down.kind, &mut bad.kind) {
        d.admin_url = Secret::new(format!("postgres://postgres:{admin_password}@127.0.0.1:1/test"));
        b.admin_url = Secret::new(format!("postgres://postgres:{admin_password}@127.0.0.1:notaport/test"));
    }
    let down = Broker::new(vec![rule("sales-read", "db", "pg")], vec![down]).expect("broker");
    let unavailable = down
        .mint(&plan, &facts("db", "query", "s1"))
        .await
        .expect_err("unreachable");
    let config = Broker::new(vec![], vec![bad]).err().expect("a bad admin URL");
    let errors = format!("{unavailable} {unavailable:?} {config} {config:?}");
    assert!(matches!(unavailable, BrokerError::Unavailable { .. }));

    let logs = logs.text();
    assert!(
        logs.contains("postgres role created"),
        "the broker logged nothing:\n{logs}"
    );
    for (haystack, what) in [(&debug, "Debug output"), (&errors, "an error"), (&logs, "the log")] {
        assert_absent(haystack, &[&password, &connect_url, &verifier, admin_password], what);
    }
    db.cleanup().await;
}

#[tokio::test]
async fn tokens_and_static_secrets_stay_out_of_debug_errors_and_logs() {
    let logs = Captured::default();
    let _guard = logs.install();
    let endpoint = crate::token_exchange::Endpoint::default();
    let url = crate::token_exchange::serve(endpoint).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("api-key");
    std::fs::write(&path, "static-api-key-41d8\n").expect("write");
    let client_secret = "client-secret-0b1e";
    let broker = Broker::new(
        vec![
            rule("gh", "github", "idp"),
            rule("signed", "wiki", "jwt"),
            rule("legacy", "legacy", "file"),
        ],
        vec![
            crate::token_exchange::source(&url, Some(client_secret), Duration::from_secs(5)),
            SourceConfig {
                name: "jwt".into(),
                kind: SourceKind::Jwt(portcullis_broker::JwtConfig {
                    issuer: "https://gateway.example".into(),
                    audience: None,
                    ttl: Duration::from_secs(60),
                    key: ed25519_dalek::SigningKey::from_bytes(&[9; 32]),
                    kid: String::new(),
                }),
            },
            SourceConfig {
                name: "file".into(),
                kind: SourceKind::Secret(SecretConfig {
                    from: SecretFrom::File(path),
                }),
            },
        ],
    )
    .expect("broker");
    let bearer_value = "caller-bearer-5e2d";
    let bearer = Secret::new(bearer_value.to_owned());
    let mut secrets = vec![bearer_value.to_owned(), client_secret.to_owned()];
    let mut debug = String::new();
    for (server, bearer) in [("github", Some(&bearer)), ("wiki", None), ("legacy", None)] {
        let plan = broker.plan(&call_match(server, "t")).expect("plan");
        let call = CallFacts {
            bearer,
            ..facts(server, "t", "s1")
        };
        let lease = broker.mint(&plan, &call).await.expect("mint");
        secrets.push(lease.secret().expose().clone());
        debug.push_str(&format!("{lease:?} {plan:?} {:?} {call:?}\n", lease.header_value()));
    }
    assert!(secrets.contains(&"static-api-key-41d8".to_owned()));
    assert!(secrets.contains(&"exchanged-1".to_owned()));

    // A refusal whose body carries a token, and a 5xx.
    let plan = broker.plan(&call_match("github", "t")).expect("plan");
    let mut errors = String::new();
    for subject in ["fail-400", "fail-500"] {
        let token = Secret::new(subject.to_owned());
        let call = CallFacts {
            bearer: Some(&token),
            ..facts("github", "t", "s1")
        };
        let e = broker.mint(&plan, &call).await.expect_err(subject);
        errors.push_str(&format!("{e} {e:?}\n"));
    }
    secrets.push("leaked-in-error-body".to_owned());

    let logs = logs.text();
    let secrets: Vec<&str> = secrets.iter().map(String::as_str).collect();
    for (haystack, what) in [(&debug, "Debug output"), (&errors, "an error"), (&logs, "the log")] {
        assert_absent(haystack, &secrets, what);
    }
    assert!(debug.matches("[redacted]").count() >= 6, "{debug}");
}
