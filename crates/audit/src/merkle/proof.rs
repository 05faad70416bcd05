//! Inclusion and consistency proofs: generation from a [`MerkleTree`]
//! (RFC 6962 §2.1.1–2.1.2, `PATH` and `PROOF`/`SUBPROOF`) and standalone
//! verification (RFC 9162 §2.1.3.2 and §2.1.4.2) that needs only hashes, so an
//! auditor can check a proof without the log.

use portcullis_core::merkle::InclusionError;
use serde::{Deserialize, Serialize};

use super::hash::{Hash, node_hash, split_point};
use super::tree::MerkleTree;

/// Proof that the leaf at `index` is in the tree of `size` leaves.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct InclusionProof {
    pub index: u64,
    pub size: u64,
    /// Sibling hashes from the leaf up to the root.
    #[serde(with = "hex_hashes")]
    pub path: Vec<Hash>,
}

/// Proof that the tree of `old_size` leaves is a prefix of the tree of
/// `new_size` leaves.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConsistencyProof {
    pub old_size: u64,
    pub new_size: u64,
    #[serde(with = "hex_hashes")]
    pub path: Vec<Hash>,
}

/// Why a proof did not verify, or could not be produced.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProofError {
    #[error("index {index} is outside a tree of {size} leaves; ask for an index below the size")]
    IndexOutOfRange { index: u64, size: u64 },
    #[error(
        "sizes {old_size} and {new_size} are out of order or beyond the log ({len} leaves); \
         ask for old <= new <= len"
    )]
    SizesOutOfRange { old_size: u64, new_size: u64, len: u64 },
    #[error("the proof has the wrong number of hashes for these sizes; it was built for another tree")]
    WrongLength,
    #[error("the proof does not lead to the expected root: the entry or the tree is not the one claimed")]
    RootMismatch,
}

impl MerkleTree {
    /// The RFC 6962 audit path for leaf `index` in the first `size` leaves.
    pub fn inclusion_proof(&self, index: u64, size: u64) -> Result<InclusionProof, ProofError> {
        if index >= size || size > self.len() {
            return Err(ProofError::IndexOutOfRange { index, size });
        }
        let mut path = Vec::new();
        self.path(index, 0, size, &mut path)?;
        Ok(InclusionProof { index, size, path })
    }

    /// The RFC 6962 consistency proof between the first `old_size` and the first
    /// `new_size` leaves. Empty when `old_size` is 0 or equals `new_size`.
    pub fn consistency_proof(&self, old_size: u64, new_size: u64) -> Result<ConsistencyProof, ProofError> {
        if old_size > new_size || new_size > self.len() {
            return Err(ProofError::SizesOutOfRange {
                old_size,
                new_size,
                len: self.len(),
            });
        }
        let mut path = Vec::new();
        if old_size > 0 && old_size < new_size {
            self.subproof(old_size, 0, new_size, true, &mut path)?;
        }
        Ok(ConsistencyProof {
            old_size,
            new_size,
            path,
        })
    }

    /// `PATH(m, D[lo:hi])`, appended leaf-first.
    fn path(&self, m: u64, lo: u64, hi: u64, out: &mut Vec<Hash>) -> Result<(), ProofError> {
        audit_path(m, lo, hi, &|a, b| self.subtree(a, b), out)
            .ok_or(ProofError::IndexOutOfRange { index: lo, size: hi })
    }

    /// `SUBPROOF(m, D[lo:hi], b)`.
    fn subproof(&self, m: u64, lo: u64, hi: u64, whole: bool, out: &mut Vec<Hash>) -> Result<(), ProofError> {
        let n = hi - lo;
        if m == n {
            if !whole {
                out.push(self.hash_of(lo, hi)?);
            }
            return Ok(());
        }
        let k = split_point(n);
        if m <= k {
            self.subproof(m, lo, lo + k, whole, out)?;
            out.push(self.hash_of(lo + k, hi)?);
        } else {
            self.subproof(m - k, lo + k, hi, false, out)?;
            out.push(self.hash_of(lo, lo + k)?);
        }
        Ok(())
    }

    fn hash_of(&self, lo: u64, hi: u64) -> Result<Hash, ProofError> {
        self.subtree(lo, hi)
            .ok_or(ProofError::IndexOutOfRange { index: lo, size: hi })
    }
}

