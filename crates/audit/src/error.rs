//! Error types of the crate: [`StoreError`] (writing), [`ReadError`] (reading
//! back), and [`AuditError`], what the public [`crate::AuditLog`] API returns.

use std::io;
use std::path::PathBuf;
use std::sync::Arc;

use crate::keys::{KeyError, KeyId};
use crate::merkle::proof::ProofError;
use crate::record::RecordError;
use crate::store::frame::FrameDefect;

/// A store could not durably write or could not open.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("audit log I/O failed while {action} `{path}`: {source}; check the disk (space, permissions, health)")]
    Io {
        action: &'static str,
        path: PathBuf,
        source: io::Error,
    },
    #[error(
        "the audit store failed an earlier write and accepts no more appends; \
         restart the gateway so the log is recovered at open"
    )]
    Poisoned,
    #[error(
        "audit log directory `{dir}` is in use by another process{}; run one gateway per \
         file log, or share a PostgreSQL log between replicas",
        holder.as_ref().map(|h| format!(" ({h})")).unwrap_or_default()
    )]
    Locked {
        dir: PathBuf,
        /// The holder's lock note ([`crate::LogOptions::lock_note`]), when it left one.
        holder: Option<String>,
    },
    #[error(
        "audit log file `{path}` is damaged at entry {index} ({defect}) inside the part \
         that was acknowledged; run `portcullis audit verify` and restore it from backup"
    )]
    Corrupt {
        path: PathBuf,
        index: u64,
        defect: FrameDefect,
    },
    #[error(
        "audit log file `{path}` is damaged at entry {index}: {problem}; run \
         `portcullis audit verify` and restore it from backup"
    )]
    Damaged {
        path: PathBuf,
        index: u64,
        problem: &'static str,
    },
    #[error(
        "audit log file `{path}` is damaged at entry {index} (byte offset {offset}: {defect}), \
         and intact entries follow it (the next one at byte offset {next_offset}); a crash \
         can only tear the end of the log, so this is damage to acknowledged records and \
         nothing was cut. The gateway will not start on it: run `portcullis audit verify` \
         to confirm, then restore the file from a backup"
    )]
    DamagedBeforeIntact {
        path: PathBuf,
        index: u64,
        offset: u64,
        defect: Defect,
        next_offset: u64,
    },
    #[error(
        "audit log file `{path}` is damaged from entry {index} (byte offset {offset}: {defect}) \
         to its end, but a signed checkpoint covers {signed} records: cutting the damage \
         back would drop acknowledged records, so nothing was cut. Run `portcullis audit \
         verify`, then restore the file from a backup"
    )]
    DamagedSignedTail {
        path: PathBuf,
        index: u64,
        offset: u64,
        defect: Defect,
        signed: u64,
    },
    #[error(
        "audit log file `{path}` is damaged at entry {index} (byte offset {offset}), and it holds \
         non-zero bytes up to byte offset {data_end}, more than a torn write can reach past the \
         end of the last intact batch (byte offset {sealed_end}): the gateway never wrote there, \
         so this is damage, not a crash, and nothing was cut. The gateway will not start on it: \
         run `portcullis audit verify` to confirm, then restore the file from a backup"
    )]
    BeyondTornWrite {
        path: PathBuf,
        index: u64,
        /// Where the frames stop.
        offset: u64,
        /// Where the last intact batch ends (its seal; a legacy segment's last
        /// intact record): a torn write starts there.
        sealed_end: u64,
        /// Just past the last non-zero byte of the file.
        data_end: u64,
    },
    #[error(
        "audit log lost acknowledged records: a signed checkpoint covers {checkpoint_size} \
         records but only {found} are stored; run `portcullis audit verify`"
    )]
    MissingRecords { checkpoint_size: u64, found: u64 },
    #[error(
        "audit records {since}..{size} no longer match the seal of their batch (tree size \
         {size}): a record in that range was modified, inserted or removed after it was \
         acknowledged. The gateway will not start on it (it would sign over the change): run \
         `portcullis audit verify` to confirm, then restore the log from a backup"
    )]
    SealMismatch { since: u64, size: u64 },
    #[error(
        "the {what} of tree size {size} is signed by key `{key_id}`, which this gateway does not \
         know (its own log key is `{own}`); if an earlier log key or another replica signed it, \
         add that public key to the log's trusted keys, otherwise the log was forged: run \
         `portcullis audit verify`"
    )]
    UntrustedSignature {
        what: &'static str,
        size: u64,
        key_id: KeyId,
        own: KeyId,
    },
    #[error(
        "the signature on the {what} of tree size {size} (key `{key_id}`) does not verify: the \
         log was modified, refusing to sign over it; run `portcullis audit verify` and restore \
         the log from a backup"
    )]
    ForgedSignature {
        what: &'static str,
        size: u64,
        key_id: KeyId,
    },
    #[error(
        "audit entries {from}..{len} are stored after the last batch seal (size {from}), but a \
         batch is committed together with its seal, so they were never acknowledged by a \
         gateway: they were inserted. The gateway will not start on it: run `portcullis audit \
         verify`, then remove them or restore the log from a backup"
    )]
    UnsealedRecords { from: u64, len: u64 },
    #[error(
        "audit entries {from}..{to} were written by a version without batch seals and no \
         signature covers them (the last checkpoint covers {from}); they may have been changed \
         and the gateway will not seal over them. Start the previous version once and stop it \
         cleanly (its final checkpoint signs them), or restore the log from a backup"
    )]
    UnsealedLegacyTail { from: u64, to: u64 },
    #[error(
        "audit entry {index} is damaged ({defect}); the gateway will not start on a damaged \
         log: run `portcullis audit verify` and restore the log from a backup"
    )]
    DamagedEntry { index: u64, defect: Defect },
    #[error(
        "audit records no longer match the latest signed checkpoint (size {size}); the log \
         was modified, refusing to sign over it: run `portcullis audit verify`"
    )]
    CheckpointMismatch { size: u64 },
    #[error("PostgreSQL audit store failed while {action}: {source}; check the database connection and permissions")]
    Postgres { action: &'static str, source: sqlx::Error },
    #[error("PostgreSQL audit migrations failed: {0}; check that the role may create tables in the schema")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error(
        "invalid PostgreSQL schema name `{0}`: use lowercase letters, digits and `_`, \
         starting with a letter or `_`, at most 63 characters"
    )]
    SchemaName(String),
    #[error("PostgreSQL audit state is inconsistent: {problem}; run `portcullis audit verify`")]
    State { problem: &'static str },
}

