//! Preallocated segments: the writer zero-fills a segment ahead of its write
//! position and writes each batch at the logical end, inside that zero tail.
//! Reopening continues at the logical end; recovery, the offline reader and
//! `verify` end a segment where the zeros begin; a torn write in the
//! prefilled area is cut like a torn end; damage followed by valid frames,
//! and non-zero bytes after the zeros beyond a torn write's reach, stop the
//! start naming the entry; rotation cuts the closed segment's zero tail (and
//! one left there is still read); segments of the version before, which grow
//! with every append, open and take appends; a full disk while prefilling
//! costs nothing but the prefill.

use std::path::Path;
use std::sync::Arc;

use portcullis_audit::error::Defect;
use portcullis_audit::store::faulty::Fault;
use portcullis_audit::store::file::{FileStore, PREFILL_BYTES};
use portcullis_audit::store::frame::{self, TORN_REACH};
use portcullis_audit::store::{AuditStore, Entry, FileReader};
use portcullis_audit::{
    AuditError, AuditLog, CheckpointSigner, LogOptions, LogReader, StoreError, VerifyFailure, leaf_hash,
};
use portcullis_core::SystemClock;

use crate::support::{
    all_frames, frame_offset, logical_end, options, record, segments, signer, snapshot, strip_zero_tail, trusted,
    verify_dir, write_at,
};

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime")
}

/// Appends records `from..to` (a checkpoint after the first `checkpoint_at`
/// when given) and crashes: no orderly close, no final checkpoint.
fn append_then_crash(dir: &Path, opts: LogOptions, from: u64, to: u64, checkpoint_at: Option<u64>) {
    runtime().block_on(async {
        let log = AuditLog::open_file(dir, signer(), opts).await.expect("open");
        for i in from..to {
            assert_eq!(log.append(&record(i)).await.expect("append").index(), i);
            if Some(i + 1) == checkpoint_at {
                let _ = log.checkpoint_now().await.expect("checkpoint");
            }
        }
        log.simulate_crash().await.expect("crash"); // no orderly close, no final checkpoint
    });
}

fn file_len(path: &Path) -> usize {
    std::fs::metadata(path).expect("stat").len() as usize
}

/// The bytes of a segment after its frames: `None` when there are none.
fn zero_tail(path: &Path) -> Option<usize> {
    let bytes = std::fs::read(path).expect("read");
    let end = logical_end(path);
    assert!(frame::is_zero(&bytes[end..]), "only zeros follow the frames");
    (bytes.len() > end).then(|| bytes.len() - end)
}

#[test]
fn a_fresh_log_is_zero_filled_ahead_and_reopen_continues_at_the_logical_end() {
    let dir = tempfile::tempdir().expect("tempdir");
    append_then_crash(dir.path(), options(0), 0, 10, None);
    let seg = segments(dir.path()).pop().expect("segment");
    let prefilled = file_len(&seg);
    assert!(
        prefilled >= PREFILL_BYTES as usize,
        "the first window is written at open: {prefilled}"
    );
    assert!(zero_tail(&seg).is_some(), "the segment ends in zeros");

    // The offline reader and verify end the segment where the zeros begin.
    let rt = runtime();
    rt.block_on(async {
        let reader = FileReader::open(dir.path()).expect("reader");
        assert_eq!(reader.len().await.expect("len"), 10);
        let report = verify_dir(dir.path(), &trusted(&[&signer()])).await;
        assert!(report.is_ok(), "{:?}", report.failure);
        assert_eq!((report.records, report.seals), (10, 10));
    });

    // Reopen: the next records go at the logical end, inside the window.
    append_then_crash(dir.path(), options(0), 10, 25, None);
    assert_eq!(
        file_len(&seg),
        prefilled,
        "appends inside the window do not grow the file"
    );
    let indexes: Vec<u64> = all_frames(&seg)
        .into_iter()
        .filter(|(seq, ..)| !frame::is_seal(*seq))
        .map(|(seq, ..)| seq)
        .collect();
    assert_eq!(indexes, (0..25).collect::<Vec<_>>(), "no gap, nothing after the zeros");
    rt.block_on(async {
        let log = AuditLog::open_file(dir.path(), signer(), options(0))
            .await
            .expect("reopen");
        assert_eq!(log.len().await.expect("len"), 25);
        assert_eq!(
            log.read(0..25).await.expect("read"),
            (0..25).map(record).collect::<Vec<_>>()
        );
        log.close().await.expect("close");
        let report = verify_dir(dir.path(), &trusted(&[&signer()])).await;
        assert!(report.is_ok(), "{:?}", report.failure);
        assert_eq!(report.records, 25);
    });
}

