//! Mutual TLS for the `full` targets: a dev CA made with the gateway's own
//! `portcullis ca` commands (as an operator would), the gateway's server SVID, the
//! load client's SVID, and a reqwest client presenting it.
//!
//! The gateway then runs its identify stage on every call from the client
//! certificate (`listen.require = ["workload"]`), so `full` measures identity
//! as the product runs it: one handshake per connection (the load client keeps
//! its connections alive), certificate checks per request.
//!
//! The load client is also an attesting host: it has an Ed25519 host key (registered
//! with the gateway for its SPIFFE ID, signatures required) and signs every `tools/call`.
use std::{
    path::{Path, PathBuf},
    process::Command,
    sync::Arc,
    time::Duration,
};

use anyhow::{Context, bail};
use portcullis_attest::HostSigner;
use portcullis_audit::LogSigner;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, pem::PemObject};

/// The trust domain of the bench's dev CA.
pub const TRUST_DOMAIN: &str = "bench.example";
/// The load client's workload identity.
pub const CLIENT_ID: &str = "spiffe://bench.example/load-client";
/// How long the load client's call signatures last: a host signs just before sending.
pub const SIGNATURE_TTL_SECS: u64 = 10;

/// Nonces the bench gateway remembers: 10 s of calls at 200k calls/s.
const REPLAY_CAPACITY: usize = 2_000_000;

/// The audience the load client signs its calls for (`[attestation] audience`).
pub const AUDIENCE: &str = "portcullis-bench";

/// A dev CA and the SVIDs of the gateway and the load client, in a temp dir.
pub struct BenchPki {
    _dir: tempfile::TempDir,
    bundle: PathBuf,
    gateway_cert: PathBuf,
    gateway_key: PathBuf,
    client_cert: PathBuf,
    client_key: PathBuf,
    /// The load client's host key and the public half the gateway registers.
    host_key: LogSigner,
    host_public: PathBuf,
}

fn portcullis(gateway_bin: &Path, args: &[&str]) -> anyhow::Result<()> {
    let out = Command::new(gateway_bin)
        .args(args)
        .output()
        .with_context(|| format!("cannot run `{}`", gateway_bin.display()))?;
    if !out.status.success() {
        bail!(
            "`portcullis {}` failed: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(())
}

impl BenchPki {
    /// `portcullis ca init`, then `portcullis ca issue` for the gateway (SANs 127.0.0.1 and
    /// localhost) and for the load client.
    pub fn new(gateway_bin: &Path) -> anyhow::Result<Self> {
        let dir = tempfile::Builder::new().prefix("portcullis-bench-pki-").tempdir()?;
        let ca = dir.path().join("ca");
        let ca_dir = ca.to_str().context("temp dir path is not UTF-8")?;
        portcullis(
            gateway_bin,
            &["ca", "init", "--dir", ca_dir, "--trust-domain", TRUST_DOMAIN],
        )?;
        let issue = |id: &str, prefix: &Path, names: &[&str]| -> anyhow::Result<()> {
            let out = prefix.to_str().context("temp dir path is not UTF-8")?;
            let mut args = vec![
                "ca",
                "issue",
                "--dir",
                ca_dir,
                "--spiffe-id",
                id,
                "--ttl",
                "24h",
                "--out",
                out,
            ];
            for name in names {
                args.extend(["--server-name", name]);
            }
            portcullis(gateway_bin, &args)
        };
        let gateway = dir.path().join("gateway");
        issue(
            &format!("spiffe://{TRUST_DOMAIN}/gateway"),
            &gateway,
            &["127.0.0.1", "localhost"],
        )?;
        let client = dir.path().join("client");
        issue(CLIENT_ID, &client, &[])?;
        let host_key = LogSigner::generate()?;
        let host_public = dir.path().join("host.pub");
        host_key.public_key().save(&host_public)?;
        Ok(Self {
            host_key,
            host_public,
            bundle: ca.join("ca.pem"),
            gateway_cert: gateway.with_extension("pem"),
            gateway_key: gateway.with_extension("key"),
            client_cert: client.with_extension("pem"),
            client_key: client.with_extension("key"),
            _dir: dir,
        })
    }

    /// The `[listen.tls]` table: the gateway's SVID, client SVIDs of the bench trust domain required.
    pub fn listen_tls(&self) -> String {
        format!(
            "[listen.tls]\ncert = {:?}\nkey = {:?}\nclient_ca = {:?}\ntrust_domains = [{TRUST_DOMAIN:?}]\nreload_interval_secs = 0\n",
            self.gateway_cert.display().to_string(),
            self.gateway_key.display().to_string(),
            self.bundle.display().to_string()
        )
    }

    /// The `[attestation]` tables: the load client's host key registered for its SPIFFE ID,
    /// a valid signature required on every `tools/call`. The replay cache holds every nonce
    /// until its signature expires; it is sized for [`SIGNATURE_TTL_SECS`] at well over any
    /// call rate a loopback run reaches (a full cache refuses calls, by design).
    /// `batch_verify`: signatures of calls arriving together verified as a batch, or each
    /// alone (the gateway's default).
    pub fn attestation(&self, batch_verify: bool) -> String {
        format!(
            "[attestation]\naudience = {AUDIENCE:?}\nreplay_capacity = {REPLAY_CAPACITY}\nbatch_verify = {batch_verify}\n\n[[attestation.hosts]]\nworkload = {CLIENT_ID:?}\nkey = {:?}\nrequired = true\n",
            self.host_public.display().to_string()
        )
    }

    /// The load client's call signer (its host key, for [`AUDIENCE`]).
    pub fn host_signer(&self) -> HostSigner {
        HostSigner::new(self.host_key.signing_key().clone(), AUDIENCE).with_ttl(SIGNATURE_TTL_SECS)
    }

    /// A load client trusting the dev CA and presenting the client SVID (keep-alive as
    /// [`crate::load::http_client`]).
    pub fn client(&self) -> anyhow::Result<reqwest::Client> {
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let mut roots = rustls::RootCertStore::empty();
        for cert in CertificateDer::pem_file_iter(&self.bundle)? {
            roots.add(cert?)?;
        }
        let chain = CertificateDer::pem_file_iter(&self.client_cert)?.collect::<Result<Vec<_>, _>>()?;
        let key = PrivateKeyDer::from_pem_file(&self.client_key)?;
        let tls = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()?
            .with_root_certificates(roots)
            .with_client_auth_cert(chain, key)?;
        Ok(reqwest::Client::builder()
            .tls_backend_preconfigured(tls)
            .pool_idle_timeout(Duration::from_secs(30))
            .timeout(Duration::from_secs(30))
            .build()?)
    }
}
