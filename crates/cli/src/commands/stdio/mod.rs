//! `portcullis stdio`: serve one desktop host on stdin/stdout.
//!
//! Several hosts may launch `portcullis stdio` for the same config at once, but a file audit
//! log has one writer. So the first process to take the log's lock runs the gateway and
//! also listens on a Unix socket beside the log (`holder`); a process that finds the lock
//! taken by such a `stdio` relays its host's lines to it (`relay`), and its host's session
//! is served with the same principal as if it were local. If the process it relays to
//! stops, the relay answers the calls still owed with an error, takes the log (or relays to
//! whoever took it), repeats the host's `initialize` there, and goes on. A lock held by
//! something that takes no relays (`run`) is reported with what holds it and what to do.
//! Design and limits: docs/stdio-sharing.md.
use std::{
    path::{Path, PathBuf},
    process::ExitCode,
    sync::Arc,
    time::{Duration, Instant},
};

use anyhow::Context;
use portcullis_gateway::{Gateway, serve_stdio};
use sha2::Digest;
use tokio::sync::watch;

use crate::{
    assemble,
    config::{self, AuditStoreSettings, LoadedConfig},
    lock_note::{self, LockNote},
    open_files, shutdown,
};

mod holder;
mod host;
mod relay;

use host::{Conn, Ended, HostSide};
use relay::{Dialled, Hello};

/// How long a `stdio` waits for the log's lock to be free or its holder to take a relay
/// (the holder may be starting, or stopping after its own host quit).
const ACQUIRE_LIMIT: Duration = Duration::from_secs(20);
/// Pause between two tries.
const RETRY_PAUSE: Duration = Duration::from_millis(100);

pub async fn run(path: &Path, only: Option<&str>) -> anyhow::Result<ExitCode> {
    let loaded = load(path, only)?;
    for w in &loaded.warnings {
        tracing::warn!("{w}");
    }
    // Each session's children hold pipes; a desktop's default limit is often 256 or 1024.
    open_files::raise();
    let hello = Hello::new(path, only)?;
    let (stop_tx, stop) = watch::channel(false);
    tokio::spawn(async move {
        shutdown::signalled().await;
        let _ = stop_tx.send(true);
    });
    let mut host = HostSide::new(
        tokio::io::stdin(),
        tokio::io::stdout(),
        loaded.gateway.limits.max_bytes,
        stop,
    );
    let mut first = Some(loaded);
    loop {
        let backend = match acquire(path, only, &hello, first.take()).await {
            Ok(backend) => backend,
            Err(e) => {
                host.fail_pending(&format!("portcullis stdio cannot go on: {e:#}"))
                    .await;
                return Err(e);
            }
        };
        match backend {
            Backend::Own { gateway, relays } => {
                let (conn, serving) = in_process(gateway.clone());
                let ended = host.pump(conn).await;
                let _ = serving.await;
                if let Some(relays) = relays {
                    relays.stop().await;
                }
                gateway.shutdown().await;
                ended?;
                return Ok(ExitCode::SUCCESS);
            }
            Backend::Relay { conn, pid } => match host.pump(conn).await? {
                Ended::Finished => return Ok(ExitCode::SUCCESS),
                Ended::BackendLost => {
                    tracing::warn!(
                        "the portcullis process (pid {pid}) that served this host stopped; continuing with a new one"
                    );
                    host.fail_pending(&format!(
                        "the portcullis process that served this session (pid {pid}) stopped before answering; the \
                         call may have run (see `portcullis audit show --config {}`); the session goes on with a new \
                         gateway process",
                        path.display()
                    ))
                    .await;
                }
            },
        }
    }
}

/// Loads the config, keeping only server `only` when given.
fn load(path: &Path, only: Option<&str>) -> anyhow::Result<LoadedConfig> {
    let mut loaded = config::load(path)?;
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
    // A bad policy file is a bad config (exit 2), as for `run` and `check-config`.
    crate::preflight::check_stdio(&loaded, path)?;
    Ok(loaded)
}

/// Where this host's session is served.
enum Backend {
    /// This process holds the log and runs the gateway; `relays` takes other hosts' sessions.
    Own {
        gateway: Arc<Gateway>,
        relays: Option<holder::RelayListener>,
    },
    /// Another `stdio` process (`pid`) holds the log; this one relays to it over `conn`.
    Relay { conn: Conn, pid: u32 },
}

