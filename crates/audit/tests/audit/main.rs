//! Integration tests of portcullis-audit, one binary (ripgrep style). Threat
//! tests are named after docs/THREATS.md (`t15_…`).
#![allow(
    clippy::expect_used,
    clippy::panic,
    reason = "test helpers: a failed expectation is a failed test"
)]

mod crash;
mod faults;
mod file_store;
mod fuzz_recovery;
mod group_commit;
mod keys;
mod led_commit;
mod postgres;
mod prealloc;
mod proofs;
mod records;
mod support;
mod tail;
mod tamper;
mod vectors;
