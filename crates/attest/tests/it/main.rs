//! Integration tests of the attest crate through its public API, in one test binary:
//! the poisoned-description corpus (T7).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "test helpers outside #[test] functions; a failure should fail the test"
)]
mod corpus;
