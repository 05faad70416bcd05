//! `portcullis-bench`: the end-to-end load benchmark driver (see the crate docs and
//! README "Benchmarks"). Run it from a release build:
//!
//! ```text
//! cargo build --profile dist -p portcullis-cli -p portcullis-bench
//! target/dist/portcullis-bench --json bench.json
//! ```
use std::{
    path::{Path, PathBuf},
    sync::Arc,
    time::Duration,
};

use anyhow::{Context, bail};
use clap::Parser;
use portcullis_attest::HostSigner;
use portcullis_bench::{
    load::{self, ClientConns, Endpoint, LoadSpec, Observed, ObservedUpstream},
    peer::{Peer, PeerUpstream},
    pki::BenchPki,
    policies::{ALLOW_ALL, BENCH_POLICIES},
    procs::{self, Proc},
    report::{self, Conditions, DIRECT, Report, Run, TargetInfo},
    upstream::{Answers, CONNECTIONS_PATH},
    wire,
};

#[derive(Parser, Debug)]
#[command(about = "Load benchmark: the bench upstream directly vs through the Portcullis gateway")]
struct Args {
    /// Smoke mode: a few dozen calls per phase, C = 1 and 4, one round, 20 idle sessions.
    #[arg(long)]
    quick: bool,
    /// Seconds per measured phase.
    #[arg(long, default_value_t = 2.0)]
    duration: f64,
    /// Interleaved rounds (direct, then each gateway target, per round).
    #[arg(long, default_value_t = 3)]
    rounds: usize,
    /// Concurrent client sessions, comma-separated.
    #[arg(long, value_delimiter = ',', default_value = "1,16,64")]
    concurrency: Vec<usize>,
    /// Bytes of the echo argument (the result is the same size).
    #[arg(long, default_value_t = 1024)]
    payload: usize,
    /// How the HTTP upstream answers: `json` (one JSON body) or `sse` (an SSE stream of one
    /// `message` event, then its end, as the official SDKs' servers answer).
    #[arg(long, value_enum, default_value_t = Answers::Json)]
    answers: Answers,
    /// How the load client uses connections to the gateway (and to the upstream directly):
    /// `pooled` (keep-alive) or `per-call` (a new TCP connection per request, as a stock
    /// rmcp client does).
    #[arg(long, value_enum, default_value_t = ClientConns::Pooled)]
    client_conns: ClientConns,
    /// Upstream transports to measure: http, stdio.
    #[arg(long, value_delimiter = ',', default_value = "http,stdio")]
    transports: Vec<String>,
    /// Configurations to measure: floor (the reference forwarder, HTTP only), relay, policy,
    /// full, full-tmpfs, and on request full-batched (each described in the report).
    #[arg(long, value_delimiter = ',', default_value = "floor,relay,policy,full,full-tmpfs")]
    targets: Vec<String>,
    /// Also measure a peer gateway: `agentgateway=PATH` (a binary you built from its public
    /// source), configured to forward MCP to the bench upstream (over HTTP, or to the
    /// upstream as its stdio child). Repeatable.
    #[arg(long, value_name = "NAME=PATH")]
    peer: Vec<String>,
    /// Idle sessions to open on a fresh gateway at the end (0 skips).
    #[arg(long, default_value_t = 10_000)]
    sessions: usize,
    /// Most measured calls in one phase.
    #[arg(long, default_value_t = 500_000)]
    max_calls: u64,
    /// Write the JSON report here.
    #[arg(long, value_name = "PATH")]
    json: Option<PathBuf>,
    /// The gateway binary (default: `portcullis` beside this executable).
    #[arg(long, value_name = "PATH")]
    gateway: Option<PathBuf>,
    /// The bench upstream binary (default: `portcullis-bench-upstream` beside this executable).
    #[arg(long, value_name = "PATH")]
    upstream: Option<PathBuf>,
    /// Directory for the durable audit log of `full` (a real disk; default: the temp dir).
    #[arg(long, value_name = "DIR")]
    audit_dir: Option<PathBuf>,
    /// A tmpfs directory for the audit log of `full-tmpfs` (fsync returns at once there).
    #[arg(long, value_name = "DIR", default_value = "/dev/shm")]
    tmpfs_dir: PathBuf,
}

