//! The fault matrix (issue #15; docs/PRODUCT.md "Failure behaviour"; T14, T15, T16, T23): one
//! test per dependency the gateway needs, each failed for real while a load of concurrent
//! callers (8 sessions, several calls each) runs. For every row: 100% of the affected calls
//! fail, each with an error that says what went wrong; where the audit log can still be
//! written each refused call has its record; and where the fault is the gateway's own
//! (policy, key set, audit log, clock) zero calls reach the upstream, counted by the demo
//! server's `--call-log`. Where only an upstream fails (crash, hang, garbage; stdio and
//! HTTP) calls do reach it: there each affected call ends in a clear error before its
//! timeout, its outcome is recorded as an error, and other servers and sessions carry on.
//!
//! Faults are real wherever they can be: a Rego policy that errors or runs over the time
//! limit, a key set URL nobody listens on, a full tmpfs, a TCP proxy to PostgreSQL that
//! drops every connection, children that exit, hang or print garbage, an HTTP upstream
//! that dies, never answers or answers garbage, and libfaketime moving the gateway's
//! clock. EIO and a failed fsync cannot be provoked on demand, so those two rows run the
//! gateway in-process around `portcullis-audit`'s named fault-injection store
//! (`AuditLog::open_faulty`, a test-only dev-dependency never built into `portcullis`).
use std::{
    path::Path,
    process::Command,
    sync::Arc,
    time::{Duration, Instant},
};

use ed25519_dalek::SigningKey;
use portcullis_attest::{HostSigner, host::unix_now};
use portcullis_audit::{AuditLog, LogOptions, LogReader, LogSigner, leaf_hash, store::FileReader};
use portcullis_e2e::{
    faults::{
        CallLog, Called, CuttableProxy, FaultyHttpUpstream, HttpFault, RawSession, args, assert_all_failed,
        assert_each_recorded, audit_records, digest, load, tools_call,
    },
    portcullis,
    procs::{GatewayProc, free_port, relay_policy, write_config},
};
use portcullis_identity::test_issuer::{AUDIENCE, ISSUER, TestKey, good_claims};
use serde_json::{Value, json};

/// Concurrent sessions in every row, and calls each of them makes at once.
const SESSIONS: usize = 8;
const CALLS: usize = 5;

/// `SESSIONS` open sessions on `url`, each sending `headers` with every request.
async fn sessions(url: &str, headers: &[(&str, &str)]) -> Vec<Arc<RawSession>> {
    let mut opened = Vec::new();
    for _ in 0..SESSIONS {
        opened.push(Arc::new(RawSession::open(url, headers).await));
    }
    opened
}

/// A load of `tools/call`s of `tool`, arguments tagged `tag`.
async fn call_load(sessions: &[Arc<RawSession>], calls: usize, tool: &'static str, tag: &'static str) -> Vec<Called> {
    load(sessions, calls, move |s, n| {
        let a = args(tag, s, n);
        (tools_call((s * 1000 + n) as u64 + 1, tool, &a), a)
    })
    .await
}

/// One warm-up call per session that must succeed (the fault is not there yet).
async fn warm_up(sessions: &[Arc<RawSession>], tool: &'static str) -> Vec<Called> {
    let calls = call_load(sessions, 1, tool, "warm-up").await;
    for c in &calls {
        assert!(c.answer.result().is_some(), "before the fault: {}", c.answer.body);
    }
    calls
}

/// The `(auditIndex, leafHash)` of an answered call's receipt.
fn receipt(c: &Called) -> (u64, String) {
    let r = &c.answer.result().expect("answered")["_meta"]["io.portcullis/receipt"];
    (
        r["auditIndex"]
            .as_u64()
            .unwrap_or_else(|| panic!("no receipt: {}", c.answer.body)),
        r["leafHash"].as_str().unwrap().to_owned(),
    )
}

/// Every answered call's record is in the file log at `dir` under its receipt: no call
/// was released without its record.
async fn assert_receipts_in_log(dir: &Path, answered: &[&Called]) {
    let reader = FileReader::open(dir).unwrap();
    for c in answered {
        let (index, leaf) = receipt(c);
        let data = reader.read(index..index + 1).await.unwrap();
        assert_eq!(
            hex::encode(leaf_hash(&data[0]).0),
            leaf,
            "answered call's record {index}"
        );
    }
}

