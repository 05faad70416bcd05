//! The audit log on the call path (T12, T15): receipts, offline verification
//! through the CLI, kill -9 under load, the PostgreSQL store shared by two gateway
//! processes and its table taken away mid-run. A full disk, EIO, a failed fsync and
//! PostgreSQL going down are rows of the fault matrix (`fault_matrix.rs`).
use std::{
    collections::BTreeMap,
    path::Path,
    process::Command,
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use portcullis_audit::{LogReader, leaf_hash, store::FileReader};
use portcullis_e2e::{
    clients::{self, Revision, call},
    demo_server_entry, portcullis,
    procs::GatewayProc,
};
use serde_json::{Value, json};

/// (audit index, leaf hash hex) from a result's receipt.
fn receipt(result: &rmcp::model::CallToolResult) -> (u64, String) {
    let meta = serde_json::to_value(&result.meta).unwrap();
    let r = &meta["io.portcullis/receipt"];
    (
        r["auditIndex"]
            .as_u64()
            .unwrap_or_else(|| panic!("no receipt in {meta}")),
        r["leafHash"].as_str().unwrap().to_owned(),
    )
}

#[tokio::test]
async fn t15_results_carry_receipts_that_prove_inclusion() {
    let gw = GatewayProc::start(&demo_server_entry("demo", ""));
    let (client, _) = clients::http(&gw.url, Revision::Legacy).await;
    let result = call(&client, "search_docs", json!({"query": "refund"})).await.unwrap();
    let (index, leaf) = receipt(&result);
    client.cancel().await.unwrap();
    let config = gw.config.path.to_str().unwrap();

    let (code, out) = portcullis(&[
        "audit",
        "show",
        "--config",
        config,
        "--from",
        &index.to_string(),
        "--to",
        &(index + 1).to_string(),
    ]);
    assert_eq!(code, 0, "{out}");
    let record: Value = serde_json::from_str(out.lines().next().unwrap()).unwrap();
    assert_eq!(record["kind"], "call");
    assert_eq!(record["tool"], "search_docs");
    assert_eq!(record["outcome"], "ok");
    assert!(!out.contains("refund"), "no bodies in the log: {out}");

    let (code, out) = portcullis(&["audit", "prove", "--config", config, &index.to_string()]);
    assert_eq!(code, 0, "{out}");
    let proof: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(proof["leaf_hash"], leaf.as_str());
    let hash = |v: &Value| portcullis_audit::Hash(hex::decode(v.as_str().unwrap()).unwrap().try_into().unwrap());
    let path: Vec<_> = proof["proof"]["path"].as_array().unwrap().iter().map(hash).collect();
    let size = proof["size"].as_u64().unwrap();
    portcullis_audit::verify_inclusion(&hash(&proof["leaf_hash"]), index, size, &path, &hash(&proof["root"]))
        .expect("inclusion proof verifies");
}

#[tokio::test]
async fn t15_audit_verify_names_the_tampered_record() {
    let mut gw = GatewayProc::start(&format!(
        "[audit]\ncheckpoint_every_records = 4\n{}",
        demo_server_entry("demo", "")
    ));
    let (client, _) = clients::http(&gw.url, Revision::Legacy).await;
    for i in 0..6 {
        call(&client, "search_docs", json!({"query": format!("q{i}")}))
            .await
            .unwrap();
    }
    client.cancel().await.unwrap();
    assert!(gw.terminate().success(), "clean shutdown");
    let config = gw.config.path.to_str().unwrap().to_owned();
    let (code, out) = portcullis(&["audit", "verify", "--config", &config]);
    assert_eq!(code, 0, "{out}");
    // The start, the result-signing key in force, then a decision and an outcome per call.
    assert!(out.starts_with("ok: 14 records"), "{out}");

    let dir = gw.config.dir.path().join("data/audit");
    let segment = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.extension().is_some_and(|e| e == "seg"))
        .unwrap();
    let mut bytes = std::fs::read(&segment).unwrap();
    // Inside the payload of an early record (16-byte file header, 12-byte frame header).
    bytes[16 + 12 + 20] ^= 0x01;
    std::fs::write(&segment, bytes).unwrap();
    let (code, out) = portcullis(&["audit", "verify", "--config", &config]);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("FAILED (first bad index"), "{out}");
}

#[tokio::test]
async fn t15_kill_9_under_load_loses_no_acknowledged_record() {
    let home = tempfile::tempdir().unwrap();
    let audit_dir = home.path().join("audit");
    let key = home.path().join("audit.key");
    let text = format!(
        "[listen]\nhttp = \"127.0.0.1:0\"\n[policy]\ncedar = [\"{}\"]\n[audit]\npath = \"{}\"\nkey = \"{}\"\n{}",
        portcullis_e2e::procs::allow_all_policy().display(),
        audit_dir.display(),
        key.display(),
        demo_server_entry("demo", "")
    );
    let acked: Arc<Mutex<BTreeMap<u64, String>>> = Arc::default();
    for round in 0..3 {
        let mut gw = GatewayProc::start_with(&text);
        let mut workers = Vec::new();
        for w in 0..4 {
            let url = gw.url.clone();
            let acked = acked.clone();
            workers.push(tokio::spawn(async move {
                let (client, _) = clients::http(&url, Revision::Legacy).await;
                let deadline = Instant::now() + Duration::from_millis(1500);
                let mut n = 0;
                while Instant::now() < deadline && n < 500 {
                    match call(&client, "search_docs", json!({"query": format!("r{round}w{w}n{n}")})).await {
                        Ok(result) => {
                            let (index, leaf) = receipt(&result);
                            acked.lock().unwrap().insert(index, leaf);
                        }
                        Err(_) => break,
                    }
                    n += 1;
                }
            }));
        }
        tokio::time::sleep(Duration::from_millis(700)).await;
        let _ = gw.child.kill(); // SIGKILL, mid-load
        let _ = gw.child.wait();
        for w in workers {
            let _ = w.await;
        }
    }
    drop(GatewayProc::start_with(&text)); // crash recovery runs at open
    let config = portcullis_e2e::procs::write_config(&text);
    let (code, out) = portcullis(&["audit", "verify", "--config", config.path.to_str().unwrap()]);
    assert_eq!(code, 0, "log verifies after 3 kill -9: {out}");
    let reader = FileReader::open(Path::new(&audit_dir)).unwrap();
    let acked = acked.lock().unwrap().clone();
    assert!(
        acked.len() > 10,
        "the load produced acknowledged calls ({})",
        acked.len()
    );
    for (index, leaf) in &acked {
        let data = reader.read(*index..index + 1).await.unwrap();
        assert_eq!(
            hex::encode(leaf_hash(&data[0]).0),
            *leaf,
            "acknowledged record {index} is in the log"
        );
    }
}

