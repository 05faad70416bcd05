//! The `portcullis-conformance-fixture` binary: serve the conformance fixtures over stdio
//! (default) or Streamable HTTP (`--http ADDR`, endpoint `/mcp`).

use std::net::SocketAddr;

use clap::Parser;

/// MCP server implementing the fixtures of the official conformance suite.
#[derive(Parser)]
#[command(version)]
struct Args {
    /// Serve Streamable HTTP at http://ADDR/mcp instead of stdio (e.g. 127.0.0.1:3001).
    #[arg(long, value_name = "ADDR")]
    http: Option<SocketAddr>,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    // stdout carries the protocol on stdio, so logs always go to stderr.
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .init();
    match args.http {
        Some(addr) => portcullis_conformance_fixture::serve_http(addr).await,
        None => portcullis_conformance_fixture::serve_stdio().await,
    }
}
