//! T22, parser differentials: a message must mean the same to the gateway as to a server
//! whose decoder matches keys case-insensitively (Go's `encoding/json`). Refusals of each
//! variant (`name`+`Name`, `arguments`+`Arguments`, `argumentſ`, Kelvin-sign keys, at the
//! params level and nested in `arguments`); property tests that no accepted object has two
//! keys that fold equal and that, for every accepted message, a Go-style decoder sees the
//! same method, tool name and arguments as the gateway. The Go-style decoder is checked
//! against answers recorded from Go itself (`testdata/go`).
#![allow(
    clippy::unwrap_used,
    reason = "test helpers outside #[test] functions; a failure should fail the test"
)]
mod go;
mod properties;
mod refusals;
