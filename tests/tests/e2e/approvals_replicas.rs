//! Approvals across replicas (T25 with `[audit] postgres`): two real `portcullis run`
//! processes on one PostgreSQL database share pending approvals, used nonces and
//! break-glass windows. A write call waiting on replica B is released by an approval
//! given through replica A's admin listener; a token used through one replica is refused
//! by the other; an approve racing a deny on two replicas has one winner (the loser's record is voided);
//! a request that lapses unused is recorded expired once, by one replica; an approval the
//! shared log cannot take releases nothing (its record comes before its effect); a 2026-07-28
//! client's round trip may end on another replica than it began;
//! a break-glass window approved by one approver on each replica is in force on both, and
//! one whose activation the shared log cannot take never is;
//! and a shared store that cannot be used denies the call, saying which store and what
//! to do. Needs `DATABASE_URL`; without it each test prints a notice and returns.
use std::{
    path::{Path, PathBuf},
    process::Command,
    time::{Duration, Instant},
};

use portcullis_e2e::{
    bin, demo_server_entry,
    procs::{GatewayProc, free_port, write_config},
    raw_http::{Reply, open_session, post},
};
use serde_json::{Value, json};

use crate::{
    approvals::{
        DENIED, POLICY, binding_of, error_text, keygen, modern_send, records, send_message, standing_decisions, steps,
    },
    audit::database_url,
};

/// One replica: its process and an open session.
struct Replica {
    gw: GatewayProc,
    session: String,
}

impl Replica {
    async fn call(&self, body: String) -> Reply {
        post(&self.gw.url, body, &[("mcp-session-id", self.session.as_str())]).await
    }

    fn config(&self) -> &Path {
        &self.gw.config.path
    }
}

/// Two replicas on one database schema, sharing the approver keys, the policy and the
/// audit log's signing key (kept in `shared`).
struct Replicas {
    a: Replica,
    b: Replica,
    shared: tempfile::TempDir,
    url: String,
    schema: String,
}

impl Drop for Replicas {
    fn drop(&mut self) {
        let _ = Command::new("psql")
            .args([
                &self.url,
                "-c",
                &format!("DROP SCHEMA IF EXISTS {} CASCADE", self.schema),
            ])
            .output();
    }
}

