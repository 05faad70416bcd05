//! The authorise stage through the real binary (T11, T14): tiers, reasons, list
//! filtering, both engines, a deny never reaches the server, bad policies at
//! start and at reload, and the `policy` commands.
use std::process::Command;

use portcullis_e2e::{
    bin,
    clients::{self, Revision, call, text},
    demo_server_entry,
    procs::{GatewayProc, write_config},
    repo_root,
};
use serde_json::{Value, json};

/// A stdio-front config: its principal comes from config and is not anonymous.
fn config(policy: &str) -> String {
    format!(
        "[stdio]\nprincipal = \"spiffe://example.org/desktop\"\n{policy}\n{}",
        demo_server_entry(
            "demo",
            "tools = { lookup_customer = { tier = \"read-sensitive\" }, crash = { tier = \"write\" } }"
        )
    )
}

async fn call_with_reason(
    client: &clients::Client,
    tool: &str,
    args: Value,
    reason: Option<&str>,
) -> Result<String, String> {
    let mut params =
        rmcp::model::CallToolRequestParams::new(tool.to_owned()).with_arguments(args.as_object().unwrap().clone());
    if let Some(r) = reason {
        let mut meta = rmcp::model::RequestMetaObject::default();
        meta.insert("io.portcullis/reason".into(), json!(r));
        rmcp::model::RequestParamsMeta::set_meta(&mut params, meta);
    }
    client
        .call_tool(params)
        .await
        .map(|r| text(&r))
        .map_err(|e| e.to_string())
}

async fn tiers_through_stdio(policy: &str) {
    let cfg = write_config(&config(policy));
    let (client, _) = clients::stdio(
        &bin("portcullis"),
        &["stdio", "--config", cfg.path.to_str().unwrap()],
        Revision::Legacy,
    )
    .await;
    let tools = clients::tool_names(&client).await;
    assert!(tools.contains(&"search_docs".to_string()), "{tools:?}");
    assert!(
        !tools.contains(&"lookup_customer".to_string()),
        "read-sensitive hidden without scope: {tools:?}"
    );
    assert!(
        tools.contains(&"send_message".to_string()),
        "write tools are listed (usable once approved)"
    );

    let ok = call_with_reason(
        &client,
        "search_docs",
        json!({"query": "refund"}),
        Some("customer asked"),
    )
    .await;
    assert!(ok.unwrap().contains("handbook-001"));
    let no_reason = call_with_reason(&client, "search_docs", json!({"query": "refund"}), None)
        .await
        .unwrap_err();
    assert!(
        no_reason.contains("a reason is required") && no_reason.contains("decision"),
        "{no_reason}"
    );
    assert!(
        no_reason.contains("io.portcullis/reason") && no_reason.contains("reason_argument = true"),
        "the refusal says how to give a reason, and what desktop hosts need: {no_reason}"
    );
    let sensitive = call_with_reason(&client, "lookup_customer", json!({"customer_id": "C-1001"}), Some("r")).await;
    assert!(sensitive.unwrap_err().contains("no policy allows this call"));
    // A denied write never reaches the server: `crash` (tier write) would kill the child.
    let write = call_with_reason(&client, "crash", json!({}), Some("testing"))
        .await
        .unwrap_err();
    assert!(write.contains("approval required"), "{write}");
    assert!(
        !write.contains("permit") && !write.contains("forbid"),
        "no policy text leaks: {write}"
    );
    let still = call_with_reason(&client, "search_docs", json!({"query": "x"}), Some("after the deny")).await;
    assert!(
        still.is_ok(),
        "the child is alive, so the denied call never reached it: {still:?}"
    );
    client.cancel().await.unwrap();

    // Every decision is in the audit log with its decision id and policy hash.
    let out = Command::new(bin("portcullis"))
        .args([
            "audit",
            "show",
            "--config",
            cfg.path.to_str().unwrap(),
            "--kind",
            "decision",
        ])
        .output()
        .unwrap();
    let records: Vec<Value> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let denies = records.iter().filter(|r| r["decision"] == "deny").count();
    assert_eq!(denies, 3, "{records:?}");
    assert!(
        records
            .iter()
            .all(|r| r["decision_id"].is_string() && r["policy_sha256"].is_string())
    );
}

#[tokio::test]
async fn t11_default_tier_policies_with_cedar() {
    tiers_through_stdio("").await;
}

#[tokio::test]
async fn t11_default_tier_policies_with_rego() {
    tiers_through_stdio("[policy]\nengine = \"rego\"\n").await;
}

