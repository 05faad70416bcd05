//! Result receipts: the `filter` stage's result signature (docs/PRODUCT.md pillar 3).
//!
//! After the audit record is durable, the gateway signs a receipt binding the request, the
//! result it releases, the policy decision, the audit log index and — for a call that was
//! let through by an approval — the approval request(s), and returns it in the result's
//! `_meta`. Anyone holding the gateway's public keys can verify it offline.
//!
//! # Exactly what is signed
//!
//! The Ed25519 signature covers the RFC 8785 canonical bytes of:
//!
//! ```json
//! {"auditIndex":<u64>,"decisionId":"…","kid":"…","requestHash":"<hex>","resultHash":"<hex>","time":<unix s>}
//! ```
//!
//! and, for a call an approval let through, also `"approvalIds":["<approval request id>"]`
//! (the ids of the approval requests it used, as `portcullis approvals list` and the audit
//! log's `approval` records name them). A receipt of a call without approval has no
//! `approvalIds` at all — neither signed nor serialised — so receipts made before the field
//! existed verify unchanged, and adding, removing or altering it breaks the signature.
//!
//! `requestHash` and `resultHash` are lowercase hex SHA-256 of the RFC 8785 form of the request
//! and result values (which values exactly — the whole JSON-RPC message or its `params` and
//! `result` — is the gateway's choice; the verifier must hash the same ones). The `kid` is
//! signed too, so a receipt cannot be re-attributed to another key. A [`Receipt`] serialises as
//! that object plus `"sig"` (base64url, no padding).
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64URL;
use ed25519_dalek::{Signer, SigningKey};
use portcullis_mcp::canonical::{canonical_bytes, canonical_sha256};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::batch_receipt::{BatchReceipt, VerifiedReceipt, verify_batch_receipt};
use crate::ijson::{self, IJsonError, MAX_SAFE_INTEGER};
use crate::keys::{self, KeyError, KeySet};
use crate::request;

/// A signed statement that the gateway released `result` for `request` under a decision.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Receipt {
    pub request_hash: String,
    pub result_hash: String,
    pub decision_id: String,
    pub audit_index: u64,
    pub time: u64,
    pub kid: String,
    /// The approval requests that let the call through; `None` for a call that needed none
    /// (and in every receipt made before the field existed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub approval_ids: Option<Vec<String>>,
    pub sig: String,
}

/// A result's receipt in either form: signed on its own ([`Receipt`]) or proved by its
/// audit batch's seal ([`BatchReceipt`]); a batch receipt is the one with a `seal`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(untagged)]
pub enum ResultReceipt {
    Signed(Receipt),
    Batch(BatchReceipt),
}

impl ResultReceipt {
    /// The receipt as the JSON value of its `_meta` entry (a batch receipt's strings moved
    /// into it rather than copied: [`BatchReceipt::into_value`]).
    pub fn into_value(self) -> Result<Value, serde_json::Error> {
        match self {
            Self::Batch(batch) => Ok(batch.into_value()),
            signed @ Self::Signed(_) => serde_json::to_value(signed),
        }
    }

    /// Parses the `_meta` entry, telling the forms apart by the batch form's `seal`.
    pub fn from_value(entry: &Value) -> Result<Self, ReceiptError> {
        let malformed = |e: serde_json::Error| ReceiptError::Malformed { problem: e.to_string() };
        if entry.get("seal").is_some() {
            serde_json::from_value(entry.clone())
                .map(Self::Batch)
                .map_err(malformed)
        } else {
            serde_json::from_value(entry.clone())
                .map(Self::Signed)
                .map_err(malformed)
        }
    }

    /// Verifies the receipt for `result` and `request` against the trusted gateway (and log)
    /// keys, and says what it attests.
    pub fn verify(&self, result: &Value, request: &Value, trusted: &KeySet) -> Result<VerifiedReceipt, ReceiptError> {
        match self {
            Self::Signed(receipt) => {
                verify_receipt(receipt, result, request, trusted)?;
                Ok(VerifiedReceipt {
                    decision_id: receipt.decision_id.clone(),
                    audit_index: receipt.audit_index,
                    kid: receipt.kid.clone(),
                    time: receipt.time,
                    approval_ids: receipt.approval_ids.clone(),
                    sealed_size: None,
                })
            }
            Self::Batch(receipt) => verify_batch_receipt(receipt, result, request, trusted),
        }
    }
}

