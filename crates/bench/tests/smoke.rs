//! Smoke test of the benchmark driver: `--quick` (a few dozen calls per phase, no
//! timing assertions) must produce a report with every phase and non-zero calls.
//! Needs the `portcullis` binary built beside the test (`cargo build --workspace --bins`).
#![allow(clippy::expect_used, clippy::unwrap_used, reason = "test code fails loudly")]

use std::process::Command;

/// Runs `portcullis-bench --quick ARGS` (the upstream built beside it, the audit log in a temp
/// dir) and returns its JSON report.
fn quick_run(args: &[&str]) -> serde_json::Value {
    let dir = tempfile::tempdir().expect("temp dir");
    let json = dir.path().join("bench.json");
    let output = Command::new(env!("CARGO_BIN_EXE_portcullis-bench"))
        .arg("--quick")
        .args(args)
        .args(["--upstream", env!("CARGO_BIN_EXE_portcullis-bench-upstream")])
        .arg("--json")
        .arg(&json)
        .arg("--audit-dir")
        .arg(dir.path())
        .output()
        .expect("run portcullis-bench");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "portcullis-bench --quick {args:?} failed:\n{stderr}"
    );
    serde_json::from_slice(&std::fs::read(&json).unwrap()).unwrap()
}

#[test]
fn quick_run_reports_every_phase() {
    let report = quick_run(&[]);
    let summary = report["summary"].as_array().unwrap();
    // 2 transports × 2 concurrencies × (direct + 4 gateway targets), plus the reference
    // forwarder (`floor`) over HTTP only at both concurrencies.
    assert_eq!(summary.len(), 22, "{summary:#?}");
    let floors: Vec<&serde_json::Value> = summary.iter().filter(|r| r["target"] == "floor").collect();
    assert_eq!(floors.len(), 2, "{summary:#?}");
    assert!(floors.iter().all(|r| r["transport"] == "http"), "{floors:#?}");
    for row in summary {
        assert!(row["calls"].as_u64().unwrap() > 0, "{row}");
        assert_eq!(row["errors"].as_u64(), Some(0), "{row}");
        for key in ["p50_us", "p99_us", "p999_us", "throughput_rps"] {
            assert!(row[key].as_f64().unwrap() > 0.0, "{key} in {row}");
        }
        if row["transport"] == "http" {
            assert!(row["upstream_cpu_us_per_call"].is_number(), "{row}");
            assert!(row["upstream_conns_per_call"].is_number(), "{row}");
        }
        if row["target"] != "direct" {
            assert!(row["gateway_cpu_us_per_call"].is_number(), "{row}");
            assert!(row["gateway_rss_kib"].as_u64().unwrap() > 0, "{row}");
            assert!(
                row["ratio_p50"].is_number() && row["ratio_throughput"].is_number(),
                "{row}"
            );
        }
    }
    assert_eq!(report["fsync_wait"].as_array().unwrap().len(), 4);
    let sessions = &report["sessions"];
    assert_eq!(sessions["opened"].as_u64(), Some(20), "{sessions}");
    assert!(sessions["bytes_per_idle_session"].is_number());
    assert_eq!(sessions["sample_calls"], sessions["sample_calls_ok"]);
    assert!(report["conditions"]["machine"].is_string());
    assert_eq!(report["conditions"]["upstream_answers"], "json");
}

/// `--answers sse`: the upstream answers every request as an SSE stream, as the official
/// SDKs' servers do. The relay keeps its upstream connection across those answers (issue 21
/// item 0: it opened one per call, 1.0 per call).
#[test]
fn quick_run_with_sse_answers_counts_upstream_connections() {
    let report = quick_run(&[
        "--answers",
        "sse",
        "--transports",
        "http",
        "--targets",
        "relay",
        "--sessions",
        "0",
    ]);
    assert_eq!(report["conditions"]["upstream_answers"], "sse");
    let summary = report["summary"].as_array().unwrap();
    assert_eq!(summary.len(), 4, "direct and relay at C=1 and C=4: {summary:#?}");
    for row in summary {
        assert_eq!(row["errors"].as_u64(), Some(0), "{row}");
        let per_call = row["upstream_conns_per_call"].as_f64().unwrap();
        if row["target"] == "relay" {
            assert!(
                per_call < 0.5,
                "the relay opened {per_call} upstream connections per call: {row}"
            );
        }
    }
}
