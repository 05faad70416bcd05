//! Approvals through the real binary (T25): a write call waits for an approver, who
//! approves or denies it from the CLI over the admin listener; a refused call carries its
//! binding, which an approver signs offline into a token the host sends with the same
//! call. Replays, other arguments, another tool, self-approval, unregistered and revoked
//! approvers, N-of-M with the same approver twice and approve/deny races are refused and
//! recorded. Break-glass windows need two distinct approvers, flag every call made under
//! them, and end at their TTL or when ended.
use std::{path::Path, process::Command, time::Duration};

use portcullis_e2e::{
    bin, demo_server_entry, portcullis,
    procs::{GatewayProc, TempConfig, free_port, write_config},
    raw_http::{Reply, open_session_with, post},
};
use serde_json::{Value, json};

pub(crate) const DENIED: i64 = -32013;

/// Every call permitted, but a write only with an approval (as the default tier policies).
pub(crate) const POLICY: &str = r#"@id("any-call")
permit (principal, action, resource);

@id("write-needs-approval")
@reason("approval required")
forbid (principal, action, resource)
when { resource.tier == "write" && !context.listing && !context.approval_present && !context.break_glass };
"#;

struct Setup {
    gw: GatewayProc,
    admin: String,
    session: String,
}

pub(crate) fn keygen(dir: &Path, name: &str) {
    let out = dir.join(format!("keys/{name}.key"));
    let (code, text) = portcullis(&["audit", "keygen", "--out", out.to_str().unwrap()]);
    assert_eq!(code, 0, "{text}");
}

fn key(setup: &Setup, name: &str) -> String {
    setup
        .gw
        .config
        .dir
        .path()
        .join(format!("keys/{name}.key"))
        .display()
        .to_string()
}

/// A gateway whose anonymous HTTP callers act as `spiffe://example.org/agent`, with
/// approvers bob and erin, carol (revoked), alice (the caller's own workload), and `dave`
/// keys that are not registered; `delete_record` needs two approvals.
async fn start(wait_secs: u64) -> Setup {
    start_with(wait_secs, "", "{}").await
}

/// [`start`] with more `[approvals]` settings and the client's capabilities.
async fn start_with(wait_secs: u64, approvals: &str, capabilities: &str) -> Setup {
    let config: TempConfig = write_config("");
    let dir = config.dir.path().to_owned();
    for name in ["bob", "erin", "carol", "alice", "dave"] {
        keygen(&dir, name);
    }
    std::fs::write(dir.join("approval.cedar"), POLICY).unwrap();
    let admin_port = free_port();
    let text = format!(
        r#"[listen]
http = "127.0.0.1:0"
anonymous_principal = "spiffe://example.org/agent"

[policy]
cedar = ["approval.cedar"]
require_reason = false

[approvals]
wait_secs = {wait_secs}
{approvals}
required = {{ "demo/delete_record" = 2 }}

[[approvals.approvers]]
name = "bob"
key = "keys/bob.pub"

[[approvals.approvers]]
name = "erin"
key = "keys/erin.pub"

[[approvals.approvers]]
name = "carol"
key = "keys/carol.pub"
revoked = true

[[approvals.approvers]]
name = "alice"
key = "keys/alice.pub"
spiffe_id = "spiffe://example.org/agent"

[admin]
listen = "127.0.0.1:{admin_port}"

{}"#,
        demo_server_entry(
            "demo",
            r#"tools = { send_message = { tier = "write" }, delete_record = { tier = "write" } }"#
        )
    );
    std::fs::write(&config.path, text).unwrap();
    let gw = GatewayProc::start_file(config);
    let logs = gw.logs_with("admin API on http://");
    let admin = logs
        .split("admin API on http://")
        .nth(1)
        .map(|rest| {
            rest.chars()
                .take_while(|c| !matches!(c, '/' | '"' | ' '))
                .collect::<String>()
        })
        .expect("the admin listener's address is logged");
    let session = open_session_with(&gw.url, capabilities).await;
    let h = [("mcp-session-id", session.as_str())];
    let initialized = json!({"jsonrpc":"2.0","method":"notifications/initialized"}).to_string();
    assert_eq!(post(&gw.url, initialized, &h).await.status, 202);
    Setup {
        gw,
        admin: format!("http://{admin}"),
        session,
    }
}

pub(crate) fn send_message(id: u64, body: &str, token: Option<Value>) -> String {
    let mut params = json!({"name": "send_message", "arguments": {"to": "ops@example.org", "body": body}});
    if let Some(token) = token {
        params["_meta"] = json!({"io.portcullis/approval": token});
    }
    json!({"jsonrpc":"2.0","id":id,"method":"tools/call","params":params}).to_string()
}

