//! Opportunistic batch verification of host call signatures (issue 21 item 3).
//!
//! Where it sits in the request flow: in the attest stage, between
//! [`Verifier::prepare`](crate::Verifier::prepare) (every check but the signature's
//! validity) and [`CheckedCall::finish`] (the nonce recorded):
//!
//! ```text
//! attest stage:  prepare ──▶ SignatureBatcher::check ──▶ finish ──▶ classify …
//!                            (alone, or in a batch with the calls that arrived meanwhile)
//! ```
//!
//! # How calls meet
//!
//! There is no background task. A caller that finds nobody verifying becomes the *leader*:
//! it verifies its own signature at once, alone, with `verify_strict` (a lone call pays
//! nothing for batching and never waits for company). Callers that arrive while a leader
//! verifies are *followers*: they queue their key, signed bytes and signature with a oneshot
//! sender and wait. Before returning, the leader takes up to [`MAX_BATCH`] queued signatures
//! and verifies them together with `ed25519_dalek::verify_batch`, and repeats until the queue
//! is empty; it gives up leadership under the queue's lock, in the same critical section that
//! found the queue empty, so a follower either is seen by this leader or finds no leader and
//! leads itself. The queue only ever holds calls that arrived while the leader verified, so
//! it is bounded by the number of calls in the attest stage at once; the leader's own answer
//! waits for the batches it verifies for others.
//!
//! The leader does all of this synchronously: there is no `.await` while it leads, so its
//! future cannot be cancelled half-way. Should it panic, a guard gives up leadership and
//! drops every queued sender; a follower whose sender is dropped gets
//! [`CallError::SignatureUnchecked`], never a pass. A follower whose future is dropped
//! (a cancelled request) leaves a closed sender in the queue: the leader skips it.
//!
//! # Same verdicts as `verify_strict`, but for one case
//!
//! A batch that verifies accepts all its signatures; a batch that fails is verified again one
//! signature at a time with `verify_strict`, so every refusal is exactly the single
//! verification's. A batch of one is verified with `verify_strict` too.
//!
//! `verify_strict` refuses things the batch equation alone would not, so before batching:
//! - `R` must decode, with a canonical `y` (below 2^255 − 19), to a point not of small order
//!   (`verify_strict` refuses small-order `R`; a non-canonical encoding never equals the
//!   canonical one it recomputes). Otherwise the signature is refused without any equation.
//! - Weak (small-order) keys are refused at registration ([`crate::keys`]); keys with a
//!   torsion component, which honest key generation never makes, are registered but their
//!   signatures are always verified alone.
//! - A non-canonical `s` (`s ≥ ℓ`) fails both: the batch errors and its signatures are
//!   verified one by one.
//!
//! The one remaining difference: ed25519-dalek's batch equation is cofactorless with 128-bit
//! coefficients derived by hashing the whole batch (a Merlin transcript over every
//! `H(R‖A‖M)` and `s`), so a signature whose `R` carries a torsion component (a small-order
//! point added to the honest `R`) may pass a batch — when its coefficient kills that
//! component — where `verify_strict` refuses it. Only the holder of the signing key can make
//! such a signature (its prime-order part must still be a valid signature), so it is not a
//! forgery, and it signs the same call: the replay cache is keyed by `(kid, nonce)`, not by
//! the signature bytes, so such a variant cannot replay a call either. Telling it apart would
//! cost a scalar multiplication per signature (`is_torsion_free`), about what batching saves.
use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard, PoisonError};

use curve25519_dalek::edwards::CompressedEdwardsY;
use ed25519_dalek::Signature;
use tokio::sync::oneshot;

use crate::request::{CallError, CheckedCall, PendingSignature, PreparedCall};

/// The most signatures verified in one batch equation.
pub const MAX_BATCH: usize = 64;

/// Verifies host call signatures, batching those that arrive while another is verified
/// (see the module docs). One per gateway, shared by every request (`Send + Sync`).
#[derive(Default)]
pub struct SignatureBatcher {
    queue: Mutex<Queue>,
    counters: Counters,
}

