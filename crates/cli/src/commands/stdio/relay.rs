//! The relaying side of a shared `portcullis stdio`: dial the holder's Unix socket, say
//! which config and server this host asked for (`Hello`), and get a connection the holder
//! serves like its own stdin (`Welcome`), or its reason for refusing.
//!
//! Wire: one JSON line each way, then MCP's own newline-delimited JSON-RPC.
use std::{
    path::{Path, PathBuf},
    time::Duration,
};

use serde::{Deserialize, Serialize};
use tokio::{
    io::{AsyncBufReadExt, AsyncRead, AsyncReadExt, AsyncWriteExt, BufReader},
    net::UnixStream,
};

use super::host::Conn;

/// The version of the relay handshake.
pub const RELAY_VERSION: u32 = 1;
/// Longest handshake line accepted.
pub const MAX_HANDSHAKE: u64 = 64 * 1024;
/// How long connecting and the handshake may take.
pub const HANDSHAKE_LIMIT: Duration = Duration::from_secs(5);

/// What a relaying process asks for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Hello {
    pub portcullis_relay: u32,
    /// The config file (absolute) and its SHA-256.
    pub config: PathBuf,
    pub config_sha256: String,
    /// `--server`, if given.
    pub server: Option<String>,
    pub pid: u32,
}

impl Hello {
    pub fn new(path: &Path, server: Option<&str>) -> anyhow::Result<Self> {
        let (config, config_sha256) = super::fingerprint(path)?;
        Ok(Self {
            portcullis_relay: RELAY_VERSION,
            config,
            config_sha256,
            server: server.map(str::to_owned),
            pid: std::process::id(),
        })
    }

    /// Fails when the config file changed since this process started (a new gateway would
    /// run a config its host did not start it with).
    pub fn check_unchanged(&self, path: &Path) -> anyhow::Result<()> {
        let (_, now) = super::fingerprint(path)?;
        if now != self.config_sha256 {
            anyhow::bail!(
                "{} changed since this host started `portcullis stdio`; restart the host's MCP server so it \
                 runs the new config",
                path.display()
            );
        }
        Ok(())
    }

    /// Why a holder started with `self` must not serve `asked`, if it must not.
    pub fn mismatch(&self, asked: &Hello) -> Option<String> {
        if asked.portcullis_relay != RELAY_VERSION {
            return Some(format!(
                "relay handshake version {} is not {RELAY_VERSION}: both hosts must run the same portcullis; \
                 restart both",
                asked.portcullis_relay
            ));
        }
        if asked.config != self.config || asked.config_sha256 != self.config_sha256 {
            return Some(format!(
                "the portcullis stdio process already using this audit log (pid {}) runs {} as it was when it \
                 started, not {} as it is now; restart that host's MCP server (or give each config its own \
                 `[audit] path`)",
                self.pid,
                self.config.display(),
                asked.config.display()
            ));
        }
        if asked.server != self.server {
            let what = |s: &Option<String>| match s {
                Some(name) => format!("only server `{name}` (--server {name})"),
                None => "every server".to_owned(),
            };
            return Some(format!(
                "the portcullis stdio process already using this audit log (pid {}) serves {}, and this host asked \
                 for {}; give both hosts the same --server, or give each its own config with its own `[audit] path`",
                self.pid,
                what(&self.server),
                what(&asked.server)
            ));
        }
        None
    }
}

/// The holder's answer.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Welcome {
    pub portcullis_relay: u32,
    pub pid: u32,
    pub accepted: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refused: Option<String>,
}

/// What dialling the holder gave.
pub enum Dialled {
    /// The holder (`pid`) serves this host's session over `conn`.
    Accepted { conn: Conn, pid: u32 },
    /// The holder will not serve it, for good: the reason, for the user.
    Refused(String),
    /// Nobody answered (the holder is starting or stopping): why, for the log.
    NoAnswer(String),
}