fn delete_record(id: u64, token: Option<Value>) -> String {
    let mut params = json!({"name": "delete_record", "arguments": {"record_id": "r-7"}});
    if let Some(token) = token {
        params["_meta"] = json!({"io.portcullis/approval": token});
    }
    json!({"jsonrpc":"2.0","id":id,"method":"tools/call","params":params}).to_string()
}

async fn call(setup: &Setup, body: String) -> Reply {
    post(&setup.gw.url, body, &[("mcp-session-id", setup.session.as_str())]).await
}

pub(crate) fn error_text(reply: &Reply) -> String {
    reply.json()["error"]["message"].as_str().unwrap_or_default().to_owned()
}

/// `portcullis approvals …` against the setup's admin listener: exit code, stdout, stderr.
fn approvals(setup: &Setup, args: &[&str]) -> (i32, String, String) {
    let out = Command::new(bin("portcullis"))
        .arg("approvals")
        .args(args)
        .args(["--config", setup.gw.config.path.to_str().unwrap()])
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// The id of the first waiting request, once one is listed.
async fn waiting_request(setup: &Setup, approver: &str) -> String {
    for _ in 0..200 {
        let (code, out, err) = approvals(setup, &["list", "--key", &key(setup, approver)]);
        assert_eq!(code, 0, "{out}{err}");
        if let Some(line) = out.lines().find(|l| l.contains("demo/")) {
            return line.split_whitespace().next().unwrap().to_owned();
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("no call is waiting for approval");
}

/// The token `approver` signs offline for the binding a refused call carried.
fn sign(setup: &Setup, approver: &str, binding: &Value) -> String {
    let file = setup.gw.config.dir.path().join(format!("call-{}.json", rand_suffix()));
    std::fs::write(&file, binding.to_string()).unwrap();
    let out = Command::new(bin("portcullis"))
        .args([
            "approvals",
            "sign",
            "--key",
            &key(setup, approver),
            "--call",
            file.to_str().unwrap(),
        ])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

fn rand_suffix() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(0);
    N.fetch_add(1, Ordering::Relaxed)
}

/// The binding of a call refused for want of approval.
pub(crate) fn binding_of(reply: &Reply) -> Value {
    let json = reply.json();
    assert_eq!(json["error"]["code"], DENIED, "{}", reply.body);
    json["error"]["data"]["approval"]["binding"].clone()
}

pub(crate) fn records(config: &Path, kind: &str) -> Vec<Value> {
    let out = Command::new(bin("portcullis"))
        .args(["audit", "show", "--config", config.to_str().unwrap(), "--kind", kind])
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

pub(crate) fn steps(config: &Path, approval_id: &str) -> Vec<String> {
    records(config, "approval")
        .iter()
        .filter(|r| r["ext"]["approval_id"] == approval_id)
        .map(|r| r["ext"]["approval_step"].as_str().unwrap().to_owned())
        .collect()
}

/// The decisions on request `approval_id` that stand: its `granted` and `denied` steps,
/// less those a later `void` record undid (a decision the store refused after its record,
/// because another approver or replica decided first).
pub(crate) fn standing_decisions(config: &Path, approval_id: &str) -> Vec<String> {
    let mut standing: Vec<String> = Vec::new();
    for r in records(config, "approval")
        .iter()
        .filter(|r| r["ext"]["approval_id"] == approval_id)
    {
        match r["ext"]["approval_step"].as_str().unwrap() {
            step @ ("granted" | "denied") => standing.push(step.to_owned()),
            "void" => {
                let voided = r["ext"]["voids"].as_str().unwrap();
                let at = standing
                    .iter()
                    .rposition(|s| s == voided)
                    .expect("a void follows its step");
                standing.remove(at);
            }
            _ => {}
        }
    }
    standing
}

/// `portcullis verify-receipt` with the gateway's public key over `request` (as sent) and
/// `response` (as received): it must pass; returns what it printed.
/// The approval requests a receipt names: a batch receipt's outcome record (`approval_id`),
/// or a signed receipt's `approvalIds`.
fn receipt_approval_ids(receipt: &Value) -> Value {
    let Some(record) = receipt["record"].as_str() else {
        return receipt["approvalIds"].clone();
    };
    use base64::Engine;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(record).unwrap();
    let record: Value = serde_json::from_slice(&bytes).unwrap();
    json!([record["ext"]["approval_id"]])
}

fn verify_receipt(setup: &Setup, request: &str, response: &Value) -> String {
    let dir = setup.gw.config.dir.path();
    let n = rand_suffix();
    let (req_file, resp_file) = (
        dir.join(format!("request-{n}.json")),
        dir.join(format!("response-{n}.json")),
    );
    std::fs::write(&req_file, request).unwrap();
    std::fs::write(&resp_file, response.to_string()).unwrap();
    let (code, out) = portcullis(&[
        "verify-receipt",
        "--key",
        dir.join("keys/audit.pub").to_str().unwrap(),
        "--request",
        req_file.to_str().unwrap(),
        "--response",
        resp_file.to_str().unwrap(),
    ]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("receipt ok"), "{out}");
    out
}

#[tokio::test]
async fn t25_a_waiting_write_call_proceeds_once_an_approver_approves_it_from_the_cli() {
    let setup = start(60).await;
    let url = setup.gw.url.clone();
    let session = setup.session.clone();
    let waiting = tokio::spawn(async move {
        post(
            &url,
            send_message(1, "deploy 42", None),
            &[("mcp-session-id", session.as_str())],
        )
        .await
    });
    let id = waiting_request(&setup, "bob").await;
    let (code, shown, err) = approvals(&setup, &["show", &id, "--key", &key(&setup, "erin")]);
    assert_eq!(code, 0, "{err}");
    assert!(
        shown.contains("send_message") && shown.contains("deploy 42") && shown.contains("arguments_sha256"),
        "an approver sees the call, its arguments and digest: {shown}"
    );
    // The caller's own workload cannot approve it.
    let (code, _, err) = approvals(&setup, &["approve", &id, "--key", &key(&setup, "alice")]);
    assert_ne!(code, 0);
    assert!(err.contains("cannot approve their own call"), "{err}");
    let (code, out, err) = approvals(&setup, &["approve", &id, "--key", &key(&setup, "bob")]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("granted"), "{out}");
    let reply = waiting.await.unwrap();
    assert!(
        reply.json()["result"]["structuredContent"]["status"] == "sent",
        "{}",
        reply.body
    );
    // The signed receipt names the approval that let the call through, and verifies offline.
    let receipt = &reply.json()["result"]["_meta"]["io.portcullis/result-signature"];
    assert_eq!(receipt_approval_ids(receipt), json!([id]), "{receipt}");
    let verified = verify_receipt(&setup, &send_message(1, "deploy 42", None), &reply.json());
    assert!(
        verified.contains(&format!("approved by approval request {id}")),
        "{verified}"
    );

    assert_eq!(steps(&setup.gw.config.path, &id), ["requested", "granted", "used"]);
    let granted = records(&setup.gw.config.path, "approval")
        .into_iter()
        .find(|r| r["ext"]["approval_step"] == "granted")
        .unwrap();
    assert_eq!(granted["ext"]["approver"], "bob");
    assert!(
        granted["ext"]["signature_sha256"].is_string(),
        "the approval was signed: {granted}"
    );
    let allowed: Vec<Value> = records(&setup.gw.config.path, "decision")
        .into_iter()
        .filter(|r| r["decision"] == "allow")
        .collect();
    assert_eq!(allowed.len(), 1, "{allowed:?}");
    assert_eq!(allowed[0]["ext"]["approval_id"], id.as_str());
    assert_eq!(allowed[0]["ext"]["approved_by"], "bob");
}

#[tokio::test]
async fn t25_a_denied_request_refuses_the_waiting_call_and_a_later_approval_cannot_revive_it() {
    let setup = start(60).await;
    let url = setup.gw.url.clone();
    let session = setup.session.clone();
    let waiting = tokio::spawn(async move {
        post(
            &url,
            send_message(1, "wipe", None),
            &[("mcp-session-id", session.as_str())],
        )
        .await
    });
    let id = waiting_request(&setup, "erin").await;
    let (code, out, err) = approvals(&setup, &["deny", &id, "--key", &key(&setup, "erin")]);
    assert_eq!(code, 0, "{out}{err}");
    let reply = waiting.await.unwrap();
    assert_eq!(reply.error_code(), DENIED);
    assert!(
        error_text(&reply).contains("denied by approver `erin`"),
        "{}",
        reply.body
    );
    let (code, _, err) = approvals(&setup, &["approve", &id, "--key", &key(&setup, "bob")]);
    assert_ne!(code, 0, "approving after a deny must fail");
    assert!(err.contains("unknown, expired or already used"), "{err}");
    assert_eq!(steps(&setup.gw.config.path, &id), ["requested", "denied"]);
}

#[tokio::test]
async fn t25_an_approve_deny_race_has_exactly_one_winner_recorded_once() {
    let setup = start(60).await;
    let url = setup.gw.url.clone();
    let session = setup.session.clone();
    let waiting = tokio::spawn(async move {
        post(
            &url,
            send_message(1, "race", None),
            &[("mcp-session-id", session.as_str())],
        )
        .await
    });
    let id = waiting_request(&setup, "bob").await;
    let config = setup.gw.config.path.clone();
    let racer = |verb: &'static str, who: String| {
        let (id, config) = (id.clone(), config.clone());
        std::thread::spawn(move || {
            Command::new(bin("portcullis"))
                .args([
                    "approvals",
                    verb,
                    &id,
                    "--key",
                    &who,
                    "--config",
                    config.to_str().unwrap(),
                ])
                .status()
                .unwrap()
                .success()
        })
    };
    let approve = racer("approve", key(&setup, "bob"));
    let deny = racer("deny", key(&setup, "erin"));
    let (approved, denied) = (approve.join().unwrap(), deny.join().unwrap());
    assert!(
        approved ^ denied,
        "exactly one wins: approved {approved}, denied {denied}"
    );
    let reply = waiting.await.unwrap();
    assert_eq!(reply.json().get("result").is_some(), approved, "{}", reply.body);
    // The winner's decision stands; the loser's, recorded before the store refused it, is
    // voided.
    let winner = if approved { "granted" } else { "denied" };
    assert_eq!(standing_decisions(&setup.gw.config.path, &id), [winner]);
}

#[tokio::test]
async fn t25_offline_tokens_bind_the_exact_call_and_are_used_once() {
    let setup = start(0).await;
    // Refused at once (no wait): the answer carries the request's binding.
    let refused = call(&setup, send_message(1, "hello", None)).await;
    assert!(error_text(&refused).contains("approval required"), "{}", refused.body);
    let binding = binding_of(&refused);
    assert_eq!(binding["target"], "send_message");

    // Unregistered, revoked, self, tampered and other-call tokens count for nothing.
    let cases = [
        (sign(&setup, "dave", &binding), "not a registered approver"),
        (sign(&setup, "carol", &binding), "revoked"),
        (sign(&setup, "alice", &binding), "cannot approve their own call"),
    ];
    for (n, (token, expected)) in cases.into_iter().enumerate() {
        let reply = call(&setup, send_message(10 + n as u64, "hello", Some(json!(token)))).await;
        assert!(error_text(&reply).contains(expected), "{expected}: {}", reply.body);
    }
    let bob = sign(&setup, "bob", &binding);
    // One character of the signature changed, away from its end: the last characters
    // carry the top bits of the signature's scalar, mostly zero already, so overwriting
    // them with `A`s left about one token in a thousand as it was.
    let mut tampered = bob.clone();
    let at = tampered.len() - 10;
    let swapped = if &tampered[at..=at] == "A" { "B" } else { "A" };
    tampered.replace_range(at..=at, swapped);
    assert_ne!(tampered, bob);
    let reply = call(&setup, send_message(20, "hello", Some(json!(tampered)))).await;
    assert!(error_text(&reply).contains("does not verify"), "{}", reply.body);
    let reply = call(&setup, send_message(21, "goodbye", Some(json!(bob)))).await;
    assert!(error_text(&reply).contains("arguments differs"), "{}", reply.body);
    let reply = call(&setup, delete_record(22, Some(json!(bob)))).await;
    assert!(error_text(&reply).contains("target differs"), "{}", reply.body);

    // The right token lets the same call through, once.
    let ok = call(&setup, send_message(30, "hello", Some(json!(bob)))).await;
    assert_eq!(
        ok.json()["result"]["structuredContent"]["status"],
        "sent",
        "{}",
        ok.body
    );
    let id = binding["id"].as_str().unwrap();
    assert_eq!(
        receipt_approval_ids(&ok.json()["result"]["_meta"]["io.portcullis/result-signature"]),
        json!([id]),
        "{}",
        ok.body
    );
    let replay = call(&setup, send_message(31, "hello", Some(json!(bob)))).await;
    assert!(
        error_text(&replay).contains("unknown, expired or already used"),
        "a token is used once: {}",
        replay.body
    );
    assert_eq!(steps(&setup.gw.config.path, id), ["requested", "granted", "used"]);
    // The grant names its approver, the channel and the SHA-256 of the token's signature,
    // and is linked to the call that carried the token, as is its use.
    let of_request: Vec<Value> = records(&setup.gw.config.path, "approval")
        .into_iter()
        .filter(|r| r["ext"]["approval_id"] == id)
        .collect();
    let (granted, used) = (&of_request[1], &of_request[2]);
    assert_eq!(granted["ext"]["approver"], "bob", "{granted}");
    assert_eq!(granted["ext"]["channel"], "token", "{granted}");
    let signature = bob.rsplit('.').next().unwrap();
    let signature = base64::Engine::decode(&base64::engine::general_purpose::URL_SAFE_NO_PAD, signature).unwrap();
    assert_eq!(
        granted["ext"]["signature_sha256"],
        hex::encode(<sha2::Sha256 as sha2::Digest>::digest(&signature)),
        "{granted}"
    );
    assert_eq!(granted["call_id"], used["call_id"], "{granted} / {used}");
    assert_ne!(
        granted["call_id"], of_request[0]["call_id"],
        "the token came with a later call"
    );
    let refusals = records(&setup.gw.config.path, "decision")
        .into_iter()
        .filter(|r| r["decision"] == "deny" && r["reason"].as_str().unwrap_or("").starts_with("approval:"))
        .count();
    assert_eq!(refusals, 8, "the refusal and every refused token are recorded");
}

#[tokio::test]
async fn t25_two_approvals_need_two_distinct_approvers() {
    let setup = start(0).await;
    let refused = call(&setup, delete_record(1, None)).await;
    let binding = binding_of(&refused);
    assert_eq!(refused.json()["error"]["data"]["approval"]["required"], 2);
    let bob = sign(&setup, "bob", &binding);
    let twice = call(&setup, delete_record(2, Some(json!([bob, bob])))).await;
    assert!(
        error_text(&twice).contains("needs 2 approval(s) from registered approvers and has 1"),
        "{}",
        twice.body
    );
    let erin = sign(&setup, "erin", &binding);
    let ok = call(&setup, delete_record(3, Some(json!([bob, erin])))).await;
    assert!(ok.json().get("result").is_some(), "{}", ok.body);
    let id = binding["id"].as_str().unwrap();
    assert_eq!(
        steps(&setup.gw.config.path, id),
        ["requested", "granted", "granted", "used"],
        "bob's grant is recorded once, however often his token is sent"
    );
    let allowed = records(&setup.gw.config.path, "decision")
        .into_iter()
        .find(|r| r["decision"] == "allow")
        .unwrap();
    assert_eq!(allowed["ext"]["approved_by"], "bob,erin");
}

#[tokio::test]
async fn t25_a_call_whose_wait_ended_goes_through_on_retry_once_approved() {
    let setup = start(1).await;
    let first = call(&setup, send_message(1, "later", None)).await;
    assert!(error_text(&first).contains("has 0"), "{}", first.body);
    let id = binding_of(&first)["id"].as_str().unwrap().to_owned();
    let (code, out, err) = approvals(&setup, &["approve", &id, "--key", &key(&setup, "bob")]);
    assert_eq!(code, 0, "{out}{err}");
    // Another call is not approved by it; the same call is, once.
    let other = call(&setup, send_message(2, "other", None)).await;
    assert_eq!(other.error_code(), DENIED);
    let retry = call(&setup, send_message(3, "later", None)).await;
    assert!(retry.json().get("result").is_some(), "{}", retry.body);
    let again = call(&setup, send_message(4, "later", None)).await;
    assert_eq!(again.error_code(), DENIED, "used once: {}", again.body);
    assert_eq!(
        steps(&setup.gw.config.path, &id),
        ["requested", "wait-ended", "granted", "used"]
    );
}

/// Returns once request `id` is no longer listed: its TTL has run out.
async fn wait_until_lapsed(setup: &Setup, id: &str) {
    for _ in 0..100 {
        let (code, out, err) = approvals(setup, &["list", "--key", &key(setup, "bob")]);
        assert_eq!(code, 0, "{out}{err}");
        if !out.contains(id) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    panic!("approval request {id} is still listed long after its TTL");
}

#[tokio::test]
async fn t25_a_request_nobody_used_is_recorded_expired_once_linked_to_its_call() {
    let setup = start_with(0, "ttl_secs = 1", "{}").await;
    let config = setup.gw.config.path.clone();
    let first = call(&setup, send_message(1, "too late", None)).await;
    let first_id = binding_of(&first)["id"].as_str().unwrap().to_owned();
    wait_until_lapsed(&setup, &first_id).await;
    let (code, _, err) = approvals(&setup, &["approve", &first_id, "--key", &key(&setup, "bob")]);
    assert_ne!(code, 0, "an expired request cannot be approved");
    assert!(err.contains("unknown, expired or already used"), "{err}");
    // With no other call coming, the gateway's own sweep records it.
    let mut found = Vec::new();
    for _ in 0..150 {
        found = steps(&config, &first_id);
        if found.len() > 1 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(found, ["requested", "expired"]);
    let of_request: Vec<Value> = records(&config, "approval")
        .into_iter()
        .filter(|r| r["ext"]["approval_id"] == first_id.as_str())
        .collect();
    let (requested, expired) = (&of_request[0], &of_request[1]);
    assert_eq!(
        expired["call_id"], requested["call_id"],
        "linked to the call it was opened for"
    );
    assert_eq!(expired["ext"]["state"], "waiting", "{expired}");
    assert_eq!(expired["ext"]["approvals_given"], "0", "{expired}");

    // A request opened after another lapsed sweeps it first: recorded by the time the
    // new call is answered.
    let second = call(&setup, send_message(2, "also too late", None)).await;
    let second_id = binding_of(&second)["id"].as_str().unwrap().to_owned();
    wait_until_lapsed(&setup, &second_id).await;
    let third = call(&setup, send_message(3, "now", None)).await;
    assert_eq!(third.error_code(), DENIED);
    assert_eq!(steps(&config, &second_id), ["requested", "expired"]);
    assert_eq!(
        steps(&config, &first_id),
        ["requested", "expired"],
        "recorded once, however many sweeps ran"
    );
}

#[tokio::test]
async fn t25_the_admin_api_refuses_requests_without_an_approver() {
    let setup = start(0).await;
    let anonymous = reqwest::get(format!("{}/approvals", setup.admin)).await.unwrap();
    assert_eq!(anonymous.status().as_u16(), 401);
    let (code, _, err) = approvals(&setup, &["list", "--key", &key(&setup, "dave")]);
    assert_ne!(code, 0);
    assert!(err.contains("not a registered approver"), "{err}");
}

fn break_glass(setup: &Setup, args: &[&str]) -> (i32, String, String) {
    let out = Command::new(bin("portcullis"))
        .arg("break-glass")
        .args(args)
        .args(["--config", setup.gw.config.path.to_str().unwrap()])
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Requests a window as bob and returns its id.
fn request_window(setup: &Setup, ttl: &str) -> String {
    let (code, out, err) = break_glass(
        setup,
        &[
            "request",
            "--reason",
            "incident 7: restore",
            "--ttl",
            ttl,
            "--key",
            &key(setup, "bob"),
        ],
    );
    assert_eq!(code, 0, "{out}{err}");
    out.split_whitespace().nth(1).unwrap().trim_end_matches(':').to_owned()
}

fn window_steps(config: &Path, window: &str) -> Vec<String> {
    records(config, "admin")
        .iter()
        .filter(|r| r["ext"]["break_glass"] == window)
        .map(|r| r["ext"]["break_glass_step"].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test]
async fn t25_break_glass_needs_two_distinct_approvers_and_flags_every_call_under_it() {
    let setup = start(0).await;
    let id = request_window(&setup, "1h");
    let denied = call(&setup, send_message(1, "urgent", None)).await;
    assert!(
        error_text(&denied).contains("approval required"),
        "requested is not active: {}",
        denied.body
    );
    for _ in 0..2 {
        let (code, out, err) = break_glass(&setup, &["approve", &id, "--key", &key(&setup, "bob")]);
        assert_eq!(code, 0, "{out}{err}");
        assert!(
            out.contains("approvals 1/2"),
            "the same approver twice counts once: {out}"
        );
    }
    let still = call(&setup, send_message(2, "urgent", None)).await;
    assert_eq!(
        still.error_code(),
        DENIED,
        "one approver does not open it: {}",
        still.body
    );
    let (code, out, err) = break_glass(&setup, &["approve", &id, "--key", &key(&setup, "erin")]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("active until"), "{out}");
    let ok = call(&setup, send_message(3, "urgent", None)).await;
    assert!(ok.json().get("result").is_some(), "{}", ok.body);
    let flagged = records(&setup.gw.config.path, "decision")
        .into_iter()
        .find(|r| r["decision"] == "allow")
        .unwrap();
    assert_eq!(flagged["ext"]["break_glass"], id.as_str(), "{flagged}");
    let (code, out, err) = break_glass(&setup, &["end", &id, "--key", &key(&setup, "erin")]);
    assert_eq!(code, 0, "{out}{err}");
    let after = call(&setup, send_message(4, "urgent", None)).await;
    assert_eq!(after.error_code(), DENIED, "ended: {}", after.body);
    assert_eq!(
        window_steps(&setup.gw.config.path, &id),
        ["requested", "approved", "approved", "active", "ended"]
    );
    // A window longer than the cap is refused, not cut.
    let (code, _, err) = break_glass(
        &setup,
        &["request", "--reason", "r", "--ttl", "2h", "--key", &key(&setup, "bob")],
    );
    assert_ne!(code, 0);
    assert!(err.contains("break_glass_max_ttl_secs"), "{err}");
}

#[tokio::test]
async fn t25_break_glass_ends_by_itself_at_its_ttl() {
    let setup = start(0).await;
    let id = request_window(&setup, "2s");
    for approver in ["bob", "erin"] {
        let (code, out, err) = break_glass(&setup, &["approve", &id, "--key", &key(&setup, approver)]);
        assert_eq!(code, 0, "{out}{err}");
    }
    let ok = call(&setup, send_message(1, "quick", None)).await;
    assert!(ok.json().get("result").is_some(), "{}", ok.body);
    tokio::time::sleep(Duration::from_millis(3100)).await;
    let after = call(&setup, send_message(2, "quick", None)).await;
    assert_eq!(after.error_code(), DENIED, "expired mid-session: {}", after.body);
    let steps = window_steps(&setup.gw.config.path, &id);
    assert_eq!(steps.last().map(String::as_str), Some("ended"), "{steps:?}");
    let (_, out, _) = break_glass(&setup, &["list", "--key", &key(&setup, "bob")]);
    assert!(out.contains("ended at") && out.contains("by ttl"), "{out}");
}

#[tokio::test]
async fn t25_a_waiting_client_hears_progress_and_one_that_goes_away_withdraws_its_request() {
    let setup = start(60).await;
    let (url, session) = (setup.gw.url.clone(), setup.session.clone());
    let mut with_progress: Value = serde_json::from_str(&send_message(1, "progress", None)).unwrap();
    with_progress["params"]["_meta"] = json!({"progressToken": "p-1"});
    let waiting =
        tokio::spawn(
            async move { post(&url, with_progress.to_string(), &[("mcp-session-id", session.as_str())]).await },
        );
    let id = waiting_request(&setup, "bob").await;
    let (code, out, err) = approvals(&setup, &["approve", &id, "--key", &key(&setup, "bob")]);
    assert_eq!(code, 0, "{out}{err}");
    let reply = waiting.await.unwrap();
    assert!(
        reply.content_type.starts_with("text/event-stream"),
        "{}",
        reply.content_type
    );
    let progress = reply
        .body
        .lines()
        .filter_map(|l| l.strip_prefix("data: "))
        .map(|d| serde_json::from_str::<Value>(d).unwrap())
        .find(|m| m["method"] == "notifications/progress")
        .unwrap_or_else(|| panic!("no progress while waiting: {}", reply.body));
    assert_eq!(progress["params"]["progressToken"], "p-1");
    assert!(
        progress["params"]["message"].as_str().unwrap().contains(&id),
        "{progress}"
    );
    assert!(reply.body.contains("\"result\""), "{}", reply.body);

    // A client that gives up (its connection closes) withdraws its request.
    let impatient = reqwest::Client::builder()
        .timeout(Duration::from_millis(1500))
        .build()
        .unwrap();
    let gone = impatient
        .post(&setup.gw.url)
        .header("content-type", "application/json")
        .header("accept", "application/json, text/event-stream")
        .header("mcp-session-id", setup.session.as_str())
        .body(send_message(2, "impatient", None))
        .send()
        .await;
    assert!(gone.is_err(), "the call waits for approval, so the client times out");
    let mut withdrawn = Vec::new();
    for _ in 0..100 {
        withdrawn = records(&setup.gw.config.path, "approval")
            .into_iter()
            .filter(|r| r["ext"]["approval_step"] == "withdrawn")
            .collect();
        if !withdrawn.is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(withdrawn.len(), 1, "the withdrawal is recorded");
    let (_, out, _) = approvals(&setup, &["list", "--key", &key(&setup, "bob")]);
    assert!(out.contains("no calls are waiting"), "{out}");
}

/// Sends a call and answers the gateway's `elicitation/create` on its stream with `answer`
/// (the `result` object); returns the elicitation's message and the call's final answer.
async fn call_answering_elicitation(setup: &Setup, body: String, answer: Value) -> (String, Value) {
    let response = reqwest::Client::new()
        .post(&setup.gw.url)
        .header("content-type", "application/json")
        .header("accept", "application/json, text/event-stream")
        .header("mcp-session-id", setup.session.as_str())
        .body(body)
        .send()
        .await
        .unwrap();
    let mut response = response;
    let (mut buffer, mut asked) = (String::new(), None);
    while let Some(chunk) = response.chunk().await.unwrap() {
        buffer.push_str(&String::from_utf8_lossy(&chunk));
        while let Some(end) = buffer.find('\n') {
            let line: String = buffer.drain(..=end).collect();
            let Some(data) = line.trim_end().strip_prefix("data: ") else {
                continue;
            };
            let message: Value = serde_json::from_str(data).unwrap();
            if message["method"] == "elicitation/create" {
                let reply = json!({"jsonrpc": "2.0", "id": message["id"], "result": answer});
                let posted = post(
                    &setup.gw.url,
                    reply.to_string(),
                    &[("mcp-session-id", setup.session.as_str())],
                )
                .await;
                assert_eq!(posted.status, 202, "{}", posted.body);
                asked = Some(message["params"]["message"].as_str().unwrap().to_owned());
            } else if message.get("result").is_some() || message.get("error").is_some() {
                return (asked.expect("the user was asked"), message);
            }
        }
    }
    panic!("the stream ended without an answer: {buffer}");
}

#[tokio::test]
async fn t25_the_user_approves_or_declines_their_own_write_by_elicitation_when_the_config_allows() {
    let setup = start_with(30, "user_may_approve = [\"write\"]", r#"{"elicitation": {}}"#).await;
    let (asked, answer) = call_answering_elicitation(
        &setup,
        send_message(1, "mine", None),
        json!({"action": "accept", "content": {"approve": true}}),
    )
    .await;
    assert!(
        asked.contains("send_message") && asked.contains("mine"),
        "the user sees the call: {asked}"
    );
    assert_eq!(answer["result"]["structuredContent"]["status"], "sent", "{answer}");
    let granted = records(&setup.gw.config.path, "approval")
        .into_iter()
        .find(|r| r["ext"]["approval_step"] == "granted")
        .unwrap();
    assert_eq!(granted["ext"]["channel"], "elicitation");
    assert_eq!(granted["ext"]["approver"], "user:spiffe://example.org/agent");

    let (_, declined) = call_answering_elicitation(
        &setup,
        send_message(2, "not this one", None),
        json!({"action": "decline"}),
    )
    .await;
    assert_eq!(declined["error"]["code"], DENIED, "{declined}");
    assert!(
        declined["error"]["message"]
            .as_str()
            .unwrap()
            .contains("denied by approver `user:"),
        "{declined}"
    );
}

/// A 2026-07-28 `send_message` call to the gateway at `url`; `round_trip`: the
/// requestState and the user's answer.
pub(crate) async fn modern_send(url: &str, id: u64, body: &str, round_trip: Option<(&str, Value)>) -> Reply {
    let mut params = json!({
        "name": "send_message",
        "arguments": {"to": "ops@example.org", "body": body},
        "_meta": {
            "io.modelcontextprotocol/protocolVersion": "2026-07-28",
            "io.modelcontextprotocol/clientCapabilities": {"elicitation": {}},
            "io.modelcontextprotocol/clientInfo": {"name": "raw", "version": "1"},
        },
    });
    if let Some((state, answer)) = round_trip {
        params["requestState"] = json!(state);
        params["inputResponses"] = json!({"io.portcullis/approval": answer});
    }
    let body = json!({"jsonrpc": "2.0", "id": id, "method": "tools/call", "params": params}).to_string();
    let headers = [
        ("mcp-protocol-version", "2026-07-28"),
        ("mcp-method", "tools/call"),
        ("mcp-name", "send_message"),
    ];
    post(url, body, &headers).await
}

#[tokio::test]
async fn t25_a_modern_user_approves_by_round_trip_with_a_request_state_that_cannot_be_tampered_or_reused() {
    let setup = start_with(30, "user_may_approve = [\"write\"]", "{}").await;
    let first = modern_send(&setup.gw.url, 1, "mrtr", None).await;
    let result = first.json()["result"].clone();
    assert_eq!(result["resultType"], "input_required", "{}", first.body);
    let question = &result["inputRequests"]["io.portcullis/approval"];
    assert_eq!(question["method"], "elicitation/create");
    assert!(question["params"]["message"].as_str().unwrap().contains("send_message"));
    let state = result["requestState"].as_str().unwrap().to_owned();
    let yes = json!({"action": "accept", "content": {"approve": true}});

    // Tampered state, or the state on other arguments: refused.
    let mut tampered = state.clone();
    tampered.insert(8, 'A');
    let reply = modern_send(&setup.gw.url, 2, "mrtr", Some((&tampered, yes.clone()))).await;
    assert!(error_text(&reply).contains("requestState"), "{}", reply.body);
    let reply = modern_send(&setup.gw.url, 3, "other body", Some((&state, yes.clone()))).await;
    assert!(error_text(&reply).contains("arguments differs"), "{}", reply.body);

    // The genuine retry goes through, once.
    let ok = modern_send(&setup.gw.url, 4, "mrtr", Some((&state, yes.clone()))).await;
    assert_eq!(
        ok.json()["result"]["structuredContent"]["status"],
        "sent",
        "{}",
        ok.body
    );
    let replay = modern_send(&setup.gw.url, 5, "mrtr", Some((&state, yes))).await;
    assert!(
        error_text(&replay).contains("unknown, expired or already used"),
        "single use: {}",
        replay.body
    );
    let id = state_request_id(&setup);
    assert_eq!(steps(&setup.gw.config.path, &id), ["requested", "granted", "used"]);
}

/// The id of the one approval request the log holds.
fn state_request_id(setup: &Setup) -> String {
    records(&setup.gw.config.path, "approval")[0]["ext"]["approval_id"]
        .as_str()
        .unwrap()
        .to_owned()
}
