//! Unit tests for the signature batcher: batches form under concurrency, every verdict is
//! `verify_strict`'s (but for the documented torsion case), small-order `R` is refused, a lone
//! call is verified alone, and no follower is stranded or wrongly passed.
use std::sync::Arc;

use curve25519_dalek::edwards::{CompressedEdwardsY, EdwardsPoint};
use curve25519_dalek::scalar::Scalar;
use ed25519_dalek::{Signer, SigningKey, VerifyingKey};
use futures::{FutureExt, poll};
use portcullis_core::Principal;
use serde_json::{Value, json};
use sha2::{Digest, Sha512};

use super::*;
use crate::request::{CallTarget, META_KEY, Verifier, VerifierConfig, sign_call_with_nonce};

const AUD: &str = "https://gateway.example/mcp";
const NOW: u64 = 1_767_225_600;

#[path = "../tests/it/curve_points.rs"]
mod curve_points;
use curve_points::{SMALL_ORDER, malleate};

fn key(seed: u8) -> SigningKey {
    SigningKey::from_bytes(&[seed; 32])
}

fn point(hex_text: &str) -> [u8; 32] {
    <[u8; 32]>::try_from(hex::decode(hex_text).unwrap()).unwrap()
}

fn pending(public: VerifyingKey, message: &[u8], signature: [u8; 64]) -> PendingSignature {
    PendingSignature {
        key: public,
        message: message.to_vec(),
        signature: Signature::from_bytes(&signature),
        batchable: public.to_edwards().is_torsion_free(),
    }
}

/// A valid signature by `seed`'s key over `message`.
fn valid(seed: u8, message: &[u8]) -> PendingSignature {
    let k = key(seed);
    pending(k.verifying_key(), message, k.sign(message).to_bytes())
}

/// A signature by `k` over `message` with nonce point `R = [r]B + extra`: `s = r + H(R‖A‖M)·a`.
/// With `extra` the identity it is an ordinary valid signature; with a small-order `extra`
/// only the key's holder could have made it.
fn signed_with_r(k: &SigningKey, message: &[u8], r: Scalar, extra: EdwardsPoint) -> [u8; 64] {
    let big_r = (EdwardsPoint::mul_base(&r) + extra).compress();
    let s = r + challenge(big_r.as_bytes(), &k.verifying_key(), message) * k.to_scalar();
    let mut out = [0u8; 64];
    out[..32].copy_from_slice(big_r.as_bytes());
    out[32..].copy_from_slice(s.as_bytes());
    out
}

fn challenge(r: &[u8; 32], public: &VerifyingKey, message: &[u8]) -> Scalar {
    let mut h = Sha512::new();
    h.update(r);
    h.update(public.as_bytes());
    h.update(message);
    Scalar::from_bytes_mod_order_wide(&h.finalize().into())
}

/// What `verify_strict` says: the reference for every verdict.
fn strict(p: &PendingSignature) -> bool {
    p.key.verify_strict(&p.message, &p.signature).is_ok()
}

fn copy(p: &PendingSignature) -> PendingSignature {
    PendingSignature {
        key: p.key,
        message: p.message.clone(),
        signature: p.signature,
        batchable: p.batchable,
    }
}

/// Pretends a leader is at work, so that callers queue as followers.
fn hold_leadership(batcher: &SignatureBatcher) {
    let mut queue = batcher.lock();
    assert!(!queue.leading, "nobody else leads");
    queue.leading = true;
}

fn queued(batcher: &SignatureBatcher) -> usize {
    batcher.lock().waiting.len()
}

/// Queues each signature behind a held leader, then leads with `own`: the verdicts of the
/// followers, in order, and the leader's.
async fn verdicts_behind_a_leader(
    batcher: &SignatureBatcher,
    own: &PendingSignature,
    signatures: Vec<PendingSignature>,
) -> (Vec<Result<bool, CallError>>, bool) {
    hold_leadership(batcher);
    let mut followers = Vec::new();
    for p in signatures {
        let mut follower = Box::pin(batcher.verify(p));
        assert!(poll!(&mut follower).is_pending(), "queued behind the leader");
        followers.push(follower);
    }
    let leader = batcher.lead(own);
    let mut out = Vec::new();
    for follower in followers {
        out.push(follower.await);
    }
    (out, leader)
}

