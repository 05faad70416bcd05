//! Harness `fuzz_config`: the config loader (`config::parse`) on arbitrary TOML-ish text:
//! the committed seeds (`testdata/fuzz-seeds/config/`: the `init` starter config, configs
//! from the tests, near misses), then the seeds mutated (byte flips, cuts, TOML tokens,
//! splices) and configs generated from the real sections and keys with odd values.
//! Properties: nothing panics; a config either loads or is refused with problems that
//! each name a key path (`servers[2].url`) or, for a TOML error, a `line L, column C`,
//! with a reason; text that is not TOML at all is always refused at a line and column.
use std::path::Path;

use proptest::prelude::*;
use proptest::sample::Index;

use super::parse;

/// The config's top-level tables; every problem's key path starts with one of them.
const SECTIONS: &[&str] = &[
    "listen",
    "stdio",
    "limits",
    "servers",
    "policy",
    "audit",
    "attestation",
    "manifests",
];

fn seeds() -> Vec<(String, Vec<u8>)> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata/fuzz-seeds/config");
    let mut out: Vec<(String, Vec<u8>)> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .map(|path| {
            (
                path.file_name().unwrap().to_string_lossy().into_owned(),
                std::fs::read(&path).unwrap(),
            )
        })
        .collect();
    out.sort();
    assert!(out.len() >= 10, "the config seed corpus is missing");
    out
}

fn is_line_col(key: &str) -> bool {
    let Some((line, col)) = key.strip_prefix("line ").and_then(|rest| rest.split_once(", column ")) else {
        return false;
    };
    line.parse::<u32>().is_ok_and(|l| l > 0) && col.parse::<u32>().is_ok_and(|c| c > 0)
}

/// Checks every property of one text; returns whether it loaded.
fn check(text: &str) -> bool {
    let base = tempfile::tempdir().unwrap();
    let Err(error) = parse(text, "fuzz.toml", base.path()) else {
        return true;
    };
    let shown = error.to_string();
    assert!(shown.starts_with("fuzz.toml: "), "{shown}");
    for (key, reason) in error.problems() {
        assert!(!reason.trim().is_empty(), "a problem without a reason: {shown}");
        let section = key.split(['.', '[']).next().unwrap_or_default();
        assert!(
            is_line_col(key) || SECTIONS.contains(&section),
            "problem key `{key}` names neither a key nor a place: {shown}\n--- text:\n{text}"
        );
    }
    if toml::from_str::<toml::Table>(text).is_err() {
        assert!(
            error.more.is_empty() && is_line_col(&error.key),
            "a TOML error comes alone, at a place: {shown}"
        );
    }
    false
}

const TOKENS: &[&str] = &[
    "[",
    "]",
    "[[servers]]\n",
    "[listen.tls]\n",
    "=",
    "\"",
    "'''",
    "\"\"\"",
    "\n",
    "#",
    ",",
    "{",
    "}",
    "\\u",
    "\\",
    "0",
    "-1",
    "1e400",
    "99999999999999999999",
    "true",
    "\u{e9}",
    "\u{1F600}",
    "\u{0}",
    "\r",
    "\t",
];

#[derive(Debug, Clone)]
enum Op {
    Flip(Index, u8),
    Cut(Index),
    Insert(Index, &'static str),
    Delete(Index, usize),
    Splice(Index, Index, Index),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        3 => (any::<Index>(), 1u8..=255).prop_map(|(i, x)| Op::Flip(i, x)),
        1 => any::<Index>().prop_map(Op::Cut),
        4 => (any::<Index>(), prop::sample::select(TOKENS)).prop_map(|(i, t)| Op::Insert(i, t)),
        2 => (any::<Index>(), 1usize..24).prop_map(|(i, n)| Op::Delete(i, n)),
        1 => (any::<Index>(), any::<Index>(), any::<Index>()).prop_map(|(a, s, b)| Op::Splice(a, s, b)),
    ]
}

