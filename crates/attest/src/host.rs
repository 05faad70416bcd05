//! The host's side of attestation (docs/PRODUCT.md pillar 3): what a Rust host — or
//! `portcullis connect --sign-key` on a host's behalf — does around each call.
//!
//! * Before sending a `tools/call`: [`HostSigner::sign_request`] puts the call signature into
//!   `params._meta` (the exact bytes signed are described in [`crate::request`]).
//! * When the answer comes back: [`verify_result`] checks the gateway's signed receipt in the
//!   result's `_meta` against the request that was sent and the gateway's public keys.
//!
//! ```no_run
//! use portcullis_attest::{HostSigner, KeySet, verify_result};
//! # fn demo(key: ed25519_dalek::SigningKey, gateway_key: ed25519_dalek::VerifyingKey) -> Result<(), Box<dyn std::error::Error>> {
//! let signer = HostSigner::new(key, "https://gateway.example.org/mcp");
//! let mut request = serde_json::json!({"jsonrpc": "2.0", "id": 7, "method": "tools/call",
//!     "params": {"name": "read_file", "arguments": {"path": "/srv/a"}}});
//! // `files`/`read_file`: the server and tool the gateway routes this call to.
//! signer.sign_request(&mut request, "files", "read_file", portcullis_attest::host::unix_now())?;
//! // … send `request`, receive `answer` …
//! # let answer = serde_json::json!({});
//! let mut trusted = KeySet::new();
//! trusted.insert_derived(gateway_key)?;
//! let receipt = verify_result(&request["params"], &answer["result"], &trusted)?;
//! println!("audit index {}", receipt.audit_index);
//! # Ok(()) }
//! ```
//!
//! # What a receipt covers
//!
//! - `requestHash`: SHA-256 of the RFC 8785 form of the request's `params` exactly as the host
//!   sent them (its call signature included).
//! - `resultHash`: SHA-256 of the RFC 8785 form of the `result` the host receives, with the
//!   gateway's own entries [`RESULT_SIGNATURE_META_KEY`] and [`AUDIT_RECEIPT_META_KEY`] removed
//!   from its `_meta`, and `_meta` itself removed if that leaves it empty ([`receipt_view`]).
//!   The gateway removes any such entries an upstream server put there before it hashes.
//! - `approvalIds` (only for a call an approval let through): the approval requests it used.
//!   Receipts without it — every call that needed no approval, and receipts made before the
//!   field existed — verify as they always did.
use std::borrow::Cow;
use std::time::{SystemTime, UNIX_EPOCH};

use ed25519_dalek::SigningKey;
use serde_json::Value;

use crate::batch_receipt::VerifiedReceipt;
use crate::keys::{KeySet, key_id};
use crate::receipt::{ReceiptError, ResultReceipt};
use crate::request::{CallError, CallTarget, META_KEY, sign_call};

/// `_meta` key of the gateway's signed receipt in a result.
pub const RESULT_SIGNATURE_META_KEY: &str = "io.portcullis/result-signature";
/// `_meta` key of the audit log receipt (log index, leaf hash, call id) in a result.
pub const AUDIT_RECEIPT_META_KEY: &str = "io.portcullis/receipt";
/// How long a host signature stays valid by default, in seconds.
pub const DEFAULT_TTL_SECS: u64 = 60;

/// Seconds since the Unix epoch (0 if the clock is before it).
pub fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or_default()
}

/// A host's call signer: its key, the key id the gateway knows it by, and the gateway audience.
pub struct HostSigner {
    key: SigningKey,
    kid: String,
    audience: String,
    ttl_secs: u64,
}

impl std::fmt::Debug for HostSigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HostSigner")
            .field("kid", &self.kid)
            .field("audience", &self.audience)
            .field("ttl_secs", &self.ttl_secs)
            .finish_non_exhaustive()
    }
}

impl HostSigner {
    /// A signer whose key id is derived from the key ([`key_id`]) and whose signatures last
    /// [`DEFAULT_TTL_SECS`].
    pub fn new(key: SigningKey, audience: impl Into<String>) -> Self {
        let kid = key_id(&key.verifying_key());
        Self {
            key,
            kid,
            audience: audience.into(),
            ttl_secs: DEFAULT_TTL_SECS,
        }
    }

    /// Signatures valid for `secs` seconds (at most the gateway's window, 5 minutes by default).
    pub fn with_ttl(self, secs: u64) -> Self {
        Self { ttl_secs: secs, ..self }
    }

    pub fn kid(&self) -> &str {
        &self.kid
    }

