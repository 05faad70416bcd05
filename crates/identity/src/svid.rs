//! The SPIFFE check of an X.509-SVID leaf: the heart of workload identification.
//!
//! Runs inside the TLS handshake (via the client verifier in [`crate::server_tls`]) and
//! again on every call with the current time, because a connection can outlive the
//! certificate that opened it (T16). On a served connection the leaf is parsed once
//! ([`LeafFacts`], kept by [`PeerCertificates`]); its validity window and trust domain are
//! checked on every call.
use std::collections::BTreeSet;
use std::time::{SystemTime, UNIX_EPOCH};

use rustls::pki_types::CertificateDer;
use x509_parser::extensions::GeneralName;
use x509_parser::prelude::{FromDer, X509Certificate};

use crate::spiffe_id::{SpiffeId, SpiffeIdError, TrustDomain};
use crate::tls_serve::PeerCertificates;

/// Why a certificate is not an acceptable X.509-SVID.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SvidError {
    #[error("certificate is not valid DER X.509 ({reason}); present a PEM/DER X.509-SVID")]
    Malformed { reason: String },
    #[error("no client certificate was presented; connect with an X.509-SVID")]
    NoCertificate,
    #[error("certificate is a CA (basic constraints cA=true); an SVID leaf must not be a CA")]
    CaCertificate,
    #[error("certificate may sign certificates or CRLs (key usage); an SVID leaf must not")]
    SigningKeyUsage,
    #[error("certificate has no URI SAN; an X.509-SVID carries exactly one `spiffe://` URI SAN")]
    NoUriSan,
    #[error("certificate has {count} URI SANs; an X.509-SVID carries exactly one")]
    MultipleUriSans { count: usize },
    #[error("URI SAN is not a valid spiffe id: {0}")]
    InvalidSpiffeId(#[from] SpiffeIdError),
    #[error(
        "the certificate names `{id}`, the trust domain itself; a workload's X.509-SVID must name a spiffe id \
         with a path (e.g. `{id}/agent`), so issue the workload its own id"
    )]
    TrustDomainId { id: String },
    #[error(
        "no trust bundle for trust domain `{trust_domain}`; a CA is trusted only for the trust domain whose \
         bundle holds it: give `{trust_domain}` its own bundle (or federate with it) to accept its SVIDs"
    )]
    NoTrustBundle { trust_domain: String },
    #[error(
        "`{id}` was not issued by a CA in the bundle of its trust domain `{trust_domain}`; a CA vouches only \
         for its own trust domain (a federated partner's CA cannot issue `{trust_domain}` ids): have the SVID \
         issued by `{trust_domain}`'s CA, or put that CA in `{trust_domain}`'s bundle"
    )]
    ForeignIssuer { id: String, trust_domain: String },
    #[error(
        "trust domain `{trust_domain}` is not trusted; add it to the trusted trust domains or use an SVID from one"
    )]
    UntrustedDomain { trust_domain: String },
    #[error("certificate expired at unix time {not_after}; renew the SVID")]
    Expired { not_after: i64 },
    #[error("certificate is not valid before unix time {not_before}; check clocks or wait")]
    NotYetValid { not_before: i64 },
    #[error("no trust domain configured; configure at least one trusted trust domain")]
    NoTrustDomains,
}

/// Which SPIFFE IDs the gateway accepts as workloads: those in the configured trust domains.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SvidPolicy {
    trust_domains: BTreeSet<TrustDomain>,
}

impl SvidPolicy {
    /// A policy trusting the given trust domains; at least one is required (fail closed).
    pub fn new(trust_domains: impl IntoIterator<Item = TrustDomain>) -> Result<Self, SvidError> {
        let trust_domains: BTreeSet<_> = trust_domains.into_iter().collect();
        if trust_domains.is_empty() {
            return Err(SvidError::NoTrustDomains);
        }
        Ok(Self { trust_domains })
    }

    pub fn trust_domains(&self) -> impl Iterator<Item = &TrustDomain> {
        self.trust_domains.iter()
    }

    /// The workload's SPIFFE ID if `leaf_der` is an acceptable X.509-SVID at `now`.
    ///
    /// Checks: well-formed DER, not a CA and no certificate/CRL signing key usage, within
    /// validity at `now`, exactly one URI SAN, a valid SPIFFE ID with a path (not the trust
    /// domain's own ID) in a trusted trust domain.
    /// Chain validation against the trust bundle is the TLS verifier's job and is not
    /// repeated here.
    pub fn workload_id(&self, leaf_der: &[u8], now: SystemTime) -> Result<SpiffeId, SvidError> {
        LeafFacts::read(leaf_der)?.check(self, now)
    }