/// What [`SignatureBatcher::stats`] reports since the batcher was made.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct BatchStats {
    /// Signatures verified alone with `verify_strict`: each leader's own, a lone queued one,
    /// those under a key with a torsion component, and each one of a failed batch.
    pub verified_alone: u64,
    /// Batch equations computed, each over two signatures or more.
    pub batches: u64,
    /// Signatures in those batch equations.
    pub batched_signatures: u64,
    /// Batches that did not verify, whose signatures were then verified one by one.
    pub failed_batches: u64,
    /// The most signatures in one batch equation.
    pub largest_batch: u64,
    /// Queued signatures refused by the checks on `R` before any equation.
    pub refused_before_verifying: u64,
}

#[derive(Default)]
struct Queue {
    /// Somebody is verifying; newcomers queue behind it.
    leading: bool,
    waiting: VecDeque<Waiting>,
}

/// A follower's signature and where its verdict goes.
struct Waiting {
    pending: PendingSignature,
    verdict: oneshot::Sender<bool>,
}

/// What a caller does, decided under the lock.
#[expect(
    clippy::large_enum_variant,
    reason = "lives for one match on the caller's stack; boxing would allocate per call"
)]
enum Role {
    Lead(PendingSignature),
    Follow(oneshot::Receiver<bool>),
}

#[derive(Default)]
struct Counters {
    verified_alone: AtomicU64,
    batches: AtomicU64,
    batched_signatures: AtomicU64,
    failed_batches: AtomicU64,
    largest_batch: AtomicU64,
    refused_before_verifying: AtomicU64,
}

impl SignatureBatcher {
    pub fn new() -> Self {
        Self::default()
    }

    /// Verifies a prepared call's signature, alone or in a batch with the calls that arrive
    /// meanwhile. Refusals are [`CallError::BadSignature`], as [`PreparedCall::verify_alone`]
    /// gives; [`CallError::SignatureUnchecked`] if the caller verifying it stopped.
    pub async fn check(&self, prepared: PreparedCall) -> Result<CheckedCall, CallError> {
        let PreparedCall { claims, pending } = prepared;
        if self.verify(pending).await? {
            Ok(CheckedCall::new(claims))
        } else {
            Err(CallError::BadSignature)
        }
    }

    /// The counters so far.
    pub fn stats(&self) -> BatchStats {
        let c = &self.counters;
        let read = |n: &AtomicU64| n.load(Ordering::Relaxed);
        BatchStats {
            verified_alone: read(&c.verified_alone),
            batches: read(&c.batches),
            batched_signatures: read(&c.batched_signatures),
            failed_batches: read(&c.failed_batches),
            largest_batch: read(&c.largest_batch),
            refused_before_verifying: read(&c.refused_before_verifying),
        }
    }

    async fn verify(&self, pending: PendingSignature) -> Result<bool, CallError> {
        let role = {
            let mut queue = self.lock();
            if queue.leading {
                let (verdict, receiver) = oneshot::channel();
                queue.waiting.push_back(Waiting { pending, verdict });
                Role::Follow(receiver)
            } else {
                queue.leading = true;
                Role::Lead(pending)
            }
        };
        match role {
            // No await from here on: the leader cannot be cancelled while it leads.
            Role::Lead(own) => Ok(self.lead(&own)),
            Role::Follow(receiver) => receiver.await.map_err(|_| CallError::SignatureUnchecked),
        }
    }

    /// Verifies the leader's own signature, then whatever queues meanwhile, until the queue
    /// is empty; then gives up leadership.
    fn lead(&self, own: &PendingSignature) -> bool {
        let mut leadership = Leadership {
            batcher: self,
            released: false,
        };
        let valid = self.verify_alone(own);
        loop {
            let batch: Vec<Waiting> = {
                let mut queue = self.lock();
                if queue.waiting.is_empty() {
                    // Under the lock that found the queue empty: a follower queued after
                    // this sees no leader and leads itself.
                    queue.leading = false;
                    leadership.released = true;
                    break;
                }
                let n = queue.waiting.len().min(MAX_BATCH);
                queue.waiting.drain(..n).collect()
            };
            self.settle(batch);
        }
        valid
    }

