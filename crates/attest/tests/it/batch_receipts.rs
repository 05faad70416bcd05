//! Batch receipts end to end through a real audit log (file store in a temp dir): records
//! appended concurrently share batches, each outcome record's receipt is its path under its
//! batch's seal, and it verifies offline for exactly its request and result and no other.
use std::sync::Arc;

use ed25519_dalek::SigningKey;
use portcullis_attest::{
    BatchReceipt, KeySet, ReceiptError, ResultReceipt, Seal, VerifiedReceipt, verify_batch_receipt,
};
use portcullis_audit::{AuditLog, AuditRecord, DurableReceipt, LogOptions, LogSigner, Outcome, RecordKind};
use portcullis_mcp::canonical::canonical_sha256;
use serde_json::{Value, json};

const SEED: [u8; 32] = [5; 32];

fn params(n: usize) -> Value {
    json!({"name": "echo", "arguments": {"text": format!("call {n}")}})
}

fn result(n: usize) -> Value {
    json!({"content": [{"type": "text", "text": format!("answer {n}")}]})
}

/// The outcome record the gateway writes for call `n` (only the fields the receipt reads
/// matter; the rest is what a real record carries).
fn outcome_record(n: usize) -> AuditRecord {
    let mut r = AuditRecord::new(RecordKind::Call, std::time::SystemTime::now());
    r.call_id = Some(format!("c-{n}"));
    r.server = Some("demo".into());
    r.method = Some("tools/call".into());
    r.tool = Some("echo".into());
    r.decision_id = Some(format!("d-{n}"));
    r.outcome = Some(Outcome::Ok);
    r.result_sha256 = Some(portcullis_audit::Sha256Hex::from_digest(canonical_sha256(&result(n))));
    r.ext
        .insert("request_sha256".into(), hex::encode(canonical_sha256(&params(n))));
    if n == 3 {
        r.ext.insert("approval_id".into(), "ap-3".into());
    }
    r
}

fn batch_receipt(receipt: &DurableReceipt, kid: &str) -> BatchReceipt {
    let proof = receipt.proof().expect("a log receipt has a proof");
    let c = &proof.seal.checkpoint;
    let seal = Seal::new(c.size, c.time_ms, &c.root.0, kid, &proof.seal.signature);
    let path: Vec<[u8; 32]> = proof.path.iter().map(|h| h.0).collect();
    BatchReceipt::new(receipt.index(), receipt.record(), &path, seal)
}

/// Appends `records` so that they share batches: the writer is held (a stalled disk, the
/// audit crate's fault injection) on a first record while they all queue up, then released.
async fn append_together(
    records: Vec<(usize, AuditRecord)>,
) -> (Vec<(usize, DurableReceipt)>, portcullis_audit::LogStats) {
    let dir = tempfile::tempdir().unwrap();
    let (log, switch) = AuditLog::open_faulty(dir.path(), LogSigner::from_seed(SEED), LogOptions::default())
        .await
        .unwrap();
    let log = Arc::new(log);
    switch.stall_next_write();
    let held = {
        let log = Arc::clone(&log);
        tokio::spawn(async move { log.append(&outcome_record(1000)).await.unwrap() })
    };
    while !switch.is_stalled() {
        tokio::task::yield_now().await;
    }
    let expected = records.len();
    let appends: Vec<_> = records
        .into_iter()
        .map(|(n, record)| {
            let log = Arc::clone(&log);
            tokio::spawn(async move { (n, log.append(&record).await.unwrap()) })
        })
        .collect();
    while log.queued() < expected {
        tokio::task::yield_now().await;
    }
    switch.release();
    let _first = held.await.unwrap();
    let receipts = futures::future::join_all(appends)
        .await
        .into_iter()
        .map(Result::unwrap)
        .collect();
    (receipts, log.stats())
}

fn trusted() -> (KeySet, String) {
    let key = SigningKey::from_bytes(&SEED);
    let mut set = KeySet::new();
    let kid = set.insert_derived(key.verifying_key()).unwrap();
    (set, kid)
}

#[tokio::test]
async fn concurrent_calls_share_batches_and_each_receipt_proves_its_own_call_only() {
    // Twelve outcomes committed together (as concurrent calls' are).
    let (receipts, stats) = append_together((0..12).map(|n| (n, outcome_record(n))).collect()).await;
    assert!(stats.batches < stats.records, "records shared a batch: {stats:?}");
    let (trusted, kid) = trusted();
    for (n, receipt) in &receipts {
        let batch = batch_receipt(receipt, &kid);
        let verified = verify_batch_receipt(&batch, &result(*n), &params(*n), &trusted).unwrap();
        assert_eq!(
            verified,
            VerifiedReceipt {
                decision_id: format!("d-{n}"),
                audit_index: receipt.index(),
                kid: kid.clone(),
                time: batch.seal.time_ms / 1000,
                approval_ids: (*n == 3).then(|| vec!["ap-3".to_owned()]),
                sealed_size: Some(batch.seal.size),
            }
        );
        // The same receipt names another call's request or result: refused.
        let other = (n + 1) % 12;
        assert!(matches!(
            verify_batch_receipt(&batch, &result(*n), &params(other), &trusted),
            Err(ReceiptError::RequestMismatch)
        ));
        assert!(matches!(
            verify_batch_receipt(&batch, &result(other), &params(*n), &trusted),
            Err(ReceiptError::ResultMismatch)
        ));
    }
}