/// Why a receipt could not be made or did not verify.
#[derive(Debug, thiserror::Error)]
pub enum ReceiptError {
    #[error(
        "the result carries no `_meta.\"io.portcullis/result-signature\"` receipt; is result signing on at the gateway?"
    )]
    Missing,
    #[error("the receipt's request hash does not match the request; it belongs to another call")]
    RequestMismatch,
    #[error("the receipt's result hash does not match the result; the result was altered")]
    ResultMismatch,
    #[error(
        "the receipt was signed with key `{kid}`, which is not trusted; add the gateway's public key (or it was revoked)"
    )]
    UnknownKey { kid: String },
    #[error("the receipt signature is malformed: {problem}")]
    Malformed { problem: String },
    #[error("the receipt signature does not verify; the receipt was altered or forged")]
    BadSignature,
    #[error("the audit index or time is beyond 2^53-1 and cannot be signed exactly")]
    OutOfRange,
    #[error("the request or result is not I-JSON: {0}")]
    NotIJson(#[from] IJsonError),
    #[error("cannot sign: {0}")]
    Key(#[from] KeyError),
}

/// What a receipt binds together (everything but the key and signature).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ReceiptFacts<'a> {
    pub request: &'a Value,
    pub result: &'a Value,
    pub decision_id: &'a str,
    pub audit_index: u64,
    pub time: u64,
    /// The approval requests the call used (empty: it needed none).
    pub approval_ids: &'a [String],
}

/// A receipt's facts with the request and result already hashed (SHA-256 of their RFC 8785
/// form), for a caller that computed those digests anyway (the gateway's record stage).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HashedFacts<'a> {
    pub request_sha256: [u8; 32],
    pub result_sha256: [u8; 32],
    pub decision_id: &'a str,
    pub audit_index: u64,
    pub time: u64,
    /// The approval requests the call used (empty: it needed none).
    pub approval_ids: &'a [String],
}

/// Signs a receipt for `facts` with the gateway key `key`, named `kid`.
pub fn sign_receipt(key: &SigningKey, kid: &str, facts: ReceiptFacts<'_>) -> Result<Receipt, ReceiptError> {
    ijson::check(facts.request)?;
    ijson::check(facts.result)?;
    let hashed = HashedFacts {
        request_sha256: canonical_sha256(facts.request),
        result_sha256: canonical_sha256(facts.result),
        decision_id: facts.decision_id,
        audit_index: facts.audit_index,
        time: facts.time,
        approval_ids: facts.approval_ids,
    };
    sign_hashed_receipt(key, kid, hashed)
}

/// Signs a receipt over digests the caller computed. The values behind them must have come
/// through `portcullis_mcp::parse_strict` (I-JSON), or the digests are not well defined.
pub fn sign_hashed_receipt(key: &SigningKey, kid: &str, facts: HashedFacts<'_>) -> Result<Receipt, ReceiptError> {
    keys::check_kid(kid)?;
    if facts.audit_index > MAX_SAFE_INTEGER || facts.time > MAX_SAFE_INTEGER {
        return Err(ReceiptError::OutOfRange);
    }
    let mut receipt = Receipt {
        request_hash: hex::encode(facts.request_sha256),
        result_hash: hex::encode(facts.result_sha256),
        decision_id: facts.decision_id.to_owned(),
        audit_index: facts.audit_index,
        time: facts.time,
        kid: kid.to_owned(),
        approval_ids: (!facts.approval_ids.is_empty()).then(|| facts.approval_ids.to_vec()),
        sig: String::new(),
    };
    receipt.sig = B64URL.encode(key.sign(&receipt.signed_bytes()).to_bytes());
    Ok(receipt)
}

/// Verifies `receipt` for `result` and `request` against the trusted gateway keys.
pub fn verify_receipt(
    receipt: &Receipt,
    result: &Value,
    request: &Value,
    trusted: &KeySet,
) -> Result<(), ReceiptError> {
    if receipt.request_hash != hex::encode(canonical_sha256(request)) {
        return Err(ReceiptError::RequestMismatch);
    }
    if receipt.result_hash != hex::encode(canonical_sha256(result)) {
        return Err(ReceiptError::ResultMismatch);
    }
    if receipt.audit_index > MAX_SAFE_INTEGER || receipt.time > MAX_SAFE_INTEGER {
        return Err(ReceiptError::OutOfRange);
    }
    let key = trusted.get(&receipt.kid).ok_or_else(|| ReceiptError::UnknownKey {
        kid: receipt.kid.clone(),
    })?;
    let sig =
        request::decode_signature(&receipt.sig).map_err(|e| ReceiptError::Malformed { problem: e.to_string() })?;
    key.verify_strict(&receipt.signed_bytes(), &sig)
        .map_err(|_| ReceiptError::BadSignature)
}

