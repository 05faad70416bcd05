//! Attested calls and pinned servers (pillar 3; T7, T8, T13, T19, T20) with the real binary:
//! manifests pinned and signed by the CLI, a server that rug-pulls after N calls, a poisoned
//! tool corpus, a swapped executable, host-signed calls through `connect --sign-key` with the
//! gateway's receipts checked on the way back and offline by `verify-receipt`.
use std::path::Path;

use ed25519_dalek::SigningKey;
use portcullis_attest::{HostSigner, host::unix_now};
use portcullis_e2e::{
    bin,
    clients::{self, Revision, call, text, tool_names},
    portcullis,
    procs::{GatewayProc, TempConfig, bridge_once, relay_policy, write_config},
};
use serde_json::{Value, json};

fn path(config: &TempConfig, rel: &str) -> String {
    config.dir.path().join(rel).to_str().unwrap().to_owned()
}

/// A stdio server launched through a small script, so the pinned executable is the script:
/// editing it is swapping the server's binary.
fn server_script(dir: &Path, args: &str) -> String {
    let script = dir.join("server.sh");
    let body = format!("#!/bin/sh\nexec '{}' demo-server {args}\n", bin("portcullis").display());
    std::fs::write(&script, body).unwrap();
    let mut perms = std::fs::metadata(&script).unwrap().permissions();
    std::os::unix::fs::PermissionsExt::set_mode(&mut perms, 0o755);
    std::fs::set_permissions(&script, perms).unwrap();
    script.to_str().unwrap().to_owned()
}

/// A config with one pinned server `name` running `server.sh`, an operator key, and the
/// server's manifest pinned and signed by the CLI. `env` is the server's environment table.
fn pinned_config(script_args: &str, env: &str) -> TempConfig {
    let config = write_config("");
    let script = server_script(config.dir.path(), script_args);
    let (code, out) = portcullis(&["audit", "keygen", "--out", &path(&config, "keys/operator.key")]);
    assert_eq!(code, 0, "{out}");
    let text = format!(
        "[listen]\nhttp = \"127.0.0.1:0\"\n{}\n[manifests]\ntrusted_keys = [\"keys/operator.pub\"]\n\
         [[servers]]\nname = \"weather\"\ncommand = [\"{script}\"]\nmanifest = \"weather.json\"\nenv = {{ {env} }}\n",
        relay_policy()
    );
    std::fs::write(&config.path, text).unwrap();
    let cfg = config.path.to_str().unwrap();
    let (code, out) = portcullis(&[
        "manifest",
        "pin",
        "--config",
        cfg,
        "--server",
        "weather",
        "--out",
        &path(&config, "weather.json"),
        "--key",
        &path(&config, "keys/operator.key"),
    ]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("fetch_weather") || !script_args.contains("rug"), "{out}");
    config
}

/// The audit records of `kind`, as JSON.
fn records(config: &TempConfig, kind: &str) -> Vec<Value> {
    let (code, out) = portcullis(&["audit", "show", "--config", config.path.to_str().unwrap()]);
    assert_eq!(code, 0, "{out}");
    out.lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|r| r["kind"] == kind)
        .collect()
}

#[tokio::test]
async fn t8_a_rug_pull_after_n_calls_denies_the_next_call_and_is_audited() {
    let config = pinned_config("--rug-pull-after 3", "");
    let (code, out) = portcullis(&["manifest", "verify", "--config", config.path.to_str().unwrap()]);
    assert_eq!(code, 0, "a freshly pinned server verifies: {out}");
    let gw = GatewayProc::start_file(config);
    let (client, _) = clients::http(&gw.url, Revision::Legacy).await;
    assert!(tool_names(&client).await.contains(&"fetch_weather".to_owned()));
    for n in 1..=3 {
        let got = call(&client, "fetch_weather", json!({"city": "Oslo"})).await.unwrap();
        assert!(text(&got).contains(&format!("call {n}")), "{}", text(&got));
    }
    // The third call changed the description and announced list_changed: the fourth is denied.
    let err = call(&client, "fetch_weather", json!({"city": "Oslo"}))
        .await
        .unwrap_err();
    let msg = err.to_string();
    assert!(msg.contains("held back") && msg.contains("rug pull"), "{msg}");
    assert!(
        !tool_names(&client).await.contains(&"fetch_weather".to_owned()),
        "hidden from listings"
    );
    client.cancel().await.unwrap();

    let drift = records(&gw.config, "pin_drift");
    assert!(
        drift.iter().any(|r| r["tool"] == "fetch_weather"
            && r["reason"].as_str().unwrap().contains("rug pull")
            && r["ext"]["pinned_definition_sha256"].is_string()),
        "{drift:?}"
    );
    let denies: Vec<Value> = records(&gw.config, "decision")
        .into_iter()
        .filter(|r| r["decision"] == "deny")
        .collect();
    assert!(
        denies
            .iter()
            .any(|r| r["reason"].as_str().unwrap().starts_with("classify:")),
        "{denies:?}"
    );
}