/// The verdicts of followers none of which was stranded.
fn checked(verdicts: Vec<Result<bool, CallError>>) -> Vec<bool> {
    verdicts.into_iter().map(|v| v.unwrap()).collect()
}

/// A verifier with one host key, and `n` prepared calls signed with distinct nonces.
fn prepared_calls(n: usize) -> (Arc<Verifier>, Vec<PreparedCall>) {
    let host = Principal::workload("spiffe://example.org/host");
    let mut verifier = Verifier::new(VerifierConfig::new(AUD));
    verifier
        .register("host-1", host.clone(), key(7).verifying_key())
        .unwrap();
    let target = CallTarget {
        audience: AUD,
        server: "files",
        tool: "read",
    };
    let calls = (0..n)
        .map(|i| {
            let arguments = json!({"path": format!("/tmp/{i}")});
            let nonce = format!("nonce-{i:016}");
            let entry = sign_call_with_nonce(&key(7), "host-1", target, &arguments, &nonce, NOW, 60).unwrap();
            let params: Value = json!({"name": "read", "arguments": arguments, "_meta": {META_KEY: entry}});
            verifier.prepare(&host, "files", "read", &params, NOW + 1).unwrap()
        })
        .collect();
    (Arc::new(verifier), calls)
}

#[test]
fn concurrent_valid_signatures_all_pass_and_form_batches() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(4)
        .build()
        .unwrap();
    let batcher = Arc::new(SignatureBatcher::new());
    const TASKS: usize = 32;
    // Whether a batch forms depends on the scheduler; a few rounds make it all but certain,
    // and every round must pass every call.
    for round in 0..50 {
        let (verifier, calls) = prepared_calls(TASKS);
        let barrier = Arc::new(tokio::sync::Barrier::new(TASKS));
        let results = runtime.block_on(async {
            let tasks: Vec<_> = calls
                .into_iter()
                .map(|call| {
                    let (batcher, verifier, barrier) = (batcher.clone(), verifier.clone(), barrier.clone());
                    tokio::spawn(async move {
                        barrier.wait().await;
                        let checked = batcher.check(call).await?;
                        checked.finish(&verifier, NOW + 1)
                    })
                })
                .collect();
            futures::future::join_all(tasks).await
        });
        for result in results {
            let verified = result.unwrap().unwrap();
            assert_eq!(verified.kid, "host-1");
        }
        if batcher.stats().largest_batch >= 2 {
            break;
        }
        assert!(round < 49, "no batch formed in 50 rounds: {:?}", batcher.stats());
    }
    let stats = batcher.stats();
    assert!(stats.batches >= 1 && stats.largest_batch >= 2, "{stats:?}");
    assert_eq!(stats.failed_batches, 0, "{stats:?}");
    assert!(stats.batched_signatures >= 2, "{stats:?}");
    assert!(
        batcher.lock().waiting.is_empty() && !batcher.lock().leading,
        "nothing left behind"
    );
}

#[tokio::test]
async fn followers_queued_behind_a_leader_are_verified_in_one_batch() {
    let batcher = SignatureBatcher::new();
    let followers: Vec<_> = (0..8u8).map(|i| valid(10 + i, &[i; 40])).collect();
    let (verdicts, leader) = verdicts_behind_a_leader(&batcher, &valid(1, b"leader"), followers).await;
    assert!(leader);
    assert!(verdicts.iter().all(|v| matches!(v, Ok(true))), "{verdicts:?}");
    let stats = batcher.stats();
    assert_eq!(
        stats,
        BatchStats {
            verified_alone: 1,
            batches: 1,
            batched_signatures: 8,
            failed_batches: 0,
            largest_batch: 8,
            refused_before_verifying: 0,
        }
    );
    assert!(!batcher.lock().leading, "leadership given up once the queue is empty");
}

