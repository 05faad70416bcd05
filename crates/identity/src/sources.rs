//! Where TLS material comes from: PEM files (re-read when they change) or a SPIFFE
//! Workload API (pushed by the agent).
//!
//! The front's server config, its client verifier and the upstream client configs all
//! take one of these, so a handshake reads the gateway's SVID and the trust bundles the
//! same way whichever source the operator configured.
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;

use rustls::RootCertStore;
use rustls::crypto::CryptoProvider;
use rustls::sign::CertifiedKey;

use crate::material::{TlsError, read_certified_key, read_trust_bundle};
use crate::reload::{Reload, Reloadable};
use crate::spiffe_id::TrustDomain;
use crate::workload_api::WorkloadApi;

/// Where the gateway's own X.509-SVID (certificate chain and private key) comes from.
#[derive(Debug, Clone)]
pub enum SvidSource {
    /// PEM chain (leaf first) and PEM private key, re-read per the config's [`Reload`].
    Files { cert_chain: PathBuf, private_key: PathBuf },
    /// The SVID the Workload API pushes; rotation applies to the next handshake.
    WorkloadApi(WorkloadApi),
}

/// Where the trust bundles peers' chains must lead to come from. Either way a bundle
/// belongs to one trust domain: a peer's chain must lead to the bundle of the trust domain
/// its SPIFFE ID names, so a CA vouches only for its own trust domain (SPIFFE federation:
/// a partner's CA can issue the partner's IDs, never ours).
#[derive(Debug, Clone)]
pub enum BundleSource {
    /// PEM files of CA certificates, one per trust domain (re-read when they change).
    Files(BTreeMap<TrustDomain, PathBuf>),
    /// The Workload API's bundles: the agent's own trust domain and federated ones.
    WorkloadApi(WorkloadApi),
}

impl BundleSource {
    /// The PEM bundle `path` of the one trust domain `trust_domain`.
    pub fn file(trust_domain: TrustDomain, path: impl Into<PathBuf>) -> Self {
        Self::Files(BTreeMap::from([(trust_domain, path.into())]))
    }

    /// Short description for logs and `check-config` (paths and addresses only).
    pub fn describe(&self) -> String {
        match self {
            Self::Files(files) => files
                .iter()
                .map(|(td, path)| format!("`{td}` from `{}`", path.display()))
                .collect::<Vec<_>>()
                .join(", "),
            Self::WorkloadApi(api) => format!("per trust domain from the SPIFFE Workload API at `{}`", api.endpoint()),
        }
    }
}

impl SvidSource {
    /// Short description for logs and errors (no secrets: paths and addresses only).
    pub fn describe(&self) -> String {
        match self {
            Self::Files {
                cert_chain,
                private_key,
            } => {
                format!("files `{}` and `{}`", cert_chain.display(), private_key.display())
            }
            Self::WorkloadApi(api) => format!("the SPIFFE Workload API at `{}`", api.endpoint()),
        }
    }
}

/// A [`SvidSource`] opened for handshakes.
#[derive(Debug)]
pub(crate) enum LiveSvid {
    Files(Reloadable<CertifiedKey>),
    WorkloadApi(WorkloadApi),
}

impl LiveSvid {
    /// Reads the files now (failure is an error: fail closed); the Workload API is read
    /// at each handshake.
    pub(crate) fn open(
        what: &'static str,
        source: &SvidSource,
        reload: Reload,
        provider: Arc<CryptoProvider>,
    ) -> Result<Self, TlsError> {
        match source {
            SvidSource::Files {
                cert_chain,
                private_key,
            } => {
                let (cert, key) = (cert_chain.clone(), private_key.clone());
                let paths = vec![cert.clone(), key.clone()];
                let material =
                    Reloadable::new(what, paths, reload, move || read_certified_key(&cert, &key, &provider))?;
                Ok(Self::Files(material))
            }
            SvidSource::WorkloadApi(api) => Ok(Self::WorkloadApi(api.clone())),
        }
    }

    /// The SVID to present now; `None` fails the handshake (logged by the source).
    pub(crate) fn current(&self) -> Option<Arc<CertifiedKey>> {
        match self {
            Self::Files(material) => Some(material.current()),
            Self::WorkloadApi(api) => api.certified_key(),
        }
    }

    /// Re-reads files now; the Workload API needs no reload (the agent pushes).
    pub(crate) fn reload(&self) -> Result<(), TlsError> {
        match self {
            Self::Files(material) => material.reload(),
            Self::WorkloadApi(_) => Ok(()),
        }
    }
}

/// A [`BundleSource`] opened for handshakes, as plain trust anchors per trust domain.
#[derive(Debug)]
pub(crate) enum LiveBundle {
    Files(BTreeMap<TrustDomain, Reloadable<RootCertStore>>),
    WorkloadApi(WorkloadApi),
}

impl LiveBundle {
    /// Reads every file now (failure is an error: fail closed).
    pub(crate) fn open(what: &'static str, source: &BundleSource, reload: Reload) -> Result<Self, TlsError> {
        match source {
            BundleSource::Files(files) => {
                let mut live = BTreeMap::new();
                for (trust_domain, path) in files {
                    let (td, bundle) = (trust_domain.clone(), path.clone());
                    let roots = Reloadable::new(what, vec![bundle.clone()], reload, move || {
                        read_trust_bundle(&bundle, &td)
                    })?;
                    live.insert(trust_domain.clone(), roots);
                }
                Ok(Self::Files(live))
            }
            BundleSource::WorkloadApi(api) => Ok(Self::WorkloadApi(api.clone())),
        }
    }

    /// The anchors for a peer in `trust_domain`: that trust domain's file, or its bundle
    /// from the Workload API; `None` if it has none (the peer is refused).
    pub(crate) fn roots_for(&self, trust_domain: &TrustDomain) -> Option<Arc<RootCertStore>> {
        match self {
            Self::Files(files) => files.get(trust_domain).map(Reloadable::current),
            Self::WorkloadApi(api) => api.roots_for(trust_domain),
        }
    }
}
