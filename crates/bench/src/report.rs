//! Results: every measured phase, medians over rounds with the gateway/direct ratios
//! taken round by round, the fsync wait, idle sessions, as JSON and as a table.
use std::fmt::Write as _;

use serde::Serialize;

use crate::{
    load::{ClientConns, Measurement, SessionScale},
    upstream::Answers,
};

/// The baseline target name: the client against the upstream itself.
pub const DIRECT: &str = "direct";

/// Conditions of the run, stated with the figures (docs/PERFORMANCE.md).
#[derive(Debug, Clone, Serialize)]
pub struct Conditions {
    pub machine: String,
    pub gateway_binary: String,
    pub profile: String,
    pub payload_bytes: usize,
    pub duration_s: f64,
    pub rounds: usize,
    pub concurrency: Vec<usize>,
    pub max_calls_per_phase: u64,
    /// How the HTTP upstream answers: `json` bodies, or `sse` streams as the SDKs' servers do.
    pub upstream_answers: Answers,
    /// How the load client uses its connections: `pooled` or `per-call`.
    pub client_conns: ClientConns,
    pub targets: Vec<TargetInfo>,
    pub note: String,
}

/// What one target is.
#[derive(Debug, Clone, Serialize)]
pub struct TargetInfo {
    pub name: String,
    pub description: String,
}

/// One measured phase.
#[derive(Debug, Clone, Serialize)]
pub struct Run {
    pub transport: String,
    pub concurrency: usize,
    pub target: String,
    pub round: usize,
    #[serde(flatten)]
    pub m: Measurement,
}

/// Medians over rounds for one (transport, concurrency, target).
#[derive(Debug, Clone, Serialize)]
pub struct Summary {
    pub transport: String,
    pub concurrency: usize,
    pub target: String,
    pub rounds: usize,
    pub calls: u64,
    pub errors: u64,
    /// The first error answer over the rounds, if any.
    pub first_error: Option<String>,
    pub p50_us: f64,
    pub p99_us: f64,
    pub p999_us: f64,
    pub throughput_rps: f64,
    pub gateway_cpu_us_per_call: Option<f64>,
    pub gateway_rss_kib: Option<u64>,
    /// The gateway's context switches per call (all its threads).
    pub gateway_switches_per_call: Option<f64>,
    /// The gateway's allocations per call (a `count-allocations` build only).
    pub gateway_allocations_per_call: Option<f64>,
    /// The HTTP upstream's CPU per call (the cost of a minimal MCP server on this machine).
    pub upstream_cpu_us_per_call: Option<f64>,
    /// New TCP connections to the HTTP upstream per call.
    pub upstream_conns_per_call: Option<f64>,
    /// Gateway/direct, per round, median. `None` for the direct rows.
    pub ratio_p50: Option<f64>,
    pub ratio_p99: Option<f64>,
    pub ratio_throughput: Option<f64>,
    /// Gateway − direct latency, per round, median.
    pub added_p50_us: Option<f64>,
    pub added_p99_us: Option<f64>,
}

/// The fsync wait: `full` (durable audit on disk) minus `full-tmpfs` (the same
/// pipeline, audit on tmpfs where fsync returns at once), per round, median.
#[derive(Debug, Clone, Serialize)]
pub struct FsyncWait {
    pub transport: String,
    pub concurrency: usize,
    pub p50_us: f64,
    pub p99_us: f64,
    pub cpu_us_per_call: Option<f64>,
}

/// The whole report.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub conditions: Conditions,
    pub summary: Vec<Summary>,
    pub fsync_wait: Vec<FsyncWait>,
    pub sessions: Option<SessionScale>,
    pub runs: Vec<Run>,
}

fn median(mut values: Vec<f64>) -> f64 {
    if values.is_empty() {
        return 0.0;
    }
    values.sort_by(f64::total_cmp);
    let n = values.len();
    if n % 2 == 1 {
        values[n / 2]
    } else {
        (values[n / 2 - 1] + values[n / 2]) / 2.0
    }
}

fn median_of(values: Vec<f64>) -> Option<f64> {
    (!values.is_empty()).then(|| median(values))
}

