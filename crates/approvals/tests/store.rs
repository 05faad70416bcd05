//! The approvals store (T25 state): one suite of rules run against both stores — this
//! gateway's memory and PostgreSQL — then what only the shared store promises, with two
//! store instances on one database standing for two replicas: a decision given through
//! one wakes the call waiting on the other, exactly one of racing decisions wins, a used
//! request (and its nonce) is refused on every replica, `max_pending` counts them all,
//! break-glass needs two approvers across them, and a store that fails fails closed.
//!
//! The PostgreSQL tests need `DATABASE_URL` (e.g. postgres://postgres@127.0.0.1:5432/test);
//! without it each prints a notice and returns. Each uses its own schema and drops it.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, reason = "tests")]

use std::time::Instant;

use portcullis_approvals::{
    ApprovalError, ApprovalStore, Approver, Binding, BindingPrincipal, Grant, Opening, PendingSettings, PendingState,
    Requirement, WindowState, unix_now,
};
use sqlx::Executor;

#[expect(
    clippy::disallowed_methods,
    reason = "test setup: CI names its PostgreSQL server in DATABASE_URL"
)]
fn database_url(what: &str) -> Option<String> {
    let url = std::env::var("DATABASE_URL").ok();
    if url.is_none() {
        eprintln!("DATABASE_URL is not set: skipping {what}");
    }
    url
}

/// A schema of its own for one test, dropped when it ends.
struct Schema {
    url: String,
    name: String,
}

impl Schema {
    fn new(url: &str, prefix: &str) -> Self {
        Self {
            url: url.to_owned(),
            name: format!("{prefix}_{}", &portcullis_core::CallId::random().to_string()[..12]),
        }
    }

    async fn store(&self, settings: PendingSettings) -> ApprovalStore {
        ApprovalStore::postgres(&self.url, &self.name, settings, 3600)
            .await
            .expect("open the shared store")
    }

    async fn sql(&self, statement: &str) {
        let pool = sqlx::PgPool::connect(&self.url).await.expect("connect");
        pool.execute(sqlx::AssertSqlSafe(format!(
            "SET search_path TO {}; {statement}",
            self.name
        )))
        .await
        .expect("statement");
    }

    async fn drop(self) {
        let pool = sqlx::PgPool::connect(&self.url).await.expect("connect");
        pool.execute(sqlx::AssertSqlSafe(format!(
            "DROP SCHEMA IF EXISTS {} CASCADE",
            self.name
        )))
        .await
        .expect("drop schema");
    }
}

fn settings(max_pending: usize) -> PendingSettings {
    PendingSettings {
        ttl_secs: 600,
        max_pending,
        requirements: vec![Requirement {
            pattern: glob::Pattern::new("files/delete_*").unwrap(),
            required: 2,
        }],
    }
}

fn opening(target: &str, arguments: &str) -> Opening {
    Opening {
        call: Binding {
            v: 0,
            id: String::new(),
            principal: BindingPrincipal {
                workload: "spiffe://example.org/agent".into(),
                user: Some("alice".into()),
            },
            server: "files".into(),
            method: "tools/call".into(),
            target: target.into(),
            arguments_sha256: arguments.repeat(32),
            policy_sha256: "11".repeat(32),
            nonce: String::new(),
            expires_at: 0,
        },
        call_id: "c-1".into(),
        tier: "write".into(),
        reason: Some("ticket 7".into()),
        arguments_summary: r#"{"path":"/tmp/x"}"#.into(),
    }
}

fn approver(name: &str) -> Approver {
    Approver {
        name: name.into(),
        spiffe_id: None,
        user: name.into(),
        key: None,
        revoked: false,
    }
}

fn grant(name: &str) -> Grant {
    Grant {
        approver: name.into(),
        channel: "admin".into(),
        signature_sha256: Some("ab".repeat(32)),
    }
}

