//! Crash recovery of the file store at open: find where the acknowledged log
//! ends, cut a torn tail back, rebuild the Merkle frontier.
//!
//! Recovery reads and judges the whole log first, and changes files only once
//! it has found nothing it must refuse: a refusal leaves every file as it was.
//!
//! Why a cut is safe, and when open refuses instead:
//! - In a sealed segment a batch is acknowledged only after its records *and
//!   its seal* are fsynced by one write, so records after the last intact seal
//!   were never acknowledged (a crash tore the write, or they were added
//!   later): they are cut back to the end of that seal. A torn write may leave
//!   holes anywhere in its own batch, so intact records after damage do not
//!   prove anything; an intact *seal* after damage does: the damage is inside
//!   an acknowledged batch, and open refuses.
//! - In a legacy segment (written before seals existed) the end of a batch is
//!   not marked, so damage followed by any intact frame makes open refuse;
//!   damage that runs to the end of the file is cut back.
//! - Only the last segment can be torn. Nothing covered by a periodic
//!   checkpoint is ever cut.
//! - The root of the records at every seal and at the last periodic
//!   checkpoint must equal the signed one (a root commits to every record
//!   before it): a record rewritten with a valid CRC makes open refuse, naming
//!   its batch, rather than sign over it. The signatures of the last seal and
//!   checkpoint are checked by the caller (`open_check`), which has the keys.
//! - Records that no seal or checkpoint covers (a legacy tail left by a
//!   version without seals that did not close cleanly) make open refuse.
//! - The end of a seal is the only place a cut may go to in a sealed segment,
//!   so a seal damaged at the very end of the log (indistinguishable from a
//!   torn one) costs its batch; the periodic checkpoints bound that.
//! - A segment ends at the first frame position where the rest of the file is
//!   zero bytes: the zero tail the writer prefills (`frame`). A torn write in
//!   the prefilled area (part of a batch, then zeros) is a torn end like any
//!   other. Non-zero bytes further than one write reaches
//!   ([`frame::TORN_REACH`]) past the last intact seal are not a torn write
//!   (the writer never wrote there): open refuses, naming the entry.
//! - A cut truncates the file at the end of the last intact seal, zero tail
//!   included; the writer prefills again before its next write.

use std::fs::OpenOptions;
use std::path::{Path, PathBuf};

use super::frame::{
    self, CHECKPOINT_MAGIC, Decoded, FRAME_OVERHEAD, HEADER_LEN, SEAL_FLAG, SEGMENT_MAGIC, SegmentKind,
};
use super::layout::{CHECKPOINT_FILE, io_error, list_segments, segment_path, sync_dir};
use crate::checkpoint::SignedCheckpoint;
use crate::error::{Defect, StoreError};
use crate::merkle::hash::{Hash, leaf_hash};
use crate::merkle::tree::Frontier;

/// The state of a file log after recovery.
pub(crate) struct Recovered {
    /// The last segment: its path, first index and valid length in bytes.
    pub active: (PathBuf, u64, u64),
    /// The last segment is a legacy one that holds records: the next batch
    /// starts a new, sealed segment (seals never go into legacy segments).
    pub rotate_before_writing: bool,
    pub frontier: Frontier,
    /// Number of checkpoints in the checkpoint file.
    pub checkpoints: u64,
    /// The last batch seal, if any (its root was checked against the records).
    pub last_seal: Option<SignedCheckpoint>,
}

/// A change recovery makes once the log has been judged acceptable.
enum Repair {
    /// (Re)creates a file holding only `header`: a new log, or a header torn
    /// while the file was being created, or an empty legacy segment upgraded.
    Header { path: PathBuf, header: [u8; HEADER_LEN] },
    /// Cuts a torn or never-acknowledged end back to `len` bytes.
    Truncate {
        path: PathBuf,
        len: u64,
        index: u64,
        why: &'static str,
    },
}

