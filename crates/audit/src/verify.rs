//! The verifier (our `fsck`): re-derives everything from what a [`LogReader`]
//! returns — the same read path an outside auditor has — and reports the
//! first place where the log stops matching its signed checkpoints.
//!
//! Order of checks: every checkpoint signature against the trusted keys (by
//! key id); two checkpoints of the same size with different roots (a fork);
//! then the records in index order, recomputing each leaf and the tree, and
//! at each checkpoint size and each batch seal (the signed tree head the
//! writer stores with every batch, docs/THREATS.md T24) comparing the
//! recomputed root with the signed one and checking the seal's signature. A
//! changed record is named by its batch: the records since the previous seal.
//! Every record must be covered by a signature: records after both the last
//! seal and the last checkpoint fail ([`VerifyFailure::Unsigned`]; a log
//! written before seals existed is covered by its checkpoints alone), and so
//! does a seal beyond the last record.
//! A checkpoint larger than the log means it was truncated. Consecutive
//! checkpoints are consistent exactly when both match the one recomputed
//! tree, so a mismatch names the range between the last matching checkpoint
//! and the first mismatching one. A damaged or undecodable record is named by
//! its own index.

use std::collections::BTreeMap;

use crate::checkpoint::{SignatureError, SignedCheckpoint};
use crate::error::{AuditError, Defect, ReadError};
use crate::keys::{KeyId, TrustedKeys};
use crate::merkle::hash::{Hash, leaf_hash};
use crate::merkle::tree::Frontier;
use crate::record::AuditRecord;
use crate::store::LogReader;

/// Records read per request to the store.
const CHUNK: u64 = 4096;

/// Progress of a verification, reported after every chunk.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Progress {
    pub records_done: u64,
    pub records_total: u64,
}

/// The outcome of [`verify`].
#[derive(Debug)]
pub struct VerifyReport {
    /// Records read and hashed (all of them when the log verifies).
    pub records: u64,
    /// Checkpoints whose signature and root were checked.
    pub checkpoints: usize,
    /// Batch seals whose signature and root were checked.
    pub seals: u64,
    /// Root recomputed over `records`.
    pub root: Hash,
    /// The largest checkpoint, if any.
    pub latest_checkpoint: Option<SignedCheckpoint>,
    /// Records no signature covers: after the latest checkpoint and the last
    /// batch seal (nonzero only with a failure).
    pub unsigned_tail: u64,
    /// The first problem found; `None` means the log verifies.
    pub failure: Option<VerifyFailure>,
}

impl VerifyReport {
    pub fn is_ok(&self) -> bool {
        self.failure.is_none()
    }
}

/// The first problem found, with where it is.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VerifyFailure {
    #[error("record {index} is damaged: {defect}")]
    DamagedRecord { index: u64, defect: Defect },
    #[error("record {index} is not a valid audit record: {problem}")]
    UndecodableRecord { index: u64, problem: String },
    #[error("checkpoint #{position} (size {size}): {problem}")]
    BadSignature {
        position: usize,
        size: u64,
        problem: SignatureError,
    },
    #[error("checkpoint #{position} is unreadable: {problem}")]
    UnreadableCheckpoint { position: u64, problem: String },
    #[error(
        "forked history: checkpoints #{first} and #{second} both cover {size} records \
         but sign different roots ({first_root} vs {second_root})"
    )]
    Fork {
        size: u64,
        first: usize,
        second: usize,
        first_root: Hash,
        second_root: Hash,
    },
    #[error(
        "log truncated: checkpoint #{position} covers {size} records but only {len} are \
         stored; records from {len} on are missing"
    )]
    Truncated { position: usize, size: u64, len: u64 },
    #[error(
        "records {since}..{size} do not match the seal of their batch (tree size {size}, signed \
         by `{key_id}`): recomputed root {recomputed}, sealed root {signed}; a record in that \
         range was modified, reordered, inserted or removed after it was acknowledged"
    )]
    SealMismatch {
        since: u64,
        size: u64,
        key_id: KeyId,
        recomputed: Hash,
        signed: Hash,
    },
    #[error("the seal of records {since}..{size}: {problem}")]
    BadSeal {
        since: u64,
        size: u64,
        problem: SignatureError,
    },
    #[error(
        "records {from}..{len} are covered by no signature (no batch seal follows them and no \
         checkpoint covers them); this version stores every batch with its seal, so they were \
         inserted or their seals removed, unless a version without seals wrote them and was not \
         stopped cleanly (start it once and stop it cleanly: its final checkpoint signs them)"
    )]
    Unsigned { from: u64, len: u64 },
    #[error(
        "log truncated: a batch seal covers {size} records but only {len} are stored; records \
         from {len} on are missing"
    )]
    SealBeyondLog { size: u64, len: u64 },
    #[error(
        "records {since}..{size} do not match checkpoint #{position} signed by `{key_id}`: \
         recomputed root {recomputed}, signed root {signed}; a record in that range was \
         modified, reordered, inserted or removed, or the history forked after record {since}"
    )]
    RootMismatch {
        position: usize,
        since: u64,
        size: u64,
        key_id: KeyId,
        recomputed: Hash,
        signed: Hash,
    },
}

