//! The rustls client config for forwarding to HTTP upstreams over mutual TLS: the gateway
//! presents its own SVID and accepts only an upstream whose SVID names the expected SPIFFE ID.
//! SVID and bundle come from files (reloaded) or a SPIFFE Workload API (pushed).
//!
//! Last hop of the request flow (forward). SPIFFE authenticates by ID, not by DNS name, so
//! the server verifier performs chain validation against the trust bundle and then
//! compares the upstream's SPIFFE ID with the expected one; **the TLS server name (SNI /
//! hostname) is not checked**, and callers may connect with any name, such as an IP.
use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::{ResolvesClientCert, verify_server_cert_signed_by_trust_anchor};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::server::ParsedCertificate;
use rustls::sign::CertifiedKey;
use rustls::{ClientConfig, DigitallySignedStruct, Error, SignatureScheme};

use crate::client_verifier::{foreign_issuer, svid_rejection, system_time};
use crate::material::{TlsError, crypto_provider};
use crate::reload::Reload;
use crate::sources::{BundleSource, LiveBundle, LiveSvid, SvidSource};
use crate::spiffe_id::SpiffeId;
use crate::svid::{SvidError, SvidPolicy};

/// How the gateway connects to one HTTP upstream over mutual TLS.
#[derive(Debug, Clone)]
pub struct UpstreamTlsSettings {
    /// The gateway's client SVID.
    pub svid: SvidSource,
    /// The trust bundle the upstream's chain must lead to: that of the expected SPIFFE ID's
    /// trust domain is the one used.
    pub trust_bundle: BundleSource,
    /// The only SPIFFE ID the upstream may present.
    pub expected_server: SpiffeId,
    pub reload: Reload,
}

/// Why the upstream's certificate was refused after chain validation.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("upstream presented `{actual}` but `{expected}` was expected; check the upstream's SVID or the configured id")]
pub struct UnexpectedPeer {
    pub expected: SpiffeId,
    pub actual: SpiffeId,
}

/// Builds the client config for one upstream (files re-read per `settings.reload`).
///
/// A Workload API source need not be connected yet (the config is built while the config
/// file is read); until it is, handshakes to the upstream fail.
pub fn upstream_client_config(settings: &UpstreamTlsSettings) -> Result<Arc<ClientConfig>, TlsError> {
    let provider = crypto_provider();
    let verifier = Arc::new(SpiffeServerVerifier::new(settings, provider.clone())?);
    let identity = LiveSvid::open(
        "upstream client SVID",
        &settings.svid,
        settings.reload,
        provider.clone(),
    )?;
    let config = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .dangerous()
        .with_custom_certificate_verifier(verifier)
        .with_client_cert_resolver(Arc::new(ReloadingClientCert { identity }));
    Ok(Arc::new(config))
}

#[derive(Debug)]
struct ReloadingClientCert {
    identity: LiveSvid,
}

impl ResolvesClientCert for ReloadingClientCert {
    fn resolve(&self, _root_hint_subjects: &[&[u8]], _sigschemes: &[SignatureScheme]) -> Option<Arc<CertifiedKey>> {
        self.identity.current()
    }

    fn has_certs(&self) -> bool {
        true
    }
}

/// Chain validation against the bundle, then an exact SPIFFE ID match (no hostname check).
#[derive(Debug)]
pub struct SpiffeServerVerifier {
    roots: LiveBundle,
    expected: SpiffeId,
    policy: SvidPolicy,
    provider: Arc<CryptoProvider>,
}

impl SpiffeServerVerifier {
    pub fn new(settings: &UpstreamTlsSettings, provider: Arc<CryptoProvider>) -> Result<Self, TlsError> {
        if settings.expected_server.is_trust_domain_id() {
            // X509-SVID §3.1: no leaf may carry it, so no upstream could ever match.
            return Err(SvidError::TrustDomainId {
                id: settings.expected_server.to_string(),
            }
            .into());
        }
        let roots = LiveBundle::open("upstream trust bundle", &settings.trust_bundle, settings.reload)?;
        let policy = SvidPolicy::new([settings.expected_server.trust_domain().clone()])?;
        Ok(Self {
            roots,
            expected: settings.expected_server.clone(),
            policy,
            provider,
        })
    }
}

impl ServerCertVerifier for SpiffeServerVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, Error> {
        let parsed = ParsedCertificate::try_from(end_entity)?;
        // The SPIFFE check first (the leaf names a workload in the expected trust domain),
        // then the chain against that trust domain's bundle only.
        let actual = self
            .policy
            .workload_id(end_entity.as_ref(), system_time(now))
            .map_err(|error| {
                tracing::warn!(%error, expected = %self.expected, "upstream certificate rejected by the SPIFFE check");
                svid_rejection(error)
            })?;
        let roots = self.roots.roots_for(actual.trust_domain()).ok_or_else(|| {
            svid_rejection(SvidError::NoTrustBundle {
                trust_domain: actual.trust_domain().to_string(),
            })
        })?;
        let algorithms = self.provider.signature_verification_algorithms.all;
        verify_server_cert_signed_by_trust_anchor(&parsed, &roots, intermediates, now, algorithms)
            .map_err(|error| foreign_issuer(error, &actual))
            .inspect_err(|error| {
                tracing::warn!(%error, expected = %self.expected, "upstream certificate rejected by chain validation");
            })?;
        if actual != self.expected {
            let error = UnexpectedPeer {
                expected: self.expected.clone(),
                actual,
            };
            tracing::warn!(%error, "upstream certificate rejected");
            return Err(Error::InvalidCertificate(rustls::CertificateError::Other(
                rustls::OtherError(Arc::new(error)),
            )));
        }
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.provider.signature_verification_algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.provider.signature_verification_algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider.signature_verification_algorithms.supported_schemes()
    }
}
