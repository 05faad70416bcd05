//! The load client: `concurrency` workers, each with its own MCP session (an HTTP
//! session via `initialize` → `Mcp-Session-Id`, or its own stdio child for the
//! direct stdio baseline), calling `echo` in a closed loop for a bounded time and
//! call count. Sessions are opened and warmed before the measured phase; the
//! gateway's CPU counters are read at the phase's start and end.
use std::{
    path::{Path, PathBuf},
    process::Stdio,
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

use anyhow::{Context, bail};
use portcullis_attest::{HostSigner, host::unix_now};
use serde::Serialize;
use tokio::{
    io::{AsyncBufReadExt, AsyncWriteExt, BufReader},
    process::{Child, ChildStdin, ChildStdout},
    sync::Barrier,
};

use crate::{procs, wire};

/// What the client talks to.
#[derive(Debug, Clone)]
pub enum Endpoint {
    /// A Streamable HTTP endpoint (the HTTP upstream itself, or a gateway); with a signer,
    /// every call carries the host's signature (a gateway requiring attestation).
    Http {
        url: String,
        signer: Option<Arc<HostSigner>>,
    },
    /// The stdio upstream, one child per worker (the direct stdio baseline).
    Stdio { program: PathBuf },
}

/// How hard and how long to push.
#[derive(Debug, Clone, Copy)]
pub struct LoadSpec {
    pub concurrency: usize,
    pub duration: Duration,
    /// Upper bound on measured calls, over all workers.
    pub max_calls: u64,
    /// Unmeasured calls per worker before the phase starts.
    pub warmup_calls: u64,
    pub payload: usize,
}

/// One measured phase against one endpoint.
#[derive(Debug, Clone, Serialize)]
pub struct Measurement {
    pub calls: u64,
    pub errors: u64,
    /// The start of the first error answer (or client-side failure), if any.
    pub first_error: Option<String>,
    pub elapsed_s: f64,
    pub throughput_rps: f64,
    pub p50_us: f64,
    pub p99_us: f64,
    pub p999_us: f64,
    /// Gateway user+system CPU over the phase divided by the calls (gateway runs only).
    pub gateway_cpu_us_per_call: Option<f64>,
    /// Gateway resident set size at the end of the phase.
    pub gateway_rss_kib: Option<u64>,
    /// Context switches of the gateway's threads over the phase divided by the calls: its
    /// wake-ups and hand-offs per call (gateway runs only; see [`procs::context_switches`]).
    pub gateway_switches_per_call: Option<f64>,
    /// Allocations the gateway made over the phase divided by the calls (a gateway built
    /// with `count-allocations` only, which writes its totals to a file the bench reads).
    pub gateway_allocations_per_call: Option<f64>,
    /// The HTTP upstream's own user+system CPU over the phase divided by the calls: what a
    /// minimal MCP server costs per call on this machine (HTTP upstream runs only).
    pub upstream_cpu_us_per_call: Option<f64>,
    /// TCP connections the HTTP upstream accepted over the phase divided by the calls: 0 when
    /// whoever calls it (the load client directly, or the gateway) keeps its connections, 1
    /// when it opens one per call (HTTP upstream runs only; the count request itself may add
    /// one connection per phase).
    pub upstream_conns_per_call: Option<f64>,
}

/// The gateway process whose counters are read around the phase.
#[derive(Debug, Clone, Copy)]
pub struct Observed {
    pub pid: u32,
    pub ticks_per_sec: u64,
}

/// The HTTP upstream, observed around each phase: its process's CPU counters, and the
/// number of TCP connections it accepted (read at `connections_url` with `client`).
#[derive(Debug, Clone)]
pub struct ObservedUpstream {
    pub observed: Observed,
    pub connections_url: String,
    pub client: reqwest::Client,
}

impl ObservedUpstream {
    /// The TCP connections the upstream accepted so far.
    async fn connections(&self) -> anyhow::Result<u64> {
        let response = self.client.get(&self.connections_url).send().await?;
        let text = response.error_for_status()?.text().await?;
        text.trim()
            .parse()
            .with_context(|| format!("`{}` is not a connection count", text.trim()))
    }
}

/// How the load client uses its connections to the endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum ClientConns {
    /// Keep-alive: one connection per busy worker, reused call after call.
    #[default]
    Pooled,
    /// A new TCP connection for every request, as a stock rmcp client's Streamable HTTP
    /// transport does (it keeps no idle connections).
    PerCall,
}

