//! T15: edit, drop, swap, truncate or fork the stored log → verification
//! fails and names the place. "Naive" edits leave the framing broken (caught
//! at the exact record); "careful" edits re-frame with valid CRCs and
//! sequence numbers (caught by the signed checkpoints, naming the range after
//! the last checkpoint that still matches).

use std::path::Path;

use portcullis_audit::error::Defect;
use portcullis_audit::store::FileReader;
use portcullis_audit::store::frame::{self, FrameDefect};
use portcullis_audit::{AuditError, AuditLog, LogReader, StoreError, VerifyFailure};

use crate::support::{
    frame_offset, options, other_signer, read_frames, record, segments, signer, trusted, verify_dir, write_frames,
};

/// 40 records, checkpoints at 10, 20, 30 and 40.
async fn build_log(dir: &Path) {
    let log = AuditLog::open_file(dir, signer(), options(0)).await.expect("open");
    for i in 0..40 {
        let _ = log.append(&record(i)).await.expect("append");
        if (i + 1) % 10 == 0 {
            let _ = log.checkpoint_now().await.expect("checkpoint");
        }
    }
    log.close().await.expect("close");
}

async fn failure(dir: &Path) -> VerifyFailure {
    let report = verify_dir(dir, &trusted(&[&signer()])).await;
    report.failure.expect("verification must fail")
}

fn only_segment(dir: &Path) -> std::path::PathBuf {
    let segs = segments(dir);
    assert_eq!(segs.len(), 1);
    segs[0].clone()
}

#[tokio::test]
async fn t15_untouched_log_verifies() {
    let dir = tempfile::tempdir().expect("tempdir");
    build_log(dir.path()).await;
    let report = verify_dir(dir.path(), &trusted(&[&signer()])).await;
    assert!(report.is_ok(), "{:?}", report.failure);
    assert_eq!((report.records, report.checkpoints), (40, 4));
}

#[tokio::test]
async fn t15_flipped_byte_is_named_by_its_record_index() {
    let dir = tempfile::tempdir().expect("tempdir");
    build_log(dir.path()).await;
    let seg = only_segment(dir.path());
    let mut bytes = std::fs::read(&seg).expect("read");
    bytes[frame_offset(&seg, 25) + 30] ^= 0x01;
    std::fs::write(&seg, bytes).expect("write");
    let f = failure(dir.path()).await;
    assert_eq!(
        f,
        VerifyFailure::DamagedRecord {
            index: 25,
            defect: Defect::Frame(FrameDefect::Checksum)
        }
    );
    assert_eq!(f.first_bad_index(), Some(25));
    // The writer refuses to open (and so to sign over) a damaged acknowledged log.
    let opened = AuditLog::open_file(dir.path(), signer(), options(0)).await;
    assert!(matches!(
        opened,
        Err(AuditError::Open(StoreError::DamagedBeforeIntact { index: 25, .. }))
    ));
}

#[tokio::test]
async fn t15_carefully_modified_record_fails_at_its_checkpoint() {
    let dir = tempfile::tempdir().expect("tempdir");
    build_log(dir.path()).await;
    let seg = only_segment(dir.path());
    let mut frames = read_frames(&seg);
    let mut edited = record(25);
    edited.principal = None; // hide who made the call
    frames[25].1 = edited.to_bytes().expect("encode");
    write_frames(&seg, &frames);
    let f = failure(dir.path()).await;
    assert!(
        matches!(
            f,
            VerifyFailure::RootMismatch {
                since: 20,
                size: 30,
                position: 2,
                ..
            }
        ),
        "{f}"
    );
    assert_eq!(f.first_bad_index(), Some(20));
    assert!(f.to_string().contains("records 20..30"), "{f}");
    let opened = AuditLog::open_file(dir.path(), signer(), options(0)).await;
    assert!(matches!(
        opened,
        Err(AuditError::Open(StoreError::CheckpointMismatch { size: 40 }))
    ));
}

