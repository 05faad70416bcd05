//! Per-call cost of the broker stage on the gateway:
//!
//! - `plan_20_rules`: picking the rule for a call that matches the last of 20 (globs);
//! - `jwt_mint`: signing one call's JWT (Ed25519) and building its lease;
//! - `secret_file_mint`: reading a static secret from its file (page cache) per call;
//! - `postgres_role_mint_release`: a per-call role, created (SCRAM verifier, one round trip
//!   in one transaction: advisory lock, CREATE ROLE, GRANT USAGE, GRANT SELECT) and dropped
//!   (two round trips: NOLOGIN; terminate, DROP OWNED, DROP ROLE) — the latency a call with a
//!   per-call role pays, dominated by PostgreSQL;
//! - `postgres_role_per_session_reuse`: the same call with a per-session role already
//!   minted (the cheap path, with its trade-off in docs/broker.md).
//!
//! The PostgreSQL benches need `DATABASE_URL` (e.g. postgres://postgres@127.0.0.1:5432/test)
//! and are skipped without it. Each async mint runs through `block_on` on a current-thread
//! runtime (well under a microsecond of the figures).
//!
//! Run with `cargo bench -p portcullis-broker --bench broker`.
#![allow(
    clippy::expect_used,
    reason = "benchmark setup: a broken fixture should abort the run"
)]
use std::time::Duration;

use criterion::{Criterion, criterion_group, criterion_main};
use ed25519_dalek::SigningKey;
use portcullis_broker::{
    Broker, CallFacts, CallMatch, Delivery, JwtConfig, Per, PostgresRoleConfig, Privilege, Rule, SchemaGrant,
    SecretConfig, SecretFrom, SourceConfig, SourceKind, Sweep,
};
use portcullis_core::{Secret, Tier};

fn rule(id: &str, server: &str, source: &str) -> Rule {
    Rule {
        id: id.into(),
        server: server.into(),
        tools: vec![],
        tiers: vec![],
        workloads: vec![],
        users: vec![],
        source: source.into(),
        delivery: Delivery::Header {
            name: "Authorization".into(),
            prefix: "Bearer ".into(),
        },
    }
}

fn call<'a>(server: &'a str, session: &'a str) -> CallFacts<'a> {
    CallFacts {
        workload: "spiffe://example.org/agent/dev",
        user: Some("alice"),
        server,
        target: "query",
        decision_id: "0123456789abcdef0123456789abcdef",
        arguments_sha256: "5feceb66ffc86f38d952786c6d696c79c2dbc239dd4e91b46729d73a27fb57e9",
        session,
        bearer: None,
    }
}

fn matching(server: &str) -> CallMatch<'_> {
    CallMatch {
        server,
        target: "query",
        tier: Tier::ReadSensitive,
        workload: "spiffe://example.org/agent/dev",
        user: Some("alice"),
    }
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime")
}