impl VerifyFailure {
    /// The first log index known to be bad (the start of the suspect range for
    /// a root mismatch); `None` for problems with checkpoints alone.
    pub fn first_bad_index(&self) -> Option<u64> {
        match self {
            Self::DamagedRecord { index, .. } | Self::UndecodableRecord { index, .. } => Some(*index),
            Self::Truncated { len, .. } | Self::SealBeyondLog { len, .. } => Some(*len),
            Self::RootMismatch { since, .. } | Self::SealMismatch { since, .. } | Self::BadSeal { since, .. } => {
                Some(*since)
            }
            Self::Unsigned { from, .. } => Some(*from),
            Self::BadSignature { .. } | Self::UnreadableCheckpoint { .. } | Self::Fork { .. } => None,
        }
    }
}

/// Verifies the whole log behind `reader` against `keys`. `Err` means the log
/// could not be read at all (I/O, connection); evidence of tampering is in
/// [`VerifyReport::failure`].
pub async fn verify<R: LogReader>(
    reader: &R,
    keys: &TrustedKeys,
    progress: &mut (dyn FnMut(Progress) + Send),
) -> Result<VerifyReport, AuditError> {
    let mut report = VerifyReport {
        records: 0,
        checkpoints: 0,
        seals: 0,
        root: Hash::empty_root(),
        latest_checkpoint: None,
        unsigned_tail: 0,
        failure: None,
    };
    let checkpoints = match reader.checkpoints().await {
        Ok(c) => c,
        Err(ReadError::BadCheckpoint { position, problem }) => {
            report.failure = Some(VerifyFailure::UnreadableCheckpoint { position, problem });
            return Ok(report);
        }
        Err(e) => return Err(e.into()),
    };
    // Checkpoints sorted by size; the stored position is kept for messages.
    let mut by_size: Vec<(usize, &SignedCheckpoint)> = checkpoints.iter().enumerate().collect();
    by_size.sort_by_key(|(pos, c)| (c.checkpoint.size, *pos));
    report.failure = check_checkpoints(&by_size, keys);
    report.latest_checkpoint = by_size.last().map(|(_, c)| (*c).clone());
    if report.failure.is_some() {
        return Ok(report);
    }
    let len = match reader.len().await {
        Ok(len) => len,
        Err(ReadError::Corrupt { index, defect }) => {
            report.failure = Some(VerifyFailure::DamagedRecord { index, defect });
            return Ok(report);
        }
        Err(e) => return Err(e.into()),
    };
    let last_seal = match reader.last_seal().await {
        Ok(seal) => seal.map(|s| s.checkpoint.size),
        Err(ReadError::Corrupt { index, defect }) => {
            report.failure = Some(VerifyFailure::DamagedRecord { index, defect });
            return Ok(report);
        }
        Err(e) => return Err(e.into()),
    };
    let mut sealed_to = 0u64;
    let mut frontier = Frontier::new();
    let mut pending = by_size.iter().peekable();
    let mut last_good = 0u64;
    loop {
        // Compare every checkpoint that covers exactly the records read so far.
        while let Some((pos, cp)) = pending.next_if(|(_, c)| c.checkpoint.size == frontier.size()) {
            let recomputed = frontier.root();
            if recomputed != cp.checkpoint.root {
                report.failure = Some(VerifyFailure::RootMismatch {
                    position: *pos,
                    since: last_good,
                    size: cp.checkpoint.size,
                    key_id: cp.key_id.clone(),
                    recomputed,
                    signed: cp.checkpoint.root,
                });
                return Ok(finish(report, &frontier, sealed_to));
            }
            report.checkpoints += 1;
            last_good = cp.checkpoint.size;
        }
        if frontier.size() == len {
            break;
        }
        let end = pending
            .peek()
            .map_or(len, |(_, c)| c.checkpoint.size.min(len))
            .min(frontier.size() + CHUNK);
        let end = end.max(frontier.size() + 1).min(len);
        let chunk = match reader.read_sealed(frontier.size()..end).await {
            Ok(r) => r,
            Err(ReadError::Corrupt { index, defect }) => {
                report.failure = Some(VerifyFailure::DamagedRecord { index, defect });
                return Ok(finish(report, &frontier, sealed_to));
            }
            Err(e) => return Err(e.into()),
        };
        let mut seals = chunk.seals.iter().peekable();
        for data in &chunk.records {
            let index = frontier.size();
            if let Err(e) = AuditRecord::from_bytes(data) {
                report.failure = Some(VerifyFailure::UndecodableRecord {
                    index,
                    problem: e.to_string(),
                });
                return Ok(finish(report, &frontier, sealed_to));
            }
            frontier.push(leaf_hash(data));
            while let Some(seal) = seals.next_if(|s| s.checkpoint.size <= frontier.size()) {
                report.failure = check_seal(seal, sealed_to, &frontier, keys);
                if report.failure.is_some() {
                    return Ok(finish(report, &frontier, sealed_to));
                }
                report.seals += 1;
                sealed_to = frontier.size();
            }
        }
        progress(Progress {
            records_done: frontier.size(),
            records_total: len,
        });
    }
    if let Some((pos, cp)) = pending.next() {
        report.failure = Some(VerifyFailure::Truncated {
            position: *pos,
            size: cp.checkpoint.size,
            len,
        });
    } else if let Some(size) = last_seal.filter(|size| *size > len) {
        report.failure = Some(VerifyFailure::SealBeyondLog { size, len });
    } else if sealed_to.max(last_good) < len {
        report.failure = Some(VerifyFailure::Unsigned {
            from: sealed_to.max(last_good),
            len,
        });
    }
    Ok(finish(report, &frontier, sealed_to))
}

