//! Test kit for the end-to-end suite: find the built binaries, write configs
//! into temp dirs, start the real `portcullis` process and real upstream
//! servers, and connect real MCP clients (rmcp) to them.
//!
//! The binaries must be built first (`cargo build --workspace --bins`; the
//! README's test command does it).
#![forbid(unsafe_code)]
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "test support code fails loudly"
)]
#![allow(
    deprecated,
    reason = "sampling, roots and logging are deprecated in 2026-07-28 but still relayed; the tests exercise them"
)]

pub mod clients;
pub mod faults;
pub mod pki;
pub mod procs;
pub mod raw_http;

use std::path::PathBuf;

/// A binary built from this workspace, next to the test executable.
/// Runs `portcullis ARGS…` to completion: its exit code and stdout followed by stderr.
pub fn portcullis(args: &[&str]) -> (i32, String) {
    let out = std::process::Command::new(bin("portcullis"))
        .args(args)
        .output()
        .expect("run portcullis");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.code().unwrap_or(-1), text)
}

pub fn bin(name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("test executable path");
    // target/<profile>/deps/e2e-<hash> → target/<profile>/<name>
    let dir = exe.parent().and_then(|d| d.parent()).expect("target dir");
    let path = dir.join(name);
    assert!(
        path.is_file(),
        "{} is missing: run `cargo build --workspace --bins` before the end-to-end tests",
        path.display()
    );
    path
}

/// The repository root (for tools/peers).
pub fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("repo root")
        .to_path_buf()
}

/// `command = [...]` for the bundled demo server with its test tools.
pub fn demo_server_command() -> String {
    let exe = bin("portcullis");
    format!("[\"{}\", \"demo-server\", \"--test-tools\"]", exe.display())
}

/// A TOML `[[servers]]` entry for the demo server over stdio.
pub fn demo_server_entry(name: &str, extra: &str) -> String {
    format!(
        "[[servers]]\nname = \"{name}\"\ncommand = {}\n{extra}\n",
        demo_server_command()
    )
}
