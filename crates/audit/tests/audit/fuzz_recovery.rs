//! Harness `fuzz_recovery`: the frame reader, the offline verifier and crash recovery at
//! open, on a real log damaged at random. A small log is written with the real API (three
//! records, a checkpoint, five more, each its own sealed batch, then a crash), and its
//! segment is damaged: bytes flipped, cut, garbage appended, inserted or deleted. Then
//! `FileReader` + `verify` and `AuditLog::open_file` run on it. Properties: nothing
//! panics; a refused open changes no file; an open that succeeds returns the original
//! records and nothing else, never cuts a checkpointed record, cuts only at the end of a
//! seal before the damage, never when an intact seal follows the damage, and the log it
//! continues verifies; a pure cut or appended garbage always opens. The segment is
//! damaged without its zero tail (the log is preallocated), and then given a zero tail
//! again or not (`zero_tail`): the same damage inside the prefilled area, before the
//! zeros, must have the same outcome. Seeds: damaged copies of a committed log
//! (`testdata/fuzz-seeds/recovery/`, segments of the version before preallocation,
//! with no zero tail), each named for the outcome it must have: `opens-<records>-…` or
//! `refused-…`.
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use portcullis_audit::store::FileReader;
use portcullis_audit::store::frame::{self, FRAME_OVERHEAD};
use portcullis_audit::{AuditLog, AuditRecord, verify};
use proptest::prelude::*;
use proptest::sample::Index;

use crate::support::{all_frames, logical_end, options, record, segments, signer, snapshot, trusted, verify_dir};

/// Zero bytes after a damaged segment when it keeps a zero tail: the prefilled area.
const ZERO_TAIL: usize = 64 * 1024;

/// Records in the log, and how many of them the periodic checkpoint covers.
const RECORDS: u64 = 8;
const CHECKPOINTED: u64 = 3;

/// A log as written: its directory, its one segment's bytes up to its logical end (the
/// zero tail left out), and for each seal the end offset of its frame and the number of
/// records it covers.
struct Written {
    dir: tempfile::TempDir,
    segment: Vec<u8>,
    seal_ends: Vec<(usize, u64)>,
}

impl Written {
    fn from_dir(dir: tempfile::TempDir) -> Self {
        let seg = segments(dir.path()).pop().expect("segment");
        assert_eq!(segments(dir.path()).len(), 1, "the harness damages one segment");
        let mut covered = 0; // records before the frame
        let mut seal_ends = Vec::new();
        for (seq, payload, offset) in all_frames(&seg) {
            if frame::is_seal(seq) {
                seal_ends.push((offset + FRAME_OVERHEAD + payload.len(), covered));
            } else {
                covered += 1;
            }
        }
        assert_eq!(covered, RECORDS);
        let mut segment = std::fs::read(&seg).expect("read");
        segment.truncate(logical_end(&seg));
        Self {
            dir,
            segment,
            seal_ends,
        }
    }

    /// The records kept by a cut at byte `at`: those of the last seal that ends by then.
    fn kept_at(&self, at: usize) -> u64 {
        self.seal_ends
            .iter()
            .filter(|(end, _)| *end <= at)
            .map(|(_, n)| *n)
            .max()
            .unwrap_or(0)
    }

    /// Whether a seal of the original lies wholly after byte `at`, unchanged in `damaged`.
    fn intact_seal_after(&self, at: usize, damaged: &[u8]) -> bool {
        let starts = all_seal_starts(&self.segment);
        starts.iter().zip(&self.seal_ends).any(|(start, (end, _))| {
            *start >= at && *end <= damaged.len() && damaged[*start..*end] == self.segment[*start..*end]
        })
    }

    /// A copy of the log with `segment` as its segment, followed by `zero_tail` zero bytes.
    fn copy_with(&self, segment: &[u8], zero_tail: usize) -> tempfile::TempDir {
        let copy = tempfile::tempdir().expect("tempdir");
        for entry in std::fs::read_dir(self.dir.path()).expect("list") {
            let path = entry.expect("entry").path();
            if path.extension().is_some_and(|e| e == "ckp") {
                std::fs::copy(&path, copy.path().join(path.file_name().expect("name"))).expect("copy");
            }
        }
        let seg = segments(self.dir.path()).pop().expect("segment");
        let mut bytes = segment.to_vec();
        bytes.resize(segment.len() + zero_tail, 0);
        std::fs::write(copy.path().join(seg.file_name().expect("name")), bytes).expect("write");
        copy
    }
}

