//! The audit record: the serialised contract of what the log stores, one
//! [`AuditRecord`] per entry, JSON with a fixed field order (`v: 1`).
//!
//! The exact bytes produced by [`AuditRecord::to_bytes`] are the Merkle leaf
//! data, so the encoding is deterministic: struct fields serialise in
//! declaration order, absent optional fields are omitted, and the extension map
//! is a sorted `BTreeMap`. Bodies and secrets are never recorded by default:
//! arguments and results appear only as SHA-256 digests ([`Sha256`]). The
//! caller MUST NOT put secrets in `reason`, `error` or `ext` (docs/THREATS.md T12).
//!
//! Example (one line in the log, shown wrapped):
//! ```text
//! {"v":1,"time":"2026-03-01T12:00:00.000123Z","kind":"call","call_id":"c-42",
//!  "principal":{"workload":"spiffe://example.org/agent","user":"alice"},
//!  "server":"github","method":"tools/call","tool":"create_issue",
//!  "args_sha256":"9f86…","decision":"allow","decision_id":"d-7",
//!  "policy_sha256":"2c26…","outcome":"ok","result_sha256":"fcde…","latency_us":1840}
//! ```

use std::collections::BTreeMap;
use std::time::SystemTime;

use portcullis_core::Sha256;
use serde::{Deserialize, Serialize};

use crate::time::rfc3339_utc;

/// The digest of the hash fields under its earlier name: it is `core`'s [`Sha256`]
/// (64 lowercase hex digits, the text form records have always stored). New code
/// names `portcullis_core::Sha256`.
pub use portcullis_core::Sha256 as Sha256Hex;

/// The only record format version this crate writes and reads.
pub const RECORD_VERSION: u8 = 1;

/// One audit log entry. Field order is the serialisation order.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuditRecord {
    /// Format version, always [`RECORD_VERSION`].
    pub v: u8,
    /// When the event happened, RFC 3339 UTC with microseconds.
    pub time: String,
    pub kind: RecordKind,
    /// The gateway's id for the call this record is about.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub call_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub principal: Option<Principal>,
    /// Upstream server name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub server: Option<String>,
    /// JSON-RPC method, e.g. `tools/call`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub method: Option<String>,
    /// Tool, resource or prompt name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tool: Option<String>,
    /// SHA-256 of the canonical arguments.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub args_sha256: Option<Sha256>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub decision: Option<Decision>,
    /// Why: the policy ids that decided, or the deny reason.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub decision_id: Option<String>,
    /// SHA-256 of the policy set that decided.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub policy_sha256: Option<Sha256>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub outcome: Option<Outcome>,
    /// SHA-256 of the result released to the client.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub result_sha256: Option<Sha256>,
    /// Error text (already redacted by the caller).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// Upstream latency in microseconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub latency_us: Option<u64>,
    /// Extension fields, sorted by key. Values are strings by design: no bodies.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub ext: BTreeMap<String, String>,
}

/// What kind of event a record describes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RecordKind {
    /// An authorisation decision (allow or deny).
    Decision,
    /// A forwarded call and its outcome.
    Call,
    ConfigChange,
    PolicyChange,
    /// A tool definition or executable hash no longer matches its pin.
    PinDrift,
    /// An administrative action (break-glass, key rotation, ...).
    Admin,
    /// A step of a call's approval: requested, granted, denied, expired, withdrawn, used, void.
    Approval,
}

/// Who made the call.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Principal {
    /// Workload identity, e.g. a SPIFFE ID.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub workload: Option<String>,
    /// User identity, e.g. the JWT subject.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Decision {
    Allow,
    Deny,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    Ok,
    Error,
}

/// Why a record could not be encoded or decoded.
#[derive(Debug, thiserror::Error)]
pub enum RecordError {
    #[error("audit record is not valid v1 JSON: {0}")]
    Json(#[from] serde_json::Error),
    #[error("audit record has version {found}; this build reads version {RECORD_VERSION} only, upgrade the reader")]
    Version { found: u8 },
}

impl AuditRecord {
    /// A record of `kind` at `time` with every optional field empty.
    pub fn new(kind: RecordKind, time: SystemTime) -> Self {
        Self {
            v: RECORD_VERSION,
            time: rfc3339_utc(time),
            kind,
            call_id: None,
            principal: None,
            server: None,
            method: None,
            tool: None,
            args_sha256: None,
            decision: None,
            reason: None,
            decision_id: None,
            policy_sha256: None,
            outcome: None,
            result_sha256: None,
            error: None,
            latency_us: None,
            ext: BTreeMap::new(),
        }
    }

    /// The deterministic JSON bytes that become the Merkle leaf. Written into a buffer of
    /// 1 KiB from the start: a call's records are about 0.5–1 KiB, and `serde_json::to_vec`
    /// starts at 128 bytes and doubles (three reallocations per record).
    pub fn to_bytes(&self) -> Result<Vec<u8>, RecordError> {
        if self.v != RECORD_VERSION {
            return Err(RecordError::Version { found: self.v });
        }
        let mut out = Vec::with_capacity(1024);
        serde_json::to_writer(&mut out, self)?;
        Ok(out)
    }

    /// Parses stored bytes, rejecting unknown fields and other versions.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, RecordError> {
        let record: Self = serde_json::from_slice(bytes)?;
        if record.v != RECORD_VERSION {
            return Err(RecordError::Version { found: record.v });
        }
        Ok(record)
    }
}
