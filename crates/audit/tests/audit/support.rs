//! Shared helpers: deterministic keys and records, log options, raw segment
//! access for tampering, and verification of a directory through the
//! offline reader.

use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, UNIX_EPOCH};

use portcullis_audit::store::FileReader;
use portcullis_audit::store::faulty::FaultSwitch;
use portcullis_audit::store::frame::{self, Decoded, HEADER_LEN};
use portcullis_audit::{
    AuditError, AuditLog, AuditRecord, CheckpointPolicy, Decision, LogOptions, LogSigner, Outcome, Principal,
    RecordKind, Sha256Hex, TrustedKeys, VerifyReport, verify,
};
use tempfile::TempDir;
use tokio::task::JoinHandle;

pub fn signer() -> LogSigner {
    LogSigner::from_seed([7u8; 32])
}

pub fn other_signer() -> LogSigner {
    LogSigner::from_seed([9u8; 32])
}

pub fn trusted(signers: &[&LogSigner]) -> TrustedKeys {
    signers.iter().map(|s| s.public_key()).collect()
}

/// A realistic call record, distinct per `i`.
pub fn record(i: u64) -> AuditRecord {
    let mut r = AuditRecord::new(RecordKind::Call, UNIX_EPOCH + Duration::from_secs(1_770_000_000 + i));
    r.call_id = Some(format!("call-{i}"));
    r.principal = Some(Principal {
        workload: Some("spiffe://example.org/agent".into()),
        user: Some("alice".into()),
    });
    r.server = Some("github".into());
    r.method = Some("tools/call".into());
    r.tool = Some("create_issue".into());
    r.args_sha256 = Some(Sha256Hex::of(format!("args {i}").as_bytes()));
    r.decision = Some(Decision::Allow);
    r.decision_id = Some(format!("d-{i}"));
    r.outcome = Some(Outcome::Ok);
    r.result_sha256 = Some(Sha256Hex::of(format!("result {i}").as_bytes()));
    r.latency_us = Some(1000 + i);
    r
}

/// Options with checkpoints only on request (and at close), unless given.
pub fn options(every_records: u64) -> LogOptions {
    LogOptions {
        checkpoints: CheckpointPolicy {
            every_records,
            interval: None,
        },
        ..LogOptions::default()
    }
}

pub async fn verify_dir(dir: &Path, keys: &TrustedKeys) -> VerifyReport {
    let reader = FileReader::open(dir).expect("open reader");
    verify(&reader, keys, &mut |_| {}).await.expect("log readable")
}

pub fn segments(dir: &Path) -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = std::fs::read_dir(dir)
        .expect("list dir")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "seg"))
        .collect();
    out.sort();
    out
}

/// Every frame of a segment file, records and batch seals, in order: (seq,
/// payload, byte offset). The frames end at the end of the file or where a
/// zero tail (a preallocated segment's unwritten part) begins.
pub fn all_frames(path: &Path) -> Vec<(u64, Vec<u8>, usize)> {
    let bytes = std::fs::read(path).expect("read segment");
    let mut out = Vec::new();
    let mut offset = HEADER_LEN;
    let mut next = first_index(path);
    while offset < bytes.len() {
        match frame::decode_entry(&bytes[offset..], next) {
            Decoded::Frame { seq, payload, len } => {
                out.push((seq, payload.to_vec(), offset));
                if !frame::is_seal(seq) {
                    next += 1;
                }
                offset += len;
            }
            _ if frame::is_zero(&bytes[offset..]) => break,
            other => panic!("unexpected frame state {other:?} at {offset}"),
        }
    }
    out
}

/// Where the frames of a segment end (its logical end): the file's length
/// for a growing segment, the start of the zero tail for a preallocated one.
pub fn logical_end(path: &Path) -> usize {
    all_frames(path).last().map_or(HEADER_LEN, |(_, payload, offset)| {
        offset + frame::FRAME_OVERHEAD + payload.len()
    })
}

/// Writes `bytes` into a segment at byte `at`, over whatever is there (the
/// zero tail, for a write inside the prefilled area), growing the file only
/// if they run past its end.
pub fn write_at(path: &Path, at: usize, bytes: &[u8]) {
    use std::os::unix::fs::FileExt;
    let file = std::fs::OpenOptions::new()
        .write(true)
        .open(path)
        .expect("open segment");
    file.write_all_at(bytes, at as u64).expect("write segment");
    file.sync_all().expect("sync segment");
}

/// Cuts a segment back to its frames, as the previous version (segments that
/// grow with every append, no zero tail) would have left it.
pub fn strip_zero_tail(path: &Path) {
    let end = logical_end(path);
    let file = std::fs::OpenOptions::new()
        .write(true)
        .open(path)
        .expect("open segment");
    file.set_len(end as u64).expect("truncate segment");
}

/// The record frames of a segment file: (seq, payload); batch seals skipped.
pub fn read_frames(path: &Path) -> Vec<(u64, Vec<u8>)> {
    all_frames(path)
        .into_iter()
        .filter(|(seq, ..)| !frame::is_seal(*seq))
        .map(|(seq, payload, _)| (seq, payload))
        .collect()
}