fn all_seal_starts(segment: &[u8]) -> Vec<usize> {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join(format!("log-{:020}.seg", 0));
    std::fs::write(&path, segment).expect("write");
    all_frames(&path)
        .into_iter()
        .filter(|(seq, ..)| frame::is_seal(*seq))
        .map(|(.., offset)| offset)
        .collect()
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime")
}

/// Writes the harness's log into `dir` with the real API and crashes.
pub fn write_log(dir: &Path) {
    runtime().block_on(async {
        let log = AuditLog::open_file(dir, signer(), options(0)).await.expect("open");
        for i in 0..RECORDS {
            if i == CHECKPOINTED {
                let _ = log.checkpoint_now().await.expect("checkpoint");
            }
            let _ = log.append(&record(i)).await.expect("append");
        }
        log.simulate_crash().await.expect("crash"); // no orderly close, no final checkpoint
    });
}

/// The log written once per run with the real API.
fn fresh() -> &'static Written {
    static FRESH: OnceLock<Written> = OnceLock::new();
    FRESH.get_or_init(|| {
        let dir = tempfile::tempdir().expect("tempdir");
        write_log(dir.path());
        Written::from_dir(dir)
    })
}

fn seed_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata/fuzz-seeds/recovery")
}

/// The committed log the seeds were cut from (`base/`), copied so that opening it
/// changes nothing committed.
fn committed() -> Written {
    let dir = tempfile::tempdir().expect("tempdir");
    for entry in std::fs::read_dir(seed_dir().join("base")).expect("list base") {
        let path = entry.expect("entry").path();
        std::fs::copy(&path, dir.path().join(path.file_name().expect("name"))).expect("copy");
    }
    Written::from_dir(dir)
}

/// How the segment was damaged, as far as the properties care.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Shape {
    /// Not damaged at all.
    Intact,
    /// Bytes changed in place from this offset to that one (exclusive); nothing moved.
    InPlace(usize, usize),
    /// Cut at this length.
    Cut(usize),
    /// Bytes appended after the original end.
    Appended,
    /// Bytes inserted or deleted: everything after moved.
    Moved,
}

/// The outcome of opening a damaged copy (followed by `zero_tail` zero bytes): the
/// records kept, or a refusal.
fn check(written: &Written, damaged: &[u8], shape: Shape, zero_tail: usize) -> Option<u64> {
    let dir = written.copy_with(damaged, zero_tail);
    let rt = runtime();
    let before = snapshot(dir.path());
    let verified = rt.block_on(async {
        let reader = FileReader::open(dir.path()).ok()?;
        verify(&reader, &trusted(&[&signer()]), &mut |_| {}).await.ok()
    });
    match (&verified, shape) {
        // Damage with nothing intact after it is a torn end to the verifier too: the
        // records it passes are those sealed before the damage, and no more.
        (Some(report), Shape::InPlace(from, to)) if report.is_ok() => {
            assert_eq!(
                report.records,
                written.kept_at(from),
                "verify passed damage at {from}..{to}"
            );
            assert!(
                !written.intact_seal_after(to, damaged),
                "verify passed damage at {from}..{to}"
            );
        }
        (report, Shape::Intact) => assert!(report.as_ref().is_some_and(|r| r.is_ok()), "{report:?}"),
        _ => {}
    }
    assert_eq!(snapshot(dir.path()), before, "reading and verifying change nothing");

    let opened = rt.block_on(AuditLog::open_file(dir.path(), signer(), options(0)));
    let log = match opened {
        Err(error) => {
            assert!(!error.to_string().is_empty());
            assert_eq!(snapshot(dir.path()), before, "a refused open changes nothing: {error}");
            assert!(
                !matches!(shape, Shape::Appended),
                "garbage after the end is a torn write and must be cut: {error}"
            );
            if let Shape::Cut(at) = shape {
                assert!(written.kept_at(at) < CHECKPOINTED, "a cut at {at} must open: {error}");
            }
            return None;
        }
        Ok(log) => log,
    };
    let kept = rt.block_on(async {
        let len = log.len().await.expect("len");
        let back = log.read(0..len).await.expect("read");
        let want: Vec<AuditRecord> = (0..len).map(record).collect();
        assert_eq!(back, want, "an opened log returns the original records ({shape:?})");
        len
    });
    assert!(
        kept >= CHECKPOINTED,
        "a checkpointed record was cut ({shape:?}, kept {kept})"
    );
    assert!(kept <= RECORDS);
    match shape {
        Shape::Cut(at) => assert_eq!(
            kept,
            written.kept_at(at),
            "a cut at {at} keeps every sealed batch before it"
        ),
        Shape::Appended | Shape::Intact => assert_eq!(kept, RECORDS, "appended garbage costs no record"),
        Shape::InPlace(from, to) => {
            assert!(
                kept >= written.kept_at(from),
                "records sealed before the damage at {from} were cut"
            );
            assert!(
                !written.intact_seal_after(to, damaged),
                "damage at {from}..{to} followed by an intact seal was cut back to {kept} records"
            );
        }
        Shape::Moved => {}
    }
    rt.block_on(async {
        assert_eq!(
            log.append(&record(100)).await.expect("append after recovery").index(),
            kept
        );
        log.close().await.expect("close");
        let report = verify_dir(dir.path(), &trusted(&[&signer()])).await;
        assert!(
            report.is_ok(),
            "the recovered log does not verify ({shape:?}): {:?}",
            report.failure
        );
    });
    Some(kept)
}

