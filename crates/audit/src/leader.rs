//! The file store's group commit, led by the appenders themselves: no writer
//! thread between `AuditLog::append` and the disk.
//!
//! An append queues its record. If no commit is in progress, the appender
//! becomes the *leader*: it takes what is queued (up to `max_batch`), writes it
//! with its seal and fsyncs it (one durable batch, `FileStore::append_batch_now`),
//! answers the batch's other appenders, and, once its own record is durable,
//! hands the lead to the first appender still waiting, who commits everything
//! that queued up meanwhile. One call at a time therefore makes its record
//! durable without any thread hand-off (it writes and syncs it itself); under
//! load the next batch grows while the previous one syncs, as with a writer
//! thread, but no thread has to be woken to write it (docs/benchmarks.md,
//! "Caller-led group commit (issue 21 item 1, 2026-12-06, seventh session)").
//!
//! While appends arrive together (the batch taken last held more than one), a fresh
//! leader (one that found no commit in progress) first yields once on a runtime with two
//! or more workers: the tasks already runnable go first, and the records they append
//! meanwhile join its batch instead of the next one — fewer fsyncs per call under load,
//! no timer; one call at a time never yields (docs/benchmarks.md, "A fresh leader
//! gathers (issue 21, 2026-12-06, eighth session)").
//!
//! Where the leader blocks on the disk: on a multi-thread runtime with two or
//! more workers (the gateway's), on its own worker thread — one leader at a
//! time, so at most one worker waits on the disk while the others carry on;
//! `block_in_place` there cost a thread hand-off per batch again and measured
//! no better than the writer thread (the same section). With a single worker,
//! inside `block_in_place` (its other tasks move to another thread meanwhile);
//! on a current-thread runtime, on the blocking pool; with no runtime, in place.
//!
//! The lead is never lost: the leader's work is synchronous (it holds the store
//! across no `.await`); an appender dropped after it was handed the lead takes
//! it up from its destructor on the blocking pool, and a hand-off to an
//! appender already gone goes to the next one. Records of appenders that gave
//! up are still written.
//!
//! The same queue carries checkpoint requests (`checkpoint_now`, the time
//! ticker of [`Leader::spawn_ticker`]), the close (final checkpoint, then the
//! store and its directory lock are dropped) and, in crash tests, a simulated
//! crash; whoever leads takes them in order.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, Weak};

use tokio::runtime::{Handle, RuntimeFlavor};
use tokio::sync::{Semaphore, oneshot};
use tokio::time::{Instant, MissedTickBehavior};

use crate::checkpoint::{CheckpointPolicy, CheckpointSigner};
use crate::store::file::FileStore;
use crate::store::{Entry, TreeHead};
use crate::writer::{AppendReply, CheckpointReply, Settled, Shared, WriterConfig, checkpoint_due, checkpoint_stored};

/// What a queued request asks for.
pub(crate) enum Job {
    Append(Entry),
    Control(Control),
}

/// A request other than an append; taken alone, in order.
pub(crate) enum Control {
    /// A periodic checkpoint: `always` (`checkpoint_now`), or only when records
    /// came since the last one (the time ticker).
    Checkpoint { always: bool },
    /// The final checkpoint, then the store is dropped.
    Close,
    /// The store is dropped at once, the way `kill -9` would stop the process:
    /// queued requests are never carried out or answered (crash tests).
    #[cfg(any(test, feature = "fault-injection"))]
    Crash,
}

/// How a request ended, or that its submitter leads now.
pub(crate) enum Turn {
    Appended(AppendReply),
    Checkpointed(CheckpointReply),
    /// A close, a crash, or a ticker checkpoint with nothing new to cover.
    Done,
    Lead,
}

/// The log was closed or crashed: nothing more is accepted.
#[derive(Debug)]
pub(crate) struct Stopped;

/// Who is told a queued request's outcome.
enum Owner {
    /// The appender that leads: the outcome is its return value.
    Leader,
    Waiting(oneshot::Sender<Turn>),
    /// The submitter is gone; the request is still carried out.
    Gone,
}

struct Queued {
    job: Job,
    owner: Owner,
}

/// The store and what only the leader touches.
struct Held {
    store: FileStore,
    /// Size covered by the newest periodic checkpoint.
    checkpointed: u64,
}

