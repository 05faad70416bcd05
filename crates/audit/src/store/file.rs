//! The embedded store: segment files plus an append-only checkpoint file in
//! one directory (layout in `layout`, framing in `frame`).
//!
//! Durability: a batch is encoded into one buffer — its records, then its
//! seal (the tree head right after the batch, signed) — written with one
//! positioned write at the segment's logical end, then `fdatasync`ed; only
//! then is it acknowledged. So an acknowledged record is always followed on
//! disk by a durable seal, and recovery knows that records after the last
//! intact seal were never acknowledged. A batch of more than
//! [`frame::MAX_WRITE`] bytes of records is written as several sealed
//! batches, each synced before the next, so that a torn write never reaches
//! further than [`frame::TORN_REACH`] (what recovery relies on). New files
//! are fsynced and so is the directory. Any write or sync error poisons the
//! store: after a failed fsync the kernel may have dropped the dirty pages,
//! so the on-disk state is unknown until the next open runs crash recovery.
//! The log drives the store synchronously from the appender that leads the
//! group commit (`leader`: `FileStore::append_batch_now` and friends block
//! the calling thread); a store used on its own from async code
//! ([`AuditStore`]) runs its blocking I/O on tokio's blocking pool.
//!
//! Preallocation: a segment is zero-filled ahead of its write position — real
//! zero bytes written and synced once, [`PREFILL_BYTES`] at a time, not
//! `fallocate`, whose unwritten extents would still need a metadata update
//! on the first sync that writes into them. A batch then overwrites space
//! that already exists, so its `fdatasync` flushes data only and does not
//! also commit a new file size to the journal, as it must when every append
//! grows the file. The window is topped up in the blocking writer, before
//! the batch that would not fit (so one batch every 4 MiB waits for it:
//! about 5 ms on the development VM's disk when the machine is quiet), and
//! at open (a fresh log writes its first 4 MiB window at open, not a whole
//! 64 MiB segment, which took half a second there; docs/benchmarks.md,
//! "Preallocated segments"). The price is that every byte of the log is
//! written twice, zeros first: at high throughput (the append bench at
//! C=512) that costs more than the saved metadata commits give back, at
//! C=1..64 it is the other way round. The window never reaches past
//! `max_segment_bytes` unless a batch itself does: the logical size, not the
//! file size, decides rotation. When the window cannot be filled (a full
//! disk), the zeros written are given back and the segment is written
//! growing, as before, until the next segment or open; nothing fails.
//!
//! Rotation cuts the closed segment back to its last frame (its zero tail is
//! dropped and the cut synced before the next segment is created), so only
//! the last segment ever carries a zero tail, and closed segments read the
//! same to every version. Recovery and the readers treat a zero tail as the
//! clean end of a segment anywhere (see `frame` and `recovery`).

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use super::frame::{self, SEAL_FLAG};
use super::layout::{CHECKPOINT_FILE, LOCK_FILE, io_error, segment_path, sync_dir};
use super::recovery::{create_with_header, recover};
use super::{AuditStore, Committed, Entry, FileReader, TreeHead};
use crate::checkpoint::{CheckpointSigner, SignedCheckpoint};
use crate::error::StoreError;
use crate::merkle::tree::Frontier;

/// Default size after which a new segment file is started.
pub const DEFAULT_SEGMENT_BYTES: u64 = 64 * 1024 * 1024;
/// Zero bytes written ahead of the write position at a time (the window is
/// extended when the next batch would not fit in it).
pub const PREFILL_BYTES: u64 = 4 * 1024 * 1024;
/// Zeros to copy from when prefilling.
static ZEROS: [u8; 64 * 1024] = [0; 64 * 1024];

/// The file-backed [`AuditStore`]. Holds an exclusive lock on its directory.
pub struct FileStore {
    /// `None` while a blocking write is in flight, or after one was lost.
    inner: Option<Box<Inner>>,
    dir: PathBuf,
    durable: Arc<AtomicU64>,
    /// The last batch seal found at open.
    last_seal: Option<SignedCheckpoint>,
}

pub(crate) struct Inner {
    _lock: File,
    segment: File,
    segment_path: PathBuf,
    segment_first: u64,
    /// The logical end of the active segment: where its frames end and the
    /// next batch is written.
    segment_len: u64,
    /// The active segment's file length: the bytes from `segment_len` up to
    /// here are zero.
    prefilled: u64,
    /// Prefilling failed in this segment (a full disk): it is written growing.
    growing: bool,
    /// The active segment is a legacy one with records: seal nothing into it.
    segment_legacy: bool,
    max_segment_bytes: u64,
    checkpoints: File,
    checkpoint_path: PathBuf,
    checkpoint_count: u64,
    frontier: Frontier,
    poisoned: bool,
    buf: Vec<u8>,
    durable: Arc<AtomicU64>,
    dir: PathBuf,
    #[cfg(any(test, feature = "fault-injection"))]
    pub(crate) faults: Option<Arc<super::faulty::FaultSwitch>>,
}

