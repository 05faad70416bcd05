//! T15, log unavailable: when the disk fails a write or an fsync (or is full),
//! `append` returns an error, the log reports itself unhealthy, nothing is
//! acknowledged, and after a restart the log recovers and verifies with every
//! previously acknowledged record intact. Uses the named fault-injection fake (`store::faulty`).

use std::sync::Arc;

use portcullis_audit::store::faulty::Fault;
use portcullis_audit::{AuditError, AuditLog, StoreError, leaf_hash};

use crate::support::{options, record, signer, trusted, verify_dir};

async fn fault_scenario(fault: Fault) {
    let dir = tempfile::tempdir().expect("tempdir");
    let (log, switch) = AuditLog::open_faulty(dir.path(), signer(), options(0))
        .await
        .expect("open");
    let log = Arc::new(log);
    let mut acknowledged = Vec::new();
    for i in 0..5 {
        acknowledged.push(log.append(&record(i)).await.expect("append before the fault"));
    }
    let _ = log.checkpoint_now().await.expect("checkpoint");
    switch.arm(fault);
    let tasks: Vec<_> = (5..9)
        .map(|i| {
            let log = Arc::clone(&log);
            tokio::spawn(async move { log.append(&record(i)).await })
        })
        .collect();
    for task in tasks {
        let result = task.await.expect("task");
        assert!(
            matches!(result, Err(AuditError::Append(_))),
            "{fault:?}: got {result:?}"
        );
    }
    assert!(!log.healthy(), "{fault:?}: the log must report itself unhealthy");
    // The store stays failed until restart: nothing is acknowledged after a fault.
    let later = log.append(&record(100)).await;
    match later {
        Err(AuditError::Append(e)) => assert!(matches!(*e, StoreError::Poisoned), "{e}"),
        other => panic!("{fault:?}: append after a failure must fail, got {other:?}"),
    }
    assert!(!log.healthy());
    assert_eq!(
        log.len().await.expect("len"),
        5,
        "readers see only acknowledged records"
    );
    let log = Arc::into_inner(log).expect("sole owner");
    log.close().await.expect("close");

    // Restart: recovery cuts whatever the failed write left; all acknowledged
    // records are present and the log verifies.
    let log = AuditLog::open_file(dir.path(), signer(), options(0))
        .await
        .expect("reopen");
    assert!(log.healthy());
    let len = log.len().await.expect("len");
    assert!(len >= 5, "{fault:?}: lost acknowledged records");
    let stored = log.reader();
    for r in &acknowledged {
        let data = portcullis_audit::LogReader::read(stored, r.index()..r.index() + 1)
            .await
            .expect("read");
        assert_eq!(leaf_hash(&data[0]), r.leaf_hash());
    }
    assert_eq!(
        log.append(&record(200)).await.expect("append after restart").index(),
        len
    );
    log.close().await.expect("close");
    let report = verify_dir(dir.path(), &trusted(&[&signer()])).await;
    assert!(report.is_ok(), "{fault:?}: {:?}", report.failure);
}

#[tokio::test]
async fn t15_torn_write_fails_the_append_and_marks_the_log_unhealthy() {
    fault_scenario(Fault::TornWrite).await;
}

#[tokio::test]
async fn t15_failed_fsync_fails_the_append_and_marks_the_log_unhealthy() {
    fault_scenario(Fault::FailedSync).await;
}

#[tokio::test]
async fn t15_full_disk_fails_the_append_and_marks_the_log_unhealthy() {
    fault_scenario(Fault::NoSpace).await;
}

#[tokio::test]
async fn error_messages_say_what_happened_and_what_to_do() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (log, switch) = AuditLog::open_faulty(dir.path(), signer(), options(0))
        .await
        .expect("open");
    switch.arm(Fault::NoSpace);
    let err = log.append(&record(0)).await.expect_err("must fail").to_string();
    assert!(err.contains("NOT stored"), "{err}");
    assert!(err.contains("no space left"), "{err}");
    assert!(err.contains("deny the call"), "{err}");
    log.close().await.expect("close");
}