// ---------------------------------------------------------------------------------------
// One suite, both stores
// ---------------------------------------------------------------------------------------

/// N-of-M counts distinct approvers, the caller never approves their own call, the
/// request is listed as approvers see it, and a granted request is used once.
async fn n_of_m_is_counted_and_used_once(store: &ApprovalStore) {
    let opened = store.open(opening("delete_all", "00")).await.unwrap();
    let id = opened.binding.id.clone();
    assert_eq!(opened.required, 2);
    let listed = store.list().await.unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(
        listed[0].binding, opened.binding,
        "the binding approvers sign is kept exactly"
    );
    assert_eq!(listed[0].reason.as_deref(), Some("ticket 7"));
    assert_eq!(
        store.grant(&id, &approver("alice"), grant("alice")).await.unwrap_err(),
        ApprovalError::SelfApproval("alice".into())
    );
    for _ in 0..2 {
        let after = store.grant(&id, &approver("bob"), grant("bob")).await.unwrap();
        assert_eq!(
            after.state,
            PendingState::Waiting,
            "the same approver twice counts once"
        );
    }
    let after = store.grant(&id, &approver("carol"), grant("carol")).await.unwrap();
    assert_eq!(after.state, PendingState::Granted);
    assert_eq!(after.grants, [grant("bob"), grant("carol")]);
    assert_eq!(store.wait_decided(&id).await.unwrap(), PendingState::Granted);
    assert_eq!(store.consume(&id).await.unwrap().grants.len(), 2);
    assert!(matches!(
        store.consume(&id).await,
        Err(ApprovalError::UnknownRequest(_))
    ));
    assert!(store.list().await.unwrap().is_empty());
}

/// A deny ends the request: a later approval cannot revive it, and it is not used.
async fn a_deny_wins_over_a_later_approval(store: &ApprovalStore) {
    let b = store.open(opening("write_file", "01")).await.unwrap().binding;
    store.deny(&b.id, &approver("erin")).await.unwrap();
    assert_eq!(
        store.wait_decided(&b.id).await.unwrap(),
        PendingState::Denied { by: "erin".into() }
    );
    assert!(matches!(
        store.grant(&b.id, &approver("bob"), grant("bob")).await,
        Err(ApprovalError::AlreadyDecided(_, "denied"))
    ));
    assert!(matches!(
        store.consume(&b.id).await,
        Err(ApprovalError::AlreadyDecided(_, "denied"))
    ));
    assert!(store.take_granted_for(&b).await.unwrap().is_none());
    assert!(store.withdraw(&b.id).await.unwrap().is_some());
    assert!(store.withdraw(&b.id).await.unwrap().is_none(), "withdrawn once");
}

/// A retry of the same call takes its granted request, once; another call does not.
async fn a_retry_takes_the_granted_request_of_the_same_call_once(store: &ApprovalStore) {
    let b = store.open(opening("write_file", "02")).await.unwrap().binding;
    store.grant(&b.id, &approver("bob"), grant("bob")).await.unwrap();
    let mut other = b.clone();
    other.target = "write_other".into();
    assert!(store.take_granted_for(&other).await.unwrap().is_none());
    assert_eq!(store.take_granted_for(&b).await.unwrap().unwrap().binding.id, b.id);
    assert!(store.take_granted_for(&b).await.unwrap().is_none(), "used once");
}

/// The caller's own answer (elicitation): yes grants outright, no denies.
async fn the_callers_own_answer_decides(store: &ApprovalStore) {
    let yes = store.open(opening("delete_one", "03")).await.unwrap().binding;
    let user = Grant {
        approver: "user:alice".into(),
        channel: "elicitation".into(),
        signature_sha256: None,
    };
    let after = store.confirm_by_caller(&yes.id, user).await.unwrap();
    assert_eq!(after.state, PendingState::Granted, "whatever `required` is");
    store.consume(&yes.id).await.unwrap();
    let no = store.open(opening("write_file", "04")).await.unwrap().binding;
    store.refuse_by_caller(&no.id, "user:alice").await.unwrap();
    assert_eq!(
        store.wait_decided(&no.id).await.unwrap(),
        PendingState::Denied {
            by: "user:alice".into()
        }
    );
}