fn local(c: &mut Criterion) {
    let rt = runtime();
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("api-key");
    std::fs::write(&path, "static-api-key\n").expect("write");
    let mut rules: Vec<Rule> = (0..19)
        .map(|i| Rule {
            tools: vec![format!("tool_{i}_*")],
            workloads: vec!["spiffe://example.org/agent/*".into()],
            ..rule(&format!("r{i}"), "github", "jwt")
        })
        .collect();
    rules.push(Rule {
        tools: vec!["que*".into()],
        tiers: vec![Tier::ReadSensitive],
        workloads: vec!["spiffe://example.org/agent/*".into()],
        users: vec!["al*".into()],
        ..rule("last", "github", "jwt")
    });
    rules.push(rule("file", "legacy", "file"));
    let broker = Broker::new(
        rules,
        vec![
            SourceConfig {
                name: "jwt".into(),
                kind: SourceKind::Jwt(JwtConfig {
                    issuer: "https://gateway.example".into(),
                    audience: None,
                    ttl: Duration::from_secs(60),
                    key: SigningKey::from_bytes(&[7; 32]),
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
    let plan = broker.plan(&matching("github")).expect("plan");
    assert_eq!(plan.rule, "last");
    c.bench_function("plan_20_rules", |b| b.iter(|| broker.plan(&matching("github"))));
    c.bench_function("jwt_mint", |b| {
        b.iter(|| rt.block_on(broker.mint(&plan, &call("github", "s1"))).expect("mint"))
    });
    let file_plan = broker.plan(&matching("legacy")).expect("plan");
    c.bench_function("secret_file_mint", |b| {
        b.iter(|| {
            rt.block_on(broker.mint(&file_plan, &call("legacy", "s1")))
                .expect("mint")
        })
    });
}

#[expect(
    clippy::disallowed_methods,
    reason = "benchmark setup: CI names its PostgreSQL server in DATABASE_URL"
)]
fn database_url() -> Option<String> {
    std::env::var("DATABASE_URL").ok()
}

fn postgres(c: &mut Criterion) {
    let Some(url) = database_url() else {
        eprintln!("DATABASE_URL is not set: skipping the postgres-role benches");
        return;
    };
    let rt = runtime();
    let tag = format!("bb_{}", &portcullis_core::CallId::random().as_str()[..12]);
    let schema = format!("{tag}_sales");
    let admin = rt.block_on(sqlx::PgPool::connect(&url)).expect("connect");
    let exec = |sql: String| {
        rt.block_on(sqlx::raw_sql(sqlx::AssertSqlSafe(sql)).execute(&admin))
            .expect("setup statement");
    };
    exec(format!(
        "CREATE SCHEMA {schema}; CREATE TABLE {schema}.orders (id int, amount int)"
    ));
    let parsed = url::Url::parse(&url).expect("DATABASE_URL is a URL");
    let connect_url = format!(
        "postgres://{{user}}:{{password}}@{}:{}{}",
        parsed.host_str().expect("host"),
        parsed.port().unwrap_or(5432),
        parsed.path()
    );
    let source = |name: &str, per: Per, prefix: String| SourceConfig {
        name: name.into(),
        kind: SourceKind::PostgresRole(PostgresRoleConfig {
            admin_url: Secret::new(url.clone()),
            connect_url: connect_url.clone(),
            prefix,
            ttl: Duration::from_secs(300),
            per,
            grants: vec![SchemaGrant {
                schema: schema.clone(),
                privileges: vec![Privilege::Select],
            }],
            connection_limit: 2,
        }),
    };
    let broker = Broker::new(
        vec![rule("per-call", "db", "call"), rule("per-session", "db2", "session")],
        vec![
            source("call", Per::Call, format!("{tag}_c_")),
            source("session", Per::Session, format!("{tag}_s_")),
        ],
    )
    .expect("broker");
    let per_call = broker.plan(&matching("db")).expect("plan");
    let per_session = broker.plan(&matching("db2")).expect("plan");

    let mut group = c.benchmark_group("postgres");
    group.sample_size(20);
    group.bench_function("postgres_role_mint_release", |b| {
        b.iter(|| {
            rt.block_on(async {
                let lease = broker.mint(&per_call, &call("db", "s1")).await.expect("mint");
                lease.release().await.expect("release");
            })
        })
    });
    group.bench_function("postgres_role_per_session_reuse", |b| {
        b.iter(|| {
            rt.block_on(broker.mint(&per_session, &call("db2", "s1")))
                .expect("mint")
        })
    });
    group.finish();

    rt.block_on(broker.end_session("s1"));
    let left = rt.block_on(broker.sweep(Sweep::Start)).expect("sweep");
    assert_eq!(left, 0, "the bench left roles behind");
    exec(format!("DROP SCHEMA {schema} CASCADE"));
}

criterion_group!(benches, local, postgres);
criterion_main!(benches);
