//! `portcullis run`: the gateway's HTTP front, until SIGINT/SIGTERM.
use std::{path::Path, process::ExitCode};

use anyhow::Context;
use portcullis_gateway::{Gateway, Recorder, serve_http};
use sha2::Digest;

use crate::{audit_open, config, policy_open, shutdown};

pub async fn run(path: &Path) -> anyhow::Result<ExitCode> {
    let loaded = config::load(path)?;
    for w in &loaded.warnings {
        tracing::warn!("{w}");
    }
    let addr = loaded.gateway.listen.http.ok_or_else(|| config::ConfigError {
        file: path.display().to_string(),
        key: "listen.http".into(),
        reason: "not set; give an address like 127.0.0.1:8080 (or use `portcullis stdio`)".into(),
    })?;
    let recorder = match &loaded.audit {
        Some(settings) => audit_open::recorder(settings).await?,
        None => Recorder::new(None),
    };
    let config_bytes = std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
    let servers: Vec<String> = loaded.gateway.servers.iter().map(|s| s.name.to_string()).collect();
    recorder
        .config_loaded(sha2::Sha256::digest(&config_bytes).into(), &servers)
        .await?;
    let authoriser = policy_open::open(&loaded.policy)?;
    policy_open::watch(authoriser.store.clone(), recorder.clone(), &loaded.policy);
    let gateway = Gateway::new(loaded.gateway, recorder, authoriser);
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .with_context(|| format!("cannot listen on {addr}; is another process using it?"))?;
    let local = listener.local_addr()?;
    tracing::info!("portcullis listening on http://{local}/mcp");
    serve_http(gateway.clone(), listener, shutdown::signalled()).await?;
    gateway.shutdown().await;
    tracing::info!("stopped");
    Ok(ExitCode::SUCCESS)
}
