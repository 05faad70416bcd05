//! The command line: config validation with file/key/reason, exit codes,
//! `init`, `demo`, and `--help` everywhere.
use std::process::Command;

use portcullis_e2e::{bin, demo_server_entry, procs::write_config};

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

#[test]
fn init_writes_a_config_that_validates_and_refuses_to_overwrite() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().to_str().unwrap();
    let (code, out, err) = portcullis(&["init", d]);
    assert_eq!(code, 0, "{out}{err}");
    let path = dir.path().join("portcullis.toml");
    let (code, out, _) = portcullis(&["check-config", "--config", path.to_str().unwrap()]);
    assert_eq!(code, 0, "{out}");
    let (code, _, err) = portcullis(&["init", d]);
    assert_eq!(code, 1);
    assert!(err.contains("already exists"), "{err}");
    let (code, _, _) = portcullis(&["init", d, "--force"]);
    assert_eq!(code, 0);
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
    ] {
        let (code, out, _) = portcullis(&cmd);
        assert_eq!(code, 0, "{cmd:?}");
        assert!(out.contains("Usage:"), "{cmd:?}: {out}");
    }
}
