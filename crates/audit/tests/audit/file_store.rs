//! The embedded file store through the public API: append, read back,
//! reopen, segments, proofs against checkpoints, exclusive lock.

use std::sync::Arc;
use std::time::{Duration, UNIX_EPOCH};

use portcullis_audit::store::file::FileStore;
use portcullis_audit::{
    AuditError, AuditLog, LogOptions, LogReader, StoreError, leaf_hash, verify_consistency, verify_inclusion,
};
use portcullis_core::ManualClock;

use crate::support::{options, record, signer, trusted, verify_dir};

#[tokio::test]
async fn append_returns_consecutive_receipts_and_records_read_back() {
    let dir = tempfile::tempdir().expect("tempdir");
    let log = AuditLog::open_file(dir.path(), signer(), options(0))
        .await
        .expect("open");
    assert!(log.healthy());
    for i in 0..20 {
        let receipt = log.append(&record(i)).await.expect("append");
        assert_eq!(receipt.index(), i);
        assert_eq!(receipt.leaf_hash(), leaf_hash(&record(i).to_bytes().expect("encode")));
    }
    assert_eq!(log.len().await.expect("len"), 20);
    let back = log.read(5..8).await.expect("read");
    assert_eq!(back, vec![record(5), record(6), record(7)]);
    let report = portcullis_audit::verify(log.reader(), &trusted(&[&signer()]), &mut |_| {})
        .await
        .expect("verify");
    assert!(report.is_ok(), "{:?}", report.failure);
    assert_eq!(
        (report.records, report.checkpoints, report.seals, report.unsigned_tail),
        (20, 0, 20, 0)
    );
    log.close().await.expect("close");
}

#[tokio::test]
async fn reopen_keeps_every_record_and_continues_the_tree() {
    let dir = tempfile::tempdir().expect("tempdir");
    let small = LogOptions {
        segment_bytes: 2048,
        ..options(0)
    };
    let log = AuditLog::open_file(dir.path(), signer(), small.clone())
        .await
        .expect("open");
    for i in 0..30 {
        let _ = log.append(&record(i)).await.expect("append");
    }
    let first = log.checkpoint_now().await.expect("checkpoint");
    assert_eq!(first.checkpoint.size, 30);
    log.close().await.expect("close");
    assert!(crate::support::segments(dir.path()).len() > 2, "small segments rotate");

    let log = AuditLog::open_file(dir.path(), signer(), small).await.expect("reopen");
    assert_eq!(log.len().await.expect("len"), 30);
    for i in 30..50 {
        assert_eq!(log.append(&record(i)).await.expect("append").index(), i);
    }
    log.close().await.expect("close writes a final checkpoint");
    let report = verify_dir(dir.path(), &trusted(&[&signer()])).await;
    assert!(report.is_ok(), "{:?}", report.failure);
    assert_eq!((report.records, report.checkpoints, report.unsigned_tail), (50, 2, 0));
    assert_eq!(report.latest_checkpoint.map(|c| c.checkpoint.size), Some(50));
}

#[tokio::test]
async fn proofs_check_a_receipt_and_an_extension_against_checkpoints() {
    let dir = tempfile::tempdir().expect("tempdir");
    let log = AuditLog::open_file(dir.path(), signer(), options(0))
        .await
        .expect("open");
    let mut receipts = Vec::new();
    for i in 0..13 {
        receipts.push(log.append(&record(i)).await.expect("append"));
    }
    let old = log.checkpoint_now().await.expect("checkpoint").checkpoint;
    for i in 13..40 {
        receipts.push(log.append(&record(i)).await.expect("append"));
    }
    let new = log.checkpoint_now().await.expect("checkpoint").checkpoint;
    for receipt in [&receipts[0], &receipts[7], &receipts[12], &receipts[39]] {
        let proof = log.prove_inclusion(receipt.index(), new.size).await.expect("prove");
        verify_inclusion(&receipt.leaf_hash(), receipt.index(), new.size, &proof.path, &new.root)
            .expect("inclusion verifies");
    }
    let proof = log.prove_inclusion(3, old.size).await.expect("prove");
    verify_inclusion(&receipts[3].leaf_hash(), 3, old.size, &proof.path, &old.root).expect("old inclusion");
    let proof = log.prove_consistency(old.size, new.size).await.expect("prove");
    verify_consistency(old.size, new.size, &old.root, &new.root, &proof.path).expect("consistent");
    assert!(matches!(log.prove_inclusion(40, 40).await, Err(AuditError::Proof(_))));
    log.close().await.expect("close");
}