#[tokio::test]
async fn t8_a_changed_definition_stays_denied_until_the_operator_approves_it() {
    // Pinned while honest (1000 calls away); then the server starts out hostile.
    let config = pinned_config("", "PORTCULLIS_DEMO_RUG_PULL_AFTER = \"1000\"");
    let hostile = std::fs::read_to_string(&config.path)
        .unwrap()
        .replace("AFTER = \"1000\"", "AFTER = \"0\"");
    std::fs::write(&config.path, hostile).unwrap();
    let cfg = config.path.to_str().unwrap().to_owned();
    let (code, out) = portcullis(&["manifest", "verify", "--config", &cfg]);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("DRIFT tool `fetch_weather` changed"), "{out}");

    let gw = GatewayProc::start_file(config);
    let (client, _) = clients::http(&gw.url, Revision::Legacy).await;
    let err = call(&client, "fetch_weather", json!({"city": "Oslo"}))
        .await
        .unwrap_err();
    assert!(err.to_string().contains("rug pull"), "{err}");
    client.cancel().await.unwrap();

    let key = path(&gw.config, "keys/operator.key");
    let (code, out) = portcullis(&[
        "manifest",
        "approve",
        "--config",
        &cfg,
        "--server",
        "weather",
        "--tool",
        "fetch_weather",
        "--key",
        &key,
    ]);
    assert_eq!(code, 0, "{out}");
    assert!(
        out.contains("review: tool `fetch_weather`"),
        "the approval shows the scanner's findings: {out}"
    );
    let gw = gw.restart();
    let (client, _) = clients::http(&gw.url, Revision::Legacy).await;
    let got = call(&client, "fetch_weather", json!({"city": "Oslo"})).await.unwrap();
    assert!(text(&got).contains("sunny"), "approved: {}", text(&got));
    client.cancel().await.unwrap();
}

#[tokio::test]
async fn t7_poisoned_tool_definitions_never_reach_the_client() {
    let server = format!(
        "[[servers]]\nname = \"tools\"\ncommand = [\"{}\", \"demo-server\", \"--test-tools\", \"--poisoned-tools\"]\n",
        bin("portcullis").display()
    );
    let gw = GatewayProc::start(&server);
    let (client, _) = clients::http(&gw.url, Revision::Legacy).await;
    let names = tool_names(&client).await;
    assert!(names.contains(&"echo".to_owned()), "{names:?}");
    assert!(!names.iter().any(|n| n.starts_with("poison_")), "{names:?}");
    for name in [
        "poison_important",
        "poison_ansi",
        "poison_zero_width",
        "poison_param_name",
        "poison_oversized",
    ] {
        let err = call(&client, name, json!({"a": "x"})).await.unwrap_err();
        assert!(err.to_string().contains("flagged by the scanner"), "{name}: {err}");
    }
    client.cancel().await.unwrap();
    let flagged: Vec<Value> = records(&gw.config, "pin_drift");
    for (name, what) in [
        ("poison_important", "instruction to the model"),
        ("poison_ansi", "ANSI escape"),
        ("poison_zero_width", "invisible character"),
        ("poison_param_name", "instruction to the model"),
        ("poison_oversized", "characters (limit"),
    ] {
        let r = flagged
            .iter()
            .find(|r| r["tool"] == name)
            .unwrap_or_else(|| panic!("{name}: {flagged:?}"));
        assert!(r["reason"].as_str().unwrap().contains(what), "{name}: {r}");
    }
    assert!(
        !flagged.iter().any(|r| r["tool"] == "echo"),
        "clean tools are not flagged"
    );
}