impl FileStore {
    /// Opens (creating if needed) the log in `dir`, locks it and runs crash
    /// recovery. Blocking: call from a blocking context.
    pub fn open(dir: &Path, max_segment_bytes: u64) -> Result<Self, StoreError> {
        Self::open_noted(dir, max_segment_bytes, None)
    }

    /// [`FileStore::open`], and once the lock is held, `note` (one line saying which
    /// process holds it: see [`crate::LogOptions::lock_note`]) replaces the lock file's
    /// contents. A process refused the lock gets the holder's note in
    /// [`StoreError::Locked`].
    pub fn open_noted(dir: &Path, max_segment_bytes: u64, note: Option<&str>) -> Result<Self, StoreError> {
        std::fs::create_dir_all(dir).map_err(io_error("creating", dir))?;
        let lock_path = dir.join(LOCK_FILE);
        let mut lock = OpenOptions::new()
            .create(true)
            .truncate(false)
            .read(true)
            .write(true)
            .open(&lock_path)
            .map_err(io_error("opening", &lock_path))?;
        if lock.try_lock().is_err() {
            return Err(StoreError::Locked {
                dir: dir.to_owned(),
                holder: read_note(&mut lock),
            });
        }
        if let Some(note) = note {
            write_note(&mut lock, note).map_err(io_error("writing", &lock_path))?;
        }
        let recovered = recover(dir)?;
        let (segment_path, segment_first, segment_len) = recovered.active;
        let segment = open_segment(&segment_path)?;
        // Recovery checked that everything after `segment_len` is zero.
        let file_len = segment
            .metadata()
            .map_err(io_error("reading the length of", &segment_path))?
            .len();
        let checkpoint_path = dir.join(CHECKPOINT_FILE);
        let checkpoints = open_append(&checkpoint_path)?;
        let durable = Arc::new(AtomicU64::new(recovered.frontier.size()));
        let mut inner = Inner {
            _lock: lock,
            segment,
            segment_path,
            segment_first,
            segment_len,
            prefilled: file_len.max(segment_len),
            growing: false,
            segment_legacy: recovered.rotate_before_writing,
            max_segment_bytes,
            checkpoints,
            checkpoint_path,
            checkpoint_count: recovered.checkpoints,
            frontier: recovered.frontier,
            poisoned: false,
            buf: Vec::new(),
            durable: Arc::clone(&durable),
            dir: dir.to_owned(),
            #[cfg(any(test, feature = "fault-injection"))]
            faults: None,
        };
        // The first window, so that the first batch does not wait for it; a
        // segment the next batch leaves (legacy, or full) gets none.
        if !inner.segment_legacy && inner.segment_len < inner.max_segment_bytes {
            inner.make_room(1);
        }
        Ok(Self {
            inner: Some(Box::new(inner)),
            dir: dir.to_owned(),
            durable,
            last_seal: recovered.last_seal,
        })
    }

    /// The last batch seal in the log at open (its root matched the records).
    pub fn last_seal(&self) -> Option<&SignedCheckpoint> {
        self.last_seal.as_ref()
    }

    /// A reader over this log that sees exactly the acknowledged records.
    pub fn reader(&self) -> FileReader {
        FileReader::live(&self.dir, Arc::clone(&self.durable))
    }

    #[cfg(any(test, feature = "fault-injection"))]
    pub(crate) fn inner_mut(&mut self) -> Option<&mut Inner> {
        self.inner.as_deref_mut()
    }

    /// Appends `entries` and their seal, durably, blocking the calling thread
    /// (the write and fsync of [`AuditStore::append_batch`]).
    pub(crate) fn append_batch_now(
        &mut self,
        entries: &[Entry],
        signer: &CheckpointSigner,
    ) -> Result<Committed, StoreError> {
        let inner = self.inner.as_deref_mut().ok_or(StoreError::Poisoned)?;
        inner.guarded(|i| i.write_batch(entries, signer))
    }

    /// Stores a periodic checkpoint durably, blocking the calling thread.
    pub(crate) fn append_checkpoint_now(&mut self, checkpoint: &SignedCheckpoint) -> Result<(), StoreError> {
        let inner = self.inner.as_deref_mut().ok_or(StoreError::Poisoned)?;
        inner.guarded(|i| i.write_checkpoint(checkpoint))
    }

    /// The current tree head.
    pub(crate) fn head_now(&self) -> Result<TreeHead, StoreError> {
        let inner = self.inner.as_ref().ok_or(StoreError::Poisoned)?;
        Ok(TreeHead {
            size: inner.frontier.size(),
            root: inner.frontier.root(),
        })
    }