#[tokio::test]
async fn a_second_writer_on_the_same_directory_is_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    let log = AuditLog::open_file(dir.path(), signer(), options(0))
        .await
        .expect("open");
    let second = FileStore::open(dir.path(), 1 << 20);
    assert!(
        matches!(second, Err(StoreError::Locked { .. })),
        "second open must fail"
    );
    log.close().await.expect("close");
    assert!(FileStore::open(dir.path(), 1 << 20).is_ok(), "lock released at close");
}

/// A holder's lock note reaches the process refused the lock, so it can say what holds it.
#[tokio::test]
async fn a_refused_writer_learns_the_holders_note() {
    let dir = tempfile::tempdir().expect("tempdir");
    let noted = LogOptions {
        lock_note: Some("{\"pid\":42,\"command\":\"run\"}".into()),
        ..options(0)
    };
    let log = AuditLog::open_file(dir.path(), signer(), noted).await.expect("open");
    match FileStore::open(dir.path(), 1 << 20) {
        Err(StoreError::Locked { holder, .. }) => {
            assert_eq!(holder.as_deref(), Some("{\"pid\":42,\"command\":\"run\"}"));
        }
        other => panic!("second open must fail with the note: {:?}", other.err()),
    }
    log.close().await.expect("close");
    let second = LogOptions {
        lock_note: Some("second".into()),
        ..options(0)
    };
    let log = AuditLog::open_file(dir.path(), signer(), second).await.expect("reopen");
    match FileStore::open(dir.path(), 1 << 20) {
        Err(StoreError::Locked { holder, .. }) => assert_eq!(holder.as_deref(), Some("second"), "the note is replaced"),
        other => panic!("locked: {:?}", other.err()),
    }
    log.close().await.expect("close");
}

#[tokio::test]
async fn the_reader_sees_only_acknowledged_records() {
    let dir = tempfile::tempdir().expect("tempdir");
    let log = AuditLog::open_file(dir.path(), signer(), options(0))
        .await
        .expect("open");
    let _ = log.append(&record(0)).await.expect("append");
    let reader = log.reader().clone();
    assert_eq!(reader.len().await.expect("len"), 1);
    assert!(reader.read(0..2).await.is_err(), "reading past the end is an error");
    log.close().await.expect("close");
}

#[tokio::test]
async fn checkpoints_are_stamped_by_the_logs_clock() {
    let dir = tempfile::tempdir().expect("tempdir");
    let clock = Arc::new(ManualClock::new(UNIX_EPOCH + Duration::from_millis(1_770_000_000_123)));
    let opts = LogOptions {
        clock: clock.clone(),
        ..options(0)
    };
    let log = AuditLog::open_file(dir.path(), signer(), opts).await.expect("open");
    let _ = log.append(&record(0)).await.expect("append");
    let first = log.checkpoint_now().await.expect("checkpoint");
    assert_eq!(first.checkpoint.time_ms, 1_770_000_000_123);
    clock.advance(Duration::from_secs(60));
    let _ = log.append(&record(1)).await.expect("append");
    let second = log.checkpoint_now().await.expect("checkpoint");
    assert_eq!(second.checkpoint.time_ms, 1_770_000_060_123);
    log.close().await.expect("close");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn verify_reports_progress_through_a_large_log() {
    let dir = tempfile::tempdir().expect("tempdir");
    let log = std::sync::Arc::new(
        AuditLog::open_file(dir.path(), signer(), options(3000))
            .await
            .expect("open"),
    );
    let tasks: Vec<_> = (0..50u64)
        .map(|t| {
            let log = std::sync::Arc::clone(&log);
            tokio::spawn(async move {
                for k in 0..200 {
                    let _ = log.append(&record(t * 200 + k)).await.expect("append");
                }
            })
        })
        .collect();
    for task in tasks {
        task.await.expect("task");
    }
    std::sync::Arc::into_inner(log)
        .expect("owner")
        .close()
        .await
        .expect("close");
    let reader = portcullis_audit::store::FileReader::open(dir.path()).expect("reader");
    let mut seen = Vec::new();
    let report = portcullis_audit::verify(&reader, &trusted(&[&signer()]), &mut |p| seen.push(p))
        .await
        .expect("verify");
    assert!(report.is_ok(), "{:?}", report.failure);
    assert_eq!(report.records, 10_000);
    assert!(seen.len() >= 3, "progress reported per chunk: {}", seen.len());
    assert!(seen.windows(2).all(|w| w[0].records_done < w[1].records_done));
    assert_eq!(
        seen.last().map(|p| (p.records_done, p.records_total)),
        Some((10_000, 10_000))
    );
}