/// `max_pending` refuses the call beyond it; a withdrawn request gives its room back.
async fn a_full_pending_set_refuses(store: &ApprovalStore) {
    let first = store.open(opening("write_file", "05")).await.unwrap().binding;
    store.open(opening("write_file", "06")).await.unwrap();
    assert_eq!(
        store.open(opening("write_file", "07")).await.unwrap_err(),
        ApprovalError::QueueFull(2)
    );
    store.withdraw(&first.id).await.unwrap();
    store.open(opening("write_file", "07")).await.unwrap();
}

/// A prepared request (what the gateway records before it opens it) is invisible to
/// approvers until admitted; admission counts against `max_pending` like opening.
async fn a_prepared_request_is_invisible_until_admitted(store: &ApprovalStore) {
    let prepared = store.prepare(opening("delete_one", "08"));
    let id = prepared.binding.id.clone();
    assert!(store.list().await.unwrap().is_empty());
    assert!(matches!(store.get(&id).await, Err(ApprovalError::UnknownRequest(_))));
    assert!(store.grant(&id, &approver("bob"), grant("bob")).await.is_err());
    assert!(store.deny(&id, &approver("bob")).await.is_err());
    assert_eq!(store.admit(prepared).await.unwrap().binding.id, id);
    let listed: Vec<String> = store.list().await.unwrap().into_iter().map(|e| e.binding.id).collect();
    assert_eq!(listed, vec![id.clone()]);
    store.grant(&id, &approver("bob"), grant("bob")).await.unwrap();
    store.open(opening("write_file", "09")).await.unwrap();
    assert_eq!(
        store
            .admit(store.prepare(opening("write_file", "10")))
            .await
            .unwrap_err(),
        ApprovalError::QueueFull(2)
    );
}

/// Break-glass: one approver (twice) does not open a window, two do; it is in force for
/// its workload only, and ends when ended.
async fn break_glass_needs_two_approvers(store: &ApprovalStore) {
    let agent = "spiffe://example.org/agent";
    assert!(
        store.request_window("bob", " ", 60, None).await.is_err(),
        "a reason is required"
    );
    assert!(
        store.request_window("bob", "outage", 7200, None).await.is_err(),
        "over the cap"
    );
    let w = store
        .request_window("bob", "outage", 600, Some(agent.into()))
        .await
        .unwrap();
    for _ in 0..2 {
        let after = store.approve_window(&w.id, &approver("bob"), unix_now()).await.unwrap();
        assert_eq!(after.state, WindowState::Requested);
    }
    assert_eq!(store.expire_and_find_window(agent).await.unwrap().1, None);
    let after = store
        .approve_window(&w.id, &approver("erin"), unix_now())
        .await
        .unwrap();
    assert!(matches!(after.state, WindowState::Active { .. }), "{after:?}");
    assert_eq!(after.approvers, ["bob", "erin"]);
    assert_eq!(store.expire_and_find_window(agent).await.unwrap().1, Some(w.id.clone()));
    assert_eq!(
        store
            .expire_and_find_window("spiffe://example.org/other")
            .await
            .unwrap()
            .1,
        None
    );
    store.end_window(&w.id, "erin").await.unwrap();
    let (ended, active) = store.expire_and_find_window(agent).await.unwrap();
    assert!(
        ended.is_empty() && active.is_none(),
        "ended by an approver, not by its TTL"
    );
    assert!(matches!(
        store.end_window(&w.id, "erin").await,
        Err(ApprovalError::AlreadyDecided(_, "ended"))
    ));
    let listed = store.windows().await.unwrap();
    assert_eq!(listed.len(), 1);
    assert!(
        matches!(&listed[0].state, WindowState::Ended { by, .. } if by == "erin"),
        "{listed:?}"
    );
}

