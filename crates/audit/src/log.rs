//! [`AuditLog`]: the handle the gateway holds. `append` is the one call on the
//! hot path: it serialises and hashes the record in the caller's task, hands
//! it to the group commit, and returns a [`DurableReceipt`] only when the
//! store reports the batch durable — the batch and its seal (the signed tree
//! head after it) in one durable unit. Opening a log checks that every
//! acknowledged record is covered by a verified signature (`open_check`), then
//! starts the group commit: for the file store led by the appenders themselves
//! (`leader`), for PostgreSQL a writer task fed by a channel (`writer`).
//! Closing or dropping the log writes the final checkpoint and releases the
//! store.

use std::ops::Range;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use portcullis_core::{Clock, SystemClock};
use tokio::sync::{Mutex, mpsc, oneshot};

use crate::checkpoint::{CheckpointPolicy, CheckpointSigner, SignedCheckpoint};
use crate::error::{AuditError, ReadError};
use crate::keys::{LogPublicKey, LogSigner, TrustedKeys};
use crate::leader::{self, Control, Leader, Turn};
use crate::merkle::hash::leaf_hash;
use crate::merkle::proof::{ConsistencyProof, InclusionProof};
use crate::merkle::tree::MerkleTree;
use crate::open_check::{self, OpenKeys};
use crate::receipt::DurableReceipt;
use crate::record::AuditRecord;
use crate::store::file::{DEFAULT_SEGMENT_BYTES, FileStore};
use crate::store::postgres::{PgReader, PostgresStore};
use crate::store::{AuditStore, Entry, FileReader, LogReader, SealedRecords};
use crate::writer::{self, Job, Shared, WriterConfig};

/// Largest serialised record accepted (records carry digests, not bodies).
pub const MAX_RECORD_BYTES: usize = 1024 * 1024;

/// Tuning for a log. `Default` suits a gateway.
#[derive(Clone, Debug)]
pub struct LogOptions {
    pub checkpoints: CheckpointPolicy,
    /// Most records written by one batch (one fsync or one transaction).
    pub max_batch: usize,
    /// Appends that may wait for the writer; beyond it `append` waits too
    /// (backpressure), so the caller's timeout turns overload into a deny.
    pub queue: usize,
    /// File store: start a new segment file after this many bytes.
    pub segment_bytes: u64,
    /// PostgreSQL store: connection pool size.
    pub pg_connections: u32,
    /// Where checkpoint times come from: the system clock, or a `ManualClock` in tests.
    pub clock: Arc<dyn Clock>,
    /// Public keys, besides the log's own, whose batch seals and checkpoints
    /// are accepted when the log is opened: earlier log keys, and the other
    /// replicas' keys on a shared PostgreSQL log. A seal or checkpoint by any
    /// other key stops the open.
    pub trusted_keys: TrustedKeys,
    /// File store: one line written into the directory's lock file while this process
    /// holds it (say which process it is and how to reach it), so that a process refused
    /// the lock can tell its user what holds the log ([`crate::StoreError::Locked`]).
    pub lock_note: Option<String>,
}

impl Default for LogOptions {
    fn default() -> Self {
        Self {
            checkpoints: CheckpointPolicy::default(),
            max_batch: 2048,
            queue: 16_384,
            segment_bytes: DEFAULT_SEGMENT_BYTES,
            pg_connections: 4,
            clock: Arc::new(SystemClock),
            trusted_keys: TrustedKeys::new(),
            lock_note: None,
        }
    }
}

/// Counters of durable writes since the log was opened.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LogStats {
    /// Durable batches (one fsync or one commit each).
    pub batches: u64,
    /// Records acknowledged.
    pub records: u64,
}

/// Reads whichever store backs a log.
#[derive(Clone)]
pub enum StoreReader {
    File(FileReader),
    Postgres(PgReader),
}

impl LogReader for StoreReader {
    async fn len(&self) -> Result<u64, ReadError> {
        match self {
            Self::File(r) => r.len().await,
            Self::Postgres(r) => r.len().await,
        }
    }

    async fn read(&self, range: Range<u64>) -> Result<Vec<Vec<u8>>, ReadError> {
        match self {
            Self::File(r) => r.read(range).await,
            Self::Postgres(r) => r.read(range).await,
        }
    }

    async fn read_sealed(&self, range: Range<u64>) -> Result<SealedRecords, ReadError> {
        match self {
            Self::File(r) => r.read_sealed(range).await,
            Self::Postgres(r) => r.read_sealed(range).await,
        }
    }

    async fn last_seal(&self) -> Result<Option<SignedCheckpoint>, ReadError> {
        match self {
            Self::File(r) => r.last_seal().await,
            Self::Postgres(r) => r.last_seal().await,
        }
    }

