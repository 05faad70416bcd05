//! The command line: config validation with file/key/reason (every problem of a file at once), exit codes,
//! `init` (and the walkthrough init → run → connect), `demo`, and `--help` everywhere.
use std::process::Command;

use portcullis_e2e::{
    bin,
    clients::{self, Revision},
    demo_server_entry,
    procs::{GatewayProc, TempConfig, write_config},
};
use serde_json::json;

fn portcullis(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(bin("portcullis")).args(args).output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn check_config_accepts_good_and_names_the_problem_in_bad() {
    let good = write_config(&demo_server_entry("demo", ""));
    let (code, out, _) = portcullis(&["check-config", "--config", good.path.to_str().unwrap()]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("server demo: stdio"), "{out}");

    let dup = write_config(&format!(
        "{}{}",
        demo_server_entry("demo", ""),
        demo_server_entry("demo", "")
    ));
    let (code, _, err) = portcullis(&["check-config", "--config", dup.path.to_str().unwrap()]);
    assert_eq!(code, 2, "config errors exit 2: {err}");
    assert!(
        err.contains("portcullis.toml: servers[1].name: server name `demo` is used twice"),
        "{err}"
    );

    let (code, _, err) = portcullis(&["check-config", "--config", "/no/such/file.toml"]);
    assert_eq!(code, 2);
    assert!(
        err.contains("/no/such/file.toml") && err.contains("cannot read"),
        "{err}"
    );
}

/// One run lists every problem of a file, numbered, each with the file and its key.
#[test]
fn check_config_reports_every_problem_of_a_file_at_once() {
    let bad = write_config(&format!(
        "[listen]\nhttp = \"nope\"\n{}{}[[servers]]\nname = \"web\"\nurl = \"ftp://x\"\n",
        demo_server_entry("demo", ""),
        demo_server_entry("demo", "")
    ));
    let file = bad.path.to_str().unwrap();
    let (code, out, err) = portcullis(&["check-config", "--config", file]);
    assert_eq!(code, 2, "config errors exit 2: {out}{err}");
    assert!(err.contains(&format!("{file}: 3 problems;")), "{err}");
    for line in [
        format!("  1. {file}: listen.http: `nope` is not an address like 127.0.0.1:8080"),
        format!("  2. {file}: servers[1].name: server name `demo` is used twice; names must be unique"),
        format!("  3. {file}: servers[2].url: must be an http:// or https:// URL"),
    ] {
        assert!(err.contains(&line), "{line:?} in:\n{err}");
    }
}

#[test]
fn init_writes_a_config_that_validates_and_refuses_to_overwrite() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().to_str().unwrap();
    let (code, out, err) = portcullis(&["init", d]);
    assert_eq!(code, 0, "{out}{err}");
    let path = dir.path().join("portcullis.toml");
    let (code, out, _) = portcullis(&["check-config", "--config", path.to_str().unwrap()]);
    assert_eq!(code, 0, "{out}");
    let mode = std::os::unix::fs::PermissionsExt::mode(&std::fs::metadata(&path).unwrap().permissions());
    assert_eq!(mode & 0o777, 0o600, "the config is readable by its owner only");
    let text = std::fs::read_to_string(&path).unwrap();
    assert!(
        text.contains("reason_argument = true"),
        "desktop hosts can give a reason out of the box"
    );
    let (code, _, err) = portcullis(&["init", d]);
    assert_eq!(code, 1);
    assert!(err.contains("already exists"), "{err}");
    let (code, _, _) = portcullis(&["init", d, "--force"]);
    assert_eq!(code, 0);
}

