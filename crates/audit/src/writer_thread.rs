//! Where the group-commit writer ([`writer::run`]) runs, and the handle the
//! log keeps on it: between `AuditLog::append` handing a record over and the
//! store making the batch durable.
//!
//! - The file store's writer runs on an OS thread of its own
//!   ([`THREAD_NAME`]), driven by a `current_thread` tokio runtime with only
//!   the time driver (for the checkpoint ticker), and the store writes and
//!   fsyncs inline on that thread ([`OwnThreadStore::write_inline`]). A batch
//!   then costs one wake-up of that thread plus the appenders' replies; as a
//!   task on the gateway's runtime it also took a `spawn_blocking` hand-off to
//!   the blocking pool and a wake-up back to the task per batch (measured in
//!   docs/benchmarks.md, "Audit writer on its own thread (2026-12-05, fourth session)").
//!   Blocking that thread is the point: nothing else runs on it.
//! - The PostgreSQL store's writer stays a task on the caller's runtime: its
//!   I/O is network I/O that runtime drives, and it never blocks a thread.
//!
//! The writer ends when the log's job channel closes (the log was closed or
//! dropped), after the final checkpoint; the thread then drops the store
//! (releasing the directory lock) and its runtime, reports that it ended, and
//! returns.

use std::sync::Arc;

use tokio::sync::{mpsc, oneshot};

use crate::error::AuditError;
use crate::store::AuditStore;
use crate::store::file::FileStore;
use crate::writer::{self, Job, Shared, WriterConfig};

/// The name of the file store's writer thread (as `top -H` and debuggers show it).
pub(crate) const THREAD_NAME: &str = "portcullis-audit-writer";

/// A store whose blocking writes may run inline once it has a thread of its own.
pub(crate) trait OwnThreadStore: AuditStore {
    /// Called on the writer thread, before the writer starts: from now on the
    /// store may block the thread that drives it.
    fn write_inline(&mut self);
}

impl OwnThreadStore for FileStore {
    fn write_inline(&mut self) {
        FileStore::write_inline(self);
    }
}

#[cfg(any(test, feature = "fault-injection"))]
impl OwnThreadStore for crate::store::faulty::FaultyStore {
    fn write_inline(&mut self) {
        crate::store::faulty::FaultyStore::write_inline(self);
    }
}

/// The running writer, as the log sees it.
#[derive(Debug)]
pub(crate) enum Writer {
    /// A task on the caller's runtime (PostgreSQL).
    Task(tokio::task::JoinHandle<()>),
    /// A thread of its own (file store). `ended` resolves once the writer has
    /// finished and dropped the store and its runtime; it is closed without a
    /// value if the writer panicked.
    Thread {
        thread: std::thread::JoinHandle<()>,
        ended: oneshot::Receiver<()>,
    },
}

impl Writer {
    /// Starts the writer as a task on the current runtime.
    pub(crate) fn spawn_task<S: AuditStore>(
        store: S,
        jobs: mpsc::Receiver<Job>,
        config: WriterConfig,
        shared: Arc<Shared>,
    ) -> Self {
        Self::Task(tokio::spawn(writer::run(store, jobs, config, shared)))
    }

    /// Starts the writer on a thread of its own, and waits until its runtime
    /// is up. On failure the store is dropped (its lock released).
    pub(crate) async fn spawn_thread<S: OwnThreadStore>(
        mut store: S,
        jobs: mpsc::Receiver<Job>,
        config: WriterConfig,
        shared: Arc<Shared>,
    ) -> Result<Self, AuditError> {
        let (started_tx, started) = oneshot::channel();
        let (ended_tx, ended) = oneshot::channel();
        let thread = std::thread::Builder::new()
            .name(THREAD_NAME.to_owned())
            .spawn(move || {
                let runtime = match tokio::runtime::Builder::new_current_thread().enable_time().build() {
                    Ok(runtime) => runtime,
                    Err(error) => {
                        let _ = started_tx.send(Err(error));
                        return;
                    }
                };
                let _ = started_tx.send(Ok(()));
                store.write_inline();
                runtime.block_on(writer::run(store, jobs, config, shared));
                drop(runtime);
                let _ = ended_tx.send(());
            })
            .map_err(AuditError::WriterThread)?;
        match started.await {
            Ok(Ok(())) => Ok(Self::Thread { thread, ended }),
            Ok(Err(error)) => Err(AuditError::WriterThread(error)),
            Err(_) => Err(AuditError::WriterStopped),
        }
    }

    /// True once the writer has stopped (its channel closed, or it panicked).
    pub(crate) fn is_finished(&self) -> bool {
        match self {
            Self::Task(task) => task.is_finished(),
            Self::Thread { thread, .. } => thread.is_finished(),
        }
    }

    /// Waits until the writer has finished (the final checkpoint written, the
    /// store dropped). Call after closing the job channel.
    pub(crate) async fn join(self) -> Result<(), AuditError> {
        match self {
            Self::Task(task) => task.await.map_err(|_| AuditError::WriterStopped),
            // The thread only returns after `ended`; it is not joined, so this
            // never blocks the caller's runtime.
            Self::Thread { ended, .. } => ended.await.map_err(|_| AuditError::WriterStopped),
        }
    }
}
