//! Attestation for Portcullis (docs/PRODUCT.md pillar 3; docs/THREATS.md T7, T8, T13, T19, T20).
//!
//! Where this crate sits in the request flow:
//!
//! ```text
//! client ──▶ identify ──▶ attest ──▶ classify ──▶ … ──▶ forward ──▶ filter ──▶ record ──▶ client
//!                          │           │                                        │
//!                          request.rs  manifest.rs + scan.rs                    receipt.rs
//! ```
//!
//! - [`request`]: the host signs each `tools/call` (Ed25519 over RFC 8785 bytes); the gateway
//!   verifies strictly and refuses replays within the validity window.
//! - [`batch_verify`]: the signatures of calls that reach the attest stage together are
//!   verified in one batch equation, with `verify_strict`'s verdicts.
//! - [`manifest`]: the operator signs a per-server manifest pinning the transport (argv and
//!   executable hash, or URL and SPIFFE ID) and each tool's tier and definition hash; drift
//!   between the manifest and what the server lists is reported (rug pulls, T8).
//! - [`file_pins`]: the files an interpreter-launched server runs (script, lockfile, package
//!   directory), pinned by digest and checked before every spawn (T19).
//! - [`scan`]: tool definitions are scanned for hidden instructions, control and invisible
//!   characters and excessive size before anything reaches a client (T7).
//! - [`receipt`]: the gateway signs the result together with the request hash, decision id
//!   and audit index, so anyone can verify it offline.
//! - [`keys`]: key ids and the set of trusted keys by id (rotation, T20). Key files are
//!   the audit log's (`portcullis_audit::LogSigningKey` / `LogPublicKey`); the CLI loads
//!   them and hands this crate the keys.
//! - [`host`]: the host's side — sign a request, verify the receipt on its result (used by
//!   `portcullis connect --sign-key`, and by Rust hosts directly).
//! - [`ijson`]: the I-JSON checks (RFC 7493) every signed value passes before its canonical
//!   bytes are trusted (T13).
//!
//! This crate is a stage crate: it depends on `core` and `mcp` only (of the workspace; from
//! tokio only the `sync` channels the batcher's callers wait on), does no network I/O, and
//! knows nothing of the pipeline order; `gateway` calls it.
#![forbid(unsafe_code)]

pub mod batch_receipt;
pub mod batch_verify;
pub mod file_pins;
pub mod host;
pub mod ijson;
pub mod keys;
pub mod manifest;
pub mod receipt;
pub mod replay;
pub mod request;
pub mod scan;

pub use batch_receipt::{BatchReceipt, Seal, VerifiedReceipt, verify_batch_receipt};
pub use batch_verify::{BatchStats, SignatureBatcher};
pub use file_pins::{FilePin, FilePinError, FilePins, path_digest};
pub use host::{
    AUDIT_RECEIPT_META_KEY, HostSigner, RESULT_SIGNATURE_META_KEY, carries_gateway_meta, receipt_view,
    strip_gateway_meta, verify_result,
};
pub use keys::{KeySet, key_id};
pub use manifest::{
    Drift, Manifest, ManifestError, PinnedManifest, SignedManifest, ToolPin, TransportPin, drift, file_sha256,
    tool_definition_hash,
};
pub use receipt::{
    HashedFacts, Receipt, ReceiptError, ReceiptFacts, ResultReceipt, sign_hashed_receipt, sign_receipt, verify_receipt,
};
pub use replay::ReplayCache;
pub use request::{
    CallError, CallTarget, CheckedCall, META_KEY, PreparedCall, SignedCall, SignedFields, VerifiedCall, Verifier,
    VerifierConfig, sign_call, sign_call_with_nonce,
};
pub use scan::{Finding, FindingKind, ScanConfig, scan_tool, scan_tool_with};