/// A shared HTTP client for the load, using its connections as `conns` says.
pub fn http_client(conns: ClientConns) -> anyhow::Result<reqwest::Client> {
    let builder = reqwest::Client::builder()
        .pool_idle_timeout(Duration::from_secs(30))
        .timeout(Duration::from_secs(30));
    let builder = match conns {
        ClientConns::Pooled => builder,
        ClientConns::PerCall => builder.pool_max_idle_per_host(0),
    };
    Ok(builder.build()?)
}

/// CPU microseconds `observed` has used so far (`None` if nothing is observed).
fn cpu_us(observed: Option<Observed>) -> anyhow::Result<Option<u64>> {
    observed.map(|o| procs::cpu_time_us(o.pid, o.ticks_per_sec)).transpose()
}

/// Context switches `observed` has made so far (`None` if nothing is observed).
fn switches(observed: Option<Observed>) -> anyhow::Result<Option<u64>> {
    observed.map(|o| procs::context_switches(o.pid)).transpose()
}

/// How long to wait before reading a counting gateway's allocation totals: three times
/// the period its writer rewrites them at (`portcullis_cli::alloc_stats::PERIOD`, 10 ms),
/// so the totals read include every call made before.
const ALLOC_STATS_SETTLE: Duration = Duration::from_millis(30);

/// Allocations a counting gateway has made so far, from its totals file (`None` if there
/// is no such file: any other build, the floor, a peer).
async fn allocations(file: Option<&Path>) -> anyhow::Result<Option<u64>> {
    let Some(file) = file else { return Ok(None) };
    tokio::time::sleep(ALLOC_STATS_SETTLE).await;
    let text = std::fs::read_to_string(file).with_context(|| format!("allocation totals {}", file.display()))?;
    parse_allocations(&text)
        .map(Some)
        .with_context(|| format!("allocation totals {}: `{}`", file.display(), text.trim()))
}

/// The allocation count of a totals line (`allocations deallocations reallocations bytes`).
fn parse_allocations(text: &str) -> anyhow::Result<u64> {
    let first = text.split_whitespace().next().context("the file is empty")?;
    Ok(first.parse()?)
}

/// Per call between two readings of a counter (CPU microseconds, connections, switches).
fn per_call(before: Option<u64>, after: Option<u64>, calls: u64) -> Option<f64> {
    match (before, after) {
        (Some(b), Some(a)) if calls > 0 => Some(a.saturating_sub(b) as f64 / calls as f64),
        _ => None,
    }
}

