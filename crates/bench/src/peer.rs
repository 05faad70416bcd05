//! Peer gateways measured beside Portcullis in the same run (`--peer NAME=PATH`): a
//! binary the user built from the peer's public source, given the configuration that
//! makes it do what the `relay` target does — forward MCP to the bench upstream, over
//! Streamable HTTP or to a stdio child — and nothing more. No peer is a dependency of
//! this repository.
//!
//! Known peers: `agentgateway` (<https://github.com/agentgateway/agentgateway>), with
//! its MCP-only config form (`mcp.port`, one `mcp.targets` entry naming the upstream's
//! URL or the stdio command; stateful sessions, its default, as the load client opens
//! legacy sessions; one target, so tool names are not prefixed).
use std::{
    path::{Path, PathBuf},
    process::{Command, Stdio},
    time::{Duration, Instant},
};

use anyhow::{Context, bail};

use crate::{procs::Proc, wire};

/// The peers `--peer` knows, with what their target measures.
pub const KNOWN: [(&str, &str); 1] = [(
    "agentgateway",
    "peer, not Portcullis: agentgateway (the binary given with --peer) forwarding MCP to the bench upstream \
     (Streamable HTTP, or the upstream as its stdio child) — one MCP target, stateful sessions (its default); \
     no policy, no authentication, no audit log",
)];