/// Takes the audit log (and runs the gateway) or finds the `stdio` process that holds it,
/// retrying up to [`ACQUIRE_LIMIT`] while the holder starts or stops.
async fn acquire(
    path: &Path,
    only: Option<&str>,
    hello: &Hello,
    first: Option<LoadedConfig>,
) -> anyhow::Result<Backend> {
    let deadline = Instant::now() + ACQUIRE_LIMIT;
    let mut loaded = first;
    let mut last_try = String::new();
    loop {
        let cfg = match loaded.take() {
            Some(cfg) => cfg,
            None => {
                hello.check_unchanged(path)?;
                load(path, only)?
            }
        };
        let dir = match &cfg.audit {
            Some(settings) => match &settings.store {
                AuditStoreSettings::File { dir } => Some(dir.clone()),
                AuditStoreSettings::Postgres { .. } => None,
            },
            None => None,
        };
        // No file lock (a PostgreSQL log takes many writers; no log takes none): a gateway of
        // its own, nothing to share.
        let (admin, tls) = (cfg.admin_listen, cfg.tls.clone());
        let Some(dir) = dir else {
            let gateway = assemble::gateway(cfg, Some(path), None).await?;
            assemble::spawn_admin(&gateway, admin, tls.as_ref()).await;
            return Ok(Backend::Own { gateway, relays: None });
        };
        let socket = holder::socket_path(&dir);
        let mut note = LockNote::new("stdio", Some(path));
        note.relay = Some(socket.clone());
        match assemble::recorder(&cfg, Some(&note)).await {
            Ok(recorder) => {
                let gateway = assemble::gateway_with(cfg, Some(path), recorder).await?;
                assemble::spawn_admin(&gateway, admin, tls.as_ref()).await;
                let relays = match holder::listen(&socket, gateway.clone(), hello.clone()).await {
                    Ok(listener) => Some(listener),
                    Err(e) => {
                        tracing::warn!(
                            "other desktop hosts cannot share this gateway: cannot listen on {}: {e:#}",
                            socket.display()
                        );
                        None
                    }
                };
                return Ok(Backend::Own { gateway, relays });
            }
            Err(e) => {
                let Some((dir, holder)) = lock_note::locked(&e) else {
                    return Err(e);
                };
                match holder.as_deref().and_then(LockNote::parse) {
                    Some(LockNote {
                        relay: Some(socket), ..
                    }) => match relay::dial(&socket, hello).await {
                        Dialled::Accepted { conn, pid } => {
                            tracing::info!(
                                "the audit log at {} is held by portcullis stdio (pid {pid}); this host's session is \
                                 served by that process",
                                dir.display()
                            );
                            return Ok(Backend::Relay { conn, pid });
                        }
                        Dialled::Refused(why) => anyhow::bail!("{why}"),
                        Dialled::NoAnswer(why) => last_try = why,
                    },
                    // Something that takes no relays (`run`, `demo`): say what and what to do.
                    Some(_) => anyhow::bail!(lock_note::refusal(&dir, holder.as_deref())),
                    // Still starting (its note not written yet), or an older version.
                    None => {}
                }
                if Instant::now() >= deadline {
                    let mut text = lock_note::refusal(&dir, holder.as_deref());
                    if !last_try.is_empty() {
                        text.push_str(&format!(" (last try: {last_try})"));
                    }
                    anyhow::bail!(text);
                }
                loaded = Some(cfg);
            }
        }
        tokio::time::sleep(RETRY_PAUSE).await;
    }
}

/// This process's own gateway as a connection: `serve_stdio` on one end of an in-memory
/// pipe, the host side on the other.
fn in_process(gateway: Arc<Gateway>) -> (Conn, tokio::task::JoinHandle<()>) {
    let (front, back) = tokio::io::duplex(1 << 16);
    let (back_read, back_write) = tokio::io::split(back);
    let serving = tokio::spawn(async move {
        if let Err(e) = serve_stdio(gateway, back_read, back_write, std::future::pending()).await {
            tracing::error!("the stdio front stopped: {e}");
        }
    });
    let (read, write) = tokio::io::split(front);
    (
        Conn {
            reader: Box::new(read),
            writer: Box::new(write),
        },
        serving,
    )
}

/// The config file's absolute path and SHA-256: two `stdio` processes share a gateway only
/// when both are the same.
fn fingerprint(path: &Path) -> anyhow::Result<(PathBuf, String)> {
    let bytes = std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
    Ok((lock_note::absolute(path), hex::encode(sha2::Sha256::digest(&bytes))))
}