/// Asserts that each refused call quotes a decision whose deny record names `reason`.
fn assert_denies_recorded(records: &[Value], calls: &[Called], reason: &str) {
    for c in calls {
        let id = c
            .answer
            .decision_id()
            .unwrap_or_else(|| panic!("the refusal quotes no decision: {}", c.answer.body));
        let record = records
            .iter()
            .find(|r| r["kind"] == "decision" && r["decision_id"] == id.as_str())
            .unwrap_or_else(|| panic!("no record of decision {id}"));
        assert_eq!(record["decision"], "deny", "{record}");
        assert!(
            record["reason"].as_str().unwrap_or_default().contains(reason),
            "the record says why ({reason}): {record}"
        );
    }
}

fn demo_only_policy_config(policy: &str, log: &CallLog) -> String {
    format!(
        "[listen]\nhttp = \"127.0.0.1:0\"\n{policy}\n{}",
        log.demo_server("demo", "shared = true")
    )
}

// ---------------------------------------------------------------------------------------
// Policy engine
// ---------------------------------------------------------------------------------------

/// A Rego policy that errors at run time for every call of `echo` (a strict built-in
/// error: the tool name is not a number) and allows `search_docs`. It loads fine: the
/// error needs a call's input.
const REGO_ERRORS: &str = r#"package portcullis
import rego.v1
default allow := false
allow if input.target.name == "search_docs"
allow if {
    input.target.name == "echo"
    to_number(input.target.name) > 0
}
"#;

/// A Rego policy that runs far over the 100 ms evaluation bound for every call of `echo`
/// and allows `search_docs`.
const REGO_SLOW: &str = r#"package portcullis
import rego.v1
default allow := false
allow if input.target.name == "search_docs"
allow if {
    input.target.name == "echo"
    count([x | some i in numbers.range(1, 4000); some j in numbers.range(1, 4000); x := i + j]) > 0
}
"#;

/// The load calls `echo`, which the policy cannot decide; afterwards one `search_docs`,
/// which it allows, shows that the call log counts what is forwarded.
async fn policy_fault(policy_text: &str, words: &[&str], reason: &str) {
    let dir = tempfile::tempdir().unwrap();
    let policy = dir.path().join("fault.rego");
    std::fs::write(&policy, policy_text).unwrap();
    let log = CallLog::in_dir(dir.path());
    let gw = GatewayProc::start_with(&demo_only_policy_config(
        &format!("[policy]\nengine = \"rego\"\nrego = [\"{}\"]\n", policy.display()),
        &log,
    ));
    let sessions = sessions(&gw.url, &[]).await;
    let calls = call_load(&sessions, CALLS, "echo", "policy").await;
    assert_all_failed(&calls, words);
    assert_denies_recorded(&audit_records(&gw.config.path), &calls, reason);
    assert_eq!(log.count(), 0, "no call reached the server: {:?}", log.calls());
    let control = sessions[0].call(999, "search_docs", &json!({"query": "refund"})).await;
    assert!(control.result().is_some(), "{}", control.body);
    assert_eq!(
        log.calls(),
        ["search_docs"],
        "the one allowed call was forwarded and counted"
    );
}

#[tokio::test]
async fn fault_policy_engine_error() {
    policy_fault(
        REGO_ERRORS,
        &["call denied", "the policy could not be evaluated", "decision"],
        "error: rego evaluation failed",
    )
    .await;
}

#[tokio::test]
async fn fault_policy_engine_timeout() {
    policy_fault(REGO_SLOW, &["call denied", "time limit", "decision"], "over the limit").await;
}

// ---------------------------------------------------------------------------------------
// Identity: the issuer's key set
// ---------------------------------------------------------------------------------------

