//! What [`crate::AuditLog`] checks when it opens a log, before the writer
//! signs anything (docs/THREATS.md T24): every acknowledged record must be
//! covered by a batch seal (or, for a log written before seals existed, a
//! periodic checkpoint) whose signature verifies and whose root equals the
//! tree recomputed from the stored records. Anything else stops the open with
//! an error naming where the log stopped matching: the gateway never seals or
//! checkpoints over a modified log.
//!
//! The file store recomputes the tree during crash recovery (`store::recovery`
//! compares every seal's root and the last checkpoint's), so only the
//! signatures are checked here. The PostgreSQL store has no recovery step: the
//! whole table is read back once at open (the cost of one `audit verify`
//! without the signature checks of older seals).
//!
//! Only the *last* seal's and the last checkpoint's signatures are checked at
//! open: a root commits to every record before it, so an earlier seal whose
//! root matches the recomputed tree cannot hide a change. `portcullis audit
//! verify` checks every signature.

use crate::checkpoint::{SignatureError, SignedCheckpoint};
use crate::error::{AuditError, ReadError, StoreError};
use crate::keys::{KeyId, TrustedKeys};
use crate::merkle::hash::leaf_hash;
use crate::merkle::tree::Frontier;
use crate::store::{AuditStore, LogReader, TreeHead};

/// Records read per request when the tree is recomputed.
const CHUNK: u64 = 4096;

/// The keys a log accepts signatures from at open: its own, and the
/// configured others (earlier keys, other replicas).
pub(crate) struct OpenKeys<'a> {
    pub keys: &'a TrustedKeys,
    pub own: &'a KeyId,
}

impl OpenKeys<'_> {
    /// Checks `signed` (a seal or a checkpoint, named by `what`).
    fn check(&self, what: &'static str, signed: &SignedCheckpoint) -> Result<(), StoreError> {
        match signed.verify(self.keys) {
            Ok(()) => Ok(()),
            Err(SignatureError::UnknownKey(key_id)) => Err(StoreError::UntrustedSignature {
                what,
                size: signed.checkpoint.size,
                key_id,
                own: self.own.clone(),
            }),
            Err(SignatureError::Invalid(key_id)) => Err(StoreError::ForgedSignature {
                what,
                size: signed.checkpoint.size,
                key_id,
            }),
        }
    }
}

/// The newest periodic checkpoint (largest size), if any.
fn newest(checkpoints: Vec<SignedCheckpoint>) -> Option<SignedCheckpoint> {
    checkpoints.into_iter().max_by_key(|c| c.checkpoint.size)
}

/// File store: recovery has matched every seal's root and the last
/// checkpoint's against the records; check that they are really signed.
pub(crate) async fn check_file<R: LogReader>(
    reader: &R,
    last_seal: Option<&SignedCheckpoint>,
    keys: &OpenKeys<'_>,
) -> Result<(), AuditError> {
    if let Some(seal) = last_seal {
        keys.check("batch seal", seal)?;
    }
    if let Some(checkpoint) = newest(reader.checkpoints().await?) {
        keys.check("checkpoint", &checkpoint)?;
    }
    Ok(())
}

/// PostgreSQL store: recomputes the whole tree from the stored rows and
/// compares it with every seal, the newest checkpoint and the stored tree
/// state; checks the signatures of the last seal and the newest checkpoint.
pub(crate) async fn check_postgres<S: AuditStore, R: LogReader>(
    store: &mut S,
    reader: &R,
    keys: &OpenKeys<'_>,
) -> Result<(), AuditError> {
    let len = reader.len().await?;
    let checkpoint = newest(reader.checkpoints().await?);
    let covered = checkpoint.as_ref().map_or(0, |c| c.checkpoint.size);
    let last_seal = reader.last_seal().await?;
    match &last_seal {
        Some(seal) => {
            keys.check("batch seal", seal)?;
            let size = seal.checkpoint.size;
            if size > len {
                return Err(StoreError::MissingRecords {
                    checkpoint_size: size,
                    found: len,
                }
                .into());
            }
            if size < len {
                return Err(StoreError::UnsealedRecords { from: size, len }.into());
            }
        }
        None if len > covered => {
            return Err(StoreError::UnsealedLegacyTail { from: covered, to: len }.into());
        }
        None => {}
    }
    if let Some(checkpoint) = &checkpoint {
        keys.check("checkpoint", checkpoint)?;
        if covered > len {
            return Err(StoreError::MissingRecords {
                checkpoint_size: covered,
                found: len,
            }
            .into());
        }
    }
    let mut frontier = Frontier::new();
    let mut sealed_to = 0u64;
    while frontier.size() < len {
        let start = frontier.size();
        let chunk = match reader.read_sealed(start..(start + CHUNK).min(len)).await {
            Ok(chunk) => chunk,
            Err(ReadError::Corrupt { index, defect }) => {
                return Err(StoreError::DamagedEntry { index, defect }.into());
            }
            Err(e) => return Err(e.into()),
        };
        let mut seals = chunk.seals.iter().peekable();
        for data in &chunk.records {
            frontier.push(leaf_hash(data));
            let size = frontier.size();
            if size == covered
                && let Some(cp) = &checkpoint
                && frontier.root() != cp.checkpoint.root
            {
                return Err(StoreError::CheckpointMismatch { size }.into());
            }
            while let Some(seal) = seals.next_if(|s| s.checkpoint.size <= size) {
                if seal.checkpoint.size != size || seal.checkpoint.root != frontier.root() {
                    return Err(StoreError::SealMismatch {
                        since: sealed_to,
                        size: seal.checkpoint.size,
                    }
                    .into());
                }
                sealed_to = size;
            }
        }
    }
    let head = store.head().await?;
    let recomputed = TreeHead {
        size: frontier.size(),
        root: frontier.root(),
    };
    if head != recomputed {
        return Err(StoreError::State {
            problem: "the stored tree state does not match the stored records",
        }
        .into());
    }
    Ok(())
}