    /// Signs the `tools/call` request `request` (a whole JSON-RPC message) in place, for the
    /// upstream `server` and its tool `tool` as the gateway resolves them, at Unix time `now`.
    /// A previous signature in the request is replaced.
    pub fn sign_request(&self, request: &mut Value, server: &str, tool: &str, now: u64) -> Result<(), CallError> {
        let params = request
            .as_object_mut()
            .map(|o| o.entry("params").or_insert_with(|| Value::Object(Default::default())))
            .and_then(Value::as_object_mut)
            .ok_or(CallError::Malformed {
                problem: "a tools/call request needs an object `params`".into(),
            })?;
        let empty = Value::Object(Default::default());
        let arguments = params.get("arguments").unwrap_or(&empty);
        let target = CallTarget {
            audience: &self.audience,
            server,
            tool,
        };
        let entry = sign_call(&self.key, &self.kid, target, arguments, now, self.ttl_secs)?;
        let meta = params
            .entry("_meta")
            .or_insert_with(|| Value::Object(Default::default()));
        let meta = meta.as_object_mut().ok_or(CallError::Malformed {
            problem: "`params._meta` is not an object".into(),
        })?;
        meta.insert(META_KEY.to_owned(), entry);
        Ok(())
    }
}

/// The result as the receipt's `resultHash` covers it (see the module docs).
pub fn receipt_view(result: &Value) -> Cow<'_, Value> {
    if !carries_gateway_meta(result) {
        return Cow::Borrowed(result);
    }
    let mut copy = result.clone();
    strip_gateway_meta(&mut copy);
    Cow::Owned(copy)
}

/// Whether `result._meta` holds one of the gateway's own entries (a receipt), without
/// changing anything.
pub fn carries_gateway_meta(result: &Value) -> bool {
    result
        .get("_meta")
        .and_then(Value::as_object)
        .is_some_and(|m| m.contains_key(RESULT_SIGNATURE_META_KEY) || m.contains_key(AUDIT_RECEIPT_META_KEY))
}

/// Removes the gateway's own `_meta` entries from `result` (and `_meta` if left empty).
/// Returns whether anything was removed.
pub fn strip_gateway_meta(result: &mut Value) -> bool {
    let Some(obj) = result.as_object_mut() else {
        return false;
    };
    let Some(meta) = portcullis_mcp::message::field_mut(obj, "_meta").and_then(Value::as_object_mut) else {
        return false;
    };
    let removed =
        meta.shift_remove(RESULT_SIGNATURE_META_KEY).is_some() | meta.shift_remove(AUDIT_RECEIPT_META_KEY).is_some();
    if removed && meta.is_empty() {
        obj.shift_remove("_meta");
    }
    removed
}

/// The receipt carried in `result._meta` (either form), not yet verified.
pub fn receipt_of(result: &Value) -> Result<ResultReceipt, ReceiptError> {
    let entry = result
        .get("_meta")
        .and_then(|m| m.get(RESULT_SIGNATURE_META_KEY))
        .ok_or(ReceiptError::Missing)?;
    ResultReceipt::from_value(entry)
}

