//! Desktop hosts sharing one config (issue 17's "done when"): hosts played by the official
//! MCP Python SDK (`tests/peers/desktop_host.py`, installed into `tools/peers/python` by
//! `tools/peers/install.sh`) launch `portcullis stdio` from another working directory, two
//! at once, through a config written by `portcullis init`, and call a read tool with the
//! model-style reason argument; the audit records hold the reasons. The second `stdio`
//! relays to the first (which holds the audit log); when the first host quits, the second
//! goes on. Raw-line tests cover a holder killed mid-call and a log held by `run`.
use std::{
    io::{BufRead, BufReader, Write},
    path::{Path, PathBuf},
    process::{Child, ChildStdin, Command, Stdio},
    sync::mpsc,
    time::Duration,
};

use portcullis_e2e::{
    bin, demo_server_entry,
    procs::{GatewayProc, TempConfig, relay_policy, wait_exit, write_config},
    repo_root,
};
use serde_json::{Value, json};

/// How long one step of a host may take (a debug build starting a gateway, on 2 cores).
const STEP: Duration = Duration::from_secs(90);

fn python() -> PathBuf {
    let python = repo_root().join("tools/peers/python/bin/python");
    assert!(
        python.is_file(),
        "{} is missing: run tools/peers/install.sh (it installs the MCP Python SDK)",
        python.display()
    );
    python
}

/// One desktop host (the Python SDK) and the lines it prints.
struct PyHost {
    name: String,
    child: Child,
    stdin: ChildStdin,
    events: mpsc::Receiver<String>,
    stderr: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
}

impl PyHost {
    /// `mode`: the SDK's connect mode, `legacy` (the initialize handshake, what desktop hosts
    /// do today) or `auto` (probes `server/discover`: 2026-07-28 when the server speaks it).
    fn start(name: &str, mode: &str, config: &Path, cwd: &Path) -> Self {
        let mut child = Command::new(python())
            .arg(repo_root().join("tests/peers/desktop_host.py"))
            .args(["--portcullis", bin("portcullis").to_str().unwrap()])
            .args(["--config", config.to_str().unwrap()])
            .args(["--cwd", cwd.to_str().unwrap()])
            .args(["--name", name])
            .args(["--mode", mode])
            .current_dir(cwd)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start the Python desktop host");
        let (tx, events) = mpsc::channel();
        let stdout = child.stdout.take().unwrap();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                let _ = tx.send(line);
            }
        });
        let stderr = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let sink = stderr.clone();
        let err = child.stderr.take().unwrap();
        std::thread::spawn(move || {
            for line in BufReader::new(err).lines().map_while(Result::ok) {
                sink.lock().unwrap().push(line);
            }
        });
        let stdin = child.stdin.take().unwrap();
        Self {
            name: name.to_owned(),
            child,
            stdin,
            events,
            stderr,
        }
    }

    /// The next event, which must be `event`.
    fn expect(&mut self, event: &str) -> Value {
        let line = self.events.recv_timeout(STEP).unwrap_or_else(|_| {
            panic!(
                "host {} printed no `{event}` within {STEP:?}; its stderr:\n{}",
                self.name,
                self.stderr.lock().unwrap().join("\n")
            )
        });
        let value: Value = serde_json::from_str(&line).unwrap_or_else(|_| panic!("not JSON: {line}"));
        assert_eq!(
            value["event"],
            event,
            "host {}: {value}\nstderr:\n{}",
            self.name,
            self.stderr.lock().unwrap().join("\n")
        );
        value
    }

    fn send(&mut self, command: &str) {
        writeln!(self.stdin, "{command}").unwrap();
        self.stdin.flush().unwrap();
    }

    /// Calls the read tool and checks the answer; returns the reason it gave.
    fn call(&mut self) -> String {
        self.send("call");
        let result = self.expect("result");
        assert_eq!(result["is_error"], false, "host {}: {result}", self.name);
        assert!(
            result["text"].as_str().unwrap_or_default().contains("handbook-001"),
            "host {}: {result}",
            self.name
        );
        result["reason"].as_str().unwrap().to_owned()
    }

    fn close(mut self) {
        self.send("close");
        self.expect("closed");
        let status = wait_exit(&mut self.child, STEP);
        assert!(status.success(), "host {} exited {status}", self.name);
    }
}