/// Summaries in the order (transport, concurrency, target) first appeared.
pub fn summarise(runs: &[Run]) -> Vec<Summary> {
    let mut keys: Vec<(String, usize, String)> = Vec::new();
    for r in runs {
        let key = (r.transport.clone(), r.concurrency, r.target.clone());
        if !keys.contains(&key) {
            keys.push(key);
        }
    }
    keys.into_iter()
        .map(|(transport, concurrency, target)| {
            let mine: Vec<&Run> = runs
                .iter()
                .filter(|r| r.transport == transport && r.concurrency == concurrency && r.target == target)
                .collect();
            let direct = |round: usize| {
                runs.iter().find(|r| {
                    r.transport == transport && r.concurrency == concurrency && r.target == DIRECT && r.round == round
                })
            };
            let pairs: Vec<(&Run, &Run)> = if target == DIRECT {
                Vec::new()
            } else {
                mine.iter().filter_map(|r| direct(r.round).map(|d| (*r, d))).collect()
            };
            let pick = |f: fn(&Measurement) -> f64| median(mine.iter().map(|r| f(&r.m)).collect());
            let ratio = |f: fn(&Measurement) -> f64| {
                median_of(
                    pairs
                        .iter()
                        .filter(|(_, d)| f(&d.m) > 0.0)
                        .map(|(g, d)| f(&g.m) / f(&d.m))
                        .collect(),
                )
            };
            let added = |f: fn(&Measurement) -> f64| median_of(pairs.iter().map(|(g, d)| f(&g.m) - f(&d.m)).collect());
            Summary {
                rounds: mine.len(),
                calls: mine.iter().map(|r| r.m.calls).sum(),
                errors: mine.iter().map(|r| r.m.errors).sum(),
                first_error: mine.iter().find_map(|r| r.m.first_error.clone()),
                p50_us: pick(|m| m.p50_us),
                p99_us: pick(|m| m.p99_us),
                p999_us: pick(|m| m.p999_us),
                throughput_rps: pick(|m| m.throughput_rps),
                gateway_cpu_us_per_call: median_of(mine.iter().filter_map(|r| r.m.gateway_cpu_us_per_call).collect()),
                gateway_rss_kib: mine.iter().filter_map(|r| r.m.gateway_rss_kib).max(),
                gateway_switches_per_call: median_of(
                    mine.iter().filter_map(|r| r.m.gateway_switches_per_call).collect(),
                ),
                gateway_allocations_per_call: median_of(
                    mine.iter().filter_map(|r| r.m.gateway_allocations_per_call).collect(),
                ),
                upstream_cpu_us_per_call: median_of(mine.iter().filter_map(|r| r.m.upstream_cpu_us_per_call).collect()),
                upstream_conns_per_call: median_of(mine.iter().filter_map(|r| r.m.upstream_conns_per_call).collect()),
                ratio_p50: ratio(|m| m.p50_us),
                ratio_p99: ratio(|m| m.p99_us),
                ratio_throughput: ratio(|m| m.throughput_rps),
                added_p50_us: added(|m| m.p50_us),
                added_p99_us: added(|m| m.p99_us),
                transport,
                concurrency,
                target,
            }
        })
        .collect()
}

/// The fsync wait per (transport, concurrency), where both `full` and `full-tmpfs` ran.
pub fn fsync_wait(runs: &[Run], durable: &str, tmpfs: &str) -> Vec<FsyncWait> {
    let mut out = Vec::new();
    let mut seen: Vec<(String, usize)> = Vec::new();
    for r in runs.iter().filter(|r| r.target == durable) {
        let key = (r.transport.clone(), r.concurrency);
        if seen.contains(&key) {
            continue;
        }
        seen.push(key);
        let pairs: Vec<(&Run, &Run)> = runs
            .iter()
            .filter(|a| a.target == durable && a.transport == r.transport && a.concurrency == r.concurrency)
            .filter_map(|a| {
                runs.iter()
                    .find(|b| {
                        b.target == tmpfs
                            && b.transport == a.transport
                            && b.concurrency == a.concurrency
                            && b.round == a.round
                    })
                    .map(|b| (a, b))
            })
            .collect();
        if pairs.is_empty() {
            continue;
        }
        out.push(FsyncWait {
            transport: r.transport.clone(),
            concurrency: r.concurrency,
            p50_us: median(pairs.iter().map(|(a, b)| a.m.p50_us - b.m.p50_us).collect()),
            p99_us: median(pairs.iter().map(|(a, b)| a.m.p99_us - b.m.p99_us).collect()),
            cpu_us_per_call: median_of(
                pairs
                    .iter()
                    .filter_map(|(a, b)| Some(a.m.gateway_cpu_us_per_call? - b.m.gateway_cpu_us_per_call?))
                    .collect(),
            ),
        });
    }
    out
}

