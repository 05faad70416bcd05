//! The processes under test (bench upstream, gateways) and their `/proc` counters.
use std::{
    io::{BufRead, BufReader},
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use anyhow::{Context, bail};

use crate::upstream::Answers;

/// A child process killed (and reaped) on drop.
pub struct Proc {
    pub child: Child,
    /// Where its stderr goes, for error messages.
    pub log: Option<PathBuf>,
}

impl Proc {
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The last lines of its log, for an error message.
    pub fn log_tail(&self) -> String {
        let text = self
            .log
            .as_ref()
            .and_then(|p| std::fs::read_to_string(p).ok())
            .unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(20)..].join("\n")
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts `portcullis-bench-upstream --http 127.0.0.1:0`, answering as `answers` says, and
/// returns it with its URL.
pub fn start_http_upstream(program: &Path, threads: usize, answers: Answers) -> anyhow::Result<(Proc, String)> {
    let answers = match answers {
        Answers::Json => "json",
        Answers::Sse => "sse",
    };
    start_listening(
        program,
        &[
            "--http",
            "127.0.0.1:0",
            "--threads",
            &threads.to_string(),
            "--answers",
            answers,
        ],
    )
}

/// Starts the reference forwarder (`--floor`) in front of `upstream_url`, on as many
/// runtime threads as the gateway has (one per core), and returns it with its URL.
pub fn start_floor(program: &Path, upstream_url: &str) -> anyhow::Result<(Proc, String)> {
    let upstream = upstream_url
        .strip_prefix("http://")
        .and_then(|rest| rest.split('/').next())
        .with_context(|| format!("the bench upstream URL `{upstream_url}` is not http://HOST:PORT/…"))?;
    let threads = std::thread::available_parallelism().map(usize::from).unwrap_or(1);
    start_listening(
        program,
        &[
            "--floor",
            "127.0.0.1:0",
            "--to",
            upstream,
            "--threads",
            &threads.to_string(),
        ],
    )
}

/// Starts the bench upstream binary with `args` and reads the URL it prints once listening.
fn start_listening(program: &Path, args: &[&str]) -> anyhow::Result<(Proc, String)> {
    let mut child = Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .with_context(|| format!("cannot start `{}`", program.display()))?;
    let stdout = child.stdout.take().context("upstream stdout")?;
    let proc = Proc { child, log: None };
    let mut line = String::new();
    BufReader::new(stdout).read_line(&mut line)?;
    let url = line
        .trim()
        .strip_prefix("listening on ")
        .with_context(|| format!("unexpected upstream banner `{}`", line.trim()))?
        .to_owned();
    Ok((proc, url))
}

/// A free loopback port (bound, then released).
pub fn free_port() -> anyhow::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

/// The file in the gateway's directory where a `count-allocations` build of `portcullis`
/// keeps its allocation totals (`portcullis_cli::alloc_stats`; other builds never write it).
pub const ALLOC_STATS_FILE: &str = "alloc-stats";

/// Starts `portcullis run --config <dir>/portcullis.toml` with `config` and waits until
/// its HTTP front answers `/healthz` to `client`. Logs (warnings and up) go to `<dir>/gateway.log`.
pub async fn start_gateway(
    program: &Path,
    dir: &Path,
    config: &str,
    url: &str,
    client: &reqwest::Client,
) -> anyhow::Result<Proc> {
    let path = dir.join("portcullis.toml");
    std::fs::write(&path, config)?;
    let log = dir.join("gateway.log");
    let child = Command::new(program)
        .args(["--log-format", "json", "run", "--config"])
        .arg(&path)
        .env("PORTCULLIS_LOG", "warn")
        .env("PORTCULLIS_ALLOC_STATS", dir.join(ALLOC_STATS_FILE))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log)?)
        .spawn()
        .with_context(|| format!("cannot start `{}`", program.display()))?;
    let mut proc = Proc { child, log: Some(log) };
    let health = url.replace("/mcp", "/healthz");
    let started = Instant::now();
    loop {
        if let Ok(r) = client.get(&health).send().await
            && r.status().is_success()
        {
            return Ok(proc);
        }
        if let Some(status) = proc.child.try_wait()? {
            bail!("the gateway exited ({status}) at start; log:\n{}", proc.log_tail());
        }
        if started.elapsed() > Duration::from_secs(60) {
            bail!(
                "the gateway did not answer /healthz within 60 s; log:\n{}",
                proc.log_tail()
            );
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// User + system CPU time of `pid` so far, from `/proc/PID/stat`, in microseconds.
pub fn cpu_time_us(pid: u32, ticks_per_sec: u64) -> anyhow::Result<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
    // Fields after the `(comm)`: state is field 3, utime 14, stime 15 (1-based).
    let rest = stat.rsplit_once(')').map(|(_, r)| r).context("malformed /proc stat")?;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let field = |i: usize| -> anyhow::Result<u64> { Ok(fields.get(i).context("short /proc stat")?.parse::<u64>()?) };
    let ticks = field(11)? + field(12)?;
    Ok(ticks * 1_000_000 / ticks_per_sec.max(1))
}

/// Context switches of every thread of `pid` so far (voluntary + involuntary), summed over
/// `/proc/PID/task/*/status`: the wake-ups and hand-offs a call costs. A thread that exits
/// takes its count with it, so a difference undercounts when threads come and go (tokio's
/// blocking pool); the gateway's runtime workers live as long as it does.
pub fn context_switches(pid: u32) -> anyhow::Result<u64> {
    let mut total = 0;
    for task in std::fs::read_dir(format!("/proc/{pid}/task"))? {
        // A thread may exit between the listing and the read: skip it.
        let Ok(task) = task else { continue };
        let Ok(status) = std::fs::read_to_string(task.path().join("status")) else {
            continue;
        };
        total += switches_in(&status);
    }
    Ok(total)
}

/// The `voluntary_ctxt_switches` and `nonvoluntary_ctxt_switches` of one `status` file, summed.
fn switches_in(status: &str) -> u64 {
    status
        .lines()
        .filter_map(|l| {
            l.strip_prefix("voluntary_ctxt_switches:")
                .or_else(|| l.strip_prefix("nonvoluntary_ctxt_switches:"))
        })
        .filter_map(|v| v.trim().parse::<u64>().ok())
        .sum()
}

/// Resident set size of `pid` in KiB, from `/proc/PID/status`.
pub fn rss_kib(pid: u32) -> anyhow::Result<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    let line = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .context("no VmRSS in /proc status")?;
    Ok(line.trim().trim_end_matches("kB").trim().parse()?)
}

/// Clock ticks per second for `/proc` CPU counters (`getconf CLK_TCK`, else 100).
pub fn clock_ticks() -> u64 {
    Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(100)
}

/// A one-line description of the machine: CPU model and count.
pub fn machine() -> String {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let model = cpuinfo
        .lines()
        .find_map(|l| l.strip_prefix("model name"))
        .map(|m| m.trim_start_matches([' ', '\t', ':']).to_owned())
        .unwrap_or_else(|| "unknown CPU".into());
    let cpus = std::thread::available_parallelism().map(usize::from).unwrap_or(1);
    format!("{cpus} × {model}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_kinds_of_switch_are_summed() {
        let status =
            "Name:\tportcullis\nVmRSS:\t  1024 kB\nvoluntary_ctxt_switches:\t120\nnonvoluntary_ctxt_switches:\t7\n";
        assert_eq!(switches_in(status), 127);
        assert_eq!(switches_in("Name:\tx\n"), 0);
    }

    #[test]
    fn every_thread_of_the_process_is_counted() {
        let (own, total) = std::thread::spawn(|| {
            for _ in 0..5 {
                std::thread::sleep(Duration::from_millis(1));
            }
            // While this thread is alive, the process total includes its own switches.
            let own = switches_in(&std::fs::read_to_string("/proc/thread-self/status").unwrap());
            (own, context_switches(std::process::id()).unwrap())
        })
        .join()
        .unwrap();
        assert!(own >= 5, "a thread that slept 5 times switched {own} times");
        assert!(total >= own, "process total {total} < one thread's {own}");
    }
}