#[tokio::test]
async fn t7_in_flag_mode_findings_reach_the_policy() {
    let config = write_config("");
    let policy = config.dir.path().join("flagged.cedar");
    std::fs::write(
        &policy,
        "@id(\"allow-all\")\npermit (principal, action, resource);\n\
         @id(\"no-model-instructions\") @reason(\"the tool's description addresses the model\")\n\
         forbid (principal, action, resource) when { context.tool_findings.contains(\"hidden-instruction\") };\n",
    )
    .unwrap();
    let toml = format!(
        "[listen]\nhttp = \"127.0.0.1:0\"\n[policy]\ncedar = [\"flagged.cedar\"]\n[manifests]\nscan = \"flag\"\n\
         [[servers]]\nname = \"tools\"\ncommand = [\"{}\", \"demo-server\", \"--poisoned-tools\"]\n",
        bin("portcullis").display()
    );
    std::fs::write(&config.path, toml).unwrap();
    let gw = GatewayProc::start_file(config);
    let (client, _) = clients::http(&gw.url, Revision::Legacy).await;
    let names = tool_names(&client).await;
    assert!(
        names.contains(&"poison_oversized".to_owned()),
        "flag mode lists flagged tools: {names:?}"
    );
    let err = call(&client, "poison_important", json!({"a": "x"})).await.unwrap_err();
    assert!(err.to_string().contains("addresses the model"), "{err}");
    let got = call(&client, "poison_oversized", json!({"a": "x"})).await.unwrap();
    assert!(
        text(&got).contains("ran"),
        "a too-long description alone is allowed by this policy"
    );
    client.cancel().await.unwrap();
    assert!(
        !records(&gw.config, "pin_drift").is_empty(),
        "findings are recorded in flag mode too"
    );
}

#[tokio::test]
async fn t19_a_swapped_executable_is_refused_at_spawn_and_a_bad_manifest_stops_the_start() {
    let config = pinned_config("--test-tools", "");
    let cfg = config.path.to_str().unwrap().to_owned();
    let script = config.dir.path().join("server.sh");
    let gw = GatewayProc::start_file(config);
    let (client, _) = clients::http(&gw.url, Revision::Legacy).await;
    call(&client, "echo", json!({"ok": true})).await.unwrap();
    client.cancel().await.unwrap();

    // Swap the executable: same name, different content. The next session's spawn is refused.
    let mut body = std::fs::read_to_string(&script).unwrap();
    body.push_str("# swapped\n");
    std::fs::write(&script, body).unwrap();
    let http = reqwest::Client::new();
    let answer: Value = http
        .post(&gw.url)
        .header("accept", "application/json, text/event-stream")
        .json(&json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
            "protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "t", "version": "0"}}}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let msg = answer["error"]["message"].as_str().unwrap_or_default();
    assert!(msg.contains("refuses to start"), "{answer}");
    let (code, out) = portcullis(&["manifest", "verify", "--config", &cfg, "--offline"]);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("FAIL"), "{out}");
    let refused = records(&gw.config, "pin_drift");
    assert!(
        refused
            .iter()
            .any(|r| r["reason"].as_str().unwrap().contains("server not started")),
        "{refused:?}"
    );

    // A manifest whose signed content was altered stops the gateway from starting.
    let manifest_path = gw.config.dir.path().join("weather.json");
    let mut manifest: Value = serde_json::from_slice(&std::fs::read(&manifest_path).unwrap()).unwrap();
    manifest["manifest"]["tools"]["echo"]["tier"] = json!("write");
    std::fs::write(&manifest_path, serde_json::to_vec_pretty(&manifest).unwrap()).unwrap();
    let (code, out) = portcullis(&["check-config", "--config", &cfg]);
    assert_eq!(code, 2, "{out}");
    assert!(out.contains("does not verify"), "{out}");
}

/// A gateway whose anonymous HTTP callers must sign every call with `keys/host.key`.
fn signing_gateway() -> GatewayProc {
    signing_gateway_with("")
}

/// [`signing_gateway`] with `extra` keys in its `[attestation]` table, whose last line may
/// open another table.
fn signing_gateway_with(extra: &str) -> GatewayProc {
    let config = write_config("");
    let (code, out) = portcullis(&["audit", "keygen", "--out", &path(&config, "keys/host.key")]);
    assert_eq!(code, 0, "{out}");
    let text = format!(
        "[listen]\nhttp = \"127.0.0.1:0\"\n{}\n[[attestation.hosts]]\nworkload = \"anonymous\"\n\
         key = \"keys/host.pub\"\n[attestation]\naudience = \"https://gw.test/mcp\"\n{extra}\n{}",
        relay_policy(),
        portcullis_e2e::demo_server_entry("demo", "")
    );
    std::fs::write(&config.path, text).unwrap();
    GatewayProc::start_file(config)
}

