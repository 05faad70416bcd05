//! The built-in development CA (`portcullis ca ...`): issues minute-TTL X.509-SVIDs so
//! anyone can run the mTLS front without SPIRE.
//!
//! Leaves are ECDSA P-256, carry exactly one `spiffe://` URI SAN, an explicit
//! "not a CA" basic-constraints extension (SVID parsers reject leaves without one), key
//! usage digitalSignature and EKU serverAuth + clientAuth, so one SVID serves both sides.
use std::fs;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use portcullis_core::Secret;
use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose, SanType,
};
use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;
use time::OffsetDateTime;

use crate::files::{write_private, write_public};
use crate::spiffe_id::{SpiffeId, TrustDomain};

const CA_CERT: &str = "ca.pem";
const CA_KEY: &str = "ca.key";
/// Leaves start slightly in the past so a peer with a lagging clock accepts them at once.
const BACKDATE: Duration = Duration::from_secs(60);
/// The dev CA itself lives a year; its leaves live as long as asked.
const CA_LIFETIME: Duration = Duration::from_secs(365 * 24 * 3600);

/// Why the dev CA could not be created, loaded or used.
#[derive(Debug, thiserror::Error)]
pub enum DevCaError {
    #[error("cannot access `{path}`: {source}")]
    Io { path: PathBuf, source: std::io::Error },
    #[error("a dev CA already exists at `{path}`; load it, or remove the directory to start over")]
    AlreadyExists { path: PathBuf },
    #[error("`{path}` is not a dev CA file: {reason}; re-create it with `ca init`")]
    BadCaFile { path: PathBuf, reason: String },
    #[error("certificate generation failed: {0}")]
    Generate(#[from] rcgen::Error),
    #[error("`{name}` is not a valid DNS name or IP address for a server certificate")]
    BadServerName { name: String },
    #[error("invalid spiffe id: {0}")]
    InvalidSpiffeId(#[from] crate::spiffe_id::SpiffeIdError),
    #[error("ttl must be more than zero")]
    ZeroTtl,
    #[error("spiffe id `{id}` is outside this CA's trust domain `{trust_domain}`")]
    ForeignTrustDomain { id: String, trust_domain: String },
}

/// A certificate and private key issued by the dev CA, both PEM.
#[derive(Debug, Clone)]
pub struct IssuedSvid {
    pub cert_pem: String,
    pub key_pem: Secret<String>,
}

impl IssuedSvid {
    /// The leaf as DER.
    pub fn cert_der(&self) -> Result<CertificateDer<'static>, DevCaError> {
        CertificateDer::from_pem_slice(self.cert_pem.as_bytes()).map_err(|e| DevCaError::BadCaFile {
            path: PathBuf::from("<issued certificate>"),
            reason: e.to_string(),
        })
    }

    /// Writes `<dir>/<prefix>.pem` (0644) and `<dir>/<prefix>.key` (0600), each atomically
    /// (write to a temporary file, then rename), so a reloading reader never sees half a file.
    pub fn write(&self, dir: &Path, prefix: &str) -> Result<(PathBuf, PathBuf), DevCaError> {
        let cert = dir.join(format!("{prefix}.pem"));
        let key = dir.join(format!("{prefix}.key"));
        write_private(&key, self.key_pem.expose().as_bytes())?;
        write_public(&cert, self.cert_pem.as_bytes())?;
        Ok((cert, key))
    }
}

/// The development CA: a self-signed ECDSA P-256 root for one trust domain.
pub struct DevCa {
    trust_domain: TrustDomain,
    cert_pem: String,
    issuer: Issuer<'static, KeyPair>,
}

impl std::fmt::Debug for DevCa {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DevCa")
            .field("trust_domain", &self.trust_domain)
            .finish_non_exhaustive()
    }
}