#[test]
fn garbage_after_the_zero_tail_stops_the_start_naming_the_entry() {
    let dir = tempfile::tempdir().expect("tempdir");
    append_then_crash(dir.path(), options(0), 0, 12, Some(8));
    let seg = segments(dir.path()).pop().expect("segment");
    let end = logical_end(&seg);
    let len = file_len(&seg);
    assert!((len - end) as u64 > TORN_REACH, "the window reaches past a torn write");
    write_at(&seg, len - 8, &[0xab; 8]);
    let before = snapshot(dir.path());

    let rt = runtime();
    let opened = rt.block_on(AuditLog::open_file(dir.path(), signer(), options(0)));
    match opened {
        Err(AuditError::Open(error @ StoreError::BeyondTornWrite { index: 12, .. })) => {
            let message = error.to_string();
            assert!(message.contains("entry 12"), "{message}");
            assert!(message.contains("portcullis audit verify"), "{message}");
        }
        other => panic!("bytes after the zeros must stop the start: {:?}", other.err()),
    }
    assert_eq!(snapshot(dir.path()), before, "a refused open changes nothing");
    let failure = rt
        .block_on(verify_dir(dir.path(), &trusted(&[&signer()])))
        .failure
        .expect("verify reports them");
    assert_eq!(
        failure,
        VerifyFailure::DamagedRecord {
            index: 12,
            defect: Defect::AfterZeroTail
        }
    );
}

#[test]
fn bytes_a_torn_write_can_reach_are_cut_like_a_torn_end() {
    // A batch whose first page never landed but a later one did: zeros, then
    // bytes of the batch, within one write of the last seal.
    let dir = tempfile::tempdir().expect("tempdir");
    append_then_crash(dir.path(), options(0), 0, 12, Some(8));
    let seg = segments(dir.path()).pop().expect("segment");
    let end = logical_end(&seg);
    write_at(&seg, end + 4096, &[0xab; 100]);
    let rt = runtime();
    rt.block_on(async {
        let reader = FileReader::open(dir.path()).expect("reader");
        assert_eq!(
            reader.len().await.expect("len"),
            12,
            "the reader ends the log as recovery will"
        );
        let log = AuditLog::open_file(dir.path(), signer(), options(0))
            .await
            .expect("a torn end recovers");
        assert_eq!(log.len().await.expect("len"), 12);
        assert_eq!(log.append(&record(12)).await.expect("append").index(), 12);
        log.close().await.expect("close");
        let report = verify_dir(dir.path(), &trusted(&[&signer()])).await;
        assert!(report.is_ok(), "{:?}", report.failure);
        assert_eq!(report.records, 13);
    });
    assert!(zero_tail(&seg).is_some(), "the cut segment is prefilled again");
}

#[test]
fn a_flipped_byte_mid_log_before_valid_frames_refuses_naming_the_index() {
    let dir = tempfile::tempdir().expect("tempdir");
    append_then_crash(dir.path(), options(0), 0, 20, Some(10));
    let seg = segments(dir.path()).pop().expect("segment");
    assert!(zero_tail(&seg).is_some(), "a preallocated segment");
    let mut bytes = std::fs::read(&seg).expect("read");
    bytes[frame_offset(&seg, 14) + 40] ^= 0x01;
    std::fs::write(&seg, &bytes).expect("write");
    let before = snapshot(dir.path());
    let rt = runtime();
    let opened = rt.block_on(AuditLog::open_file(dir.path(), signer(), options(0)));
    let Err(error) = opened else {
        panic!("damage followed by intact records must stop the start");
    };
    assert!(error.to_string().contains("entry 14"), "{error}");
    assert_eq!(snapshot(dir.path()), before, "nothing is cut");
    let failure = rt
        .block_on(verify_dir(dir.path(), &trusted(&[&signer()])))
        .failure
        .expect("verify reports the damage");
    assert_eq!(failure.first_bad_index(), Some(14), "{failure}");
}