    /// Call-time check of a connection's peer chain (as from `peer_certificates()`):
    /// the first certificate is the leaf.
    pub fn peer_workload_id(
        &self,
        peer_chain: Option<&[CertificateDer<'_>]>,
        now: SystemTime,
    ) -> Result<SpiffeId, SvidError> {
        let leaf = peer_chain
            .and_then(|chain| chain.first())
            .ok_or(SvidError::NoCertificate)?;
        self.workload_id(leaf.as_ref(), now)
    }

    /// [`Self::peer_workload_id`] for a connection served by [`crate::serve_tls`]: the
    /// same checks, with the leaf parsed once per connection rather than on every call.
    pub fn connection_workload_id(&self, peer: &PeerCertificates, now: SystemTime) -> Result<SpiffeId, SvidError> {
        match peer.leaf_facts() {
            Some(Ok(leaf)) => leaf.check(self, now),
            Some(Err(e)) => Err(e.clone()),
            None => Err(SvidError::NoCertificate),
        }
    }
}

/// What the SVID checks need of a leaf that does not change with time or policy: read once
/// (per connection, see [`PeerCertificates`]), checked against the clock and the trusted
/// trust domains on every call.
#[derive(Debug, Clone)]
pub(crate) struct LeafFacts {
    not_before: i64,
    not_after: i64,
    id: Result<SpiffeId, SvidError>,
}

impl LeafFacts {
    /// Parses `der`; a malformed certificate or a CA is refused at once.
    pub(crate) fn read(der: &[u8]) -> Result<Self, SvidError> {
        let cert = parse_leaf(der)?;
        check_not_ca(&cert)?;
        let validity = cert.validity();
        Ok(Self {
            not_before: validity.not_before.timestamp(),
            not_after: validity.not_after.timestamp(),
            id: single_uri_san(&cert),
        })
    }

    /// The workload's SPIFFE ID if the leaf is valid at `now` and its ID is in a trust
    /// domain `policy` trusts (checked in this order).
    fn check(&self, policy: &SvidPolicy, now: SystemTime) -> Result<SpiffeId, SvidError> {
        // Times before the epoch are clamped to it; certificates are never valid before 1970.
        let now = now
            .duration_since(UNIX_EPOCH)
            .map(|d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
            .unwrap_or(0);
        if now < self.not_before {
            return Err(SvidError::NotYetValid {
                not_before: self.not_before,
            });
        }
        if now > self.not_after {
            return Err(SvidError::Expired {
                not_after: self.not_after,
            });
        }
        let id = self.id.clone()?;
        if !policy.trust_domains.contains(id.trust_domain()) {
            return Err(SvidError::UntrustedDomain {
                trust_domain: id.trust_domain().to_string(),
            });
        }
        Ok(id)
    }
}

fn parse_leaf(der: &[u8]) -> Result<X509Certificate<'_>, SvidError> {
    let (rest, cert) = X509Certificate::from_der(der).map_err(|e| SvidError::Malformed { reason: e.to_string() })?;
    if !rest.is_empty() {
        return Err(SvidError::Malformed {
            reason: "trailing bytes after the certificate".to_string(),
        });
    }
    Ok(cert)
}

fn check_not_ca(cert: &X509Certificate<'_>) -> Result<(), SvidError> {
    let malformed = |e: x509_parser::error::X509Error| SvidError::Malformed { reason: e.to_string() };
    if let Some(bc) = cert.basic_constraints().map_err(malformed)?
        && bc.value.ca
    {
        return Err(SvidError::CaCertificate);
    }
    if let Some(ku) = cert.key_usage().map_err(malformed)?
        && (ku.value.key_cert_sign() || ku.value.crl_sign())
    {
        return Err(SvidError::SigningKeyUsage);
    }
    Ok(())
}

fn single_uri_san(cert: &X509Certificate<'_>) -> Result<SpiffeId, SvidError> {
    let san = cert
        .subject_alternative_name()
        .map_err(|e| SvidError::Malformed { reason: e.to_string() })?;
    let uris: Vec<&str> = san
        .map(|ext| {
            ext.value
                .general_names
                .iter()
                .filter_map(|name| match name {
                    GeneralName::URI(uri) => Some(*uri),
                    _ => None,
                })
                .collect()
        })
        .unwrap_or_default();
    match uris.as_slice() {
        [] => Err(SvidError::NoUriSan),
        [uri] => {
            let id = SpiffeId::parse(uri)?;
            // X509-SVID §3.1: a leaf's SPIFFE ID has a non-root path.
            match id.is_trust_domain_id() {
                true => Err(SvidError::TrustDomainId { id: id.to_string() }),
                false => Ok(id),
            }
        }
        more => Err(SvidError::MultipleUriSans { count: more.len() }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn policy_needs_a_trust_domain() {
        assert_eq!(SvidPolicy::new([]), Err(SvidError::NoTrustDomains));
    }

    #[test]
    fn garbage_is_malformed() {
        let policy = SvidPolicy::new([TrustDomain::new("example.org").unwrap()]).unwrap();
        let err = policy.workload_id(b"not a certificate", SystemTime::now()).unwrap_err();
        assert!(matches!(err, SvidError::Malformed { .. }), "{err:?}");
        assert_eq!(
            policy.peer_workload_id(None, SystemTime::now()),
            Err(SvidError::NoCertificate)
        );
    }
}