/// The README walkthrough: `init`, `run`, and a desktop host through `connect` with the
/// agent SVID `init` issued — mutual TLS and the tier policies work out of the box.
#[tokio::test]
async fn init_then_run_then_connect_with_the_issued_svid() {
    let dir = tempfile::tempdir().unwrap();
    let (code, out, err) = portcullis(&["init", dir.path().to_str().unwrap()]);
    assert_eq!(code, 0, "{out}{err}");
    let path = dir.path().join("portcullis.toml");
    let text = std::fs::read_to_string(&path)
        .unwrap()
        .replace("127.0.0.1:8080", "127.0.0.1:0")
        .replace("127.0.0.1:9443", "127.0.0.1:0")
        .replace("wait_secs = 120", "wait_secs = 0");
    std::fs::write(&path, text).unwrap();
    let gw = GatewayProc::start_file(TempConfig { dir, path });
    assert!(gw.url.starts_with("https://"), "{}", gw.url);
    let pki = gw.config.dir.path().join("pki");
    let (cert, key, ca) = (pki.join("agent.pem"), pki.join("agent.key"), pki.join("ca/ca.pem"));
    let flags = [
        "--cert",
        cert.to_str().unwrap(),
        "--key",
        key.to_str().unwrap(),
        "--ca",
        ca.to_str().unwrap(),
    ];
    let (client, _) = clients::connect_bridge(&gw.url, &flags, Revision::Legacy).await;
    let tools = clients::tool_names(&client).await;
    assert!(tools.contains(&"search_docs".to_string()), "{tools:?}");
    let mut params = rmcp::model::CallToolRequestParams::new("search_docs")
        .with_arguments(json!({"query": "refund"}).as_object().unwrap().clone());
    let mut meta = rmcp::model::RequestMetaObject::default();
    meta.insert("io.portcullis/reason".into(), json!("a customer asked about refunds"));
    rmcp::model::RequestParamsMeta::set_meta(&mut params, meta);
    let found = client
        .call_tool(params)
        .await
        .expect("a read call with a reason is allowed");
    assert!(clients::text(&found).contains("handbook-001"));
    let denied = clients::call(&client, "delete_record", json!({"record_id": "r1"})).await;
    let denied = denied.expect_err("a write without approval is denied").to_string();
    assert!(denied.contains("approval required"), "{denied}");
    client.cancel().await.unwrap();
}

#[test]
fn demo_runs_its_script_and_exits_zero() {
    let (code, out, err) = portcullis(&["demo"]);
    assert_eq!(code, 0, "stdout:\n{out}\nstderr:\n{err}");
    assert!(out.contains("All demo steps behaved as expected."), "{out}");
    assert!(!out.contains('✘'), "{out}");
}

#[test]
fn every_command_has_help() {
    for cmd in [
        vec!["--help"],
        vec!["run", "--help"],
        vec!["stdio", "--help"],
        vec!["check-config", "--help"],
        vec!["init", "--help"],
        vec!["demo", "--help"],
        vec!["ca", "init", "--help"],
        vec!["ca", "issue", "--help"],
        vec!["connect", "--help"],
        vec!["why", "--help"],
        vec!["policy", "explain", "--help"],
        vec!["completions", "--help"],
        vec!["man", "--help"],
    ] {
        let (code, out, _) = portcullis(&cmd);
        assert_eq!(code, 0, "{cmd:?}");
        assert!(out.contains("Usage:"), "{cmd:?}: {out}");
    }
    // The main commands show examples.
    for cmd in ["run", "stdio", "init", "connect", "why", "check-config", "demo"] {
        let (_, out, _) = portcullis(&[cmd, "--help"]);
        assert!(out.contains("Example"), "`{cmd} --help` has an example: {out}");
    }
    let (_, out, _) = portcullis(&["--help"]);
    assert!(out.contains("Getting started:"), "{out}");
}

/// Completion scripts and manual pages come from the same definitions as `--help`.
#[test]
fn completions_and_man_pages_are_generated() {
    let (code, out, err) = portcullis(&["completions", "bash"]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("_portcullis()") && out.contains("check-config"), "{out}");
    let (code, out, _) = portcullis(&["completions", "zsh"]);
    assert_eq!(code, 0);
    assert!(out.starts_with("#compdef portcullis"), "{out}");
    let (code, _, err) = portcullis(&["completions", "tcsh"]);
    assert_eq!(code, 2, "an unknown shell is a usage error: {err}");

    let (code, out, err) = portcullis(&["man"]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains(".TH portcullis 1") && out.contains("stdio"), "{out}");
    let dir = tempfile::tempdir().unwrap();
    let (code, out, err) = portcullis(&["man", "--out-dir", dir.path().to_str().unwrap()]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("manual pages into"), "{out}");
    let why = std::fs::read_to_string(dir.path().join("portcullis-why.1")).unwrap();
    assert!(why.contains("DECISION_ID"), "{why}");
    assert!(dir.path().join("portcullis.1").is_file());
}