    async fn checkpoints(&self) -> Result<Vec<SignedCheckpoint>, ReadError> {
        match self {
            Self::File(r) => r.checkpoints().await,
            Self::Postgres(r) => r.checkpoints().await,
        }
    }
}

/// Where a log's records are committed.
enum Commit {
    /// File store: the appenders lead the group commit.
    Led(Led),
    /// PostgreSQL: a writer task on the caller's runtime, fed by a bounded channel.
    Task {
        jobs: mpsc::Sender<Job>,
        task: tokio::task::JoinHandle<()>,
    },
}

/// The file store's group commit and the ticker that queues its checkpoints by time.
struct Led {
    leader: Arc<Leader>,
    ticker: Option<tokio::task::JoinHandle<()>>,
}

impl Led {
    /// Queues `control` (a close or a crash) and waits until it is done.
    async fn stop(mut self, control: Control) -> Result<(), AuditError> {
        if let Some(ticker) = self.ticker.take() {
            ticker.abort();
        }
        let leader = Arc::clone(&self.leader);
        leader
            .submit(leader::Job::Control(control))
            .await
            .map(drop)
            .map_err(|leader::Stopped| AuditError::WriterStopped)
    }
}

impl Drop for Led {
    /// A dropped log still writes its final checkpoint and releases the store: the
    /// close is queued to whoever leads (a no-op once the log was closed).
    fn drop(&mut self) {
        if let Some(ticker) = self.ticker.take() {
            ticker.abort();
        }
        self.leader.close_detached();
    }
}

/// A tamper-evident, durable-before-release audit log.
pub struct AuditLog {
    commit: Commit,
    shared: Arc<Shared>,
    reader: StoreReader,
    public_key: LogPublicKey,
    /// Built lazily on the first proof request, then caught up incrementally.
    proofs: Mutex<MerkleTree>,
}

impl AuditLog {
    /// Opens (or creates) the embedded file log in `dir`, running crash
    /// recovery first. One process per directory (it is locked). Refuses a
    /// log whose records are not all covered by a verified signature.
    pub async fn open_file(dir: impl AsRef<Path>, signer: LogSigner, options: LogOptions) -> Result<Self, AuditError> {
        let dir = dir.as_ref().to_owned();
        let segment_bytes = options.segment_bytes;
        let note = options.lock_note.clone();
        let store = tokio::task::spawn_blocking(move || FileStore::open_noted(&dir, segment_bytes, note.as_deref()))
            .await
            .map_err(|_| AuditError::WriterStopped)??;
        Self::start_file(store, signer, options).await
    }

    /// Checks an opened file store (every record covered by a verified signature) and
    /// starts its group commit.
    async fn start_file(store: FileStore, signer: LogSigner, options: LogOptions) -> Result<Self, AuditError> {
        let keys = open_keys(&signer, &options);
        let own = signer.key_id().clone();
        let open_keys = OpenKeys { keys: &keys, own: &own };
        open_check::check_file(&store.reader(), store.last_seal(), &open_keys).await?;
        let checkpointed = last_checkpoint_size(&store.reader()).await?;
        let reader = StoreReader::File(store.reader());
        Ok(Parts::prepare(reader, signer, &options, checkpointed).led(store, options.queue))
    }

    /// Opens a PostgreSQL log in `schema` (created and migrated if needed).
    /// Several gateways may open the same schema and append concurrently.
    /// Reads the whole log back once and refuses it unless every record is
    /// covered by a verified signature.
    pub async fn open_postgres(
        url: &str,
        schema: &str,
        signer: LogSigner,
        options: LogOptions,
    ) -> Result<Self, AuditError> {
        let mut store = PostgresStore::connect(url, schema, options.pg_connections).await?;
        let keys = open_keys(&signer, &options);
        let own = signer.key_id().clone();
        let open_keys = OpenKeys { keys: &keys, own: &own };
        let pg_reader = store.reader();
        open_check::check_postgres(&mut store, &pg_reader, &open_keys).await?;
        let checkpointed = store.checkpointed_size().await?;
        let reader = StoreReader::Postgres(store.reader());
        Ok(Parts::prepare(reader, signer, &options, checkpointed).task(store, options.queue))
    }

    /// Opens a file log whose writes fail on demand (see
    /// [`crate::store::faulty::FaultSwitch`]).
    #[cfg(any(test, feature = "fault-injection"))]
    pub async fn open_faulty(
        dir: impl AsRef<Path>,
        signer: LogSigner,
        options: LogOptions,
    ) -> Result<(Self, Arc<crate::store::faulty::FaultSwitch>), AuditError> {
        let dir = dir.as_ref().to_owned();
        let segment_bytes = options.segment_bytes;
        let (store, switch) =
            tokio::task::spawn_blocking(move || crate::store::faulty::open_faulty(&dir, segment_bytes))
                .await
                .map_err(|_| AuditError::WriterStopped)??;
        Ok((Self::start_file(store, signer, options).await?, switch))
    }

