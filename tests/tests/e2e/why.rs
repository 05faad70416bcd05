//! Diagnosing decisions from the audit log with the real binary: `portcullis why ID` (the id
//! a refusal quoted: the records, the rules that decided, what would have allowed it) and
//! `portcullis policy explain --audit-index N` (a logged decision replayed against the
//! current policy set, which may have changed since).
use std::{
    io::Write,
    path::Path,
    process::{Command, Stdio},
};

use portcullis_e2e::{bin, portcullis};
use serde_json::{Value, json};

/// Runs one `portcullis stdio` session on `config` with `calls` (tool, arguments) and
/// returns the answers by request id (1, 2, …).
fn session(config: &Path, calls: &[(&str, Value)]) -> Vec<Value> {
    let mut child = Command::new(bin("portcullis"))
        .args(["stdio", "--config", config.to_str().unwrap()])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let mut lines = vec![
        json!({"jsonrpc": "2.0", "id": 0, "method": "initialize", "params": {
            "protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "t", "version": "1"}}}),
        json!({"jsonrpc": "2.0", "method": "notifications/initialized"}),
    ];
    for (i, (tool, args)) in calls.iter().enumerate() {
        lines.push(json!({"jsonrpc": "2.0", "id": i + 1, "method": "tools/call",
            "params": {"name": tool, "arguments": args}}));
    }
    for line in lines {
        writeln!(stdin, "{line}").unwrap();
    }
    drop(stdin);
    let out = child.wait_with_output().unwrap();
    let answers: Vec<Value> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect();
    (1..=calls.len())
        .map(|id| {
            answers
                .iter()
                .find(|a| a["id"] == json!(id))
                .cloned()
                .unwrap_or_else(|| panic!("no answer to call {id}: {answers:?}"))
        })
        .collect()
}

fn decision_id(answer: &Value) -> String {
    answer["error"]["data"]["decisionId"]
        .as_str()
        .unwrap_or_else(|| panic!("a refusal with a decision id: {answer}"))
        .to_owned()
}

#[test]
fn why_and_explain_replay_logged_decisions_and_say_what_would_allow_them() {
    let dir = tempfile::tempdir().unwrap();
    let (code, text) = portcullis(&["init", dir.path().to_str().unwrap()]);
    assert_eq!(code, 0, "{text}");
    let config = dir.path().join("portcullis.toml");
    // Write calls are refused at once here (no approver answers in this test).
    let text = std::fs::read_to_string(&config)
        .unwrap()
        .replace("wait_secs = 120", "wait_secs = 0")
        .replace("127.0.0.1:9443", "127.0.0.1:0");
    std::fs::write(&config, text).unwrap();
    let cfg = config.to_str().unwrap();
    let answers = session(
        &config,
        &[
            ("search_docs", json!({"query": "refund"})),
            (
                "delete_record",
                json!({"record_id": "r1", "portcullis_reason": "clean up a test record"}),
            ),
            ("delete_record", json!({"record_id": "r2"})),
            (
                "search_docs",
                json!({"query": "refund", "portcullis_reason": "a customer asked about refunds"}),
            ),
            (
                "lookup_customer",
                json!({"customer_id": "c-1", "portcullis_reason": "support ticket 7"}),
            ),
        ],
    );
    assert!(answers[3].get("result").is_some(), "{}", answers[3]);

    let (code, out) = portcullis(&["why", &decision_id(&answers[0]), "--config", cfg]);
    assert_eq!(code, 0, "{out}");
    for needle in [
        "deny (reason-required)",
        "caller: desktop-host",
        "call: tools/call demo/search_docs (tier read)",
        "caller's reason: none given",
        "forbids matched: reason-required",
        "what would allow it",
        "a reason: desktop hosts fill the `portcullis_reason` argument",
    ] {
        assert!(out.contains(needle), "{needle:?} in:\n{out}");
    }

    let (code, out) = portcullis(&["why", &decision_id(&answers[1]), "--config", cfg]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("write-needs-approval"), "{out}");
    assert!(out.contains("caller's reason: \"clean up a test record\""), "{out}");
    assert!(out.contains("a call-bound approval"), "{out}");
    assert!(!out.contains("- a reason"), "a reason was given: {out}");

    // Two rules forbade it: both fixes are needed, and said so.
    let (code, out) = portcullis(&["why", &decision_id(&answers[2]), "--config", cfg]);
    assert_eq!(code, 0, "{out}");
    assert!(
        out.contains("- a reason: desktop hosts fill the `portcullis_reason` argument")
            && out.contains("together with a call-bound approval"),
        "{out}"
    );

    let (code, out) = portcullis(&["why", &decision_id(&answers[4]), "--config", cfg]);
    assert_eq!(code, 0, "{out}");
    assert!(
        out.contains("scope `mcp:read-sensitive` or `demo:read-sensitive`"),
        "{out}"
    );

    let (code, out) = portcullis(&["why", "0123456789abcdef0123456789abcdef", "--config", cfg]);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("no decision `0123456789abcdef0123456789abcdef`"), "{out}");

    // The allowed call, by index, replayed; then again after the policy changed.
    let (code, shown) = portcullis(&[
        "audit",
        "show",
        "--config",
        cfg,
        "--kind",
        "decision",
        "--tool",
        "search_docs",
    ]);
    assert_eq!(code, 0, "{shown}");
    let allowed: Value = shown
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .find(|r| r["decision"] == "allow")
        .unwrap_or_else(|| panic!("an allowed decision: {shown}"));
    let index = allowed["index"].to_string();
    let (code, out) = portcullis(&["policy", "explain", "--config", cfg, "--audit-index", &index]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains(": allow (tier-read)"), "{out}");
    assert!(out.contains("the same set that decided"), "{out}");
    assert!(out.contains("decision: allow"), "{out}");
    assert!(
        out.contains("caller's reason: \"a customer asked about refunds\""),
        "{out}"
    );

    let tiers = dir.path().join("policies/tiers.cedar");
    let text = std::fs::read_to_string(&tiers).unwrap();
    std::fs::write(
        &tiers,
        text.replace("resource.tier == \"read\" &&", "resource.tier == \"read\" && false &&"),
    )
    .unwrap();
    let (code, out) = portcullis(&["policy", "explain", "--config", cfg, "--audit-index", &index]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("changed since: logged"), "{out}");
    assert!(out.contains("decision: deny"), "{out}");

    let (code, out) = portcullis(&["policy", "explain", "--config", cfg, "--audit-index", "0"]);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("not a decision"), "{out}");
}
