//! `portcullis run`: the gateway's HTTP front (and the admin listener, when configured),
//! until SIGINT/SIGTERM.
use std::{path::Path, process::ExitCode};

use anyhow::Context;
use portcullis_gateway::{serve_admin, serve_http};

use crate::{assemble, config, lock_note::LockNote, open_files, shutdown};

pub async fn run(path: &Path) -> anyhow::Result<ExitCode> {
    let mut loaded = config::load(path)?;
    crate::preflight::check(&loaded, path)?;
    for w in &loaded.warnings {
        tracing::warn!("{w}");
    }
    if let Some(open_files) = open_files::raise() {
        let (fitted, warning) = open_files::fit(loaded.gateway.listen.connections, open_files);
        if let Some(w) = warning {
            tracing::warn!("{w}");
        }
        loaded.gateway.listen.connections = fitted;
    }
    let addr = loaded.gateway.listen.http.ok_or_else(|| {
        config::ConfigError::one(
            path.display().to_string(),
            "listen.http",
            "not set; give an address like 127.0.0.1:8080 (or use `portcullis stdio`)",
        )
    })?;
    assemble::connect_workload_api(&loaded).await?;
    let tls = loaded.tls.as_ref().map(assemble::tls_acceptor).transpose()?;
    let scheme = if tls.is_some() { "https" } else { "http" };
    let admin_addr = loaded.admin_listen;
    // Bound before the gateway starts: a start that cannot listen records nothing, and the
    // audit log's lock note can give the address callers reach.
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .with_context(|| format!("cannot listen on {addr}; is another process using it?"))?;
    let admin_listener = match admin_addr {
        Some(admin) => {
            let bound = tokio::net::TcpListener::bind(admin.addr).await.with_context(|| {
                format!(
                    "cannot listen on {} (admin.listen); is another process using it?",
                    admin.addr
                )
            })?;
            Some((bound, admin.tls))
        }
        None => None,
    };
    let local = listener.local_addr()?;
    let mut note = LockNote::new("run", Some(path));
    note.url = Some(format!("{scheme}://{local}/mcp"));
    let gateway = assemble::gateway(loaded, Some(path), Some(note)).await?;
    let admin = match admin_listener {
        Some((admin_listener, admin_tls)) => {
            let admin_scheme = if admin_tls && tls.is_some() { "https" } else { "http" };
            tracing::info!(
                "portcullis admin API on {admin_scheme}://{}/approvals",
                admin_listener.local_addr()?
            );
            Some(tokio::spawn(serve_admin(
                gateway.clone(),
                admin_listener,
                tls.clone().filter(|_| admin_tls),
                std::future::pending(),
            )))
        }
        None => None,
    };
    tracing::info!("portcullis listening on {scheme}://{local}/mcp");
    serve_http(gateway.clone(), listener, tls, shutdown::signalled()).await?;
    if let Some(admin) = admin {
        admin.abort();
    }
    gateway.shutdown().await;
    tracing::info!("stopped");
    Ok(ExitCode::SUCCESS)
}