struct State {
    queue: VecDeque<Queued>,
    /// Appends in `queue` (`AuditLog::queued`).
    appends: usize,
    /// Someone leads: holds the store, or has been handed the lead.
    leading: bool,
    /// Taken by the leader while it writes; gone for good once closed or crashed.
    held: Option<Held>,
    /// False once a close or a crash is queued.
    accepting: bool,
    /// The batch taken last held more than one append: appends arrive together, and a
    /// fresh leader gathers before it commits ([`gather`]).
    together: bool,
}

/// What the leader takes from the queue at once.
enum Work {
    /// Consecutive appends: one durable batch.
    Appends(Vec<Entry>, Vec<Owner>),
    One(Control, Owner),
}

/// The caller-led group commit over one file store.
pub(crate) struct Leader {
    state: Mutex<State>,
    signer: CheckpointSigner,
    policy: CheckpointPolicy,
    max_batch: usize,
    /// Appends that may wait (`LogOptions::queue`); beyond it `append` waits for room.
    room: Semaphore,
    shared: Arc<Shared>,
}

impl Leader {
    pub(crate) fn new(store: FileStore, config: WriterConfig, queue: usize, shared: Arc<Shared>) -> Arc<Self> {
        Arc::new(Self {
            state: Mutex::new(State {
                queue: VecDeque::new(),
                appends: 0,
                leading: false,
                held: Some(Held {
                    store,
                    checkpointed: config.checkpointed,
                }),
                accepting: true,
                together: false,
            }),
            signer: config.signer,
            policy: config.policy,
            max_batch: config.max_batch.max(1),
            room: Semaphore::new(queue.clamp(1, Semaphore::MAX_PERMITS)),
            shared,
        })
    }

    /// Queues `job` and returns its outcome, leading the commit when no one else does.
    pub(crate) async fn submit(self: &Arc<Self>, job: Job) -> Result<Turn, Stopped> {
        let append = matches!(job, Job::Append(_));
        if append {
            // Given back when a leader takes the append into a batch.
            self.room.acquire().await.map_err(|_| Stopped)?.forget();
        }
        let (waiting, gather_first) = {
            let mut state = self.lock();
            if !state.accepting {
                drop(state);
                if append {
                    self.room.add_permits(1);
                }
                return Err(Stopped);
            }
            match &job {
                Job::Append(_) => state.appends += 1,
                Job::Control(Control::Checkpoint { .. }) => {}
                Job::Control(Control::Close) => state.accepting = false,
                #[cfg(any(test, feature = "fault-injection"))]
                Job::Control(Control::Crash) => {
                    state.accepting = false;
                    self.drop_queue(&mut state);
                }
            }
            if state.leading {
                let (tx, rx) = oneshot::channel();
                state.queue.push_back(Queued {
                    job,
                    owner: Owner::Waiting(tx),
                });
                (Some(rx), false)
            } else {
                state.leading = true;
                state.queue.push_back(Queued {
                    job,
                    owner: Owner::Leader,
                });
                (None, state.together)
            }
        };
        // A fresh leader while appends arrive together: the tasks already runnable go
        // first, and what they append meanwhile joins its batch instead of the next one.
        if gather_first {
            gather().await;
        }
        if let Some(rx) = waiting {
            let mut turn = AwaitTurn {
                rx: Some(rx),
                leader: self,
            };
            match turn.next().await {
                Some(Turn::Lead) => {}
                Some(outcome) => return Ok(outcome),
                None => return Err(Stopped),
            }
        }
        self.lead_here().await.ok_or(Stopped)
    }

    /// Queues the close without waiting for it (the log was dropped): whoever
    /// leads writes the final checkpoint and drops the store.
    pub(crate) fn close_detached(self: &Arc<Self>) {
        let lead = {
            let mut state = self.lock();
            if !state.accepting {
                return;
            }
            state.accepting = false;
            let lead = !state.leading;
            state.leading = true;
            let owner = if lead { Owner::Leader } else { Owner::Gone };
            state.queue.push_back(Queued {
                job: Job::Control(Control::Close),
                owner,
            });
            lead
        };
        if lead {
            self.lead_elsewhere();
        }
    }

    /// Appends queued and not yet taken into a batch.
    pub(crate) fn queued(&self) -> usize {
        self.lock().appends
    }

    /// False once the log was closed or crashed.
    pub(crate) fn accepting(&self) -> bool {
        self.lock().accepting
    }