impl Drop for PyHost {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A directory written by `portcullis init` (its admin API on a free port: tests run at once).
fn init_dir() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let (code, text) = portcullis_e2e::portcullis(&["init", dir.path().to_str().unwrap()]);
    assert_eq!(code, 0, "{text}");
    let path = dir.path().join("portcullis.toml");
    let config = std::fs::read_to_string(&path)
        .unwrap()
        .replace("127.0.0.1:9443", "127.0.0.1:0");
    std::fs::write(&path, config).unwrap();
    dir
}

/// The decision records of `tool` in the log of `config`.
fn decisions(config: &Path, tool: &str) -> Vec<Value> {
    let (code, text) = portcullis_e2e::portcullis(&[
        "audit",
        "show",
        "--config",
        config.to_str().unwrap(),
        "--kind",
        "decision",
        "--tool",
        tool,
    ]);
    assert_eq!(code, 0, "{text}");
    text.lines().filter_map(|l| serde_json::from_str(l).ok()).collect()
}

/// Two hosts at once through one `init` config, each launching `portcullis stdio` from
/// another directory (one with the initialize handshake, one in the stateless 2026-07-28
/// revision): both list the tools (the reason argument required), both call a read
/// tool with a reason and are answered, and the audit log holds each reason with the tier.
/// The first host then quits (its process held the log); the second goes on.
#[test]
fn two_desktop_hosts_share_one_gateway_and_their_reasons_are_audited() {
    let dir = init_dir();
    let config = dir.path().join("portcullis.toml");
    let elsewhere = tempfile::tempdir().unwrap();

    let mut first = PyHost::start("host-a", "legacy", &config, elsewhere.path());
    let ready = first.expect("ready");
    assert_eq!(ready["reason_required"], true, "{ready}");
    let mut second = PyHost::start("host-b", "auto", &config, elsewhere.path());
    let ready = second.expect("ready");
    assert_eq!(ready["reason_required"], true, "{ready}");
    assert_eq!(
        ready["protocol"], "2026-07-28",
        "the second host speaks the stateless revision: {ready}"
    );
    assert!(
        ready["tools"].as_array().unwrap().contains(&json!("search_docs")),
        "{ready}"
    );

    let mut reasons = vec![first.call(), second.call(), first.call()];
    first.close();
    reasons.push(second.call());
    second.close();

    let records = decisions(&config, "search_docs");
    for reason in &reasons {
        let record = records
            .iter()
            .find(|r| r["ext"]["caller_reason"] == json!(reason))
            .unwrap_or_else(|| panic!("no decision record with reason {reason:?}: {records:#?}"));
        assert_eq!(record["decision"], "allow", "{record}");
        assert_eq!(record["principal"]["workload"], "desktop-host", "{record}");
        assert_eq!(record["ext"]["tier"], "read", "{record}");
    }
}

/// A raw `portcullis stdio` process: lines in, lines out.
struct RawStdio {
    child: Child,
    stdin: ChildStdin,
    lines: mpsc::Receiver<Value>,
}