/// Reading the log back failed, or found it damaged at a given index.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    #[error("cannot read audit log file `{path}` ({action}): {source}")]
    Io {
        action: &'static str,
        path: PathBuf,
        source: io::Error,
    },
    #[error("audit entry {index} is damaged: {defect}")]
    Corrupt { index: u64, defect: Defect },
    #[error("checkpoint #{position} is unreadable: {problem}")]
    BadCheckpoint { position: u64, problem: String },
    #[error("range {start}..{end} is outside the log of {len} entries; read below the length")]
    OutOfRange { start: u64, end: u64, len: u64 },
    #[error("PostgreSQL read failed while {action}: {source}; check the database connection")]
    Postgres { action: &'static str, source: sqlx::Error },
}

/// What is wrong with a stored entry.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Defect {
    #[error("{0}")]
    Frame(FrameDefect),
    #[error("the entry is missing (the stored sequence has a gap here)")]
    Missing,
    #[error("the file ends in the middle of this entry")]
    Incomplete,
    #[error("the segment holding this entry starts at the wrong index (segments overlap)")]
    Misplaced,
    #[error("the file header is not a portcullis audit header")]
    BadHeader,
    #[error("the stored leaf hash does not match the stored record")]
    LeafHash,
    #[error("the batch seal stored at this point is unreadable: {0}")]
    Seal(&'static str),
    #[error(
        "the frames stop here, but non-zero bytes follow further on than a crash can leave them \
         (after the zero tail, or more than one write past the last batch seal): the file was \
         damaged or changed"
    )]
    AfterZeroTail,
}

/// What the public [`crate::AuditLog`] API returns on failure.
#[derive(Debug, thiserror::Error)]
pub enum AuditError {
    #[error("audit record was NOT stored: {0}; deny the call")]
    Append(Arc<StoreError>),
    #[error("cannot open the audit log: {0}")]
    Open(#[from] StoreError),
    #[error(transparent)]
    Read(#[from] ReadError),
    #[error(transparent)]
    Record(#[from] RecordError),
    #[error(transparent)]
    Key(#[from] KeyError),
    #[error(transparent)]
    Proof(#[from] ProofError),
    #[error("audit record is {len} bytes, above the {max}-byte limit; record digests, not bodies")]
    TooLarge { len: usize, max: usize },
    #[error("the audit writer has stopped (log closed or failed); deny the call and reopen the log")]
    WriterStopped,
}