#[tokio::test]
async fn a_batch_mixing_valid_and_invalid_signatures_gives_each_its_verify_strict_verdict() {
    let good = |i: u8| valid(20 + i, &[i; 33]);
    let mut wrong_message = good(1);
    wrong_message.message.push(0);
    let mut wrong_key = good(2);
    wrong_key.key = key(99).verifying_key();
    let mut flipped_s = good(3);
    let mut bytes = flipped_s.signature.to_bytes();
    bytes[40] ^= 1;
    flipped_s.signature = Signature::from_bytes(&bytes);
    let mut flipped_r = good(4);
    let mut bytes = flipped_r.signature.to_bytes();
    bytes[3] ^= 0x10;
    flipped_r.signature = Signature::from_bytes(&bytes);
    // s + ℓ: the same group element, a non-canonical scalar; both verifiers refuse it.
    let mut malleated = good(5);
    malleated.signature = Signature::from_bytes(&malleate(&malleated.signature.to_bytes()));
    let signatures = vec![
        good(0),
        wrong_message,
        good(6),
        wrong_key,
        flipped_s,
        good(7),
        flipped_r,
        malleated,
        good(8),
    ];
    let expected: Vec<bool> = signatures.iter().map(strict).collect();
    assert_eq!(expected.iter().filter(|&&v| v).count(), 4, "{expected:?}");
    let references: Vec<_> = signatures.iter().map(copy).collect();
    let (verdicts, leader) = verdicts_behind_a_leader(&SignatureBatcher::new(), &valid(1, b"leader"), signatures).await;
    assert!(leader);
    let got = checked(verdicts);
    assert_eq!(got, expected);
    // Each one alone, as the leader's own, gets the same verdict too.
    for (p, want) in references.iter().zip(&expected) {
        let batcher = SignatureBatcher::new();
        assert_eq!(batcher.verify(copy(p)).now_or_never().unwrap().unwrap(), *want);
    }
}

#[tokio::test]
async fn a_failed_batch_is_verified_again_one_by_one() {
    let batcher = SignatureBatcher::new();
    let mut bad = valid(2, b"two");
    bad.message = b"not two".to_vec();
    let followers = vec![valid(1, b"one"), bad, valid(3, b"three")];
    let (verdicts, _) = verdicts_behind_a_leader(&batcher, &valid(9, b"leader"), followers).await;
    let got = checked(verdicts);
    assert_eq!(got, [true, false, true]);
    let stats = batcher.stats();
    assert_eq!(
        (stats.batches, stats.failed_batches, stats.verified_alone),
        (1, 1, 1 + 3)
    );
}

#[tokio::test]
async fn a_small_order_r_is_refused_though_the_batch_equation_accepts_it() {
    let k = key(3);
    let public = k.verifying_key();
    let message = b"small-order R";
    for small in SMALL_ORDER {
        // R = T of small order and s = H(R‖A‖M)·a: [s]B = R' + [k]A holds up to T, and
        // exactly for the identity.
        let t = CompressedEdwardsY(point(small)).decompress().unwrap();
        let s = challenge(&point(small), &public, message) * k.to_scalar();
        let mut bytes = [0u8; 64];
        bytes[..32].copy_from_slice(&point(small));
        bytes[32..].copy_from_slice(s.as_bytes());
        let bad = pending(public, message, bytes);
        assert!(!strict(&bad), "verify_strict refuses a small-order R");
        assert!(t.is_small_order());
        assert!(!r_acceptable(&bad.signature));
        if small == SMALL_ORDER[0] {
            // The batch equation alone would let it through: the check before it matters.
            let other = valid(4, b"other");
            let together = ed25519_dalek::verify_batch(
                &[message.as_slice(), other.message.as_slice()],
                &[bad.signature, other.signature],
                &[public, other.key],
            );
            assert!(together.is_ok());
        }
        let batcher = SignatureBatcher::new();
        let (verdicts, _) = verdicts_behind_a_leader(
            &batcher,
            &valid(1, b"leader"),
            vec![bad, valid(4, b"other"), valid(5, b"5")],
        )
        .await;
        let got = checked(verdicts);
        assert_eq!(got, [false, true, true], "R = {small}");
        assert_eq!(batcher.stats().refused_before_verifying, 1);
        assert_eq!(
            batcher.stats().failed_batches,
            0,
            "refused before the batch, which then verifies"
        );
    }
}

