//! The client certificate verifier of the HTTP front: WebPKI chain validation against the
//! (reloaded) SPIFFE trust bundle, then the SPIFFE check of the leaf, in the handshake.
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
use crate::svid::{SvidError, SvidPolicy};

/// Verifies client SVIDs against the trust bundle currently in its file.
#[derive(Debug)]
pub struct SpiffeClientVerifier {
    webpki: Reloadable<Arc<dyn ClientCertVerifier>>,
    policy: SvidPolicy,
    mode: ClientAuth,
    provider: Arc<CryptoProvider>,
}

impl SpiffeClientVerifier {
    pub fn new(trust: &ClientTrust, reload: Reload, provider: Arc<CryptoProvider>) -> Result<Self, TlsError> {
        let bundle = trust.bundle.clone();
        let mode = trust.mode;
        let build_provider = provider.clone();
        let webpki = Reloadable::new("client trust bundle", vec![bundle.clone()], reload, move || {
            let roots = Arc::new(read_trust_bundle(&bundle)?);
            let builder = WebPkiClientVerifier::builder_with_provider(roots, build_provider.clone());
            let verifier = match mode {
                ClientAuth::Required => builder.build()?,
                ClientAuth::Optional => builder.allow_unauthenticated().build()?,
            };
            Ok(verifier)
        })?;
        Ok(Self {
            webpki,
            policy: trust.svid_policy.clone(),
            mode,
            provider,
        })
    }

    /// Re-reads the trust bundle now; on failure the previous bundle stays in use.
    pub fn reload(&self) -> Result<(), TlsError> {
        self.webpki.reload()
    }
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
        let verified = self.webpki.current().verify_client_cert(end_entity, intermediates, now);
        if let Err(error) = &verified {
            tracing::warn!(%error, "client certificate rejected by chain validation");
        }
        let verified = verified?;
        match self.policy.workload_id(end_entity.as_ref(), system_time(now)) {
            Ok(id) => {
                tracing::debug!(workload = %id, "client SVID accepted");
                Ok(verified)
            }
            Err(error) => {
                tracing::warn!(%error, "client certificate rejected by the SPIFFE check");
                Err(svid_rejection(error))
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
