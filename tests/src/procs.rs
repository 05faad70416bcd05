//! Real processes for the tests: the gateway (`portcullis run` / `stdio`) and
//! upstream servers, each stopped when its handle drops.
use std::{
    io::{BufRead, BufReader, Read, Write},
    net::SocketAddr,
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use crate::bin;

/// A config file in its own temp dir.
pub struct TempConfig {
    pub dir: tempfile::TempDir,
    pub path: PathBuf,
}

pub fn write_config(text: &str) -> TempConfig {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("portcullis.toml");
    std::fs::write(&path, text).expect("write config");
    TempConfig { dir, path }
}

/// A running `portcullis run`.
pub struct GatewayProc {
    pub child: Child,
    pub url: String,
    pub addr: SocketAddr,
    pub logs: Arc<Mutex<Vec<String>>>,
    pub config: TempConfig,
}

impl GatewayProc {
    /// Starts the gateway with `[listen] http = "127.0.0.1:0"` prepended to `servers_toml`
    /// and, unless it has its own `[policy]`, a policy that permits every call: these
    /// are relay tests (the HTTP caller is anonymous until identity lands, and the
    /// built-in tier policies deny anonymous callers). Policy tests give their own.
    pub fn start(servers_toml: &str) -> Self {
        let policy = if servers_toml.contains("[policy]") {
            String::new()
        } else {
            relay_policy()
        };
        Self::start_with(&format!("[listen]\nhttp = \"127.0.0.1:0\"\n{policy}\n{servers_toml}"))
    }

    /// Starts the gateway with exactly `config_toml` (it must listen on HTTP).
    pub fn start_with(config_toml: &str) -> Self {
        Self::start_file(write_config(config_toml))
    }

    /// Starts the gateway on an existing config file (it must listen on HTTP).
    pub fn start_file(config: TempConfig) -> Self {
        Self::start_limited(config, None, &[])
    }

    /// Starts the gateway with exactly `config_toml`, in a process whose open-file limit
    /// (soft and hard) is `open_files` (set by `sh`'s `ulimit -n` before the `exec`).
    pub fn start_with_open_files(config_toml: &str, open_files: u64) -> Self {
        Self::start_limited(write_config(config_toml), Some(open_files), &[])
    }

    /// Starts the gateway on an existing config file with `env` added to its environment
    /// (for example `LD_PRELOAD` of libfaketime, to move its clock).
    pub fn start_file_with_env(config: TempConfig, env: &[(&str, &str)]) -> Self {
        Self::start_limited(config, None, env)
    }

    fn start_limited(config: TempConfig, open_files: Option<u64>, env: &[(&str, &str)]) -> Self {
        let tls = std::fs::read_to_string(&config.path)
            .unwrap_or_default()
            .contains("[listen.tls]");
        let mut command = match open_files {
            None => Command::new(bin("portcullis")),
            Some(n) => {
                let mut sh = Command::new("/bin/sh");
                sh.args(["-c", &format!("ulimit -n {n} && exec \"$0\" \"$@\"")])
                    .arg(bin("portcullis"));
                sh
            }
        };
        let mut child = command
            .args(["--log-format", "json", "run", "--config"])
            .arg(&config.path)
            .env("PORTCULLIS_LOG", "debug")
            .envs(env.iter().copied())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start portcullis");
        let logs = Arc::new(Mutex::new(Vec::new()));
        let stderr = child.stderr.take().expect("stderr");
        let (found_tx, found_rx) = std::sync::mpsc::channel::<String>();
        let sink = logs.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if let Some(rest) = line
                    .split("listening on http://")
                    .nth(1)
                    .or_else(|| line.split("listening on https://").nth(1))
                {
                    let addr: String = rest.chars().take_while(|c| !matches!(c, '/' | '"' | ' ')).collect();
                    let _ = found_tx.send(addr);
                }
                sink.lock().unwrap().push(line);
            }
        });
        let addr = match found_rx.recv_timeout(Duration::from_secs(30)) {
            Ok(a) => a,
            Err(_) => {
                let _ = child.kill();
                panic!("gateway did not start; logs:\n{}", logs.lock().unwrap().join("\n"));
            }
        };
        let addr: SocketAddr = addr.parse().expect("listen address");
        let scheme = if tls { "https" } else { "http" };
        Self {
            child,
            url: format!("{scheme}://{addr}/mcp"),
            addr,
            logs,
            config,
        }
    }

    /// Stops this gateway and starts a new one on the same config file (and data).
    pub fn restart(self) -> Self {
        self.restart_with_env(&[])
    }

    /// [`Self::restart`] with `env` added to the new process's environment.
    pub fn restart_with_env(mut self, env: &[(&str, &str)]) -> Self {
        self.terminate();
        let placeholder = write_config("");
        let config = std::mem::replace(&mut self.config, placeholder);
        drop(self);
        Self::start_file_with_env(config, env)
    }

    pub fn logs(&self) -> String {
        self.logs.lock().unwrap().join("\n")
    }

    /// The logs once a line containing `needle` has arrived (the gateway's log lines reach
    /// the test through a pipe, after the answer that they explain), or after 15 s without it.
    pub fn logs_with(&self, needle: &str) -> String {
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            let logs = self.logs();
            if logs.contains(needle) || Instant::now() > deadline {
                return logs;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Sends SIGTERM and waits for the process to exit.
    pub fn terminate(&mut self) -> std::process::ExitStatus {
        let _ = Command::new("kill")
            .arg("-TERM")
            .arg(self.child.id().to_string())
            .status();
        wait_exit(&mut self.child, Duration::from_secs(20))
    }
}

impl Drop for GatewayProc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The `[policy]` table of relay tests: every call permitted (the built-in tier
/// policies want identities and reasons; relay tests are about the data path).
pub fn relay_policy() -> String {
    format!("[policy]\ncedar = [\"{}\"]\n", allow_all_policy().display())
}

/// A Cedar file permitting every call, written once per test process.
pub fn allow_all_policy() -> PathBuf {
    static PATH: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    PATH.get_or_init(|| {
        let dir = tempfile::tempdir().expect("temp dir").keep();
        let path = dir.join("allow-all.cedar");
        std::fs::write(
            &path,
            "// Relay tests: every call is permitted.\n@id(\"allow-all\")\npermit (principal, action, resource);\n",
        )
        .expect("write policy");
        path
    })
    .clone()
}

/// Waits for `child` to exit, killing it after `limit`.
pub fn wait_exit(child: &mut Child, limit: Duration) -> std::process::ExitStatus {
    let start = Instant::now();
    loop {
        if let Ok(Some(status)) = child.try_wait() {
            return status;
        }
        if start.elapsed() > limit {
            let _ = child.kill();
            panic!("process did not exit within {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// An upstream server process listening on HTTP, stopped on drop.
pub struct UpstreamProc {
    pub child: Child,
    pub url: String,
}

impl Drop for UpstreamProc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A free loopback port (bound and released; fine for tests on one machine).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Starts `program args… <addr>` style HTTP upstreams and waits until the port accepts.
pub fn start_http_upstream(program: &Path, args: &[&str]) -> UpstreamProc {
    start_upstream(program, args, "http")
}

/// Like [`start_http_upstream`], for `scheme` (`http` or `https`) in the URL.
fn start_upstream(program: &Path, args: &[&str], scheme: &str) -> UpstreamProc {
    let port = free_port();
    let addr = format!("127.0.0.1:{port}");
    let mut cmd = Command::new(program);
    for a in args {
        cmd.arg(a.replace("{addr}", &addr));
    }
    let child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start upstream");
    let start = Instant::now();
    while std::net::TcpStream::connect(&addr).is_err() {
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "upstream on {addr} did not start"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    UpstreamProc {
        child,
        url: format!("{scheme}://{addr}/mcp"),
    }
}

/// The demo server (with test tools) over Streamable HTTP.
pub fn demo_http_upstream() -> UpstreamProc {
    start_http_upstream(&bin("portcullis"), &["demo-server", "--test-tools", "--http", "{addr}"])
}

/// The demo server (with test tools) over HTTPS, serving `server` (its SVID) and
/// requiring client SVIDs that chain to `client_ca`.
pub fn demo_mtls_upstream(server: &crate::pki::SvidFiles, client_ca: &Path) -> UpstreamProc {
    let (cert, key, ca) = (server.cert.display(), server.key.display(), client_ca.display());
    let (cert, key, ca) = (cert.to_string(), key.to_string(), ca.to_string());
    start_upstream(
        &bin("portcullis"),
        &[
            "demo-server",
            "--test-tools",
            "--http",
            "{addr}",
            "--tls-cert",
            &cert,
            "--tls-key",
            &key,
            "--client-ca",
            &ca,
        ],
        "https",
    )
}

/// Runs `portcullis connect <args…>` with `input` on stdin (then EOF): exit status, the
/// messages it wrote to stdout, and its stderr.
pub fn bridge_once(args: &[&str], input: &str) -> (std::process::ExitStatus, Vec<serde_json::Value>, String) {
    let mut child = Command::new(crate::bin("portcullis"))
        .arg("connect")
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    stdin.write_all(input.as_bytes()).unwrap();
    drop(stdin);
    let status = wait_exit(&mut child, Duration::from_secs(30));
    let mut out = String::new();
    child.stdout.take().unwrap().read_to_string(&mut out).unwrap();
    let mut err = String::new();
    child.stderr.take().unwrap().read_to_string(&mut err).unwrap();
    let messages = out.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    (status, messages, err)
}