#[tokio::test]
async fn t15_dropped_record_is_detected() {
    let dir = tempfile::tempdir().expect("tempdir");
    build_log(dir.path()).await;
    let seg = only_segment(dir.path());
    let original = read_frames(&seg);

    let mut naive = original.clone();
    naive.remove(13);
    write_frames(&seg, &naive);
    let f = failure(dir.path()).await;
    let seq = FrameDefect::Sequence {
        expected: 13,
        found: 14,
    };
    assert_eq!(
        f,
        VerifyFailure::DamagedRecord {
            index: 13,
            defect: Defect::Frame(seq)
        }
    );

    let mut careful = original.clone();
    careful.remove(13);
    let renumbered: Vec<_> = careful
        .into_iter()
        .enumerate()
        .map(|(i, (_, p))| (i as u64, p))
        .collect();
    write_frames(&seg, &renumbered);
    let f = failure(dir.path()).await;
    assert!(
        matches!(
            f,
            VerifyFailure::RootMismatch {
                since: 10,
                size: 20,
                ..
            }
        ),
        "{f}"
    );
}

#[tokio::test]
async fn t15_swapped_records_are_detected() {
    let dir = tempfile::tempdir().expect("tempdir");
    build_log(dir.path()).await;
    let seg = only_segment(dir.path());
    let original = read_frames(&seg);

    let mut naive = original.clone();
    naive.swap(33, 34);
    write_frames(&seg, &naive);
    let f = failure(dir.path()).await;
    let seq = FrameDefect::Sequence {
        expected: 33,
        found: 34,
    };
    assert_eq!(
        f,
        VerifyFailure::DamagedRecord {
            index: 33,
            defect: Defect::Frame(seq)
        }
    );

    let mut careful = original.clone();
    let (a, b) = (careful[33].1.clone(), careful[34].1.clone());
    careful[33].1 = b;
    careful[34].1 = a;
    write_frames(&seg, &careful);
    let f = failure(dir.path()).await;
    assert!(
        matches!(
            f,
            VerifyFailure::RootMismatch {
                since: 30,
                size: 40,
                ..
            }
        ),
        "{f}"
    );
}

#[tokio::test]
async fn t15_truncated_log_is_detected() {
    let dir = tempfile::tempdir().expect("tempdir");
    build_log(dir.path()).await;
    let seg = only_segment(dir.path());
    let frames = read_frames(&seg);
    write_frames(&seg, &frames[..35]);
    let f = failure(dir.path()).await;
    assert_eq!(
        f,
        VerifyFailure::Truncated {
            position: 3,
            size: 40,
            len: 35
        }
    );
    assert_eq!(f.first_bad_index(), Some(35));
    let opened = AuditLog::open_file(dir.path(), signer(), options(0)).await;
    assert!(matches!(
        opened,
        Err(AuditError::Open(StoreError::MissingRecords {
            checkpoint_size: 40,
            found: 35
        }))
    ));
}

#[tokio::test]
async fn t15_forked_histories_are_detected() {
    let root = tempfile::tempdir().expect("tempdir");
    let (a, b) = (root.path().join("a"), root.path().join("b"));
    let log = AuditLog::open_file(&a, signer(), options(0)).await.expect("open");
    for i in 0..20 {
        let _ = log.append(&record(i)).await.expect("append");
    }
    log.close().await.expect("close");
    std::fs::create_dir(&b).expect("mkdir");
    for entry in std::fs::read_dir(&a).expect("list") {
        let entry = entry.expect("entry");
        std::fs::copy(entry.path(), b.join(entry.file_name())).expect("copy");
    }
    // Both copies continue differently from index 20 and sign sizes 30 and 35.
    for (dir, base) in [(&a, 1000), (&b, 2000)] {
        let log = AuditLog::open_file(dir, signer(), options(0)).await.expect("open");
        for i in 20..40 {
            let _ = log.append(&record(base + i)).await.expect("append");
            if i == 29 || i == 34 {
                let _ = log.checkpoint_now().await.expect("checkpoint");
            }
        }
        log.close().await.expect("close");
    }
    let b_checkpoints = FileReader::open(&b).expect("reader").checkpoints().await.expect("read");
    let splice = |dir: &Path, size: u64| {
        let path = dir.join("checkpoints.ckp");
        let ours = read_checkpoint_count(dir);
        let cp = b_checkpoints
            .iter()
            .find(|c| c.checkpoint.size == size)
            .expect("b checkpoint");
        let mut bytes = std::fs::read(&path).expect("read");
        frame::encode(ours, &cp.to_json(), &mut bytes);
        std::fs::write(&path, bytes).expect("write");
    };
    // Same size, different roots: a fork, named by the two checkpoints.
    let fork = root.path().join("fork");
    copy_dir(&a, &fork);
    splice(&fork, 30);
    let f = failure(&fork).await;
    assert!(matches!(f, VerifyFailure::Fork { size: 30, .. }), "{f}");
    // B's size-35 checkpoint is inconsistent with A's history after record 30.
    let pair = root.path().join("pair");
    copy_dir(&a, &pair);
    std::fs::write(pair.join("checkpoints.ckp"), strip_checkpoints_above(&pair, 30)).expect("write");
    splice(&pair, 35);
    let f = failure(&pair).await;
    assert!(
        matches!(
            f,
            VerifyFailure::RootMismatch {
                since: 30,
                size: 35,
                ..
            }
        ),
        "{f}"
    );
}

