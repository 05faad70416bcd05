//! The `postgres-role` source against the real PostgreSQL of `DATABASE_URL` (skipped
//! without it): what a minted role may and may not do, its expiry, its release, concurrent
//! mints, the sweeper, per-session reuse, and an unreachable server. Every test has its own
//! schemas and role prefix and drops them at the end.
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use portcullis_broker::{Broker, BrokerError, Per, Sweep};
use sqlx::Connection;
use sqlx::postgres::PgConnection;

use crate::support::{Db, call_match, credentials, database_url, facts, rule};

const TTL: Duration = Duration::from_secs(300);

fn broker(db: &Db, per: Per) -> Broker {
    Broker::new(vec![rule("sales-read", "db", "pg")], vec![db.source("pg", per, TTL)]).expect("broker")
}

fn unix_now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs()
}

/// The SQLSTATE of a failed statement.
async fn refused(conn: &mut PgConnection, sql: &str) -> String {
    let err = sqlx::raw_sql(sqlx::AssertSqlSafe(sql.to_owned()))
        .execute(&mut *conn)
        .await
        .expect_err(sql);
    err.as_database_error()
        .and_then(|d| d.code())
        .map(|c| c.into_owned())
        .unwrap_or_else(|| panic!("{sql}: not a database error: {err}"))
}

#[tokio::test]
async fn minted_role_reads_its_schema_only_and_is_gone_after_release() {
    let Some(url) = database_url("the postgres-role test") else {
        return;
    };
    let db = Db::new(&url).await;
    let broker = broker(&db, Per::Call);
    let plan = broker.plan(&call_match("db", "query")).expect("a plan");
    assert_eq!(plan.kind, "postgres-role");
    assert_eq!(plan.scope, format!("SELECT on schema {} (role per call)", db.sales));
    let lease = broker.mint(&plan, &facts("db", "query", "s1")).await.expect("mint");
    let role = lease.role().expect("a per-call role").to_owned();
    assert!(
        role.starts_with(&db.prefix) && role.len() == db.prefix.len() + 16,
        "{role}"
    );
    let (user, password) = credentials(lease.secret().expose());
    assert_eq!(user, role);
    assert_eq!(password.len(), 32);
    // The password reached PostgreSQL only as a SCRAM verifier.
    let stored: String = sqlx::query_scalar("SELECT rolpassword FROM pg_authid WHERE rolname = $1")
        .bind(&role)
        .fetch_one(&db.admin)
        .await
        .expect("pg_authid");
    assert!(stored.starts_with("SCRAM-SHA-256$4096:"), "{stored}");
    assert!(!stored.contains(&password));

    let mut conn = PgConnection::connect(lease.secret().expose())
        .await
        .expect("connect as the role");
    let total: i64 = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
        "SELECT sum(amount)::bigint FROM {}.orders",
        db.sales
    )))
    .fetch_one(&mut conn)
    .await
    .expect("the role reads its schema");
    assert_eq!(total, 350);
    // 42501 insufficient_privilege, each time.
    let other_schema = format!("SELECT * FROM {}.people", db.hr);
    assert_eq!(refused(&mut conn, &other_schema).await, "42501");
    let write = format!("INSERT INTO {}.orders VALUES (3, 1)", db.sales);
    assert_eq!(refused(&mut conn, &write).await, "42501");
    let create_here = format!("CREATE TABLE {}.mine (x int)", db.sales);
    assert_eq!(refused(&mut conn, &create_here).await, "42501");
    // PostgreSQL 15 took CREATE on `public` from PUBLIC; on older servers this would pass.
    let version: i32 = sqlx::query_scalar("SELECT current_setting('server_version_num')::int")
        .fetch_one(&db.admin)
        .await
        .expect("version");
    assert!(
        version >= 150_000,
        "these tests assume PostgreSQL 15 or later, found {version}"
    );
    assert_eq!(
        refused(&mut conn, "CREATE TABLE public.broker_mine (x int)").await,
        "42501"
    );

    lease.release().await.expect("release");
    assert!(!db.role_exists(&role).await, "the role is dropped");
    // Its open session was terminated, and it can no longer log in.
    assert!(
        sqlx::query("SELECT 1").execute(&mut conn).await.is_err(),
        "the role's session survived"
    );
    let again = PgConnection::connect(
        &crate::support::connect_template(&url)
            .replace("{user}", &role)
            .replace("{password}", &password),
    )
    .await;
    assert!(again.is_err(), "a dropped role logged in");
    drop(broker);
    db.cleanup().await;
}

