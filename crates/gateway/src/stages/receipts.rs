//! The last stage of the acting path: receipts, and the release of the answer.
//!
//! Only the gateway writes receipts into a result, so an upstream's own receipt entries are
//! removed first ([`Receipts::filter`]). Once the outcome is recorded, the answer gets the
//! audit receipt (log index, leaf hash, call id) and, for a `tools/call` with result
//! signing on, the gateway's receipt over the request, the result, the decision, the
//! log index and the approval request the call used, if it needed one: by default the
//! outcome record with its inclusion path under its audit batch's signed seal (a *batch
//! receipt*, one signature per batch), else a signature per result. [`Released`] — the only form in which an answer to an acting call leaves
//! the pipeline — is built here, and only from the outcome's [`Recorded`].
use std::sync::Arc;

use portcullis_attest::{
    AUDIT_RECEIPT_META_KEY, BatchReceipt, HashedFacts, RESULT_SIGNATURE_META_KEY, ReceiptError, ResultReceipt, Seal,
    carries_gateway_meta, host::unix_now, sign_hashed_receipt, strip_gateway_meta,
};
use portcullis_audit::DurableReceipt;
use portcullis_core::ServerName;
use portcullis_mcp::Message;
use serde_json::{Value, json};

use crate::{
    config::ReceiptKey,
    stages::record::{CallFacts, Recorded},
};

/// `_meta` key of the audit receipt in a result.
pub const RECEIPT_META_KEY: &str = AUDIT_RECEIPT_META_KEY;

/// An answer to an acting call, cleared for the client: its outcome is recorded (or the
/// log is off) and its receipts are attached. Built only by [`Receipts::release`].
#[must_use]
pub struct Released(Message);

impl Released {
    /// The answer's `result`, for the names the route stage puts back on it.
    pub fn result_mut(&mut self) -> Option<&mut Value> {
        self.0.result_mut()
    }

    pub fn into_message(self) -> Message {
        self.0
    }
}

/// The result-signing key in force (none: results carry only the audit receipt).
pub struct Receipts {
    key: Option<Arc<ReceiptKey>>,
}

impl Receipts {
    pub fn new(key: Option<Arc<ReceiptKey>>) -> Self {
        Self { key }
    }

    /// filter: removes receipt entries the upstream put in its result (only the gateway
    /// writes them).
    pub fn filter(&self, server: &ServerName, answer: &mut Message) {
        // Looked for first: taking the result to change drops the bytes kept to forward.
        if answer.result().is_some_and(carries_gateway_meta)
            && let Some(result) = answer.result_mut()
            && strip_gateway_meta(result)
        {
            tracing::warn!(server = %server, "the server's result carried gateway receipt entries; removed");
        }
    }

    /// Releases `answer` once its outcome is `recorded`: attaches the audit receipt and,
    /// for a signed call type (`request_sha256` given), the signed receipt.
    pub fn release(
        &self,
        mut answer: Message,
        call: &CallFacts,
        request_sha256: Option<[u8; 32]>,
        recorded: Recorded,
    ) -> Result<Released, ReceiptError> {
        match recorded {
            Recorded::Durable {
                receipt,
                result_sha256,
                decision_id,
            } => {
                let approval_ids: Vec<String> = call.approval.iter().map(|a| a.id.clone()).collect();
                let signed = self.sign(request_sha256, result_sha256, &decision_id, &approval_ids, &receipt)?;
                attach(&mut answer, call.call_id.as_str(), &receipt, signed);
            }
            Recorded::AuditOff(_) => {}
        }
        Ok(Released(answer))
    }

    /// The receipt for a `tools/call` result, when result signing is on: the outcome
    /// record's inclusion under its batch's seal when the seal was made with the
    /// result-signing key (one signature per batch; `portcullis_attest::batch_receipt`),
    /// else a signature of its own that names the approval requests the call used.
    fn sign(
        &self,
        request_sha256: Option<[u8; 32]>,
        result_sha256: Option<[u8; 32]>,
        decision_id: &str,
        approval_ids: &[String],
        receipt: &DurableReceipt,
    ) -> Result<Option<ResultReceipt>, ReceiptError> {
        let (Some(key), Some(request_sha256), Some(result_sha256)) = (&self.key, request_sha256, result_sha256) else {
            return Ok(None);
        };
        if key.batch
            && let Some(proof) = receipt.proof()
            && proof.seal.key_id.as_str() == key.kid
        {
            let checkpoint = &proof.seal.checkpoint;
            let seal = Seal::new(
                checkpoint.size,
                checkpoint.time_ms,
                &checkpoint.root.0,
                &key.kid,
                &proof.seal.signature,
            );
            let path = proof.path.iter().map(|hash| &hash.0);
            let batch = BatchReceipt::new(receipt.index(), receipt.record(), path, seal);
            return Ok(Some(ResultReceipt::Batch(batch)));
        }
        let facts = HashedFacts {
            request_sha256,
            result_sha256,
            decision_id,
            audit_index: receipt.index(),
            time: unix_now(),
            approval_ids,
        };
        sign_hashed_receipt(&key.key, &key.kid, facts).map(|r| Some(ResultReceipt::Signed(r)))
    }
}

/// Adds the audit receipt, and the signed receipt when there is one, to a successful answer's
/// `result._meta`.
fn attach(answer: &mut Message, call_id: &str, receipt: &DurableReceipt, signed: Option<ResultReceipt>) {
    let Some(result) = answer.result_mut().and_then(Value::as_object_mut) else {
        return;
    };
    let meta = result.entry("_meta").or_insert_with(|| json!({}));
    if let Some(meta) = meta.as_object_mut() {
        meta.insert(
            RECEIPT_META_KEY.to_owned(),
            json!({"auditIndex": receipt.index(), "leafHash": hex::encode(receipt.leaf_hash().0), "callId": call_id}),
        );
        if let Some(signed) = signed
            && let Ok(value) = signed.into_value()
        {
            meta.insert(RESULT_SIGNATURE_META_KEY.to_owned(), value);
        }
    }
}