#[test]
fn ca_init_and_issue_write_files_and_explain_mistakes() {
    let dir = tempfile::tempdir().unwrap();
    let ca = dir.path().join("ca");
    let ca = ca.to_str().unwrap();
    let out = dir.path().join("certs/agent");
    let out = out.to_str().unwrap();
    let init = ["ca", "init", "--dir", ca, "--trust-domain", "example.org"];
    let (code, stdout, err) = portcullis(&init);
    assert_eq!(code, 0, "{err}");
    assert!(stdout.contains("ca.pem"), "{stdout}");
    let (code, _, err) = portcullis(&init);
    assert_eq!(code, 1);
    assert!(err.contains("already exists") && err.contains("--force"), "{err}");
    let (code, _, err) = portcullis(&[&init[..], &["--force"]].concat());
    assert_eq!(code, 0, "{err}");

    let issue = |id: &str, ttl: &str, ca_dir: &str| {
        portcullis(&[
            "ca",
            "issue",
            "--dir",
            ca_dir,
            "--spiffe-id",
            id,
            "--ttl",
            ttl,
            "--out",
            out,
        ])
    };
    let (code, _, err) = issue("spiffe://example.org/agent/x", "15m", ca);
    assert_eq!(code, 0, "{err}");
    let key = std::fs::metadata(format!("{out}.key")).unwrap();
    assert_eq!(
        std::os::unix::fs::PermissionsExt::mode(&key.permissions()) & 0o777,
        0o600
    );
    let pem = std::fs::read_to_string(format!("{out}.pem")).unwrap();
    assert!(pem.contains("BEGIN CERTIFICATE"));

    let (code, _, err) = issue("spiffe://other.org/agent/x", "15m", ca);
    assert_eq!(code, 1);
    assert!(err.contains("outside this CA's trust domain `example.org`"), "{err}");
    let (code, _, err) = issue("https://example.org/agent", "15m", ca);
    assert_eq!(code, 2);
    assert!(err.contains("spiffe://"), "{err}");
    let (code, _, err) = issue("spiffe://example.org/agent/x", "15", ca);
    assert_eq!(code, 2);
    assert!(err.contains("90s, 15m, 24h"), "{err}");
    let missing = dir.path().join("nope");
    let (code, _, err) = issue("spiffe://example.org/agent/x", "15m", missing.to_str().unwrap());
    assert_eq!(code, 1);
    assert!(err.contains("no dev CA") && err.contains("ca init"), "{err}");
}

/// check-config loads what `run` loads (the front's certificate, the policy files), so a
/// missing certificate or a policy glob that matches nothing fails both, with exit code 2
/// and every such problem named by its key.
#[test]
fn check_config_and_run_fail_alike_on_files_the_config_names() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().to_str().unwrap();
    let (code, out, err) = portcullis(&["init", d]);
    assert_eq!(code, 0, "{out}{err}");
    let path = dir.path().join("portcullis.toml");
    let text = std::fs::read_to_string(&path)
        .unwrap()
        .replace("127.0.0.1:8080", "127.0.0.1:0")
        .replace("127.0.0.1:9443", "127.0.0.1:0")
        .replace("cert = \"pki/gateway.pem\"", "cert = \"pki/missing.pem\"")
        .replace("cedar = [\"policies/*.cedar\"]", "cedar = [\"nothing/*.cedar\"]");
    std::fs::write(&path, text).unwrap();
    let config = path.to_str().unwrap();
    for command in ["check-config", "run"] {
        let (code, out, err) = portcullis(&[command, "--config", config]);
        assert_eq!(code, 2, "{command}: {out}{err}");
        assert!(
            err.contains("listen.tls: cannot read PEM file") && err.contains("missing.pem"),
            "{command}: {err}"
        );
        assert!(
            err.contains("policy: ") && err.contains("no policy files match"),
            "{command}: {err}"
        );
    }
    // `stdio` serves no HTTP front: it fails alike on the policy files, not on the front's TLS.
    let (code, out, err) = portcullis(&["stdio", "--config", config]);
    assert_eq!(code, 2, "stdio: {out}{err}");
    assert!(
        err.contains("no policy files match") && !err.contains("listen.tls"),
        "stdio: {err}"
    );
}

