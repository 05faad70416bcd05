//! [`DurableReceipt`]: evidence that a record is durably in the log. Only this
//! crate constructs one, and only after the store has fsynced or committed
//! the record, so code that requires a receipt cannot release a result whose
//! audit record was not written (docs/STYLE.md invariant 5).

use crate::merkle::hash::Hash;

/// Proof of a durable append: the record's log index and RFC 6962 leaf hash.
/// Deliberately not `Clone`: one record, one release.
#[derive(Debug, PartialEq, Eq)]
#[must_use = "a DurableReceipt is the evidence needed to release a result"]
pub struct DurableReceipt {
    index: u64,
    leaf_hash: Hash,
}

impl DurableReceipt {
    pub(crate) fn new(index: u64, leaf_hash: Hash) -> Self {
        Self { index, leaf_hash }
    }

    /// The record's position in the log (0-based).
    pub fn index(&self) -> u64 {
        self.index
    }

    /// `SHA-256(0x00 || record bytes)`: what an inclusion proof proves.
    pub fn leaf_hash(&self) -> Hash {
        self.leaf_hash
    }

    /// A receipt for tests of code that consumes receipts. Behind the
    /// `test-util` feature, which the release binary never enables.
    #[cfg(feature = "test-util")]
    pub fn for_test(index: u64, leaf_hash: Hash) -> Self {
        Self::new(index, leaf_hash)
    }
}
