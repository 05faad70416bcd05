//! Seed corpora and byte-level mutations for the fuzz harnesses: every seed file of a
//! harness, and a proptest strategy that picks one and applies a few byte flips,
//! truncations, insertions of interesting tokens, deletions and splices with another seed.
use std::path::Path;

use proptest::prelude::*;
use proptest::sample::Index;

/// The seed files of `harness` (`testdata/fuzz-seeds/<harness>/`), sorted by name.
pub fn seeds(harness: &str) -> Vec<(String, Vec<u8>)> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("testdata/fuzz-seeds")
        .join(harness);
    let mut out: Vec<(String, Vec<u8>)> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|entry| entry.unwrap().path())
        .map(|path| {
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            (name, std::fs::read(&path).unwrap())
        })
        .collect();
    out.sort();
    assert!(out.len() >= 10, "the `{harness}` seed corpus is missing");
    out
}

/// Tokens that tend to matter to a JSON parser: structure, escapes, folded keys, numbers.
const TOKENS: &[&str] = &[
    "{",
    "}",
    "[",
    "]",
    ",",
    ":",
    "\"",
    "\\",
    "\\ud800",
    "\\udc00",
    "\\u0000",
    "\\u004e",
    "\"Name\":1,",
    "\"name\":\"x\",",
    "\u{17f}",
    "\u{212a}",
    "1e999",
    "-0",
    "9007199254740993",
    "null",
    "=?base64?",
    "?=",
];

/// One change to a byte string.
#[derive(Debug, Clone)]
pub enum Op {
    Flip(Index, u8),
    Truncate(Index),
    Insert(Index, Vec<u8>),
    Delete(Index, usize),
    /// Keep up to this point, then continue with another seed from its own point.
    Splice(Index, Index, Index),
}

fn op() -> impl Strategy<Value = Op> {
    let token = prop_oneof![
        3 => prop::sample::select(TOKENS).prop_map(|t| t.as_bytes().to_vec()),
        1 => prop::collection::vec(any::<u8>(), 1..8),
    ];
    prop_oneof![
        4 => (any::<Index>(), 1u8..=255).prop_map(|(i, x)| Op::Flip(i, x)),
        1 => any::<Index>().prop_map(Op::Truncate),
        3 => (any::<Index>(), token).prop_map(|(i, t)| Op::Insert(i, t)),
        2 => (any::<Index>(), 1usize..16).prop_map(|(i, n)| Op::Delete(i, n)),
        1 => (any::<Index>(), any::<Index>(), any::<Index>()).prop_map(|(a, s, b)| Op::Splice(a, s, b)),
    ]
}

/// Applies `ops` to `bytes`; splices draw from `seeds`.
pub fn apply(mut bytes: Vec<u8>, ops: &[Op], seeds: &[(String, Vec<u8>)]) -> Vec<u8> {
    for op in ops {
        let at = |i: &Index, len: usize| if len == 0 { 0 } else { i.index(len + 1) };
        match op {
            Op::Flip(i, x) if !bytes.is_empty() => {
                let i = i.index(bytes.len());
                bytes[i] ^= x;
            }
            Op::Flip(..) => {}
            Op::Truncate(i) => bytes.truncate(at(i, bytes.len())),
            Op::Insert(i, token) => {
                let i = at(i, bytes.len());
                bytes.splice(i..i, token.iter().copied());
            }
            Op::Delete(i, n) => {
                let i = at(i, bytes.len());
                let end = (i + n).min(bytes.len());
                bytes.drain(i..end);
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

/// A seed of `seeds`, changed by one to four mutations.
pub fn mutated(seeds: Vec<(String, Vec<u8>)>) -> impl Strategy<Value = Vec<u8>> {
    let n = seeds.len();
    (0..n, prop::collection::vec(op(), 1..5)).prop_map(move |(i, ops)| apply(seeds[i].1.clone(), &ops, &seeds))
}