/// Logs written to a pipe or a file carry no terminal colour codes (the gateway's and the
/// demo server's: the gateway captures a child's stderr into its own log).
#[test]
fn logs_to_a_pipe_have_no_colour_codes() {
    use std::io::{BufRead, BufReader};
    let cfg = write_config(&format!(
        "[listen]\nhttp = \"127.0.0.1:0\"\n{}",
        demo_server_entry("demo", "")
    ));
    for (program, args) in [
        ("portcullis", vec!["run", "--config", cfg.path.to_str().unwrap()]),
        ("portcullis-demo-server", vec!["--http", "127.0.0.1:0"]),
    ] {
        let mut child = Command::new(bin(program))
            .args(&args)
            .env("RUST_LOG", "info")
            .env_remove("NO_COLOR")
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let stderr = child.stderr.take().unwrap();
        let line = BufReader::new(stderr)
            .lines()
            .map_while(Result::ok)
            .find(|l| l.contains("listening on"));
        let _ = child.kill();
        let _ = child.wait();
        let line = line.unwrap_or_else(|| panic!("{program} logged that it listens"));
        assert!(!line.contains('\u{1b}'), "{program}: no ANSI escape in {line:?}");
    }
}

/// A start that fails after the audit log is open (here: a result-signing key file that is
/// not there) records nothing: no "gateway started" for a gateway that never ran.
#[test]
fn a_failed_start_records_no_gateway_started() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().to_str().unwrap();
    let (code, out, err) = portcullis(&["init", d]);
    assert_eq!(code, 0, "{out}{err}");
    let path = dir.path().join("portcullis.toml");
    let config = path.to_str().unwrap();
    let text = std::fs::read_to_string(&path)
        .unwrap()
        .replace("127.0.0.1:8080", "127.0.0.1:0")
        .replace("127.0.0.1:9443", "127.0.0.1:0");
    std::fs::write(
        &path,
        format!("{text}\n[attestation]\nreceipt_key = \"keys/missing.key\"\n"),
    )
    .unwrap();
    let (code, _, err) = portcullis(&["run", "--config", config]);
    assert_ne!(code, 0, "the start fails: {err}");
    assert!(err.contains("missing.key"), "{err}");
    let (code, out, err) = portcullis(&["audit", "show", "--config", config, "--kind", "config_change"]);
    assert_eq!(code, 0, "{err}");
    assert!(
        !out.contains("gateway started"),
        "a failed start is not recorded as a start:\n{out}"
    );
    // The same config without the bad key starts and is recorded once.
    std::fs::write(&path, text).unwrap();
    let gw = GatewayProc::start_file(TempConfig {
        dir,
        path: path.clone(),
    });
    // (read beside the running gateway: dropping it removes its directory)
    let (_, out, _) = portcullis(&["audit", "show", "--config", config, "--kind", "config_change"]);
    assert_eq!(out.matches("gateway started").count(), 1, "{out}");
    drop(gw);
}

/// `--key` (public keys trusted for signatures) belongs to `audit verify` alone: the reading
/// commands would ignore it, so they refuse it rather than pretend to check anything.
#[test]
fn only_audit_verify_takes_key() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("log");
    std::fs::create_dir_all(&log).unwrap();
    let key = dir.path().join("k.pub");
    let (log, key) = (log.to_str().unwrap(), key.to_str().unwrap());
    for command in [
        vec!["audit", "tail", "--dir", log, "--key", key],
        vec!["audit", "show", "--dir", log, "--key", key],
        vec!["audit", "export", "--dir", log, "--key", key],
        vec!["audit", "prove", "--dir", log, "0", "--key", key],
    ] {
        let (code, _, err) = portcullis(&command);
        assert_eq!(code, 2, "{command:?}: {err}");
        assert!(err.contains("unexpected argument '--key'"), "{command:?}: {err}");
    }
    let (code, _, err) = portcullis(&["audit", "verify", "--dir", log, "--key", key]);
    assert!(!err.contains("unexpected argument"), "verify takes --key: {err}");
    assert_ne!(code, 2, "{err}");
}