/// T1/T16: the OAuth issuer's key set cannot be fetched (nothing listens at its URL), so no
/// bearer token can be checked: every request is refused with 503 naming the key set, and
/// each refusal is recorded.
#[tokio::test]
async fn fault_jwks_unreachable() {
    let dir = tempfile::tempdir().unwrap();
    let log = CallLog::in_dir(dir.path());
    let closed = free_port();
    let gw = GatewayProc::start_with(&format!(
        "[listen]\nhttp = \"127.0.0.1:0\"\n[listen.oauth]\nissuer = \"{ISSUER}\"\nresource = \"{AUDIENCE}\"\n\
         jwks_url = \"http://127.0.0.1:{closed}/jwks\"\n{}\n{}",
        relay_policy(),
        log.demo_server("demo", "shared = true")
    ));
    let key = TestKey::ec("k1");
    let bearer = format!("Bearer {}", key.sign(&good_claims()));
    let callers: Vec<Arc<RawSession>> = (0..SESSIONS)
        .map(|_| Arc::new(RawSession::unopened(&gw.url, &[("authorization", &bearer)])))
        .collect();
    // Each caller tries to open a session and to call a tool: all of it is refused.
    let calls = load(&callers, CALLS, |s, n| {
        let a = args("jwks", s, n);
        let request = if n == 0 {
            json!({"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-11-25",
                "capabilities":{},"clientInfo":{"name":"fault-matrix","version":"1"}}})
        } else {
            tools_call(n as u64 + 1, "echo", &a)
        };
        (request, a)
    })
    .await;
    assert_all_failed(&calls, &["cannot obtain the issuer's keys", "decision"]);
    for c in &calls {
        assert_eq!(
            c.answer.status, 503,
            "the gateway could not check the token: {}",
            c.answer.body
        );
    }
    assert_denies_recorded(
        &audit_records(&gw.config.path),
        &calls,
        "cannot obtain the issuer's keys",
    );
    assert_eq!(log.count(), 0, "no call reached the server");
}

// ---------------------------------------------------------------------------------------
// Audit log
// ---------------------------------------------------------------------------------------

/// A tmpfs mounted for the test, unmounted when dropped (needs root, as on CI).
struct Tmpfs(tempfile::TempDir);

impl Tmpfs {
    fn mount(size: &str) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let status = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir.path())
            .status()
            .unwrap();
        assert!(
            status.success(),
            "this test mounts a small tmpfs and needs root; mount failed"
        );
        Self(dir)
    }

    fn path(&self) -> &Path {
        self.0.path()
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(self.0.path()).status();
    }
}

/// T15: the disk under a file audit log fills up (a real tmpfs, ENOSPC). Once a record
/// cannot be written every call is denied, nothing more reaches the server, `/healthz`
/// says 503, and every call answered before has its record on disk.
#[tokio::test]
async fn fault_audit_disk_full() {
    let disk = Tmpfs::mount("256k");
    let dir = tempfile::tempdir().unwrap();
    let log = CallLog::in_dir(dir.path());
    let audit_dir = disk.path().join("audit");
    let gw = GatewayProc::start_with(&format!(
        "[listen]\nhttp = \"127.0.0.1:0\"\n{}\n[audit]\npath = \"{}\"\n{}",
        relay_policy(),
        audit_dir.display(),
        log.demo_server("demo", "shared = true")
    ));
    let sessions = sessions(&gw.url, &[]).await;
    let mut answered = warm_up(&sessions, "echo").await;
    // Fill the file system; the segment's last page may still take a few records.
    let _ = std::fs::write(disk.path().join("filler"), vec![0u8; 1024 * 1024]);
    let mut first_denied = None;
    for _ in 0..200 {
        let probe = call_load(&sessions[..1], 1, "echo", "probe").await;
        let probe = probe.into_iter().next().unwrap();
        if probe.answer.result().is_some() {
            answered.push(probe);
        } else {
            first_denied = Some(probe);
            break;
        }
    }
    let first = first_denied.expect("a full disk must deny calls");
    assert!(
        first
            .answer
            .error_text()
            .unwrap()
            .contains("audit log cannot be written"),
        "{}",
        first.answer.body
    );
    let forwarded_before = log.count();
    assert!(
        forwarded_before >= SESSIONS,
        "the warm-up calls were forwarded and counted"
    );
    let calls = call_load(&sessions, CALLS, "echo", "disk-full").await;
    assert_all_failed(&calls, &["audit log cannot be written", "denied"]);
    assert_eq!(
        log.count(),
        forwarded_before,
        "no call reached the server once the log was full"
    );
    let health = reqwest::get(format!("http://{}/healthz", gw.addr)).await.unwrap();
    assert_eq!(health.status().as_u16(), 503, "the gateway reports itself unhealthy");
    let answered: Vec<&Called> = answered.iter().collect();
    assert_receipts_in_log(&audit_dir, &answered).await;
}

