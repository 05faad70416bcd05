//! Portcullis audit: a tamper-evident, durable-before-release audit log
//! (docs/PRODUCT.md pillar 5; docs/THREATS.md T12, T15).
//!
//! # Flow
//! The gateway builds an [`AuditRecord`] (hashes and ids, never bodies or
//! secrets) and calls [`AuditLog::append`]. The record is serialised
//! deterministically and hashed as an RFC 6962 leaf in the caller's task, then
//! queued to a single writer task that batches concurrent appends into one
//! durable write (group commit). Only once the batch is fsynced (file store)
//! or committed (PostgreSQL) does each appender get a [`DurableReceipt`] — the
//! only way to obtain one — carrying the record's index and leaf hash. If the
//! write fails, every appender of the batch gets an error, nothing is
//! acknowledged, and [`AuditLog::healthy`] turns false.
//!
//! # Tamper evidence
//! Records are leaves of an RFC 6962 Merkle tree ([`merkle`]). The writer
//! periodically signs a [`checkpoint`] (size, root, time) with the gateway's
//! Ed25519 log key ([`keys`], key id = first 8 bytes of SHA-256 of the public
//! key). [`verify()`] recomputes every leaf and root from the stored records
//! and checks every checkpoint's signature and root, reporting the first bad
//! index: modified, reordered, dropped or truncated records and forked
//! histories are all caught. Inclusion and consistency proofs let anyone
//! check a single record or an append-only extension against a checkpoint.
//!
//! # Stores
//! [`store::file`] (default): append-only segment files with length + CRC
//! framing and crash recovery at open. [`store::postgres`]: one table with a
//! global order shared by several gateway replicas. Both sit under the narrow
//! [`store::AuditStore`] / [`store::LogReader`] contract.
#![forbid(unsafe_code)]

pub mod checkpoint;
pub mod error;
pub mod keys;
mod log;
pub mod merkle;
mod open_check;
pub mod receipt;
pub mod record;
pub mod store;
pub mod time;
pub mod verify;
mod writer;

pub use checkpoint::{Checkpoint, CheckpointPolicy, CheckpointSigner, SignedCheckpoint};
pub use error::{AuditError, ReadError, StoreError};
pub use keys::{KeyId, LogPublicKey, LogSigner, TrustedKeys};
pub use log::{AuditLog, LogOptions, LogStats, MAX_RECORD_BYTES, StoreReader};
pub use merkle::hash::{Hash, leaf_hash, node_hash};
pub use merkle::proof::{ConsistencyProof, InclusionProof, ProofError, verify_consistency, verify_inclusion};
pub use merkle::tree::{Frontier, MerkleTree};
pub use receipt::DurableReceipt;
pub use record::{AuditRecord, Decision, Outcome, Principal, RecordKind, Sha256Hex};
pub use store::{LogReader, SealedRecords};
pub use verify::{Progress, VerifyFailure, VerifyReport, verify};
