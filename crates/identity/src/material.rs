//! Reading TLS material (certificate chains, private keys, trust bundles) from PEM files.
//!
//! Used when the HTTP front and the upstream client build their rustls configs, and
//! again on every reload; also the one place that names the crypto provider.
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::SystemTime;

use rustls::RootCertStore;
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::sign::CertifiedKey;
use x509_parser::extensions::GeneralName;

use crate::spiffe_id::TrustDomain;

/// Why TLS material could not be loaded or a TLS config could not be built.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("cannot read PEM file `{path}`: {source}; check the path and its permissions")]
    ReadPem {
        path: PathBuf,
        source: rustls::pki_types::pem::Error,
    },
    #[error("`{path}` holds no certificate; expected one or more `BEGIN CERTIFICATE` blocks")]
    NoCertificate { path: PathBuf },
    #[error("private key in `{path}` is not usable: {source}; use a PKCS#8 ECDSA P-256, Ed25519 or RSA key")]
    BadKey { path: PathBuf, source: rustls::Error },
    #[error(
        "private key `{key}` does not belong to the leaf certificate in `{cert}`; \
         rewrite both files from the same issuance"
    )]
    KeyMismatch { cert: PathBuf, key: PathBuf },
    #[error("trust bundle `{path}` holds a certificate that is not a usable trust anchor: {source}")]
    BadTrustAnchor { path: PathBuf, source: rustls::Error },
    #[error(
        "trust bundle `{path}` is the bundle of trust domain `{trust_domain}` but holds a CA of trust domain \
         `{ca_trust_domain}` (its URI SAN names it); a CA vouches only for its own trust domain, so give \
         `{ca_trust_domain}` its own file (`bundles = {{ \"{ca_trust_domain}\" = \"…\" }}`) or remove that CA"
    )]
    ForeignCa {
        path: PathBuf,
        trust_domain: TrustDomain,
        ca_trust_domain: String,
    },
    #[error("cannot build the client certificate verifier: {0}")]
    Verifier(#[from] rustls::server::VerifierBuilderError),
    #[error("cannot build the TLS config: {0}")]
    Config(#[from] rustls::Error),
    #[error(transparent)]
    WorkloadApi(#[from] crate::workload_api::WorkloadApiError),
    #[error(transparent)]
    Svid(#[from] crate::svid::SvidError),
}

/// The crypto provider for every TLS config this crate builds (aws-lc-rs).
///
/// Configs are built with it explicitly, so they never depend on a process default.
pub fn crypto_provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::aws_lc_rs::default_provider())
}

/// Installs aws-lc-rs as the process-wide rustls provider, for libraries (reqwest) that
/// consult the process default. Call once at startup; a second call is a no-op.
pub fn install_default_crypto_provider() {
    // Err means a provider is already installed: nothing to do.
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
}

pub(crate) fn read_certs(path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let read_err = |source| TlsError::ReadPem {
        path: path.to_path_buf(),
        source,
    };
    let certs = CertificateDer::pem_file_iter(path)
        .map_err(read_err)?
        .collect::<Result<Vec<_>, _>>()
        .map_err(read_err)?;
    if certs.is_empty() {
        return Err(TlsError::NoCertificate {
            path: path.to_path_buf(),
        });
    }
    Ok(certs)
}

pub(crate) fn read_key(path: &Path) -> Result<PrivateKeyDer<'static>, TlsError> {
    PrivateKeyDer::from_pem_file(path).map_err(|source| TlsError::ReadPem {
        path: path.to_path_buf(),
        source,
    })
}

/// A certificate chain and its private key as a rustls [`CertifiedKey`], checked to match.
pub(crate) fn read_certified_key(
    cert_path: &Path,
    key_path: &Path,
    provider: &CryptoProvider,
) -> Result<CertifiedKey, TlsError> {
    let chain = read_certs(cert_path)?;
    let key = read_key(key_path)?;
    let signing_key = provider
        .key_provider
        .load_private_key(key)
        .map_err(|source| TlsError::BadKey {
            path: key_path.to_path_buf(),
            source,
        })?;
    let certified = CertifiedKey::new(chain, signing_key);
    certified.keys_match().map_err(|_| TlsError::KeyMismatch {
        cert: cert_path.to_path_buf(),
        key: key_path.to_path_buf(),
    })?;
    Ok(certified)
}

/// Every certificate in the PEM bundle of `trust_domain` as a trust anchor; any unusable
/// one fails the load, and so does a CA whose own SPIFFE ID (a `spiffe://<td>` URI SAN, as
/// SPIRE and the dev CA write) names another trust domain: that is a partner's CA in our
/// file, which would otherwise vouch for our IDs. CAs without such a SAN are taken as the
/// file's trust domain's.
pub(crate) fn read_trust_bundle(path: &Path, trust_domain: &TrustDomain) -> Result<RootCertStore, TlsError> {
    let mut roots = RootCertStore::empty();
    for cert in read_certs(path)? {
        if let Some(other) = ca_trust_domains(&cert).find(|td| td != trust_domain.as_str()) {
            return Err(TlsError::ForeignCa {
                path: path.to_path_buf(),
                trust_domain: trust_domain.clone(),
                ca_trust_domain: other,
            });
        }
        roots.add(cert).map_err(|source| TlsError::BadTrustAnchor {
            path: path.to_path_buf(),
            source,
        })?;
    }
    Ok(roots)
}

/// The trust domains a CA certificate names in `spiffe://` URI SANs, lowercased (the
/// scheme and trust domain are case-insensitive, SPIFFE-ID §2.4). Parse failures yield
/// none: the anchor check of [`read_trust_bundle`] reports a broken certificate.
fn ca_trust_domains(der: &CertificateDer<'_>) -> impl Iterator<Item = String> {
    let mut domains = Vec::new();
    if let Ok((_, cert)) = x509_parser::parse_x509_certificate(der.as_ref())
        && let Ok(Some(san)) = cert.subject_alternative_name()
    {
        for name in &san.value.general_names {
            let GeneralName::URI(uri) = name else { continue };
            let scheme = uri.get(..9).filter(|s| s.eq_ignore_ascii_case("spiffe://"));
            let Some(rest) = scheme.and_then(|_| uri.get(9..)) else {
                continue;
            };
            let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
            domains.push(authority.to_ascii_lowercase());
        }
    }
    domains.into_iter()
}

/// What a file looked like when last read: a change in any field triggers a reload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct FileStamp {
    len: u64,
    modified: Option<SystemTime>,
    /// Atomic replacement (write + rename) changes the inode even if size and mtime match.
    #[cfg(unix)]
    inode: u64,
}

impl FileStamp {
    /// `None` if the file cannot be inspected (missing mid-rotation, for instance).
    pub(crate) fn of(path: &Path) -> Option<Self> {
        let meta = fs::metadata(path).ok()?;
        Some(Self {
            len: meta.len(),
            modified: meta.modified().ok(),
            #[cfg(unix)]
            inode: std::os::unix::fs::MetadataExt::ino(&meta),
        })
    }
}
