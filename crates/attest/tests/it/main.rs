//! Integration tests of the attest crate through its public API, in one test binary:
//! the poisoned-description corpus (T7), RFC 8785 vectors, Ed25519 edge cases and property
//! tests of sign → parse → canonicalise → verify (T13).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "test helpers outside #[test] functions; a failure should fail the test"
)]
mod batch_receipts;
mod corpus;
mod curve_points;
mod ed25519;
mod properties;
mod rfc8785;