    /// Queues a checkpoint every `interval` of the policy while records keep
    /// coming; ends with the log. `None` when checkpoints by time are off.
    pub(crate) fn spawn_ticker(self: &Arc<Self>) -> Option<tokio::task::JoinHandle<()>> {
        let period = self.policy.interval?;
        let leader: Weak<Self> = Arc::downgrade(self);
        Some(tokio::spawn(async move {
            let mut ticker = tokio::time::interval_at(Instant::now() + period, period);
            ticker.set_missed_tick_behavior(MissedTickBehavior::Delay);
            loop {
                ticker.tick().await;
                let Some(leader) = leader.upgrade() else { break };
                let checkpoint = Job::Control(Control::Checkpoint { always: false });
                if leader.submit(checkpoint).await.is_err() {
                    break;
                }
            }
        }))
    }

    /// Leads from the submitting task, blocking where the runtime allows it.
    async fn lead_here(self: &Arc<Self>) -> Option<Turn> {
        let Ok(runtime) = Handle::try_current() else {
            return self.lead();
        };
        match runtime.runtime_flavor() {
            // The other workers carry on meanwhile (one leader at a time).
            RuntimeFlavor::MultiThread if several_workers(&runtime) => self.lead(),
            // The only worker: its other tasks move to another thread meanwhile.
            RuntimeFlavor::MultiThread => tokio::task::block_in_place(|| self.lead()),
            _ => {
                let leader = Arc::clone(self);
                tokio::task::spawn_blocking(move || leader.lead()).await.ok().flatten()
            }
        }
    }

    /// Leads from a destructor: on the blocking pool, or here without a runtime.
    fn lead_elsewhere(self: &Arc<Self>) {
        let leader = Arc::clone(self);
        match Handle::try_current() {
            Ok(handle) => drop(handle.spawn_blocking(move || leader.lead())),
            Err(_) => drop(leader.lead()),
        }
    }

    /// The leader's loop: commits what is queued until its own request is
    /// done, then hands the lead on (or, with nothing queued, lays it down).
    /// Returns its own request's outcome (`None`: it was dropped by a crash).
    fn lead(&self) -> Option<Turn> {
        let mut mine = None;
        loop {
            let (mut held, work) = {
                let mut state = self.lock();
                if mine.is_some() && hand_off(&mut state) {
                    return mine;
                }
                let Some((work, held)) = self.next_work(&mut state) else {
                    state.leading = false;
                    self.drop_queue(&mut state);
                    return mine;
                };
                (held, work)
            };
            let after = match work {
                Work::Appends(entries, owners) => {
                    self.room.add_permits(entries.len());
                    self.commit(&mut held, entries, owners, &mut mine);
                    None
                }
                Work::One(job, owner) => self.run_one(&mut held, job, owner, &mut mine),
            };
            match after {
                // Closed or crashed: the store (and its directory lock) goes before anyone is told.
                Some((owner, turn)) => {
                    drop(held);
                    deliver(owner, turn, &mut mine);
                }
                None => self.lock().held = Some(held),
            }
        }
    }

    /// The next work and the store to do it with; `None` when nothing is queued or the
    /// store is gone (closed, crashed): the leader then lays the lead down.
    fn next_work(&self, state: &mut State) -> Option<(Work, Held)> {
        let held = state.held.take()?;
        match self.take_work(state) {
            Some(work) => Some((work, held)),
            None => {
                state.held = Some(held);
                None
            }
        }
    }

    /// Takes the request at the front: with the appends right behind it (up to
    /// `max_batch`) if it is one, else alone. `None`: nothing is queued.
    fn take_work(&self, state: &mut State) -> Option<Work> {
        let Queued { job, owner } = state.queue.pop_front()?;
        let entry = match job {
            Job::Control(control) => return Some(Work::One(control, owner)),
            Job::Append(entry) => entry,
        };
        let (mut entries, mut owners) = (vec![entry], vec![owner]);
        while entries.len() < self.max_batch
            && let Some(Queued {
                job: Job::Append(_), ..
            }) = state.queue.front()
            && let Some(Queued {
                job: Job::Append(entry),
                owner,
            }) = state.queue.pop_front()
        {
            entries.push(entry);
            owners.push(owner);
        }
        state.appends -= entries.len();
        state.together = entries.len() > 1;
        Some(Work::Appends(entries, owners))
    }

    /// Writes one durable batch and tells each appender its index (or the error).
    fn commit(&self, held: &mut Held, entries: Vec<Entry>, owners: Vec<Owner>, mine: &mut Option<Turn>) {
        let leaves = entries.iter().map(|e| e.leaf).collect();
        let written = held.store.append_batch_now(&entries, &self.signer);
        let settled = Settled::new(written, leaves, &self.shared);
        for (position, owner) in owners.into_iter().enumerate() {
            deliver(owner, Turn::Appended(settled.reply(position)), mine);
        }
        if let Some(head) = settled.head()
            && checkpoint_due(&self.policy, head, held.checkpointed)
        {
            let _ = self.checkpoint(held, head);
        }
    }