/// The configurations, cheapest first: the reference forwarder, then the gateway's.
const TARGETS: [(&str, &str); 6] = [
    (
        FLOOR,
        "reference, not the gateway: a hyper HTTP/1.1 forwarder (bench upstream binary, --floor) that only \
         passes requests and answers through, one upstream connection per client connection; \
         the lowest CPU per call an HTTP-in, HTTP-out hop on this stack reaches here (HTTP upstream only)",
    ),
    ("relay", "plain relay: allow-all policy, audit off"),
    (
        "policy",
        "Cedar, 10 policies (tier policies admitting the anonymous bench caller + tool forbids), reason required; audit off",
    ),
    (
        "full",
        "policy as above + audit log, durable group commit (fdatasync) to a file log on the audit dir's disk \
         + identity: mutual TLS, the load client's X.509-SVID from a dev CA required (listen.require = workload); \
         + attestation: the load client signs every tools/call (Ed25519 host key registered for its SPIFFE ID, \
         signatures required) and the gateway verifies it; the gateway signs every result",
    ),
    (
        "full-tmpfs",
        "as full (mutual TLS too), audit log on tmpfs: same work, fsync returns at once (full − this = the fsync wait)",
    ),
    (
        "full-batched",
        "as full, host signatures of calls arriving together verified in one batch \
         ([attestation] batch_verify = true; full − this = what batch verification saves); \
         not measured unless named in --targets",
    ),
];

fn beside_me(name: &str) -> anyhow::Result<PathBuf> {
    let exe = std::env::current_exe()?;
    let dir = exe.parent().context("executable has no directory")?;
    // Test executables live one level deeper, in target/<profile>/deps.
    let candidates = [dir.join(name), dir.join("..").join(name)];
    candidates.into_iter().find(|p| p.is_file()).with_context(|| {
        format!(
            "`{name}` is not next to {}: build it (cargo build --profile dist -p portcullis-cli -p portcullis-bench) or pass its path",
            exe.display()
        )
    })
}

/// The reference forwarder's target name.
const FLOOR: &str = "floor";

struct Gateway {
    proc: Proc,
    url: String,
    /// The load client for this gateway (presenting the client SVID for the `full` targets).
    client: reqwest::Client,
    /// The load client's call signer (the `full` targets).
    signer: Option<Arc<HostSigner>>,
    /// Its working directory (config, log, allocation totals).
    dir: tempfile::TempDir,
    _audit: Option<tempfile::TempDir>,
}

struct Setup<'a> {
    gateway_bin: &'a Path,
    upstream_bin: &'a Path,
    upstream_url: &'a str,
    audit_dir: &'a Path,
    tmpfs_dir: &'a Path,
    /// Mutual TLS for the `full` targets.
    pki: &'a BenchPki,
    /// The plain-HTTP load client.
    client: &'a reqwest::Client,
    /// Peer gateways (`--peer`), measured as targets named after them.
    peers: &'a [Peer],
}

/// What the full pipeline adds to a gateway's config beyond policy and audit, and the
/// client that can pass it: identity (mutual TLS, a workload SVID required on every call)
/// and attestation (the load client's host key registered, a signature required on every
/// `tools/call`; result signing is on with the audit log).
struct FullPipeline {
    listen: String,
    tables: String,
    client: reqwest::Client,
    signer: Arc<HostSigner>,
}

fn full_pipeline(setup: &Setup<'_>, batch_verify: bool) -> anyhow::Result<FullPipeline> {
    Ok(FullPipeline {
        listen: "require = [\"workload\"]\n".to_owned(),
        tables: format!("{}\n{}", setup.pki.listen_tls(), setup.pki.attestation(batch_verify)),
        client: setup.pki.client()?,
        signer: Arc::new(setup.pki.host_signer()),
    })
}

