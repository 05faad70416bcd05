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

use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use serde::{Deserialize, Serialize};

use crate::keys::{KeyId, LogSigner, TrustedKeys};
use crate::merkle::hash::Hash;

/// First line of every signed checkpoint note.
pub const CHECKPOINT_ORIGIN: &str = "portcullis-audit/v1";

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
        format!(
            "{CHECKPOINT_ORIGIN}\n{}\n{}\ntime {}\n",
            self.size,
            B64.encode(self.root.0),
            self.time_ms
        )
        .into_bytes()
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

/// When the writer signs and stores a checkpoint: after a batch once
/// `every_records` new records have accumulated, or once `interval` has passed
/// with new records. `checkpoint_now` and closing the log always write one.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CheckpointPolicy {
    /// Records since the last checkpoint that trigger one (0: never by count).
    pub every_records: u64,
    /// Time since the last checkpoint that triggers one (`None`: never by time).
    pub interval: Option<Duration>,
}

impl Default for CheckpointPolicy {
    /// Every 4096 records or every 5 seconds, whichever comes first. A signed
    /// checkpoint bounds how far back a verifier must look for a modified
    /// record, and how many records an attacker could rewrite undetected.
    fn default() -> Self {
        Self {
            every_records: 4096,
            interval: Some(Duration::from_secs(5)),
        }
    }
}