/// Dials the holder's socket and shakes hands.
pub async fn dial(socket: &Path, hello: &Hello) -> Dialled {
    let stream = match tokio::time::timeout(HANDSHAKE_LIMIT, UnixStream::connect(socket)).await {
        Ok(Ok(stream)) => stream,
        Ok(Err(e)) => return Dialled::NoAnswer(format!("cannot connect to {}: {e}", socket.display())),
        Err(_) => {
            return Dialled::NoAnswer(format!(
                "{} did not accept within {HANDSHAKE_LIMIT:?}",
                socket.display()
            ));
        }
    };
    match (peer_uid(&stream), own_uid()) {
        (Some(peer), Some(own)) if peer == own => {}
        (peer, own) => {
            return Dialled::Refused(format!(
                "the relay socket {} belongs to another user (uid {peer:?}, this process runs as {own:?}); \
                 refusing to send this host's calls there",
                socket.display()
            ));
        }
    }
    let (read, mut write) = stream.into_split();
    let mut reader = BufReader::new(read);
    let exchange = async {
        let mut line = serde_json::to_vec(hello).unwrap_or_default();
        line.push(b'\n');
        write.write_all(&line).await?;
        write.flush().await?;
        read_line(&mut reader).await
    };
    let answer = match tokio::time::timeout(HANDSHAKE_LIMIT, exchange).await {
        Ok(Ok(Some(line))) => line,
        Ok(Ok(None)) => return Dialled::NoAnswer("the holder closed the relay connection (it is stopping)".into()),
        Ok(Err(e)) => return Dialled::NoAnswer(format!("the relay handshake failed: {e}")),
        Err(_) => return Dialled::NoAnswer(format!("no relay handshake within {HANDSHAKE_LIMIT:?}")),
    };
    match serde_json::from_slice::<Welcome>(&answer) {
        Ok(Welcome {
            accepted: true, pid, ..
        }) => Dialled::Accepted {
            conn: Conn {
                reader: Box::new(reader),
                writer: Box::new(write),
            },
            pid,
        },
        Ok(Welcome { refused, pid, .. }) => Dialled::Refused(
            refused.unwrap_or_else(|| format!("the portcullis stdio process {pid} refused this host's session")),
        ),
        Err(e) => Dialled::NoAnswer(format!("the holder's handshake is not understood: {e}")),
    }
}

/// One handshake line (at most [`MAX_HANDSHAKE`] bytes); `None` at end of input.
pub async fn read_line<R: AsyncRead + Unpin>(reader: &mut BufReader<R>) -> std::io::Result<Option<Vec<u8>>> {
    let mut line = Vec::new();
    let read = (&mut *reader).take(MAX_HANDSHAKE).read_until(b'\n', &mut line).await?;
    if read == 0 {
        return Ok(None);
    }
    if line.last() != Some(&b'\n') {
        return Err(std::io::Error::other("handshake line too long or cut off"));
    }
    line.pop();
    Ok(Some(line))
}

/// The user id of the process at the other end of `stream`.
pub fn peer_uid(stream: &UnixStream) -> Option<u32> {
    stream.peer_cred().ok().map(|c| c.uid())
}

/// This process's user id (read from a socket pair's credentials: no `libc` needed).
pub fn own_uid() -> Option<u32> {
    let (a, _b) = UnixStream::pair().ok()?;
    peer_uid(&a)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hello(config: &str, sha: &str, server: Option<&str>) -> Hello {
        Hello {
            portcullis_relay: RELAY_VERSION,
            config: PathBuf::from(config),
            config_sha256: sha.into(),
            server: server.map(str::to_owned),
            pid: 7,
        }
    }

    #[test]
    fn a_holder_serves_only_the_same_config_and_server() {
        let holder = hello("/c/portcullis.toml", "aa", None);
        assert_eq!(holder.mismatch(&hello("/c/portcullis.toml", "aa", None)), None);
        let changed = holder.mismatch(&hello("/c/portcullis.toml", "bb", None)).unwrap();
        assert!(changed.contains("restart that host"), "{changed}");
        let other = holder.mismatch(&hello("/d/portcullis.toml", "aa", None)).unwrap();
        assert!(other.contains("/d/portcullis.toml"), "{other}");
        let server = holder
            .mismatch(&hello("/c/portcullis.toml", "aa", Some("files")))
            .unwrap();
        assert!(
            server.contains("--server files") && server.contains("every server"),
            "{server}"
        );
    }

    #[tokio::test]
    async fn own_uid_is_known() {
        assert!(own_uid().is_some());
    }
}
