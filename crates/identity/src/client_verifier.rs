//! The client certificate verifier of the HTTP front: the SPIFFE check of the leaf, then
//! WebPKI chain validation against the trust bundle (a reloaded file, or the bundle the
//! Workload API gives for the trust domain the leaf names), in the handshake.
//!
//! Rejecting bad SVIDs during the handshake means a connection that exists always had a
//! good SVID when it was opened; expiry after that is caught by the per-call check.
use std::sync::Arc;
use std::time::{Duration, UNIX_EPOCH};

use rustls::client::danger::HandshakeSignatureValid;
use rustls::crypto::CryptoProvider;
use rustls::pki_types::{CertificateDer, UnixTime};
use rustls::server::WebPkiClientVerifier;
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::{CertificateError, DigitallySignedStruct, DistinguishedName, Error, OtherError, SignatureScheme};

use crate::material::{TlsError, read_trust_bundle};
use crate::reload::{Reload, Reloadable};
use crate::server_tls::{ClientAuth, ClientTrust};
use crate::sources::BundleSource;
use crate::spiffe_id::TrustDomain;
use crate::svid::{SvidError, SvidPolicy};
use crate::workload_api::WorkloadApi;

/// Verifies client SVIDs against the trust bundle currently in force.
#[derive(Debug)]
pub struct SpiffeClientVerifier {
    webpki: ChainVerifier,
    policy: SvidPolicy,
    mode: ClientAuth,
    provider: Arc<CryptoProvider>,
}

/// WebPKI chain validation against the bundle's current anchors.
#[derive(Debug)]
enum ChainVerifier {
    /// Built once per (re)load of the bundle file.
    File(Reloadable<Arc<dyn ClientCertVerifier>>),
    /// Built per handshake from the trust domain's bundle (cached by the source).
    WorkloadApi(WorkloadApi),
}

impl SpiffeClientVerifier {
    pub fn new(trust: &ClientTrust, reload: Reload, provider: Arc<CryptoProvider>) -> Result<Self, TlsError> {
        let mode = trust.mode;
        let webpki = match &trust.bundle {
            BundleSource::File(bundle) => {
                let bundle = bundle.clone();
                let build_provider = provider.clone();
                ChainVerifier::File(Reloadable::new(
                    "client trust bundle",
                    vec![bundle.clone()],
                    reload,
                    move || webpki_verifier(Arc::new(read_trust_bundle(&bundle)?), mode, build_provider.clone()),
                )?)
            }
            BundleSource::WorkloadApi(api) => {
                api.require_connected()?;
                ChainVerifier::WorkloadApi(api.clone())
            }
        };
        Ok(Self {
            webpki,
            policy: trust.svid_policy.clone(),
            mode,
            provider,
        })
    }

    /// Re-reads the trust bundle file now; on failure the previous bundle stays in use.
    /// Workload API bundles are pushed by the agent and need no reload.
    pub fn reload(&self) -> Result<(), TlsError> {
        match &self.webpki {
            ChainVerifier::File(webpki) => webpki.reload(),
            ChainVerifier::WorkloadApi(_) => Ok(()),
        }
    }

    /// The chain verifier for a leaf in `trust_domain`.
    fn chain_verifier(&self, trust_domain: &TrustDomain) -> Result<Arc<dyn ClientCertVerifier>, Error> {
        match &self.webpki {
            ChainVerifier::File(webpki) => Ok(webpki.current().as_ref().clone()),
            ChainVerifier::WorkloadApi(api) => {
                let roots = api
                    .roots_for(trust_domain)
                    .ok_or(Error::InvalidCertificate(CertificateError::UnknownIssuer))?;
                webpki_verifier(roots, self.mode, self.provider.clone()).map_err(|e| Error::General(e.to_string()))
            }
        }
    }
}

fn webpki_verifier(
    roots: Arc<rustls::RootCertStore>,
    mode: ClientAuth,
    provider: Arc<CryptoProvider>,
) -> Result<Arc<dyn ClientCertVerifier>, TlsError> {
    let builder = WebPkiClientVerifier::builder_with_provider(roots, provider);
    Ok(match mode {
        ClientAuth::Required => builder.build()?,
        ClientAuth::Optional => builder.allow_unauthenticated().build()?,
    })
}

pub(crate) fn svid_rejection(error: SvidError) -> Error {
    Error::InvalidCertificate(CertificateError::Other(OtherError(Arc::new(error))))
}

pub(crate) fn system_time(now: UnixTime) -> std::time::SystemTime {
    UNIX_EPOCH + Duration::from_secs(now.as_secs())
}

impl ClientCertVerifier for SpiffeClientVerifier {
    fn offer_client_auth(&self) -> bool {
        true
    }

    fn client_auth_mandatory(&self) -> bool {
        self.mode == ClientAuth::Required
    }

    /// No CA hints: the bundle can change under us and the hint list must be borrowed from
    /// `self`. Clients holding one SVID (the normal case) present it regardless.
    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        &[]
    }

    fn verify_client_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        now: UnixTime,
    ) -> Result<ClientCertVerified, Error> {
        // The SPIFFE check comes first: the trust domain it names selects the bundle.
        let id = self
            .policy
            .workload_id(end_entity.as_ref(), system_time(now))
            .map_err(|error| {
                tracing::warn!(%error, "client certificate rejected by the SPIFFE check");
                svid_rejection(error)
            })?;
        let verified = self
            .chain_verifier(id.trust_domain())
            .and_then(|webpki| webpki.verify_client_cert(end_entity, intermediates, now));
        match verified {
            Ok(verified) => {
                tracing::debug!(workload = %id, "client SVID accepted");
                Ok(verified)
            }
            Err(error) => {
                tracing::warn!(%error, workload = %id, "client certificate rejected by chain validation");
                Err(error)
            }
        }
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