impl Receipt {
    /// The RFC 8785 bytes the signature covers (every field but `sig`; `approvalIds` only
    /// when the receipt has it).
    pub fn signed_bytes(&self) -> Vec<u8> {
        let mut signed = serde_json::json!({
            "requestHash": self.request_hash,
            "resultHash": self.result_hash,
            "decisionId": self.decision_id,
            "auditIndex": self.audit_index,
            "time": self.time,
            "kid": self.kid,
        });
        if let (Some(ids), Some(fields)) = (&self.approval_ids, signed.as_object_mut()) {
            fields.insert("approvalIds".to_owned(), serde_json::json!(ids));
        }
        canonical_bytes(&signed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn gateway_key(seed: u8) -> SigningKey {
        SigningKey::from_bytes(&[seed; 32])
    }

    fn request() -> Value {
        json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {"name": "files__read_file", "arguments": {"path": "/tmp/x"}}})
    }

    fn result() -> Value {
        json!({"content": [{"type": "text", "text": "hello"}], "isError": false})
    }

    fn facts<'a>(request: &'a Value, result: &'a Value) -> ReceiptFacts<'a> {
        ReceiptFacts {
            request,
            result,
            decision_id: "dec-42",
            audit_index: 17,
            time: 1_767_225_600,
            approval_ids: &[],
        }
    }

    fn trusted(keys: &[(&str, u8)]) -> KeySet {
        let mut set = KeySet::new();
        for (kid, seed) in keys {
            set.insert(kid, gateway_key(*seed).verifying_key()).unwrap();
        }
        set
    }