#[tokio::test]
async fn valid_until_is_now_plus_ttl() {
    let Some(url) = database_url("the postgres-role test") else {
        return;
    };
    let db = Db::new(&url).await;
    let broker = broker(&db, Per::Call);
    let plan = broker.plan(&call_match("db", "query")).expect("a plan");
    let before = unix_now();
    let lease = broker.mint(&plan, &facts("db", "query", "s1")).await.expect("mint");
    let after = unix_now();
    let valid_until: i64 =
        sqlx::query_scalar("SELECT extract(epoch FROM rolvaliduntil)::bigint FROM pg_roles WHERE rolname = $1")
            .bind(lease.role().expect("role"))
            .fetch_one(&db.admin)
            .await
            .expect("pg_roles");
    let valid_until = u64::try_from(valid_until).expect("positive");
    assert_eq!(valid_until, lease.expires_at, "the lease records the role's expiry");
    assert!(
        (before + TTL.as_secs()..=after + TTL.as_secs()).contains(&valid_until),
        "VALID UNTIL {valid_until} is not mint time + {} s ({before}..={after})",
        TTL.as_secs()
    );
    lease.release().await.expect("release");
    db.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_mints_get_different_roles_and_passwords() {
    let Some(url) = database_url("the postgres-role test") else {
        return;
    };
    let db = Db::new(&url).await;
    let broker = std::sync::Arc::new(broker(&db, Per::Call));
    let plan = broker.plan(&call_match("db", "query")).expect("a plan");
    // Eight at once: concurrent GRANTs on one schema must queue, not fail.
    let mut tasks = Vec::new();
    for i in 0..8 {
        let (broker, plan) = (broker.clone(), plan.clone());
        tasks.push(tokio::spawn(async move {
            let session = format!("s{i}");
            broker.mint(&plan, &facts("db", "query", &session)).await
        }));
    }
    let mut leases = Vec::new();
    for task in tasks {
        leases.push(task.await.expect("task").expect("mint"));
    }
    let mut users = std::collections::BTreeSet::new();
    let mut passwords = std::collections::BTreeSet::new();
    let mut grants = std::collections::BTreeSet::new();
    for lease in &leases {
        let (user, password) = credentials(lease.secret().expose());
        assert!(db.role_exists(&user).await);
        users.insert(user);
        passwords.insert(password);
        grants.insert(lease.grant_id.clone());
    }
    assert_eq!((users.len(), passwords.len(), grants.len()), (8, 8, 8));
    for lease in leases {
        lease.release().await.expect("release");
    }
    assert!(db.roles(&db.prefix).await.is_empty(), "every role was dropped");
    db.cleanup().await;
}

#[tokio::test]
async fn a_lease_dropped_unreleased_drops_its_role_in_the_background() {
    let Some(url) = database_url("the postgres-role test") else {
        return;
    };
    let db = Db::new(&url).await;
    let broker = broker(&db, Per::Call);
    let plan = broker.plan(&call_match("db", "query")).expect("a plan");
    let lease = broker.mint(&plan, &facts("db", "query", "s1")).await.expect("mint");
    let role = lease.role().expect("role").to_owned();
    drop(lease); // a cancelled call
    // Wait for the background drop (bounded, so a regression fails instead of hanging).
    for _ in 0..200 {
        if !db.role_exists(&role).await {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(!db.role_exists(&role).await, "the dropped lease's role is still there");
    db.cleanup().await;
}

#[tokio::test]
async fn sweep_at_start_drops_a_previous_run_s_roles_of_its_prefix_only() {
    let Some(url) = database_url("the postgres-role test") else {
        return;
    };
    let db = Db::new(&url).await;
    // A previous run that crashed: its lease never released.
    let crashed = broker(&db, Per::Call);
    let plan = crashed.plan(&call_match("db", "query")).expect("a plan");
    let lease = crashed.mint(&plan, &facts("db", "query", "s1")).await.expect("mint");
    let leftover = lease.role().expect("role").to_owned();
    std::mem::forget(lease);
    drop(crashed);
    // Roles the sweeper must leave alone: another prefix, and our prefix with another shape.
    let other = format!("{}x_0123456789abcdef", db.prefix.trim_end_matches('_'));
    let odd = format!("{}admin", db.prefix);
    db.exec(&format!(
        "CREATE ROLE \"{other}\" NOLOGIN; CREATE ROLE \"{odd}\" NOLOGIN"
    ))
    .await;

    let restarted = broker(&db, Per::Call);
    assert_eq!(restarted.sweep(Sweep::Start).await.expect("sweep"), 1);
    assert!(!db.role_exists(&leftover).await, "the leftover role survived the sweep");
    assert!(db.role_exists(&other).await, "a role of another prefix was dropped");
    assert!(db.role_exists(&odd).await, "a role of another shape was dropped");
    assert_eq!(restarted.sweep(Sweep::Start).await.expect("sweep again"), 0);
    db.exec(&format!("DROP ROLE \"{other}\"; DROP ROLE \"{odd}\"")).await;
    db.cleanup().await;
}

#[tokio::test]
async fn sweep_of_expired_roles_spares_live_and_held_ones() {
    let Some(url) = database_url("the postgres-role test") else {
        return;
    };
    let db = Db::new(&url).await;
    let expired = format!("{}0000000000000000", db.prefix);
    db.exec(&format!(
        "CREATE ROLE \"{expired}\" LOGIN VALID UNTIL '2000-01-01 00:00:00+00'"
    ))
    .await;
    // Not held by the broker below and not expired: a live role of another replica's run.
    let other_run = broker(&db, Per::Call);
    let plan = other_run.plan(&call_match("db", "query")).expect("a plan");
    let live = other_run.mint(&plan, &facts("db", "query", "s1")).await.expect("mint");
    let live_role = live.role().expect("role").to_owned();
    std::mem::forget(live);
    // Held by the broker below, and past its VALID UNTIL (as a long call would be).
    let broker = broker(&db, Per::Call);
    let held = broker.mint(&plan, &facts("db", "query", "s2")).await.expect("mint");
    let held_role = held.role().expect("role").to_owned();
    db.exec(&format!(
        "ALTER ROLE \"{held_role}\" VALID UNTIL '2000-01-01 00:00:00+00'"
    ))
    .await;

    assert_eq!(broker.sweep(Sweep::Expired).await.expect("sweep"), 1);
    assert!(!db.role_exists(&expired).await, "the expired leftover survived");
    assert!(db.role_exists(&live_role).await, "a live role was dropped");
    assert!(db.role_exists(&held_role).await, "a role in use was dropped");
    held.release().await.expect("release");
    assert!(!db.role_exists(&held_role).await);
    db.cleanup().await;
}

#[tokio::test]
async fn per_session_roles_are_reused_within_a_session_and_dropped_at_its_end() {
    let Some(url) = database_url("the postgres-role test") else {
        return;
    };
    let db = Db::new(&url).await;
    let broker = broker(&db, Per::Session);
    let plan = broker.plan(&call_match("db", "query")).expect("a plan");
    assert!(plan.scope.ends_with("(role per session)"), "{}", plan.scope);
    let first = broker.mint(&plan, &facts("db", "query", "s1")).await.expect("mint");
    let second = broker.mint(&plan, &facts("db", "other", "s1")).await.expect("mint");
    let elsewhere = broker.mint(&plan, &facts("db", "query", "s2")).await.expect("mint");
    assert_eq!(first.secret(), second.secret(), "one role per session");
    assert_eq!(first.grant_id, second.grant_id, "the reused role keeps its grant id");
    assert_ne!(first.secret(), elsewhere.secret(), "another session gets its own role");
    assert!(first.role().is_none(), "a per-session lease owns no role");
    let (s1_role, _) = credentials(first.secret().expose());
    let (s2_role, _) = credentials(elsewhere.secret().expose());
    // Releasing a per-session lease leaves the role for the session's next call.
    first.release().await.expect("release");
    assert!(db.role_exists(&s1_role).await);

    broker.end_session("s1").await;
    assert!(!db.role_exists(&s1_role).await, "the ended session's role survived");
    assert!(db.role_exists(&s2_role).await, "another session's role was dropped");
    broker.end_session("s2").await;
    assert!(!db.role_exists(&s2_role).await);
    drop((second, elsewhere));
    db.cleanup().await;
}

#[tokio::test]
async fn unreachable_postgresql_denies_the_call() {
    let Some(url) = database_url("the postgres-role test") else {
        return;
    };
    let db = Db::new(&url).await;
    let mut source = db.source("pg", Per::Call, TTL);
    if let portcullis_broker::SourceKind::PostgresRole(c) = &mut source.kind {
        // Nothing listens on port 1.
        c.admin_url = portcullis_core::Secret::new("postgres://postgres:admin-pw@127.0.0.1:1/test".into());
    }
    let broker = Broker::new(vec![rule("sales-read", "db", "pg")], vec![source]).expect("starts without PostgreSQL");
    let plan = broker.plan(&call_match("db", "query")).expect("a plan");
    // A hang guard, not a timing assertion: the pool gives up after its 3 s acquire timeout.
    let minted = tokio::time::timeout(Duration::from_secs(60), broker.mint(&plan, &facts("db", "query", "s1")))
        .await
        .expect("the mint hangs");
    match minted {
        Err(BrokerError::Unavailable { source_name, reason }) => {
            assert_eq!(source_name, "pg");
            assert!(reason.contains("cannot create a role"), "{reason}");
        }
        other => panic!("expected Unavailable, got {other:?}"),
    }
    assert!(matches!(
        broker.sweep(Sweep::Start).await,
        Err(BrokerError::Unavailable { .. })
    ));
    db.cleanup().await;
}
