//! Group commit: concurrent appenders share fsyncs, get distinct consecutive
//! indexes, and every acknowledged record survives a reopen.

use std::collections::BTreeSet;
use std::sync::Arc;

use portcullis_audit::{AuditLog, LogOptions, leaf_hash};

use crate::support::{held_log, indexes_of, options, queue_appends, record, signer, trusted, verify_dir};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn many_concurrent_appenders_get_distinct_consecutive_indexes() {
    let dir = tempfile::tempdir().expect("tempdir");
    let log = Arc::new(
        AuditLog::open_file(dir.path(), signer(), options(500))
            .await
            .expect("open"),
    );
    let mut tasks = Vec::new();
    for t in 0..100u64 {
        let log = Arc::clone(&log);
        tasks.push(tokio::spawn(async move {
            let mut got = Vec::new();
            for k in 0..20u64 {
                let i = t * 20 + k;
                let receipt = log.append(&record(i)).await.expect("append");
                got.push((i, receipt.index(), receipt.leaf_hash()));
            }
            got
        }));
    }
    let mut by_index = std::collections::BTreeMap::new();
    for task in tasks {
        for (i, index, leaf) in task.await.expect("task") {
            assert!(by_index.insert(index, (i, leaf)).is_none(), "index {index} given twice");
        }
    }
    let indexes: BTreeSet<u64> = by_index.keys().copied().collect();
    assert_eq!(indexes, (0..2000).collect::<BTreeSet<u64>>());
    // Each receipt names the record that is actually stored at its index.
    let stored = log.read(0..2000).await.expect("read");
    for (index, (i, leaf)) in &by_index {
        assert_eq!(stored[*index as usize], record(*i));
        assert_eq!(*leaf, leaf_hash(&record(*i).to_bytes().expect("encode")));
    }
    let stats = log.stats();
    assert_eq!(stats.records, 2000);
    assert!(stats.batches < stats.records, "appends were batched: {stats:?}");
    let log = Arc::into_inner(log).expect("sole owner");
    log.close().await.expect("close");

    let log = AuditLog::open_file(dir.path(), signer(), options(0))
        .await
        .expect("reopen");
    assert_eq!(log.len().await.expect("len"), 2000);
    log.close().await.expect("close");
    let report = verify_dir(dir.path(), &trusted(&[&signer()])).await;
    assert!(report.is_ok(), "{:?}", report.failure);
    assert!(
        report.checkpoints >= 4,
        "size-triggered checkpoints: {}",
        report.checkpoints
    );
}

#[tokio::test]
async fn queued_appends_are_written_in_batches_of_max_batch() {
    // The leader is held (a stalled disk) on the blocking pool while the
    // appenders run on this current-thread runtime: a write in progress never
    // blocks the caller's runtime. Then the queue drains in full batches.
    let (_dir, log, switch, held) = held_log(LogOptions {
        max_batch: 100,
        ..options(0)
    })
    .await;
    let queued = queue_appends(&log, 1..401).await;
    switch.release();
    assert_eq!(held.await.expect("task").expect("append"), 0);
    assert_eq!(indexes_of(queued).await, (1..401).collect::<Vec<u64>>());
    let stats = log.stats();
    assert_eq!(stats.records, 401);
    assert_eq!(
        stats.batches, 5,
        "one held batch, then 400 queued in batches of 100: {stats:?}"
    );
    Arc::into_inner(log).expect("sole owner").close().await.expect("close");
}