impl DevCa {
    /// Creates a new CA in `dir` (`ca.pem`, and `ca.key` with mode 0600). Refuses to
    /// overwrite an existing CA.
    pub fn init(dir: &Path, trust_domain: TrustDomain) -> Result<Self, DevCaError> {
        let key_path = dir.join(CA_KEY);
        if key_path.exists() {
            return Err(DevCaError::AlreadyExists { path: key_path });
        }
        fs::create_dir_all(dir).map_err(|source| DevCaError::Io {
            path: dir.to_path_buf(),
            source,
        })?;
        let ca = Self::generate(trust_domain)?;
        write_private(&key_path, ca.issuer.key().serialize_pem().as_bytes())?;
        write_public(&dir.join(CA_CERT), ca.cert_pem.as_bytes())?;
        Ok(ca)
    }

    /// Loads the CA that `init` wrote to `dir`.
    pub fn load(dir: &Path) -> Result<Self, DevCaError> {
        let cert_path = dir.join(CA_CERT);
        let key_path = dir.join(CA_KEY);
        let read = |path: &Path| {
            fs::read_to_string(path).map_err(|source| DevCaError::Io {
                path: path.to_path_buf(),
                source,
            })
        };
        let cert_pem = read(&cert_path)?;
        let bad = |path: &Path, reason: String| DevCaError::BadCaFile {
            path: path.to_path_buf(),
            reason,
        };
        let key = KeyPair::from_pem(read(&key_path)?.as_str()).map_err(|e| bad(&key_path, e.to_string()))?;
        let der = CertificateDer::from_pem_slice(cert_pem.as_bytes()).map_err(|e| bad(&cert_path, e.to_string()))?;
        let trust_domain = ca_trust_domain(&der).map_err(|reason| bad(&cert_path, reason))?;
        let issuer = Issuer::from_ca_cert_der(&der, key).map_err(|e| bad(&cert_path, e.to_string()))?;
        Ok(Self {
            trust_domain,
            cert_pem,
            issuer,
        })
    }

    /// A CA held only in memory (tests, and the "unknown issuer" test certificates).
    pub(crate) fn generate(trust_domain: TrustDomain) -> Result<Self, DevCaError> {
        let key = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256)?;
        let now = OffsetDateTime::now_utc();
        let mut params = CertificateParams::default();
        params.distinguished_name = distinguished_name(&format!("Portcullis dev CA ({trust_domain})"));
        params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
        params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        params.subject_alt_names = vec![SanType::URI(trust_domain.id().to_string().try_into()?)];
        params.not_before = now - BACKDATE;
        params.not_after = now + CA_LIFETIME;
        let cert = params.self_signed(&key)?;
        Ok(Self {
            trust_domain,
            cert_pem: cert.pem(),
            issuer: Issuer::new(params, key),
        })
    }

    pub fn trust_domain(&self) -> &TrustDomain {
        &self.trust_domain
    }

    /// The CA certificate as PEM: the trust bundle for peers of this CA's SVIDs.
    pub fn bundle_pem(&self) -> &str {
        &self.cert_pem
    }

    /// Issues an SVID for `spiffe_id`, valid from one minute ago for `ttl`. `server_names`
    /// become DNS (or IP) SANs, for SVIDs that also serve TLS to non-SPIFFE clients.
    pub fn issue(
        &self,
        spiffe_id: &SpiffeId,
        ttl: Duration,
        server_names: &[String],
    ) -> Result<IssuedSvid, DevCaError> {
        if spiffe_id.trust_domain() != &self.trust_domain {
            return Err(DevCaError::ForeignTrustDomain {
                id: spiffe_id.to_string(),
                trust_domain: self.trust_domain.to_string(),
            });
        }
        if spiffe_id.is_trust_domain_id() {
            // X509-SVID §3.1: that ID names the trust domain (this CA), never a workload.
            return Err(crate::spiffe_id::SpiffeIdError::NoPath(spiffe_id.to_string()).into());
        }
        if ttl.is_zero() {
            return Err(DevCaError::ZeroTtl);
        }
        let now = OffsetDateTime::now_utc();
        let spec = LeafSpec {
            uris: vec![spiffe_id.to_string()],
            server_names: server_names.to_vec(),
            not_before: now - BACKDATE,
            not_after: now + ttl,
            is_ca: false,
        };
        self.sign(&spec)
    }

    pub(crate) fn sign(&self, spec: &LeafSpec) -> Result<IssuedSvid, DevCaError> {
        let key = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256)?;
        let mut params = CertificateParams::default();
        params.distinguished_name = distinguished_name("Portcullis dev SVID");
        params.is_ca = if spec.is_ca {
            IsCa::Ca(BasicConstraints::Unconstrained)
        } else {
            IsCa::ExplicitNoCa
        };
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth, ExtendedKeyUsagePurpose::ClientAuth];
        params.use_authority_key_identifier_extension = true;
        params.not_before = spec.not_before;
        params.not_after = spec.not_after;
        for uri in &spec.uris {
            params.subject_alt_names.push(SanType::URI(uri.clone().try_into()?));
        }
        for name in &spec.server_names {
            params.subject_alt_names.push(server_name_san(name)?);
        }
        let cert = params.signed_by(&key, &self.issuer)?;
        Ok(IssuedSvid {
            cert_pem: cert.pem(),
            key_pem: Secret::new(key.serialize_pem()),
        })
    }
}