/// The parts of an in-process gateway whose audit log fails on demand.
struct InProcess {
    url: String,
    gateway: Arc<portcullis_gateway::Gateway>,
    stop: tokio::sync::oneshot::Sender<()>,
    server: tokio::task::JoinHandle<std::io::Result<()>>,
}

/// An in-process gateway (the real assembly: `portcullis_cli::embed`) around a file audit
/// log opened with fault injection; returns it, the switch and the log.
async fn in_process_gateway(
    home: &Path,
    log: &CallLog,
) -> (
    InProcess,
    Arc<portcullis_audit::store::faulty::FaultSwitch>,
    Arc<AuditLog>,
) {
    let key = home.join("keys/audit.key");
    std::fs::create_dir_all(key.parent().unwrap()).unwrap();
    let signer = LogSigner::generate().unwrap();
    signer.save(&key).unwrap();
    signer.public_key().save(&home.join("keys/audit.pub")).unwrap();
    let config = home.join("portcullis.toml");
    std::fs::write(
        &config,
        format!(
            "[listen]\nhttp = \"127.0.0.1:0\"\n{}\n[audit]\npath = \"audit\"\nkey = \"keys/audit.key\"\n{}",
            relay_policy(),
            log.demo_server("demo", "shared = true")
        ),
    )
    .unwrap();
    let (audit, switch) = AuditLog::open_faulty(home.join("audit"), signer, LogOptions::default())
        .await
        .unwrap();
    let audit = Arc::new(audit);
    let gateway = portcullis_cli::embed::gateway_with_log(&config, audit.clone())
        .await
        .unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/mcp", listener.local_addr().unwrap());
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(portcullis_gateway::serve_http(
        gateway.clone(),
        listener,
        None,
        async move {
            let _ = stopped.await;
        },
    ));
    (
        InProcess {
            url,
            gateway,
            stop,
            server,
        },
        switch,
        audit,
    )
}