impl RawStdio {
    fn start(config: &Path) -> Self {
        let mut child = Command::new(bin("portcullis"))
            .args(["stdio", "--config", config.to_str().unwrap()])
            .current_dir(std::env::temp_dir())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let (tx, lines) = mpsc::channel();
        let stdout = child.stdout.take().unwrap();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if let Ok(v) = serde_json::from_str(&line) {
                    let _ = tx.send(v);
                }
            }
        });
        let stdin = child.stdin.take().unwrap();
        Self { child, stdin, lines }
    }

    fn send(&mut self, msg: Value) {
        writeln!(self.stdin, "{msg}").unwrap();
        self.stdin.flush().unwrap();
    }

    /// The answer to request `id` (other messages are skipped).
    fn answer(&mut self, id: u64) -> Value {
        loop {
            let msg = self
                .lines
                .recv_timeout(STEP)
                .unwrap_or_else(|_| panic!("no answer to request {id} within {STEP:?}"));
            if msg["id"] == json!(id) && msg.get("method").is_none() {
                return msg;
            }
        }
    }

    fn initialize(&mut self) {
        self.send(json!({"jsonrpc": "2.0", "id": 0, "method": "initialize", "params": {
            "protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "raw", "version": "1"}}}));
        let answer = self.answer(0);
        assert!(answer.get("result").is_some(), "{answer}");
        self.send(json!({"jsonrpc": "2.0", "method": "notifications/initialized"}));
    }

    fn call(&mut self, id: u64, tool: &str, args: Value) {
        self.send(
            json!({"jsonrpc": "2.0", "id": id, "method": "tools/call", "params": {"name": tool, "arguments": args}}),
        );
    }
}

impl Drop for RawStdio {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A holder killed in the middle of a relayed call: the relaying process answers that
/// call with an error at once (no hang), takes the audit log itself, repeats the host's
/// handshake and serves the next call.
#[test]
fn a_relayed_call_fails_clearly_when_the_holder_dies_and_the_session_goes_on() {
    let cfg = write_config(&format!("{}{}", relay_policy(), demo_server_entry("demo", "")));
    let mut holder = RawStdio::start(&cfg.path);
    holder.initialize();
    let mut relayed = RawStdio::start(&cfg.path);
    relayed.initialize();
    relayed.call(1, "echo", json!({"text": "through the holder"}));
    let answer = relayed.answer(1);
    assert!(answer.get("result").is_some(), "{answer}");

    relayed.call(2, "hang", json!({}));
    std::thread::sleep(Duration::from_millis(500));
    let _ = holder.child.kill();
    let _ = holder.child.wait();
    let failed = relayed.answer(2);
    assert_eq!(failed["error"]["code"], -32010, "{failed}");
    let message = failed["error"]["message"].as_str().unwrap_or_default();
    assert!(
        message.contains("stopped before answering") && message.contains("audit show"),
        "{message}"
    );

    relayed.call(3, "echo", json!({"text": "after the holder"}));
    let answer = relayed.answer(3);
    assert!(
        answer["result"].to_string().contains("after the holder"),
        "the session goes on with a new gateway: {answer}"
    );
}

/// A log held by `portcullis run` takes no stdio relays: `stdio` says what holds it and
/// how to reach that gateway instead (`connect`), and exits 1 rather than hanging.
#[test]
fn stdio_beside_a_running_gateway_says_to_use_connect() {
    let dir = init_dir();
    let path = dir.path().join("portcullis.toml");
    let text = std::fs::read_to_string(&path)
        .unwrap()
        .replace("127.0.0.1:8080", "127.0.0.1:0");
    std::fs::write(&path, text).unwrap();
    let gw = GatewayProc::start_file(TempConfig { dir, path });
    // Like a desktop host, keep its stdin open: it must exit anyway, not hang.
    let mut child = Command::new(bin("portcullis"))
        .args(["stdio", "--config", gw.config.path.to_str().unwrap()])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let status = wait_exit(&mut child, Duration::from_secs(15));
    let mut err = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut err).unwrap();
    assert_eq!(status.code(), Some(1), "{err}");
    assert!(err.contains("is held by `portcullis run`"), "{err}");
    assert!(err.contains("portcullis connect https://127.0.0.1:"), "{err}");
    let agent = gw.config.dir.path().join("pki/agent.pem");
    assert!(
        err.contains(&format!("--cert {}", canonical(&agent))),
        "the init directory's agent SVID is named: {err}"
    );
    assert!(
        !err.contains("in use by another process"),
        "said once, in plain words: {err}"
    );
}

/// `path` as the gateway prints it: absolute, symbolic links resolved.
fn canonical(path: &Path) -> String {
    std::fs::canonicalize(path).unwrap().display().to_string()
}
