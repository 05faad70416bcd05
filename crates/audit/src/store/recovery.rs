//! Crash recovery of the file store at open: find where the acknowledged log
//! ends, cut a torn tail back, rebuild the Merkle frontier.
//!
//! Rules (why a cut is safe): a batch is acknowledged only after its bytes
//! are fsynced, and a checkpoint is written only after the records it covers
//! are fsynced. So a defect can be a torn write only if it lies in the *last*
//! segment and *after* the last checkpoint's size; there it is cut back (the
//! records were never acknowledged). A defect anywhere else means the
//! acknowledged log was damaged: open refuses with an error naming the index,
//! rather than silently discarding evidence or signing over a modified log.

use std::fs::OpenOptions;
use std::path::{Path, PathBuf};

use super::frame::{self, CHECKPOINT_MAGIC, Decoded, FRAME_OVERHEAD, HEADER_LEN, SEGMENT_MAGIC};
use super::layout::{CHECKPOINT_FILE, io_error, list_segments, segment_path, sync_dir};
use crate::checkpoint::SignedCheckpoint;
use crate::error::StoreError;
use crate::merkle::hash::leaf_hash;
use crate::merkle::tree::Frontier;

/// The state of a file log after recovery.
pub(crate) struct Recovered {
    /// The last segment: its path, first index and valid length in bytes.
    pub active: (PathBuf, u64, u64),
    pub frontier: Frontier,
    /// Number of checkpoints in the checkpoint file.
    pub checkpoints: u64,
}

/// Recovers the log in `dir`, creating an empty one if there is none.
pub(crate) fn recover(dir: &Path) -> Result<Recovered, StoreError> {
    let (checkpoints, last) = recover_checkpoints(dir)?;
    let mut segments = list_segments(dir).map_err(io_error("listing", dir))?;
    if segments.is_empty() {
        let path = segment_path(dir, 0);
        create_with_header(&path, SEGMENT_MAGIC)?;
        sync_dir(dir)?;
        segments.push((0, path));
    }
    let covered = last.as_ref().map_or(0, |c| c.checkpoint.size);
    let mut frontier = Frontier::new();
    let mut root_at_checkpoint = None;
    let mut active = (PathBuf::new(), 0, 0);
    let count = segments.len();
    for (i, (first, path)) in segments.into_iter().enumerate() {
        let is_last = i + 1 == count;
        if first != frontier.size() {
            return Err(StoreError::Damaged {
                path,
                index: frontier.size(),
                problem: "a segment file is missing or misnamed (indexes do not continue)",
            });
        }
        let bytes = std::fs::read(&path).map_err(io_error("reading", &path))?;
        if !frame::header_ok(&bytes, SEGMENT_MAGIC) {
            if is_last && first >= covered && torn_header(&bytes, SEGMENT_MAGIC) {
                // Torn while the segment was being created: nothing in it was acknowledged.
                rewrite_header(&path, SEGMENT_MAGIC)?;
                active = (path, first, HEADER_LEN as u64);
                break;
            }
            return Err(StoreError::Damaged {
                path,
                index: first,
                problem: "bad segment header",
            });
        }
        let mut offset = HEADER_LEN;
        loop {
            if covered == frontier.size() && root_at_checkpoint.is_none() {
                root_at_checkpoint = Some(frontier.root());
            }
            if offset == bytes.len() {
                break;
            }
            let index = frontier.size();
            match frame::decode(&bytes[offset..], index) {
                Decoded::Frame { payload, len, .. } => {
                    frontier.push(leaf_hash(payload));
                    offset += len;
                }
                defect if is_last && index >= covered => {
                    tracing::warn!(
                        segment = %path.display(), index, offset, discarded = bytes.len() - offset,
                        ?defect, "audit log: cutting back a torn tail left by a crash"
                    );
                    truncate(&path, offset as u64)?;
                    break;
                }
                Decoded::Corrupt(defect) => {
                    return Err(StoreError::Corrupt { path, index, defect });
                }
                Decoded::Incomplete => {
                    return Err(StoreError::Damaged {
                        path,
                        index,
                        problem: "the entry is cut short",
                    });
                }
            }
        }
        active = (path, first, offset as u64);
    }
    if covered == frontier.size() && root_at_checkpoint.is_none() {
        root_at_checkpoint = Some(frontier.root());
    }
    if let Some(last) = last {
        if frontier.size() < last.checkpoint.size {
            return Err(StoreError::MissingRecords {
                checkpoint_size: last.checkpoint.size,
                found: frontier.size(),
            });
        }
        if root_at_checkpoint != Some(last.checkpoint.root) {
            return Err(StoreError::CheckpointMismatch {
                size: last.checkpoint.size,
            });
        }
    }
    Ok(Recovered {
        active,
        frontier,
        checkpoints,
    })
}

