//! PostgreSQL's group-commit writer: one per log owns the store. Appenders send a
//! [`Job`] over a bounded channel and await a oneshot reply; the writer drains
//! whatever is queued (up to `max_batch`) into one durable batch — one write
//! and one fsync or one transaction for all of them — then answers every
//! appender. While a batch is being synced the next one queues up, so the
//! batch size grows with load and the per-record cost of fsync shrinks.
//!
//! [`run`] is a task on the gateway's runtime (its I/O is network I/O that
//! runtime drives). The file store's group commit has no writer: its appenders
//! lead it (`leader`), sharing [`Settled`] and the checkpoint bookkeeping with
//! this loop.
//!
//! Every batch is sealed by the store in the same durable unit (the tree head
//! after the batch, signed with the [`CheckpointSigner`]: one Ed25519
//! signature per batch, not per record), so no appender is answered before a
//! signature covers its record (docs/THREATS.md T24).
//!
//! The writer also signs periodic checkpoints (after a batch, per [`CheckpointPolicy`],
//! and on request) and keeps the health flag: false after a failed write,
//! true again after a successful one (the file store stays failed once
//! poisoned; PostgreSQL recovers when the database does).

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use tokio::sync::{mpsc, oneshot};
use tokio::time::{Instant, MissedTickBehavior};

use crate::checkpoint::{CheckpointPolicy, CheckpointSigner, SignedCheckpoint};
use crate::error::StoreError;
use crate::merkle::batch::SealedBatch;
use crate::merkle::hash::Hash;
use crate::store::{AuditStore, Committed, Entry, TreeHead};

/// Reply to an append: the record's index and the batch it was sealed in, or why it was not
/// stored.
pub(crate) type AppendReply = Result<(u64, Arc<SealedBatch>), Arc<StoreError>>;
/// Reply to a checkpoint request.
pub(crate) type CheckpointReply = Result<SignedCheckpoint, Arc<StoreError>>;

pub(crate) enum Job {
    Append {
        entry: Entry,
        reply: oneshot::Sender<AppendReply>,
    },
    Checkpoint {
        reply: oneshot::Sender<CheckpointReply>,
    },
    /// Stop at once the way a killed process would: the appends of the batch
    /// being gathered are never written or answered, and no final checkpoint
    /// is written (crash tests).
    #[cfg(any(test, feature = "fault-injection"))]
    Crash,
}

/// State the writer publishes to the log handle.
#[derive(Debug)]
pub(crate) struct Shared {
    pub healthy: AtomicBool,
    /// Batches and records durably written by this writer (group-commit stats).
    pub batches: AtomicU64,
    pub records: AtomicU64,
    pub latest: Mutex<Option<SignedCheckpoint>>,
}

/// Writer configuration.
pub(crate) struct WriterConfig {
    /// Signs batch seals and periodic checkpoints, stamped by the log's clock.
    pub signer: CheckpointSigner,
    pub policy: CheckpointPolicy,
    pub max_batch: usize,
    /// Size covered by the newest checkpoint already in the store.
    pub checkpointed: u64,
}

pub(crate) async fn run<S: AuditStore>(
    mut store: S,
    mut jobs: mpsc::Receiver<Job>,
    config: WriterConfig,
    shared: Arc<Shared>,
) {
    let mut checkpointed = config.checkpointed;
    let mut ticker = config.policy.interval.map(|period| {
        let mut t = tokio::time::interval_at(Instant::now() + period, period);
        t.set_missed_tick_behavior(MissedTickBehavior::Delay);
        t
    });
    let mut appends = Vec::with_capacity(config.max_batch);
    let mut requests = Vec::new();
    loop {
        let first = tokio::select! {
            job = jobs.recv() => job,
            _ = tick(&mut ticker) => {
                let head = store.head().await;
                if let Ok(head) = head.as_ref().map(|h| *h) && head.size > checkpointed {
                    let _ = checkpoint(&mut store, &config, head, &mut checkpointed, &shared).await;
                }
                continue;
            }
        };
        let Some(first) = first else { break };
        let mut next = Some(first);
        while let Some(job) = next.take() {
            match job {
                Job::Append { entry, reply } => appends.push((entry, reply)),
                Job::Checkpoint { reply } => requests.push(reply),
                #[cfg(any(test, feature = "fault-injection"))]
                Job::Crash => return,
            }
            if appends.len() < config.max_batch {
                next = jobs.try_recv().ok();
            }
        }
        let mut head = None;
        if !appends.is_empty() {
            head = commit(&mut store, &mut appends, &config.signer, &shared).await;
        }
        let due = head.is_some_and(|h| checkpoint_due(&config.policy, h, checkpointed));
        if due || !requests.is_empty() {
            let head = match head {
                Some(h) => Ok(h),
                None => store.head().await.map_err(Arc::new),
            };
            let result = match head {
                Ok(h) => checkpoint(&mut store, &config, h, &mut checkpointed, &shared).await,
                Err(e) => Err(e),
            };
            for reply in requests.drain(..) {
                let _ = reply.send(result.clone());
            }
        }
    }
    // The channel closed (the log was closed or dropped): publish a final head.
    if let Ok(head) = store.head().await
        && head.size > checkpointed
    {
        let _ = checkpoint(&mut store, &config, head, &mut checkpointed, &shared).await;
    }
}