    /// Carries out a request other than an append. `Some`: the store must be
    /// dropped, then the owner told.
    fn run_one(
        &self,
        held: &mut Held,
        control: Control,
        owner: Owner,
        mine: &mut Option<Turn>,
    ) -> Option<(Owner, Turn)> {
        match control {
            Control::Checkpoint { always } => {
                let turn = match held.store.head_now() {
                    Ok(head) if always || head.size > held.checkpointed => {
                        Turn::Checkpointed(self.checkpoint(held, head))
                    }
                    Ok(_) => Turn::Done,
                    Err(error) => Turn::Checkpointed(Err(Arc::new(error))),
                };
                deliver(owner, turn, mine);
                None
            }
            Control::Close => {
                if let Ok(head) = held.store.head_now()
                    && head.size > held.checkpointed
                {
                    let _ = self.checkpoint(held, head);
                }
                Some((owner, Turn::Done))
            }
            #[cfg(any(test, feature = "fault-injection"))]
            Control::Crash => Some((owner, Turn::Done)),
        }
    }

    /// Signs and stores a checkpoint of `head`.
    fn checkpoint(&self, held: &mut Held, head: TreeHead) -> CheckpointReply {
        let signed = self.signer.sign(head.size, head.root);
        let stored = held.store.append_checkpoint_now(&signed);
        checkpoint_stored(stored, signed, head, &mut held.checkpointed, &self.shared)
    }

    /// Drops every queued request unanswered (after a close or crash): their
    /// submitters see the log stopped.
    fn drop_queue(&self, state: &mut State) {
        let appends = std::mem::take(&mut state.appends);
        state.queue.clear();
        self.room.add_permits(appends);
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // The state is consistent between statements; a panic elsewhere cannot tear it.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// Hands the lead to the first queued request whose submitter still waits.
fn hand_off(state: &mut State) -> bool {
    for queued in state.queue.iter_mut() {
        if !matches!(queued.owner, Owner::Waiting(_)) {
            continue;
        }
        if let Owner::Waiting(tx) = std::mem::replace(&mut queued.owner, Owner::Gone)
            && tx.send(Turn::Lead).is_ok()
        {
            queued.owner = Owner::Leader;
            return true;
        }
    }
    false
}

/// Tells `owner` how its request ended.
fn deliver(owner: Owner, turn: Turn, mine: &mut Option<Turn>) {
    match owner {
        Owner::Leader => *mine = Some(turn),
        // A submitter that gave up still has its request carried out.
        Owner::Waiting(tx) => drop(tx.send(turn)),
        Owner::Gone => {}
    }
}

/// A submitter waiting for its turn. Dropped after it was handed the lead (its
/// task cancelled), it takes the lead up on the blocking pool, so the lead is
/// never lost.
struct AwaitTurn<'a> {
    rx: Option<oneshot::Receiver<Turn>>,
    leader: &'a Arc<Leader>,
}

impl AwaitTurn<'_> {
    async fn next(&mut self) -> Option<Turn> {
        let rx = self.rx.as_mut()?;
        let turn = rx.await.ok();
        self.rx = None;
        turn
    }
}

impl Drop for AwaitTurn<'_> {
    fn drop(&mut self) {
        if let Some(mut rx) = self.rx.take() {
            // After `close`, no lead can arrive unseen: it is either here or refused.
            rx.close();
            if let Ok(Turn::Lead) = rx.try_recv() {
                self.leader.lead_elsewhere();
            }
        }
    }
}

/// Lets the runtime's other runnable tasks run once before a fresh leader commits (a
/// multi-thread runtime with two or more workers only; elsewhere nothing to gather).
/// Only while appends arrive together: a yield may wake an idle worker, which one call
/// at a time would pay on every record for nothing to gather.
async fn gather() {
    if Handle::try_current().is_ok_and(|runtime| several_workers(&runtime)) {
        tokio::task::yield_now().await;
    }
}

/// A multi-thread runtime with two or more workers: one can wait (on the disk, or
/// behind the tasks it lets go first) while the others carry on.
fn several_workers(runtime: &Handle) -> bool {
    runtime.runtime_flavor() == RuntimeFlavor::MultiThread && runtime.metrics().num_workers() > 1
}