/// Recovers the checkpoint file: returns the count and the last checkpoint.
/// Only a defective *final* frame can be a torn write.
fn recover_checkpoints(dir: &Path) -> Result<(u64, Option<SignedCheckpoint>), StoreError> {
    let path = dir.join(CHECKPOINT_FILE);
    let bytes = match std::fs::read(&path) {
        Ok(bytes) => bytes,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
        Err(e) => return Err(io_error("reading", &path)(e)),
    };
    if !frame::header_ok(&bytes, CHECKPOINT_MAGIC) {
        if !torn_header(&bytes, CHECKPOINT_MAGIC) {
            return Err(StoreError::Damaged {
                path,
                index: 0,
                problem: "bad checkpoint file header",
            });
        }
        rewrite_header(&path, CHECKPOINT_MAGIC)?;
        sync_dir(dir)?;
        return Ok((0, None));
    }
    let (mut offset, mut count, mut last) = (HEADER_LEN, 0u64, None);
    while offset < bytes.len() {
        let rest = &bytes[offset..];
        match frame::decode(rest, count) {
            Decoded::Frame { payload, len, .. } => {
                let checkpoint = SignedCheckpoint::from_json(payload).map_err(|_| StoreError::Damaged {
                    path: path.clone(),
                    index: count,
                    problem: "checkpoint is not valid JSON",
                })?;
                last = Some(checkpoint);
                count += 1;
                offset += len;
            }
            Decoded::Incomplete => break,
            Decoded::Corrupt(defect) => {
                let extent = frame::declared_len(rest).map_or(usize::MAX, |l| l + FRAME_OVERHEAD);
                if extent < rest.len() {
                    return Err(StoreError::Corrupt {
                        path,
                        index: count,
                        defect,
                    });
                }
                break;
            }
        }
    }
    if offset < bytes.len() {
        tracing::warn!(file = %path.display(), offset, "audit log: cutting back a torn checkpoint");
        truncate(&path, offset as u64)?;
    }
    Ok((count, last))
}

/// A file shorter than a header whose bytes are a prefix of the header or
/// zeros: what a crash while creating the file leaves behind.
fn torn_header(bytes: &[u8], magic: [u8; 8]) -> bool {
    bytes.len() <= HEADER_LEN && (frame::header(magic).starts_with(bytes) || bytes.iter().all(|b| *b == 0))
}

pub(crate) fn create_with_header(path: &Path, magic: [u8; 8]) -> Result<(), StoreError> {
    use std::io::Write;
    let mut file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(path)
        .map_err(io_error("creating", path))?;
    file.write_all(&frame::header(magic))
        .map_err(io_error("writing", path))?;
    file.sync_all().map_err(io_error("syncing", path))
}

fn rewrite_header(path: &Path, magic: [u8; 8]) -> Result<(), StoreError> {
    use std::io::Write;
    let mut file = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .open(path)
        .map_err(io_error("creating", path))?;
    file.write_all(&frame::header(magic))
        .map_err(io_error("writing", path))?;
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