/// The short human-readable table.
pub fn table(report: &Report) -> String {
    let mut out = String::new();
    let c = &report.conditions;
    let _ = writeln!(
        out,
        "machine: {} | gateway: {} ({}) | payload {} B | {} round(s) × {:.1} s per phase | HTTP upstream answers {} | client connections {}",
        c.machine,
        c.gateway_binary,
        c.profile,
        c.payload_bytes,
        c.rounds,
        c.duration_s,
        match c.upstream_answers {
            Answers::Json => "JSON",
            Answers::Sse => "SSE",
        },
        match c.client_conns {
            ClientConns::Pooled => "pooled",
            ClientConns::PerCall => "one per call",
        }
    );
    let _ = writeln!(
        out,
        "{:<6} {:>3} {:<14} {:>8} {:>8} {:>9} {:>9} {:>7} {:>7} {:>7} {:>7} {:>7} {:>6} {:>6} {:>6} {:>8} {:>8} {:>6}",
        "upstr",
        "C",
        "target",
        "p50 µs",
        "p99 µs",
        "p99.9 µs",
        "calls/s",
        "CPU µs",
        "cs/call",
        "RSS MiB",
        "up. CPU",
        "up.conn",
        "p50×",
        "p99×",
        "thr×",
        "+p50 µs",
        "+p99 µs",
        "errors"
    );
    let opt = |v: Option<f64>, prec: usize| v.map_or_else(|| "-".to_owned(), |v| format!("{v:.prec$}"));
    for s in &report.summary {
        let _ = writeln!(
            out,
            "{:<6} {:>3} {:<14} {:>8.0} {:>8.0} {:>9.0} {:>9.0} {:>7} {:>7} {:>7} {:>7} {:>7} {:>6} {:>6} {:>6} {:>8} {:>8} {:>6}",
            s.transport,
            s.concurrency,
            s.target,
            s.p50_us,
            s.p99_us,
            s.p999_us,
            s.throughput_rps,
            opt(s.gateway_cpu_us_per_call, 1),
            opt(s.gateway_switches_per_call, 2),
            opt(s.gateway_rss_kib.map(|k| k as f64 / 1024.0), 1),
            opt(s.upstream_cpu_us_per_call, 1),
            opt(s.upstream_conns_per_call, 3),
            opt(s.ratio_p50, 2),
            opt(s.ratio_p99, 2),
            opt(s.ratio_throughput, 2),
            opt(s.added_p50_us, 0),
            opt(s.added_p99_us, 0),
            s.errors,
        );
    }
    for s in &report.summary {
        if let Some(allocs) = s.gateway_allocations_per_call {
            let _ = writeln!(
                out,
                "allocations ({} C={} {}): {allocs:.1} per call (a count-allocations build of the gateway)",
                s.transport, s.concurrency, s.target
            );
        }
    }
    for f in &report.fsync_wait {
        let _ = writeln!(
            out,
            "fsync wait ({} C={}): p50 +{:.0} µs, p99 +{:.0} µs, gateway CPU {} µs/call (full − full-tmpfs)",
            f.transport,
            f.concurrency,
            f.p50_us,
            f.p99_us,
            opt(f.cpu_us_per_call, 1)
        );
    }
    if let Some(s) = &report.sessions {
        let _ = writeln!(
            out,
            "idle sessions: {} of {} opened in {:.1} s; gateway RSS {:.1} → {:.1} MiB = {:.1} KiB per idle session; {}/{} sampled calls ok",
            s.opened,
            s.requested,
            s.open_elapsed_s,
            s.rss_before_kib as f64 / 1024.0,
            s.rss_after_kib as f64 / 1024.0,
            s.bytes_per_idle_session / 1024.0,
            s.sample_calls_ok,
            s.sample_calls
        );
        if let Some(e) = &s.first_error {
            let _ = writeln!(out, "  first session error ({} failed): {e}", s.failed);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(target: &str, round: usize, p50: f64, rps: f64) -> Run {
        Run {
            transport: "http".into(),
            concurrency: 1,
            target: target.into(),
            round,
            m: Measurement {
                calls: 10,
                errors: 0,
                first_error: None,
                elapsed_s: 1.0,
                throughput_rps: rps,
                p50_us: p50,
                p99_us: p50 * 2.0,
                p999_us: p50 * 3.0,
                gateway_cpu_us_per_call: (target != DIRECT).then_some(20.0),
                gateway_rss_kib: None,
                gateway_switches_per_call: (target != DIRECT).then_some(p50 / 100.0),
                gateway_allocations_per_call: (target != DIRECT).then_some(p50 / 2.0),
                upstream_cpu_us_per_call: Some(p50 / 10.0),
                upstream_conns_per_call: Some(if target == DIRECT { 0.0 } else { 1.0 }),
            },
        }
    }

    #[test]
    fn ratios_are_per_round_medians() {
        let runs = vec![
            run(DIRECT, 0, 100.0, 1000.0),
            run("relay", 0, 150.0, 800.0),
            run(DIRECT, 1, 200.0, 500.0),
            run("relay", 1, 260.0, 450.0),
            run(DIRECT, 2, 100.0, 1000.0),
            run("relay", 2, 300.0, 300.0),
        ];
        let s = summarise(&runs);
        assert_eq!(s.len(), 2);
        assert_eq!(s[1].ratio_p50, Some(1.5));
        assert_eq!(s[1].added_p50_us, Some(60.0));
        assert_eq!(s[1].ratio_throughput, Some(0.8));
        assert_eq!(s[0].ratio_p50, None);
        assert_eq!(s[1].calls, 30);
        assert_eq!(s[0].upstream_cpu_us_per_call, Some(10.0));
        assert_eq!(s[1].upstream_cpu_us_per_call, Some(26.0));
        assert_eq!(
            (s[0].upstream_conns_per_call, s[1].upstream_conns_per_call),
            (Some(0.0), Some(1.0))
        );
        // Context switches per call: the median of the rounds (1.5, 2.6, 3.0), none direct.
        assert_eq!(s[1].gateway_switches_per_call, Some(2.6));
        assert_eq!(s[0].gateway_switches_per_call, None);
        // Allocations per call (a counting build): the median of 75, 130 and 150.
        assert_eq!(s[1].gateway_allocations_per_call, Some(130.0));
        assert_eq!(s[0].gateway_allocations_per_call, None);
    }

    fn report_of(runs: &[Run]) -> Report {
        Report {
            conditions: Conditions {
                machine: "test".into(),
                gateway_binary: "portcullis".into(),
                profile: "dist".into(),
                payload_bytes: 1024,
                duration_s: 1.0,
                rounds: 1,
                concurrency: vec![1],
                max_calls_per_phase: 10,
                upstream_answers: Answers::Json,
                client_conns: ClientConns::Pooled,
                targets: Vec::new(),
                note: String::new(),
            },
            summary: summarise(runs),
            fsync_wait: Vec::new(),
            sessions: None,
            runs: runs.to_vec(),
        }
    }

    #[test]
    fn the_table_names_the_allocations_of_a_counting_build_only() {
        let mut runs = vec![run(DIRECT, 0, 100.0, 1000.0), run("relay", 0, 150.0, 800.0)];
        let with = table(&report_of(&runs));
        assert!(with.contains("allocations (http C=1 relay): 75.0 per call"), "{with}");
        runs[1].m.gateway_allocations_per_call = None;
        let without = table(&report_of(&runs));
        assert!(!without.contains("allocations"), "{without}");
    }
}
