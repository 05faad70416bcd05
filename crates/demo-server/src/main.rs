//! The `portcullis-demo-server` binary: parse flags, set up stderr logging, and serve the demo
//! MCP server over stdio (default) or Streamable HTTP (`--http ADDR`).

use std::{net::SocketAddr, path::PathBuf};

use clap::Parser;
use portcullis_demo_server::{DemoOptions, serve_http, serve_stdio};

/// A small MCP server with deterministic fake data, for demos and tests.
#[derive(Parser)]
#[command(version)]
struct Args {
    /// Serve Streamable HTTP at http://ADDR/mcp instead of stdio (e.g. 127.0.0.1:8931).
    #[arg(long, value_name = "ADDR")]
    http: Option<SocketAddr>,
    /// Also expose the test tools (echo, get_env, progress, log, sample, elicit, roots, crash,
    /// hang, garbage, notify_list_changed, notifications_seen, flood).
    #[arg(long)]
    test_tools: bool,
    /// Append one line (the tool's name) to FILE for every tools/call received (tests count
    /// what reached the server).
    #[arg(long, value_name = "FILE")]
    call_log: Option<PathBuf>,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    // stdout carries the protocol on stdio, so logs always go to stderr.
    // Colour only at a terminal: behind the gateway, stderr is a pipe into its log.
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .init();
    let opts = DemoOptions {
        test_tools: args.test_tools,
        call_log: args.call_log,
        ..DemoOptions::default()
    };
    match args.http {
        Some(addr) => serve_http(addr, opts).await,
        None => serve_stdio(opts).await,
    }
}