/// A signed `tools/call` whose `iat` lies `ahead` seconds in the future (a host clock
/// ahead of the gateway's, within the allowed skew), as `connect` input lines.
fn signed_call_input(gw: &GatewayProc, ahead: u64) -> String {
    let key = portcullis_audit::LogSigner::load(&gw.config.dir.path().join("keys/host.key")).unwrap();
    let signer = HostSigner::new(SigningKey::clone(key.signing_key()), "https://gw.test/mcp").with_ttl(120);
    let mut request = json!({"jsonrpc": "2.0", "id": 2, "method": "tools/call",
        "params": {"name": "echo", "arguments": {"text": "once only"}}});
    signer
        .sign_request(&mut request, "demo", "echo", unix_now() + ahead)
        .unwrap();
    let init = json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
        "protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "t", "version": "0"}}});
    let initialized = json!({"jsonrpc": "2.0", "method": "notifications/initialized"});
    format!("{init}\n{initialized}\n{request}\n")
}

/// The answer to the signed call (id 2) of [`signed_call_input`].
fn signed_call_answer(gw: &GatewayProc, input: &str) -> Value {
    let (status, answers, err) = bridge_once(&[gw.url.as_str()], input);
    assert!(status.success(), "{err}");
    answers
        .into_iter()
        .find(|a| a["id"] == 2)
        .unwrap_or_else(|| panic!("no answer to the signed call"))
}

/// T13 across a restart: a signature consumed before the restart, issued ahead of the
/// gateway's clock (within the allowed skew), is refused after it — the replay cache is
/// restored from the audit log — while a fresh signature is accepted at once.
#[tokio::test]
async fn t13_a_signed_call_cannot_be_replayed_after_a_restart() {
    let gw = signing_gateway();
    let input = signed_call_input(&gw, 20);
    let first = signed_call_answer(&gw, &input);
    assert!(first["result"].is_object(), "{first}");
    let gw = gw.restart();
    let logs = gw.logs_with("restored from the audit log");
    assert!(logs.contains("restored from the audit log"), "{logs}");
    let replayed = signed_call_answer(&gw, &input);
    let text = replayed["error"]["message"].as_str().unwrap_or_default();
    assert!(text.contains("already used"), "a replay after the restart: {replayed}");
    let fresh = signed_call_answer(&gw, &signed_call_input(&gw, 0));
    assert!(
        fresh["result"].is_object(),
        "a fresh signature right after the restart: {fresh}"
    );
}

/// With the audit log off nothing remembers the signatures seen before a restart: every
/// signature that could have been seen (issued before the start plus the skew) is refused,
/// after the first start too (a fresh signature is accepted once that moment has passed).
#[tokio::test]
async fn t13_without_an_audit_log_a_restart_refuses_signatures_it_may_have_seen() {
    let gw = signing_gateway_with("max_skew_secs = 2\n[audit]\nenabled = false");
    let early = signed_call_answer(&gw, &signed_call_input(&gw, 0));
    assert!(
        early["error"].is_object(),
        "a fresh signature in the first seconds: {early}"
    );
    tokio::time::sleep(std::time::Duration::from_secs(4)).await;
    let input = signed_call_input(&gw, 2);
    let first = signed_call_answer(&gw, &input);
    assert!(first["result"].is_object(), "{first}");
    let gw = gw.restart();
    let replayed = signed_call_answer(&gw, &input);
    let text = replayed["error"]["message"].as_str().unwrap_or_default();
    assert!(text.contains("refuses those issued before"), "{replayed}");
}

#[tokio::test]
async fn rmcp_host_signs_through_connect_and_receipts_verify() {
    let gw = signing_gateway();
    let host_key = path(&gw.config, "keys/host.key");
    let gateway_pub = path(&gw.config, "keys/audit.pub");
    let flags = [
        "--sign-key",
        host_key.as_str(),
        "--audience",
        "https://gw.test/mcp",
        "--server",
        "demo",
        "--receipt-key",
        gateway_pub.as_str(),
    ];
    for rev in Revision::BOTH {
        let (client, _) = clients::connect_bridge(&gw.url, &flags, rev).await;
        let got = call(&client, "echo", json!({"text": "signed"})).await.unwrap();
        assert!(text(&got).contains("signed"), "{rev:?}: {}", text(&got));
        let meta = serde_json::to_value(&got.meta).unwrap();
        assert!(
            meta["io.portcullis/result-signature"]["seal"]["sig"].is_string(),
            "{meta}"
        );
        // The host's signature was verified and removed: the server never sees it.
        assert!(!text(&got).contains("io.portcullis/signature"), "{}", text(&got));
        client.cancel().await.unwrap();
    }
    // Without the key the same host is refused, and the refusal is recorded.
    let (client, _) = clients::connect_bridge(&gw.url, &[], Revision::Legacy).await;
    let err = call(&client, "echo", json!({"text": "unsigned"})).await.unwrap_err();
    assert!(err.to_string().contains("host must sign every call"), "{err}");
    client.cancel().await.unwrap();
    let denied = records(&gw.config, "decision");
    assert!(
        denied
            .iter()
            .any(|r| r["decision"] == "deny" && r["reason"].as_str().unwrap().starts_with("attest:")),
        "{denied:?}"
    );
}

