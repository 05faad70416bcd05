//! Every problem of a file in one run: independent mistakes are all listed, numbered,
//! each with the file and its key; a part that failed is not reported again by the parts
//! that need it; TOML syntax errors and unknown keys stop parsing and come alone.
use std::path::Path;

use super::{ConfigError, parse};

const SERVER: &str = "[[servers]]\nname = \"files\"\ncommand = [\"/bin/sh\"]\n";

fn problems(text: &str) -> ConfigError {
    parse(text, "bad.toml", Path::new("/")).expect_err(text)
}

fn keys(e: &ConfigError) -> Vec<&str> {
    e.problems().map(|(key, _)| key).collect()
}

#[test]
fn three_independent_mistakes_are_reported_in_one_run() {
    let text = format!(
        "[listen]\nhttp = \"nope\"\n\n{SERVER}default_tier = \"admin\"\n\n{SERVER}\n[[servers]]\nname = \"web\"\nurl = \"ftp://x\"\n"
    );
    let e = problems(&text);
    assert_eq!(
        keys(&e),
        [
            "listen.http",
            "servers[0].default_tier",
            "servers[1].name",
            "servers[2].url"
        ],
        "{e}"
    );
    let shown = e.to_string();
    assert!(shown.starts_with("bad.toml: 4 problems;"), "{shown}");
    for line in [
        "\n  1. bad.toml: listen.http: `nope` is not an address like 127.0.0.1:8080",
        "\n  2. bad.toml: servers[0].default_tier: unknown tier `admin`",
        "\n  3. bad.toml: servers[1].name: server name `files` is used twice; names must be unique",
        "\n  4. bad.toml: servers[2].url: must be an http:// or https:// URL",
    ] {
        assert!(shown.contains(line), "{line:?} in:\n{shown}");
    }
}

#[test]
fn every_part_is_checked_after_a_problem_in_another() {
    let text = format!(
        "[policy]\nengine = \"opa\"\n[audit]\npostgres = \"mysql://x\"\ncheckpoint_interval_secs = 0\n\
         [limits]\nmax_json_depth = 1000\n[listen]\nrequire = [\"root\"]\nsession_idle_timeout_secs = 0\n\
         {SERVER}timeout_secs = 0\nprotocol = \"2099\"\nenv = {{ \"A=B\" = \"x\" }}\n\
         [attestation]\naudience = \"\"\nreplay_capacity = 0\n[manifests]\nscan = \"loud\"\nmax_string_chars = 0\n"
    );
    let e = problems(&text);
    assert_eq!(
        keys(&e),
        [
            "policy.engine",
            "audit.postgres",
            "audit.checkpoint_interval_secs",
            "limits.max_json_depth",
            "listen.require",
            "listen.session_idle_timeout_secs",
            "servers[0].env.A=B",
            "servers[0].timeout_secs",
            "servers[0].protocol",
            "attestation.audience",
            "attestation.replay_capacity",
            "manifests.scan",
            "manifests.max_string_chars",
        ],
        "{e}"
    );
}

#[test]
fn what_needs_a_failed_part_is_not_reported_again() {
    let cases: Vec<(String, Vec<&str>)> = vec![
        // The front's TLS table failed: `require = ["workload"]` is not blamed for it.
        (
            format!("[listen]\nrequire = [\"workload\"]\n[listen.tls]\nsource = \"spire\"\n{SERVER}"),
            vec!["listen.tls.source"],
        ),
        // The trusted keys failed: the manifest they would verify is not checked.
        (
            format!("[manifests]\ntrusted_keys = [\"/no/such.pub\"]\n{SERVER}manifest = \"m.json\"\n"),
            vec!["manifests.trusted_keys[0]"],
        ),
        // The server failed: its manifest is not checked (nor missing keys reported).
        (
            "[[servers]]\nname = \"a\"\ncommand = [\"/no/such/program\"]\nmanifest = \"m.json\"\n".into(),
            vec!["servers[0].command"],
        ),
        // A bad name is reported once, and does not count as a duplicate.
        (
            "[[servers]]\nname = \"A\"\ncommand = [\"/bin/sh\"]\n[[servers]]\nname = \"A\"\ncommand = [\"/bin/sh\"]\n"
                .into(),
            vec!["servers[0].name", "servers[1].name"],
        ),
    ];
    for (text, expected) in cases {
        let e = problems(&text);
        assert_eq!(keys(&e), expected, "{e}\nfor:\n{text}");
    }
}

#[test]
fn one_problem_reads_as_one_line() {
    let e = problems("");
    assert!(e.more.is_empty());
    assert_eq!(
        e.to_string(),
        "bad.toml: servers: no servers configured; add at least one [[servers]] entry"
    );
}

#[test]
fn syntax_errors_and_unknown_keys_stop_parsing_and_come_alone() {
    for (text, key) in [
        ("[listen]\nhttp = \"nope\"\nbogus = 1\n", "line 3, column 1"),
        ("[listen]\nhttp = \"nope\"\n[[servers]\n", "line 3, column 11"),
    ] {
        let e = problems(text);
        assert_eq!(keys(&e), [key], "{e}");
    }
}

/// A position inside a multi-byte character is reported at that character, never a panic.
#[test]
fn a_position_inside_a_character_is_reported_without_panicking() {
    let text = "a = \"é\"\nb = 1\n";
    let inside = text.find('é').unwrap() + 1;
    assert_eq!(super::line_col(text, inside), "line 1, column 6");
    assert_eq!(super::line_col(text, text.len() + 10), "line 3, column 1");
}
