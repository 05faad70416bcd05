//! Batch receipts: a result's receipt proved by its audit batch's one signature (issue 21
//! item 2), instead of a signature of its own.
//!
//! The gateway makes every audit batch durable together with its *seal* — the log's tree
//! head right after the batch, signed with the log key (`crates/audit`, docs/THREATS.md
//! T24). When results are signed with that same key (the default: no separate
//! `receipt_key`), a result's receipt is its outcome record plus the record's inclusion path
//! to the sealed root: one Ed25519 signature per batch instead of one per call, and a
//! receipt that also proves the record is in the tamper-evident log.
//!
//! # The form (`_meta."io.portcullis/result-signature"`)
//!
//! ```json
//! {"auditIndex":17,"record":"<base64url of the record bytes>","path":["<hex>",…],
//!  "seal":{"size":24,"timeMs":1764950400123,"root":"<hex>","kid":"…","sig":"<base64url>"}}
//! ```
//!
//! # What is checked ([`verify_batch_receipt`])
//!
//! 1. The record (the exact bytes stored in the log, JSON) is the outcome record of a call
//!    that succeeded (`"kind":"call"`, `"outcome":"ok"`), its `result_sha256` is the SHA-256
//!    of the RFC 8785 form of the result received, and its `ext.request_sha256` that of the
//!    request sent — the same hashes a signed receipt's `resultHash` and `requestHash` carry.
//! 2. `SHA-256(0x00 || record)` is at `auditIndex` in the tree of `seal.size` leaves whose
//!    root is `seal.root`, by `path` (RFC 9162 §2.1.3.2).
//! 3. The seal's signature (`verify_strict`) over the checkpoint note
//!    (`portcullis_core::merkle::checkpoint_note`) by the trusted key `seal.kid`.
//!
//! What it attests — decision id, audit index, approval request (`ext.approval_id`), time
//! (the seal's) — is read from the verified record. The record carries only what the log
//! keeps about the call (names, digests, the caller; never bodies or secrets, unless the
//! operator turned body capture on, in which case it carries the redacted result).
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64URL;
use portcullis_core::merkle::{checkpoint_note, leaf_hash, verify_inclusion};
use portcullis_mcp::canonical::canonical_sha256;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::keys::KeySet;
use crate::receipt::ReceiptError;
use crate::request;

/// Largest record a batch receipt may carry (the log's own limit is far below).
const MAX_RECORD_BYTES: usize = 1 << 20;
/// Longest path: a tree of at most 2^64 leaves.
const MAX_PATH: usize = 64;

/// A result's receipt proved by its audit batch's seal.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct BatchReceipt {
    /// The outcome record's index in the audit log.
    pub audit_index: u64,
    /// The outcome record's exact bytes, base64url without padding.
    pub record: String,
    /// Sibling hashes (lowercase hex) from the record's leaf up to the seal's root.
    pub path: Vec<String>,
    pub seal: Seal,
}

/// The signed tree head of the record's batch.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Seal {
    /// Tree size right after the batch.
    pub size: u64,
    /// When the batch was sealed, Unix milliseconds.
    pub time_ms: u64,
    /// The tree's root, lowercase hex.
    pub root: String,
    /// The log key's id.
    pub kid: String,
    /// Ed25519 signature over the checkpoint note, base64url without padding.
    pub sig: String,
}

/// What a verified receipt (of either form) attests.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedReceipt {
    pub decision_id: String,
    pub audit_index: u64,
    /// The key that signed: the receipt's own, or the batch seal's.
    pub kid: String,
    /// Unix seconds: the receipt's time, or when the batch was sealed.
    pub time: u64,
    /// The approval requests that let the call through; `None` when it needed none.
    pub approval_ids: Option<Vec<String>>,
    /// For a batch receipt, the tree size its seal signs.
    pub sealed_size: Option<u64>,
}

impl Seal {
    /// The seal of a batch as the log signed it: tree size, time, root, key id, signature.
    pub fn new(size: u64, time_ms: u64, root: &[u8; 32], kid: &str, sig: &[u8; 64]) -> Self {
        Self {
            size,
            time_ms,
            root: hex::encode(root),
            kid: kid.to_owned(),
            sig: B64URL.encode(sig),
        }
    }
}

