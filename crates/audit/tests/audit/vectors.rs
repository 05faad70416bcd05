//! RFC 6962 known-answer tests: leaf and node hashing, roots per size and
//! inclusion/consistency proofs for the 8-leaf reference tree of
//! certificate-transparency / Trillian, as published in transparency-dev/merkle
//! `proof/verify_test.go` (see testdata/rfc6962_vectors.json for the citation).

use portcullis_audit::{
    Frontier, Hash, MerkleTree, ProofError, leaf_hash, node_hash, verify_consistency, verify_inclusion,
};
use serde::Deserialize;

#[derive(Deserialize)]
struct Vectors {
    leaves: Vec<String>,
    roots: Vec<String>,
    inclusion: Vec<Inclusion>,
    consistency: Vec<Consistency>,
}

#[derive(Deserialize)]
struct Inclusion {
    index: u64,
    size: u64,
    path: Vec<String>,
}

#[derive(Deserialize)]
struct Consistency {
    old: u64,
    new: u64,
    path: Vec<String>,
}

fn vectors() -> Vectors {
    let text = include_str!("../../testdata/rfc6962_vectors.json");
    serde_json::from_str(text).expect("vectors parse")
}

fn h(text: &str) -> Hash {
    Hash::from_hex(text).expect("64 hex digits")
}

fn hashes(list: &[String]) -> Vec<Hash> {
    list.iter().map(|s| h(s)).collect()
}

fn reference_tree() -> (MerkleTree, Vec<Hash>) {
    let leaves: Vec<Hash> = vectors()
        .leaves
        .iter()
        .map(|l| leaf_hash(&hex::decode(l).expect("hex leaf")))
        .collect();
    (MerkleTree::from_leaves(leaves.clone()), leaves)
}

#[test]
fn rfc6962_leaf_and_node_hashes() {
    let v = vectors();
    // The empty tree is SHA-256(""); a one-leaf tree's root is the leaf hash of "".
    assert_eq!(Hash::empty_root(), h(&v.roots[0]));
    assert_eq!(leaf_hash(b""), h(&v.roots[1]));
    // Two leaves: node(leaf(""), leaf(0x00)).
    assert_eq!(node_hash(&leaf_hash(b""), &leaf_hash(&[0x00])), h(&v.roots[2]));
    assert_ne!(
        leaf_hash(b""),
        Hash::empty_root(),
        "leaf hashing must be domain-separated"
    );
}

#[test]
fn rfc6962_roots_for_every_size() {
    let v = vectors();
    let (tree, leaves) = reference_tree();
    let mut frontier = Frontier::new();
    assert_eq!(frontier.root(), h(&v.roots[0]));
    for (n, leaf) in leaves.iter().enumerate() {
        frontier.push(*leaf);
        assert_eq!(frontier.root(), h(&v.roots[n + 1]), "frontier root at size {}", n + 1);
        assert_eq!(
            tree.root(n as u64 + 1),
            Some(h(&v.roots[n + 1])),
            "tree root at size {}",
            n + 1
        );
    }
    assert_eq!(
        tree.root(8).map(|r| r.to_hex()).as_deref(),
        Some("5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328")
    );
}

