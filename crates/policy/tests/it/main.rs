//! Integration tests of the authorise stage, in one test binary: the shared engine
//! suite, fault injection (T14), properties of decisions and of the index, reload,
//! shadow, explain and fixtures.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "test helpers and fault fakes outside #[test] functions; a failure should fail the test"
)]
mod faults;
mod index;
mod operations;
mod properties;
mod suite;
mod support;