    /// Appends `record` and waits until it is durable. An `Err` means the
    /// record is NOT acknowledged and the call it describes must be denied.
    pub async fn append(&self, record: &AuditRecord) -> Result<DurableReceipt, AuditError> {
        let data = record.to_bytes()?;
        if data.len() > MAX_RECORD_BYTES {
            return Err(AuditError::TooLarge {
                len: data.len(),
                max: MAX_RECORD_BYTES,
            });
        }
        let leaf = leaf_hash(&data);
        let data = bytes::Bytes::from(data);
        let data_kept = data.clone();
        let entry = Entry { data, leaf };
        let reply = match &self.commit {
            Commit::Led(Led { leader, .. }) => match leader.submit(leader::Job::Append(entry)).await {
                Ok(Turn::Appended(reply)) => reply,
                _ => return Err(AuditError::WriterStopped),
            },
            Commit::Task { jobs, .. } => {
                let (reply, answer) = oneshot::channel();
                jobs.send(Job::Append { entry, reply })
                    .await
                    .map_err(|_| AuditError::WriterStopped)?;
                answer.await.map_err(|_| AuditError::WriterStopped)?
            }
        };
        match reply {
            Ok((index, batch)) => Ok(DurableReceipt::new(index, leaf, data_kept, batch)),
            Err(error) => Err(AuditError::Append(error)),
        }
    }

    /// False after a failed write (until a later write succeeds, for stores
    /// that can recover) or once the writer (its thread or task) has stopped.
    /// The gateway denies calls while it is false.
    pub fn healthy(&self) -> bool {
        let running = match &self.commit {
            Commit::Led(Led { leader, .. }) => leader.accepting(),
            Commit::Task { task, .. } => !task.is_finished(),
        };
        self.shared.healthy.load(Ordering::Acquire) && running
    }

    /// Signs and stores a checkpoint covering at least every record
    /// acknowledged before this call.
    pub async fn checkpoint_now(&self) -> Result<SignedCheckpoint, AuditError> {
        let reply = match &self.commit {
            Commit::Led(Led { leader, .. }) => match leader
                .submit(leader::Job::Control(Control::Checkpoint { always: true }))
                .await
            {
                Ok(Turn::Checkpointed(reply)) => reply,
                _ => return Err(AuditError::WriterStopped),
            },
            Commit::Task { jobs, .. } => {
                let (reply, answer) = oneshot::channel();
                jobs.send(Job::Checkpoint { reply })
                    .await
                    .map_err(|_| AuditError::WriterStopped)?;
                answer.await.map_err(|_| AuditError::WriterStopped)?
            }
        };
        reply.map_err(AuditError::Append)
    }

    /// Group-commit counters since open.
    pub fn stats(&self) -> LogStats {
        LogStats {
            batches: self.shared.batches.load(Ordering::Relaxed),
            records: self.shared.records.load(Ordering::Relaxed),
        }
    }

    /// Appends (and, for PostgreSQL, checkpoint requests) queued and not yet
    /// taken into a batch (the queue bounded by [`LogOptions::queue`]).
    pub fn queued(&self) -> usize {
        match &self.commit {
            Commit::Led(Led { leader, .. }) => leader.queued(),
            Commit::Task { jobs, .. } => jobs.max_capacity() - jobs.capacity(),
        }
    }

    /// The newest checkpoint this process wrote, if any.
    pub fn latest_checkpoint(&self) -> Option<SignedCheckpoint> {
        self.shared.latest.lock().ok().and_then(|c| c.clone())
    }

    /// The public half of the log key (for verifiers).
    pub fn public_key(&self) -> &LogPublicKey {
        &self.public_key
    }

    /// The read side, for [`crate::verify()`] and raw reads.
    pub fn reader(&self) -> &StoreReader {
        &self.reader
    }

    /// Number of acknowledged records.
    pub async fn len(&self) -> Result<u64, AuditError> {
        Ok(self.reader.len().await?)
    }

    /// True when no record has been acknowledged.
    pub async fn is_empty(&self) -> Result<bool, AuditError> {
        Ok(self.len().await? == 0)
    }

    /// The records in `range`, decoded.
    pub async fn read(&self, range: Range<u64>) -> Result<Vec<AuditRecord>, AuditError> {
        let raw = self.reader.read(range).await?;
        raw.iter().map(|data| Ok(AuditRecord::from_bytes(data)?)).collect()
    }

    /// Proof that record `index` is in the tree of `size` records.
    pub async fn prove_inclusion(&self, index: u64, size: u64) -> Result<InclusionProof, AuditError> {
        let tree = self.tree_up_to(size).await?;
        Ok(tree.inclusion_proof(index, size)?)
    }