fn small_segments() -> LogOptions {
    LogOptions {
        segment_bytes: 8 * 1024,
        ..options(0)
    }
}

#[test]
fn rotation_cuts_the_zero_tail_of_the_closed_segment() {
    let dir = tempfile::tempdir().expect("tempdir");
    append_then_crash(dir.path(), small_segments(), 0, 60, None);
    let segs = segments(dir.path());
    assert!(segs.len() >= 3, "small segments rotate: {}", segs.len());
    let (last, closed) = segs.split_last().expect("segments");
    for seg in closed {
        assert_eq!(zero_tail(seg), None, "{} keeps no zero tail", seg.display());
    }
    assert!(zero_tail(last).is_some(), "the active segment is prefilled");
    // The window stops at the segment size: the logical size decides rotation.
    assert!(file_len(last) <= 8 * 1024 + 4096, "{}", file_len(last));
}

#[test]
fn a_zero_tail_left_on_a_closed_segment_is_its_clean_end() {
    let dir = tempfile::tempdir().expect("tempdir");
    append_then_crash(dir.path(), small_segments(), 0, 60, None);
    let segs = segments(dir.path());
    // As if rotation had left the first segment's window in place.
    let first = &segs[0];
    let end = file_len(first);
    std::fs::OpenOptions::new()
        .write(true)
        .open(first)
        .expect("open")
        .set_len((end + 5000) as u64)
        .expect("extend");
    let rt = runtime();
    rt.block_on(async {
        let report = verify_dir(dir.path(), &trusted(&[&signer()])).await;
        assert!(report.is_ok(), "{:?}", report.failure);
        assert_eq!(report.records, 60);
        let log = AuditLog::open_file(dir.path(), signer(), small_segments())
            .await
            .expect("reopen");
        assert_eq!(
            log.read(0..60).await.expect("read"),
            (0..60).map(record).collect::<Vec<_>>()
        );
        assert_eq!(log.append(&record(60)).await.expect("append").index(), 60);
        log.close().await.expect("close");
    });

    // Non-zero bytes after those zeros: damage in a closed segment.
    let next_first = crate::support::first_index(&segs[1]);
    write_at(first, end + 4999, &[1]);
    let before = snapshot(dir.path());
    let opened = rt.block_on(AuditLog::open_file(dir.path(), signer(), small_segments()));
    let Err(error) = opened else {
        panic!("bytes after the zeros of a closed segment must stop the start");
    };
    assert!(error.to_string().contains(&format!("entry {next_first}")), "{error}");
    assert_eq!(snapshot(dir.path()), before);
    let failure = rt
        .block_on(verify_dir(dir.path(), &trusted(&[&signer()])))
        .failure
        .expect("verify reports the damage");
    assert_eq!(failure.first_bad_index(), Some(next_first), "{failure}");
}

#[test]
fn segments_of_the_previous_version_open_and_take_appends() {
    let dir = tempfile::tempdir().expect("tempdir");
    append_then_crash(dir.path(), small_segments(), 0, 30, Some(20));
    // What the version before preallocation left: segments that end at their
    // last frame.
    for seg in segments(dir.path()) {
        strip_zero_tail(&seg);
        assert_eq!(zero_tail(&seg), None);
    }
    let rt = runtime();
    rt.block_on(async {
        let report = verify_dir(dir.path(), &trusted(&[&signer()])).await;
        assert!(report.is_ok(), "{:?}", report.failure);
        let log = AuditLog::open_file(dir.path(), signer(), small_segments())
            .await
            .expect("open");
        assert_eq!(log.len().await.expect("len"), 30);
        for i in 30..45 {
            assert_eq!(log.append(&record(i)).await.expect("append").index(), i);
        }
        log.close().await.expect("close");
        let report = verify_dir(dir.path(), &trusted(&[&signer()])).await;
        assert!(report.is_ok(), "{:?}", report.failure);
        assert_eq!(report.records, 45);
    });
    let last = segments(dir.path()).pop().expect("segment");
    assert!(
        zero_tail(&last).is_some(),
        "the active segment is prefilled from then on"
    );
}

