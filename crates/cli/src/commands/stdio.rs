//! `portcullis stdio`: serve one client on stdin/stdout.
use std::{path::Path, process::ExitCode};

use portcullis_gateway::serve_stdio;

use crate::{assemble, config, open_files, shutdown};

pub async fn run(path: &Path, only: Option<&str>) -> anyhow::Result<ExitCode> {
    let mut loaded = config::load(path)?;
    for w in &loaded.warnings {
        tracing::warn!("{w}");
    }
    if let Some(name) = only {
        loaded.gateway.servers.retain(|s| s.name.as_str() == name);
        if loaded.gateway.servers.is_empty() {
            return Err(config::ConfigError::one(
                path.display().to_string(),
                "servers",
                format!("no server named `{name}` (see `portcullis check-config`)"),
            )
            .into());
        }
    }
    // Each session's children hold pipes; a desktop's default limit is often 256 or 1024.
    open_files::raise();
    let gateway = assemble::gateway(loaded, Some(path)).await?;
    serve_stdio(
        gateway.clone(),
        tokio::io::stdin(),
        tokio::io::stdout(),
        shutdown::signalled(),
    )
    .await?;
    gateway.shutdown().await;
    Ok(ExitCode::SUCCESS)
}