#[tokio::test]
async fn t13_receipts_verify_offline_and_a_tampered_result_or_replayed_call_fails() {
    // The default: a batch receipt, proved by the seal of the outcome record's audit batch.
    let receipt = receipts_verify_offline("").await;
    assert!(receipt["seal"]["sig"].is_string(), "{receipt}");
    assert!(receipt["record"].is_string() && receipt["path"].is_array(), "{receipt}");
    assert!(receipt.get("sig").is_none(), "{receipt}");
}

#[tokio::test]
async fn t13_receipts_signed_per_result_on_request_verify_offline_too() {
    let receipt = receipts_verify_offline("receipts = \"signed\"").await;
    assert!(receipt["sig"].is_string(), "{receipt}");
    assert!(receipt.get("seal").is_none(), "{receipt}");
}

/// A signed call through a gateway with `extra` in `[attestation]`: its receipt verifies with
/// `portcullis verify-receipt`, not for a tampered result, and the call cannot be replayed.
/// Returns the receipt.
async fn receipts_verify_offline(extra: &str) -> Value {
    let gw = signing_gateway_with(extra);
    let key = portcullis_audit::LogSigner::load(&gw.config.dir.path().join("keys/host.key")).unwrap();
    let signer = HostSigner::new(SigningKey::clone(key.signing_key()), "https://gw.test/mcp");
    let mut request = json!({"jsonrpc": "2.0", "id": 2, "method": "tools/call",
        "params": {"name": "echo", "arguments": {"text": "to be receipted"}}});
    signer.sign_request(&mut request, "demo", "echo", unix_now()).unwrap();
    let init = json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
        "protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "t", "version": "0"}}});
    let initialized = json!({"jsonrpc": "2.0", "method": "notifications/initialized"});
    let input = format!("{init}\n{initialized}\n{request}\n");
    let (status, answers, err) = bridge_once(&[gw.url.as_str()], &input);
    assert!(status.success(), "{err}");
    let response = answers
        .iter()
        .find(|a| a["id"] == 2)
        .unwrap_or_else(|| panic!("{answers:?}"));
    assert!(response["result"].is_object(), "{response}");

    let dir = gw.config.dir.path();
    let (req_file, resp_file) = (dir.join("request.json"), dir.join("response.json"));
    std::fs::write(&req_file, request.to_string()).unwrap();
    std::fs::write(&resp_file, response.to_string()).unwrap();
    let gateway_pub = path(&gw.config, "keys/audit.pub");
    let verify = |resp: &Path| {
        portcullis(&[
            "verify-receipt",
            "--key",
            &gateway_pub,
            "--request",
            req_file.to_str().unwrap(),
            "--response",
            resp.to_str().unwrap(),
        ])
    };
    let (code, out) = verify(&resp_file);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("receipt ok"), "{out}");
    let batch = response["result"]["_meta"]["io.portcullis/result-signature"]
        .get("seal")
        .is_some();
    assert_eq!(out.contains("batch sealed at tree size"), batch, "{out}");
    let index = response["result"]["_meta"]["io.portcullis/result-signature"]["auditIndex"].clone();
    assert!(out.contains(&format!("audit index {index}")), "{out}");

    let mut tampered = response.clone();
    tampered["result"]["structuredContent"]["arguments"]["text"] = json!("something else");
    let tampered_file = dir.join("tampered.json");
    std::fs::write(&tampered_file, tampered.to_string()).unwrap();
    let (code, out) = verify(&tampered_file);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("altered"), "{out}");

    // The same signed call sent again is a replay.
    let (_, answers, _) = bridge_once(&[gw.url.as_str()], &input);
    let replayed = answers.iter().find(|a| a["id"] == 2).unwrap();
    assert!(
        replayed["error"]["message"]
            .as_str()
            .unwrap_or_default()
            .contains("already used"),
        "{replayed}"
    );
    response["result"]["_meta"]["io.portcullis/result-signature"].clone()
}
