//! Fuzzing on stable: property harnesses over everything the mcp crate reads from the
//! wire, each replaying its committed seed corpus (`testdata/fuzz-seeds/<harness>/`) and
//! then running bounded random cases (proptest's 256 by default; `PROPTEST_CASES` asks for
//! more) made by mutating the seeds and by structure-aware generators. `fuzz_parser`: the
//! strict parser and `Message::parse`; `fuzz_headers`: the 2026-07-28 header checks.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "test helpers outside #[test] functions; a failure should fail the test"
)]
mod fuzz_headers;
mod fuzz_parser;
#[allow(dead_code, reason = "shared with the t22 binary, which uses all of it")]
#[path = "../t22/go.rs"]
mod go;
mod mutate;
