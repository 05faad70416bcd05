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
    #[error("cannot build the client certificate verifier: {0}")]
    Verifier(#[from] rustls::server::VerifierBuilderError),
    #[error("cannot build the TLS config: {0}")]
    Config(#[from] rustls::Error),
    #[error(transparent)]
    WorkloadApi(#[from] crate::workload_api::WorkloadApiError),
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

/// Every certificate in a PEM bundle as a trust anchor; any unusable one fails the load.
pub(crate) fn read_trust_bundle(path: &Path) -> Result<RootCertStore, TlsError> {
    let mut roots = RootCertStore::empty();
    for cert in read_certs(path)? {
        roots.add(cert).map_err(|source| TlsError::BadTrustAnchor {
            path: path.to_path_buf(),
            source,
        })?;
    }
    Ok(roots)
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