/// Recovers the log in `dir`, creating an empty one if there is none.
pub(crate) fn recover(dir: &Path) -> Result<Recovered, StoreError> {
    let mut repairs = Vec::new();
    let (checkpoints, last) = scan_checkpoints(dir, &mut repairs)?;
    let covered = last.as_ref().map_or(0, |c| c.checkpoint.size);
    let scanned = scan_segments(dir, covered, &mut repairs)?;
    if let Some(last) = &last {
        if scanned.frontier.size() < last.checkpoint.size {
            return Err(StoreError::MissingRecords {
                checkpoint_size: last.checkpoint.size,
                found: scanned.frontier.size(),
            });
        }
        if scanned.root_at_checkpoint != Some(last.checkpoint.root) {
            return Err(StoreError::CheckpointMismatch {
                size: last.checkpoint.size,
            });
        }
    }
    // Every record must be covered by a signature: a seal, or (records written
    // before seals existed) a periodic checkpoint. Sealed segments never keep
    // records after their last seal, so only a legacy tail can be uncovered.
    let signed = scanned.last_seal.as_ref().map_or(0, |s| s.checkpoint.size).max(covered);
    if scanned.frontier.size() > signed {
        return Err(StoreError::UnsealedLegacyTail {
            from: signed,
            to: scanned.frontier.size(),
        });
    }
    // Judged acceptable: now, and only now, change files.
    let created = repairs.iter().any(|r| matches!(r, Repair::Header { .. }));
    for repair in repairs {
        apply(repair)?;
    }
    if created {
        sync_dir(dir)?;
    }
    Ok(Recovered {
        rotate_before_writing: scanned.legacy_active && scanned.frontier.size() > scanned.active.1,
        active: scanned.active,
        frontier: scanned.frontier,
        checkpoints,
        last_seal: scanned.last_seal,
    })
}

/// What the scan of the segments found.
struct Scanned {
    frontier: Frontier,
    /// The root when the tree had exactly the last checkpoint's size.
    root_at_checkpoint: Option<Hash>,
    /// The last seal (its root matched the records).
    last_seal: Option<SignedCheckpoint>,
    active: (PathBuf, u64, u64),
    /// The last segment is a legacy one (after any header repair).
    legacy_active: bool,
}

/// Running state of the scan across segments.
struct Scan {
    covered: u64,
    frontier: Frontier,
    root_at_checkpoint: Option<Hash>,
    last_seal: Option<SignedCheckpoint>,
    seen_sealed: bool,
}

impl Scan {
    /// Notes the root when the tree reaches the last checkpoint's size.
    fn note_checkpoint(&mut self) {
        if self.covered == self.frontier.size() && self.root_at_checkpoint.is_none() {
            self.root_at_checkpoint = Some(self.frontier.root());
        }
    }
}

fn scan_segments(dir: &Path, covered: u64, repairs: &mut Vec<Repair>) -> Result<Scanned, StoreError> {
    let mut segments = list_segments(dir).map_err(io_error("listing", dir))?;
    if segments.is_empty() {
        let path = segment_path(dir, 0);
        repairs.push(Repair::Header {
            path: path.clone(),
            header: frame::sealed_segment_header(),
        });
        segments.push((0, path));
    }
    let mut scan = Scan {
        covered,
        frontier: Frontier::new(),
        root_at_checkpoint: None,
        last_seal: None,
        seen_sealed: false,
    };
    let mut active = (PathBuf::new(), 0, 0);
    let mut legacy_active = false;
    let count = segments.len();
    for (i, (first, path)) in segments.into_iter().enumerate() {
        let is_last = i + 1 == count;
        if first != scan.frontier.size() {
            return Err(StoreError::Damaged {
                path,
                index: scan.frontier.size(),
                problem: "a segment file is missing or misnamed (indexes do not continue)",
            });
        }
        let bytes = if repairs
            .iter()
            .any(|r| matches!(r, Repair::Header { path: p, .. } if *p == path))
        {
            Vec::new()
        } else {
            std::fs::read(&path).map_err(io_error("reading", &path))?
        };
        let kind = match frame::segment_kind(&bytes) {
            Some(SegmentKind::Legacy) if scan.seen_sealed => {
                return Err(StoreError::Damaged {
                    path,
                    index: first,
                    problem: "a legacy (unsealed) segment follows a sealed one; the log was modified",
                });
            }
            Some(kind) => kind,
            None if is_last && first >= covered && torn_header(&bytes) => {
                // Torn while the segment was being created (or a new log):
                // nothing in it was acknowledged.
                if !repairs
                    .iter()
                    .any(|r| matches!(r, Repair::Header { path: p, .. } if *p == path))
                {
                    repairs.push(Repair::Header {
                        path: path.clone(),
                        header: frame::sealed_segment_header(),
                    });
                }
                scan.note_checkpoint();
                active = (path, first, HEADER_LEN as u64);
                break;
            }
            None => {
                return Err(StoreError::Damaged {
                    path,
                    index: first,
                    problem: "bad segment header",
                });
            }
        };
        let end = match kind {
            SegmentKind::Sealed => {
                scan.seen_sealed = true;
                scan_sealed(&path, &bytes, is_last, &mut scan, repairs)?
            }
            SegmentKind::Legacy => scan_legacy(&path, &bytes, is_last, &mut scan, repairs)?,
        };
        legacy_active = kind == SegmentKind::Legacy;
        if is_last && legacy_active && scan.frontier.size() == first {
            // An empty legacy segment: it becomes a sealed one in place.
            repairs.push(Repair::Header {
                path: path.clone(),
                header: frame::sealed_segment_header(),
            });
            legacy_active = false;
        }
        active = (path, first, end);
    }
    scan.note_checkpoint();
    Ok(Scanned {
        frontier: scan.frontier,
        root_at_checkpoint: scan.root_at_checkpoint,
        last_seal: scan.last_seal,
        active,
        legacy_active,
    })
}