/// Runs one measured phase; `observed` is the gateway, `upstream` the HTTP upstream.
pub async fn measure(
    client: &reqwest::Client,
    endpoint: &Endpoint,
    spec: LoadSpec,
    observed: Option<Observed>,
    upstream: Option<&ObservedUpstream>,
    alloc_stats: Option<&Path>,
) -> anyhow::Result<Measurement> {
    // Only a counting build writes the file, once it runs.
    let alloc_stats = alloc_stats.filter(|file| file.exists());
    let text = Arc::new(wire::payload_text(spec.payload));
    let mut conns = Vec::with_capacity(spec.concurrency);
    let opened = futures::future::join_all((0..spec.concurrency).map(|_| Conn::open(client, endpoint))).await;
    for conn in opened {
        conns.push(conn?);
    }
    // Two barriers: every worker has warmed up (then the counters are read), go.
    let warmed = Arc::new(Barrier::new(spec.concurrency + 1));
    let go = Arc::new(Barrier::new(spec.concurrency + 1));
    let budget = Arc::new(AtomicU64::new(0));
    let mut tasks = Vec::with_capacity(spec.concurrency);
    for mut conn in conns {
        let (warmed, go, budget, text) = (warmed.clone(), go.clone(), budget.clone(), text.clone());
        tasks.push(tokio::spawn(async move {
            let mut id = 1u64;
            let mut warm = Ok(true);
            for _ in 0..spec.warmup_calls {
                id += 1;
                warm = conn.call(id, &text).await;
                if warm.is_err() {
                    break;
                }
            }
            // Reach both barriers even after a failed warm-up, so the phase cannot hang.
            warmed.wait().await;
            go.wait().await;
            warm?;
            let deadline = Instant::now() + spec.duration;
            let mut latencies = Vec::with_capacity(4096);
            let mut errors = 0u64;
            let mut first_error = None;
            while Instant::now() < deadline && budget.fetch_add(1, Ordering::Relaxed) < spec.max_calls {
                id += 1;
                let start = Instant::now();
                let failure = match conn.call_answer(id, &text).await {
                    Ok(failure) => failure,
                    Err(e) => Some(format!("{e:#}")),
                };
                let us = start.elapsed().as_micros();
                latencies.push(u32::try_from(us).unwrap_or(u32::MAX));
                if let Some(failure) = failure {
                    errors += 1;
                    first_error.get_or_insert(failure);
                }
            }
            conn.close().await;
            anyhow::Ok((latencies, errors, first_error))
        }));
    }
    warmed.wait().await;
    let allocs_before = allocations(alloc_stats).await?;
    let conns_before = match upstream {
        Some(u) => Some(u.connections().await?),
        None => None,
    };
    let cpu_before = cpu_us(observed)?;
    let switches_before = switches(observed)?;
    let upstream_before = cpu_us(upstream.map(|u| u.observed))?;
    let started = Instant::now();
    go.wait().await;
    let mut latencies = Vec::new();
    let mut errors = 0;
    let mut first_error = None;
    for task in tasks {
        let (l, e, first) = task.await??;
        latencies.extend(l);
        errors += e;
        first_error = first_error.or(first);
    }
    let elapsed = started.elapsed();
    let cpu_after = cpu_us(observed)?;
    let switches_after = switches(observed)?;
    let upstream_after = cpu_us(upstream.map(|u| u.observed))?;
    let conns_after = match upstream {
        Some(u) => Some(u.connections().await?),
        None => None,
    };
    let rss = observed.map(|o| procs::rss_kib(o.pid)).transpose()?;
    let allocs_after = allocations(alloc_stats).await?;
    latencies.sort_unstable();
    let calls = latencies.len() as u64;

    Ok(Measurement {
        calls,
        errors,
        first_error,
        elapsed_s: elapsed.as_secs_f64(),
        throughput_rps: calls as f64 / elapsed.as_secs_f64().max(1e-9),
        p50_us: percentile(&latencies, 0.50),
        p99_us: percentile(&latencies, 0.99),
        p999_us: percentile(&latencies, 0.999),
        gateway_cpu_us_per_call: per_call(cpu_before, cpu_after, calls),
        gateway_rss_kib: rss,
        gateway_switches_per_call: per_call(switches_before, switches_after, calls),
        gateway_allocations_per_call: per_call(allocs_before, allocs_after, calls),
        upstream_cpu_us_per_call: per_call(upstream_before, upstream_after, calls),
        upstream_conns_per_call: per_call(conns_before, conns_after, calls),
    })
}

/// Nearest-rank percentile of sorted microsecond latencies.
pub fn percentile(sorted: &[u32], q: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let rank = (q * sorted.len() as f64).ceil() as usize;
    f64::from(sorted[rank.clamp(1, sorted.len()) - 1])
}

/// One worker's connection.
enum Conn {
    Http {
        client: reqwest::Client,
        url: String,
        session: String,
        signer: Option<Arc<HostSigner>>,
    },
    Stdio(Box<StdioConn>),
}

/// The direct stdio baseline: a child of the bench upstream per worker.
struct StdioConn {
    _child: Child,
    stdin: ChildStdin,
    stdout: BufReader<ChildStdout>,
    line: String,
}

