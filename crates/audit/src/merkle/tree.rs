//! Tree state. [`Frontier`] is the O(log n) right edge that appenders and the
//! verifier carry to compute roots as records stream past; [`MerkleTree`] keeps
//! every complete subtree hash in memory so proofs cost O(log n) lookups.
//!
//! Both produce the RFC 6962 Merkle Tree Hash: for `n > 1` leaves,
//! `MTH(D[n]) = node(MTH(D[0:k]), MTH(D[k:n]))` with `k` the largest power of two
//! below `n`.

use super::hash::{Hash, node_hash, split_point};

/// The roots of the perfect subtrees that make up a tree of `size` leaves,
/// largest (leftmost) first: one per set bit of `size`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Frontier {
    size: u64,
    nodes: Vec<Hash>,
}

impl Frontier {
    /// The frontier of the empty tree.
    pub fn new() -> Self {
        Self::default()
    }

    /// Rebuilds a frontier from its size and its nodes (as stored by
    /// [`Frontier::nodes`]). Returns `None` when the node count does not match
    /// the size (one node per set bit).
    pub fn from_parts(size: u64, nodes: Vec<Hash>) -> Option<Self> {
        (nodes.len() == size.count_ones() as usize).then_some(Self { size, nodes })
    }

    /// Number of leaves appended so far.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// The perfect-subtree roots, largest first.
    pub fn nodes(&self) -> &[Hash] {
        &self.nodes
    }

    /// Appends one leaf hash, merging completed subtrees (amortised O(1)).
    pub fn push(&mut self, leaf: Hash) {
        let mut hash = leaf;
        let mut size = self.size;
        // Each trailing 1 bit of the old size is a perfect subtree of the same
        // height as the one being carried: merge them, like binary addition.
        while size & 1 == 1 {
            let Some(left) = self.nodes.pop() else { break };
            hash = node_hash(&left, &hash);
            size >>= 1;
        }
        self.nodes.push(hash);
        self.size += 1;
    }

    /// The RFC 6962 root of the tree so far.
    pub fn root(&self) -> Hash {
        let mut iter = self.nodes.iter().rev();
        let Some(last) = iter.next() else {
            return Hash::empty_root();
        };
        iter.fold(*last, |acc, left| node_hash(left, &acc))
    }
}

/// All complete subtree hashes of a tree, level by level (`levels[0]` are the
/// leaves). About 64 bytes of memory per leaf.
#[derive(Clone, Debug, Default)]
pub struct MerkleTree {
    levels: Vec<Vec<Hash>>,
}

impl MerkleTree {
    /// The empty tree.
    pub fn new() -> Self {
        Self::default()
    }

    /// Builds a tree from leaf hashes.
    pub fn from_leaves(leaves: impl IntoIterator<Item = Hash>) -> Self {
        let mut tree = Self::new();
        for leaf in leaves {
            tree.push(leaf);
        }
        tree
    }

    /// Number of leaves.
    pub fn len(&self) -> u64 {
        self.levels.first().map_or(0, |l| l.len() as u64)
    }

    /// True when the tree has no leaves.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The leaf hash at `index`, if present.
    pub fn leaf(&self, index: u64) -> Option<Hash> {
        self.levels.first()?.get(usize::try_from(index).ok()?).copied()
    }

    /// Appends one leaf hash and every subtree hash it completes.
    pub fn push(&mut self, leaf: Hash) {
        let mut carry = leaf;
        let mut level = 0;
        loop {
            if self.levels.len() == level {
                self.levels.push(Vec::new());
            }
            let row = &mut self.levels[level];
            row.push(carry);
            if row.len() % 2 == 1 {
                break;
            }
            carry = node_hash(&row[row.len() - 2], &row[row.len() - 1]);
            level += 1;
        }
    }

    /// The root of the first `size` leaves, or `None` if `size > len()`.
    pub fn root(&self, size: u64) -> Option<Hash> {
        if size == 0 {
            return Some(Hash::empty_root());
        }
        self.subtree(0, size)
    }

    /// `MTH(D[lo:hi])` for `lo < hi <= len()`. Ranges produced by the RFC 6962
    /// recursion are looked up directly when they are perfect and aligned.
    pub(crate) fn subtree(&self, lo: u64, hi: u64) -> Option<Hash> {
        if lo >= hi || hi > self.len() {
            return None;
        }
        let n = hi - lo;
        if n.is_power_of_two() && lo.is_multiple_of(n) {
            let level = n.trailing_zeros() as usize;
            let pos = usize::try_from(lo >> level).ok()?;
            if let Some(hash) = self.levels.get(level).and_then(|row| row.get(pos)) {
                return Some(*hash);
            }
        }
        if n == 1 {
            return None;
        }
        let k = split_point(n);
        Some(node_hash(&self.subtree(lo, lo + k)?, &self.subtree(lo + k, hi)?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::merkle::hash::leaf_hash;

    #[test]
    fn frontier_and_tree_agree_at_every_size() {
        let mut frontier = Frontier::new();
        let mut tree = MerkleTree::new();
        assert_eq!(frontier.root(), Hash::empty_root());
        for i in 0u32..70 {
            let leaf = leaf_hash(&i.to_le_bytes());
            frontier.push(leaf);
            tree.push(leaf);
            assert_eq!(Some(frontier.root()), tree.root(u64::from(i) + 1), "size {}", i + 1);
            assert_eq!(frontier.nodes().len(), frontier.size().count_ones() as usize);
        }
        let rebuilt = Frontier::from_parts(frontier.size(), frontier.nodes().to_vec());
        assert_eq!(rebuilt.as_ref(), Some(&frontier));
        assert!(Frontier::from_parts(3, vec![Hash::empty_root()]).is_none());
    }
}