/// Scans a sealed segment; returns the length it keeps.
fn scan_sealed(
    path: &Path,
    bytes: &[u8],
    is_last: bool,
    scan: &mut Scan,
    repairs: &mut Vec<Repair>,
) -> Result<u64, StoreError> {
    // Where the last seal of this segment ends, and the tree there (the
    // segment's start until a seal is seen: a batch never spans segments).
    let mut sealed_at = (HEADER_LEN, scan.frontier.clone());
    let mut offset = HEADER_LEN;
    let damage = loop {
        scan.note_checkpoint();
        if offset == bytes.len() {
            break None;
        }
        let index = scan.frontier.size();
        match frame::decode_entry(&bytes[offset..], index) {
            Decoded::Frame { seq, payload, len } if frame::is_seal(seq) => {
                let seal = SignedCheckpoint::from_seal_bytes(payload).map_err(|problem| StoreError::Damaged {
                    path: path.to_owned(),
                    index,
                    problem,
                })?;
                if seal.checkpoint.size != index {
                    return Err(StoreError::Damaged {
                        path: path.to_owned(),
                        index,
                        problem: "a batch seal names another size than its place in the log",
                    });
                }
                // The seal's root commits to every record before it: a record
                // rewritten with its CRC fixed shows here, named by its batch.
                if seal.checkpoint.root != scan.frontier.root() {
                    return Err(StoreError::SealMismatch {
                        since: scan.last_seal.as_ref().map_or(0, |s| s.checkpoint.size),
                        size: index,
                    });
                }
                offset += len;
                sealed_at = (offset, scan.frontier.clone());
                scan.last_seal = Some(seal);
            }
            Decoded::Frame { payload, len, .. } => {
                scan.frontier.push(leaf_hash(payload));
                offset += len;
            }
            // The zero tail of a preallocated segment: the clean end.
            Decoded::Incomplete | Decoded::Corrupt(_) if frame::is_zero(&bytes[offset..]) => break None,
            Decoded::Incomplete => break Some((offset, index, Defect::Incomplete)),
            Decoded::Corrupt(defect) => break Some((offset, index, Defect::Frame(defect))),
        }
    };
    let (cut_offset, cut_tree) = sealed_at;
    match damage {
        None if offset == cut_offset => return Ok(offset as u64),
        None if !is_last => {
            return Err(StoreError::Damaged {
                path: path.to_owned(),
                index: cut_tree.size(),
                problem: "records after the last seal of a segment that is not the last; the log was modified",
            });
        }
        None => {}
        Some((offset, index, defect)) => {
            let next = intact_frame_after(bytes, offset, index, Want::Seal);
            if !is_last || next.is_some() {
                return Err(damaged_before_intact(path, index, offset, defect, next));
            }
            if let Some(data_end) = beyond_torn_reach(bytes, cut_offset) {
                return Err(StoreError::BeyondTornWrite {
                    path: path.to_owned(),
                    index,
                    offset: offset as u64,
                    sealed_end: cut_offset as u64,
                    data_end: data_end as u64,
                });
            }
            if cut_tree.size() < scan.covered {
                return Err(StoreError::DamagedSignedTail {
                    path: path.to_owned(),
                    index,
                    offset: offset as u64,
                    defect,
                    signed: scan.covered,
                });
            }
        }
    }
    if cut_tree.size() < scan.covered {
        return Err(StoreError::Damaged {
            path: path.to_owned(),
            index: cut_tree.size(),
            problem: "records covered by a signed checkpoint have no batch seal; the log was modified",
        });
    }
    repairs.push(Repair::Truncate {
        path: path.to_owned(),
        len: cut_offset as u64,
        index: cut_tree.size(),
        why: "records after the last batch seal were never acknowledged (a crash tore their write)",
    });
    scan.frontier = cut_tree;
    Ok(cut_offset as u64)
}

