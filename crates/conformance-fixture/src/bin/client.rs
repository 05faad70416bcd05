//! The `portcullis-conformance-client` binary: the client half of the conformance suite.
//! `conformance client --command portcullis-conformance-client --scenario NAME` runs it as
//! `portcullis-conformance-client URL` with the scenario described in environment variables.

use anyhow::Context as _;
use clap::Parser;
use portcullis_conformance_fixture::client::{Invocation, run};

/// MCP client for the conformance suite's `client` mode.
#[derive(Parser)]
#[command(version)]
struct Args {
    /// The scenario's mock server URL (appended by the runner).
    url: String,
    /// Scenario name; the runner sets it in the environment.
    #[arg(long, env = "MCP_CONFORMANCE_SCENARIO")]
    scenario: String,
    /// Wire protocol version; 2026-07-28 and later use the stateless lifecycle.
    #[arg(long, env = "MCP_CONFORMANCE_PROTOCOL_VERSION")]
    protocol_version: Option<String>,
    /// Scenario data as JSON.
    #[arg(long, env = "MCP_CONFORMANCE_CONTEXT")]
    context: Option<String>,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .init();
    let context = match &args.context {
        Some(raw) => Some(serde_json::from_str(raw).context("MCP_CONFORMANCE_CONTEXT is not JSON")?),
        None => None,
    };
    let invocation = Invocation {
        url: args.url,
        scenario: args.scenario,
        protocol_version: args.protocol_version,
        context,
    };
    run(&invocation).await
}