#[tokio::test]
async fn anonymous_http_callers_are_denied_by_the_default_policies() {
    let gw = GatewayProc::start(&format!(
        "[policy]\nrequire_reason = false\n{}",
        demo_server_entry("demo", "")
    ));
    let (client, _) = clients::http(&gw.url, Revision::Legacy).await;
    assert!(
        clients::tool_names(&client).await.is_empty(),
        "nothing listed for an anonymous caller"
    );
    let err = call(&client, "search_docs", json!({"query": "x"})).await.unwrap_err();
    assert!(err.to_string().contains("no policy allows this call"), "{err}");
    // The deny's log line says who, what and why.
    let logs = gw.logs_with("call denied by policy");
    let line = logs
        .lines()
        .find(|l| l.contains("call denied by policy"))
        .unwrap_or_else(|| panic!("a deny line: {logs}"));
    for wanted in [
        "\"workload\":\"anonymous\"",
        "\"target\":\"search_docs\"",
        "\"tier\":\"read\"",
        "no policy allows this call",
    ] {
        assert!(line.contains(wanted), "{wanted} in {line}");
    }
}

#[tokio::test]
async fn reason_argument_is_offered_and_stripped() {
    let gw = GatewayProc::start(&format!(
        "[policy]\ncedar = [\"{}\"]\nreason_argument = true\n{}",
        repo_root().join("tests/policies/anonymous-ok.cedar").display(),
        demo_server_entry("demo", "")
    ));
    let (client, _) = clients::http(&gw.url, Revision::Legacy).await;
    let tools = client.list_all_tools().await.unwrap();
    let echo = tools.iter().find(|t| t.name == "echo").expect("echo listed");
    let schema = serde_json::to_value(&echo.input_schema).unwrap();
    assert!(schema["properties"]["portcullis_reason"].is_object(), "{schema}");
    assert!(
        schema["required"]
            .as_array()
            .is_some_and(|r| r.contains(&json!("portcullis_reason"))),
        "the reason argument is required, so models fill it in: {schema}"
    );
    let out = call(
        &client,
        "echo",
        json!({"k": 1, "portcullis_reason": "debugging the relay"}),
    )
    .await
    .unwrap();
    let got: Value = out
        .structured_content
        .clone()
        .unwrap_or_else(|| serde_json::from_str(&text(&out)).unwrap());
    assert_eq!(
        got["arguments"],
        json!({"k": 1}),
        "the reason is stripped before forwarding"
    );
    let err = call(&client, "echo", json!({"k": 1})).await.unwrap_err();
    assert!(err.to_string().contains("a reason is required"), "{err}");
    assert!(
        err.to_string().contains("pass the `portcullis_reason` argument"),
        "the refusal says how to give a reason: {err}"
    );
}

