//! `portcullis-soak`: the soak benchmark driver (see `portcullis_bench::soak`; run by
//! `scripts/soak`, not in CI). Prints progress on stderr, a summary on stdout, and the
//! whole report as JSON with `--json`. Exits non-zero when a call failed in a way no
//! injected fault explains, `audit verify` failed, or an answered call's record is missing.
use std::{path::PathBuf, time::Duration};

use anyhow::{Context, bail};
use clap::Parser;
use portcullis_bench::soak::{self, SoakSpec};

#[derive(Parser, Debug)]
#[command(about = "Soak: calls through the full pipeline with faults injected at random, then audit verify")]
struct Args {
    /// Calls to send.
    #[arg(long, default_value_t = 1_000_000)]
    calls: u64,
    /// Concurrent sessions.
    #[arg(long, default_value_t = 8)]
    concurrency: usize,
    /// Mean seconds between two injected faults.
    #[arg(long, default_value_t = 5.0)]
    fault_every: f64,
    /// Seconds between two RSS samples (and progress lines).
    #[arg(long, default_value_t = 10.0)]
    sample_every: f64,
    /// Bytes of the echo argument.
    #[arg(long, default_value_t = 1024)]
    payload: usize,
    /// Seed of the fault schedule (default: from the clock).
    #[arg(long)]
    seed: Option<u64>,
    /// Work directory: config, policy file, audit log (a real disk; default: a new temp dir).
    #[arg(long, value_name = "DIR")]
    dir: Option<PathBuf>,
    /// Write the JSON report here.
    #[arg(long, value_name = "PATH")]
    json: Option<PathBuf>,
    /// The gateway binary (default: `portcullis` beside this executable).
    #[arg(long, value_name = "PATH")]
    gateway: Option<PathBuf>,
    /// The bench upstream binary (default: `portcullis-bench-upstream` beside this executable).
    #[arg(long, value_name = "PATH")]
    upstream: Option<PathBuf>,
}

fn beside_me(name: &str) -> anyhow::Result<PathBuf> {
    let exe = std::env::current_exe()?;
    let dir = exe.parent().context("executable has no directory")?;
    let path = dir.join(name);
    if !path.is_file() {
        bail!("`{name}` is not next to {}: build it or pass its path", exe.display());
    }
    Ok(path)
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    if args.concurrency == 0 || args.calls == 0 {
        bail!("--calls and --concurrency must be at least 1");
    }
    let seed = args.seed.unwrap_or_else(|| {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(1, |d| d.as_nanos() as u64)
    });
    let temp = match &args.dir {
        Some(_) => None,
        None => Some(tempfile::Builder::new().prefix("portcullis-soak-").tempdir()?),
    };
    let dir = match (&args.dir, &temp) {
        (Some(d), _) => d.clone(),
        (None, Some(t)) => t.path().to_owned(),
        (None, None) => bail!("no work directory"),
    };
    let spec = SoakSpec {
        calls: args.calls,
        concurrency: args.concurrency,
        fault_every: Duration::from_secs_f64(args.fault_every.max(0.1)),
        sample_every: Duration::from_secs_f64(args.sample_every.max(0.5)),
        payload: args.payload,
        seed,
        gateway_bin: match args.gateway {
            Some(p) => p,
            None => beside_me("portcullis")?,
        },
        upstream_bin: match args.upstream {
            Some(p) => p,
            None => beside_me("portcullis-bench-upstream")?,
        },
        dir,
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    let report = runtime.block_on(soak::run(spec))?;
    print!("{}", soak::summary(&report));
    if let Some(path) = &args.json {
        std::fs::write(path, serde_json::to_vec_pretty(&report)?)
            .with_context(|| format!("cannot write {}", path.display()))?;
    }
    if report.unexpected_failures > 0 || !report.verify_ok || report.receipts_missing > 0 {
        bail!("the soak found failures (see the summary)");
    }
    Ok(())
}
