//! End-to-end tests: the real `portcullis` binary between real MCP clients and
//! real MCP servers. One test binary (faster to build and link than many).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "tests fail loudly"
)]
#![allow(
    deprecated,
    reason = "sampling, roots and logging are deprecated in 2026-07-28 but still relayed"
)]

mod approvals;
mod approvals_replicas;
mod attestation;
mod audit;
mod cli;
mod conformance;
mod connect;
mod credentials;
mod desktop_hosts;
mod everything;
mod failures;
mod fault_matrix;
mod hostile_upstream;
mod http_front;
mod identity;
mod limits;
mod namespacing;
mod pinned_files;
mod policy;
mod relay;
mod revisions;
mod smuggling;
mod spire;
mod stdio_front;
mod upstream_mtls;
mod why;
