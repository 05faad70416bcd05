//! Per-call cost of the attestation stages, on a `tools/call` with ~1 KiB of arguments (the
//! end-to-end benchmark's payload):
//!
//! - `verify_call`: the attest stage — decode the signature entry, rebuild and canonicalise
//!   the signed object, Ed25519 `verify_strict`, record the nonce (a fresh verifier per
//!   batch, so the replay cache never refuses);
//! - `ed25519_*_alone`: the bare primitives on a 200-byte message, as the floor;
//! - `sign_call`: what a host (or `connect --sign-key`) adds per call;
//! - `sign_receipt`: the gateway's result signature over digests the record stage already
//!   computed (the per-call cost on the gateway), and `hash_and_sign_receipt` with both
//!   canonical digests computed here too.
//!
//! - `batch/{single,verify_batch}/N`: N = 1, 4, 16 signatures over call-sized messages (each
//!   by its own key), verified one by one with `verify_strict` or in one
//!   `ed25519_dalek::verify_batch` equation: what `SignatureBatcher` saves per batch.
//!
//! Run with `cargo bench -p portcullis-attest --bench signatures`.
#![allow(
    clippy::expect_used,
    reason = "benchmark setup: a broken fixture should abort the run"
)]
use criterion::{BatchSize, BenchmarkId, Criterion, criterion_group, criterion_main};
use ed25519_dalek::{Signature, Signer, SigningKey, VerifyingKey};
use portcullis_attest::{
    CallTarget, HashedFacts, META_KEY, ReceiptFacts, SignedFields, Verifier, VerifierConfig, key_id,
    sign_call_with_nonce, sign_hashed_receipt, sign_receipt,
};
use portcullis_core::Principal;
use serde_json::{Value, json};

const NOW: u64 = 1_767_225_600;

fn arguments() -> Value {
    let text: String = (0..1000).map(|i| char::from(b'a' + (i % 26) as u8)).collect();
    json!({"text": text, "limit": 100, "flags": [true, false]})
}

fn target() -> CallTarget<'static> {
    CallTarget {
        audience: "https://gateway.example.org/mcp",
        server: "demo",
        tool: "echo",
    }
}

fn bench(c: &mut Criterion) {
    let key = SigningKey::from_bytes(&[7; 32]);
    let kid = key_id(&key.verifying_key());
    let host = Principal::workload("spiffe://example.org/agent/bench");
    let args = arguments();
    let nonce = "bench-nonce-0123456789abcdef";
    let entry = sign_call_with_nonce(&key, &kid, target(), &args, nonce, NOW, 60).expect("sign");
    let params = json!({"name": "echo", "arguments": args, "_meta": {META_KEY: entry}});

    c.bench_function("attest/verify_call", |b| {
        b.iter_batched(
            || {
                let mut verifier = Verifier::new(VerifierConfig::new(target().audience));
                verifier
                    .register(&kid, host.clone(), key.verifying_key())
                    .expect("register");
                verifier
            },
            |verifier| verifier.verify(&host, "demo", "echo", &params, NOW).expect("verifies"),
            BatchSize::SmallInput,
        )
    });
    let message = [0u8; 200];
    let signature = ed25519_dalek::Signer::sign(&key, &message);
    let public = key.verifying_key();
    c.bench_function("attest/ed25519_verify_strict_alone", |b| {
        b.iter(|| public.verify_strict(&message, &signature).expect("verifies"))
    });
    c.bench_function("attest/ed25519_sign_alone", |b| {
        b.iter(|| ed25519_dalek::Signer::sign(&key, &message))
    });
    c.bench_function("attest/sign_call", |b| {
        b.iter(|| sign_call_with_nonce(&key, &kid, target(), &args, nonce, NOW, 60).expect("sign"))
    });

    let result = json!({"content": [{"type": "text", "text": args["text"]}], "isError": false});
    c.bench_function("attest/sign_receipt", |b| {
        b.iter(|| {
            let facts = HashedFacts {
                request_sha256: [1; 32],
                result_sha256: [2; 32],
                decision_id: "0123456789abcdef0123456789abcdef",
                audit_index: 123_456,
                time: NOW,
                approval_ids: &[],
            };
            sign_hashed_receipt(&key, &kid, facts).expect("sign")
        })
    });
    c.bench_function("attest/hash_and_sign_receipt", |b| {
        b.iter(|| {
            let facts = ReceiptFacts {
                request: &params,
                result: &result,
                decision_id: "0123456789abcdef0123456789abcdef",
                audit_index: 123_456,
                time: NOW,
                approval_ids: &[],
            };
            sign_receipt(&key, &kid, facts).expect("sign")
        })
    });
}

/// N signatures verified singly (`verify_strict` each) vs in one `verify_batch` equation.
fn batch(c: &mut Criterion) {
    let args = arguments();
    let mut group = c.benchmark_group("batch");
    for n in [1usize, 4, 16] {
        let keys: Vec<SigningKey> = (0..n).map(|i| SigningKey::from_bytes(&[i as u8 + 1; 32])).collect();
        let messages: Vec<Vec<u8>> = (0..n)
            .map(|i| {
                let nonce = format!("bench-nonce-{i:016}");
                let fields = SignedFields {
                    target: target(),
                    arguments: &args,
                    nonce: &nonce,
                    iat: NOW,
                    exp: NOW + 60,
                };
                fields.to_bytes()
            })
            .collect();
        let signatures: Vec<Signature> = keys.iter().zip(&messages).map(|(k, m)| k.sign(m)).collect();
        let publics: Vec<VerifyingKey> = keys.iter().map(SigningKey::verifying_key).collect();
        let slices: Vec<&[u8]> = messages.iter().map(Vec::as_slice).collect();
        group.bench_function(BenchmarkId::new("single", n), |b| {
            b.iter(|| {
                for ((public, message), signature) in publics.iter().zip(&slices).zip(&signatures) {
                    public.verify_strict(message, signature).expect("verifies");
                }
            })
        });
        group.bench_function(BenchmarkId::new("verify_batch", n), |b| {
            b.iter(|| ed25519_dalek::verify_batch(&slices, &signatures, &publics).expect("verifies"))
        });
    }
    group.finish();
}

criterion_group!(benches, bench, batch);
criterion_main!(benches);
