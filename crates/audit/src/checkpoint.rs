//! Signed checkpoints: a tree size, its root and a time, signed with the
//! gateway's log key, plus the [`CheckpointPolicy`] that says how often the
//! writer publishes one.
//!
//! The signed message is a small text note in the spirit of the C2SP
//! `tlog-checkpoint` format, every line newline-terminated:
//! ```text
//! portcullis-audit/v1
//! <tree size, decimal>
//! <root hash, base64>
//! time <unix milliseconds>
//! ```
//! Stored checkpoints are JSON: `{"size":…,"root":"<hex>","time_ms":…,
//! "key_id":"<16 hex>","signature":"<base64>"}`.
//!
//! Two kinds of checkpoint use this one format. A *seal* closes every batch the
//! writer commits: the tree head right after the batch, signed before the
//! batch is written and stored in the same durable unit (the file store's
//! seal frame, one transaction in PostgreSQL), so every acknowledged record is
//! covered by a signature before its append returns (docs/THREATS.md T24).
//! The *periodic* checkpoints ([`CheckpointPolicy`]) go to a separate place
//! (the checkpoint file or table): an anchor that a truncated log no longer
//! reaches, and what is published or handed to witnesses. Seals are stored
//! in a fixed binary form ([`SignedCheckpoint::to_seal_bytes`]), 112 bytes
//! plus the key id.

use std::sync::Arc;
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use serde::{Deserialize, Serialize};

use portcullis_core::Clock;

use crate::keys::{KeyId, LogPublicKey, LogSigner, TrustedKeys};
use crate::merkle::hash::Hash;
use crate::time::unix_millis;

/// First line of every signed checkpoint note.
pub use portcullis_core::merkle::CHECKPOINT_ORIGIN;

/// An unsigned tree head with the time it was taken.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Checkpoint {
    pub size: u64,
    pub root: Hash,
    /// Milliseconds since the Unix epoch.
    pub time_ms: u64,
}

impl Checkpoint {
    /// The exact bytes that are signed.
    pub fn note(&self) -> Vec<u8> {
        portcullis_core::merkle::checkpoint_note(self.size, &self.root.0, self.time_ms)
    }
}

/// A checkpoint with its signature and the id of the key that made it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SignedCheckpoint {
    pub checkpoint: Checkpoint,
    pub key_id: KeyId,
    pub signature: [u8; 64],
}

/// Why a checkpoint's signature was not accepted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    #[error(
        "signed by key `{0}`, which is not among the trusted log keys; add its public key or treat the checkpoint as forged"
    )]
    UnknownKey(KeyId),
    #[error("signature by key `{0}` does not verify; the checkpoint was altered or forged")]
    Invalid(KeyId),
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct StoredCheckpoint {
    size: u64,
    root: String,
    time_ms: u64,
    key_id: String,
    signature: String,
}

impl SignedCheckpoint {
    /// Signs `checkpoint` with `signer`.
    pub fn sign(checkpoint: Checkpoint, signer: &LogSigner) -> Self {
        let signature = signer.sign(&checkpoint.note()).to_bytes();
        Self {
            checkpoint,
            key_id: signer.key_id().clone(),
            signature,
        }
    }

    /// Checks the signature against the trusted key with this key id.
    pub fn verify(&self, keys: &TrustedKeys) -> Result<(), SignatureError> {
        let key = keys
            .get(&self.key_id)
            .ok_or_else(|| SignatureError::UnknownKey(self.key_id.clone()))?;
        if key.verify(&self.checkpoint.note(), &self.signature) {
            Ok(())
        } else {
            Err(SignatureError::Invalid(self.key_id.clone()))
        }
    }

    /// The stored JSON form.
    pub fn to_json(&self) -> Vec<u8> {
        let stored = StoredCheckpoint {
            size: self.checkpoint.size,
            root: self.checkpoint.root.to_hex(),
            time_ms: self.checkpoint.time_ms,
            key_id: self.key_id.to_string(),
            signature: B64.encode(self.signature),
        };
        // Serialising a struct of strings and integers cannot fail.
        serde_json::to_vec(&stored).unwrap_or_default()
    }

    /// The binary form stored in a seal frame: `size u64 LE | time_ms u64 LE |
    /// root (32) | signature (64) | key id (ASCII, the rest)`.
    pub fn to_seal_bytes(&self) -> Vec<u8> {
        let key_id = self.key_id.as_str().as_bytes();
        let mut out = Vec::with_capacity(SEAL_FIXED_LEN + key_id.len());
        out.extend_from_slice(&self.checkpoint.size.to_le_bytes());
        out.extend_from_slice(&self.checkpoint.time_ms.to_le_bytes());
        out.extend_from_slice(&self.checkpoint.root.0);
        out.extend_from_slice(&self.signature);
        out.extend_from_slice(key_id);
        out
    }