    /// Runs `op` on the state in tokio's blocking pool (the async [`AuditStore`]
    /// side, for a store driven from a runtime whose threads must not block).
    async fn blocking<T: Send + 'static>(
        &mut self,
        op: impl FnOnce(&mut Inner) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, StoreError> {
        let mut inner = self.inner.take().ok_or(StoreError::Poisoned)?;
        let joined = tokio::task::spawn_blocking(move || {
            let result = op(&mut inner);
            (inner, result)
        })
        .await;
        let (inner, result) = joined.map_err(|_| StoreError::Poisoned)?;
        self.inner = Some(inner);
        result
    }
}

impl AuditStore for FileStore {
    async fn append_batch(&mut self, entries: Vec<Entry>, signer: &CheckpointSigner) -> Result<Committed, StoreError> {
        let signer = signer.clone();
        self.blocking(move |inner| inner.guarded(|i| i.write_batch(&entries, &signer)))
            .await
    }

    async fn append_checkpoint(&mut self, checkpoint: SignedCheckpoint) -> Result<(), StoreError> {
        self.blocking(move |inner| inner.guarded(|i| i.write_checkpoint(&checkpoint)))
            .await
    }

    async fn head(&mut self) -> Result<TreeHead, StoreError> {
        self.head_now()
    }
}

impl Inner {
    /// Runs a write; any failure poisons the store for good.
    fn guarded<T>(&mut self, op: impl FnOnce(&mut Self) -> Result<T, StoreError>) -> Result<T, StoreError> {
        if self.poisoned {
            return Err(StoreError::Poisoned);
        }
        let result = op(self);
        if result.is_err() {
            self.poisoned = true;
        }
        result
    }

    /// Writes `entries` as one sealed batch, or as several when they hold
    /// more than [`frame::MAX_WRITE`] bytes (each sealed and synced before
    /// the next, so a torn write stays within [`frame::TORN_REACH`]).
    fn write_batch(&mut self, entries: &[Entry], signer: &CheckpointSigner) -> Result<Committed, StoreError> {
        let first_index = self.frontier.size();
        // A batch written in parts is proved by its last part's seal, which signs the tree
        // after all of it: the paths start from the tree before the first part.
        let before = self.frontier.clone();
        let mut rest = entries;
        loop {
            let (chunk, tail) = rest.split_at(chunk_len(rest));
            let (head, seal) = self.write_sealed(chunk, signer)?;
            rest = tail;
            if rest.is_empty() {
                return Ok(Committed {
                    first_index,
                    head,
                    seal,
                    before,
                });
            }
        }
    }

    /// Writes `entries` and their seal with one write and one sync.
    fn write_sealed(
        &mut self,
        entries: &[Entry],
        signer: &CheckpointSigner,
    ) -> Result<(TreeHead, SignedCheckpoint), StoreError> {
        let first = self.frontier.size();
        let full = self.segment_len >= self.max_segment_bytes;
        if (full || self.segment_legacy) && first > self.segment_first {
            self.rotate(first)?;
        }
        // The tree after the batch, signed before anything is written: the
        // seal goes into the same write and fsync as the records.
        let mut frontier = self.frontier.clone();
        for entry in entries {
            frontier.push(entry.leaf);
        }
        let head = TreeHead {
            size: frontier.size(),
            root: frontier.root(),
        };
        let seal = signer.sign(head.size, head.root);
        self.buf.clear();
        for (seq, entry) in (first..).zip(entries) {
            frame::encode(seq, &entry.data, &mut self.buf);
        }
        frame::encode(SEAL_FLAG | head.size, &seal.to_seal_bytes(), &mut self.buf);
        self.make_room(self.buf.len() as u64);
        let path = self.segment_path.clone();
        self.write_and_sync_segment().map_err(io_error("appending to", &path))?;
        self.segment_len += self.buf.len() as u64;
        self.prefilled = self.prefilled.max(self.segment_len);
        self.frontier = frontier;
        self.durable.store(head.size, Ordering::Release);
        Ok((head, seal))
    }

    /// Writes the batch in `buf` at the logical end of the segment (inside
    /// the zero-filled window, or growing the file when there is none), then
    /// syncs its data.
    fn write_and_sync_segment(&mut self) -> std::io::Result<()> {
        #[cfg(any(test, feature = "fault-injection"))]
        if let Some(faults) = &self.faults {
            faults.before_write(&self.segment, self.segment_len, &self.buf)?;
        }
        self.segment.write_all_at(&self.buf, self.segment_len)?;
        self.segment.sync_data()
    }

