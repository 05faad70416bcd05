//! The client certificate verifier of the HTTP front: the SPIFFE check of the leaf, then
//! WebPKI chain validation against the bundle of the trust domain the leaf names (a
//! reloaded file per trust domain, or the bundle the Workload API gives for it), in the
//! handshake. A CA vouches only for its own trust domain: a partner's CA cannot issue our IDs.
//!
//! Rejecting bad SVIDs during the handshake means a connection that exists always had a
//! good SVID when it was opened; expiry after that is caught by the per-call check.
use std::collections::BTreeMap;
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
use crate::spiffe_id::{SpiffeId, TrustDomain};
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

/// WebPKI chain validation against the current anchors of one trust domain's bundle.
#[derive(Debug)]
enum ChainVerifier {
    /// One per trust domain, built once per (re)load of its bundle file.
    Files(BTreeMap<TrustDomain, Reloadable<Arc<dyn ClientCertVerifier>>>),
    /// Built per handshake from the trust domain's bundle (cached by the source).
    WorkloadApi(WorkloadApi),
}

impl SpiffeClientVerifier {
    pub fn new(trust: &ClientTrust, reload: Reload, provider: Arc<CryptoProvider>) -> Result<Self, TlsError> {
        let mode = trust.mode;
        let webpki = match &trust.bundle {
            BundleSource::Files(files) => {
                let mut verifiers = BTreeMap::new();
                for (trust_domain, path) in files {
                    let (td, bundle) = (trust_domain.clone(), path.clone());
                    let build_provider = provider.clone();
                    let verifier = Reloadable::new("client trust bundle", vec![bundle.clone()], reload, move || {
                        webpki_verifier(Arc::new(read_trust_bundle(&bundle, &td)?), mode, build_provider.clone())
                    })?;
                    verifiers.insert(trust_domain.clone(), verifier);
                }
                ChainVerifier::Files(verifiers)
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

    /// Re-reads the trust bundle files now; each that fails keeps its previous bundle and
    /// the first error is returned. Workload API bundles are pushed by the agent and need
    /// no reload.
    pub fn reload(&self) -> Result<(), TlsError> {
        match &self.webpki {
            ChainVerifier::Files(verifiers) => verifiers.values().map(Reloadable::reload).fold(Ok(()), Result::and),
            ChainVerifier::WorkloadApi(_) => Ok(()),
        }
    }

    /// The chain verifier for a leaf in `trust_domain`: its bundle's anchors only.
    fn chain_verifier(&self, trust_domain: &TrustDomain) -> Result<Arc<dyn ClientCertVerifier>, Error> {
        let no_bundle = || {
            svid_rejection(SvidError::NoTrustBundle {
                trust_domain: trust_domain.to_string(),
            })
        };
        match &self.webpki {
            ChainVerifier::Files(verifiers) => {
                let webpki = verifiers.get(trust_domain).ok_or_else(no_bundle)?;
                Ok(webpki.current().as_ref().clone())
            }
            ChainVerifier::WorkloadApi(api) => {
                let roots = api.roots_for(trust_domain).ok_or_else(no_bundle)?;
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

/// An unknown issuer, once the bundle was chosen by the leaf's trust domain, means the
/// leaf was not issued by that trust domain's CAs (perhaps by a federated partner's): say so.
pub(crate) fn foreign_issuer(error: Error, id: &SpiffeId) -> Error {
    match error {
        Error::InvalidCertificate(CertificateError::UnknownIssuer) => svid_rejection(SvidError::ForeignIssuer {
            id: id.to_string(),
            trust_domain: id.trust_domain().to_string(),
        }),
        other => other,
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
        // The SPIFFE check comes first: the trust domain it names selects the bundle, and
        // only that bundle's CAs may have issued the leaf.
        let id = self
            .policy
            .workload_id(end_entity.as_ref(), system_time(now))
            .map_err(|error| {
                tracing::warn!(%error, "client certificate rejected by the SPIFFE check");
                svid_rejection(error)
            })?;
        let verified = self
            .chain_verifier(id.trust_domain())
            .and_then(|webpki| webpki.verify_client_cert(end_entity, intermediates, now))
            .map_err(|error| foreign_issuer(error, &id));
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
