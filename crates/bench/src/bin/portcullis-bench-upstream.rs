//! `portcullis-bench-upstream`: the benchmark's fast MCP server.
//!
//! `--stdio` serves newline-delimited JSON-RPC on stdin/stdout; `--http ADDR`
//! serves Streamable HTTP on `http://ADDR/mcp` and prints that URL on stdout
//! once listening (ADDR may use port 0).
use anyhow::Context;
use clap::Parser;

#[derive(Parser)]
#[command(about = "Fast MCP upstream for the Portcullis benchmark (echo tool)")]
struct Args {
    /// Serve on stdin/stdout.
    #[arg(long, conflicts_with = "http")]
    stdio: bool,
    /// Serve Streamable HTTP on this address, e.g. 127.0.0.1:0.
    #[arg(long, value_name = "ADDR")]
    http: Option<String>,
    /// Runtime worker threads for --http.
    #[arg(long, default_value_t = 1)]
    threads: usize,
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    match args.http {
        None if args.stdio => Ok(portcullis_bench::upstream::serve_stdio()?),
        None => anyhow::bail!("give --stdio or --http ADDR"),
        Some(addr) => {
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(args.threads.max(1))
                .enable_all()
                .build()?;
            runtime.block_on(async move {
                let listener = tokio::net::TcpListener::bind(&addr)
                    .await
                    .with_context(|| format!("cannot listen on `{addr}`"))?;
                println!("listening on http://{}/mcp", listener.local_addr()?);
                axum::serve(listener, portcullis_bench::upstream::http_app()).await?;
                Ok(())
            })
        }
    }
}