/// The PostgreSQL server of the tests that need one; `None` (with a notice) when
/// `DATABASE_URL` is not set, and the test is skipped.
pub(crate) fn database_url() -> Option<String> {
    match std::env::var("DATABASE_URL") {
        Ok(url) => Some(url),
        Err(_) => {
            eprintln!("DATABASE_URL is not set: skipping this PostgreSQL test");
            None
        }
    }
}

#[tokio::test]
async fn t15_two_gateways_share_one_postgres_log_then_verify() {
    let Some(url) = database_url() else { return };
    let schema = format!("e2e_audit_{}", std::process::id());
    let audit = format!("[audit]\npostgres = \"{url}\"\nschema = \"{schema}\"\ncheckpoint_every_records = 16\n");
    let a = GatewayProc::start(&format!("{audit}{}", demo_server_entry("demo", "")));
    // Both gateways sign with the same key (replicas share it).
    let key_dir = a.config.dir.path().join("keys");
    let b = GatewayProc::start(&format!(
        "{audit}key = \"{}\"\n{}",
        key_dir.join("audit.key").display(),
        demo_server_entry("demo", "")
    ));
    let mut tasks = Vec::new();
    for (i, url) in [a.url.clone(), b.url.clone(), a.url.clone(), b.url.clone()]
        .into_iter()
        .enumerate()
    {
        tasks.push(tokio::spawn(async move {
            let (client, _) = clients::http(&url, Revision::Legacy).await;
            for n in 0..25 {
                call(&client, "search_docs", json!({"query": format!("{i}-{n}")}))
                    .await
                    .unwrap();
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let (mut a, mut b) = (a, b);
    assert!(
        a.terminate().success() && b.terminate().success(),
        "clean shutdown writes final checkpoints"
    );
    let pubkey = key_dir.join("audit.pub");
    let (code, out) = portcullis(&[
        "audit",
        "verify",
        "--postgres",
        &url,
        "--schema",
        &schema,
        "--key",
        pubkey.to_str().unwrap(),
    ]);
    assert_eq!(code, 0, "{out}");
    // Per gateway: its start and its result-signing key; then two records per call.
    assert!(out.starts_with("ok: 204 records"), "{out}");
    let _ = Command::new("psql")
        .args([&url, "-c", &format!("DROP SCHEMA {schema} CASCADE")])
        .output();
}

#[tokio::test]
async fn t15_postgres_failure_mid_run_denies_calls() {
    let Some(url) = database_url() else { return };
    let schema = format!("e2e_audit_down_{}", std::process::id());
    let gw = GatewayProc::start(&format!(
        "[audit]\npostgres = \"{url}\"\nschema = \"{schema}\"\n{}",
        demo_server_entry("demo", "")
    ));
    let (client, _) = clients::http(&gw.url, Revision::Legacy).await;
    call(&client, "search_docs", json!({"query": "ok"}))
        .await
        .expect("log writable");
    // Take the log table away: every insert now fails, as with a lost database.
    let out = Command::new("psql")
        .args([&url, "-c", &format!("ALTER TABLE {schema}.audit_log RENAME TO gone")])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let err = call(&client, "search_docs", json!({"query": "unrecorded"}))
        .await
        .expect_err("denied");
    assert!(err.to_string().contains("audit log cannot be written"), "{err}");
    let _ = Command::new("psql")
        .args([&url, "-c", &format!("DROP SCHEMA {schema} CASCADE")])
        .output();
}

#[tokio::test]
async fn t12_body_capture_keeps_bodies_but_never_secrets() {
    let gw = GatewayProc::start(&format!(
        "[audit]\ncapture_bodies = true\n{}",
        demo_server_entry("demo", "")
    ));
    let (client, _) = clients::http(&gw.url, Revision::Legacy).await;
    let canary = "canary-secret-4f1d9a";
    call(
        &client,
        "echo",
        json!({"q": "visible-argument", "password": canary, "auth": format!("Bearer {canary}")}),
    )
    .await
    .unwrap();
    client.cancel().await.unwrap();
    let (code, out) = portcullis(&[
        "audit",
        "export",
        "--config",
        gw.config.path.to_str().unwrap(),
        "--format",
        "jsonl",
    ]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("visible-argument"), "arguments captured: {out}");
    assert!(!out.contains(canary), "no secret in the log: {out}");
    assert!(!gw.logs().contains(canary), "no secret in the gateway's own log");
}