    #[test]
    fn receipt_round_trips_through_json_and_verifies() {
        let (req, res) = (request(), result());
        let receipt = sign_receipt(&gateway_key(1), "gw-1", facts(&req, &res)).unwrap();
        let text = serde_json::to_string(&receipt).unwrap();
        assert!(
            text.contains(r#""auditIndex":17"#) && text.contains(r#""decisionId":"dec-42""#),
            "{text}"
        );
        let back: Receipt = serde_json::from_str(&text).unwrap();
        verify_receipt(&back, &res, &req, &trusted(&[("gw-1", 1)])).unwrap();
        let signed = String::from_utf8(receipt.signed_bytes()).unwrap();
        assert!(signed.starts_with(r#"{"auditIndex":17,"decisionId":"dec-42","kid":"gw-1","requestHash":""#));
    }

    #[test]
    fn rotated_out_keys_still_verify_old_receipts_until_revoked() {
        let (req, res) = (request(), result());
        let old = sign_receipt(&gateway_key(1), "gw-2025", facts(&req, &res)).unwrap();
        let new = sign_receipt(&gateway_key(2), "gw-2026", facts(&req, &res)).unwrap();
        let mut keys = trusted(&[("gw-2025", 1), ("gw-2026", 2)]);
        verify_receipt(&old, &res, &req, &keys).unwrap();
        verify_receipt(&new, &res, &req, &keys).unwrap();
        assert!(keys.revoke("gw-2025"));
        assert!(matches!(
            verify_receipt(&old, &res, &req, &keys),
            Err(ReceiptError::UnknownKey { .. })
        ));
    }

    #[test]
    fn refusals() {
        let (req, res) = (request(), result());
        let keys = trusted(&[("gw-1", 1), ("gw-x", 3)]);
        let good = sign_receipt(&gateway_key(1), "gw-1", facts(&req, &res)).unwrap();
        let other_res = json!({"content": [{"type": "text", "text": "HELLO"}], "isError": false});
        let other_req = json!({"jsonrpc": "2.0", "id": 2, "method": "tools/call"});
        assert!(matches!(
            verify_receipt(&good, &other_res, &req, &keys),
            Err(ReceiptError::ResultMismatch)
        ));
        assert!(matches!(
            verify_receipt(&good, &res, &other_req, &keys),
            Err(ReceiptError::RequestMismatch)
        ));
        let edits: Vec<(&str, Receipt)> = vec![
            (
                "index",
                Receipt {
                    audit_index: 18,
                    ..good.clone()
                },
            ),
            (
                "decision",
                Receipt {
                    decision_id: "dec-43".into(),
                    ..good.clone()
                },
            ),
            (
                "time",
                Receipt {
                    time: good.time + 1,
                    ..good.clone()
                },
            ),
            (
                "re-attributed kid",
                Receipt {
                    kid: "gw-x".into(),
                    ..good.clone()
                },
            ),
        ];
        for (name, receipt) in edits {
            let e = verify_receipt(&receipt, &res, &req, &keys);
            assert!(matches!(e, Err(ReceiptError::BadSignature)), "{name}: {e:?}");
        }
        let unknown = Receipt {
            kid: "gw-9".into(),
            ..good.clone()
        };
        assert!(matches!(
            verify_receipt(&unknown, &res, &req, &keys),
            Err(ReceiptError::UnknownKey { .. })
        ));
        let padded = Receipt {
            sig: format!("{}==", good.sig),
            ..good.clone()
        };
        assert!(matches!(
            verify_receipt(&padded, &res, &req, &keys),
            Err(ReceiptError::Malformed { .. })
        ));
        let huge = ReceiptFacts {
            audit_index: 1 << 53,
            ..facts(&req, &res)
        };
        assert!(matches!(
            sign_receipt(&gateway_key(1), "gw-1", huge),
            Err(ReceiptError::OutOfRange)
        ));
    }

    #[test]
    fn a_receipt_names_the_approvals_that_let_the_call_through_and_they_cannot_be_altered() {
        let (req, res) = (request(), result());
        let keys = trusted(&[("gw-1", 1)]);
        let ids = ["0f".repeat(16)];
        let approved = sign_receipt(
            &gateway_key(1),
            "gw-1",
            ReceiptFacts {
                approval_ids: &ids,
                ..facts(&req, &res)
            },
        )
        .unwrap();
        let text = serde_json::to_string(&approved).unwrap();
        assert!(text.contains(&format!(r#""approvalIds":["{}"]"#, ids[0])), "{text}");
        let back: Receipt = serde_json::from_str(&text).unwrap();
        verify_receipt(&back, &res, &req, &keys).unwrap();
        assert_eq!(back.approval_ids.as_deref(), Some(&ids[..]));
        let signed = String::from_utf8(approved.signed_bytes()).unwrap();
        assert!(
            signed.starts_with(&format!(r#"{{"approvalIds":["{}"],"auditIndex":17,"#, ids[0])),
            "the ids are signed: {signed}"
        );

        let plain = sign_receipt(&gateway_key(1), "gw-1", facts(&req, &res)).unwrap();
        assert!(
            !serde_json::to_string(&plain).unwrap().contains("approvalIds"),
            "absent for a call without approval"
        );
        let edits: Vec<(&str, Receipt)> = vec![
            (
                "another approval",
                Receipt {
                    approval_ids: Some(vec!["1e".repeat(16)]),
                    ..approved.clone()
                },
            ),
            (
                "one more approval",
                Receipt {
                    approval_ids: Some(vec![ids[0].clone(), "1e".repeat(16)]),
                    ..approved.clone()
                },
            ),
            (
                "approval removed",
                Receipt {
                    approval_ids: None,
                    ..approved.clone()
                },
            ),
            (
                "approval added",
                Receipt {
                    approval_ids: Some(ids.to_vec()),
                    ..plain.clone()
                },
            ),
            (
                "empty list added",
                Receipt {
                    approval_ids: Some(Vec::new()),
                    ..plain.clone()
                },
            ),
        ];
        for (name, receipt) in edits {
            let e = verify_receipt(&receipt, &res, &req, &keys);
            assert!(matches!(e, Err(ReceiptError::BadSignature)), "{name}: {e:?}");
        }
    }

    /// A receipt as gateways wrote them before `approvalIds` existed: its signature covers
    /// exactly the six original fields, and it still verifies.
    #[test]
    fn a_receipt_made_before_approval_ids_existed_still_verifies() {
        let (req, res) = (request(), result());
        let mut old = json!({
            "requestHash": hex::encode(canonical_sha256(&req)),
            "resultHash": hex::encode(canonical_sha256(&res)),
            "decisionId": "dec-7",
            "auditIndex": 3,
            "time": 1_700_000_000,
            "kid": "gw-1",
        });
        let sig = gateway_key(1).sign(&canonical_bytes(&old));
        old["sig"] = json!(B64URL.encode(sig.to_bytes()));
        let receipt: Receipt = serde_json::from_value(old).unwrap();
        assert_eq!(receipt.approval_ids, None);
        verify_receipt(&receipt, &res, &req, &trusted(&[("gw-1", 1)])).unwrap();
    }

    #[test]
    fn receipt_json_refuses_unknown_fields() {
        let (req, res) = (request(), result());
        let mut v = serde_json::to_value(sign_receipt(&gateway_key(1), "gw-1", facts(&req, &res)).unwrap()).unwrap();
        v["extra"] = json!(1);
        assert!(serde_json::from_value::<Receipt>(v).is_err());
    }

    #[test]
    fn hashes_ignore_key_order() {
        let req: Value = serde_json::from_str(r#"{"b":1,"a":2}"#).unwrap();
        let reordered: Value = serde_json::from_str(r#"{"a":2,"b":1.0}"#).unwrap();
        let res = result();
        let receipt = sign_receipt(&gateway_key(1), "gw-1", facts(&req, &res)).unwrap();
        verify_receipt(&receipt, &res, &reordered, &trusted(&[("gw-1", 1)])).unwrap();
    }
}