#[tokio::test]
async fn a_batch_the_file_store_writes_in_parts_still_proves_every_record() {
    // Over 1 MiB of records in one batch is written as several sealed parts; the receipts
    // are proved by the last part's seal, which signs the tree after all of them.
    let records = (0..6).map(|n| {
        let mut record = outcome_record(n);
        record.ext.insert("padding".into(), "x".repeat(400 * 1024));
        (n, record)
    });
    let (receipts, stats) = append_together(records.collect()).await;
    assert!(
        stats.batches < stats.records,
        "records over 1 MiB shared a batch: {stats:?}"
    );
    let (trusted, kid) = trusted();
    for (n, receipt) in &receipts {
        let batch = batch_receipt(receipt, &kid);
        verify_batch_receipt(&batch, &result(*n), &params(*n), &trusted).unwrap();
    }
}

#[tokio::test]
async fn an_altered_record_path_index_or_seal_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let log = AuditLog::open_file(dir.path(), LogSigner::from_seed(SEED), LogOptions::default())
        .await
        .unwrap();
    for n in 0..5 {
        let _earlier = log.append(&outcome_record(100 + n)).await.unwrap();
    }
    let receipt = log.append(&outcome_record(1)).await.unwrap();
    let (trusted, kid) = trusted();
    let good = batch_receipt(&receipt, &kid);
    let check = |b: &BatchReceipt| verify_batch_receipt(b, &result(1), &params(1), &trusted);
    assert!(check(&good).is_ok());

    // The record rewritten to say the call was another one, with its hashes to match the
    // forged request: the leaf no longer leads to the sealed root.
    let mut forged = good.clone();
    let mut record: Value = serde_json::from_slice(receipt.record()).unwrap();
    record["decision_id"] = json!("d-forged");
    forged.record = base64url(&serde_json::to_vec(&record).unwrap());
    assert!(
        matches!(check(&forged), Err(ReceiptError::Malformed { problem }) if problem.contains("not in the sealed tree"))
    );

    let mut moved = good.clone();
    moved.audit_index -= 1;
    assert!(matches!(check(&moved), Err(ReceiptError::Malformed { .. })));

    let mut cut = good.clone();
    cut.path.pop();
    assert!(matches!(check(&cut), Err(ReceiptError::Malformed { .. })));

    // A seal claiming another time (or size) no longer matches its signature.
    let mut retimed = good.clone();
    retimed.seal.time_ms += 1;
    assert!(matches!(check(&retimed), Err(ReceiptError::BadSignature)));

    let mut unknown = good.clone();
    unknown.seal.kid = "0000000000000000".into();
    assert!(matches!(check(&unknown), Err(ReceiptError::UnknownKey { .. })));

    // Signed by another key under the trusted id: refused.
    let other = LogSigner::from_seed([6; 32]);
    let note = portcullis_core::merkle::checkpoint_note(good.seal.size, &hex32(&good.seal.root), good.seal.time_ms);
    let mut resigned = good.clone();
    resigned.seal.sig = base64url(&other.signing_key().sign_bytes(&note));
    assert!(matches!(check(&resigned), Err(ReceiptError::BadSignature)));
}

#[tokio::test]
async fn a_receipt_moved_into_its_meta_value_is_what_serde_writes() {
    let (receipts, _) = append_together((0..5).map(|n| (n, outcome_record(n))).collect()).await;
    let (trusted, kid) = trusted();
    for (n, receipt) in &receipts {
        let batch = batch_receipt(receipt, &kid);
        assert!(!batch.path.is_empty(), "a tree of several records gives a path");
        let by_serde = serde_json::to_vec(&ResultReceipt::Batch(batch.clone())).unwrap();
        let moved = ResultReceipt::Batch(batch).into_value().unwrap();
        assert_eq!(
            serde_json::to_vec(&moved).unwrap(),
            by_serde,
            "the same bytes, member order included"
        );
        // And it reads back as the receipt it was, verifying as before.
        let ResultReceipt::Batch(back) = ResultReceipt::from_value(&moved).unwrap() else {
            panic!("read back as a signed receipt");
        };
        verify_batch_receipt(&back, &result(*n), &params(*n), &trusted).unwrap();
    }
}

#[test]
fn the_two_forms_are_told_apart_by_the_seal() {
    let signed = json!({"requestHash": "00", "resultHash": "00", "decisionId": "d", "auditIndex": 1,
        "time": 1, "kid": "k", "sig": "AA"});
    assert!(matches!(
        ResultReceipt::from_value(&signed),
        Ok(ResultReceipt::Signed(_))
    ));
    let batch = json!({"auditIndex": 1, "record": "e30", "path": [],
        "seal": {"size": 2, "timeMs": 1, "root": "00", "kid": "k", "sig": "AA"}});
    assert!(matches!(ResultReceipt::from_value(&batch), Ok(ResultReceipt::Batch(_))));
    let mut extra = batch.clone();
    extra["sig"] = json!("AA");
    assert!(matches!(
        ResultReceipt::from_value(&extra),
        Err(ReceiptError::Malformed { .. })
    ));
}

fn base64url(bytes: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

fn hex32(text: &str) -> [u8; 32] {
    hex::decode(text).unwrap().try_into().unwrap()
}

trait SignBytes {
    fn sign_bytes(&self, msg: &[u8]) -> [u8; 64];
}

impl SignBytes for SigningKey {
    fn sign_bytes(&self, msg: &[u8]) -> [u8; 64] {
        use ed25519_dalek::Signer;
        self.sign(msg).to_bytes()
    }
}
