//! Integration tests of portcullis-broker, one binary (ripgrep style): rule matching, each
//! source against the real thing (PostgreSQL on `DATABASE_URL`, a token endpoint served by
//! axum on loopback, files and the environment), and that no secret reaches a `Debug`
//! output, an error message or a log line.
#![allow(
    clippy::expect_used,
    clippy::panic,
    clippy::unwrap_used,
    reason = "test helpers: a failed expectation is a failed test"
)]

mod jwt;
mod postgres;
mod redaction;
mod rules;
mod secret;
mod support;
mod token_exchange;