#[tokio::test]
async fn t15_forged_or_foreign_checkpoints_are_rejected() {
    let dir = tempfile::tempdir().expect("tempdir");
    build_log(dir.path()).await;
    let path = dir.path().join("checkpoints.ckp");
    let original = std::fs::read(&path).expect("read");
    let reader = FileReader::open(dir.path()).expect("reader");
    let cps = reader.checkpoints().await.expect("checkpoints");
    // Move checkpoint #2's root without re-signing it.
    let mut bytes = frame::header(frame::CHECKPOINT_MAGIC).to_vec();
    for (i, cp) in cps.iter().enumerate() {
        let mut cp = cp.clone();
        if i == 2 {
            cp.checkpoint.root = cps[0].checkpoint.root;
        }
        frame::encode(i as u64, &cp.to_json(), &mut bytes);
    }
    std::fs::write(&path, &bytes).expect("write");
    let f = failure(dir.path()).await;
    assert!(
        matches!(
            f,
            VerifyFailure::BadSignature {
                position: 2,
                size: 30,
                ..
            }
        ),
        "{f}"
    );

    // A checkpoint signed by a key the verifier does not trust.
    std::fs::write(&path, &original).expect("restore");
    let foreign = portcullis_audit::SignedCheckpoint::sign(cps[1].checkpoint, &other_signer());
    let mut bytes = original.clone();
    frame::encode(cps.len() as u64, &foreign.to_json(), &mut bytes);
    std::fs::write(&path, &bytes).expect("write");
    let f = failure(dir.path()).await;
    assert!(f.to_string().contains("not among the trusted log keys"), "{f}");
}

fn read_checkpoint_count(dir: &Path) -> u64 {
    let bytes = std::fs::read(dir.join("checkpoints.ckp")).expect("read");
    let mut offset = frame::HEADER_LEN;
    let mut n = 0;
    while let frame::Decoded::Frame { len, .. } = frame::decode(&bytes[offset..], n) {
        offset += len;
        n += 1;
    }
    n
}

fn strip_checkpoints_above(dir: &Path, size: u64) -> Vec<u8> {
    let bytes = std::fs::read(dir.join("checkpoints.ckp")).expect("read");
    let mut out = frame::header(frame::CHECKPOINT_MAGIC).to_vec();
    let mut offset = frame::HEADER_LEN;
    let (mut n, mut kept) = (0, 0);
    while let frame::Decoded::Frame { payload, len, .. } = frame::decode(&bytes[offset..], n) {
        let cp = portcullis_audit::SignedCheckpoint::from_json(payload).expect("json");
        if cp.checkpoint.size <= size {
            frame::encode(kept, payload, &mut out);
            kept += 1;
        }
        offset += len;
        n += 1;
    }
    out
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir(to).expect("mkdir");
    for entry in std::fs::read_dir(from).expect("list") {
        let entry = entry.expect("entry");
        std::fs::copy(entry.path(), to.join(entry.file_name())).expect("copy");
    }
}
