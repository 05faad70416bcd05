//! Deliberately malformed SVIDs for threat tests (T16). Compiled only with the
//! `test-util` feature, which the release binary never enables.
//!
//! Each [`BadSvid`] breaks exactly one rule of the SPIFFE check, so a test that sees it
//! rejected proves that rule is enforced (by the handshake or by the per-call check).
use std::time::Duration;

use time::OffsetDateTime;

use crate::dev_ca::{DevCa, DevCaError, IssuedSvid, LeafSpec};
use crate::spiffe_id::{SpiffeId, TrustDomain};

/// The ways a test certificate can be wrong.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BadSvid {
    /// No URI SAN at all (a DNS SAN only).
    NoUriSan,
    /// Two `spiffe://` URI SANs.
    TwoUriSans,
    /// Signed by this CA but naming `spiffe://untrusted.example/...`.
    WrongTrustDomain,
    /// A leaf with basic constraints cA=true.
    CaLeaf,
    /// Expired an hour ago.
    Expired,
    /// Valid only from an hour from now.
    NotYetValid,
    /// Correct in every field but signed by a CA nobody trusts.
    UnknownIssuer,
    /// Names only the trust domain (`spiffe://example.org`, no path): the trust domain's
    /// own ID, never a workload's (X509-SVID §3.1).
    TrustDomainId,
}

impl BadSvid {
    pub const ALL: [BadSvid; 8] = [
        BadSvid::NoUriSan,
        BadSvid::TwoUriSans,
        BadSvid::WrongTrustDomain,
        BadSvid::CaLeaf,
        BadSvid::Expired,
        BadSvid::NotYetValid,
        BadSvid::UnknownIssuer,
        BadSvid::TrustDomainId,
    ];
}

impl DevCa {
    /// Issues a certificate for `spiffe_id` that is wrong in the way `kind` says.
    pub fn issue_bad_svid_for_tests(&self, spiffe_id: &SpiffeId, kind: BadSvid) -> Result<IssuedSvid, DevCaError> {
        let now = OffsetDateTime::now_utc();
        let hour = Duration::from_secs(3600);
        let mut spec = LeafSpec {
            uris: vec![spiffe_id.to_string()],
            server_names: Vec::new(),
            not_before: now - Duration::from_secs(60),
            not_after: now + hour,
            is_ca: false,
        };
        match kind {
            BadSvid::NoUriSan => {
                spec.uris.clear();
                spec.server_names.push("workload.example.org".to_string());
            }
            BadSvid::TwoUriSans => spec.uris.push(format!("{spiffe_id}-twin")),
            BadSvid::WrongTrustDomain => {
                let untrusted = TrustDomain::new("untrusted.example")?;
                let id = SpiffeId::from_parts(&untrusted, spiffe_id.path())?;
                spec.uris = vec![id.to_string()];
            }
            BadSvid::CaLeaf => spec.is_ca = true,
            BadSvid::TrustDomainId => spec.uris = vec![spiffe_id.trust_domain().id().to_string()],
            BadSvid::Expired => {
                spec.not_before = now - hour - hour;
                spec.not_after = now - hour;
            }
            BadSvid::NotYetValid => {
                spec.not_before = now + hour;
                spec.not_after = now + hour + hour;
            }
            BadSvid::UnknownIssuer => {
                let stranger = DevCa::generate(self.trust_domain().clone())?;
                return stranger.sign(&spec);
            }
        }
        self.sign(&spec)
    }

    /// An SVID for `spiffe_id` even outside this CA's trust domain: the cross-domain
    /// issuance a hostile or careless partner CA performs (a federated CA naming our IDs).
    pub fn issue_cross_domain_for_tests(&self, spiffe_id: &SpiffeId) -> Result<IssuedSvid, DevCaError> {
        let now = OffsetDateTime::now_utc();
        self.sign(&LeafSpec {
            uris: vec![spiffe_id.to_string()],
            server_names: vec!["localhost".to_string()],
            not_before: now - Duration::from_secs(60),
            not_after: now + Duration::from_secs(3600),
            is_ca: false,
        })
    }

    /// A CA that exists only in memory, for tests that need a second, independent CA.
    pub fn ephemeral_for_tests(trust_domain: TrustDomain) -> Result<DevCa, DevCaError> {
        DevCa::generate(trust_domain)
    }
}