    /// Proof that the tree of `old_size` records is a prefix of the tree of `new_size`.
    pub async fn prove_consistency(&self, old_size: u64, new_size: u64) -> Result<ConsistencyProof, AuditError> {
        let tree = self.tree_up_to(new_size).await?;
        Ok(tree.consistency_proof(old_size, new_size)?)
    }

    /// Stops accepting appends, lets the queued ones finish, writes a final
    /// checkpoint, and waits until the store is released (the file store's
    /// directory lock). Dropping the log does the same without waiting.
    pub async fn close(self) -> Result<(), AuditError> {
        self.stop(Control::Close).await
    }

    /// Stops the log the way `kill -9` would stop the process, once every
    /// append started before this call has been queued: appends not yet
    /// written are never acknowledged and no final checkpoint is written.
    /// Waits until the store is dropped (the directory lock released), so the
    /// test can tear the files and reopen. Crash tests only.
    #[cfg(any(test, feature = "fault-injection"))]
    pub async fn simulate_crash(self) -> Result<(), AuditError> {
        self.stop(Control::Crash).await
    }

    /// Ends the commit with `control` (a close or a crash) and waits until the store is gone.
    async fn stop(self, control: Control) -> Result<(), AuditError> {
        match self.commit {
            Commit::Led(led) => led.stop(control).await,
            Commit::Task { jobs, task } => {
                #[cfg(any(test, feature = "fault-injection"))]
                if matches!(control, Control::Crash) {
                    jobs.send(Job::Crash).await.map_err(|_| AuditError::WriterStopped)?;
                }
                // Closing the channel ends the writer after the queued jobs and the final checkpoint.
                drop((jobs, control));
                task.await.map_err(|_| AuditError::WriterStopped)
            }
        }
    }

    /// The proof tree caught up to at least `size` records (if they exist).
    async fn tree_up_to(&self, size: u64) -> Result<tokio::sync::MutexGuard<'_, MerkleTree>, AuditError> {
        let mut tree = self.proofs.lock().await;
        let len = self.reader.len().await?;
        let target = size.min(len);
        while tree.len() < target {
            let end = target.min(tree.len() + 4096);
            for data in self.reader.read(tree.len()..end).await? {
                tree.push(leaf_hash(&data));
            }
        }
        Ok(tree)
    }
}

/// A log whose group commit is about to start: what the handle keeps, and the
/// writer's configuration.
struct Parts {
    shared: Arc<Shared>,
    reader: StoreReader,
    public_key: LogPublicKey,
    config: WriterConfig,
}

impl Parts {
    fn prepare(reader: StoreReader, signer: LogSigner, options: &LogOptions, checkpointed: u64) -> Self {
        let shared = Arc::new(Shared {
            healthy: AtomicBool::new(true),
            batches: AtomicU64::new(0),
            records: AtomicU64::new(0),
            latest: Default::default(),
        });
        let public_key = signer.public_key();
        let config = WriterConfig {
            signer: CheckpointSigner::new(signer, Arc::clone(&options.clock)),
            policy: options.checkpoints,
            max_batch: options.max_batch.max(1),
            checkpointed,
        };
        Self {
            shared,
            reader,
            public_key,
            config,
        }
    }

    /// The file store's log: the appenders lead its group commit.
    fn led(self, store: FileStore, queue: usize) -> AuditLog {
        let leader = Leader::new(store, self.config, queue, Arc::clone(&self.shared));
        let ticker = leader.spawn_ticker();
        let commit = Commit::Led(Led { leader, ticker });
        Self::log(self.shared, self.reader, self.public_key, commit)
    }

    /// PostgreSQL's log: a writer task on the current runtime.
    fn task<S: AuditStore>(self, store: S, queue: usize) -> AuditLog {
        let (jobs, rx) = mpsc::channel(queue.max(1));
        let task = tokio::spawn(writer::run(store, rx, self.config, Arc::clone(&self.shared)));
        Self::log(self.shared, self.reader, self.public_key, Commit::Task { jobs, task })
    }

    fn log(shared: Arc<Shared>, reader: StoreReader, public_key: LogPublicKey, commit: Commit) -> AuditLog {
        AuditLog {
            commit,
            shared,
            reader,
            public_key,
            proofs: Mutex::new(MerkleTree::new()),
        }
    }
}

/// The keys the log accepts at open: its own and the configured others.
fn open_keys(signer: &LogSigner, options: &LogOptions) -> TrustedKeys {
    let mut keys = options.trusted_keys.clone();
    keys.insert(signer.public_key());
    keys
}

async fn last_checkpoint_size(reader: &FileReader) -> Result<u64, AuditError> {
    let checkpoints = reader.checkpoints().await?;
    Ok(checkpoints.iter().map(|c| c.checkpoint.size).max().unwrap_or(0))
}