/// T15 with an injected store fault (EIO or a failed fsync, one shot; the file store then
/// stays failed): every call after it is denied and none reaches the server; afterwards
/// the log opens (crash recovery), verifies, and holds every answered call's record.
async fn injected_audit_fault(fault: portcullis_audit::store::faulty::Fault, cause: &str) {
    let home = tempfile::tempdir().unwrap();
    let log = CallLog::in_dir(home.path());
    let (gw, switch, audit) = in_process_gateway(home.path(), &log).await;
    let sessions = sessions(&gw.url, &[]).await;
    let answered = warm_up(&sessions, "echo").await;
    switch.arm(fault);
    let forwarded_before = log.count();
    assert_eq!(
        forwarded_before, SESSIONS,
        "the warm-up calls were forwarded and counted"
    );
    let calls = call_load(&sessions, CALLS, "echo", "injected").await;
    let texts = assert_all_failed(&calls, &["audit log cannot be written", "denied"]);
    // The calls of the batch that met the fault are told its cause; later ones that the
    // store accepts nothing more.
    assert!(texts.iter().any(|t| t.contains(cause)), "{cause} in {texts:?}");
    assert_eq!(
        log.count(),
        forwarded_before,
        "no call reached the server after the fault"
    );
    assert!(!gw.gateway.healthy(), "the gateway reports itself unhealthy");
    assert!(!audit.healthy());
    let _ = gw.stop.send(());
    gw.server.await.unwrap().unwrap();
    gw.gateway.shutdown().await;
    // The log on disk ends where crash recovery would end it, and verifies offline.
    let config = home.path().join("portcullis.toml");
    let (code, out) = portcullis(&["audit", "verify", "--config", config.to_str().unwrap()]);
    assert_eq!(code, 0, "the log verifies after the fault: {out}");
    let answered: Vec<&Called> = answered.iter().collect();
    assert_receipts_in_log(&home.path().join("audit"), &answered).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fault_audit_write_eio() {
    injected_audit_fault(portcullis_audit::store::faulty::Fault::TornWrite, "write failed").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fault_audit_fsync_error() {
    injected_audit_fault(portcullis_audit::store::faulty::Fault::FailedSync, "fdatasync failed").await;
}

/// T15 with the shared store: the gateway's connections to PostgreSQL go through a proxy
/// the test takes down (every connection dropped, new ones refused). Every call is denied
/// within bounded time (not after a 30 s connection wait per batch) and none reaches the
/// server; once the database is back calls are answered again, and none of the denied
/// calls left a record.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fault_postgres_down() {
    let Ok(url) = std::env::var("DATABASE_URL") else {
        eprintln!("DATABASE_URL is not set: skipping the PostgreSQL fault row");
        return;
    };
    let mut parsed = reqwest::Url::parse(&url).unwrap();
    let target = format!("{}:{}", parsed.host_str().unwrap(), parsed.port().unwrap_or(5432));
    let target: std::net::SocketAddr = tokio::net::lookup_host(target).await.unwrap().next().unwrap();
    let proxy = CuttableProxy::start(target).await;
    parsed.set_host(Some("127.0.0.1")).unwrap();
    parsed.set_port(Some(proxy.addr.port())).unwrap();
    let schema = format!("e2e_fault_pg_{}", std::process::id());
    let dir = tempfile::tempdir().unwrap();
    let log = CallLog::in_dir(dir.path());
    let gw = GatewayProc::start_with(&format!(
        "[listen]\nhttp = \"127.0.0.1:0\"\n{}\n[audit]\npostgres = \"{parsed}\"\nschema = \"{schema}\"\n{}",
        relay_policy(),
        log.demo_server("demo", "shared = true")
    ));
    let sessions = sessions(&gw.url, &[]).await;
    warm_up(&sessions, "echo").await;
    proxy.cut();
    let forwarded_before = log.count();
    assert_eq!(
        forwarded_before, SESSIONS,
        "the warm-up calls were forwarded and counted"
    );
    let calls = call_load(&sessions, CALLS, "echo", "pg-down").await;
    assert_all_failed(&calls, &["audit log cannot be written", "denied"]);
    assert_eq!(
        log.count(),
        forwarded_before,
        "no call reached the server while the database was down"
    );
    for c in &calls {
        assert!(
            c.took < Duration::from_secs(20),
            "denied in bounded time, not hung: {:?}",
            c.took
        );
    }
    proxy.restore().await;
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let back = call_load(&sessions[..1], 1, "echo", "pg-back").await;
        if back[0].answer.result().is_some() {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "calls are answered once the database is back"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let records = audit_records(&gw.config.path);
    for c in &calls {
        let want = digest(&c.arguments);
        assert!(
            !records.iter().any(|r| r["args_sha256"] == want.as_str()),
            "a denied call left no record: {}",
            c.arguments
        );
    }
    drop(gw);
    let _ = Command::new("psql")
        .args([&url, "-c", &format!("DROP SCHEMA {schema} CASCADE")])
        .output();
}

// ---------------------------------------------------------------------------------------
// Upstream servers: stdio children
// ---------------------------------------------------------------------------------------

/// The gateway in front of a faulting stdio `demo` (its own child per session) and a
/// healthy `other`.
fn two_servers(log: &CallLog, demo_extra: &str) -> GatewayProc {
    GatewayProc::start(&format!(
        "{}{}",
        log.demo_server("demo", demo_extra),
        portcullis_e2e::demo_server_entry("other", "shared = true")
    ))
}

/// Every session still reaches `other`, and a new session reaches `demo` (a fresh child,
/// or the HTTP upstream's health is not the test's business: `demo_tool` None skips it).
async fn others_carry_on(url: &str, sessions: &[Arc<RawSession>], demo_tool: Option<&'static str>) {
    let calls = call_load(sessions, 1, "other__echo", "other").await;
    for c in &calls {
        assert!(
            c.answer.result().is_some(),
            "another server in the same session: {}",
            c.answer.body
        );
    }
    if let Some(tool) = demo_tool {
        let fresh = Arc::new(RawSession::open(url, &[]).await);
        let c = call_load(&[fresh], 1, tool, "fresh").await;
        assert!(c[0].answer.result().is_some(), "a new session: {}", c[0].answer.body);
    }
}

/// Every call returned before `limit` and has an outcome record saying `error`.
fn assert_errors_recorded_in_time(config: &Path, calls: &[Called], limit: Duration) {
    assert_in_time(calls, limit);
    assert_each_recorded(&audit_records(config), calls, "call", "outcome", "error");
}

/// Every call returned before `limit`.
fn assert_in_time(calls: &[Called], limit: Duration) {
    for c in calls {
        assert!(
            c.took < limit,
            "call s{} n{} took {:?}: no hang",
            c.session,
            c.n,
            c.took
        );
    }
}

/// The classify stage's refusal of a call whose server's tools could not be listed.
const LISTING_FAILED: &str = "classify: the gateway could not list the tools of `web` to check them";

/// An HTTP upstream that is gone: every call returned before `limit` and is recorded as
/// failed, in one of two ways. A call that was forwarded has an outcome record saying
/// `error` (at least the one that reached the upstream has). A session's first call to
/// the server lists its tools first (the classify stage checks them); when the upstream
/// was already gone by then, the call is refused before the policy (fail closed) and its
/// denied decision record says the listing failed and why.
fn assert_failures_recorded_in_time(config: &Path, calls: &[Called], limit: Duration) {
    assert_in_time(calls, limit);
    let records = audit_records(config);
    let record_of = |c: &Called, kind: &str| {
        let want = digest(&c.arguments);
        records
            .iter()
            .find(|r| r["kind"] == kind && r["args_sha256"] == want.as_str())
    };
    let mut forwarded = 0;
    for c in calls {
        if let Some(outcome) = record_of(c, "call") {
            assert_eq!(outcome["outcome"], "error", "call s{} n{}: {outcome}", c.session, c.n);
            forwarded += 1;
            continue;
        }
        let decision = record_of(c, "decision")
            .unwrap_or_else(|| panic!("call s{} n{} ({}) has no record at all", c.session, c.n, c.arguments));
        let reason = decision["reason"].as_str().unwrap_or_default();
        assert_eq!(decision["decision"], "deny", "call s{} n{}: {decision}", c.session, c.n);
        assert!(
            reason.starts_with(LISTING_FAILED) && reason.contains("upstream `web` is unreachable"),
            "call s{} n{}: a call that was not forwarded is refused because the listing failed: {decision}",
            c.session,
            c.n
        );
        let text = c.answer.error_text().unwrap_or_default();
        assert!(
            text.contains("could not list the tools of `web`"),
            "the caller is told why: {text}"
        );
    }
    assert!(
        forwarded >= 1,
        "the call that reached the upstream has an outcome record"
    );
}

/// A child that exits (the `crash` tool) while the session's other calls (`hang`) wait
/// on it: every call of that session to it fails at once, not at its timeout.
#[tokio::test]
async fn fault_stdio_upstream_crash() {
    let dir = tempfile::tempdir().unwrap();
    let log = CallLog::in_dir(dir.path());
    let gw = two_servers(&log, "timeout_secs = 60");
    let sessions = sessions(&gw.url, &[]).await;
    let calls = load(&sessions, 4, |s, n| {
        let a = args("crash", s, n);
        let tool = if n == 3 { "demo__crash" } else { "demo__hang" };
        (tools_call(n as u64 + 1, tool, &a), a)
    })
    .await;
    assert_all_failed(&calls, &["upstream server `demo` is unavailable"]);
    assert_errors_recorded_in_time(&gw.config.path, &calls, Duration::from_secs(30));
    others_carry_on(&gw.url, &sessions, Some("demo__echo")).await;
}

/// Calls a child never answers (`hang`) end in the server's timeout, and the session's
/// connection to it still works afterwards.
#[tokio::test]
async fn fault_stdio_upstream_hang() {
    let dir = tempfile::tempdir().unwrap();
    let log = CallLog::in_dir(dir.path());
    let gw = two_servers(&log, "timeout_secs = 2");
    let sessions = sessions(&gw.url, &[]).await;
    let calls = call_load(&sessions, 3, "demo__hang", "hang").await;
    assert_all_failed(
        &calls,
        &["upstream server `demo` did not answer within 2s", "cancelled"],
    );
    assert_errors_recorded_in_time(&gw.config.path, &calls, Duration::from_secs(20));
    let again = call_load(&sessions, 1, "demo__echo", "after-hang").await;
    for c in &again {
        assert!(
            c.answer.result().is_some(),
            "the same session's server answers again: {}",
            c.answer.body
        );
    }
    others_carry_on(&gw.url, &sessions, None).await;
}

/// A child that writes a line that is not JSON-RPC (`garbage`) while the session's other
/// calls wait on it: framing can no longer be trusted, so every call on that child fails
/// at once, naming the malformed output.
#[tokio::test]
async fn fault_stdio_upstream_garbage() {
    let dir = tempfile::tempdir().unwrap();
    let log = CallLog::in_dir(dir.path());
    let gw = two_servers(&log, "timeout_secs = 60");
    let sessions = sessions(&gw.url, &[]).await;
    let calls = load(&sessions, 4, |s, n| {
        let a = args("garbage", s, n);
        let tool = if n == 3 { "demo__garbage" } else { "demo__hang" };
        (tools_call(n as u64 + 1, tool, &a), a)
    })
    .await;
    assert_all_failed(&calls, &["upstream server `demo`", "malformed output"]);
    assert_errors_recorded_in_time(&gw.config.path, &calls, Duration::from_secs(30));
    assert!(gw.logs().contains("malformed output from upstream"));
    others_carry_on(&gw.url, &sessions, Some("demo__echo")).await;
}

// ---------------------------------------------------------------------------------------
// Upstream servers: Streamable HTTP
// ---------------------------------------------------------------------------------------

async fn http_fault(fault: HttpFault, timeout_secs: u64, words: &[&str]) -> Vec<String> {
    let upstream = FaultyHttpUpstream::start(fault).await;
    let gw = GatewayProc::start(&format!(
        "[[servers]]\nname = \"web\"\nurl = \"{}\"\nprotocol = \"legacy\"\ntimeout_secs = {timeout_secs}\n{}",
        upstream.url,
        portcullis_e2e::demo_server_entry("other", "shared = true")
    ));
    let sessions = sessions(&gw.url, &[]).await;
    let calls = call_load(&sessions, 3, "web__work", "http").await;
    let texts = assert_all_failed(&calls, words);
    assert!(upstream.calls() >= 1, "the calls reached the upstream");
    let limit = Duration::from_secs(timeout_secs + 15);
    if fault == HttpFault::Crash {
        assert_failures_recorded_in_time(&gw.config.path, &calls, limit);
    } else {
        assert_errors_recorded_in_time(&gw.config.path, &calls, limit);
    }
    others_carry_on(&gw.url, &sessions, None).await;
    texts
}

/// The HTTP upstream dies on the first call: its connections close and new ones are
/// refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fault_http_upstream_crash() {
    http_fault(HttpFault::Crash, 60, &["upstream `web` is unreachable"]).await;
}

/// The HTTP upstream reads the calls and never answers.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fault_http_upstream_hang() {
    http_fault(HttpFault::Hang, 2, &["upstream server `web` did not answer within 2s"]).await;
}

