//! `portcullis ca init|issue`: the built-in development CA, so anyone can run mutual TLS
//! (gateway front, upstreams, `portcullis connect`) without SPIRE.
//!
//! `init` creates a trust domain's CA in a directory (`ca.pem` is the trust bundle to hand
//! to peers, `ca.key` stays private); `issue` signs a short-lived X.509-SVID for one
//! SPIFFE ID. The certificate work itself is `portcullis_identity::DevCa`.
use std::{
    path::{Path, PathBuf},
    process::ExitCode,
    time::Duration,
};

use anyhow::Context;
use clap::Subcommand;
use portcullis_identity::{DevCa, SpiffeId, TrustDomain};

#[derive(Debug, Subcommand)]
pub enum CaCommand {
    /// Create a development CA for a trust domain in DIR.
    Init {
        /// Where the CA lives (`ca.pem`, the trust bundle, and `ca.key`, mode 0600).
        #[arg(long)]
        dir: PathBuf,
        /// The SPIFFE trust domain, e.g. `example.org`.
        #[arg(long)]
        trust_domain: TrustDomain,
        /// Replace an existing CA (every SVID it issued stops being trusted).
        #[arg(long)]
        force: bool,
    },
    /// Issue an X.509-SVID: writes PREFIX.pem (certificate) and PREFIX.key (mode 0600).
    Issue {
        /// The CA directory written by `ca init`.
        #[arg(long)]
        dir: PathBuf,
        /// The workload's SPIFFE ID, e.g. `spiffe://example.org/agent/x`.
        #[arg(long)]
        spiffe_id: SpiffeId,
        /// How long the SVID is valid, e.g. 90s, 15m, 24h.
        #[arg(long, default_value = "1h", value_parser = crate::duration::parse)]
        ttl: Duration,
        /// Output path prefix: PREFIX.pem and PREFIX.key.
        #[arg(long)]
        out: PathBuf,
        /// DNS name or IP address to add as a SAN, for SVIDs that serve TLS to clients
        /// checking host names (repeatable).
        #[arg(long = "server-name", value_name = "NAME")]
        server_names: Vec<String>,
    },
}

pub fn run(command: CaCommand) -> anyhow::Result<ExitCode> {
    match command {
        CaCommand::Init {
            dir,
            trust_domain,
            force,
        } => init(&dir, trust_domain, force),
        CaCommand::Issue {
            dir,
            spiffe_id,
            ttl,
            out,
            server_names,
        } => issue(&dir, &spiffe_id, ttl, &out, &server_names),
    }
}

fn init(dir: &Path, trust_domain: TrustDomain, force: bool) -> anyhow::Result<ExitCode> {
    if force {
        for file in ["ca.key", "ca.pem"] {
            let path = dir.join(file);
            if path.exists() {
                std::fs::remove_file(&path).with_context(|| format!("cannot remove `{}`", path.display()))?;
            }
        }
    } else if dir.join("ca.key").exists() {
        anyhow::bail!(
            "a dev CA already exists in `{}`; pass --force to replace it (SVIDs it issued stop being trusted)",
            dir.display()
        );
    }
    let ca =
        DevCa::init(dir, trust_domain).with_context(|| format!("cannot create a dev CA in `{}`", dir.display()))?;
    println!(
        "created a dev CA for trust domain `{}` in {}",
        ca.trust_domain(),
        dir.display()
    );
    println!(
        "trust bundle: {} (give it to peers)\nprivate key:  {} (keep it private)",
        dir.join("ca.pem").display(),
        dir.join("ca.key").display()
    );
    println!(
        "next: portcullis ca issue --dir {} --spiffe-id spiffe://{}/agent/NAME --ttl 15m --out agent",
        dir.display(),
        ca.trust_domain()
    );
    Ok(ExitCode::SUCCESS)
}

