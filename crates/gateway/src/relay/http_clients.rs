//! The HTTP clients the gateway forwards with: one shared client for plain HTTP(S)
//! upstreams, and one client per upstream configured with mutual TLS, each presenting the
//! gateway's SVID and accepting only that upstream's SPIFFE ID (its rustls config comes
//! built from the CLI, via `portcullis_identity::upstream_client_config`).
//!
//! Forward step of the request flow. A per-server client that cannot be built never falls
//! back to the shared one: that server's calls fail instead (fail closed).
use std::collections::BTreeMap;

use portcullis_core::ServerName;
use portcullis_transport::HttpClient;

use crate::{
    config::{ServerConfig, UpstreamTransport},
    error::UpstreamError,
};

/// One client per TLS configuration in use.
pub(crate) struct HttpClients {
    shared: HttpClient,
    /// Servers with a `tls` table: their client, or why it could not be built.
    mutual_tls: BTreeMap<ServerName, Result<HttpClient, String>>,
}

impl HttpClients {
    pub(crate) fn new(servers: &[ServerConfig]) -> Self {
        let shared = HttpClient::new(builder().build().unwrap_or_default());
        let mutual_tls = servers
            .iter()
            .filter_map(|server| match &server.transport {
                UpstreamTransport::Http { tls: Some(tls), .. } => {
                    let client = builder()
                        .tls_backend_preconfigured(rustls::ClientConfig::clone(tls))
                        .build()
                        .map(HttpClient::new)
                        .map_err(|e| format!("cannot set up mutual TLS: {e}"));
                    if let Err(reason) = &client {
                        tracing::error!(server = %server.name, "{reason}");
                    }
                    Some((server.name.clone(), client))
                }
                _ => None,
            })
            .collect();
        Self { shared, mutual_tls }
    }

    /// The client to reach `server` with.
    pub(crate) fn for_server(&self, server: &ServerConfig) -> Result<&HttpClient, UpstreamError> {
        let UpstreamTransport::Http { tls: Some(_), .. } = &server.transport else {
            return Ok(&self.shared);
        };
        match self.mutual_tls.get(&server.name) {
            Some(Ok(client)) => Ok(client),
            Some(Err(reason)) => Err(UpstreamError::Start {
                server: server.name.to_string(),
                reason: reason.clone(),
            }),
            None => Err(UpstreamError::Start {
                server: server.name.to_string(),
                reason: "its mutual TLS client was not set up".into(),
            }),
        }
    }
}

/// Settings every upstream client shares: no redirects (a redirect could carry the
/// configured headers to another host) and no proxy from the environment (calls go to the
/// configured URL and nowhere else, as plain-HTTP upstreams are dialled directly).
fn builder() -> reqwest::ClientBuilder {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .no_proxy()
}