impl Conn {
    async fn open(client: &reqwest::Client, endpoint: &Endpoint) -> anyhow::Result<Self> {
        match endpoint {
            Endpoint::Http { url, signer } => {
                let session = open_http_session(client, url).await?;
                Ok(Conn::Http {
                    client: client.clone(),
                    url: url.clone(),
                    session,
                    signer: signer.clone(),
                })
            }
            Endpoint::Stdio { program } => {
                let mut child = tokio::process::Command::new(program)
                    .arg("--stdio")
                    .stdin(Stdio::piped())
                    .stdout(Stdio::piped())
                    .stderr(Stdio::inherit())
                    .kill_on_drop(true)
                    .spawn()
                    .with_context(|| format!("cannot start `{}`", program.display()))?;
                let stdin = child.stdin.take().context("child stdin")?;
                let stdout = BufReader::new(child.stdout.take().context("child stdout")?);
                let mut conn = Conn::Stdio(Box::new(StdioConn {
                    _child: child,
                    stdin,
                    stdout,
                    line: String::new(),
                }));
                conn.send_line(&wire::initialize(0)).await?;
                if !wire::is_success(conn.read_line().await?.as_bytes()) {
                    bail!("the stdio upstream refused initialize");
                }
                conn.send_line(&wire::initialized()).await?;
                Ok(conn)
            }
        }
    }

    /// One `echo` call; `Ok(false)` for an error answer.
    async fn call(&mut self, id: u64, text: &str) -> anyhow::Result<bool> {
        Ok(self.call_answer(id, text).await?.is_none())
    }

    /// One `echo` call: `None` when it succeeded, else the start of the error answer.
    async fn call_answer(&mut self, id: u64, text: &str) -> anyhow::Result<Option<String>> {
        let excerpt = |body: &[u8]| Some(String::from_utf8_lossy(body).chars().take(400).collect());
        Ok(match self {
            Conn::Http {
                client,
                url,
                session,
                signer,
            } => {
                let mut request = wire::call(id, text);
                if let Some(signer) = signer {
                    signer.sign_request(&mut request, wire::SERVER, wire::TOOL, unix_now())?;
                }
                let response = post(client, url, Some(session), &request).await?;
                let ok = response.status().is_success();
                let body = response.bytes().await?;
                if ok && wire::is_success(&body) {
                    None
                } else {
                    excerpt(&body)
                }
            }
            Conn::Stdio(_) => {
                self.send_line(&wire::call(id, text)).await?;
                let line = self.read_line().await?.as_bytes();
                if wire::is_success(line) { None } else { excerpt(line) }
            }
        })
    }

    /// Writes `msg` as one line to the stdio upstream.
    async fn send_line(&mut self, msg: &serde_json::Value) -> anyhow::Result<()> {
        let Conn::Stdio(conn) = self else {
            bail!("not a stdio connection");
        };
        let StdioConn { stdin, .. } = &mut **conn;
        let mut bytes = serde_json::to_vec(msg)?;
        bytes.push(b'\n');
        stdin.write_all(&bytes).await?;
        stdin.flush().await?;
        Ok(())
    }

    /// The next line the stdio upstream writes (in the connection's reused buffer).
    async fn read_line(&mut self) -> anyhow::Result<&str> {
        let Conn::Stdio(conn) = self else {
            bail!("not a stdio connection");
        };
        let StdioConn { stdout, line, .. } = &mut **conn;
        line.clear();
        if stdout.read_line(line).await? == 0 {
            bail!("the stdio upstream closed its output");
        }
        Ok(line)
    }

    async fn close(self) {
        if let Conn::Http {
            client, url, session, ..
        } = self
        {
            let _ = client.delete(&url).header("mcp-session-id", session).send().await;
        }
    }
}

/// POSTs `msg` to `url` (in `session`, if given) as the load client does.
pub async fn post(
    client: &reqwest::Client,
    url: &str,
    session: Option<&str>,
    msg: &serde_json::Value,
) -> anyhow::Result<reqwest::Response> {
    let mut request = client
        .post(url)
        .header("content-type", "application/json")
        .header("accept", "application/json, text/event-stream")
        .body(serde_json::to_vec(msg)?);
    if let Some(session) = session {
        request = request
            .header("mcp-session-id", session)
            .header("mcp-protocol-version", wire::PROTOCOL);
    }
    Ok(request.send().await?)
}

/// `initialize` + `notifications/initialized`; returns the `Mcp-Session-Id`.
pub async fn open_http_session(client: &reqwest::Client, url: &str) -> anyhow::Result<String> {
    let response = post(client, url, None, &wire::initialize(0)).await?;
    let status = response.status();
    let session = response
        .headers()
        .get("mcp-session-id")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let body = response.bytes().await?;
    let Some(session) = session.filter(|_| status.is_success() && wire::is_success(&body)) else {
        bail!(
            "initialize at {url} failed: HTTP {status}: {}",
            String::from_utf8_lossy(&body).chars().take(300).collect::<String>()
        );
    };
    let note = post(client, url, Some(&session), &wire::initialized()).await?;
    if !note.status().is_success() {
        bail!("notifications/initialized at {url} got HTTP {}", note.status());
    }
    Ok(session)
}