#[test]
fn a_non_canonical_r_is_refused_as_verify_strict_refuses_it() {
    // p = 2^255 - 19: y in p..2^255 is a second encoding of y - p.
    let mut p = [0xffu8; 32];
    p[0] = 0xed;
    p[31] = 0x7f;
    let mut below = p;
    below[0] = 0xec;
    assert!(y_is_canonical(&below));
    for low in 0xed..=0xffu8 {
        for sign in [0, 0x80] {
            let mut encoded = p;
            encoded[0] = low;
            encoded[31] |= sign;
            assert!(!y_is_canonical(&encoded), "{encoded:02x?}");
            let mut bytes = [0u8; 64];
            bytes[..32].copy_from_slice(&encoded);
            let sig = Signature::from_bytes(&bytes);
            assert!(!r_acceptable(&sig));
            assert!(key(1).verifying_key().verify_strict(b"m", &sig).is_err());
        }
    }
    // A real R decodes canonically.
    assert!(r_acceptable(&valid(1, b"m").signature));
}

#[tokio::test]
async fn a_lone_call_is_verified_alone() {
    let batcher = SignatureBatcher::new();
    let (verifier, mut calls) = prepared_calls(1);
    let call = calls.pop().unwrap();
    let verified = batcher.check(call).await.unwrap().finish(&verifier, NOW + 1).unwrap();
    assert_eq!(verified.kid, "host-1");
    assert_eq!(
        batcher.stats(),
        BatchStats {
            verified_alone: 1,
            ..BatchStats::default()
        }
    );
    // One alone with a bad signature: refused, still no batch.
    let mut bad = valid(1, b"m");
    bad.message = b"n".to_vec();
    assert!(!batcher.verify(bad).now_or_never().unwrap().unwrap());
    assert_eq!(batcher.stats().batches, 0);
    assert_eq!(batcher.stats().verified_alone, 2);
}

#[tokio::test]
async fn the_batched_path_records_the_nonce_like_verify() {
    let batcher = SignatureBatcher::new();
    let (verifier, mut calls) = prepared_calls(1);
    let call = calls.pop().unwrap();
    let checked = batcher.check(call).await.unwrap();
    checked.finish(&verifier, NOW + 1).unwrap();
    // The same call again: prepared fine, verified fine, refused as a replay at finish.
    let (_, mut again) = prepared_calls(1);
    let checked = batcher.check(again.pop().unwrap()).await.unwrap();
    assert!(matches!(checked.finish(&verifier, NOW + 2), Err(CallError::Replay(_))));
}

#[tokio::test]
async fn a_single_queued_signature_is_verified_alone() {
    let batcher = SignatureBatcher::new();
    let (verdicts, leader) = verdicts_behind_a_leader(&batcher, &valid(1, b"leader"), vec![valid(2, b"two")]).await;
    assert!(leader && matches!(verdicts[..], [Ok(true)]));
    assert_eq!(batcher.stats().batches, 0);
    assert_eq!(batcher.stats().verified_alone, 2);
}

#[tokio::test]
async fn a_cancelled_follower_is_skipped_and_harms_nobody() {
    let batcher = SignatureBatcher::new();
    hold_leadership(&batcher);
    let mut cancelled = Box::pin(batcher.verify(valid(2, b"two")));
    assert!(poll!(&mut cancelled).is_pending());
    let mut kept = Box::pin(batcher.verify(valid(3, b"three")));
    assert!(poll!(&mut kept).is_pending());
    assert_eq!(queued(&batcher), 2);
    drop(cancelled);
    assert!(batcher.lead(&valid(1, b"leader")));
    assert!(kept.await.unwrap());
    // The cancelled one was not verified: one left, verified alone.
    assert_eq!(batcher.stats().verified_alone, 2);
    assert_eq!(batcher.stats().batches, 0);
    assert!(!batcher.lock().leading);
}