fn issue(
    dir: &Path,
    spiffe_id: &SpiffeId,
    ttl: Duration,
    out: &Path,
    server_names: &[String],
) -> anyhow::Result<ExitCode> {
    if !dir.join("ca.key").is_file() {
        anyhow::bail!(
            "no dev CA in `{}`; create one with `portcullis ca init --dir {} --trust-domain {}`",
            dir.display(),
            dir.display(),
            spiffe_id.trust_domain()
        );
    }
    let ca = DevCa::load(dir).with_context(|| format!("cannot load the dev CA in `{}`", dir.display()))?;
    let svid = ca.issue(spiffe_id, ttl, server_names)?;
    let (out_dir, prefix) = split_prefix(out)?;
    std::fs::create_dir_all(&out_dir).with_context(|| format!("cannot create `{}`", out_dir.display()))?;
    let (cert, key) = svid.write(&out_dir, &prefix)?;
    println!(
        "issued {spiffe_id} for {}s\ncertificate: {}\nprivate key: {} (mode 0600, keep it private)\ntrust bundle: {}",
        ttl.as_secs(),
        cert.display(),
        key.display(),
        dir.join("ca.pem").display()
    );
    Ok(ExitCode::SUCCESS)
}

/// `dir/name` → (`dir`, `name`); a bare name writes into the current directory.
fn split_prefix(out: &Path) -> anyhow::Result<(PathBuf, String)> {
    let name = out
        .file_name()
        .and_then(|n| n.to_str())
        .filter(|n| !n.is_empty())
        .with_context(|| format!("--out `{}` needs a file name prefix, like `certs/agent`", out.display()))?;
    let dir = match out.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    Ok((dir, name.to_owned()))
}

/// The dev PKI that `init` and `demo` set up so mutual TLS works out of the box:
/// paths relative to the config directory.
pub struct StarterPki {
    pub agent_cert: PathBuf,
    pub agent_key: PathBuf,
    pub bundle: PathBuf,
    /// When the issued SVIDs expire.
    pub not_after: std::time::SystemTime,
}

/// Trust domain of the starter PKI.
pub const STARTER_TRUST_DOMAIN: &str = "example.org";
/// SPIFFE ID of the starter agent SVID.
pub const STARTER_AGENT: &str = "spiffe://example.org/agent/dev";

/// Creates (or reuses) `dir/pki/ca`, and issues the gateway's server SVID
/// (`pki/gateway.pem`, for localhost and 127.0.0.1) and an agent SVID
/// (`pki/agent.pem`), both valid for `ttl`.
pub fn starter_pki(dir: &Path, ttl: Duration) -> anyhow::Result<StarterPki> {
    let pki = dir.join("pki");
    let ca_dir = pki.join("ca");
    let ca = if ca_dir.join("ca.key").exists() {
        DevCa::load(&ca_dir).with_context(|| format!("cannot load the dev CA in `{}`", ca_dir.display()))?
    } else {
        let domain = TrustDomain::new(STARTER_TRUST_DOMAIN)?;
        DevCa::init(&ca_dir, domain).with_context(|| format!("cannot create a dev CA in `{}`", ca_dir.display()))?
    };
    let gateway = SpiffeId::parse("spiffe://example.org/gateway")?;
    ca.issue(&gateway, ttl, &["localhost".into(), "127.0.0.1".into()])?
        .write(&pki, "gateway")?;
    let agent = SpiffeId::parse(STARTER_AGENT)?;
    let issued = ca.issue(&agent, ttl, &[])?;
    let not_after = issued
        .cert_der()
        .ok()
        .and_then(|der| portcullis_identity::not_after(der.as_ref()))
        .unwrap_or_else(|| std::time::SystemTime::now() + ttl);
    let (agent_cert, agent_key) = issued.write(&pki, "agent")?;
    Ok(StarterPki {
        agent_cert,
        agent_key,
        bundle: ca_dir.join("ca.pem"),
        not_after,
    })
}
