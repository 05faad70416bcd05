//! `portcullis check-config`: validate a config and say what it would run.
use std::{path::Path, process::ExitCode};

use portcullis_gateway::config::UpstreamTransport;

use crate::config;

pub fn run(path: &Path) -> anyhow::Result<ExitCode> {
    let loaded = config::load(path)?;
    let g = &loaded.gateway;
    println!("{}: ok", path.display());
    match g.listen.http {
        Some(addr) => println!("  http front: http://{addr}/mcp"),
        None => println!("  http front: off (stdio front only)"),
    }
    for s in &g.servers {
        let how = match &s.transport {
            UpstreamTransport::Stdio { argv, env, .. } => {
                format!("stdio `{}` ({} env vars)", argv.join(" "), env.len())
            }
            UpstreamTransport::Http { url, tls: None, .. } => format!("http {url}"),
            UpstreamTransport::Http { url, tls: Some(_), .. } => format!("http {url} (mutual TLS)"),
        };
        println!("  server {}: {how}, default tier {}", s.name, s.default_tier);
    }
    for w in &loaded.warnings {
        println!("  warning: {w}");
    }
    Ok(ExitCode::SUCCESS)
}