    /// Parses [`SignedCheckpoint::to_seal_bytes`]; the error says what is wrong.
    pub fn from_seal_bytes(bytes: &[u8]) -> Result<Self, &'static str> {
        if bytes.len() <= SEAL_FIXED_LEN {
            return Err("a seal is shorter than its fixed fields and key id");
        }
        let (fixed, key_id) = bytes.split_at(SEAL_FIXED_LEN);
        let key_id = std::str::from_utf8(key_id).map_err(|_| "a seal's key id is not text")?;
        let word = |at: usize| {
            let mut b = [0u8; 8];
            b.copy_from_slice(&fixed[at..at + 8]);
            u64::from_le_bytes(b)
        };
        let mut root = [0u8; 32];
        root.copy_from_slice(&fixed[16..48]);
        let mut signature = [0u8; 64];
        signature.copy_from_slice(&fixed[48..112]);
        Ok(Self {
            checkpoint: Checkpoint {
                size: word(0),
                root: Hash(root),
                time_ms: word(8),
            },
            key_id: KeyId::from_stored(key_id),
            signature,
        })
    }

    /// Parses the stored JSON form; the error text says which part is wrong.
    pub fn from_json(bytes: &[u8]) -> Result<Self, String> {
        let stored: StoredCheckpoint = serde_json::from_slice(bytes).map_err(|e| e.to_string())?;
        let root = Hash::from_hex(&stored.root).ok_or("root is not 64 hex digits")?;
        let signature = B64
            .decode(&stored.signature)
            .ok()
            .and_then(|s| <[u8; 64]>::try_from(s.as_slice()).ok())
            .ok_or("signature is not 64 bytes of base64")?;
        Ok(Self {
            checkpoint: Checkpoint {
                size: stored.size,
                root,
                time_ms: stored.time_ms,
            },
            key_id: KeyId::from_stored(&stored.key_id),
            signature,
        })
    }
}

/// Bytes of a seal before its key id: size, time, root, signature.
const SEAL_FIXED_LEN: usize = 8 + 8 + 32 + 64;

/// Signs tree heads as checkpoints with the log key, stamped by the log's
/// clock: the writer's seals and periodic checkpoints. Cheap to clone (the
/// stores sign a batch's seal inside their own durable unit).
#[derive(Clone)]
pub struct CheckpointSigner {
    signer: Arc<LogSigner>,
    clock: Arc<dyn Clock>,
}

impl CheckpointSigner {
    pub fn new(signer: LogSigner, clock: Arc<dyn Clock>) -> Self {
        Self {
            signer: Arc::new(signer),
            clock,
        }
    }

    /// Signs the tree of `size` records with root `root`, timed now.
    pub fn sign(&self, size: u64, root: Hash) -> SignedCheckpoint {
        let checkpoint = Checkpoint {
            size,
            root,
            time_ms: unix_millis(self.clock.now()),
        };
        SignedCheckpoint::sign(checkpoint, &self.signer)
    }

    pub fn key_id(&self) -> &KeyId {
        self.signer.key_id()
    }

    pub fn public_key(&self) -> LogPublicKey {
        self.signer.public_key()
    }
}

impl std::fmt::Debug for CheckpointSigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "CheckpointSigner {{ key_id: {} }}", self.signer.key_id())
    }
}

/// When the writer signs and stores a periodic checkpoint (every batch is
/// sealed regardless): after a batch once `every_records` new records have
/// accumulated, or once `interval` has passed with new records.
/// `checkpoint_now` and closing the log always write one.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CheckpointPolicy {
    /// Records since the last checkpoint that trigger one (0: never by count).
    pub every_records: u64,
    /// Time since the last checkpoint that triggers one (`None`: never by time).
    pub interval: Option<Duration>,
}

impl Default for CheckpointPolicy {
    /// Every 4096 records or every 5 seconds, whichever comes first. Seals bind
    /// every batch; a periodic checkpoint, kept apart from the records, bounds
    /// how many acknowledged records could be cut from the end of the log
    /// (records and their seals together) without the cut being detected.
    fn default() -> Self {
        Self {
            every_records: 4096,
            interval: Some(Duration::from_secs(5)),
        }
    }
}
