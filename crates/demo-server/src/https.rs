//! MCP over Streamable HTTPS at `/mcp`, optionally requiring client certificates (mutual
//! TLS with X.509-SVIDs): the upstream side of the gateway's upstream-mTLS tests and demos.
//!
//! The rmcp router is the same as in [`crate::http`]; TLS comes from
//! `portcullis_identity::ServerTls` and the accept loop is `portcullis_identity::serve_tls`.
use std::{net::SocketAddr, path::PathBuf};

use anyhow::Context as _;
use portcullis_identity::{
    BundleSource, ClientAuth, ClientTrust, Reload, ServerTls, ServerTlsSettings, SvidPolicy, SvidSource,
};

use crate::{DemoOptions, http};

/// Certificate, key and (optionally) the client trust bundle of the HTTPS mode.
#[derive(Debug, Clone)]
pub struct HttpsOptions {
    /// PEM chain served to clients, leaf first.
    pub cert: PathBuf,
    pub key: PathBuf,
    /// When set, clients must present an SVID chaining to this bundle, in the one trust
    /// domain its CA certificates name.
    pub client_ca: Option<PathBuf>,
}

pub async fn serve(addr: SocketAddr, opts: DemoOptions, tls: HttpsOptions) -> anyhow::Result<()> {
    let client_trust = match &tls.client_ca {
        None => None,
        Some(bundle) => {
            let domains = portcullis_identity::bundle_trust_domains(bundle)?;
            // A bundle belongs to one trust domain: its CAs vouch for that one only (T16).
            let [domain] = domains.as_slice() else {
                anyhow::bail!(
                    "`{}` names {} SPIFFE trust domains (`spiffe://<trust-domain>` URI SANs of its CAs); \
                     give the demo server the `ca.pem` of one trust domain, as written by `portcullis ca init`",
                    bundle.display(),
                    domains.len()
                );
            };
            Some(ClientTrust {
                bundle: BundleSource::file(domain.clone(), bundle.clone()),
                mode: ClientAuth::Required,
                svid_policy: SvidPolicy::new([domain.clone()])?,
            })
        }
    };
    let settings = ServerTlsSettings {
        svid: SvidSource::Files {
            cert_chain: tls.cert.clone(),
            private_key: tls.key.clone(),
        },
        client_trust,
        reload: Reload::Poll(std::time::Duration::from_secs(5)),
        alpn_protocols: vec!["http/1.1".into()],
    };
    let server_tls = ServerTls::new(&settings).context("cannot set up TLS for the demo server")?;
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .with_context(|| format!("cannot listen on `{addr}`"))?;
    let local = listener.local_addr()?;
    let router = http::router(opts);
    tracing::info!("portcullis-demo-server listening on https://{local}/mcp");
    let acceptor = tokio_rustls::TlsAcceptor::from(server_tls.config());
    portcullis_identity::serve_tls(listener, acceptor, router, std::future::pending())
        .await
        .context("the HTTPS server stopped")
}
