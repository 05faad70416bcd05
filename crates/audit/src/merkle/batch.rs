//! A committed batch under its seal, and the inclusion path of each of its records to the
//! seal's root: what a batch receipt carries (issue 21 item 2).
//!
//! The writer makes every batch durable together with its seal — the signed tree head right
//! after the batch. A record's path to that root needs, besides the batch's own leaves, only
//! the roots of the perfect subtrees left of the batch, which the tree's frontier before the
//! batch holds (RFC 6962 `PATH` never asks for a smaller piece of the older tree when the
//! leaf is in the batch). So a [`SealedBatch`] keeps that frontier and the batch's leaves;
//! each appender computes its own path on demand, and subtree hashes computed once are
//! shared by the batch's appenders. One signature per batch then proves every record in it.
use std::collections::HashMap;
use std::sync::Mutex;

use super::hash::{Hash, node_hash, split_point};
use super::proof::audit_path;
use super::tree::Frontier;
use crate::checkpoint::SignedCheckpoint;

/// A batch as committed: the tree before it, its leaves, and its seal.
#[derive(Debug)]
pub struct SealedBatch {
    before: Frontier,
    leaves: Vec<Hash>,
    seal: SignedCheckpoint,
    /// Subtree hashes (`lo..hi` over the whole tree) computed so far for this batch's paths.
    memo: Mutex<HashMap<(u64, u64), Hash>>,
}

impl SealedBatch {
    /// `before` is the tree right before the batch, `leaves` the batch's leaf hashes in order,
    /// `seal` the signed head right after it (of `before.size() + leaves.len()` leaves).
    pub fn new(before: Frontier, leaves: Vec<Hash>, seal: SignedCheckpoint) -> Self {
        Self {
            before,
            leaves,
            seal,
            memo: Mutex::default(),
        }
    }

    /// The batch's seal: the signed tree head every path here leads to.
    pub fn seal(&self) -> &SignedCheckpoint {
        &self.seal
    }

    /// Index of the batch's first record.
    pub fn first_index(&self) -> u64 {
        self.before.size()
    }

    /// Tree size right after the batch.
    pub fn size(&self) -> u64 {
        self.before.size() + self.leaves.len() as u64
    }

    /// The RFC 6962 audit path of record `index` (one of this batch's) in the tree the seal
    /// signs, leaf first; `None` for an index outside the batch or a seal that does not sign
    /// the tree this batch ends.
    pub fn inclusion_path(&self, index: u64) -> Option<Vec<Hash>> {
        let size = self.size();
        if index < self.first_index() || index >= size || self.seal.checkpoint.size != size {
            return None;
        }
        let mut out = Vec::new();
        audit_path(index, 0, size, &|lo, hi| self.subtree(lo, hi), &mut out)?;
        Some(out)
    }

    /// `MTH(D[lo:hi])`: from the frontier for ranges before the batch, from the leaves for
    /// ranges in it, and combined for ranges across the boundary.
    fn subtree(&self, lo: u64, hi: u64) -> Option<Hash> {
        let old = self.before.size();
        if lo >= hi || hi > self.size() {
            return None;
        }
        if hi <= old {
            return self.before_range(lo, hi);
        }
        if hi - lo == 1 {
            return self.leaves.get(usize::try_from(lo - old).ok()?).copied();
        }
        if let Some(hash) = self.memo.lock().ok().and_then(|m| m.get(&(lo, hi)).copied()) {
            return Some(hash);
        }
        let k = split_point(hi - lo);
        let hash = node_hash(&self.subtree(lo, lo + k)?, &self.subtree(lo + k, hi)?);
        if let Ok(mut memo) = self.memo.lock() {
            memo.insert((lo, hi), hash);
        }
        Some(hash)
    }

    /// `MTH(D[lo:hi])` for a range before the batch: one frontier node, or a run of them
    /// combined as RFC 6962 splits the range; `None` for a piece no frontier node covers.
    fn before_range(&self, lo: u64, hi: u64) -> Option<Hash> {
        let old = self.before.size();
        let mut start = 0u64;
        for (bit, node) in (0..64u32).rev().filter(|b| old >> b & 1 == 1).zip(self.before.nodes()) {
            let end = start + (1u64 << bit);
            if (start, end) == (lo, hi) {
                return Some(*node);
            }
            start = end;
        }
        if hi - lo < 2 {
            return None;
        }
        let k = split_point(hi - lo);
        Some(node_hash(
            &self.before_range(lo, lo + k)?,
            &self.before_range(lo + k, hi)?,
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checkpoint::Checkpoint;
    use crate::merkle::hash::leaf_hash;
    use crate::merkle::proof::verify_inclusion;
    use crate::merkle::tree::MerkleTree;

    fn seal_of(size: u64, root: Hash) -> SignedCheckpoint {
        SignedCheckpoint {
            checkpoint: Checkpoint { size, root, time_ms: 0 },
            key_id: crate::KeyId::from_stored("test"),
            signature: [0; 64],
        }
    }

    #[test]
    fn every_record_of_every_batch_has_the_path_the_whole_tree_gives() {
        // Batches of every size from 1 to 19 after trees of every size from 0 to 70.
        for old in 0u64..70 {
            for len in 1u64..20 {
                let mut tree = MerkleTree::new();
                let mut before = Frontier::new();
                for i in 0..old {
                    let leaf = leaf_hash(&i.to_le_bytes());
                    tree.push(leaf);
                    before.push(leaf);
                }
                let leaves: Vec<Hash> = (old..old + len).map(|i| leaf_hash(&i.to_le_bytes())).collect();
                for leaf in &leaves {
                    tree.push(*leaf);
                }
                let size = old + len;
                let root = tree.root(size).unwrap();
                let batch = SealedBatch::new(before.clone(), leaves.clone(), seal_of(size, root));
                for index in old..size {
                    let path = batch.inclusion_path(index).unwrap();
                    assert_eq!(
                        path,
                        tree.inclusion_proof(index, size).unwrap().path,
                        "old {old} len {len} index {index}"
                    );
                    let leaf = leaves[(index - old) as usize];
                    verify_inclusion(&leaf, index, size, &path, &root).unwrap();
                }
                assert_eq!(batch.inclusion_path(size), None);
                if old > 0 {
                    assert_eq!(batch.inclusion_path(old - 1), None, "records before the batch");
                }
            }
        }
    }

    #[test]
    fn a_seal_of_another_size_gives_no_path() {
        let leaves = vec![leaf_hash(b"a"), leaf_hash(b"b")];
        let batch = SealedBatch::new(Frontier::new(), leaves, seal_of(3, Hash::empty_root()));
        assert_eq!(batch.inclusion_path(0), None);
    }
}