async fn start_gateway(
    setup: &Setup<'_>,
    target: &str,
    transport: &str,
    max_sessions: usize,
) -> anyhow::Result<Gateway> {
    let dir = tempfile::Builder::new().prefix("portcullis-bench-").tempdir()?;
    if target == FLOOR {
        let (proc, url) = procs::start_floor(setup.upstream_bin, setup.upstream_url)?;
        return Ok(Gateway {
            proc,
            url,
            client: setup.client.clone(),
            signer: None,
            dir,
            _audit: None,
        });
    }
    if let Some(peer) = setup.peers.iter().find(|p| p.name == target) {
        let upstream = match transport {
            "http" => PeerUpstream::Http(setup.upstream_url),
            "stdio" => PeerUpstream::Stdio(setup.upstream_bin),
            other => bail!("unknown transport `{other}`; use http or stdio"),
        };
        let (proc, url) = peer
            .start(dir.path(), upstream, setup.client)
            .await
            .with_context(|| format!("peer `{target}` ({transport} upstream)"))?;
        return Ok(Gateway {
            proc,
            url,
            client: setup.client.clone(),
            signer: None,
            dir,
            _audit: None,
        });
    }
    let port = procs::free_port()?;
    // (policy, audit log root, the full pipeline's identity and attestation, batch verification)
    let (policy, audit_root, full, batch_verify) = match target {
        "relay" => (ALLOW_ALL, None, false, false),
        "policy" => (BENCH_POLICIES, None, false, false),
        "full" => (BENCH_POLICIES, Some(setup.audit_dir), true, false),
        "full-tmpfs" => (BENCH_POLICIES, Some(setup.tmpfs_dir), true, false),
        "full-batched" => (BENCH_POLICIES, Some(setup.audit_dir), true, true),
        other => bail!("unknown target `{other}`; use floor, relay, policy, full, full-tmpfs or full-batched"),
    };
    let (listen_extra, tables, client, signer, scheme) = match full {
        true => {
            let f = full_pipeline(setup, batch_verify)?;
            (f.listen, f.tables, f.client, Some(f.signer), "https")
        }
        false => (String::new(), String::new(), setup.client.clone(), None, "http"),
    };
    let policy_path = dir.path().join("bench.cedar");
    std::fs::write(&policy_path, policy)?;
    let audit = audit_root
        .map(|root| {
            tempfile::Builder::new()
                .prefix("portcullis-bench-audit-")
                .tempdir_in(root)
                .with_context(|| format!("cannot create an audit dir in {}", root.display()))
        })
        .transpose()?;
    let audit_section = match &audit {
        None => "enabled = false\n".to_owned(),
        Some(a) => format!("path = {:?}\n", a.path().display().to_string()),
    };
    let server = match transport {
        "http" => format!("url = {:?}", setup.upstream_url),
        "stdio" => format!(
            "command = [{:?}, \"--stdio\"]",
            setup.upstream_bin.display().to_string()
        ),
        other => bail!("unknown transport `{other}`; use http or stdio"),
    };
    let config = format!(
        "[listen]\nhttp = \"127.0.0.1:{port}\"\nmax_sessions = {max_sessions}\n{listen_extra}\n{tables}\n\
         [policy]\ncedar = [{:?}]\n\n[audit]\n{audit_section}\n\
         [limits]\nmax_sessions_per_principal = {max_sessions}\nmax_concurrent_calls_per_principal = {max_sessions}\n\
         [[servers]]\nname = {:?}\n{server}\nprotocol = \"legacy\"\ndefault_tier = \"read\"\n",
        policy_path.display().to_string(),
        wire::SERVER
    );
    let url = format!("{scheme}://127.0.0.1:{port}/mcp");
    let proc = procs::start_gateway(setup.gateway_bin, dir.path(), &config, &url, &client)
        .await
        .with_context(|| format!("gateway `{target}` ({transport} upstream)"))?;
    Ok(Gateway {
        proc,
        url,
        client,
        signer,
        dir,
        _audit: audit,
    })
}

fn profile_of(path: &Path) -> String {
    let text = path.display().to_string();
    if text.contains("/dist/") {
        "dist (fat LTO, one codegen unit)".into()
    } else if text.contains("/release/") {
        "release (thin LTO)".into()
    } else if text.contains("/debug/") {
        "debug (figures are not representative)".into()
    } else {
        "unknown".into()
    }
}