#[tokio::test]
async fn a_full_disk_while_prefilling_falls_back_to_a_growing_segment() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (log, switch) = AuditLog::open_faulty(dir.path(), signer(), small_segments())
        .await
        .expect("open");
    switch.arm(Fault::PrefillNoSpace);
    let mut n = 0;
    while switch.armed().is_some() {
        assert!(n < 200, "no zero-fill was attempted");
        assert_eq!(log.append(&record(n)).await.expect("append").index(), n);
        n += 1;
    }
    // The batch the failed fill was for went to the end of the file: the
    // zeros written before the disk was full were given back.
    let growing = segments(dir.path()).pop().expect("segment");
    assert_eq!(zero_tail(&growing), None, "written growing, no stray zeros");
    assert!(log.healthy(), "a failed prefill is not a failed write");
    for i in n..n + 3 {
        assert_eq!(log.append(&record(i)).await.expect("append").index(), i);
    }
    log.close().await.expect("close");
    let report = verify_dir(dir.path(), &trusted(&[&signer()])).await;
    assert!(report.is_ok(), "{:?}", report.failure);
    assert_eq!(report.records, n + 3);
}

#[tokio::test]
async fn a_batch_larger_than_one_write_is_sealed_in_parts() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().to_owned();
    let mut store = tokio::task::spawn_blocking(move || FileStore::open(&path, 64 << 20))
        .await
        .expect("join")
        .expect("open");
    let signer = CheckpointSigner::new(signer(), Arc::new(SystemClock));
    // Five 400 KiB entries: two fit in one write of at most 1 MiB of records.
    let entries: Vec<Entry> = (0..5u8)
        .map(|i| {
            let data = vec![b'a' + i; 400 * 1024];
            Entry {
                leaf: leaf_hash(&data),
                data: data.into(),
            }
        })
        .collect();
    let committed = store.append_batch(entries, &signer).await.expect("append");
    assert_eq!((committed.first_index, committed.head.size), (0, 5));
    assert_eq!(committed.seal.checkpoint.size, 5);
    let sealed = store.reader().read_sealed(0..5).await.expect("read");
    assert_eq!(sealed.records.len(), 5);
    let sizes: Vec<u64> = sealed.seals.iter().map(|s| s.checkpoint.size).collect();
    assert_eq!(sizes, vec![2, 4, 5], "one seal per write");
    assert_eq!(sealed.seals.last(), Some(&committed.seal));
}

#[tokio::test]
async fn an_empty_entry_at_index_0_is_a_frame_not_the_start_of_the_zero_tail() {
    // Its frame header is twelve zero bytes; only its CRC is not zero.
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().to_owned();
    let mut store = tokio::task::spawn_blocking(move || FileStore::open(&path, 64 << 20))
        .await
        .expect("join")
        .expect("open");
    let signer = CheckpointSigner::new(signer(), Arc::new(SystemClock));
    let entries = vec![Entry {
        leaf: leaf_hash(b""),
        data: Default::default(),
    }];
    let _ = store.append_batch(entries, &signer).await.expect("append");
    assert_eq!(
        store.reader().read(0..1).await.expect("live read"),
        vec![Vec::<u8>::new()]
    );
    drop(store);
    let offline = FileReader::open(dir.path()).expect("reader");
    assert_eq!(offline.len().await.expect("len"), 1);
    assert_eq!(offline.read(0..1).await.expect("read"), vec![Vec::<u8>::new()]);
    let path = dir.path().to_owned();
    let reopened = tokio::task::spawn_blocking(move || FileStore::open(&path, 64 << 20))
        .await
        .expect("join")
        .expect("reopen");
    assert_eq!(reopened.last_seal().map(|s| s.checkpoint.size), Some(1));
}