/// Idle sessions held by the gateway, and what they cost it.
#[derive(Debug, Clone, Serialize)]
pub struct SessionScale {
    pub requested: usize,
    pub opened: usize,
    pub failed: usize,
    pub first_error: Option<String>,
    pub open_elapsed_s: f64,
    pub rss_before_kib: u64,
    pub rss_after_kib: u64,
    /// (RSS after − RSS before) / opened.
    pub bytes_per_idle_session: f64,
    /// Calls made on a sample of the held sessions after all were opened.
    pub sample_calls: usize,
    pub sample_calls_ok: usize,
}

/// Opens `n` idle sessions on the gateway at `url` (`parallel` at a time), measures the
/// gateway's RSS delta, then checks that a sample of them still answers calls.
pub async fn session_scale(
    client: &reqwest::Client,
    url: &str,
    n: usize,
    parallel: usize,
    gateway_pid: u32,
    payload: usize,
    signer: Option<&HostSigner>,
) -> anyhow::Result<SessionScale> {
    // One session first: lazily initialised state is not a per-session cost.
    let warm = open_http_session(client, url).await?;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let rss_before = procs::rss_kib(gateway_pid)?;
    let started = Instant::now();
    let next = Arc::new(AtomicU64::new(0));
    let workers = (0..parallel.max(1)).map(|_| {
        let (client, url, next) = (client.clone(), url.to_owned(), next.clone());
        tokio::spawn(async move {
            let mut sessions = Vec::new();
            let mut errors = Vec::new();
            while next.fetch_add(1, Ordering::Relaxed) < n as u64 {
                match open_http_session(&client, &url).await {
                    Ok(s) => sessions.push(s),
                    Err(e) => errors.push(e.to_string()),
                }
            }
            (sessions, errors)
        })
    });
    let mut sessions = vec![warm];
    let mut errors = Vec::new();
    for result in futures::future::join_all(workers).await {
        let (s, e) = result?;
        sessions.extend(s);
        errors.extend(e);
    }
    let open_elapsed = started.elapsed();
    tokio::time::sleep(Duration::from_millis(1000)).await;
    let rss_after = procs::rss_kib(gateway_pid)?;
    let opened = sessions.len() - 1;
    let text = wire::payload_text(payload);
    let step = (sessions.len() / 100).max(1);
    let sample: Vec<&String> = sessions.iter().step_by(step).collect();
    let mut ok = 0;
    for (i, session) in sample.iter().enumerate() {
        let mut request = wire::call(i as u64 + 1, &text);
        if let Some(signer) = signer {
            signer.sign_request(&mut request, wire::SERVER, wire::TOOL, unix_now())?;
        }
        let answered = post(client, url, Some(session), &request).await;
        if let Ok(r) = answered
            && r.status().is_success()
            && r.bytes().await.is_ok_and(|b| wire::is_success(&b))
        {
            ok += 1;
        }
    }
    use futures::StreamExt;
    futures::stream::iter(
        sessions
            .iter()
            .map(|s| client.delete(url).header("mcp-session-id", s).send()),
    )
    .buffer_unordered(64)
    .collect::<Vec<_>>()
    .await;
    Ok(SessionScale {
        requested: n,
        opened,
        failed: errors.len(),
        first_error: errors.into_iter().next(),
        open_elapsed_s: open_elapsed.as_secs_f64(),
        rss_before_kib: rss_before,
        rss_after_kib: rss_after,
        bytes_per_idle_session: (rss_after.saturating_sub(rss_before) * 1024) as f64 / opened.max(1) as f64,
        sample_calls: sample.len(),
        sample_calls_ok: ok,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_allocation_count_is_the_first_total_of_the_line() {
        assert_eq!(parse_allocations("120 100 7 65536\n").expect("parse"), 120);
        assert!(parse_allocations("").is_err());
        assert!(parse_allocations("many 1 2 3\n").is_err());
    }
}
