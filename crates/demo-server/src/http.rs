//! MCP over Streamable HTTP at `/mcp`, using rmcp's `StreamableHttpService` behind axum.
//! Only loopback `Host` and `Origin` values are accepted (DNS-rebinding protection), with any
//! port, so `127.0.0.1:PORT` and `localhost:PORT` both work.

use std::net::SocketAddr;

use anyhow::Context as _;
use rmcp::transport::streamable_http_server::{
    StreamableHttpServerConfig, StreamableHttpService, session::local::LocalSessionManager,
};

use crate::{
    DemoOptions,
    server::{Channel, DemoServer},
};

const LOOPBACK_HOSTS: [&str; 3] = ["localhost", "127.0.0.1", "::1"];
const LOOPBACK_ORIGINS: [&str; 6] = [
    "http://localhost:*",
    "http://127.0.0.1:*",
    "http://[::1]:*",
    "https://localhost:*",
    "https://127.0.0.1:*",
    "https://[::1]:*",
];

pub async fn serve(addr: SocketAddr, opts: DemoOptions) -> anyhow::Result<()> {
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .with_context(|| format!("cannot listen on `{addr}`"))?;
    let local = listener.local_addr()?;
    let router = router(opts);
    tracing::info!("portcullis-demo-server listening on http://{local}/mcp");
    axum::serve(listener, router).await.context("the HTTP server stopped")
}

/// The rmcp Streamable HTTP service at `/mcp`, shared by the HTTP and HTTPS modes.
pub(crate) fn router(opts: DemoOptions) -> axum::Router {
    let config = StreamableHttpServerConfig::default()
        .with_allowed_hosts(LOOPBACK_HOSTS)
        .with_allowed_origins(LOOPBACK_ORIGINS);
    let server = DemoServer::new(&opts, Channel::Http);
    let service: StreamableHttpService<DemoServer, LocalSessionManager> =
        StreamableHttpService::new(move || Ok(server.clone()), Default::default(), config);
    axum::Router::new().nest_service("/mcp", service)
}
