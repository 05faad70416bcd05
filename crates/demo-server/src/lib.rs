//! `portcullis-demo-server`: a small MCP server with deterministic fake data, used by
//! `portcullis demo`, the README walkthrough and the test suite.
//!
//! Five demo tools cover the risk tiers (`search_docs` read, `lookup_customer` and `query`
//! read-sensitive — `query` runs SQL with the connection string the gateway's broker gives
//! it — `send_message` and `delete_record` write), plus one prompt and two
//! resources. With `DemoOptions::test_tools` it also lists tools that probe a gateway's relay
//! (echo, environment, progress, logging, sampling, elicitation, roots, crash, hang, garbage,
//! list-changed). It serves MCP over stdio or Streamable HTTP(S, optionally mutual TLS) and speaks both the 2025-11-25
//! `initialize` lifecycle and the stateless 2026-07-28 revision.
#![forbid(unsafe_code)]

mod attack_tools;
mod catalog;
mod client_requests;
mod data;
mod demo_tools;
mod http;
mod https;
mod prompts;
mod query_tool;
mod resources;
mod server;
mod stdio;
mod test_tools;

use std::{net::SocketAddr, path::PathBuf};

pub use catalog::DemoTool;
pub use https::HttpsOptions;
pub use server::{Channel, DemoServer};
pub use test_tools::{CRASH_EXIT_CODE, GARBAGE_LINE};

/// What the demo server exposes.
#[derive(Debug, Clone, Default)]
pub struct DemoOptions {
    /// Also list the test tools (echo, get_env, progress, log, sample, elicit, roots, crash,
    /// hang, garbage, notify_list_changed, notifications_seen, flood).
    pub test_tools: bool,
    /// List the rug-pull tool `fetch_weather`, whose description turns hostile after this
    /// many calls (T8 tests).
    pub rug_pull_after: Option<u32>,
    /// List the poisoned tool corpus (T7 tests).
    pub poisoned_tools: bool,
    /// Append one line (the tool's name) to this file for every `tools/call` received, before
    /// the tool runs: tests count what reached the server (the fault matrix's "zero
    /// forwarded"). Several server processes may share one file (each line is one append).
    pub call_log: Option<PathBuf>,
}

/// Serve MCP over stdin/stdout until the client closes stdin.
pub async fn serve_stdio(opts: DemoOptions) -> anyhow::Result<()> {
    stdio::serve(opts).await
}

/// Serve MCP over Streamable HTTP at `http://ADDR/mcp` until the process ends.
pub async fn serve_http(addr: SocketAddr, opts: DemoOptions) -> anyhow::Result<()> {
    http::serve(addr, opts).await
}

/// Serve MCP over Streamable HTTPS at `https://ADDR/mcp` (mutual TLS when
/// `tls.client_ca` is set) until the process ends.
pub async fn serve_https(addr: SocketAddr, opts: DemoOptions, tls: HttpsOptions) -> anyhow::Result<()> {
    https::serve(addr, opts, tls).await
}