#[tokio::test]
async fn t14_corrupt_policy_refuses_start_and_reload_keeps_the_current_set() {
    let dir = tempfile::tempdir().unwrap();
    let policy = dir.path().join("p.cedar");
    std::fs::write(
        &policy,
        "permit (principal, action, resource) when { this is not cedar };",
    )
    .unwrap();
    let cfg = write_config(&format!(
        "[policy]\ncedar = [\"{}\"]\n{}",
        policy.display(),
        demo_server_entry("demo", "")
    ));
    let out = Command::new(bin("portcullis"))
        .args(["check-config", "--config", cfg.path.to_str().unwrap()])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        out.status.code(),
        Some(2),
        "check-config loads the policy files as run would: {err}"
    );
    assert!(err.contains("policy: ") && err.contains("p.cedar"), "{err}");
    let out = Command::new(bin("portcullis"))
        .args(["policy", "check", "--config", cfg.path.to_str().unwrap()])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("p.cedar"), "names the file: {err}");
    let mut run = Command::new(bin("portcullis"))
        .args(["run", "--config", cfg.path.to_str().unwrap()])
        .output()
        .unwrap();
    assert_eq!(
        run.status.code(),
        Some(2),
        "a gateway with an invalid policy set does not start (a bad config: exit 2)"
    );
    run.stderr.clear();

    // Start with a valid permissive set, then break the file: the reload is refused.
    std::fs::write(&policy, "@id(\"allow-all\")\npermit (principal, action, resource);\n").unwrap();
    let gw = GatewayProc::start(&format!(
        "[policy]\ncedar = [\"{}\"]\nreload_interval_secs = 1\n{}",
        policy.display(),
        demo_server_entry("demo", "")
    ));
    let (client, _) = clients::http(&gw.url, Revision::Legacy).await;
    assert!(call(&client, "search_docs", json!({"query": "x"})).await.is_ok());
    std::fs::write(&policy, "forbid (principal, action, resource) when { ??? };").unwrap();
    for _ in 0..100 {
        if gw.logs().contains("policy reload REFUSED") {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert!(
        gw.logs().contains("policy reload REFUSED"),
        "the bad set is reported loudly"
    );
    assert!(
        call(&client, "search_docs", json!({"query": "x"})).await.is_ok(),
        "the current set stays in force"
    );
    // A valid new set is swapped in: now everything is forbidden.
    std::fs::write(&policy, "@id(\"allow-all\")\npermit (principal, action, resource);\n@id(\"stop\")\nforbid (principal, action, resource);\n").unwrap();
    let mut denied = false;
    for _ in 0..100 {
        if call(&client, "search_docs", json!({"query": "x"})).await.is_err() {
            denied = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert!(denied, "the new policy set took effect without a restart");
}

#[test]
fn policy_test_and_explain_commands() {
    let cfg = write_config(&config(""));
    let fixtures = repo_root().join("crates/policy/testdata/fixtures.toml");
    let out = Command::new(bin("portcullis"))
        .args([
            "policy",
            "test",
            fixtures.to_str().unwrap(),
            "--config",
            cfg.path.to_str().unwrap(),
        ])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains(" passed, 0 failed"), "{stdout}");

    let bad = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(bad.path(), "[[cases]]\nname = \"wrong on purpose\"\nexpect = \"allow\"\n[cases.request]\nserver = \"demo\"\nmethod = \"tools/call\"\ntarget = \"send_message\"\ntier = \"write\"\nreason = \"r\"\ntime = 1\nprincipal = { workload = \"w\" }\n").unwrap();
    let out = Command::new(bin("portcullis"))
        .args([
            "policy",
            "test",
            bad.path().to_str().unwrap(),
            "--config",
            cfg.path.to_str().unwrap(),
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stdout).contains("MISMATCH wrong on purpose"));

    let request = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(request.path(), r#"{"principal":{"workload":"w"},"server":"demo","method":"tools/call","target":"send_message","tier":"write","reason":"r","time":1}"#).unwrap();
    let out = Command::new(bin("portcullis"))
        .args([
            "policy",
            "explain",
            "--config",
            cfg.path.to_str().unwrap(),
            "--request",
            request.path().to_str().unwrap(),
        ])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stdout}");
    assert!(
        stdout.contains("write-needs-approval"),
        "names the deciding policy: {stdout}"
    );
}

/// A decision record keeps the caller's own reason (credentials cut out) and the tier the
/// policy decided under, beside the name of the rule that matched.
#[tokio::test]
async fn the_decision_record_keeps_the_callers_reason_and_the_tier() {
    let gw = GatewayProc::start(&format!(
        "[policy]\ncedar = [\"{}\"]\n{}",
        repo_root().join("tests/policies/anonymous-ok.cedar").display(),
        demo_server_entry("demo", "")
    ));
    let (client, _) = clients::http(&gw.url, Revision::Legacy).await;
    let secret = "ghp_0123456789abcdefABCDEF0123456789abcd";
    call_with_reason(
        &client,
        "echo",
        json!({"k": 1}),
        Some(&format!("ticket 42: customer asked for a refund; token {secret}")),
    )
    .await
    .unwrap();
    client.cancel().await.unwrap();
    let out = Command::new(bin("portcullis"))
        .args(["audit", "export", "--format", "jsonl", "--config"])
        .arg(&gw.config.path)
        .output()
        .unwrap();
    let out = String::from_utf8_lossy(&out.stdout).into_owned();
    let decision = out
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .find(|r| r["kind"] == "decision" && r["tool"] == "echo")
        .unwrap_or_else(|| panic!("a decision record for echo: {out}"));
    let reason = decision["ext"]["caller_reason"].as_str().unwrap_or_default();
    assert!(
        reason.starts_with("ticket 42: customer asked for a refund"),
        "{decision}"
    );
    assert!(!out.contains(secret), "no credential in the log: {decision}");
    assert_eq!(decision["ext"]["tier"], "read", "{decision}");
    // The decision id a refusal names finds its records.
    let id = decision["decision_id"].as_str().expect("a decision id");
    let shown = Command::new(bin("portcullis"))
        .args(["audit", "show", "--decision-id", id, "--config"])
        .arg(&gw.config.path)
        .output()
        .unwrap();
    let shown = String::from_utf8_lossy(&shown.stdout).into_owned();
    let found: Vec<Value> = shown.lines().filter_map(|l| serde_json::from_str(l).ok()).collect();
    assert!(
        !found.is_empty() && found.iter().all(|r| r["decision_id"] == id),
        "{shown}"
    );
    let bogus = Command::new(bin("portcullis"))
        .args(["audit", "show", "--kind", "bogus", "--config"])
        .arg(&gw.config.path)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&bogus.stderr);
    assert_eq!(bogus.status.code(), Some(2), "{err}");
    assert!(err.contains("pin_drift"), "the error lists the kinds: {err}");
}
