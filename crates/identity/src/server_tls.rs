//! The rustls server config for the gateway's Streamable HTTP front: the gateway's own
//! certificate and mutual TLS against the client trust bundle, each from files (reloaded)
//! or from a SPIFFE Workload API (pushed by the agent).
//!
//! First step of the request flow: a connection that survives this handshake carries a
//! client chain that chains to the bundle and passed the SPIFFE check; the gateway then
//! re-checks the leaf on every call with [`crate::SvidPolicy::connection_workload_id`].
use std::sync::Arc;

use rustls::ServerConfig;
use rustls::crypto::CryptoProvider;
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;

use crate::client_verifier::SpiffeClientVerifier;
use crate::material::{TlsError, crypto_provider};
use crate::reload::Reload;
use crate::sources::{BundleSource, LiveSvid, SvidSource};
use crate::svid::SvidPolicy;

/// Whether clients must present a certificate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClientAuth {
    /// Handshakes without a client certificate fail.
    Required,
    /// Clients may connect without a certificate (identified by bearer token only, for
    /// example); a certificate that is presented is still fully verified.
    Optional,
}

/// Mutual TLS settings: which client certificates the front accepts.
#[derive(Debug, Clone)]
pub struct ClientTrust {
    /// The SPIFFE trust bundle client chains must lead to.
    pub bundle: BundleSource,
    pub mode: ClientAuth,
    /// Checked in the handshake, after chain validation.
    pub svid_policy: SvidPolicy,
}

/// Everything needed to build the front's TLS config.
#[derive(Debug, Clone)]
pub struct ServerTlsSettings {
    /// The gateway's own SVID (PEM files: PKCS#8, SEC1 or PKCS#1 keys).
    pub svid: SvidSource,
    /// `None` disables client certificates entirely (bearer tokens only).
    pub client_trust: Option<ClientTrust>,
    /// When files among the above are re-read.
    pub reload: Reload,
    /// ALPN protocols to offer, e.g. `["http/1.1"]`; empty for none.
    pub alpn_protocols: Vec<String>,
}

/// The front's TLS config plus handles to reload its material.
#[derive(Debug, Clone)]
pub struct ServerTls {
    config: Arc<ServerConfig>,
    cert: Arc<ReloadingServerCert>,
    client_verifier: Option<Arc<SpiffeClientVerifier>>,
}

impl ServerTls {
    /// Loads all files once; any failure here is fatal (the gateway must not start
    /// half-configured). A Workload API source must be connected already.
    pub fn new(settings: &ServerTlsSettings) -> Result<Self, TlsError> {
        let provider = crypto_provider();
        if let SvidSource::WorkloadApi(api) = &settings.svid {
            api.require_connected()?;
        }
        let cert = Arc::new(ReloadingServerCert::new(
            &settings.svid,
            settings.reload,
            provider.clone(),
        )?);
        let builder = ServerConfig::builder_with_provider(provider.clone()).with_safe_default_protocol_versions()?;
        let (client_verifier, builder) = match &settings.client_trust {
            Some(trust) => {
                let verifier = Arc::new(SpiffeClientVerifier::new(trust, settings.reload, provider)?);
                (Some(verifier.clone()), builder.with_client_cert_verifier(verifier))
            }
            None => (None, builder.with_no_client_auth()),
        };
        let mut config = builder.with_cert_resolver(cert.clone());
        config.alpn_protocols = settings.alpn_protocols.iter().map(|p| p.as_bytes().to_vec()).collect();
        // No session resumption: a resumed session skips client certificate verification,
        // so a rotated-out CA or bundle would keep admitting its clients (T16).
        config.session_storage = Arc::new(rustls::server::NoServerSessionStorage {});
        config.send_tls13_tickets = 0;
        Ok(Self {
            config: Arc::new(config),
            cert,
            client_verifier,
        })
    }

    /// The config for `tokio_rustls::TlsAcceptor::from`.
    pub fn config(&self) -> Arc<ServerConfig> {
        self.config.clone()
    }

    /// Re-reads the certificate, key and client trust bundle files now (for a file watcher
    /// or SIGHUP). Each part that fails keeps its previous material; the first error is
    /// returned. Material from the Workload API needs no reload.
    pub fn reload(&self) -> Result<(), TlsError> {
        let cert = self.cert.reload();
        let bundle = match &self.client_verifier {
            Some(verifier) => verifier.reload(),
            None => Ok(()),
        };
        cert.and(bundle)
    }
}

/// A [`ResolvesServerCert`] that serves the current SVID (files or Workload API).
#[derive(Debug)]
pub struct ReloadingServerCert {
    material: LiveSvid,
}

impl ReloadingServerCert {
    pub fn new(svid: &SvidSource, reload: Reload, provider: Arc<CryptoProvider>) -> Result<Self, TlsError> {
        let material = LiveSvid::open("server certificate", svid, reload, provider)?;
        Ok(Self { material })
    }

    /// Re-reads the files now; on failure the previous certificate stays in use.
    pub fn reload(&self) -> Result<(), TlsError> {
        self.material.reload()
    }
}

impl ResolvesServerCert for ReloadingServerCert {
    /// `None` (no usable SVID from the Workload API) fails the handshake: fail closed.
    fn resolve(&self, _client_hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        self.material.current()
    }
}