    /// Verifies a batch taken from the queue and sends each verdict.
    fn settle(&self, batch: Vec<Waiting>) {
        let mut together = Vec::with_capacity(batch.len());
        for waiting in batch {
            if waiting.verdict.is_closed() {
                continue; // its caller is gone
            }
            if !r_acceptable(&waiting.pending.signature) {
                self.counters.refused_before_verifying.fetch_add(1, Ordering::Relaxed);
                send(waiting.verdict, false);
            } else if !waiting.pending.batchable {
                let valid = self.verify_alone(&waiting.pending);
                send(waiting.verdict, valid);
            } else {
                together.push(waiting);
            }
        }
        if together.len() >= 2 {
            if self.verify_together(&together) {
                for waiting in together {
                    send(waiting.verdict, true);
                }
                return;
            }
            self.counters.failed_batches.fetch_add(1, Ordering::Relaxed);
        }
        // A lone signature, or each one of a failed batch.
        for waiting in together {
            let valid = self.verify_alone(&waiting.pending);
            send(waiting.verdict, valid);
        }
    }

    fn verify_alone(&self, pending: &PendingSignature) -> bool {
        self.counters.verified_alone.fetch_add(1, Ordering::Relaxed);
        pending.verify_strict()
    }

    /// One batch equation over two or more signatures.
    fn verify_together(&self, batch: &[Waiting]) -> bool {
        let messages: Vec<&[u8]> = batch.iter().map(|w| w.pending.message.as_slice()).collect();
        let signatures: Vec<Signature> = batch.iter().map(|w| w.pending.signature).collect();
        let keys: Vec<_> = batch.iter().map(|w| w.pending.key).collect();
        let n = batch.len() as u64;
        let c = &self.counters;
        c.batches.fetch_add(1, Ordering::Relaxed);
        c.batched_signatures.fetch_add(n, Ordering::Relaxed);
        c.largest_batch.fetch_max(n, Ordering::Relaxed);
        ed25519_dalek::verify_batch(&messages, &signatures, &keys).is_ok()
    }

    /// The queue; poisoning is ignored: nothing that can panic runs under the lock, and the
    /// queue is consistent between any two of its operations.
    fn lock(&self) -> MutexGuard<'_, Queue> {
        self.queue.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl std::fmt::Debug for SignatureBatcher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SignatureBatcher")
            .field("stats", &self.stats())
            .finish()
    }
}

/// Gives up leadership if the leader unwinds before it did so itself, dropping every queued
/// sender so that no follower waits for a verdict that will never come.
struct Leadership<'a> {
    batcher: &'a SignatureBatcher,
    released: bool,
}

impl Drop for Leadership<'_> {
    fn drop(&mut self) {
        if self.released {
            return;
        }
        let mut queue = self.batcher.lock();
        queue.leading = false;
        let stranded = std::mem::take(&mut queue.waiting);
        drop(queue);
        drop(stranded); // each follower's receiver now reports a dropped sender
    }
}

/// A verdict for a follower; one that stopped waiting no longer needs it.
fn send(verdict: oneshot::Sender<bool>, valid: bool) {
    let _gone = verdict.send(valid);
}

/// `verify_strict`'s checks on `R` that the batch equation lacks: `R` decodes, from a
/// canonical encoding, to a point that is not of small order.
fn r_acceptable(signature: &Signature) -> bool {
    let r = signature.r_bytes();
    y_is_canonical(r)
        && CompressedEdwardsY(*r)
            .decompress()
            .is_some_and(|point| !point.is_small_order())
}

/// Whether the `y` of an encoded point (its low 255 bits) is below p = 2^255 − 19, whose
/// little-endian bytes are `ed ff … ff 7f`.
fn y_is_canonical(encoded: &[u8; 32]) -> bool {
    let top = encoded[31] & 0x7f == 0x7f && encoded[1..31].iter().all(|&b| b == 0xff);
    !(top && encoded[0] >= 0xed)
}

#[cfg(test)]
#[path = "batch_verify_tests.rs"]
mod tests;