/// What goes into a leaf; `issue` builds a correct one, the test utilities build bad ones.
pub(crate) struct LeafSpec {
    pub(crate) uris: Vec<String>,
    pub(crate) server_names: Vec<String>,
    pub(crate) not_before: OffsetDateTime,
    pub(crate) not_after: OffsetDateTime,
    pub(crate) is_ca: bool,
}

fn distinguished_name(common_name: &str) -> DistinguishedName {
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, common_name);
    dn
}

fn server_name_san(name: &str) -> Result<SanType, DevCaError> {
    if let Ok(ip) = name.parse::<IpAddr>() {
        return Ok(SanType::IpAddress(ip));
    }
    let valid = !name.is_empty()
        && name
            .split('.')
            .all(|label| !label.is_empty() && label.chars().all(|c| c.is_ascii_alphanumeric() || c == '-'));
    if !valid {
        return Err(DevCaError::BadServerName { name: name.to_string() });
    }
    Ok(SanType::DnsName(name.to_string().try_into()?))
}

/// The trust domain named by the CA's own `spiffe://<td>` URI SAN.
fn ca_trust_domain(der: &CertificateDer<'_>) -> Result<TrustDomain, String> {
    let (_, cert) = x509_parser::parse_x509_certificate(der.as_ref()).map_err(|e| e.to_string())?;
    let uri = cert
        .subject_alternative_name()
        .ok()
        .flatten()
        .and_then(|san| {
            san.value.general_names.iter().find_map(|name| match name {
                x509_parser::extensions::GeneralName::URI(uri) => Some(uri.to_string()),
                _ => None,
            })
        })
        .ok_or_else(|| "the CA certificate has no `spiffe://<trust-domain>` URI SAN".to_string())?;
    let id = SpiffeId::parse(&uri).map_err(|e| e.to_string())?;
    Ok(id.trust_domain().clone())
}

/// The trust domains named by the CA certificates of a PEM bundle (their
/// `spiffe://<trust-domain>` URI SAN, as `ca init` writes them), for servers that are
/// handed only a bundle and must build an [`crate::SvidPolicy`]. Certificates without such
/// a SAN are skipped; an empty answer means the bundle names no trust domain.
pub fn bundle_trust_domains(path: &Path) -> Result<Vec<TrustDomain>, crate::TlsError> {
    let mut domains: Vec<TrustDomain> = crate::material::read_certs(path)?
        .iter()
        .filter_map(|der| ca_trust_domain(der).ok())
        .collect();
    domains.sort();
    domains.dedup();
    Ok(domains)
}

/// `SystemTime` of a leaf's expiry, for callers scheduling renewal.
pub fn not_after(cert_der: &[u8]) -> Option<SystemTime> {
    let (_, cert) = x509_parser::parse_x509_certificate(cert_der).ok()?;
    let secs = u64::try_from(cert.validity().not_after.timestamp()).ok()?;
    Some(SystemTime::UNIX_EPOCH + Duration::from_secs(secs))
}
