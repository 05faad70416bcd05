//! The soak benchmark (issue 15; a dev tool, not run in CI): a million calls through the
//! full pipeline — mutual TLS, host-signed calls, Cedar (10 policies, reloaded from its
//! file), the durable file audit log, signed results — to per-session stdio children of
//! the bench upstream, while faults are injected at random: a child killed with SIGKILL, a
//! call the upstream never answers, a policy file broken then mended (a refused reload,
//! then a real one), a call whose signature does not match. The gateway's RSS is sampled
//! throughout. At the end the gateway is stopped, `portcullis audit verify` checks the
//! whole log, and the record each answered call's receipt names is looked up by index and
//! compared by leaf hash.
//!
//! Each fault has an expected effect on the calls it touches (the killed child's session
//! fails its calls with "unavailable" and the worker opens a new session; the hanging call
//! ends in the upstream timeout; the forged call is refused by attest; a policy reload
//! changes nothing a caller sees). Any other failure is counted as unexpected.
use std::{
    collections::BTreeMap,
    path::{Path, PathBuf},
    process::Command,
    sync::{
        Arc, Mutex,
        atomic::{AtomicBool, AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

use anyhow::{Context, bail};
use portcullis_attest::{HostSigner, host::unix_now};
use portcullis_audit::{LogReader, leaf_hash, store::FileReader};
use serde::Serialize;
use serde_json::{Value, json};

use crate::{
    load::{open_http_session, post},
    pki::BenchPki,
    policies::BENCH_POLICIES,
    procs::{self, Proc},
    wire,
};

/// What to run.
#[derive(Debug, Clone)]
pub struct SoakSpec {
    /// Calls to send (each worker takes the next one until they are all sent).
    pub calls: u64,
    /// Concurrent sessions, one worker each.
    pub concurrency: usize,
    /// Mean time between two faults (each waits 0.5–1.5 × this).
    pub fault_every: Duration,
    /// How often the gateway's RSS is sampled (and progress printed).
    pub sample_every: Duration,
    /// Bytes of the echo argument.
    pub payload: usize,
    /// Seed of the fault schedule.
    pub seed: u64,
    pub gateway_bin: PathBuf,
    pub upstream_bin: PathBuf,
    /// Where the config, the policy file and the audit log go (a real disk).
    pub dir: PathBuf,
}

/// A fault the injector plays.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Fault {
    /// SIGKILL to one of the gateway's upstream children.
    KillChild,
    /// One call of the upstream's `hang` tool, which is never answered.
    HangingCall,
    /// The policy file replaced by an invalid one, then by a valid one.
    PolicyReload,
    /// One call whose arguments were changed after signing.
    ForgedCall,
}

const FAULTS: [Fault; 4] = [
    Fault::KillChild,
    Fault::HangingCall,
    Fault::PolicyReload,
    Fault::ForgedCall,
];

/// The gateway's resident set size at one moment.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct RssSample {
    pub elapsed_s: f64,
    pub calls: u64,
    pub rss_kib: u64,
}

/// What a soak run found.
#[derive(Debug, Clone, Serialize)]
pub struct SoakReport {
    pub machine: String,
    pub gateway_binary: String,
    pub concurrency: usize,
    pub payload_bytes: usize,
    pub seed: u64,
    /// Calls sent.
    pub calls: u64,
    /// Calls answered with a result (each with an audit receipt).
    pub answered: u64,
    /// Failed calls the injected faults explain, by kind.
    pub expected_failures: BTreeMap<String, u64>,
    /// Failed calls nothing explains (should be 0), and the first few of them.
    pub unexpected_failures: u64,
    pub first_unexpected: Vec<String>,
    /// Faults injected, by kind (a kill with no child to kill is not counted).
    pub faults: BTreeMap<Fault, u64>,
    /// Sessions opened again after their child was killed.
    pub sessions_reopened: u64,
    pub duration_s: f64,
    pub calls_per_s: f64,
    pub rss: Vec<RssSample>,
    /// RSS after 10 % of the calls, at half, at the end, and the highest sample.
    pub rss_start_kib: u64,
    pub rss_middle_kib: u64,
    pub rss_end_kib: u64,
    pub rss_max_kib: u64,
    /// `policy reload REFUSED` lines in the gateway's log, and `policy_change` records.
    pub reloads_refused: u64,
    pub reloads_recorded: u64,
    /// `portcullis audit verify`: its exit status and first line.
    pub verify_ok: bool,
    pub verify_output: String,
    /// Records in the log, and answered calls whose receipt's record was found there.
    pub log_records: u64,
    pub receipts_checked: u64,
    pub receipts_missing: u64,
}

/// Counters the workers, the injector and the sampler share.
#[derive(Default)]
struct Shared {
    sent: AtomicU64,
    answered: AtomicU64,
    reopened: AtomicU64,
    hang_requests: AtomicU64,
    forged_requests: AtomicU64,
    done: AtomicBool,
    expected: Mutex<BTreeMap<String, u64>>,
    unexpected: AtomicU64,
    first_unexpected: Mutex<Vec<String>>,
}

impl Shared {
    fn expected(&self, kind: &str) {
        if let Ok(mut map) = self.expected.lock() {
            *map.entry(kind.to_owned()).or_default() += 1;
        }
    }

    fn unexpected(&self, what: String) {
        self.unexpected.fetch_add(1, Ordering::Relaxed);
        if let Ok(mut first) = self.first_unexpected.lock()
            && first.len() < 20
        {
            first.push(what);
        }
    }
}

/// Takes one request from `counter` if there is one.
fn take(counter: &AtomicU64) -> bool {
    counter
        .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| n.checked_sub(1))
        .is_ok()
}

