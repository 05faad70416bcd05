//! [`DurableReceipt`]: evidence that a record is durably in the log. Only this
//! crate constructs one, and only after the store has fsynced or committed
//! the record, so code that requires a receipt cannot release a result whose
//! audit record was not written (docs/STYLE.md invariant 5).
//!
//! It also carries what a *batch receipt* needs (issue 21 item 2): the exact record bytes
//! and the sealed batch the record was committed in, from which [`DurableReceipt::proof`]
//! gives the record's inclusion path to the batch seal's signed root.

use std::sync::Arc;

use crate::checkpoint::SignedCheckpoint;
use crate::merkle::batch::SealedBatch;
use crate::merkle::hash::Hash;

/// Proof of a durable append: the record's log index and RFC 6962 leaf hash.
/// Deliberately not `Clone`: one record, one release.
#[derive(Debug)]
#[must_use = "a DurableReceipt is the evidence needed to release a result"]
pub struct DurableReceipt {
    index: u64,
    leaf_hash: Hash,
    /// The exact record bytes (the leaf's data), shared with the batch written.
    record: bytes::Bytes,
    /// The batch the record was sealed in (`None` only for test receipts).
    batch: Option<Arc<SealedBatch>>,
}

impl PartialEq for DurableReceipt {
    fn eq(&self, other: &Self) -> bool {
        (self.index, self.leaf_hash) == (other.index, other.leaf_hash)
    }
}

impl Eq for DurableReceipt {}

/// A record's inclusion under its batch's seal: the path from its leaf to the root the seal
/// signs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SealProof<'a> {
    /// Sibling hashes from the leaf up (RFC 6962 `PATH`).
    pub path: Vec<Hash>,
    /// The signed tree head right after the record's batch.
    pub seal: &'a SignedCheckpoint,
}

impl DurableReceipt {
    pub(crate) fn new(index: u64, leaf_hash: Hash, record: bytes::Bytes, batch: Arc<SealedBatch>) -> Self {
        Self {
            index,
            leaf_hash,
            record,
            batch: Some(batch),
        }
    }

    /// The record's position in the log (0-based).
    pub fn index(&self) -> u64 {
        self.index
    }

    /// `SHA-256(0x00 || record bytes)`: what an inclusion proof proves.
    pub fn leaf_hash(&self) -> Hash {
        self.leaf_hash
    }

    /// The exact record bytes stored in the log.
    pub fn record(&self) -> &[u8] {
        &self.record
    }

    /// The record's path to its batch seal's root, with the seal; `None` for a test receipt.
    pub fn proof(&self) -> Option<SealProof<'_>> {
        let batch = self.batch.as_deref()?;
        Some(SealProof {
            path: batch.inclusion_path(self.index)?,
            seal: batch.seal(),
        })
    }

    /// A receipt for tests of code that consumes receipts. Behind the
    /// `test-util` feature, which the release binary never enables.
    #[cfg(feature = "test-util")]
    pub fn for_test(index: u64, leaf_hash: Hash) -> Self {
        Self {
            index,
            leaf_hash,
            record: bytes::Bytes::new(),
            batch: None,
        }
    }
}