/// Rewrites a segment with these record frames, with valid framing, as a
/// careful attacker who also strips the batch seals would: a version-1
/// (legacy, unsealed) segment, so only the periodic checkpoints still bind it.
pub fn write_frames(path: &Path, frames: &[(u64, Vec<u8>)]) {
    let mut bytes = frame::header(frame::SEGMENT_MAGIC).to_vec();
    for (seq, payload) in frames {
        frame::encode(*seq, payload, &mut bytes);
    }
    std::fs::write(path, bytes).expect("write segment");
}

/// Replaces the payload of record `index` in place, keeping the header, every
/// other frame and every seal, with a valid CRC: the forgery the batch seals
/// must catch (docs/THREATS.md T24).
pub fn rewrite_record(path: &Path, index: u64, payload: &[u8]) {
    let bytes = std::fs::read(path).expect("read segment");
    let mut out = bytes[..HEADER_LEN].to_vec();
    for (seq, old, _) in all_frames(path) {
        let body = if seq == index { payload } else { &old[..] };
        frame::encode(seq, body, &mut out);
    }
    std::fs::write(path, out).expect("write segment");
}

pub fn first_index(path: &Path) -> u64 {
    let name = path.file_stem().and_then(|s| s.to_str()).expect("segment name");
    name.trim_start_matches("log-").parse().expect("segment index")
}

/// Byte offset of the frame of the `n`th record (0-based within the
/// segment; batch seals are skipped) in a segment file.
pub fn frame_offset(path: &Path, n: usize) -> usize {
    all_frames(path)
        .into_iter()
        .filter(|(seq, ..)| !frame::is_seal(*seq))
        .nth(n)
        .map(|(.., offset)| offset)
        .expect("record in segment")
}

/// A unique name for a PostgreSQL schema or similar.
pub fn unique(prefix: &str) -> String {
    let mut bytes = [0u8; 6];
    getrandom::fill(&mut bytes).expect("random");
    format!("{prefix}_{}", hex::encode(bytes))
}

/// The PostgreSQL server of the store tests; `None` (with a notice naming `what`) when CI's
/// `DATABASE_URL` is not set, and the test is skipped.
#[expect(
    clippy::disallowed_methods,
    reason = "test setup: CI names its PostgreSQL server in DATABASE_URL"
)]
pub fn database_url(what: &str) -> Option<String> {
    let url = std::env::var("DATABASE_URL").ok();
    if url.is_none() {
        eprintln!("DATABASE_URL is not set: skipping {what}");
    }
    url
}

/// Every segment and checkpoint file of a log directory with its bytes, to show an open
/// changed nothing.
pub fn snapshot(dir: &Path) -> Vec<(PathBuf, Vec<u8>)> {
    let mut files: Vec<_> = std::fs::read_dir(dir)
        .expect("list")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "seg" || e == "ckp"))
        .map(|p| {
            let bytes = std::fs::read(&p).expect("read");
            (p, bytes)
        })
        .collect();
    files.sort();
    files
}

/// Waits until `done()` holds, checking every few milliseconds; fails the test
/// (instead of hanging it) if it still does not hold after a minute. A bound on
/// liveness, not a timing assertion.
pub async fn eventually(what: &str, mut done: impl FnMut() -> bool) {
    for _ in 0..12_000 {
        if done() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    panic!("still not true after a minute: {what}");
}

/// Appends record `i` from a task of its own; its index once durable.
pub fn spawn_append(log: &Arc<AuditLog>, i: u64) -> JoinHandle<Result<u64, AuditError>> {
    let log = Arc::clone(log);
    tokio::spawn(async move { log.append(&record(i)).await.map(|r| r.index()) })
}

/// Holds the writer on its next segment write (record `first` being appended
/// by a spawned task) and returns that task once the writer is held.
pub async fn hold_writer(log: &Arc<AuditLog>, switch: &FaultSwitch, first: u64) -> JoinHandle<Result<u64, AuditError>> {
    switch.stall_next_write();
    let held = spawn_append(log, first);
    eventually("the writer is held", || switch.is_stalled()).await;
    held
}

/// A fresh faulty log with `options`, held on the disk while record 0's appender
/// writes it: the directory, the log, its switch and record 0's task.
pub async fn held_log(
    options: LogOptions,
) -> (
    TempDir,
    Arc<AuditLog>,
    Arc<FaultSwitch>,
    JoinHandle<Result<u64, AuditError>>,
) {
    let dir = tempfile::tempdir().expect("tempdir");
    let (log, switch) = AuditLog::open_faulty(dir.path(), signer(), options)
        .await
        .expect("open");
    let log = Arc::new(log);
    let held = hold_writer(&log, &switch, 0).await;
    (dir, log, switch, held)
}

/// Spawns one appender per index in `range` and waits until every one of them is
/// queued behind the writer.
pub async fn queue_appends(log: &Arc<AuditLog>, range: Range<u64>) -> Vec<JoinHandle<Result<u64, AuditError>>> {
    let expected = range.clone().count();
    let tasks: Vec<_> = range.map(|i| spawn_append(log, i)).collect();
    while log.queued() < expected {
        tokio::task::yield_now().await;
    }
    tasks
}

/// The indexes the appenders got, sorted (each must have succeeded).
pub async fn indexes_of(tasks: Vec<JoinHandle<Result<u64, AuditError>>>) -> Vec<u64> {
    let mut indexes = Vec::new();
    for task in tasks {
        indexes.push(task.await.expect("task").expect("append"));
    }
    indexes.sort_unstable();
    indexes
}