/// Writes one batch with its seal and answers its appenders only once both
/// are durable. Returns the head on success.
async fn commit<S: AuditStore>(
    store: &mut S,
    appends: &mut Vec<(Entry, oneshot::Sender<AppendReply>)>,
    signer: &CheckpointSigner,
    shared: &Shared,
) -> Option<TreeHead> {
    let (entries, replies): (Vec<Entry>, Vec<_>) = appends.drain(..).unzip();
    let leaves = entries.iter().map(|e| e.leaf).collect();
    let settled = Settled::new(store.append_batch(entries, signer).await, leaves, shared);
    for (position, reply) in replies.into_iter().enumerate() {
        // An appender that gave up still has its record in the log.
        let _ = reply.send(settled.reply(position));
    }
    settled.head()
}

/// What a batch's appenders are told once the store has answered (health and
/// the group-commit counters updated): the same for the PostgreSQL writer task
/// and the file store's caller-led commit (`leader`).
pub(crate) enum Settled {
    Durable {
        first_index: u64,
        batch: Arc<SealedBatch>,
        head: TreeHead,
    },
    Failed(Arc<StoreError>),
}

impl Settled {
    /// `leaves` are the batch's leaf hashes, in order.
    pub(crate) fn new(result: Result<Committed, StoreError>, leaves: Vec<Hash>, shared: &Shared) -> Self {
        match result {
            Ok(committed) => {
                shared.healthy.store(true, Ordering::Release);
                shared.batches.fetch_add(1, Ordering::Relaxed);
                shared.records.fetch_add(leaves.len() as u64, Ordering::Relaxed);
                Self::Durable {
                    first_index: committed.first_index,
                    batch: Arc::new(SealedBatch::new(committed.before, leaves, committed.seal)),
                    head: committed.head,
                }
            }
            Err(error) => {
                shared.healthy.store(false, Ordering::Release);
                tracing::error!(%error, "audit log append failed; the log is unhealthy and calls must be denied");
                Self::Failed(Arc::new(error))
            }
        }
    }

    /// The answer for the batch's `position`-th record.
    pub(crate) fn reply(&self, position: usize) -> AppendReply {
        match self {
            Self::Durable { first_index, batch, .. } => Ok((first_index + position as u64, Arc::clone(batch))),
            Self::Failed(error) => Err(Arc::clone(error)),
        }
    }

    /// The tree after the batch, if it was written.
    pub(crate) fn head(&self) -> Option<TreeHead> {
        match self {
            Self::Durable { head, .. } => Some(*head),
            Self::Failed(_) => None,
        }
    }
}

/// Whether the records since the last periodic checkpoint call for one after a
/// batch that left the tree at `head`.
pub(crate) fn checkpoint_due(policy: &CheckpointPolicy, head: TreeHead, checkpointed: u64) -> bool {
    policy.every_records > 0 && head.size - checkpointed.min(head.size) >= policy.every_records
}

/// Signs and stores a checkpoint of `head`, stamped with the config's clock.
async fn checkpoint<S: AuditStore>(
    store: &mut S,
    config: &WriterConfig,
    head: TreeHead,
    checkpointed: &mut u64,
    shared: &Shared,
) -> CheckpointReply {
    let signed = config.signer.sign(head.size, head.root);
    let stored = store.append_checkpoint(signed.clone()).await;
    checkpoint_stored(stored, signed, head, checkpointed, shared)
}

/// Bookkeeping after a checkpoint write: the size covered, the latest
/// checkpoint published, health on failure.
pub(crate) fn checkpoint_stored(
    stored: Result<(), StoreError>,
    signed: SignedCheckpoint,
    head: TreeHead,
    checkpointed: &mut u64,
    shared: &Shared,
) -> CheckpointReply {
    match stored {
        Ok(()) => {
            *checkpointed = (*checkpointed).max(head.size);
            if let Ok(mut latest) = shared.latest.lock() {
                *latest = Some(signed.clone());
            }
            Ok(signed)
        }
        Err(error) => {
            shared.healthy.store(false, Ordering::Release);
            tracing::error!(%error, "audit checkpoint could not be stored");
            Err(Arc::new(error))
        }
    }
}

/// Waits for the next tick, or forever when checkpoints by time are off.
async fn tick(ticker: &mut Option<tokio::time::Interval>) {
    match ticker {
        Some(t) => {
            t.tick().await;
        }
        None => std::future::pending::<()>().await,
    }
}