/// Scans a legacy segment (no seals); returns the length it keeps.
fn scan_legacy(
    path: &Path,
    bytes: &[u8],
    is_last: bool,
    scan: &mut Scan,
    repairs: &mut Vec<Repair>,
) -> Result<u64, StoreError> {
    let mut offset = HEADER_LEN;
    loop {
        scan.note_checkpoint();
        if offset == bytes.len() {
            return Ok(offset as u64);
        }
        let index = scan.frontier.size();
        let defect = match frame::decode(&bytes[offset..], index) {
            Decoded::Frame { payload, len, .. } => {
                scan.frontier.push(leaf_hash(payload));
                offset += len;
                continue;
            }
            Decoded::Corrupt(frame::FrameDefect::Sequence { found, .. }) if frame::is_seal(found) => {
                return Err(StoreError::Damaged {
                    path: path.to_owned(),
                    index,
                    problem: "a legacy segment holds a batch seal; its header was changed",
                });
            }
            Decoded::Incomplete | Decoded::Corrupt(_) if frame::is_zero(&bytes[offset..]) => {
                return Ok(offset as u64);
            }
            Decoded::Incomplete => Defect::Incomplete,
            Decoded::Corrupt(defect) => Defect::Frame(defect),
        };
        let next = intact_frame_after(bytes, offset, index, Want::Any);
        if !is_last || next.is_some() {
            return Err(damaged_before_intact(path, index, offset, defect, next));
        }
        if let Some(data_end) = beyond_torn_reach(bytes, offset) {
            return Err(StoreError::BeyondTornWrite {
                path: path.to_owned(),
                index,
                offset: offset as u64,
                sealed_end: offset as u64,
                data_end: data_end as u64,
            });
        }
        if index < scan.covered {
            return Err(StoreError::DamagedSignedTail {
                path: path.to_owned(),
                index,
                offset: offset as u64,
                defect,
                signed: scan.covered,
            });
        }
        repairs.push(Repair::Truncate {
            path: path.to_owned(),
            len: offset as u64,
            index,
            why: "a torn tail left by a crash",
        });
        return Ok(offset as u64);
    }
}

/// Damage with intact data after it: at `next` in the same file, or (when
/// `next` is `None`) in the segments that follow.
fn damaged_before_intact(path: &Path, index: u64, offset: usize, defect: Defect, next: Option<usize>) -> StoreError {
    match (next, defect) {
        (Some(next), defect) => StoreError::DamagedBeforeIntact {
            path: path.to_owned(),
            index,
            offset: offset as u64,
            defect,
            next_offset: next as u64,
        },
        (None, Defect::Frame(defect)) => StoreError::Corrupt {
            path: path.to_owned(),
            index,
            defect,
        },
        (None, _) => StoreError::Damaged {
            path: path.to_owned(),
            index,
            problem: "the entry is cut short, and later segments follow",
        },
    }
}

/// Where the non-zero bytes of `bytes` end, when that is further from
/// `from` (the end of the last intact seal, where a torn batch began) than a
/// torn write reaches: bytes the writer never wrote there.
pub(crate) fn beyond_torn_reach(bytes: &[u8], from: usize) -> Option<usize> {
    let written = frame::written_len(bytes);
    (written as u64 > from as u64 + frame::TORN_REACH).then_some(written)
}

/// What counts as intact data after damage.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Want {
    /// A batch seal (sealed segments: it proves the batch was acknowledged).
    Seal,
    /// Any frame (legacy segments and the checkpoint file).
    Any,
}

/// The offset of the first intact frame that starts after `damage` and could
/// belong there: its `seq` (the log index or checkpoint ordinal, or a seal's
/// size) is at least `next` and small enough for the bytes left, and its CRC
/// holds. A chance match needs a plausible `seq` and a 32-bit CRC at once.
/// No frame starts in a zero tail (an all-zero frame is never valid).
pub(crate) fn intact_frame_after(bytes: &[u8], damage: usize, next: u64, want: Want) -> Option<usize> {
    let written = frame::written_len(bytes);
    let mut at = damage + 1;
    while at < written && at + FRAME_OVERHEAD <= bytes.len() {
        let mut word = [0u8; 8];
        word.copy_from_slice(&bytes[at + 4..at + 12]);
        let seq = u64::from_le_bytes(word);
        let n = seq & !SEAL_FLAG;
        let room = ((bytes.len() - at) / FRAME_OVERHEAD) as u64 + 1;
        let kind_ok = match want {
            Want::Seal => frame::is_seal(seq),
            Want::Any => true,
        };
        if kind_ok
            && n >= next
            && n <= next.saturating_add(room)
            && matches!(frame::decode(&bytes[at..], seq), Decoded::Frame { .. })
        {
            return Some(at);
        }
        at += 1;
    }
    None
}

