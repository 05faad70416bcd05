//! The RFC 6962 hashes of the audit log's Merkle tree, the check of an inclusion path, and
//! the text of a signed tree head: what a verifier of a batch receipt needs without the log.
//!
//! The audit log (`portcullis-audit`) builds its tree, proofs and checkpoints on these; a
//! host (`portcullis-attest`) checks a result's batch receipt with them — the record's leaf,
//! its path to the batch seal's root, and the seal's signed note — without depending on the
//! log's storage.
use sha2::{Digest, Sha256};

/// First line of every signed checkpoint note (batch seals and periodic checkpoints).
pub const CHECKPOINT_ORIGIN: &str = "portcullis-audit/v1";

/// The RFC 6962 leaf hash of one log entry: `SHA-256(0x00 || data)`.
pub fn leaf_hash(data: &[u8]) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update([0x00]);
    h.update(data);
    h.finalize().into()
}

/// The RFC 6962 interior node hash: `SHA-256(0x01 || left || right)`.
pub fn node_hash(left: &[u8; 32], right: &[u8; 32]) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update([0x01]);
    h.update(left);
    h.update(right);
    h.finalize().into()
}

/// The largest power of two strictly smaller than `n` (`n >= 2`): where RFC 6962 splits a
/// range of `n` leaves into its left and right subtrees.
pub fn split_point(n: u64) -> u64 {
    debug_assert!(n >= 2);
    1u64 << (63 - (n - 1).leading_zeros())
}

/// Why an inclusion path did not verify.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum InclusionError {
    #[error("index {index} is outside a tree of {size} leaves; ask for an index below the size")]
    IndexOutOfRange { index: u64, size: u64 },
    #[error("the proof has the wrong number of hashes for these sizes; it was built for another tree")]
    WrongLength,
    #[error("the proof does not lead to the expected root: the entry or the tree is not the one claimed")]
    RootMismatch,
}

/// Checks that `leaf` is at `index` in the tree of `size` leaves whose root is `root`
/// (RFC 9162 §2.1.3.2), with `path` the sibling hashes from the leaf up.
pub fn verify_inclusion(
    leaf: &[u8; 32],
    index: u64,
    size: u64,
    path: &[[u8; 32]],
    root: &[u8; 32],
) -> Result<(), InclusionError> {
    if index >= size {
        return Err(InclusionError::IndexOutOfRange { index, size });
    }
    let (mut f_n, mut s_n) = (index, size - 1);
    let mut r = *leaf;
    for p in path {
        if s_n == 0 {
            return Err(InclusionError::WrongLength);
        }
        if f_n & 1 == 1 || f_n == s_n {
            r = node_hash(p, &r);
            while f_n & 1 == 0 && f_n != 0 {
                f_n >>= 1;
                s_n >>= 1;
            }
        } else {
            r = node_hash(&r, p);
        }
        f_n >>= 1;
        s_n >>= 1;
    }
    if s_n != 0 {
        return Err(InclusionError::WrongLength);
    }
    if r != *root {
        return Err(InclusionError::RootMismatch);
    }
    Ok(())
}

/// The exact bytes a checkpoint's (or a batch seal's) Ed25519 signature covers: a small text
/// note in the spirit of the C2SP `tlog-checkpoint` format, every line newline-terminated —
/// the origin line, the tree size (decimal), the root (standard base64), `time <unix ms>`.
pub fn checkpoint_note(size: u64, root: &[u8; 32], time_ms: u64) -> Vec<u8> {
    use base64::Engine;
    let root = base64::engine::general_purpose::STANDARD.encode(root);
    format!("{CHECKPOINT_ORIGIN}\n{size}\n{root}\ntime {time_ms}\n").into_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn split_point_is_largest_power_of_two_below() {
        for (n, k) in [(2, 1), (3, 2), (4, 2), (5, 4), (8, 4), (9, 8), (1 << 40, 1 << 39)] {
            assert_eq!(split_point(n), k, "n = {n}");
        }
    }

    #[test]
    fn a_two_leaf_tree_proves_each_leaf_by_the_other() {
        let (a, b) = (leaf_hash(b"a"), leaf_hash(b"b"));
        let root = node_hash(&a, &b);
        assert_eq!(verify_inclusion(&a, 0, 2, &[b], &root), Ok(()));
        assert_eq!(verify_inclusion(&b, 1, 2, &[a], &root), Ok(()));
        assert_eq!(
            verify_inclusion(&a, 1, 2, &[b], &root),
            Err(InclusionError::RootMismatch)
        );
        assert_eq!(verify_inclusion(&a, 0, 2, &[], &root), Err(InclusionError::WrongLength));
        assert_eq!(
            verify_inclusion(&a, 2, 2, &[b], &root),
            Err(InclusionError::IndexOutOfRange { index: 2, size: 2 })
        );
    }

    #[test]
    fn the_note_is_four_newline_terminated_lines() {
        let note = checkpoint_note(3, &[0u8; 32], 1700);
        assert_eq!(
            String::from_utf8(note).unwrap(),
            "portcullis-audit/v1\n3\nAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\ntime 1700\n"
        );
    }
}