#[test]
fn rfc6962_inclusion_proofs() {
    let v = vectors();
    let (tree, leaves) = reference_tree();
    for case in &v.inclusion {
        let want = hashes(&case.path);
        let proof = tree.inclusion_proof(case.index, case.size).expect("proof");
        assert_eq!(proof.path, want, "path for index {} size {}", case.index, case.size);
        let root = h(&v.roots[case.size as usize]);
        let leaf = leaves[case.index as usize];
        verify_inclusion(&leaf, case.index, case.size, &want, &root).expect("known proof verifies");
        // Corruptions from the reference test suite must all fail.
        let mut probes: Vec<(u64, u64, Hash, Vec<Hash>, Hash)> = vec![
            (case.index + 1, case.size, leaf, want.clone(), root),
            (case.index, case.size * 2, leaf, want.clone(), root),
            (case.index, case.size, leaf_hash(b"WrongLeaf"), want.clone(), root),
            (case.index, case.size, leaf, want.clone(), Hash::empty_root()),
            (case.index, case.size, leaf, [want.clone(), vec![root]].concat(), root),
            (case.index, case.size, leaf, [vec![root], want.clone()].concat(), root),
        ];
        if case.index > 0 {
            probes.push((case.index - 1, case.size, leaf, want.clone(), root));
        }
        for i in 0..want.len() {
            let mut bad = want.clone();
            bad[i].0[0] ^= 8;
            probes.push((case.index, case.size, leaf, bad, root));
        }
        if !want.is_empty() {
            probes.push((case.index, case.size, leaf, want[..want.len() - 1].to_vec(), root));
        }
        for (index, size, leaf, path, root) in probes {
            assert!(
                verify_inclusion(&leaf, index, size, &path, &root).is_err(),
                "corrupted probe verified: index {index} size {size} path len {}",
                path.len()
            );
        }
    }
}

#[test]
fn rfc6962_consistency_proofs() {
    let v = vectors();
    let (tree, _) = reference_tree();
    for case in &v.consistency {
        let want = hashes(&case.path);
        let proof = tree.consistency_proof(case.old, case.new).expect("proof");
        assert_eq!(proof.path, want, "path for {} -> {}", case.old, case.new);
        let (r1, r2) = (h(&v.roots[case.old as usize]), h(&v.roots[case.new as usize]));
        verify_consistency(case.old, case.new, &r1, &r2, &want).expect("known proof verifies");
        if want.is_empty() {
            continue;
        }
        let mut probes = vec![
            (case.old - 1, case.new, r1, r2, want.clone()),
            (case.old + 1, case.new, r1, r2, want.clone()),
            (case.old, case.new * 2, r1, r2, want.clone()),
            (case.old, case.new, r2, r1, want.clone()),
            (case.old, case.new, r1, r2, Vec::new()),
            (case.old, case.new, r1, r2, [want.clone(), vec![r1]].concat()),
            (case.old, case.new, r1, r2, [vec![want[0]], want.clone()].concat()),
            (case.old, case.new, r1, r2, want[..want.len() - 1].to_vec()),
        ];
        for i in 0..want.len() {
            let mut bad = want.clone();
            bad[i].0[0] ^= 16;
            probes.push((case.old, case.new, r1, r2, bad));
        }
        for (old, new, r1, r2, path) in probes {
            assert!(
                verify_consistency(old, new, &r1, &r2, &path).is_err(),
                "corrupted probe verified: {old} -> {new}, path len {}",
                path.len()
            );
        }
    }
}

#[test]
fn consistency_edge_cases_follow_the_reference_suite() {
    let (a, b) = (leaf_hash(b"a"), leaf_hash(b"b"));
    let some = vec![Hash::empty_root()];
    assert_eq!(verify_consistency(0, 0, &a, &a, &[]), Ok(()));
    assert_eq!(verify_consistency(0, 1, &a, &b, &[]), Ok(()));
    assert_eq!(verify_consistency(1, 1, &b, &b, &[]), Ok(()));
    assert_eq!(verify_consistency(1, 1, &a, &b, &[]), Err(ProofError::RootMismatch));
    assert!(
        verify_consistency(1, 0, &a, &b, &[]).is_err(),
        "time travel to the past"
    );
    assert!(verify_consistency(1, 2, &a, &b, &[]).is_err(), "empty proof for growth");
    assert!(
        verify_consistency(0, 1, &a, &a, &some).is_err(),
        "non-empty proof from empty"
    );
    assert!(
        verify_consistency(1, 1, &a, &a, &some).is_err(),
        "non-empty proof for equal sizes"
    );
    assert!(verify_inclusion(&a, 0, 0, &[], &a).is_err(), "index 0 of an empty tree");
    assert_eq!(verify_inclusion(&a, 0, 1, &[], &a), Ok(()));
}