/// The upstream a peer forwards to.
#[derive(Debug, Clone, Copy)]
pub enum PeerUpstream<'a> {
    /// The bench upstream's Streamable HTTP endpoint.
    Http(&'a str),
    /// The bench upstream binary, started by the peer as its stdio child (`--stdio`).
    Stdio(&'a Path),
}

/// A peer to measure: its name (one of [`KNOWN`]) and the binary.
#[derive(Debug, Clone)]
pub struct Peer {
    pub name: String,
    pub binary: PathBuf,
}

impl Peer {
    /// Parses `NAME=PATH`; the name must be a known peer and the path an existing file.
    pub fn parse(arg: &str) -> anyhow::Result<Self> {
        let Some((name, path)) = arg.split_once('=') else {
            bail!("--peer takes NAME=PATH (for example agentgateway=/path/to/agentgateway), got `{arg}`");
        };
        if !KNOWN.iter().any(|(known, _)| *known == name) {
            let names: Vec<&str> = KNOWN.iter().map(|(n, _)| *n).collect();
            bail!("unknown peer `{name}`; known peers: {}", names.join(", "));
        }
        let binary = PathBuf::from(path);
        if !binary.is_file() {
            bail!(
                "peer `{name}`: {} is not a file (build the peer from its public source and give the binary's path)",
                binary.display()
            );
        }
        Ok(Self {
            name: name.to_owned(),
            binary,
        })
    }

    /// What this peer's target measures (for the report).
    pub fn description(&self) -> String {
        let what = KNOWN
            .iter()
            .find(|(n, _)| *n == self.name)
            .map(|(_, d)| *d)
            .unwrap_or_default();
        format!("{what}; binary {}", self.binary.display())
    }

    /// Starts the peer in `dir`, forwarding to `upstream`, and waits until it accepts
    /// MCP requests. Returns the process and the URL to load.
    pub async fn start(
        &self,
        dir: &Path,
        upstream: PeerUpstream<'_>,
        client: &reqwest::Client,
    ) -> anyhow::Result<(Proc, String)> {
        let port = crate::procs::free_port()?;
        let side_ports = [
            crate::procs::free_port()?,
            crate::procs::free_port()?,
            crate::procs::free_port()?,
        ];
        let config = agentgateway_config(port, side_ports, upstream);
        let path = dir.join("agentgateway.yaml");
        std::fs::write(&path, config)?;
        let log = dir.join("agentgateway.log");
        let child = Command::new(&self.binary)
            .arg("-f")
            .arg(&path)
            .current_dir(dir)
            .stdin(Stdio::null())
            .stdout(std::fs::File::create(dir.join("agentgateway.out"))?)
            .stderr(std::fs::File::create(&log)?)
            .spawn()
            .with_context(|| format!("cannot start peer `{}` ({})", self.name, self.binary.display()))?;
        let mut proc = Proc { child, log: Some(log) };
        let url = format!("http://127.0.0.1:{port}/mcp");
        let started = Instant::now();
        loop {
            // Ready once it answers an initialize with a session (it connects to the
            // upstream for that).
            if let Ok(r) = client
                .post(&url)
                .header("accept", "application/json, text/event-stream")
                .json(&wire::initialize(0))
                .send()
                .await
                && r.status().is_success()
                && r.headers().contains_key("mcp-session-id")
            {
                return Ok((proc, url));
            }
            if let Some(status) = proc.child.try_wait()? {
                bail!(
                    "peer `{}` exited ({status}) at start; log:\n{}",
                    self.name,
                    proc.log_tail()
                );
            }
            if started.elapsed() > Duration::from_secs(60) {
                bail!(
                    "peer `{}` did not answer an MCP initialize on {url} within 60 s; log:\n{}",
                    self.name,
                    proc.log_tail()
                );
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

/// agentgateway's configuration: MCP on `port` (all addresses; loaded on loopback),
/// forwarded to the bench upstream (its Streamable HTTP URL, or its binary as a stdio child).
/// Its admin, stats and readiness listeners (15000, 15020 and 15021 by default) move to
/// `[admin, stats, readiness]` on loopback, so that one peer per transport can run at once.
pub fn agentgateway_config(port: u16, [admin, stats, readiness]: [u16; 3], upstream: PeerUpstream<'_>) -> String {
    let target = match upstream {
        PeerUpstream::Http(url) => format!("    mcp:\n      host: {url}\n"),
        PeerUpstream::Stdio(bin) => format!(
            "    stdio:\n      cmd: {:?}\n      args: [\"--stdio\"]\n",
            bin.display().to_string()
        ),
    };
    format!(
        "# portcullis-bench: agentgateway as a plain MCP forwarder (no policy, no auth).\n\
         config:\n  adminAddr: \"localhost:{admin}\"\n  statsAddr: \"127.0.0.1:{stats}\"\n  \
         readinessAddr: \"127.0.0.1:{readiness}\"\n\
         mcp:\n  port: {port}\n  targets:\n  - name: {}\n{target}",
        wire::SERVER
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn peer_arguments_are_checked() {
        let err = |arg: &str| Peer::parse(arg).unwrap_err().to_string();
        assert!(err("agentgateway").contains("NAME=PATH"));
        assert!(err("envoy=/bin/sh").contains("unknown peer `envoy`"));
        assert!(err("agentgateway=/no/such/binary").contains("is not a file"));
        let peer = Peer::parse("agentgateway=/bin/sh").unwrap();
        assert_eq!(peer.name, "agentgateway");
        assert!(peer.description().contains("/bin/sh"));
    }

    #[test]
    fn the_agentgateway_config_names_the_port_and_the_upstream() {
        let yaml = agentgateway_config(
            3100,
            [3001, 3002, 3003],
            PeerUpstream::Http("http://127.0.0.1:4000/mcp"),
        );
        assert!(yaml.contains("port: 3100\n"));
        assert!(yaml.contains("adminAddr: \"localhost:3001\"\n"));
        assert!(yaml.contains("statsAddr: \"127.0.0.1:3002\"\n"));
        assert!(yaml.contains("readinessAddr: \"127.0.0.1:3003\"\n"));
        assert!(yaml.contains("host: http://127.0.0.1:4000/mcp\n"));
        assert!(yaml.contains(&format!("- name: {}\n", wire::SERVER)));
        assert!(!yaml.contains("stdio"));
        let yaml = agentgateway_config(
            3101,
            [3004, 3005, 3006],
            PeerUpstream::Stdio(Path::new("/opt/up stream")),
        );
        assert!(yaml.contains("port: 3101\n"));
        assert!(yaml.contains("stdio:\n      cmd: \"/opt/up stream\"\n      args: [\"--stdio\"]\n"));
        assert!(!yaml.contains("    mcp:\n      host:"));
    }
}