/// A small deterministic generator (xorshift64*) for the fault schedule.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// A uniform value in `0.0..1.0`.
    fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// What one call came back with.
enum Answer {
    /// A result with its audit receipt: the record's index and leaf hash.
    Receipt(u64, [u8; 32]),
    /// A JSON-RPC error: its message.
    Error(String),
    /// Anything else (no answer, a result without a receipt, a transport failure).
    Other(String),
}

fn parse_answer(status: u16, body: &[u8]) -> Answer {
    let text = String::from_utf8_lossy(body);
    let message = serde_json::from_slice::<Value>(body).ok().or_else(|| {
        text.lines()
            .filter_map(|l| l.strip_prefix("data:"))
            .filter_map(|d| serde_json::from_str::<Value>(d.trim()).ok())
            .find(|v| v.get("id").is_some())
    });
    let Some(message) = message else {
        return Answer::Other(format!("HTTP {status}: {}", text.chars().take(300).collect::<String>()));
    };
    if let Some(error) = message.get("error") {
        return Answer::Error(error["message"].as_str().unwrap_or_default().to_owned());
    }
    let receipt = &message["result"]["_meta"]["io.portcullis/receipt"];
    match (
        receipt["auditIndex"].as_u64(),
        receipt["leafHash"].as_str().and_then(hex32),
    ) {
        (Some(index), Some(leaf)) => Answer::Receipt(index, leaf),
        _ => Answer::Other(format!("no receipt: {}", text.chars().take(300).collect::<String>())),
    }
}

/// 64 hex digits as 32 bytes.
fn hex32(text: &str) -> Option<[u8; 32]> {
    let bytes = text.as_bytes();
    if bytes.len() != 64 {
        return None;
    }
    let digit = |b: u8| char::from(b).to_digit(16).and_then(|d| u8::try_from(d).ok());
    let mut out = [0u8; 32];
    for (i, pair) in bytes.chunks(2).enumerate() {
        out[i] = digit(pair[0])? << 4 | digit(pair[1])?;
    }
    Some(out)
}

/// What kind of call a worker sends next.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    Echo,
    Hang,
    Forged,
}

