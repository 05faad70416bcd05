//! RFC 6962 hashing: the 32-byte [`struct@Hash`] type and the domain-separated leaf and
//! node hashes every other part of the log (tree, proofs, checkpoints) builds on.
//!
//! `leaf = SHA-256(0x00 || data)` and `node = SHA-256(0x01 || left || right)`
//! (RFC 6962 §2.1, RFC 9162 §2.1.1). The distinct prefixes stop a leaf from
//! being passed off as an interior node (second-preimage attacks).

use std::fmt;

use sha2::{Digest, Sha256};

/// A SHA-256 output: a leaf hash, a subtree hash or a tree root.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Hash(pub [u8; 32]);

impl Hash {
    /// The root of the empty tree: SHA-256 of the empty string.
    pub fn empty_root() -> Self {
        Self(Sha256::digest([]).into())
    }

    /// Parses 64 hex digits.
    pub fn from_hex(text: &str) -> Option<Self> {
        let mut out = [0u8; 32];
        hex::decode_to_slice(text, &mut out).ok()?;
        Some(Self(out))
    }

    /// Lowercase hex, 64 characters.
    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }

    /// The raw 32 bytes.
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }
}

impl fmt::Display for Hash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_hex())
    }
}

impl fmt::Debug for Hash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Hash({})", self.to_hex())
    }
}

/// The RFC 6962 leaf hash of one log entry: `SHA-256(0x00 || data)`.
pub fn leaf_hash(data: &[u8]) -> Hash {
    Hash(portcullis_core::merkle::leaf_hash(data))
}

/// The RFC 6962 interior node hash: `SHA-256(0x01 || left || right)`.
pub fn node_hash(left: &Hash, right: &Hash) -> Hash {
    Hash(portcullis_core::merkle::node_hash(&left.0, &right.0))
}

/// The largest power of two strictly smaller than `n` (`n >= 2`): where RFC 6962
/// splits a range of `n` leaves into its left and right subtrees.
pub(crate) use portcullis_core::merkle::split_point;