/// RFC 6962 `PATH(m, D[lo:hi])`, appended leaf-first, with `subtree(a, b)` giving
/// `MTH(D[a:b])` (`None`: not available, and then no path). Shared by the whole tree's
/// proofs and a sealed batch's ([`super::batch::SealedBatch`]).
pub(crate) fn audit_path(
    m: u64,
    lo: u64,
    hi: u64,
    subtree: &impl Fn(u64, u64) -> Option<Hash>,
    out: &mut Vec<Hash>,
) -> Option<()> {
    let n = hi - lo;
    if n <= 1 {
        return Some(());
    }
    let k = split_point(n);
    if m < k {
        audit_path(m, lo, lo + k, subtree, out)?;
        out.push(subtree(lo + k, hi)?);
    } else {
        audit_path(m - k, lo + k, hi, subtree, out)?;
        out.push(subtree(lo, lo + k)?);
    }
    Some(())
}

/// Checks that `leaf` is at `index` in the tree of `size` leaves whose root is
/// `root` (RFC 9162 §2.1.3.2).
pub fn verify_inclusion(leaf: &Hash, index: u64, size: u64, path: &[Hash], root: &Hash) -> Result<(), ProofError> {
    let path: Vec<[u8; 32]> = path.iter().map(|h| h.0).collect();
    portcullis_core::merkle::verify_inclusion(&leaf.0, index, size, &path, &root.0).map_err(|e| match e {
        InclusionError::IndexOutOfRange { index, size } => ProofError::IndexOutOfRange { index, size },
        InclusionError::WrongLength => ProofError::WrongLength,
        InclusionError::RootMismatch => ProofError::RootMismatch,
    })
}

/// Checks that the tree of `old_size` leaves with root `old_root` is a prefix
/// of the tree of `new_size` leaves with root `new_root` (RFC 9162 §2.1.4.2).
/// Equal sizes need an empty proof and equal roots; an empty old tree is
/// consistent with every tree and needs an empty proof.
pub fn verify_consistency(
    old_size: u64,
    new_size: u64,
    old_root: &Hash,
    new_root: &Hash,
    path: &[Hash],
) -> Result<(), ProofError> {
    if old_size > new_size {
        return Err(ProofError::SizesOutOfRange {
            old_size,
            new_size,
            len: new_size,
        });
    }
    if old_size == new_size || old_size == 0 {
        if !path.is_empty() {
            return Err(ProofError::WrongLength);
        }
        return if old_size == new_size && old_root != new_root {
            Err(ProofError::RootMismatch)
        } else {
            Ok(())
        };
    }
    let Some((first, rest)) = path.split_first() else {
        return Err(ProofError::WrongLength);
    };
    // When the old tree is a perfect subtree its root is the implicit first node.
    let (seed, rest) = if old_size.is_power_of_two() {
        (old_root, path)
    } else {
        (first, rest)
    };
    let (mut f_n, mut s_n) = (old_size - 1, new_size - 1);
    while f_n & 1 == 1 {
        f_n >>= 1;
        s_n >>= 1;
    }
    let (mut fr, mut sr) = (*seed, *seed);
    for c in rest {
        if s_n == 0 {
            return Err(ProofError::WrongLength);
        }
        if f_n & 1 == 1 || f_n == s_n {
            fr = node_hash(c, &fr);
            sr = node_hash(c, &sr);
            while f_n & 1 == 0 && f_n != 0 {
                f_n >>= 1;
                s_n >>= 1;
            }
        } else {
            sr = node_hash(&sr, c);
        }
        f_n >>= 1;
        s_n >>= 1;
    }
    if s_n != 0 {
        return Err(ProofError::WrongLength);
    }
    if fr != *old_root || sr != *new_root {
        return Err(ProofError::RootMismatch);
    }
    Ok(())
}

/// Serde helper: a list of hashes as lowercase hex strings.
mod hex_hashes {
    use super::Hash;
    use serde::{Deserialize, Deserializer, Serializer, de::Error};

    pub(super) fn serialize<S: Serializer>(hashes: &[Hash], s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(hashes.iter().map(Hash::to_hex))
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<Hash>, D::Error> {
        Vec::<String>::deserialize(d)?
            .iter()
            .map(|h| Hash::from_hex(h).ok_or_else(|| D::Error::custom("expected 64 hex digits")))
            .collect()
    }
}
