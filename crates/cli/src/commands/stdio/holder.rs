//! The holding side of a shared `portcullis stdio`: the process that took the audit log's
//! lock listens on a Unix socket beside the log (in a directory only its user can enter,
//! the socket itself 0600, and every peer's user id checked) and serves each relayed host
//! with `serve_stdio`, exactly as it serves its own stdin: same gateway, same configured
//! principal, a session of its own.
use std::{
    os::unix::fs::{DirBuilderExt as _, PermissionsExt as _},
    path::{Path, PathBuf},
    sync::Arc,
    time::Duration,
};

use anyhow::Context;
use portcullis_gateway::{Gateway, serve_stdio};
use tokio::{
    io::{AsyncWriteExt, BufReader},
    net::{UnixListener, UnixStream},
    sync::watch,
    task::JoinSet,
};

use super::relay::{self, HANDSHAKE_LIMIT, Hello, RELAY_VERSION, Welcome};

/// How long relayed sessions may take to finish their calls when the holder stops.
const DRAIN_LIMIT: Duration = Duration::from_secs(30);

/// The relay socket of the file audit log at `audit_dir`.
pub fn socket_path(audit_dir: &Path) -> PathBuf {
    crate::lock_note::absolute(audit_dir).join("relay").join("stdio.sock")
}

/// Relayed sessions being taken and served.
pub struct RelayListener {
    stop: watch::Sender<bool>,
    accepting: tokio::task::JoinHandle<()>,
}

impl RelayListener {
    /// Stops taking relays, lets relayed calls in progress finish (bounded), closes the
    /// relayed sessions and removes the socket.
    pub async fn stop(self) {
        let _ = self.stop.send(true);
        if tokio::time::timeout(DRAIN_LIMIT + Duration::from_secs(5), self.accepting)
            .await
            .is_err()
        {
            tracing::warn!("relayed sessions did not finish within {DRAIN_LIMIT:?}");
        }
    }
}

/// Listens on `path` for other `stdio` processes of the same config (`ours`).
pub async fn listen(path: &Path, gateway: Arc<Gateway>, ours: Hello) -> anyhow::Result<RelayListener> {
    let dir = path
        .parent()
        .with_context(|| format!("{} has no parent directory", path.display()))?;
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .with_context(|| format!("cannot create {}", dir.display()))?;
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))
        .with_context(|| format!("cannot restrict {} to its owner", dir.display()))?;
    // This process holds the log's lock, so a socket left here is a dead holder's.
    match std::fs::remove_file(path) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(e).with_context(|| format!("cannot remove the old socket {}", path.display())),
    }
    let listener = UnixListener::bind(path).with_context(|| format!("cannot listen on {}", path.display()))?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))
        .with_context(|| format!("cannot restrict {} to its owner", path.display()))?;
    let own = relay::own_uid().context("cannot tell this process's user id")?;
    let (stop, stopped) = watch::channel(false);
    let path = path.to_owned();
    let accepting = tokio::spawn(accept(listener, path, gateway, Arc::new(ours), own, stopped));
    Ok(RelayListener { stop, accepting })
}

async fn accept(
    listener: UnixListener,
    path: PathBuf,
    gateway: Arc<Gateway>,
    ours: Arc<Hello>,
    own: u32,
    mut stopped: watch::Receiver<bool>,
) {
    let mut sessions = JoinSet::new();
    let for_sessions = stopped.clone();
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => {
                    sessions.spawn(session(stream, gateway.clone(), ours.clone(), own, for_sessions.clone()));
                }
                Err(e) => {
                    tracing::warn!("relay socket {}: accept failed: {e}", path.display());
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            },
            () = stop_requested(&mut stopped) => break,
            Some(_) = sessions.join_next(), if !sessions.is_empty() => {}
        }
    }
    drop(listener);
    let _ = std::fs::remove_file(&path);
    let drained = tokio::time::timeout(DRAIN_LIMIT, async { while sessions.join_next().await.is_some() {} }).await;
    if drained.is_err() {
        sessions.abort_all();
    }
}

/// One relayed host: check who it is and what it asks for, then serve it.
async fn session(
    stream: UnixStream,
    gateway: Arc<Gateway>,
    ours: Arc<Hello>,
    own: u32,
    stopped: watch::Receiver<bool>,
) {
    let peer = relay::peer_uid(&stream);
    if peer != Some(own) {
        tracing::warn!("relay socket: refused a connection from uid {peer:?} (this process runs as {own})");
        return;
    }
    let (read, mut write) = stream.into_split();
    let mut reader = BufReader::new(read);
    let asked = match tokio::time::timeout(HANDSHAKE_LIMIT, relay::read_line(&mut reader)).await {
        Ok(Ok(Some(line))) => serde_json::from_slice::<Hello>(&line).ok(),
        _ => None,
    };
    let Some(asked) = asked else {
        tracing::warn!("relay socket: a connection sent no valid handshake; closed");
        return;
    };
    let refused = ours.mismatch(&asked);
    let welcome = Welcome {
        portcullis_relay: RELAY_VERSION,
        pid: std::process::id(),
        accepted: refused.is_none(),
        refused: refused.clone(),
    };
    let mut line = serde_json::to_vec(&welcome).unwrap_or_default();
    line.push(b'\n');
    if write.write_all(&line).await.is_err() || write.flush().await.is_err() {
        return;
    }
    if let Some(why) = refused {
        tracing::warn!("relay socket: refused the host of pid {}: {why}", asked.pid);
        return;
    }
    tracing::info!(
        relayed_pid = asked.pid,
        "serving another desktop host's session (relayed by portcullis stdio pid {})",
        asked.pid
    );
    let mut stopped = stopped;
    let shutdown = async move { stop_requested(&mut stopped).await };
    if let Err(e) = serve_stdio(gateway, reader, write, shutdown).await {
        tracing::warn!("relayed session of pid {} ended: {e}", asked.pid);
    }
}

/// Completes once `stop` is set (or its sender is gone).
pub async fn stop_requested(stop: &mut watch::Receiver<bool>) {
    let _ = stop.wait_for(|s| *s).await;
}