fn finish(mut report: VerifyReport, frontier: &Frontier, sealed_to: u64) -> VerifyReport {
    report.records = frontier.size();
    report.root = frontier.root();
    let signed = report.latest_checkpoint.as_ref().map_or(0, |c| c.checkpoint.size);
    report.unsigned_tail = frontier.size().saturating_sub(signed.max(sealed_to));
    report
}

/// A batch seal met when the tree has grown to `frontier` (records since
/// `since` are its batch): its size, root and signature.
fn check_seal(seal: &SignedCheckpoint, since: u64, frontier: &Frontier, keys: &TrustedKeys) -> Option<VerifyFailure> {
    let size = frontier.size();
    let recomputed = frontier.root();
    if seal.checkpoint.size != size || seal.checkpoint.root != recomputed {
        return Some(VerifyFailure::SealMismatch {
            since,
            size: seal.checkpoint.size,
            key_id: seal.key_id.clone(),
            recomputed,
            signed: seal.checkpoint.root,
        });
    }
    seal.verify(keys)
        .err()
        .map(|problem| VerifyFailure::BadSeal { since, size, problem })
}

/// Signatures first, then forks (same size, different roots).
fn check_checkpoints(by_size: &[(usize, &SignedCheckpoint)], keys: &TrustedKeys) -> Option<VerifyFailure> {
    let mut invalid: Vec<VerifyFailure> = by_size
        .iter()
        .filter_map(|(pos, cp)| {
            cp.verify(keys).err().map(|problem| VerifyFailure::BadSignature {
                position: *pos,
                size: cp.checkpoint.size,
                problem,
            })
        })
        .collect();
    invalid.sort_by_key(|f| match f {
        VerifyFailure::BadSignature { position, .. } => *position,
        _ => usize::MAX,
    });
    if let Some(first) = invalid.into_iter().next() {
        return Some(first);
    }
    let mut seen: BTreeMap<u64, (usize, Hash)> = BTreeMap::new();
    for (pos, cp) in by_size {
        let size = cp.checkpoint.size;
        match seen.get(&size) {
            Some((first, root)) if *root != cp.checkpoint.root => {
                return Some(VerifyFailure::Fork {
                    size,
                    first: *first,
                    second: *pos,
                    first_root: *root,
                    second_root: cp.checkpoint.root,
                });
            }
            Some(_) => {}
            None => {
                seen.insert(size, (*pos, cp.checkpoint.root));
            }
        }
    }
    None
}