    /// Makes sure the next `n` bytes after the logical end are zero-filled
    /// and synced, extending the window by [`PREFILL_BYTES`] (but not past
    /// `max_segment_bytes`, unless the batch itself goes past it) when they
    /// are not. Never fails: when the zeros cannot be written (a full disk),
    /// they are given back and the segment is written growing from then on.
    fn make_room(&mut self, n: u64) {
        let needed = self.segment_len + n;
        if self.growing || needed <= self.prefilled {
            return;
        }
        let window = needed.saturating_add(PREFILL_BYTES).next_multiple_of(4096);
        let target = window.min(needed.max(self.max_segment_bytes));
        if let Err(error) = self.zero_fill(target) {
            tracing::warn!(
                file = %self.segment_path.display(),
                %error,
                "audit log: cannot zero-fill the segment ahead of its end; writing it growing instead \
                 (each sync then also commits the file size) until the next segment"
            );
            // Give back what was written; zeros left by a failed cut are harmless.
            let _ = self.segment.set_len(self.prefilled);
            self.growing = true;
        }
    }

    /// Writes zeros from the end of the window up to `target` and syncs them.
    fn zero_fill(&mut self, target: u64) -> std::io::Result<()> {
        #[cfg(any(test, feature = "fault-injection"))]
        if let Some(faults) = &self.faults {
            faults.before_prefill(&self.segment, self.prefilled, target)?;
        }
        let mut at = self.prefilled;
        while at < target {
            let n = (target - at).min(ZEROS.len() as u64) as usize;
            self.segment.write_all_at(&ZEROS[..n], at)?;
            at += n as u64;
        }
        self.segment.sync_data()?;
        self.prefilled = target;
        Ok(())
    }

    fn write_checkpoint(&mut self, checkpoint: &SignedCheckpoint) -> Result<(), StoreError> {
        self.buf.clear();
        frame::encode(self.checkpoint_count, &checkpoint.to_json(), &mut self.buf);
        let path = self.checkpoint_path.clone();
        self.checkpoints
            .write_all(&self.buf)
            .and_then(|()| self.checkpoints.sync_data())
            .map_err(io_error("appending to", &path))?;
        self.checkpoint_count += 1;
        Ok(())
    }

    /// Starts a new (sealed) segment whose first record will be `first`,
    /// after cutting the current one back to its last frame (its zero tail
    /// is dropped, durably, before the new segment exists).
    fn rotate(&mut self, first: u64) -> Result<(), StoreError> {
        if self.prefilled > self.segment_len {
            let old = self.segment_path.clone();
            self.segment
                .set_len(self.segment_len)
                .map_err(io_error("cutting the zero tail of", &old))?;
            self.segment.sync_all().map_err(io_error("syncing", &old))?;
        }
        let path = segment_path(&self.dir, first);
        create_with_header(&path, &frame::sealed_segment_header())?;
        sync_dir(&self.dir)?;
        self.segment = open_segment(&path)?;
        self.segment_path = path;
        self.segment_first = first;
        self.segment_len = frame::HEADER_LEN as u64;
        self.prefilled = self.segment_len;
        self.growing = false;
        self.segment_legacy = false;
        Ok(())
    }
}

/// How many of `entries` go into one write: records up to
/// [`frame::MAX_WRITE`] bytes of frames, and at least one.
fn chunk_len(entries: &[Entry]) -> usize {
    let mut bytes = 0;
    let mut count = 0;
    for entry in entries {
        let framed = entry.data.len() + frame::FRAME_OVERHEAD;
        if count > 0 && bytes + framed > frame::MAX_WRITE {
            break;
        }
        bytes += framed;
        count += 1;
    }
    count
}

/// Opens a segment for positioned writes (not append mode: the logical end
/// is not the end of the file).
fn open_segment(path: &Path) -> Result<File, StoreError> {
    OpenOptions::new()
        .read(true)
        .write(true)
        .open(path)
        .map_err(io_error("opening", path))
}

fn open_append(path: &Path) -> Result<File, StoreError> {
    OpenOptions::new()
        .append(true)
        .open(path)
        .map_err(io_error("opening", path))
}

/// Most bytes of a lock note read back (a note is one short line).
const MAX_NOTE: u64 = 4096;

/// The note in a lock file someone else holds: its first line, if any.
fn read_note(lock: &mut File) -> Option<String> {
    use std::io::Read as _;
    let mut text = String::new();
    lock.take(MAX_NOTE).read_to_string(&mut text).ok()?;
    let line = text.lines().next()?.trim();
    (!line.is_empty()).then(|| line.to_owned())
}

/// Replaces the lock file's contents with `note` (one line).
fn write_note(lock: &mut File, note: &str) -> std::io::Result<()> {
    use std::io::Seek as _;
    let line: String = note.chars().filter(|c| *c != '\n' && *c != '\r').collect();
    lock.set_len(0)?;
    lock.seek(std::io::SeekFrom::Start(0))?;
    lock.write_all(line.as_bytes())?;
    lock.write_all(b"\n")
}
