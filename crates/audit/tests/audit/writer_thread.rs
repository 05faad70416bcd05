//! The file store's writer on its own thread: it ends when the log is closed
//! or dropped (final checkpoint written, directory lock released), a failed
//! write there answers every waiting appender and marks the log unhealthy, and
//! checkpoints by time still fire.

use std::sync::Arc;
use std::time::Duration;

use portcullis_audit::store::faulty::Fault;
use portcullis_audit::store::file::FileStore;
use portcullis_audit::{AuditError, AuditLog, CheckpointPolicy, LogOptions, LogReader, StoreError};

use crate::support::{eventually, hold_writer, options, queue_appends, record, signer, trusted, verify_dir};

#[tokio::test]
async fn a_failed_write_on_the_writer_thread_answers_every_waiter_with_the_error() {
    let dir = tempfile::tempdir().expect("tempdir");
    let opts = LogOptions {
        max_batch: 10,
        ..options(0)
    };
    let (log, switch) = AuditLog::open_faulty(dir.path(), signer(), opts).await.expect("open");
    let log = Arc::new(log);
    let _ = log.append(&record(0)).await.expect("append before the fault");
    let held = hold_writer(&log, &switch, 1).await;
    switch.arm(Fault::FailedSync);
    let queued = queue_appends(&log, 2..32).await;
    switch.release();
    // The held batch fails; the store is then poisoned, so the batches queued
    // behind it fail too, each waiter with the error and none acknowledged.
    assert!(matches!(held.await.expect("task"), Err(AuditError::Append(_))));
    for task in queued {
        match task.await.expect("task") {
            Err(AuditError::Append(e)) => assert!(matches!(*e, StoreError::Poisoned), "{e}"),
            other => panic!("a waiter behind a failed write must get the error, got {other:?}"),
        }
    }
    assert!(!log.healthy(), "the log must report itself unhealthy");
    assert_eq!(
        log.len().await.expect("len"),
        1,
        "readers see only acknowledged records"
    );
    Arc::into_inner(log).expect("sole owner").close().await.expect("close");
}

#[tokio::test]
async fn closing_the_log_ends_the_writer_thread_after_the_final_checkpoint() {
    let dir = tempfile::tempdir().expect("tempdir");
    let log = AuditLog::open_file(dir.path(), signer(), options(0))
        .await
        .expect("open");
    for i in 0..5 {
        let _ = log.append(&record(i)).await.expect("append");
    }
    log.close().await.expect("close");
    // Closed means ended: the store is dropped, so the directory is free.
    assert!(FileStore::open(dir.path(), 1 << 20).is_ok(), "lock released at close");
    let reader = portcullis_audit::store::FileReader::open(dir.path()).expect("reader");
    let sizes: Vec<u64> = reader
        .checkpoints()
        .await
        .expect("checkpoints")
        .iter()
        .map(|c| c.checkpoint.size)
        .collect();
    assert_eq!(sizes, vec![5], "the final checkpoint covers every record");
}

#[tokio::test]
async fn dropping_the_log_ends_the_writer_thread_after_the_final_checkpoint() {
    let dir = tempfile::tempdir().expect("tempdir");
    let log = AuditLog::open_file(dir.path(), signer(), options(0))
        .await
        .expect("open");
    for i in 0..5 {
        let _ = log.append(&record(i)).await.expect("append");
    }
    drop(log);
    // The writer ends on its own: once it has, the store (and its lock) is gone.
    eventually("the writer released the directory", || {
        FileStore::open(dir.path(), 1 << 20).is_ok()
    })
    .await;
    let report = verify_dir(dir.path(), &trusted(&[&signer()])).await;
    assert!(report.is_ok(), "{:?}", report.failure);
    assert_eq!(report.checkpoints, 1, "the final checkpoint was written");
}

#[tokio::test]
async fn checkpoints_by_time_are_written_on_the_writer_thread() {
    let dir = tempfile::tempdir().expect("tempdir");
    let opts = LogOptions {
        checkpoints: CheckpointPolicy {
            every_records: 0,
            interval: Some(Duration::from_millis(20)),
        },
        ..LogOptions::default()
    };
    let log = AuditLog::open_file(dir.path(), signer(), opts).await.expect("open");
    for i in 0..3 {
        let _ = log.append(&record(i)).await.expect("append");
    }
    // No size trigger and no request: only the ticker can write it.
    eventually("a checkpoint by time covers the records", || {
        log.latest_checkpoint().is_some_and(|c| c.checkpoint.size == 3)
    })
    .await;
    log.close().await.expect("close");
    let report = verify_dir(dir.path(), &trusted(&[&signer()])).await;
    assert!(report.is_ok(), "{:?}", report.failure);
}