/// Verifies the receipt in `result` (a signed receipt or a batch receipt) for the request
/// `params` that were sent, against the trusted gateway keys. Returns what it attests.
pub fn verify_result(params: &Value, result: &Value, trusted: &KeySet) -> Result<VerifiedReceipt, ReceiptError> {
    receipt_of(result)?.verify(&receipt_view(result), params, trusted)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::request::{Verifier, VerifierConfig};
    use crate::{HashedFacts, sign_hashed_receipt};
    use portcullis_core::Principal;
    use portcullis_mcp::canonical::canonical_sha256;
    use serde_json::json;

    fn host_key() -> SigningKey {
        SigningKey::from_bytes(&[7; 32])
    }

    #[test]
    fn a_signed_request_verifies_at_the_gateway_and_only_for_its_target() {
        let signer = HostSigner::new(host_key(), "aud-1");
        let mut request = json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call",
            "params": {"name": "echo", "arguments": {"text": "hi"}, "_meta": {"other": 1}}});
        signer.sign_request(&mut request, "demo", "echo", unix_now()).unwrap();
        assert_eq!(request["params"]["_meta"]["other"], 1, "other _meta entries are kept");
        let mut verifier = Verifier::new(VerifierConfig::new("aud-1"));
        let host = Principal::workload("spiffe://example.org/host");
        verifier
            .register(signer.kid(), host.clone(), host_key().verifying_key())
            .unwrap();
        let params = &request["params"];
        assert!(matches!(
            verifier.verify(&host, "demo", "other", params, unix_now()),
            Err(CallError::WrongTarget { .. })
        ));
        verifier.verify(&host, "demo", "echo", params, unix_now()).unwrap();
        assert!(matches!(
            verifier.verify(&host, "demo", "echo", params, unix_now()),
            Err(CallError::Replay(_))
        ));
    }

    #[test]
    fn requests_without_object_params_are_refused() {
        let signer = HostSigner::new(host_key(), "aud");
        let mut request = json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": [1]});
        assert!(signer.sign_request(&mut request, "s", "t", unix_now()).is_err());
    }

    #[test]
    fn receipt_view_strips_only_the_gateway_entries() {
        let plain = json!({"content": [], "_meta": {"x": 1}});
        assert!(matches!(receipt_view(&plain), Cow::Borrowed(_)));
        let ours = json!({"content": [], "_meta": {"x": 1, AUDIT_RECEIPT_META_KEY: {}, RESULT_SIGNATURE_META_KEY: {}}});
        assert_eq!(*receipt_view(&ours), plain);
        let only_ours = json!({"content": [], "_meta": {RESULT_SIGNATURE_META_KEY: {}}});
        assert_eq!(*receipt_view(&only_ours), json!({"content": []}));
    }

    /// `result` as the gateway releases it: its signed receipt for `params` (log index 3,
    /// naming `approvals`) and the audit receipt in `_meta`; and the keys that trust it.
    fn receipted(gateway: &SigningKey, params: &Value, mut result: Value, approvals: &[String]) -> (Value, KeySet) {
        let receipt = sign_hashed_receipt(
            gateway,
            &key_id(&gateway.verifying_key()),
            HashedFacts {
                request_sha256: canonical_sha256(params),
                result_sha256: canonical_sha256(&result),
                decision_id: "d-1",
                audit_index: 3,
                time: unix_now(),
                approval_ids: approvals,
            },
        )
        .unwrap();
        result["_meta"] = json!({RESULT_SIGNATURE_META_KEY: receipt, AUDIT_RECEIPT_META_KEY: {"auditIndex": 3}});
        let mut trusted = KeySet::new();
        trusted.insert_derived(gateway.verifying_key()).unwrap();
        (result, trusted)
    }

    #[test]
    fn a_receipt_in_the_result_verifies_and_tampering_is_caught() {
        let gateway = SigningKey::from_bytes(&[9; 32]);
        let params = json!({"name": "echo", "arguments": {"text": "hi"}});
        let (result, trusted) = receipted(
            &gateway,
            &params,
            json!({"content": [{"type": "text", "text": "hi"}]}),
            &[],
        );
        assert_eq!(verify_result(&params, &result, &trusted).unwrap().audit_index, 3);

        let mut tampered = result.clone();
        tampered["content"][0]["text"] = json!("bye");
        assert!(matches!(
            verify_result(&params, &tampered, &trusted),
            Err(ReceiptError::ResultMismatch)
        ));
        let other = json!({"name": "echo", "arguments": {"text": "other"}});
        assert!(matches!(
            verify_result(&other, &result, &trusted),
            Err(ReceiptError::RequestMismatch)
        ));
        assert!(matches!(
            verify_result(&params, &json!({"content": []}), &trusted),
            Err(ReceiptError::Missing)
        ));
    }

    #[test]
    fn a_receipt_naming_its_approval_verifies_in_the_result_and_an_altered_one_does_not() {
        let gateway = SigningKey::from_bytes(&[9; 32]);
        let params = json!({"name": "send", "arguments": {"to": "ops"}});
        let approvals = ["a1".repeat(16)];
        let result = json!({"content": [{"type": "text", "text": "sent"}]});
        let (result, trusted) = receipted(&gateway, &params, result, &approvals);
        let verified = verify_result(&params, &result, &trusted).unwrap();
        assert_eq!(verified.approval_ids.as_deref(), Some(&approvals[..]));

        let mut altered = result.clone();
        altered["_meta"][RESULT_SIGNATURE_META_KEY]["approvalIds"] = json!(["b2".repeat(16)]);
        assert!(matches!(
            verify_result(&params, &altered, &trusted),
            Err(ReceiptError::BadSignature)
        ));
        let mut dropped = result;
        if let Some(entry) = dropped["_meta"][RESULT_SIGNATURE_META_KEY].as_object_mut() {
            entry.remove("approvalIds");
        }
        assert!(matches!(
            verify_result(&params, &dropped, &trusted),
            Err(ReceiptError::BadSignature)
        ));
    }
}
