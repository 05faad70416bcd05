//! The narrow storage contract under the log, and its implementations.
//!
//! [`AuditStore`] is the write side the group-commit writer drives: append a
//! batch durably together with its seal (the signed tree head right after the
//! batch), append a periodic checkpoint. [`LogReader`] is the read side, the
//! same one an outside auditor uses, and the only thing the verifier depends on.
//! Tree math (frontier, roots, proofs) is shared code in [`crate::merkle`];
//! persistence is native to each store (Tessera: no premature shared storage
//! internals).

use std::future::Future;
use std::ops::Range;

use crate::checkpoint::{CheckpointSigner, SignedCheckpoint};
use crate::error::{ReadError, StoreError};
use crate::merkle::hash::Hash;
use crate::merkle::tree::Frontier;

#[cfg(any(test, feature = "fault-injection"))]
pub mod faulty;
pub mod file;
mod file_reader;
pub mod frame;
pub(crate) mod layout;
pub mod postgres;
mod recovery;

pub use file_reader::FileReader;

/// One entry to append: the exact record bytes and their RFC 6962 leaf hash
/// (computed by the appender, off the writer's critical path).
#[derive(Clone, Debug)]
pub struct Entry {
    /// Shared, not copied, with the appender's `DurableReceipt` (a batch receipt carries it).
    pub data: bytes::Bytes,
    pub leaf: Hash,
}

/// A tree size and its root.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TreeHead {
    pub size: u64,
    pub root: Hash,
}

/// What a store reports once a batch is durable.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Committed {
    /// Index given to the first entry of the batch; the rest follow in order.
    pub first_index: u64,
    /// The tree right after the batch (it may include other writers' entries
    /// before this batch in a shared store).
    pub head: TreeHead,
    /// The batch's seal: `head` signed, durable with the batch.
    pub seal: SignedCheckpoint,
    /// The tree right before the batch (its size is `first_index`): with the batch's
    /// leaves, what each record's path to the seal's root is computed from.
    pub before: Frontier,
}

/// Records read back with the seals of the batches that end among them.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SealedRecords {
    /// The exact stored bytes of the records, in order.
    pub records: Vec<Vec<u8>>,
    /// Seals whose size is in `start + 1 ..= end` of the range read, by size.
    pub seals: Vec<SignedCheckpoint>,
}

/// The write side of a store.
pub trait AuditStore: Send + 'static {
    /// Appends `entries` in order at consecutive indexes, and the batch's seal:
    /// the tree head right after the batch signed with `signer`.
    ///
    /// Implementations MUST NOT return `Ok` until every entry of the batch and
    /// the seal are durable, in one durable unit (one write and fsync on disk,
    /// one transaction in a database) so that no entry is ever durable and
    /// acknowledged without its seal, and MUST NOT make any entry readable at
    /// an index other than the one reported.
    fn append_batch(
        &mut self,
        entries: Vec<Entry>,
        signer: &CheckpointSigner,
    ) -> impl Future<Output = Result<Committed, StoreError>> + Send;

    /// Durably stores a periodic signed checkpoint. Called only with heads the
    /// store reported, so a checkpoint never covers an entry that is not durable.
    fn append_checkpoint(
        &mut self,
        checkpoint: SignedCheckpoint,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// The current tree head as the store sees it.
    fn head(&mut self) -> impl Future<Output = Result<TreeHead, StoreError>> + Send;
}

/// The read side of a log: what `verify` and auditors use.
pub trait LogReader: Sync {
    /// Number of entries readable now.
    fn len(&self) -> impl Future<Output = Result<u64, ReadError>> + Send;

    /// True when the log has no entries.
    fn is_empty(&self) -> impl Future<Output = Result<bool, ReadError>> + Send {
        async { Ok(self.len().await? == 0) }
    }

    /// The exact stored bytes of entries `range`, in order. A damaged or missing
    /// entry is reported as [`ReadError::Corrupt`] with its index.
    fn read(&self, range: Range<u64>) -> impl Future<Output = Result<Vec<Vec<u8>>, ReadError>> + Send;

    /// The records of `range` as [`LogReader::read`] returns them, and the
    /// seals of the batches that end inside it (size in `start + 1 ..= end`):
    /// what the verifier reads, so every seal is checked as the tree passes it.
    fn read_sealed(&self, range: Range<u64>) -> impl Future<Output = Result<SealedRecords, ReadError>> + Send;

    /// The seal with the largest size, if any (a seal larger than the log means
    /// sealed records were removed from its end).
    fn last_seal(&self) -> impl Future<Output = Result<Option<SignedCheckpoint>, ReadError>> + Send;

    /// Every stored periodic checkpoint, in the order written.
    fn checkpoints(&self) -> impl Future<Output = Result<Vec<SignedCheckpoint>, ReadError>> + Send;
}
