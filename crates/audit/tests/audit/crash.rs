//! Crash safety at unit level: a process that dies mid-append leaves a torn
//! tail; the next open cuts it back, every acknowledged record is still there
//! and the log verifies. A crash is simulated by stopping the writer where it
//! stands (`AuditLog::simulate_crash`: no close, no final checkpoint), then
//! tearing the file: bytes written at the logical end, inside the zero-filled
//! area ahead of it (the segment is preallocated), as a write cut short would
//! leave them.

use std::path::Path;

use portcullis_audit::store::frame;
use portcullis_audit::{AuditLog, DurableReceipt, leaf_hash};

use crate::support::{logical_end, options, record, segments, signer, trusted, verify_dir, write_at};

/// Runs `fut` to completion on a runtime of its own.
fn block_on<T>(fut: impl std::future::Future<Output = T>) -> T {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(fut)
}

/// Appends `n` records, then stops the writer like `kill -9` after the
/// appends were acknowledged.
fn append_then_crash(dir: &Path, from: u64, n: u64) -> Vec<DurableReceipt> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let receipts = rt.block_on(async {
        let log = AuditLog::open_file(dir, signer(), options(0)).await.expect("open");
        let mut receipts = Vec::new();
        for i in from..from + n {
            receipts.push(log.append(&record(i)).await.expect("append"));
        }
        if from == 0 {
            let _ = log.checkpoint_now().await.expect("checkpoint");
        }
        log.simulate_crash().await.expect("crash"); // no orderly close
        receipts
    });
    drop(rt);
    receipts
}

async fn assert_all_present(dir: &Path, receipts: &[DurableReceipt]) {
    let log = AuditLog::open_file(dir, signer(), options(0))
        .await
        .expect("reopen after crash");
    let len = log.len().await.expect("len");
    let stored = log.reader();
    for r in receipts {
        let data = portcullis_audit::LogReader::read(stored, r.index()..r.index() + 1)
            .await
            .expect("read");
        assert_eq!(
            leaf_hash(&data[0]),
            r.leaf_hash(),
            "acknowledged record {} changed",
            r.index()
        );
    }
    // The log accepts new records right after the recovered tail.
    assert_eq!(log.append(&record(999)).await.expect("append").index(), len);
    log.close().await.expect("close");
    let report = verify_dir(dir, &trusted(&[&signer()])).await;
    assert!(report.is_ok(), "{:?}", report.failure);
}

/// The part of a batch's write that landed before the crash: `bytes` at the
/// last segment's logical end, zeros (the prefilled area) after them.
fn tear(dir: &Path, bytes: &[u8]) {
    let seg = segments(dir).pop().expect("segment");
    let end = logical_end(&seg);
    let len = std::fs::metadata(&seg).expect("stat").len() as usize;
    assert!(
        len >= end + bytes.len(),
        "the torn bytes land inside the prefilled area"
    );
    write_at(&seg, end, bytes);
}

#[test]
fn torn_partial_frame_is_cut_back_and_acknowledged_records_survive() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut receipts = append_then_crash(dir.path(), 0, 10);
    receipts.extend(append_then_crash(dir.path(), 10, 5)); // 5 more after the checkpoint
    let mut torn = Vec::new();
    frame::encode(15, &record(15).to_bytes().expect("encode"), &mut torn);
    tear(dir.path(), &torn[..torn.len() - 7]); // the crash hit mid-write
    block_on(assert_all_present(dir.path(), &receipts));
    block_on(async {
        let log = AuditLog::open_file(dir.path(), signer(), options(0))
            .await
            .expect("open");
        assert_eq!(
            log.len().await.expect("len"),
            16,
            "15 survived + 1 appended after recovery"
        );
        log.close().await.expect("close");
    });
}

#[test]
fn torn_batch_with_garbage_is_cut_back() {
    // A batch of frames whose middle page never reached the disk.
    let dir = tempfile::tempdir().expect("tempdir");
    let receipts = append_then_crash(dir.path(), 0, 8);
    let mut batch = Vec::new();
    for i in 8..12 {
        frame::encode(i, &record(i).to_bytes().expect("encode"), &mut batch);
    }
    let third = batch.len() / 3;
    batch[third..2 * third].fill(0);
    tear(dir.path(), &batch);
    block_on(assert_all_present(dir.path(), &receipts));
}

#[test]
fn torn_checkpoint_and_torn_new_segment_are_recovered() {
    let dir = tempfile::tempdir().expect("tempdir");
    let receipts = append_then_crash(dir.path(), 0, 6);
    // A checkpoint write torn halfway.
    let ckp = dir.path().join("checkpoints.ckp");
    let mut data = std::fs::read(&ckp).expect("read");
    let mut half = Vec::new();
    frame::encode(1, br#"{"size":6,"root":"00"}"#, &mut half);
    data.extend_from_slice(&half[..half.len() / 2]);
    std::fs::write(&ckp, data).expect("write");
    // A segment created by rotation whose header never fully landed.
    let next = dir.path().join(format!("log-{:020}.seg", 6));
    std::fs::write(&next, &frame::header(frame::SEGMENT_MAGIC)[..5]).expect("write");
    block_on(assert_all_present(dir.path(), &receipts));
}

#[test]
fn without_any_checkpoint_every_acknowledged_record_survives() {
    let dir = tempfile::tempdir().expect("tempdir");
    let receipts = append_then_crash(dir.path(), 1, 12); // from != 0: no checkpoint
    tear(dir.path(), &[0xff; 5]);
    block_on(assert_all_present(dir.path(), &receipts));
}
