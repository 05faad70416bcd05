//! Pinned files of interpreter-launched servers (T19) with the real binary: a `python3
//! server.py` server whose script is pinned with `portcullis manifest pin-files` starts and
//! answers; after one byte of the script changes, the next start is refused with an error
//! naming the file and both digests, the refusal is audited, and the script never runs.
use std::path::Path;

use portcullis_e2e::{
    clients::{self, Revision, call, text},
    portcullis,
    procs::{GatewayProc, relay_policy, write_config},
};
use serde_json::{Value, json};

/// The full path of python3 (the child's environment is cleared, so no `PATH` lookup there).
fn python3() -> String {
    std::env::var("PATH")
        .unwrap_or_default()
        .split(':')
        .map(|dir| Path::new(dir).join("python3"))
        .find(|p| p.is_file())
        .expect("python3 on PATH")
        .display()
        .to_string()
}

/// `initialize` on a new session: the gateway starts the server for it.
async fn initialize(url: &str) -> Value {
    reqwest::Client::new()
        .post(url)
        .header("accept", "application/json, text/event-stream")
        .json(&json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
            "protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "t", "version": "0"}}}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

#[tokio::test]
async fn t19_a_modified_script_is_not_started() {
    let config = write_config("");
    let dir = config.dir.path().to_owned();
    let script = dir.join("server.py");
    let peer = Path::new(env!("CARGO_MANIFEST_DIR")).join("peers/pinned_script_server.py");
    std::fs::copy(&peer, &script).unwrap();
    let marker = dir.join("started");
    let text_of = |pins: &str| {
        format!(
            "[listen]\nhttp = \"127.0.0.1:0\"\n{}\n[[servers]]\nname = \"script\"\ncommand = [{:?}, \"server.py\", {:?}]\ncwd = \".\"\n{pins}",
            relay_policy(),
            python3(),
            marker.display().to_string(),
        )
    };
    std::fs::write(&config.path, text_of("")).unwrap();
    let cfg = config.path.to_str().unwrap().to_owned();

    // The operator pins the script: the CLI prints the line to paste.
    let (code, out) = portcullis(&[
        "manifest",
        "pin-files",
        "--config",
        &cfg,
        "--server",
        "script",
        "--path",
        "server.py",
    ]);
    assert_eq!(code, 0, "{out}");
    let line = out
        .lines()
        .find(|l| l.starts_with("pinned_files = "))
        .expect("a TOML line")
        .to_owned();
    let pinned = format!("sha256:{}", portcullis_attest::file_sha256(&script).unwrap());
    assert_eq!(line, format!("pinned_files = {{ \"server.py\" = \"{pinned}\" }}"));
    std::fs::write(&config.path, text_of(&line)).unwrap();
    assert!(!marker.exists(), "pinning does not start the server");

    // Pinned and unchanged: the server starts and answers.
    let gw = GatewayProc::start_file(config);
    let (client, _) = clients::http(&gw.url, Revision::Legacy).await;
    let got = call(&client, "echo", json!({"ok": true})).await.unwrap();
    assert!(text(&got).contains("\"ok\": true"), "{}", text(&got));
    client.cancel().await.unwrap();
    assert!(marker.exists(), "the pinned script ran");
    std::fs::remove_file(&marker).unwrap();

    // One byte of the script changes (still a working server that would write the marker).
    let mut body = std::fs::read(&script).unwrap();
    let at = body.iter().position(|&b| b == b'A').unwrap();
    body[at] = b'a';
    std::fs::write(&script, &body).unwrap();
    let actual = format!("sha256:{}", portcullis_attest::file_sha256(&script).unwrap());

    let answer = initialize(&gw.url).await;
    let msg = answer["error"]["message"].as_str().unwrap_or_default();
    for part in ["pinned file `server.py`", &pinned, &actual, "refusing to start"] {
        assert!(msg.contains(part), "the error names {part}: {answer}");
    }
    assert!(!marker.exists(), "the modified script was never started");
    assert!(gw.logs().contains("refusing to start the server"), "{}", gw.logs());
    let (code, out) = portcullis(&["audit", "show", "--config", &cfg]);
    assert_eq!(code, 0, "{out}");
    let refused = out
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .any(|r| {
            r["kind"] == "pin_drift"
                && r["reason"]
                    .as_str()
                    .unwrap_or_default()
                    .contains("pinned file `server.py`")
        });
    assert!(refused, "the refusal is audited: {out}");

    // The CLI shows the new digest for the operator to review and re-pin.
    let (code, out) = portcullis(&["manifest", "pin-files", "--config", &cfg, "--server", "script"]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains(&actual), "{out}");
    assert!(!marker.exists(), "pin-files never starts the server");
}