/// One damage to a segment.
#[derive(Debug, Clone)]
enum Damage {
    Flip { at: Index, len: usize, xor: u8 },
    Cut(Index),
    Append(Vec<u8>),
    Insert(Index, Vec<u8>),
    Delete(Index, usize),
}

fn damage() -> impl Strategy<Value = Damage> {
    prop_oneof![
        4 => (any::<Index>(), 1usize..24, 1u8..=255).prop_map(|(at, len, xor)| Damage::Flip { at, len, xor }),
        3 => any::<Index>().prop_map(Damage::Cut),
        2 => prop::collection::vec(any::<u8>(), 1..64).prop_map(Damage::Append),
        1 => (any::<Index>(), prop::collection::vec(any::<u8>(), 1..16)).prop_map(|(i, b)| Damage::Insert(i, b)),
        1 => (any::<Index>(), 1usize..32).prop_map(|(i, n)| Damage::Delete(i, n)),
    ]
}

fn apply(segment: &[u8], damage: &Damage) -> (Vec<u8>, Shape) {
    let mut bytes = segment.to_vec();
    let len = bytes.len();
    let shape = match damage {
        Damage::Flip { at, len: n, xor } => {
            let from = at.index(len);
            let to = (from + n).min(len);
            bytes[from..to].iter_mut().for_each(|b| *b ^= xor);
            Shape::InPlace(from, to)
        }
        Damage::Cut(at) => {
            let at = at.index(len);
            bytes.truncate(at);
            Shape::Cut(at)
        }
        Damage::Append(garbage) => {
            bytes.extend_from_slice(garbage);
            Shape::Appended
        }
        Damage::Insert(at, extra) => {
            let at = at.index(len);
            bytes.splice(at..at, extra.iter().copied());
            Shape::Moved
        }
        Damage::Delete(at, n) => {
            let at = at.index(len);
            bytes.drain(at..(at + n).min(len));
            Shape::Moved
        }
    };
    (bytes, shape)
}

#[test]
fn fuzz_recovery_replays_its_seed_corpus() {
    let base = committed();
    assert_eq!(check(&base, &base.segment.clone(), Shape::Intact, 0), Some(RECORDS));
    assert_eq!(
        check(&base, &base.segment.clone(), Shape::Intact, ZERO_TAIL),
        Some(RECORDS)
    );
    let mut seeds: Vec<PathBuf> = std::fs::read_dir(seed_dir())
        .expect("list seeds")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "seg"))
        .collect();
    seeds.sort();
    assert!(seeds.len() >= 10, "the recovery seed corpus is missing");
    for seed in seeds {
        let name = seed.file_stem().expect("name").to_string_lossy().into_owned();
        let bytes = std::fs::read(&seed).expect("read seed");
        let kept = check(&base, &bytes, Shape::Moved, 0);
        let want = name.strip_prefix("opens-").map(|rest| {
            rest.split('-')
                .next()
                .and_then(|n| n.parse::<u64>().ok())
                .expect("opens-<records>-…")
        });
        assert_eq!(kept, want, "seed {name}");
    }
}

proptest! {
    #[test]
    fn fuzz_recovery_damaged_fresh_log(
        first in damage(),
        second in proptest::option::weighted(0.2, damage()),
        zero_tail in prop_oneof![Just(0), Just(ZERO_TAIL)],
    ) {
        let written = fresh();
        let (bytes, shape) = apply(&written.segment, &first);
        match second {
            None => { check(written, &bytes, shape, zero_tail); }
            Some(second) => {
                let (bytes, _) = apply(&bytes, &second);
                check(written, &bytes, Shape::Moved, zero_tail);
            }
        }
    }
}