/// Runs the suite against `store` (fresh for each case, from `fresh`).
async fn suite<F, Fut>(fresh: F)
where
    F: Fn(usize) -> Fut,
    Fut: std::future::Future<Output = ApprovalStore>,
{
    n_of_m_is_counted_and_used_once(&fresh(10).await).await;
    a_deny_wins_over_a_later_approval(&fresh(10).await).await;
    a_retry_takes_the_granted_request_of_the_same_call_once(&fresh(10).await).await;
    the_callers_own_answer_decides(&fresh(10).await).await;
    a_full_pending_set_refuses(&fresh(2).await).await;
    a_prepared_request_is_invisible_until_admitted(&fresh(2).await).await;
    break_glass_needs_two_approvers(&fresh(10).await).await;
}

#[tokio::test]
async fn t25_the_memory_store_keeps_the_rules() {
    suite(|max| async move { ApprovalStore::memory(settings(max), 3600) }).await;
}

#[tokio::test]
async fn t25_the_postgres_store_keeps_the_same_rules() {
    let Some(url) = database_url("the PostgreSQL approvals store suite") else {
        return;
    };
    let mut schemas = Vec::new();
    let made = std::sync::Mutex::new(&mut schemas);
    suite(|max| {
        let schema = Schema::new(&url, "approvals_suite");
        let name = schema.name.clone();
        made.lock().unwrap().push(schema);
        let url = url.clone();
        async move {
            ApprovalStore::postgres(&url, &name, settings(max), 3600)
                .await
                .expect("open")
        }
    })
    .await;
    for schema in schemas {
        schema.drop().await;
    }
}