fn apply(mut bytes: Vec<u8>, ops: &[Op], seeds: &[(String, Vec<u8>)]) -> Vec<u8> {
    let at = |i: &Index, len: usize| i.index(len + 1);
    for op in ops {
        match op {
            Op::Flip(i, x) if !bytes.is_empty() => {
                let i = i.index(bytes.len());
                bytes[i] ^= x;
            }
            Op::Flip(..) => {}
            Op::Cut(i) => bytes.truncate(at(i, bytes.len())),
            Op::Insert(i, token) => {
                let i = at(i, bytes.len());
                bytes.splice(i..i, token.bytes());
            }
            Op::Delete(i, n) => {
                let i = at(i, bytes.len());
                bytes.drain(i..(i + n).min(bytes.len()));
            }
            Op::Splice(a, s, b) => {
                let other = &seeds[s.index(seeds.len())].1;
                bytes.truncate(at(a, bytes.len()));
                bytes.extend_from_slice(&other[at(b, other.len())..]);
            }
        }
    }
    bytes
}

fn mutated() -> impl Strategy<Value = String> {
    let seeds = seeds();
    (0..seeds.len(), prop::collection::vec(op(), 1..5))
        .prop_map(move |(i, ops)| String::from_utf8_lossy(&apply(seeds[i].1.clone(), &ops, &seeds)).into_owned())
}

/// A config built from the real tables and keys, with values of every TOML type.
fn generated() -> impl Strategy<Value = String> {
    let value = prop::sample::select(vec![
        "\"127.0.0.1:8080\"",
        "\"\"",
        "\"/bin/sh\"",
        "[\"/bin/sh\", \"-c\"]",
        "[]",
        "0",
        "-1",
        "65536",
        "true",
        "\"read\"",
        "\"write\"",
        "\"workload-api\"",
        "\"spiffe://example.org/a\"",
        "\"https://x/mcp\"",
        "{}",
        "{ a = \"b\" }",
        "1.5",
        "1979-05-27T07:32:00Z",
        "\"\\u00e9\"",
        "[\"workload\"]",
        "\"modern\"",
    ]);
    let key = prop::sample::select(vec![
        "http",
        "allowed_hosts",
        "require",
        "principal",
        "name",
        "command",
        "url",
        "env",
        "default_tier",
        "tools",
        "protocol",
        "shared",
        "timeout_secs",
        "headers",
        "tls",
        "manifest",
        "cedar",
        "engine",
        "require_reason",
        "path",
        "key",
        "postgres",
        "enabled",
        "audience",
        "trusted_keys",
        "scan",
        "source",
        "trust_domains",
        "max_sessions_per_principal",
        "checkpoint_interval_secs",
        "max_connections",
        "cert",
        "client_ca",
    ]);
    let table = prop::sample::select(vec![
        "[listen]",
        "[listen.tls]",
        "[stdio]",
        "[limits]",
        "[[servers]]",
        "[policy]",
        "[audit]",
        "[attestation]",
        "[manifests]",
    ]);
    let section = (table, prop::collection::vec((key, value), 0..5)).prop_map(|(t, pairs)| {
        let body: Vec<String> = pairs.iter().map(|(k, v)| format!("{k} = {v}")).collect();
        format!("{t}\n{}\n", body.join("\n"))
    });
    prop::collection::vec(section, 0..6).prop_map(|sections| sections.concat())
}

#[test]
fn fuzz_config_replays_its_seed_corpus() {
    let mut loaded = 0;
    for (name, bytes) in seeds() {
        let text = String::from_utf8(bytes).unwrap();
        let ok = check(&text);
        // Seeds named `ok-…` load as they are; `bad-…` ones are near misses.
        if name.starts_with("ok-") || name.starts_with("bad-") {
            assert_eq!(ok, name.starts_with("ok-"), "seed {name}");
        }
        loaded += usize::from(ok);
    }
    assert!(loaded >= 3, "too few seeds load");
}

proptest! {
    #[test]
    fn fuzz_config_mutated_seeds(text in mutated()) {
        check(&text);
    }

    #[test]
    fn fuzz_config_generated(text in generated()) {
        check(&text);
    }

    #[test]
    fn fuzz_config_any_text(text in "\\PC{0,200}") {
        check(&text);
    }
}