#[tokio::test]
async fn a_leader_that_unwinds_leaves_its_followers_an_error_never_a_pass() {
    let batcher = SignatureBatcher::new();
    hold_leadership(&batcher);
    let mut follower = Box::pin(batcher.verify(valid(2, b"two")));
    assert!(poll!(&mut follower).is_pending());
    // What unwinding out of `lead` does: the guard drops without having released.
    drop(Leadership {
        batcher: &batcher,
        released: false,
    });
    assert!(matches!(follower.await, Err(CallError::SignatureUnchecked)));
    assert!(!batcher.lock().leading, "the next caller leads");
    assert!(batcher.verify(valid(3, b"three")).now_or_never().unwrap().unwrap());
}

#[tokio::test]
async fn signatures_under_a_key_with_a_torsion_component_are_never_batched() {
    // A = [a]B + T8: not weak (not of small order), but not torsion-free either.
    let k = key(6);
    let t8 = CompressedEdwardsY(point(SMALL_ORDER[2])).decompress().unwrap();
    let mixed = VerifyingKey::from_bytes((k.verifying_key().to_edwards() + t8).compress().as_bytes()).unwrap();
    assert!(!mixed.is_weak());
    let mut verifier = Verifier::new(VerifierConfig::new(AUD));
    verifier
        .register("mixed", Principal::workload("spiffe://example.org/m"), mixed)
        .unwrap();
    let torsioned = pending(mixed, b"m", k.sign(b"m").to_bytes());
    assert!(!torsioned.batchable);
    let expected = strict(&torsioned);
    let batcher = SignatureBatcher::new();
    let followers = vec![torsioned, valid(2, b"two"), valid(3, b"three")];
    let (verdicts, _) = verdicts_behind_a_leader(&batcher, &valid(1, b"leader"), followers).await;
    let got = checked(verdicts);
    assert_eq!(got, [expected, true, true]);
    let stats = batcher.stats();
    assert_eq!(
        (stats.batches, stats.batched_signatures, stats.verified_alone),
        (1, 2, 2)
    );
}

/// The one difference the module docs state: a torsion component in `R`, which only the key's
/// holder can add, may pass a batch where `verify_strict` refuses it. If ed25519-dalek's
/// batch equation ever becomes cofactored or checks `R`, this fails: update the docs.
#[test]
fn a_torsion_component_in_r_may_pass_a_batch_where_verify_strict_refuses() {
    let k = key(8);
    let order_two = CompressedEdwardsY(point(SMALL_ORDER[1])).decompress().unwrap();
    let other = valid(9, b"other");
    let mut passed = 0;
    for i in 0..64u8 {
        let message = [i; 16];
        let r = Scalar::from(u64::from(i) + 12_345);
        let variant = pending(k.verifying_key(), &message, signed_with_r(&k, &message, r, order_two));
        let honest = pending(
            k.verifying_key(),
            &message,
            signed_with_r(&k, &message, r, EdwardsPoint::default()),
        );
        assert!(strict(&honest), "the construction makes valid signatures");
        assert!(!strict(&variant), "verify_strict refuses R with a torsion component");
        assert!(
            r_acceptable(&variant.signature),
            "R is of large order: the check before batching passes it"
        );
        let together = ed25519_dalek::verify_batch(
            &[variant.message.as_slice(), other.message.as_slice()],
            &[variant.signature, other.signature],
            &[variant.key, other.key],
        );
        passed += usize::from(together.is_ok());
    }
    // An order-2 component vanishes when its coefficient is even: about half the time.
    assert!((8..=56).contains(&passed), "{passed} of 64");
}
