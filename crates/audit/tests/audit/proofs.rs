//! Property tests: proofs generated for random trees verify, and fail for the
//! wrong index, leaf or root; roots agree with a naive recursive definition.

use portcullis_audit::{Frontier, Hash, MerkleTree, leaf_hash, node_hash, verify_consistency, verify_inclusion};
use proptest::prelude::*;

/// RFC 6962 §2.1 MTH, written directly from the definition.
fn naive_root(leaves: &[Hash]) -> Hash {
    match leaves.len() {
        0 => Hash::empty_root(),
        1 => leaves[0],
        n => {
            let mut k = 1;
            while k * 2 < n {
                k *= 2;
            }
            node_hash(&naive_root(&leaves[..k]), &naive_root(&leaves[k..]))
        }
    }
}

fn leaves(n: u64) -> Vec<Hash> {
    (0..n).map(|i| leaf_hash(&i.to_be_bytes())).collect()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    #[test]
    fn roots_match_the_definition(n in 0u64..200) {
        let leaves = leaves(n);
        let tree = MerkleTree::from_leaves(leaves.clone());
        let mut frontier = Frontier::new();
        leaves.iter().for_each(|l| frontier.push(*l));
        prop_assert_eq!(tree.root(n), Some(naive_root(&leaves)));
        prop_assert_eq!(frontier.root(), naive_root(&leaves));
    }

    #[test]
    fn inclusion_proofs_verify(size in 1u64..300, pick in any::<u64>(), other in any::<u64>()) {
        let tree = MerkleTree::from_leaves(leaves(size));
        let index = pick % size;
        let root = tree.root(size).expect("root");
        let leaf = tree.leaf(index).expect("leaf");
        let proof = tree.inclusion_proof(index, size).expect("proof");
        prop_assert!(verify_inclusion(&leaf, index, size, &proof.path, &root).is_ok());
        let wrong = other % size;
        if wrong != index {
            prop_assert!(verify_inclusion(&leaf, wrong, size, &proof.path, &root).is_err());
        }
        prop_assert!(verify_inclusion(&leaf_hash(b"not in tree"), index, size, &proof.path, &root).is_err());
    }

    #[test]
    fn consistency_proofs_verify(new in 1u64..300, pick in any::<u64>()) {
        let tree = MerkleTree::from_leaves(leaves(new));
        let old = pick % (new + 1);
        let (r1, r2) = (tree.root(old).expect("old root"), tree.root(new).expect("new root"));
        let proof = tree.consistency_proof(old, new).expect("proof");
        prop_assert!(verify_consistency(old, new, &r1, &r2, &proof.path).is_ok());
        if old > 0 && old < new {
            // A tree whose old part differs is not consistent with this one.
            let mut forked = leaves(new);
            forked[(pick as usize) % old as usize] = leaf_hash(b"forked");
            let forked_root = naive_root(&forked[..old as usize]);
            prop_assert!(verify_consistency(old, new, &forked_root, &r2, &proof.path).is_err());
        }
    }
}
