//! The RFC 6962 / RFC 9162 Merkle tree: hashing, tree state and proofs. Pure
//! computation, no I/O; the stores and the verifier sit on top of it.

pub mod batch;
pub mod hash;
pub mod proof;
pub mod tree;