/// Reads the checkpoint file: returns the count and the last checkpoint, and
/// plans the repair of a torn end. Damage followed by an intact checkpoint
/// makes open refuse.
fn scan_checkpoints(dir: &Path, repairs: &mut Vec<Repair>) -> Result<(u64, Option<SignedCheckpoint>), StoreError> {
    let path = dir.join(CHECKPOINT_FILE);
    let bytes = match std::fs::read(&path) {
        Ok(bytes) => bytes,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
        Err(e) => return Err(io_error("reading", &path)(e)),
    };
    if !frame::header_ok(&bytes, CHECKPOINT_MAGIC) {
        if !torn_header(&bytes) {
            return Err(StoreError::Damaged {
                path,
                index: 0,
                problem: "bad checkpoint file header",
            });
        }
        repairs.push(Repair::Header {
            path,
            header: frame::header(CHECKPOINT_MAGIC),
        });
        return Ok((0, None));
    }
    let (mut offset, mut count, mut last) = (HEADER_LEN, 0u64, None);
    while offset < bytes.len() {
        let defect = match frame::decode(&bytes[offset..], count) {
            Decoded::Frame { payload, len, .. } => {
                let checkpoint = SignedCheckpoint::from_json(payload).map_err(|_| StoreError::Damaged {
                    path: path.clone(),
                    index: count,
                    problem: "checkpoint is not valid JSON",
                })?;
                last = Some(checkpoint);
                count += 1;
                offset += len;
                continue;
            }
            Decoded::Incomplete => Defect::Incomplete,
            Decoded::Corrupt(defect) => Defect::Frame(defect),
        };
        if let Some(next) = intact_frame_after(&bytes, offset, count, Want::Any) {
            return Err(StoreError::DamagedBeforeIntact {
                path,
                index: count,
                offset: offset as u64,
                defect,
                next_offset: next as u64,
            });
        }
        repairs.push(Repair::Truncate {
            path: path.clone(),
            len: offset as u64,
            index: count,
            why: "a torn checkpoint left by a crash",
        });
        break;
    }
    Ok((count, last))
}

fn apply(repair: Repair) -> Result<(), StoreError> {
    match repair {
        Repair::Header { path, header } => rewrite_header(&path, &header),
        Repair::Truncate { path, len, index, why } => {
            tracing::warn!(file = %path.display(), index, offset = len, "audit log: cutting back the end: {why}");
            truncate(&path, len)
        }
    }
}

/// A file shorter than a header whose bytes are a prefix of a header this
/// crate writes, or zeros: what a crash while creating the file leaves.
fn torn_header(bytes: &[u8]) -> bool {
    bytes.len() <= HEADER_LEN
        && (frame::sealed_segment_header().starts_with(bytes)
            || frame::header(SEGMENT_MAGIC).starts_with(bytes)
            || frame::header(CHECKPOINT_MAGIC).starts_with(bytes)
            || bytes.iter().all(|b| *b == 0))
}

pub(crate) fn create_with_header(path: &Path, header: &[u8; HEADER_LEN]) -> Result<(), StoreError> {
    use std::io::Write;
    let mut file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(path)
        .map_err(io_error("creating", path))?;
    file.write_all(header).map_err(io_error("writing", path))?;
    file.sync_all().map_err(io_error("syncing", path))
}

fn rewrite_header(path: &Path, header: &[u8; HEADER_LEN]) -> Result<(), StoreError> {
    use std::io::Write;
    let mut file = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .open(path)
        .map_err(io_error("creating", path))?;
    file.write_all(header).map_err(io_error("writing", path))?;
    file.sync_all().map_err(io_error("syncing", path))
}

fn truncate(path: &Path, len: u64) -> Result<(), StoreError> {
    let file = OpenOptions::new()
        .write(true)
        .open(path)
        .map_err(io_error("opening", path))?;
    file.set_len(len).map_err(io_error("truncating", path))?;
    file.sync_all().map_err(io_error("syncing", path))
}
