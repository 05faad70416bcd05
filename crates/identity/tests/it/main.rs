//! Integration tests of the identify stage, in one binary: real TLS handshakes over
//! loopback with dev-CA certificates, and a real token issuer serving its JWKS over HTTP.
#![allow(
    clippy::unwrap_used,
    reason = "test helpers outside #[test] fns: a broken fixture should fail the test loudly"
)]
mod dev_ca;
mod federation_t16;
mod jwt_t01;
mod rotation;
mod serve_tls;
mod support;
mod svid_t16;
mod upstream;
mod workload_api;