fn replica_config(shared: &Path, url: &str, schema: &str, wait_secs: u64, approvals: &str) -> String {
    let at = |file: &str| shared.join(file).display().to_string();
    format!(
        r#"[listen]
http = "127.0.0.1:0"
anonymous_principal = "spiffe://example.org/agent"

[policy]
cedar = ["{policy}"]
require_reason = false

[audit]
postgres = "{url}"
schema = "{schema}"
key = "{audit_key}"

[approvals]
wait_secs = {wait_secs}
{approvals}

[[approvals.approvers]]
name = "bob"
key = "{bob}"

[[approvals.approvers]]
name = "erin"
key = "{erin}"

[admin]
listen = "127.0.0.1:{admin_port}"

{servers}"#,
        policy = at("approval.cedar"),
        audit_key = at("keys/audit.key"),
        bob = at("keys/bob.pub"),
        erin = at("keys/erin.pub"),
        admin_port = free_port(),
        servers = demo_server_entry("demo", r#"tools = { send_message = { tier = "write" } }"#),
    )
}

/// Starts replica A (which creates the tables and the audit key), then replica B.
async fn start(tag: &str, wait_secs: u64) -> Option<Replicas> {
    start_with(tag, wait_secs, "").await
}

/// [`start`] with more `[approvals]` settings.
async fn start_with(tag: &str, wait_secs: u64, approvals: &str) -> Option<Replicas> {
    let url = database_url()?;
    let schema = format!("e2e_replicas_{tag}_{}", std::process::id());
    let shared = tempfile::tempdir().unwrap();
    for name in ["bob", "erin"] {
        keygen(shared.path(), name);
    }
    std::fs::write(shared.path().join("approval.cedar"), POLICY).unwrap();
    let mut replicas = Vec::new();
    for _ in 0..2 {
        let config = write_config(&replica_config(shared.path(), &url, &schema, wait_secs, approvals));
        let gw = GatewayProc::start_file(config);
        assert!(
            gw.logs_with("shared with other replicas")
                .contains("shared with other replicas"),
            "the approvals state is shared: {}",
            gw.logs()
        );
        let session = open_session(&gw.url).await;
        let initialized = json!({"jsonrpc":"2.0","method":"notifications/initialized"}).to_string();
        assert_eq!(
            post(&gw.url, initialized, &[("mcp-session-id", session.as_str())])
                .await
                .status,
            202
        );
        replicas.push(Replica { gw, session });
    }
    let b = replicas.pop().unwrap();
    let a = replicas.pop().unwrap();
    Some(Replicas {
        a,
        b,
        shared,
        url,
        schema,
    })
}

impl Replicas {
    fn key(&self, approver: &str) -> PathBuf {
        self.shared.path().join(format!("keys/{approver}.key"))
    }

    /// `portcullis <command> …` against `replica`'s admin listener as `approver`.
    fn cli(&self, replica: &Replica, command: &str, args: &[&str], approver: &str) -> (bool, String) {
        let out = Command::new(bin("portcullis"))
            .arg(command)
            .args(args)
            .arg("--key")
            .arg(self.key(approver))
            .arg("--config")
            .arg(replica.config())
            .output()
            .unwrap();
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        (out.status.success(), text)
    }

    /// Runs one SQL statement on the shared database (to take a table away and back).
    fn sql(&self, statement: &str) {
        let out = Command::new("psql")
            .args([&self.url, "-c", statement])
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    }

    /// Opens a break-glass window of 10 minutes through `replica` as bob; returns its id.
    fn request_window(&self, replica: &Replica, reason: &str) -> String {
        let (ok, out) = self.cli(
            replica,
            "break-glass",
            &["request", "--reason", reason, "--ttl", "10m"],
            "bob",
        );
        assert!(ok, "{out}");
        out.split_whitespace().nth(1).unwrap().trim_end_matches(':').to_owned()
    }

    /// The id of the first request `replica` lists as waiting, once one is.
    async fn waiting_on(&self, replica: &Replica) -> String {
        for _ in 0..300 {
            let (ok, out) = self.cli(replica, "approvals", &["list"], "bob");
            assert!(ok, "{out}");
            if let Some(line) = out.lines().find(|l| l.contains("demo/")) {
                return line.split_whitespace().next().unwrap().to_owned();
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("no call is waiting for approval");
    }

    /// The token `approver` signs offline for `binding`.
    fn sign(&self, approver: &str, binding: &Value) -> String {
        let file = self
            .shared
            .path()
            .join(format!("call-{}.json", binding["id"].as_str().unwrap()));
        std::fs::write(&file, binding.to_string()).unwrap();
        let out = Command::new(bin("portcullis"))
            .args(["approvals", "sign", "--call", file.to_str().unwrap(), "--key"])
            .arg(self.key(approver))
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8_lossy(&out.stdout).trim().to_owned()
    }
}

/// The demo server sent the message: the call went through.
fn assert_sent(reply: &Reply) {
    assert_eq!(
        reply.json()["result"]["structuredContent"]["status"],
        "sent",
        "{}",
        reply.body
    );
}

/// Refused: the approval it brings was used already (once is all it is good for).
fn assert_used_up(reply: &Reply) {
    assert_eq!(reply.error_code(), DENIED, "{}", reply.body);
    assert!(
        error_text(reply).contains("unknown, expired or already used"),
        "{}",
        reply.body
    );
}

/// A write call waiting on replica B, approved through replica A's admin listener.
fn spawn_waiting_call(replica: &Replica, id: u64, body: &str) -> tokio::task::JoinHandle<Reply> {
    let (url, session, body) = (
        replica.gw.url.clone(),
        replica.session.clone(),
        send_message(id, body, None),
    );
    tokio::spawn(async move { post(&url, body, &[("mcp-session-id", session.as_str())]).await })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn t25_an_approval_given_through_one_replica_releases_the_call_waiting_on_another() {
    let Some(r) = start("release", 60).await else { return };
    let waiting = spawn_waiting_call(&r.b, 1, "deploy 42");
    // Replica A lists the call held by replica B, and approves it.
    let id = r.waiting_on(&r.a).await;
    let (ok, out) = r.cli(&r.a, "approvals", &["show", &id], "erin");
    assert!(ok && out.contains("deploy 42"), "A shows B's call: {out}");
    let (ok, out) = r.cli(&r.a, "approvals", &["approve", &id], "bob");
    assert!(ok && out.contains("granted"), "{out}");
    let approved = Instant::now();
    let reply = waiting.await.unwrap();
    assert_eq!(
        reply.json()["result"]["structuredContent"]["status"],
        "sent",
        "replica B released the call: {}",
        reply.body
    );
    eprintln!(
        "replica B answered {} ms after replica A acknowledged the approval",
        approved.elapsed().as_millis()
    );
    // One story in the one log: B requested and used it, A recorded the grant.
    assert_eq!(steps(r.a.config(), &id), ["requested", "granted", "used"]);
    let allowed: Vec<Value> = records(r.b.config(), "decision")
        .into_iter()
        .filter(|d| d["decision"] == "allow")
        .collect();
    assert_eq!(allowed.len(), 1, "{allowed:?}");
    assert_eq!(allowed[0]["ext"]["approval_id"], id.as_str());
    assert_eq!(allowed[0]["ext"]["approved_by"], "bob");
    // Used: neither replica lists it, nor can it be approved again.
    for replica in [&r.a, &r.b] {
        let (ok, out) = r.cli(replica, "approvals", &["list"], "bob");
        assert!(ok && out.contains("no calls are waiting"), "{out}");
    }
    let (ok, out) = r.cli(&r.b, "approvals", &["approve", &id], "erin");
    assert!(!ok && out.contains("unknown, expired or already used"), "{out}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn t25_an_approval_the_shared_log_cannot_take_releases_nothing() {
    let Some(r) = start("unrecorded", 60).await else { return };
    let waiting = spawn_waiting_call(&r.b, 1, "deploy 43");
    let id = r.waiting_on(&r.a).await;
    // B's `requested` record is durable (it follows the listing by one append).
    for _ in 0..100 {
        if steps(r.a.config(), &id) == ["requested"] {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(steps(r.a.config(), &id), ["requested"]);
    // The log table gone, as with a database that lost it: bob's approval cannot be
    // recorded, so it must not count anywhere.
    r.sql(&format!("ALTER TABLE {}.audit_log RENAME TO audit_log_gone", r.schema));
    let (ok, out) = r.cli(&r.a, "approvals", &["approve", &id], "bob");
    assert!(!ok && out.contains("audit log"), "refused, naming the log: {out}");
    r.sql(&format!("ALTER TABLE {}.audit_log_gone RENAME TO audit_log", r.schema));
    // Nothing changed: the call is still held on B and the request still waits on both.
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(!waiting.is_finished(), "the unrecorded approval released the call");
    for replica in [&r.a, &r.b] {
        let (ok, out) = r.cli(replica, "approvals", &["list"], "bob");
        assert!(ok && out.contains(&id), "still waiting: {out}");
    }
    // With the log back, the same approval releases it; the story is in order.
    let (ok, out) = r.cli(&r.a, "approvals", &["approve", &id], "bob");
    assert!(ok && out.contains("granted"), "{out}");
    assert_sent(&waiting.await.unwrap());
    assert_eq!(steps(r.a.config(), &id), ["requested", "granted", "used"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn t25_a_break_glass_activation_the_shared_log_cannot_take_puts_no_window_in_force() {
    let Some(r) = start("bg_unrecorded", 0).await else {
        return;
    };
    let window = r.request_window(&r.a, "incident 10");
    let (ok, out) = r.cli(&r.a, "break-glass", &["approve", &window], "bob");
    assert!(ok && out.contains("approvals 1/2"), "{out}");
    // The second approval would activate it, but the log cannot record that.
    r.sql(&format!("ALTER TABLE {}.audit_log RENAME TO audit_log_gone", r.schema));
    let (ok, out) = r.cli(&r.b, "break-glass", &["approve", &window], "erin");
    assert!(!ok && out.contains("audit log"), "refused, naming the log: {out}");
    r.sql(&format!("ALTER TABLE {}.audit_log_gone RENAME TO audit_log", r.schema));
    // Never in force, not even for a moment: still requested on both, a write call refused.
    for replica in [&r.a, &r.b] {
        let (ok, listed) = r.cli(replica, "break-glass", &["list"], "bob");
        assert!(ok && listed.contains("requested; approvals 1/2"), "{listed}");
    }
    let refused = r.b.call(send_message(1, "urgent", None)).await;
    assert_eq!(refused.error_code(), DENIED, "{}", refused.body);
    // With the log back, the same approval activates it, recorded before it counts.
    let (ok, out) = r.cli(&r.b, "break-glass", &["approve", &window], "erin");
    assert!(ok && out.contains("active until"), "{out}");
    let steps: Vec<String> = records(r.a.config(), "admin")
        .iter()
        .filter(|rec| rec["ext"]["break_glass"] == window.as_str())
        .map(|rec| rec["ext"]["break_glass_step"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(steps, ["requested", "approved", "active"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn t25_a_token_used_through_one_replica_is_refused_by_the_other() {
    let Some(r) = start("replay", 0).await else { return };
    // Refused at once on A (no wait): the answer carries the binding bob signs offline.
    let refused = r.a.call(send_message(1, "hello", None)).await;
    let binding = binding_of(&refused);
    let token = r.sign("bob", &binding);
    // The call with the token goes through on B, which holds no memory of A's request.
    assert_sent(&r.b.call(send_message(2, "hello", Some(json!(token)))).await);
    // Replayed on either replica: used once.
    for replica in [&r.a, &r.b] {
        assert_used_up(&replica.call(send_message(3, "hello", Some(json!(token)))).await);
    }
    // A opened the request; B recorded bob's token as a grant, and its use.
    let id = binding["id"].as_str().unwrap();
    assert_eq!(steps(r.a.config(), id), ["requested", "granted", "used"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn t25_a_request_that_lapses_unused_is_recorded_expired_by_one_replica_only() {
    let Some(r) = start_with("expiry", 0, "ttl_secs = 1").await else {
        return;
    };
    let refused = r.a.call(send_message(1, "never approved", None)).await;
    let id = binding_of(&refused)["id"].as_str().unwrap().to_owned();
    // Lapsed: no replica lists it any more.
    let mut listed = true;
    for _ in 0..100 {
        let (ok, out) = r.cli(&r.b, "approvals", &["list"], "bob");
        assert!(ok, "{out}");
        listed = out.contains(&id);
        if !listed {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert!(!listed, "request {id} is still listed long after its TTL");
    // Both replicas sweep (each before opening a request for its next call): one of them
    // removes it and records it, the other finds nothing left to record.
    for (n, replica) in [&r.b, &r.a].into_iter().enumerate() {
        let next = replica.call(send_message(2 + n as u64, "later", None)).await;
        assert_eq!(next.error_code(), DENIED, "{}", next.body);
    }
    assert_eq!(steps(r.a.config(), &id), ["requested", "expired"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn t25_an_approve_deny_race_across_replicas_has_one_winner_and_break_glass_spans_them() {
    let Some(r) = start("race", 60).await else { return };
    let waiting = spawn_waiting_call(&r.a, 1, "race");
    let id = r.waiting_on(&r.b).await;
    let racer = |replica: &Replica, verb: &'static str, approver: &str| {
        let (id, key, config) = (id.clone(), r.key(approver), replica.config().to_owned());
        std::thread::spawn(move || {
            Command::new(bin("portcullis"))
                .args(["approvals", verb, &id, "--key"])
                .arg(key)
                .arg("--config")
                .arg(config)
                .status()
                .unwrap()
                .success()
        })
    };
    let approve = racer(&r.b, "approve", "bob");
    let deny = racer(&r.a, "deny", "erin");
    let (approved, denied) = (approve.join().unwrap(), deny.join().unwrap());
    assert!(
        approved ^ denied,
        "exactly one wins: approved {approved}, denied {denied}"
    );
    let reply = waiting.await.unwrap();
    assert_eq!(reply.json().get("result").is_some(), approved, "{}", reply.body);
    let winner = if approved { "granted" } else { "denied" };
    assert_eq!(standing_decisions(r.a.config(), &id), [winner]);

    // Break-glass: requested through A, one approver through each replica.
    let window = r.request_window(&r.a, "incident 9");
    let (ok, out) = r.cli(&r.a, "break-glass", &["approve", &window], "bob");
    assert!(ok && out.contains("approvals 1/2"), "{out}");
    let (ok, out) = r.cli(&r.b, "break-glass", &["approve", &window], "bob");
    assert!(
        ok && out.contains("approvals 1/2"),
        "bob on two replicas counts once: {out}"
    );
    let (ok, out) = r.cli(&r.b, "break-glass", &["approve", &window], "erin");
    assert!(ok && out.contains("active until"), "{out}");
    // In force on both: write calls go through at once, flagged.
    for (n, replica) in [&r.a, &r.b].into_iter().enumerate() {
        let ok = replica.call(send_message(10 + n as u64, "urgent", None)).await;
        assert!(ok.json().get("result").is_some(), "{}", ok.body);
    }
    let flagged = records(r.a.config(), "decision")
        .into_iter()
        .filter(|d| d["ext"]["break_glass"] == window.as_str())
        .count();
    assert_eq!(flagged, 2, "both calls name the window");
    let (ok, out) = r.cli(&r.a, "break-glass", &["end", &window], "erin");
    assert!(ok, "{out}");
    let (_, listed) = r.cli(&r.b, "break-glass", &["list"], "bob");
    assert!(listed.contains("ended"), "ended on both: {listed}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn t25_a_shared_approvals_store_that_cannot_be_used_denies_the_call_and_records_why() {
    let Some(r) = start("down", 60).await else { return };
    // The approvals tables gone (the log's still there to record it): as with a database
    // that lost them mid-run.
    r.sql(&format!(
        "ALTER TABLE {}.portcullis_approval_requests RENAME TO portcullis_gone",
        r.schema
    ));
    let reply = r.b.call(send_message(1, "while down", None)).await;
    assert_eq!(reply.error_code(), DENIED, "{}", reply.body);
    let text = error_text(&reply);
    assert!(
        text.contains("shared approvals store") && text.contains("check that the database is reachable"),
        "the deny names the store and what to do: {text}"
    );
    let denied = records(r.a.config(), "decision")
        .into_iter()
        .find(|d| d["decision"] == "deny")
        .unwrap_or_else(|| panic!("the deny is recorded"));
    assert!(
        denied["reason"].as_str().unwrap().contains("shared approvals store"),
        "{denied}"
    );
    // Approvers are told too; nothing is approved while it fails.
    let (ok, out) = r.cli(&r.a, "approvals", &["list"], "bob");
    assert!(!ok && out.contains("shared approvals store"), "{out}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn t25_a_modern_users_round_trip_begun_on_one_replica_ends_on_the_other() {
    let Some(r) = start_with("mrtr", 0, "user_may_approve = [\"write\"]").await else {
        return;
    };
    // Asked through replica A: the requestState is protected by the key both replicas share.
    let first = modern_send(&r.a.gw.url, 1, "across", None).await;
    let result = first.json()["result"].clone();
    assert_eq!(result["resultType"], "input_required", "{}", first.body);
    let state = result["requestState"].as_str().unwrap().to_owned();
    let yes = json!({"action": "accept", "content": {"approve": true}});
    // Altered, it is refused on B as anywhere.
    let mut tampered = state.clone();
    tampered.insert(8, 'A');
    let refused = modern_send(&r.b.gw.url, 2, "across", Some((&tampered, yes.clone()))).await;
    assert!(error_text(&refused).contains("requestState"), "{}", refused.body);
    // The genuine retry, sent to B, goes through — once, on either replica.
    assert_sent(&modern_send(&r.b.gw.url, 3, "across", Some((&state, yes.clone()))).await);
    for replica in [&r.a, &r.b] {
        assert_used_up(&modern_send(&replica.gw.url, 4, "across", Some((&state, yes.clone()))).await);
    }
}