/// One session's closed loop: takes calls until all are sent; returns the receipts of
/// the answered ones.
async fn worker(
    spec: Arc<SoakSpec>,
    client: reqwest::Client,
    url: String,
    signer: Arc<HostSigner>,
    shared: Arc<Shared>,
) -> anyhow::Result<Vec<(u64, [u8; 32])>> {
    let text = wire::payload_text(spec.payload);
    let mut session = open_http_session(&client, &url).await?;
    let mut receipts = Vec::new();
    let mut id = 1u64;
    while shared.sent.fetch_add(1, Ordering::Relaxed) < spec.calls {
        id += 1;
        let kind = if take(&shared.hang_requests) {
            Kind::Hang
        } else if take(&shared.forged_requests) {
            Kind::Forged
        } else {
            Kind::Echo
        };
        let tool = if kind == Kind::Hang {
            wire::HANG_TOOL
        } else {
            wire::TOOL
        };
        let mut request = wire::call(id, &text);
        request["params"]["name"] = json!(tool);
        signer.sign_request(&mut request, wire::SERVER, tool, unix_now())?;
        if kind == Kind::Forged {
            request["params"]["arguments"]["text"] = json!("changed after signing");
        }
        let answer = match post(&client, &url, Some(&session), &request).await {
            Ok(response) => {
                let status = response.status().as_u16();
                match response.bytes().await {
                    Ok(body) => parse_answer(status, &body),
                    Err(e) => Answer::Other(format!("reading the answer: {e}")),
                }
            }
            Err(e) => Answer::Other(format!("sending: {e:#}")),
        };
        match (kind, answer) {
            (Kind::Echo, Answer::Receipt(index, leaf)) => {
                shared.answered.fetch_add(1, Ordering::Relaxed);
                receipts.push((index, leaf));
            }
            (Kind::Hang, Answer::Error(e)) if e.contains("did not answer within") => {
                shared.expected("hanging call timed out");
            }
            (Kind::Forged, Answer::Error(e)) if e.contains("signature does not match") => {
                shared.expected("forged call refused");
            }
            (_, Answer::Error(e)) if e.contains("is unavailable") => {
                // Its child was killed: this session's server is gone; open another.
                shared.expected("upstream child killed");
                let _ = client.delete(&url).header("mcp-session-id", &session).send().await;
                session = open_http_session(&client, &url).await?;
                shared.reopened.fetch_add(1, Ordering::Relaxed);
            }
            (kind, Answer::Receipt(..)) => {
                let what = if kind == Kind::Hang { "hanging" } else { "forged" };
                shared.unexpected(format!("a {what} call was answered"));
            }
            (_, Answer::Error(e) | Answer::Other(e)) => shared.unexpected(e),
        }
    }
    let _ = client.delete(&url).header("mcp-session-id", &session).send().await;
    Ok(receipts)
}

/// The pids of `parent`'s children running the bench upstream.
fn upstream_children(parent: u32) -> Vec<u32> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .filter_map(Result::ok)
        .filter_map(|e| e.file_name().to_str().and_then(|n| n.parse::<u32>().ok()))
        .filter(|pid| {
            let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
            let comm_ok = stat.contains("(portcullis-ben");
            let ppid = stat
                .rsplit_once(')')
                .and_then(|(_, rest)| rest.split_whitespace().nth(1))
                .and_then(|p| p.parse::<u32>().ok());
            comm_ok && ppid == Some(parent)
        })
        .collect()
}

fn signal(pid: u32, sig: &str) -> anyhow::Result<()> {
    let status = Command::new("kill").args([sig, &pid.to_string()]).status()?;
    if !status.success() {
        bail!("kill {sig} {pid} failed");
    }
    Ok(())
}

/// Sleeps `total`, waking early when the run is done; false if it is.
async fn sleep_unless_done(shared: &Shared, total: Duration) -> bool {
    let end = Instant::now() + total;
    while Instant::now() < end {
        if shared.done.load(Ordering::Relaxed) {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(100).min(end - Instant::now())).await;
    }
    !shared.done.load(Ordering::Relaxed)
}