/// The HTTP upstream answers calls with a body that is not JSON, or with bytes that are
/// not HTTP.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fault_http_upstream_garbage() {
    let texts = http_fault(HttpFault::Garbage, 60, &["upstream `web` sent a"]).await;
    let (json, http) = ("sent a malformed answer", "sent an answer that is not HTTP");
    for text in &texts {
        assert!(text.contains(json) || text.contains(http), "names the garbage: {text}");
    }
    assert!(texts.iter().any(|t| t.contains(json)) && texts.iter().any(|t| t.contains(http)));
}

// ---------------------------------------------------------------------------------------
// The gateway's clock
// ---------------------------------------------------------------------------------------

/// Where Debian and Ubuntu's `faketime` package puts the library, per architecture.
const LIBFAKETIME: [&str; 3] = [
    "/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1",
    "/usr/lib/aarch64-linux-gnu/faketime/libfaketime.so.1",
    "/usr/lib/faketime/libfaketime.so.1",
];

/// T13/T16: the gateway's wall clock jumps by `offset` (libfaketime's offset file,
/// re-read on every clock read) while hosts, whose clocks are right, sign their calls.
/// Every signed call is refused with an error that points at the clocks, recorded, and
/// never forwarded; once the clock is back, signed calls pass again and the log verifies.
async fn clock_jump(offset: &str, words: &[&str]) {
    let libfaketime = LIBFAKETIME
        .into_iter()
        .find(|p| Path::new(p).is_file())
        .expect("the clock rows need libfaketime (apt package `faketime`)");
    let config = write_config("");
    let home = config.dir.path().to_owned();
    let log = CallLog::in_dir(&home);
    let (code, out) = portcullis(&["audit", "keygen", "--out", home.join("keys/host.key").to_str().unwrap()]);
    assert_eq!(code, 0, "{out}");
    std::fs::write(
        &config.path,
        format!(
            "[listen]\nhttp = \"127.0.0.1:0\"\n{}\n[[attestation.hosts]]\nworkload = \"anonymous\"\nkey = \"keys/host.pub\"\n\
             [attestation]\naudience = \"https://gw.test/mcp\"\n{}",
            relay_policy(),
            log.demo_server("demo", "shared = true")
        ),
    )
    .unwrap();
    let clock = home.join("clock-offset");
    std::fs::write(&clock, "+0\n").unwrap();
    let clock_path = clock.to_str().unwrap().to_owned();
    let mut gw = GatewayProc::start_file_with_env(
        config,
        &[
            ("LD_PRELOAD", libfaketime),
            ("FAKETIME_TIMESTAMP_FILE", &clock_path),
            ("FAKETIME_NO_CACHE", "1"),
            ("FAKETIME_DONT_FAKE_MONOTONIC", "1"),
        ],
    );
    let key = LogSigner::load(&home.join("keys/host.key")).unwrap();
    let signer = Arc::new(HostSigner::new(
        SigningKey::clone(key.signing_key()),
        "https://gw.test/mcp",
    ));
    let signed = move |tag: &'static str| {
        let signer = signer.clone();
        move |s: usize, n: usize| {
            let a = args(tag, s, n);
            let mut request = tools_call(n as u64 + 1, "echo", &a);
            signer.sign_request(&mut request, "demo", "echo", unix_now()).unwrap();
            (request, a)
        }
    };
    let sessions = sessions(&gw.url, &[]).await;
    for c in load(&sessions, 1, signed("before")).await {
        assert!(c.answer.result().is_some(), "clocks agree: {}", c.answer.body);
    }
    std::fs::write(&clock, format!("{offset}\n")).unwrap();
    let forwarded_before = log.count();
    assert_eq!(
        forwarded_before, SESSIONS,
        "the calls before the jump were forwarded and counted"
    );
    let calls = load(&sessions, CALLS, signed("jumped")).await;
    assert_all_failed(&calls, words);
    assert_eq!(log.count(), forwarded_before, "no signed call reached the server");
    assert_denies_recorded(&audit_records(&gw.config.path), &calls, "attest: ");
    std::fs::write(&clock, "+0\n").unwrap();
    for c in load(&sessions, 1, signed("after")).await {
        assert!(c.answer.result().is_some(), "clocks agree again: {}", c.answer.body);
    }
    drop(sessions);
    assert!(gw.terminate().success());
    let (code, out) = portcullis(&["audit", "verify", "--config", gw.config.path.to_str().unwrap()]);
    assert_eq!(code, 0, "the log written across the jumps verifies: {out}");
}

#[tokio::test]
async fn fault_clock_jump_forward() {
    clock_jump("+2h", &["the signature expired", "clock"]).await;
}

#[tokio::test]
async fn fault_clock_jump_back() {
    clock_jump("-2h", &["after the gateway's time", "the gateway's clock"]).await;
}