/// `init --force` keeps what it replaces (`FILE.bak-<time>`, saying so); `init --renew`
/// re-issues only the SVIDs, from the same CA, and prints their new expiry.
#[test]
fn init_force_backs_up_and_renew_reissues_only_the_svids() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().to_str().unwrap();
    let (code, out, err) = portcullis(&["init", d]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("valid until 20"), "{out}");
    let config = dir.path().join("portcullis.toml");
    let tiers = dir.path().join("policies/tiers.cedar");
    let edited = format!("{}\n# my edit\n", std::fs::read_to_string(&config).unwrap());
    std::fs::write(&config, &edited).unwrap();
    let ca_before = std::fs::read(dir.path().join("pki/ca/ca.pem")).unwrap();
    let agent_before = std::fs::read(dir.path().join("pki/agent.pem")).unwrap();

    let (code, out, err) = portcullis(&["init", d, "--renew"]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("renewed") && out.contains("valid until 20"), "{out}");
    assert_eq!(
        std::fs::read_to_string(&config).unwrap(),
        edited,
        "--renew leaves the config alone"
    );
    assert_eq!(
        std::fs::read(dir.path().join("pki/ca/ca.pem")).unwrap(),
        ca_before,
        "the CA is kept"
    );
    assert_ne!(
        std::fs::read(dir.path().join("pki/agent.pem")).unwrap(),
        agent_before,
        "a new agent SVID"
    );

    let (code, out, err) = portcullis(&["init", d, "--force"]);
    assert_eq!(code, 0, "{out}{err}");
    let backups: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .filter_map(Result::ok)
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with("portcullis.toml.bak-"))
        .collect();
    assert_eq!(backups.len(), 1, "{backups:?}");
    let backup = dir.path().join(&backups[0]);
    assert_eq!(
        std::fs::read_to_string(&backup).unwrap(),
        edited,
        "the edited config is kept"
    );
    assert!(out.contains(&format!("backed up {}", config.display())), "{out}");
    assert!(
        !out.contains("tiers.cedar to"),
        "an unchanged file needs no backup: {out}"
    );
    let mode = std::os::unix::fs::PermissionsExt::mode(&std::fs::metadata(&backup).unwrap().permissions());
    assert_eq!(mode & 0o777, 0o600, "the backup is as private as the config");
    assert!(tiers.exists());

    let empty = tempfile::tempdir().unwrap();
    let (code, _, err) = portcullis(&["init", empty.path().to_str().unwrap(), "--renew"]);
    assert_eq!(code, 1, "{err}");
    assert!(
        err.contains("has no dev CA") && err.contains("portcullis init"),
        "{err}"
    );
}

/// Common mistakes are reported once, in words: a cause an outer message already quotes is
/// not repeated, a config that cannot be read names no key, and a relative config path that
/// is not there says from which directory it was taken.
#[test]
fn errors_are_said_once() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().to_str().unwrap();
    let (code, out, err) = portcullis(&["init", d]);
    assert_eq!(code, 0, "{out}{err}");
    let path = dir.path().join("portcullis.toml");
    let text = std::fs::read_to_string(&path).unwrap();
    std::fs::write(
        &path,
        format!("{text}\n[attestation]\nreceipt_key = \"keys/missing.key\"\n"),
    )
    .unwrap();
    let (code, _, err) = portcullis(&["run", "--config", path.to_str().unwrap()]);
    assert_ne!(code, 0);
    assert_eq!(err.matches("No such file or directory").count(), 1, "said once: {err}");

    let (code, _, err) = portcullis(&["check-config", "--config", "no-such-portcullis.toml"]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("no-such-portcullis.toml: cannot read the file"), "{err}");
    assert!(!err.contains(": -:"), "{err}");
    assert!(err.contains("relative path, taken from the current directory"), "{err}");

    let (code, _, err) = portcullis(&["audit", "verify", "--dir", "/no/such/log"]);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("no such directory"), "{err}");
    assert!(!err.contains("entity not found"), "{err}");
}