/// Plays a random fault every 0.5–1.5 × `fault_every` until the run is done.
async fn inject(spec: Arc<SoakSpec>, shared: Arc<Shared>, gateway_pid: u32, policy: PathBuf) -> BTreeMap<Fault, u64> {
    let mut rng = Rng(spec.seed.max(1));
    let mut played: BTreeMap<Fault, u64> = BTreeMap::new();
    let mut reloads = 0u64;
    loop {
        let wait = spec.fault_every.mul_f64(0.5 + rng.unit());
        if !sleep_unless_done(&shared, wait).await {
            return played;
        }
        let fault = FAULTS[(rng.next() % FAULTS.len() as u64) as usize];
        let injected = match fault {
            Fault::KillChild => {
                let children = upstream_children(gateway_pid);
                match children.get((rng.next() % children.len().max(1) as u64) as usize) {
                    Some(pid) => signal(*pid, "-KILL").is_ok(),
                    None => false,
                }
            }
            Fault::HangingCall => {
                shared.hang_requests.fetch_add(1, Ordering::Relaxed);
                true
            }
            Fault::ForgedCall => {
                shared.forged_requests.fetch_add(1, Ordering::Relaxed);
                true
            }
            Fault::PolicyReload => {
                // Broken: refused, the current set stays. Then a valid set with a new hash.
                let broken = std::fs::write(&policy, "forbid (principal, action, resource) when { ??? };\n");
                sleep_unless_done(&shared, Duration::from_millis(2500)).await;
                reloads += 1;
                let mended = std::fs::write(&policy, format!("{BENCH_POLICIES}\n// soak reload {reloads}\n"));
                broken.is_ok() && mended.is_ok()
            }
        };
        if injected {
            *played.entry(fault).or_default() += 1;
        }
    }
}

/// Samples the gateway's RSS every `sample_every` (printing progress) until the run is done.
async fn sample(spec: Arc<SoakSpec>, shared: Arc<Shared>, pid: u32, started: Instant) -> Vec<RssSample> {
    let mut samples = Vec::new();
    loop {
        let sent = shared.sent.load(Ordering::Relaxed).min(spec.calls);
        if let Ok(rss_kib) = procs::rss_kib(pid) {
            let elapsed_s = started.elapsed().as_secs_f64();
            eprintln!(
                "soak {elapsed_s:>7.0} s: {sent} calls sent, {} answered, {} unexpected failures, RSS {rss_kib} KiB",
                shared.answered.load(Ordering::Relaxed),
                shared.unexpected.load(Ordering::Relaxed)
            );
            samples.push(RssSample {
                elapsed_s,
                calls: sent,
                rss_kib,
            });
        }
        if !sleep_unless_done(&shared, spec.sample_every).await {
            return samples;
        }
    }
}

/// The sample taken once `fraction` of the calls were sent (the last one if none).
fn rss_at(samples: &[RssSample], calls: u64, fraction: f64) -> u64 {
    let mark = (calls as f64 * fraction) as u64;
    samples
        .iter()
        .find(|s| s.calls >= mark)
        .or(samples.last())
        .map_or(0, |s| s.rss_kib)
}

/// Reads the whole log at `dir`: its record count, how many `policy_change` records it
/// has, and how many `receipts` (sorted by index) name a record with their leaf hash.
async fn check_log(dir: &Path, receipts: &[(u64, [u8; 32])]) -> anyhow::Result<(u64, u64, u64)> {
    let reader = FileReader::open(dir).with_context(|| format!("cannot read the audit log at {}", dir.display()))?;
    let len = reader.len().await?;
    let (mut found, mut policy_changes) = (0u64, 0u64);
    let mut next = receipts.iter().peekable();
    let mut start = 0;
    while start < len {
        let end = (start + 4096).min(len);
        for (index, data) in (start..end).zip(reader.read(start..end).await?) {
            if data
                .windows(b"\"kind\":\"policy_change\"".len())
                .any(|w| w == b"\"kind\":\"policy_change\"")
            {
                policy_changes += 1;
            }
            while let Some((_, leaf)) = next.next_if(|(i, _)| *i == index) {
                if leaf_hash(&data).0 == *leaf {
                    found += 1;
                }
            }
        }
        start = end;
    }
    Ok((len, policy_changes, found))
}

