//! How the fixture is served: MCP over stdin/stdout, or Streamable HTTP at `/mcp` with
//! sessions for the 2025 lifecycle, stateless handling for 2026-07-28, and loopback-only
//! `Host`/`Origin` (the DNS-rebinding scenario checks both).

use std::net::SocketAddr;

use anyhow::Context as _;
use rmcp::{
    ServiceExt as _,
    transport::streamable_http_server::{
        StreamableHttpServerConfig, StreamableHttpService, session::local::LocalSessionManager,
    },
};

use crate::{server::FixtureServer, state::FixtureState};

const LOOPBACK_HOSTS: [&str; 3] = ["localhost", "127.0.0.1", "::1"];
const LOOPBACK_ORIGINS: [&str; 3] = ["http://localhost:*", "http://127.0.0.1:*", "http://[::1]:*"];

/// Serve one MCP session over stdin/stdout until the client closes stdin.
pub async fn serve_stdio() -> anyhow::Result<()> {
    let server = FixtureServer::new(FixtureState::new()?);
    let running = server
        .serve((tokio::io::stdin(), tokio::io::stdout()))
        .await
        .context("the MCP session over stdio did not start")?;
    running.waiting().await.context("the stdio server task failed")?;
    Ok(())
}

/// Serve Streamable HTTP at `http://ADDR/mcp` until the process ends.
pub async fn serve_http(addr: SocketAddr) -> anyhow::Result<()> {
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .with_context(|| format!("cannot listen on `{addr}`"))?;
    let local = listener.local_addr()?;
    let config = StreamableHttpServerConfig::default()
        .with_allowed_hosts(LOOPBACK_HOSTS)
        .with_allowed_origins(LOOPBACK_ORIGINS);
    let server = FixtureServer::new(FixtureState::new()?);
    let service: StreamableHttpService<FixtureServer, LocalSessionManager> =
        StreamableHttpService::new(move || Ok(server.clone()), Default::default(), config);
    let router = axum::Router::new().nest_service("/mcp", service);
    tracing::info!("portcullis-conformance-fixture listening on http://{local}/mcp");
    axum::serve(listener, router).await.context("the HTTP server stopped")
}