fn main() -> anyhow::Result<()> {
    let mut args = Args::parse();
    if args.quick {
        args.duration = args.duration.min(0.5);
        args.rounds = 1;
        args.concurrency = vec![1, 4];
        args.sessions = args.sessions.min(20);
        args.max_calls = args.max_calls.min(24);
    }
    if args.rounds == 0 || args.concurrency.is_empty() || args.concurrency.contains(&0) {
        bail!("--rounds and every --concurrency must be at least 1");
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    runtime.block_on(run(args))
}

async fn run(mut args: Args) -> anyhow::Result<()> {
    let gateway_bin = match &args.gateway {
        Some(p) => p.clone(),
        None => beside_me("portcullis")?,
    };
    let upstream_bin = match &args.upstream {
        Some(p) => p.clone(),
        None => beside_me("portcullis-bench-upstream")?,
    };
    let audit_dir = args.audit_dir.clone().unwrap_or_else(std::env::temp_dir);
    let tmpfs_dir = if args.tmpfs_dir.is_dir() {
        args.tmpfs_dir.clone()
    } else {
        eprintln!(
            "note: {} is missing; full-tmpfs uses the temp dir",
            args.tmpfs_dir.display()
        );
        std::env::temp_dir()
    };
    let peers = args
        .peer
        .iter()
        .map(|arg| Peer::parse(arg))
        .collect::<anyhow::Result<Vec<_>>>()?;
    for peer in &peers {
        if args.targets.contains(&peer.name) {
            bail!("`{}` is a peer (--peer); do not list it in --targets too", peer.name);
        }
        args.targets.push(peer.name.clone());
    }
    let (http_upstream, upstream_url) = procs::start_http_upstream(&upstream_bin, 1, args.answers)?;
    let pki = BenchPki::new(&gateway_bin)?;
    let client = load::http_client(args.client_conns)?;
    let setup = Setup {
        gateway_bin: &gateway_bin,
        upstream_bin: &upstream_bin,
        upstream_url: &upstream_url,
        audit_dir: &audit_dir,
        tmpfs_dir: &tmpfs_dir,
        pki: &pki,
        client: &client,
        peers: &peers,
    };
    let max_c = args.concurrency.iter().copied().max().unwrap_or(1);
    let mut gateways = Vec::new();
    for transport in &args.transports {
        for target in &args.targets {
            if target == FLOOR && transport != "http" {
                continue; // the floor has no stdio side: it is measured over HTTP only
            }
            let g = start_gateway(&setup, target, transport, max_c * 4 + 16).await?;
            gateways.push((transport.clone(), target.clone(), g));
        }
    }
    let ticks = procs::clock_ticks();
    let http_upstream_observed = ObservedUpstream {
        observed: Observed {
            pid: http_upstream.pid(),
            ticks_per_sec: ticks,
        },
        connections_url: upstream_url.replace("/mcp", CONNECTIONS_PATH),
        client: client.clone(),
    };
    let duration = Duration::from_secs_f64(args.duration.max(0.05));
    let warmup = if args.quick { 2 } else { 20 };
    let mut runs = Vec::new();
    for transport in &args.transports {
        let direct = match transport.as_str() {
            "http" => Endpoint::Http {
                url: upstream_url.clone(),
                signer: None,
            },
            _ => Endpoint::Stdio {
                program: upstream_bin.clone(),
            },
        };
        // The HTTP upstream is one process serving every phase; stdio upstreams are per session.
        let upstream = (transport == "http").then_some(&http_upstream_observed);
        for &concurrency in &args.concurrency {
            let spec = LoadSpec {
                concurrency,
                duration,
                max_calls: args.max_calls,
                warmup_calls: warmup,
                payload: args.payload,
            };
            for round in 0..args.rounds {
                let m = load::measure(&client, &direct, spec, None, upstream, None).await?;
                eprintln!(
                    "{transport} C={concurrency} round {round} {DIRECT}: {:.0} calls/s p50 {:.0} µs",
                    m.throughput_rps, m.p50_us
                );
                runs.push(Run {
                    transport: transport.clone(),
                    concurrency,
                    target: DIRECT.into(),
                    round,
                    m,
                });
                for (_, target, g) in gateways.iter().filter(|(t, _, _)| t == transport) {
                    let endpoint = Endpoint::Http {
                        url: g.url.clone(),
                        signer: g.signer.clone(),
                    };
                    let observed = Observed {
                        pid: g.proc.pid(),
                        ticks_per_sec: ticks,
                    };
                    let alloc_stats = g.dir.path().join(procs::ALLOC_STATS_FILE);
                    let m = load::measure(&g.client, &endpoint, spec, Some(observed), upstream, Some(&alloc_stats))
                        .await
                        .with_context(|| format!("{target} ({transport}); gateway log:\n{}", g.proc.log_tail()))?;
                    let allocs = m
                        .gateway_allocations_per_call
                        .map_or_else(String::new, |a| format!(", {a:.1} allocations/call"));
                    eprintln!(
                        "{transport} C={concurrency} round {round} {target}: {:.0} calls/s p50 {:.0} µs, {:.1} µs CPU/call, {:.2} context switches/call{allocs}",
                        m.throughput_rps,
                        m.p50_us,
                        m.gateway_cpu_us_per_call.unwrap_or_default(),
                        m.gateway_switches_per_call.unwrap_or_default()
                    );
                    runs.push(Run {
                        transport: transport.clone(),
                        concurrency,
                        target: target.clone(),
                        round,
                        m,
                    });
                }
            }
        }
    }
    drop(gateways);
    let sessions = if args.sessions > 0 {
        let g = start_gateway(&setup, "full", "http", args.sessions + 16).await?;
        let s = load::session_scale(
            &g.client,
            &g.url,
            args.sessions,
            32,
            g.proc.pid(),
            args.payload,
            g.signer.as_deref(),
        )
        .await
        .with_context(|| format!("idle sessions; gateway log:\n{}", g.proc.log_tail()))?;
        Some(s)
    } else {
        None
    };
    let summary = report::summarise(&runs);
    let fsync_wait = report::fsync_wait(&runs, "full", "full-tmpfs");
    let report = Report {
        conditions: Conditions {
            machine: procs::machine(),
            gateway_binary: gateway_bin.display().to_string(),
            profile: profile_of(&gateway_bin),
            payload_bytes: args.payload,
            duration_s: duration.as_secs_f64(),
            rounds: args.rounds,
            concurrency: args.concurrency.clone(),
            max_calls_per_phase: args.max_calls,
            upstream_answers: args.answers,
            client_conns: args.client_conns,
            targets: std::iter::once((DIRECT, "the load client against the bench upstream itself"))
                .chain(TARGETS)
                .filter(|(name, _)| *name == DIRECT || args.targets.iter().any(|t| t == name))
                .map(|(name, description)| TargetInfo {
                    name: name.into(),
                    description: description.into(),
                })
                .chain(peers.iter().map(|p| TargetInfo {
                    name: p.name.clone(),
                    description: p.description(),
                }))
                .collect(),
            note: format!(
                "loopback; client, gateway and upstream share this machine; audit dir {}, tmpfs dir {}; \
                 idle sessions on a `full` gateway with the HTTP upstream (per-session upstream connection)",
                audit_dir.display(),
                tmpfs_dir.display()
            ),
        },
        summary,
        fsync_wait,
        sessions,
        runs,
    };
    print!("{}", report::table(&report));
    if let Some(path) = &args.json {
        std::fs::write(path, serde_json::to_vec_pretty(&report)?)
            .with_context(|| format!("cannot write {}", path.display()))?;
    }
    let failed: Vec<String> = report
        .summary
        .iter()
        .filter(|s| s.errors > 0)
        .map(|s| {
            let first = s.first_error.as_deref().unwrap_or("?");
            format!(
                "{} C={} {}: {} errors, the first: {first}",
                s.transport, s.concurrency, s.target, s.errors
            )
        })
        .collect();
    if !failed.is_empty() {
        bail!(
            "calls failed, so those rows do not measure the call path (the JSON report has every row):\n{}",
            failed.join("\n")
        );
    }
    Ok(())
}