/// Runs the soak and returns its report. Fails only when the harness itself cannot run;
/// what the run found is in the report.
pub async fn run(mut spec: SoakSpec) -> anyhow::Result<SoakReport> {
    // The config names files by absolute path (relative ones resolve against its own dir).
    std::fs::create_dir_all(&spec.dir)?;
    spec.dir = std::fs::canonicalize(&spec.dir)?;
    let spec = Arc::new(spec);
    let pki = BenchPki::new(&spec.gateway_bin)?;
    let client = pki.client()?;
    let signer = Arc::new(pki.host_signer());
    let policy = spec.dir.join("soak.cedar");
    std::fs::write(&policy, BENCH_POLICIES)?;
    let audit_dir = spec.dir.join("audit");
    let port = procs::free_port()?;
    let sessions = spec.concurrency * 4 + 16;
    let config = format!(
        "[listen]\nhttp = \"127.0.0.1:{port}\"\nmax_sessions = {sessions}\nrequire = [\"workload\"]\n\n{}\n{}\n\
         [policy]\ncedar = [{:?}]\nreload_interval_secs = 1\n\n[audit]\npath = {:?}\n\n\
         [limits]\nmax_sessions_per_principal = {sessions}\nmax_concurrent_calls_per_principal = {sessions}\n\n\
         [[servers]]\nname = {:?}\ncommand = [{:?}, \"--stdio\"]\nprotocol = \"legacy\"\ndefault_tier = \"read\"\ntimeout_secs = 2\n",
        pki.listen_tls(),
        pki.attestation(false),
        policy.display().to_string(),
        audit_dir.display().to_string(),
        wire::SERVER,
        spec.upstream_bin.display().to_string(),
    );
    let url = format!("https://127.0.0.1:{port}/mcp");
    let mut gateway: Proc = procs::start_gateway(&spec.gateway_bin, &spec.dir, &config, &url, &client).await?;
    let pid = gateway.pid();
    let shared = Arc::new(Shared::default());
    let started = Instant::now();
    let sampler = tokio::spawn(sample(spec.clone(), shared.clone(), pid, started));
    let injector = tokio::spawn(inject(spec.clone(), shared.clone(), pid, policy.clone()));
    let workers: Vec<_> = (0..spec.concurrency)
        .map(|_| {
            tokio::spawn(worker(
                spec.clone(),
                client.clone(),
                url.clone(),
                signer.clone(),
                shared.clone(),
            ))
        })
        .collect();
    let mut receipts = Vec::new();
    let mut worker_failures = Vec::new();
    for w in workers {
        match w.await {
            Ok(Ok(r)) => receipts.extend(r),
            Ok(Err(e)) => worker_failures.push(format!("{e:#}")),
            Err(e) => worker_failures.push(e.to_string()),
        }
    }
    let duration = started.elapsed();
    shared.done.store(true, Ordering::Relaxed);
    let faults = injector.await.unwrap_or_default();
    let mut rss = sampler.await.unwrap_or_default();
    if let Ok(rss_kib) = procs::rss_kib(pid) {
        rss.push(RssSample {
            elapsed_s: duration.as_secs_f64(),
            calls: spec.calls,
            rss_kib,
        });
    }
    for failure in worker_failures {
        shared.unexpected(format!("a worker stopped: {failure}"));
    }
    // A clean stop writes the final checkpoint.
    signal(pid, "-TERM")?;
    let stop = Instant::now();
    while gateway.child.try_wait()?.is_none() {
        if stop.elapsed() > Duration::from_secs(60) {
            bail!("the gateway did not stop within 60 s of SIGTERM");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let log = std::fs::read_to_string(spec.dir.join("gateway.log")).unwrap_or_default();
    let reloads_refused = log.matches("policy reload REFUSED").count() as u64;
    let verify = Command::new(&spec.gateway_bin)
        .args(["audit", "verify", "--config"])
        .arg(spec.dir.join("portcullis.toml"))
        .output()?;
    let verify_output = format!(
        "{}{}",
        String::from_utf8_lossy(&verify.stdout),
        String::from_utf8_lossy(&verify.stderr)
    );
    receipts.sort_unstable_by_key(|(index, _)| *index);
    let (log_records, reloads_recorded, found) = check_log(&audit_dir, &receipts).await?;
    let sent = spec.calls;
    let first_unexpected = shared.first_unexpected.lock().map(|f| f.clone()).unwrap_or_default();
    let expected_failures = shared.expected.lock().map(|e| e.clone()).unwrap_or_default();
    Ok(SoakReport {
        machine: procs::machine(),
        gateway_binary: spec.gateway_bin.display().to_string(),
        concurrency: spec.concurrency,
        payload_bytes: spec.payload,
        seed: spec.seed,
        calls: sent,
        answered: shared.answered.load(Ordering::Relaxed),
        expected_failures,
        unexpected_failures: shared.unexpected.load(Ordering::Relaxed),
        first_unexpected,
        faults,
        sessions_reopened: shared.reopened.load(Ordering::Relaxed),
        duration_s: duration.as_secs_f64(),
        calls_per_s: sent as f64 / duration.as_secs_f64().max(1e-9),
        rss_start_kib: rss_at(&rss, sent, 0.1),
        rss_middle_kib: rss_at(&rss, sent, 0.5),
        rss_end_kib: rss.last().map_or(0, |s| s.rss_kib),
        rss_max_kib: rss.iter().map(|s| s.rss_kib).max().unwrap_or(0),
        rss,
        reloads_refused,
        reloads_recorded,
        verify_ok: verify.status.success(),
        verify_output: verify_output.lines().next().unwrap_or_default().to_owned(),
        log_records,
        receipts_checked: receipts.len() as u64,
        receipts_missing: receipts.len() as u64 - found,
    })
}

/// A few lines for a person: the figures `docs/benchmarks.md` quotes.
pub fn summary(r: &SoakReport) -> String {
    let faults: Vec<String> = r.faults.iter().map(|(f, n)| format!("{f:?} {n}")).collect();
    let expected: Vec<String> = r.expected_failures.iter().map(|(k, n)| format!("{k} {n}")).collect();
    format!(
        "machine: {}\ngateway: {}\ncalls: {} in {:.0} s ({:.0} calls/s) at C={}, answered {}\n\
         faults injected: {} ({})\nexpected failures: {}\nunexpected failures: {}{}\n\
         sessions reopened after a kill: {}\npolicy reloads refused / recorded: {} / {}\n\
         RSS KiB: start {} middle {} end {} max {}\naudit verify: {} ({})\n\
         log records: {}; receipts checked: {}, missing: {}\n",
        r.machine,
        r.gateway_binary,
        r.calls,
        r.duration_s,
        r.calls_per_s,
        r.concurrency,
        r.answered,
        r.faults.values().sum::<u64>(),
        faults.join(", "),
        expected.join(", "),
        r.unexpected_failures,
        if r.first_unexpected.is_empty() {
            String::new()
        } else {
            format!(" (first: {})", r.first_unexpected.join(" | "))
        },
        r.sessions_reopened,
        r.reloads_refused,
        r.reloads_recorded,
        r.rss_start_kib,
        r.rss_middle_kib,
        r.rss_end_kib,
        r.rss_max_kib,
        if r.verify_ok { "ok" } else { "FAILED" },
        r.verify_output,
        r.log_records,
        r.receipts_checked,
        r.receipts_missing,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_and_receipts_parse() {
        let leaf = "ab".repeat(32);
        let body = format!(
            r#"{{"jsonrpc":"2.0","id":3,"result":{{"content":[],"_meta":{{"io.portcullis/receipt":{{"auditIndex":41,"leafHash":"{leaf}"}}}}}}}}"#
        );
        assert!(matches!(parse_answer(200, body.as_bytes()), Answer::Receipt(41, l) if l == [0xab; 32]));
        let error = br#"{"jsonrpc":"2.0","id":3,"error":{"code":-32013,"message":"denied"}}"#;
        assert!(matches!(parse_answer(200, error), Answer::Error(m) if m == "denied"));
        assert!(matches!(parse_answer(502, b"nope"), Answer::Other(_)));
        assert_eq!(hex32("zz"), None);
    }

    #[test]
    fn the_fault_schedule_is_seeded() {
        let (mut a, mut b) = (Rng(7), Rng(7));
        assert_eq!((a.next(), a.next()), (b.next(), b.next()));
        assert!((0.0..1.0).contains(&Rng(9).unit()));
    }
}