// ---------------------------------------------------------------------------------------
// Two replicas on one database
// ---------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn t25_an_approval_through_one_replica_wakes_the_call_waiting_on_another() {
    let Some(url) = database_url("the shared approvals store test") else {
        return;
    };
    let schema = Schema::new(&url, "approvals_wake");
    let (a, b) = (schema.store(settings(10)).await, schema.store(settings(10)).await);
    let id = b.open(opening("write_file", "10")).await.unwrap().binding.id;
    let listed = a.list().await.unwrap();
    assert_eq!(listed.len(), 1, "replica A lists what replica B holds");
    let waiting = tokio::spawn({
        let (b, id) = (b.clone(), id.clone());
        async move { b.wait_decided(&id).await }
    });
    // Let B's call start waiting before A decides (it sees the decision either way; the
    // pause only makes the measured wake-up the notification's, not a first read's).
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    let decided = Instant::now();
    a.grant(&id, &approver("bob"), grant("bob")).await.unwrap();
    assert_eq!(waiting.await.unwrap().unwrap(), PendingState::Granted);
    eprintln!(
        "replica B's waiting call woke {} ms after replica A's grant committed",
        decided.elapsed().as_millis()
    );
    b.consume(&id).await.unwrap();
    schema.drop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn t25_of_an_approve_and_a_deny_racing_on_two_replicas_exactly_one_wins() {
    let Some(url) = database_url("the shared approvals store test") else {
        return;
    };
    let schema = Schema::new(&url, "approvals_race");
    let (a, b) = (schema.store(settings(100)).await, schema.store(settings(100)).await);
    for n in 0..20 {
        let id = a
            .open(opening("write_file", &format!("{:02x}", n + 0x20)))
            .await
            .unwrap()
            .binding
            .id;
        let approve = tokio::spawn({
            let (a, id) = (a.clone(), id.clone());
            async move { a.grant(&id, &approver("bob"), grant("bob")).await }
        });
        let deny = tokio::spawn({
            let (b, id) = (b.clone(), id.clone());
            async move { b.deny(&id, &approver("erin")).await }
        });
        let (approved, denied) = (approve.await.unwrap(), deny.await.unwrap());
        assert!(
            approved.is_ok() ^ denied.is_ok(),
            "exactly one wins: {approved:?} / {denied:?}"
        );
        let loser = approved.err().or(denied.err()).unwrap();
        assert!(matches!(loser, ApprovalError::AlreadyDecided(..)), "{loser:?}");
        let state = a.get(&id).await.unwrap().state;
        assert_eq!(
            b.wait_decided(&id).await.unwrap(),
            state,
            "both replicas see the winner"
        );
    }
    schema.drop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn t25_a_granted_request_is_used_once_across_replicas_and_its_nonce_never_again() {
    let Some(url) = database_url("the shared approvals store test") else {
        return;
    };
    let schema = Schema::new(&url, "approvals_nonce");
    let (a, b) = (schema.store(settings(100)).await, schema.store(settings(100)).await);
    // Two replicas using the same granted request at once: one gets it.
    for n in 0..10 {
        let binding = a
            .open(opening("write_file", &format!("{:02x}", n + 0x40)))
            .await
            .unwrap()
            .binding;
        a.grant(&binding.id, &approver("bob"), grant("bob")).await.unwrap();
        let on_a = tokio::spawn({
            let (a, id) = (a.clone(), binding.id.clone());
            async move { a.consume(&id).await }
        });
        let on_b = tokio::spawn({
            let (b, call) = (b.clone(), binding.clone());
            async move { b.take_granted_for(&call).await }
        });
        let (on_a, on_b) = (on_a.await.unwrap(), on_b.await.unwrap().unwrap());
        assert!(on_a.is_ok() ^ on_b.is_some(), "used once: {on_a:?} / {on_b:?}");
    }
    // A request restored with a used nonce (a backup, a replayed row) is refused.
    let binding = a.open(opening("write_file", "60")).await.unwrap().binding;
    a.grant(&binding.id, &approver("bob"), grant("bob")).await.unwrap();
    let used = a.consume(&binding.id).await.unwrap();
    assert!(matches!(
        b.consume(&binding.id).await,
        Err(ApprovalError::UnknownRequest(_))
    ));
    schema
        .sql(&format!(
            "INSERT INTO portcullis_approval_requests (id, binding, arguments_sha256, required, state, call_id, tier, \
             arguments_summary, opened_at, expires_at) VALUES ('{id}', '{binding}', '{args}', 1, 'granted', 'c', 'write', \
             '{{}}', 0, {exp})",
            id = binding.id,
            binding = String::from_utf8(used.binding.to_bytes()).unwrap(),
            args = binding.arguments_sha256,
            exp = binding.expires_at,
        ))
        .await;
    assert!(
        matches!(b.consume(&binding.id).await, Err(ApprovalError::UnknownRequest(_))),
        "its nonce was used"
    );
    schema.drop().await;
}

#[tokio::test]
async fn t25_max_pending_counts_the_requests_of_every_replica() {
    let Some(url) = database_url("the shared approvals store test") else {
        return;
    };
    let schema = Schema::new(&url, "approvals_full");
    let (a, b) = (schema.store(settings(2)).await, schema.store(settings(2)).await);
    a.open(opening("write_file", "70")).await.unwrap();
    b.open(opening("write_file", "71")).await.unwrap();
    for store in [&a, &b] {
        assert_eq!(
            store.open(opening("write_file", "72")).await.unwrap_err(),
            ApprovalError::QueueFull(2)
        );
    }
    // Expired requests give their room back (judged from their stored expiry).
    schema
        .sql("UPDATE portcullis_approval_requests SET expires_at = 1 WHERE arguments_sha256 LIKE '70%'")
        .await;
    b.open(opening("write_file", "72")).await.unwrap();
    assert_eq!(a.list().await.unwrap().len(), 2);
    schema.drop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn t25_a_lapsed_request_is_expired_once_across_replicas() {
    let Some(url) = database_url("the shared approvals store test") else {
        return;
    };
    let schema = Schema::new(&url, "approvals_expiry");
    let (a, b) = (schema.store(settings(10)).await, schema.store(settings(10)).await);
    let waiting = a.open(opening("write_file", "90")).await.unwrap().binding;
    let granted = b.open(opening("write_file", "91")).await.unwrap().binding;
    let live = a.open(opening("write_file", "92")).await.unwrap().binding;
    a.grant(&granted.id, &approver("bob"), grant("bob")).await.unwrap();
    let woken = tokio::spawn({
        let (b, id) = (b.clone(), waiting.id.clone());
        async move { b.wait_decided(&id).await }
    });
    for store in [&a, &b] {
        assert!(
            store.expire_requests().await.unwrap().is_empty(),
            "nothing has lapsed yet"
        );
    }
    schema
        .sql("UPDATE portcullis_approval_requests SET expires_at = 1 WHERE arguments_sha256 ~ '^(90|91)'")
        .await;
    assert_eq!(a.list().await.unwrap().len(), 1, "lapsed requests are unlisted at once");
    assert!(b.take_granted_for(&granted).await.unwrap().is_none(), "and unusable");
    // Both replicas sweep at once: each lapsed request goes to exactly one of them.
    let (on_a, on_b) = tokio::join!(a.expire_requests(), b.expire_requests());
    let mut expired: Vec<(String, String, PendingState)> = on_a
        .unwrap()
        .into_iter()
        .chain(on_b.unwrap())
        .map(|e| (e.binding.id, e.call_id, e.state))
        .collect();
    expired.sort_by(|x, y| x.0.cmp(&y.0));
    let mut expected = vec![
        (waiting.id.clone(), "c-1".to_owned(), PendingState::Waiting),
        (granted.id.clone(), "c-1".to_owned(), PendingState::Granted),
    ];
    expected.sort_by(|x, y| x.0.cmp(&y.0));
    assert_eq!(
        expired, expected,
        "each lapsed request once, with the call it was opened for"
    );
    for store in [&a, &b] {
        assert!(
            store.expire_requests().await.unwrap().is_empty(),
            "expired once, not twice"
        );
    }
    assert!(
        matches!(woken.await.unwrap(), Err(ApprovalError::UnknownRequest(_))),
        "a call waiting on another replica finds its request gone"
    );
    assert_eq!(a.get(&live.id).await.unwrap().binding, live, "the live request stays");
    schema.drop().await;
}

#[tokio::test]
async fn t25_replicas_share_the_request_state_key_and_memory_stores_do_not() {
    let call = opening("write_file", "a0").call;
    // In memory: each gateway's own key; a state from one is refused by another.
    let memory = ApprovalStore::memory(settings(10), 3600);
    let binding = memory.open(opening("write_file", "a0")).await.unwrap().binding;
    let (one, other) = (memory.request_states(60), memory.request_states(60));
    let state = one.issue(&binding);
    assert_eq!(one.check(&state, &call).unwrap().id, binding.id);
    assert_eq!(other.check(&state, &call).unwrap_err(), other_key_error());

    let Some(url) = database_url("the shared request-state key test") else {
        return;
    };
    let schema = Schema::new(&url, "approvals_keys");
    let a = schema.store(settings(10)).await;
    let binding = a.open(opening("write_file", "a1")).await.unwrap().binding;
    let state = a.request_states(60).issue(&binding);
    // Replica B — and A after a restart — check it under the same key.
    let b = schema.store(settings(10)).await;
    let mut call = opening("write_file", "a1").call;
    assert_eq!(b.request_states(60).check(&state, &call).unwrap().id, binding.id);
    call.principal.user = Some("mallory".into());
    assert_eq!(
        b.request_states(60).check(&state, &call).unwrap_err(),
        ApprovalError::WrongCall("principal"),
        "still bound to the call and its principal"
    );
    let mut tampered = state.clone();
    tampered.insert(3, 'x');
    assert!(matches!(
        b.request_states(60).check(&tampered, &opening("write_file", "a1").call),
        Err(ApprovalError::Malformed(_))
    ));
    schema.drop().await;
}

/// What a state issued under another gateway's key (or altered) is refused with.
fn other_key_error() -> ApprovalError {
    ApprovalError::Malformed("requestState: altered, or issued by a gateway that has restarted since".into())
}

#[tokio::test]
async fn t25_break_glass_needs_two_approvers_across_replicas_and_ends_once_at_its_ttl() {
    let Some(url) = database_url("the shared approvals store test") else {
        return;
    };
    let schema = Schema::new(&url, "approvals_glass");
    let (a, b) = (schema.store(settings(10)).await, schema.store(settings(10)).await);
    let w = a.request_window("bob", "incident 9", 600, None).await.unwrap();
    a.approve_window(&w.id, &approver("bob"), unix_now()).await.unwrap();
    let after = b.approve_window(&w.id, &approver("bob"), unix_now()).await.unwrap();
    assert_eq!(after.state, WindowState::Requested, "bob on two replicas counts once");
    assert_eq!(a.expire_and_find_window("any").await.unwrap().1, None);
    let after = b.approve_window(&w.id, &approver("erin"), unix_now()).await.unwrap();
    assert!(matches!(after.state, WindowState::Active { .. }));
    assert_eq!(a.expire_and_find_window("any").await.unwrap().1, Some(w.id.clone()));
    // Its TTL runs out: one replica ends (and records) it, the other finds nothing to end.
    schema
        .sql(&format!(
            "UPDATE portcullis_approval_windows SET until_at = 1 WHERE id = '{}'",
            w.id
        ))
        .await;
    let (ended, active) = b.expire_and_find_window("any").await.unwrap();
    assert_eq!((ended.len(), active), (1, None));
    assert_eq!(
        ended[0].state,
        WindowState::Ended {
            at: 1,
            by: "ttl".into()
        }
    );
    assert!(a.expire_windows().await.unwrap().is_empty(), "ended once");
    assert_eq!(a.windows().await.unwrap()[0].state.label(), "ended");
    schema.drop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn t25_a_shared_store_that_fails_fails_closed() {
    let Some(url) = database_url("the shared approvals store test") else {
        return;
    };
    // Nothing listens on port 1: the store does not open.
    let nowhere = "postgres://portcullis:hunter2@127.0.0.1:1/test";
    let refused = ApprovalStore::postgres(nowhere, "approvals_nowhere", settings(10), 3600)
        .await
        .unwrap_err();
    assert!(
        matches!(
            refused,
            ApprovalError::Store {
                action: "connecting",
                ..
            }
        ),
        "{refused:?}"
    );
    assert!(
        !refused.to_string().contains("hunter2"),
        "no password in the message: {refused}"
    );

    // Its tables gone mid-run: opening, deciding and waiting all fail with the store named.
    let schema = Schema::new(&url, "approvals_gone");
    let store = schema.store(settings(10)).await;
    let id = store.open(opening("write_file", "80")).await.unwrap().binding.id;
    let waiting = tokio::spawn({
        let (store, id) = (store.clone(), id.clone());
        async move { store.wait_decided(&id).await }
    });
    schema
        .sql("ALTER TABLE portcullis_approval_requests RENAME TO gone")
        .await;
    let failed = [
        store.open(opening("write_file", "81")).await.unwrap_err(),
        store.grant(&id, &approver("bob"), grant("bob")).await.unwrap_err(),
        store.list().await.unwrap_err(),
        waiting.await.unwrap().unwrap_err(),
    ];
    for e in failed {
        assert!(matches!(e, ApprovalError::Store { .. }), "{e:?}");
        assert!(e.to_string().contains("shared approvals store"), "{e}");
    }
    schema.drop().await;
}
