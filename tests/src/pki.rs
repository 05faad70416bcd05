//! Certificates for the identity tests: one trust domain's dev CA in a temp dir
//! (the gateway's own `portcullis_identity::DevCa`; the `portcullis ca` commands
//! are tested on their own in `cli.rs`), SVIDs written to files, rustls/reqwest
//! clients that present them, and a gateway started with `[listen.tls]`.
use std::{path::PathBuf, sync::Arc, time::Duration};

use portcullis_identity::{BadSvid, DevCa, IssuedSvid, SpiffeId, TrustDomain};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, pem::PemObject};

use crate::procs::GatewayProc;

pub const TRUST_DOMAIN: &str = "example.org";

/// An issued SVID's files: certificate chain and private key.
#[derive(Debug, Clone)]
pub struct SvidFiles {
    pub cert: PathBuf,
    pub key: PathBuf,
}

/// A trust domain's dev CA and the gateway's server SVID, in a temp dir.
pub struct Pki {
    pub dir: tempfile::TempDir,
    pub ca: DevCa,
    pub bundle: PathBuf,
    pub gateway_cert: PathBuf,
    pub gateway_key: PathBuf,
}

impl Pki {
    pub fn new() -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let ca = DevCa::init(&dir.path().join("ca"), TrustDomain::new(TRUST_DOMAIN).unwrap()).expect("dev CA");
        let bundle = dir.path().join("bundle.pem");
        std::fs::write(&bundle, ca.bundle_pem()).unwrap();
        let gw = ca
            .issue(
                &SpiffeId::parse("spiffe://example.org/gateway").unwrap(),
                Duration::from_secs(3600),
                &["localhost".into(), "127.0.0.1".into()],
            )
            .unwrap();
        let (gateway_cert, gateway_key) = gw.write(dir.path(), "gateway").unwrap();
        Self {
            dir,
            ca,
            bundle,
            gateway_cert,
            gateway_key,
        }
    }

    /// The CA's directory.
    pub fn ca_dir(&self) -> PathBuf {
        self.dir.path().join("ca")
    }

    /// An SVID for `spiffe_id` valid for 15 minutes, written as `<name>.pem`/`.key` in the
    /// temp dir; `server_names` become DNS/IP SANs.
    pub fn issue(&self, name: &str, spiffe_id: &str, server_names: &[&str]) -> SvidFiles {
        let names: Vec<String> = server_names.iter().map(|n| (*n).to_owned()).collect();
        let svid = self
            .ca
            .issue(&SpiffeId::parse(spiffe_id).unwrap(), Duration::from_secs(900), &names)
            .unwrap();
        let (cert, key) = svid.write(self.dir.path(), name).unwrap();
        SvidFiles { cert, key }
    }

    /// A client SVID for `id` valid for `ttl`.
    pub fn client(&self, id: &str, ttl: Duration) -> IssuedSvid {
        self.ca.issue(&SpiffeId::parse(id).unwrap(), ttl, &[]).unwrap()
    }

    /// A certificate broken in one way.
    pub fn bad_client(&self, kind: BadSvid) -> IssuedSvid {
        self.ca
            .issue_bad_svid_for_tests(&SpiffeId::parse("spiffe://example.org/agent/bad").unwrap(), kind)
            .unwrap()
    }

    /// The `[listen.tls]` table for a gateway requiring client SVIDs of example.org.
    pub fn listen_tls(&self) -> String {
        format!(
            "[listen.tls]\ncert = \"{}\"\nkey = \"{}\"\nclient_ca = \"{}\"\ntrust_domains = [\"{TRUST_DOMAIN}\"]\nreload_interval_secs = 0\n",
            self.gateway_cert.display(),
            self.gateway_key.display(),
            self.bundle.display()
        )
    }

    /// Starts a gateway over mutual TLS with `rest` (servers, policy, extra `[listen]` keys
    /// must go in `listen_extra`).
    pub fn gateway(&self, listen_extra: &str, rest: &str) -> GatewayProc {
        GatewayProc::start_with(&format!(
            "[listen]\nhttp = \"127.0.0.1:0\"\n{listen_extra}\n{}\n{rest}",
            self.listen_tls()
        ))
    }

    /// A TLS client config trusting this CA and presenting `svid` (none: no client cert).
    pub fn client_config(&self, svid: Option<&IssuedSvid>) -> rustls::ClientConfig {
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let mut roots = rustls::RootCertStore::empty();
        for cert in CertificateDer::pem_slice_iter(self.ca.bundle_pem().as_bytes()) {
            roots.add(cert.unwrap()).unwrap();
        }
        let builder = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_root_certificates(roots);
        match svid {
            None => builder.with_no_client_auth(),
            Some(svid) => {
                let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(svid.cert_pem.as_bytes())
                    .map(|c| c.unwrap())
                    .collect();
                let key = PrivateKeyDer::from_pem_slice(svid.key_pem.expose().as_bytes()).unwrap();
                builder.with_client_auth_cert(chain, key).unwrap()
            }
        }
    }

    /// A reqwest client presenting `svid`.
    pub fn http_client(&self, svid: Option<&IssuedSvid>) -> reqwest::Client {
        reqwest::Client::builder()
            .use_preconfigured_tls(self.client_config(svid))
            .timeout(Duration::from_secs(20))
            .build()
            .unwrap()
    }
}

impl Default for Pki {
    fn default() -> Self {
        Self::new()
    }
}