impl BatchReceipt {
    /// Builds the receipt from the record bytes, its index, its path and its batch's seal
    /// (the gateway's side; the seal's fields as the log signed them).
    pub fn new<'a>(audit_index: u64, record: &[u8], path: impl IntoIterator<Item = &'a [u8; 32]>, seal: Seal) -> Self {
        Self {
            audit_index,
            record: B64URL.encode(record),
            path: path.into_iter().map(hex::encode).collect(),
            seal,
        }
    }

    /// The receipt as the JSON value of its `_meta` entry: what `serde_json::to_value`
    /// gives (the same members in the same order), with the strings moved, not copied —
    /// the record's base64 and every path hash are built once per result.
    pub fn into_value(self) -> Value {
        let Seal {
            size,
            time_ms,
            root,
            kid,
            sig,
        } = self.seal;
        let mut seal = Map::with_capacity(5);
        seal.insert("size".to_owned(), size.into());
        seal.insert("timeMs".to_owned(), time_ms.into());
        seal.insert("root".to_owned(), Value::String(root));
        seal.insert("kid".to_owned(), Value::String(kid));
        seal.insert("sig".to_owned(), Value::String(sig));
        let mut receipt = Map::with_capacity(4);
        receipt.insert("auditIndex".to_owned(), self.audit_index.into());
        receipt.insert("record".to_owned(), Value::String(self.record));
        receipt.insert(
            "path".to_owned(),
            Value::Array(self.path.into_iter().map(Value::String).collect()),
        );
        receipt.insert("seal".to_owned(), Value::Object(seal));
        Value::Object(receipt)
    }
}

/// Verifies a batch receipt for `result` and `request` (the values the gateway hashed: the
/// result without the gateway's `_meta` entries, the request's `params`) against the
/// trusted log keys.
pub fn verify_batch_receipt(
    receipt: &BatchReceipt,
    result: &Value,
    request: &Value,
    trusted: &KeySet,
) -> Result<VerifiedReceipt, ReceiptError> {
    let malformed = |problem: &str| ReceiptError::Malformed {
        problem: problem.to_owned(),
    };
    if receipt.record.len() > MAX_RECORD_BYTES * 4 / 3 + 4 || receipt.path.len() > MAX_PATH {
        return Err(malformed(
            "the batch receipt's record or path is larger than any log makes",
        ));
    }
    let bytes = B64URL
        .decode(&receipt.record)
        .map_err(|_| malformed("the batch receipt's record is not base64url"))?;
    let record: Value =
        serde_json::from_slice(&bytes).map_err(|_| malformed("the batch receipt's record is not JSON"))?;
    let field = |name: &str| record.get(name).and_then(Value::as_str);
    if field("kind") != Some("call") || field("outcome") != Some("ok") {
        return Err(malformed(
            "the batch receipt's record is not the outcome record of a successful call",
        ));
    }
    let ext = |name: &str| record.get("ext").and_then(|e| e.get(name)).and_then(Value::as_str);
    if ext("request_sha256") != Some(hex::encode(canonical_sha256(request)).as_str()) {
        return Err(ReceiptError::RequestMismatch);
    }
    if field("result_sha256") != Some(hex::encode(canonical_sha256(result)).as_str()) {
        return Err(ReceiptError::ResultMismatch);
    }
    let decision_id = field("decision_id")
        .ok_or_else(|| malformed("the batch receipt's record names no decision"))?
        .to_owned();
    let hash = |text: &str| -> Result<[u8; 32], ReceiptError> {
        hex::decode(text)
            .ok()
            .and_then(|b| <[u8; 32]>::try_from(b.as_slice()).ok())
            .ok_or_else(|| malformed("a hash in the batch receipt is not 64 hex digits"))
    };
    let path = receipt.path.iter().map(|h| hash(h)).collect::<Result<Vec<_>, _>>()?;
    let root = hash(&receipt.seal.root)?;
    // The record must be in the sealed tree: a valid seal over another tree proves nothing.
    verify_inclusion(&leaf_hash(&bytes), receipt.audit_index, receipt.seal.size, &path, &root)
        .map_err(|e| malformed(&format!("the record is not in the sealed tree: {e}")))?;
    let key = trusted.get(&receipt.seal.kid).ok_or_else(|| ReceiptError::UnknownKey {
        kid: receipt.seal.kid.clone(),
    })?;
    let sig = request::decode_signature(&receipt.seal.sig).map_err(|e| malformed(&e.to_string()))?;
    let note = checkpoint_note(receipt.seal.size, &root, receipt.seal.time_ms);
    key.verify_strict(&note, &sig).map_err(|_| ReceiptError::BadSignature)?;
    Ok(VerifiedReceipt {
        decision_id,
        audit_index: receipt.audit_index,
        kid: receipt.seal.kid.clone(),
        time: receipt.seal.time_ms / 1000,
        approval_ids: ext("approval_id").map(|id| vec![id.to_owned()]),
        sealed_size: Some(receipt.seal.size),
    })
}
