//! `portcullis-bench-upstream`: the benchmark's fast MCP server.
//!
//! `--stdio` serves newline-delimited JSON-RPC on stdin/stdout; `--http ADDR`
//! serves Streamable HTTP on `http://ADDR/mcp` and prints that URL on stdout
//! once listening (ADDR may use port 0); `--answers sse` makes it answer as the official
//! SDKs' servers do (an SSE stream per request). `GET /connections` tells how many TCP
//! connections it accepted. `--floor ADDR --to UPSTREAM` runs the
//! benchmark's reference forwarder instead (see `portcullis_bench::floor`), printing
//! its URL the same way.
use std::sync::{
    Arc,
    atomic::{AtomicU64, Ordering},
};

use anyhow::Context;
use axum::serve::ListenerExt;
use clap::Parser;
use portcullis_bench::upstream::Answers;

#[derive(Parser)]
#[command(about = "Fast MCP upstream for the Portcullis benchmark (echo tool)")]
struct Args {
    /// Serve on stdin/stdout.
    #[arg(long, conflicts_with_all = ["http", "floor"])]
    stdio: bool,
    /// Serve Streamable HTTP on this address, e.g. 127.0.0.1:0.
    #[arg(long, value_name = "ADDR", conflicts_with = "floor")]
    http: Option<String>,
    /// How --http answers requests: one JSON body, or an SSE stream of one event.
    #[arg(long, value_enum, default_value_t = Answers::Json)]
    answers: Answers,
    /// Run the reference forwarder on this address instead (needs --to).
    #[arg(long, value_name = "ADDR", requires = "to")]
    floor: Option<String>,
    /// The upstream the forwarder sends to, e.g. 127.0.0.1:8080.
    #[arg(long, value_name = "HOST:PORT")]
    to: Option<std::net::SocketAddr>,
    /// Runtime worker threads for --http and --floor.
    #[arg(long, default_value_t = 1)]
    threads: usize,
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let answers = args.answers;
    let (addr, forward_to) = match (args.http, args.floor, args.to) {
        (None, None, _) if args.stdio => return Ok(portcullis_bench::upstream::serve_stdio()?),
        (Some(addr), None, _) => (addr, None),
        (None, Some(addr), Some(to)) => (addr, Some(to)),
        _ => anyhow::bail!("give --stdio, --http ADDR, or --floor ADDR --to HOST:PORT"),
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(args.threads.max(1))
        .enable_all()
        .build()?;
    runtime.block_on(async move {
        let listener = tokio::net::TcpListener::bind(&addr)
            .await
            .with_context(|| format!("cannot listen on `{addr}`"))?;
        println!("listening on http://{}/mcp", listener.local_addr()?);
        match forward_to {
            Some(upstream) => portcullis_bench::floor::serve(listener, upstream).await?,
            None => {
                let accepted = Arc::new(AtomicU64::new(0));
                let counted = accepted.clone();
                let listener = listener.tap_io(move |_| {
                    counted.fetch_add(1, Ordering::Relaxed);
                });
                let app = portcullis_bench::upstream::http_app(answers, accepted);
                axum::serve(listener, app).await?
            }
        }
        Ok(())
    })
}
