//! `portcullis check-config`: validate a config and say what it would run.
use std::{path::Path, process::ExitCode};

use portcullis_gateway::config::UpstreamTransport;

use crate::config;

pub fn run(path: &Path) -> anyhow::Result<ExitCode> {
    let loaded = config::load(path)?;
    crate::preflight::check(&loaded, path)?;
    let g = &loaded.gateway;
    println!("{}: ok", path.display());
    let scheme = if loaded.tls.is_some() { "https" } else { "http" };
    match g.listen.http {
        Some(addr) => println!("  http front: {scheme}://{addr}/mcp"),
        None => println!("  http front: off (stdio front only)"),
    }
    if let Some(tls) = &loaded.tls {
        println!("  front certificate: {}", tls.svid.describe());
        if let Some(trust) = &tls.client_trust {
            println!("  client trust bundles: {}", trust.bundle.describe());
        }
    }
    let (listen, per) = (&g.listen, &g.principal_limits);
    let rate = match per.rate {
        Some(rate) => format!("{}/s per principal (burst {})", rate.per_second, rate.burst),
        None => "no rate limit".into(),
    };
    println!(
        "  limits: {} sessions ({} per principal), {} requests in progress per principal, {rate}",
        listen.max_sessions, per.max_sessions, per.max_concurrent_calls
    );
    if g.listen.http.is_some() {
        let c = &listen.connections;
        println!(
            "  connections: at most {} ({} per address); timeouts: TLS handshake {} s, request head {} s, body {} s, keep-alive {} s",
            c.max_connections,
            c.max_connections_per_peer,
            c.tls_handshake_timeout.as_secs(),
            c.header_timeout.as_secs(),
            listen.body_timeout.as_secs(),
            c.keepalive_timeout.as_secs()
        );
    }
    if let Some(used) = &loaded.workload_api {
        println!(
            "  SPIFFE Workload API: `{}` for {} (SVIDs and bundles pushed by the agent; `run` stops if none arrives within {} s; not contacted by check-config)",
            used.api.endpoint(),
            used.used_by.join(", "),
            used.startup_timeout.as_secs()
        );
    }
    let auth = &g.listen.auth;
    if let Some(svid) = &auth.svid {
        let domains: Vec<String> = svid.trust_domains().map(ToString::to_string).collect();
        let need = if auth.require_workload { "required" } else { "optional" };
        println!(
            "  workload identity: client SVIDs {need}, trust domains {}",
            domains.join(", ")
        );
    }
    if let Some(bearer) = &auth.bearer {
        let need = if auth.require_user { "required" } else { "optional" };
        println!(
            "  user identity: bearer tokens {need}, audience {}",
            bearer.resource.resource
        );
    }
    if auth.svid.is_none() && auth.bearer.is_none() && g.listen.http.is_some() {
        println!(
            "  identity: none configured; HTTP callers are `{}` (anonymous)",
            g.anonymous_principal
        );
    }
    let attest = &g.attest;
    println!(
        "  signed calls: {} host key(s) registered, {} principal(s) must sign, audience `{}`",
        attest.verifier.as_ref().map_or(0, |v| v.host_count()),
        attest.required_signers.len(),
        loaded.audience
    );
    if attest.verifier.is_some() {
        println!(
            "  signature checks: {}",
            if attest.batcher.is_some() {
                "batched when calls arrive together (batch_verify = true)"
            } else {
                "each alone (batch_verify = false)"
            }
        );
    }
    match &loaded.receipt_key {
        Some(key) => println!(
            "  signed results: on, key file {}, {}",
            key.display(),
            if loaded.batch_receipts {
                "batch receipts (one signature per audit batch) when the audit log's key signs"
            } else {
                "a signature per result"
            }
        ),
        None => println!("  signed results: off"),
    }
    println!("  tool scanning: {:?}", attest.scan.mode);
    for s in &g.servers {
        let how = match &s.transport {
            UpstreamTransport::Stdio { argv, env, .. } => {
                format!("stdio `{}` ({} env vars)", argv.join(" "), env.len())
            }
            UpstreamTransport::Http { url, tls: None, .. } => format!("http {url}"),
            UpstreamTransport::Http { url, tls: Some(_), .. } => format!("http {url} (mutual TLS)"),
        };
        println!("  server {}: {how}, default tier {}", s.name, s.default_tier);
        if let Some(pinned) = attest.manifests.get(&s.name) {
            println!(
                "    manifest verified (key {}): {} pinned tool(s)",
                pinned.kid(),
                pinned.manifest().tools.len()
            );
        }
    }
    for w in &loaded.warnings {
        println!("  warning: {w}");
    }
    Ok(ExitCode::SUCCESS)
}
