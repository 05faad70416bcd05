//! Portcullis audit: a tamper-evident, durable-before-release audit log
//! (docs/PRODUCT.md pillar 5; docs/THREATS.md T12, T15).
//!
//! # Flow
//! The gateway builds an [`AuditRecord`] (hashes and ids, never bodies or
//! secrets) and calls [`AuditLog::append`]. The record is serialised
//! deterministically and hashed as an RFC 6962 leaf in the caller's task, then
//! queued to a group commit that batches concurrent appends into one durable
//! write: for the file store led by the appenders themselves, the first one
//! waiting writing and fsyncing the batch (`leader`), for PostgreSQL a writer
//! task on the caller's runtime (`writer`). Only once the batch is fsynced (file store)
//! or committed (PostgreSQL) does each appender get a [`DurableReceipt`] — the
//! only way to obtain one — carrying the record's index and leaf hash. If the
//! write fails, every appender of the batch gets an error, nothing is
//! acknowledged, and [`AuditLog::healthy`] turns false.
//!
//! # Tamper evidence
//! Records are leaves of an RFC 6962 Merkle tree ([`merkle`]). Every batch is
//! *sealed*: the tree head right after it (size, root, time) is signed with the
//! gateway's Ed25519 log key ([`keys`], key id = first 8 bytes of SHA-256 of the
//! public key) and stored in the same durable unit as the batch, so no record
//! is acknowledged before a signature covers it (docs/THREATS.md T24; one
//! signature per batch, not per record). The writer also periodically stores
//! a [`checkpoint`] in the same format apart from the records: the anchor a
//! log cut back together with its seals no longer reaches, and what is
//! published. [`verify()`] recomputes every leaf and root from the stored
//! records and checks every seal's and checkpoint's signature and root,
//! reporting the first bad index: modified, reordered, dropped or truncated
//! records and forked histories are all caught, a modified record at its own
//! batch. Inclusion and consistency proofs let anyone check a single record or
//! an append-only extension against a checkpoint.
//!
//! # Opening a log
//! Opening refuses, before signing anything, a log whose records are not all
//! covered by a seal or checkpoint whose root matches the recomputed tree and
//! whose signature verifies under the log's key or [`LogOptions::trusted_keys`]
//! (earlier keys, other PostgreSQL replicas). Crash recovery (file store) cuts
//! only a torn end: records after the last intact seal, which were never
//! acknowledged. Damage followed by an intact seal is damage to acknowledged
//! records: the open stops and names the entry, and nothing is cut.
//!
//! Logs written before seals existed (version-1 segments; PostgreSQL rows
//! before migration 2) stay valid up to their last periodic checkpoint, and
//! are sealed from the next batch on. Records after that checkpoint that no
//! signature covers (the previous version crashed before its final
//! checkpoint) are never accepted: the open stops
//! ([`StoreError::UnsealedLegacyTail`]) and `verify` fails
//! ([`VerifyFailure::Unsigned`]); start the previous version once and stop it
//! cleanly, and its final checkpoint signs them.
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
mod leader;
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
pub use merkle::batch::SealedBatch;
pub use merkle::hash::{Hash, leaf_hash, node_hash};
pub use merkle::proof::{ConsistencyProof, InclusionProof, ProofError, verify_consistency, verify_inclusion};
pub use merkle::tree::{Frontier, MerkleTree};
pub use receipt::{DurableReceipt, SealProof};
pub use record::{AuditRecord, Decision, Outcome, Principal, RecordKind, Sha256Hex};
pub use store::{LogReader, SealedRecords};
pub use verify::{Progress, VerifyFailure, VerifyReport, verify};
