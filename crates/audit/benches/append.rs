//! Durable append throughput of the file store with group commit, in records
//! per second: `C` concurrent appenders each await their `DurableReceipt`
//! (fsync included). C = 1 shows the bare fsync latency; larger C shows how
//! batching amortises it. Run with `cargo bench -p portcullis-audit`; state
//! the disk with the figure (docs/PERFORMANCE.md). The log directory is a
//! temporary directory: set `TMPDIR` to put it on the disk to measure.
#![allow(clippy::expect_used, reason = "benchmark setup: failure aborts the run")]

use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use portcullis_audit::{
    AuditLog, AuditRecord, CheckpointPolicy, Decision, LogOptions, LogSigner, Outcome, Principal, RecordKind, Sha256Hex,
};

fn record(i: u64) -> AuditRecord {
    let mut r = AuditRecord::new(RecordKind::Call, std::time::SystemTime::now());
    r.call_id = Some(format!("call-{i}"));
    r.principal = Some(Principal {
        workload: Some("spiffe://example.org/agent".into()),
        user: Some("alice".into()),
    });
    r.server = Some("github".into());
    r.method = Some("tools/call".into());
    r.tool = Some("create_issue".into());
    r.args_sha256 = Some(Sha256Hex::of(&i.to_le_bytes()));
    r.decision = Some(Decision::Allow);
    r.decision_id = Some(format!("d-{i}"));
    r.policy_sha256 = Some(Sha256Hex::of(b"policy"));
    r.outcome = Some(Outcome::Ok);
    r.result_sha256 = Some(Sha256Hex::of(&(i + 1).to_le_bytes()));
    r.latency_us = Some(1234);
    r
}

/// Appends `per_task * concurrency` records from `concurrency` tasks.
async fn burst(log: &Arc<AuditLog>, concurrency: u64, per_task: u64) {
    let tasks: Vec<_> = (0..concurrency)
        .map(|t| {
            let log = Arc::clone(log);
            tokio::spawn(async move {
                for k in 0..per_task {
                    let _receipt = log.append(&record(t * per_task + k)).await.expect("append");
                }
            })
        })
        .collect();
    for task in tasks {
        task.await.expect("task");
    }
}

fn append(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let dir = tempfile::tempdir().expect("tempdir");
    let options = LogOptions {
        checkpoints: CheckpointPolicy {
            every_records: 65_536,
            interval: Some(Duration::from_secs(5)),
        },
        ..LogOptions::default()
    };
    let opening = Instant::now();
    let log = rt.block_on(async {
        Arc::new(
            AuditLog::open_file(dir.path(), LogSigner::from_seed([1; 32]), options)
                .await
                .expect("open"),
        )
    });
    // A fresh log: this includes zero-filling the first segment's first window.
    eprintln!("fresh log opened in {:.1} ms", opening.elapsed().as_secs_f64() * 1e3);
    let mut group = c.benchmark_group("durable_append_file");
    group.sample_size(10).measurement_time(Duration::from_secs(5));
    for (concurrency, per_task) in [(1u64, 32u64), (64, 64), (512, 16)] {
        let records = concurrency * per_task;
        group.throughput(Throughput::Elements(records));
        group.bench_with_input(
            BenchmarkId::from_parameter(format!("C={concurrency}")),
            &concurrency,
            |b, _| {
                b.iter_custom(|iters| {
                    let start = Instant::now();
                    rt.block_on(async {
                        for _ in 0..iters {
                            burst(&log, concurrency, per_task).await;
                        }
                    });
                    start.elapsed()
                });
            },
        );
    }
    group.finish();
    let stats = log.stats();
    eprintln!(
        "group commit: {} records in {} batches ({:.1} records per fsync)",
        stats.records,
        stats.batches,
        stats.records as f64 / stats.batches.max(1) as f64
    );
}

criterion_group!(benches, append);
criterion_main!(benches);
