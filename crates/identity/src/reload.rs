//! Hot reload of TLS material from files, so minute-TTL SVIDs and rotated trust bundles
//! take effect without a restart (T16).
//!
//! A [`Reloadable`] holds the last good value built from a set of files. Handshakes read it
//! through [`Reloadable::current`], which (with [`Reload::Poll`]) stats the files at most
//! once per interval and rebuilds the value when any changed. [`Reloadable::reload`] forces
//! a rebuild, for a file watcher. A failed rebuild keeps the old value and logs an error.
use std::path::PathBuf;
use std::sync::{Arc, Mutex, PoisonError, RwLock};
use std::time::{Duration, Instant};

use crate::material::{FileStamp, TlsError};

/// When file-backed TLS material is re-read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reload {
    /// Only when the owner calls `reload()` (for example from a file watcher).
    OnDemand,
    /// On a handshake, when at least this long has passed since the files were last
    /// checked and their size, mtime or inode changed. `Duration::ZERO` checks every time.
    Poll(Duration),
}

type Loader<T> = Box<dyn Fn() -> Result<T, TlsError> + Send + Sync>;

struct Watch {
    /// Stamps of the files when last attempted (success or failure), so a broken file is
    /// reported once per change rather than on every handshake.
    stamps: Vec<Option<FileStamp>>,
    checked_at: Instant,
}

pub(crate) struct Reloadable<T> {
    what: &'static str,
    paths: Vec<PathBuf>,
    load: Loader<T>,
    mode: Reload,
    value: RwLock<Arc<T>>,
    watch: Mutex<Watch>,
}

impl<T> std::fmt::Debug for Reloadable<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Reloadable")
            .field("what", &self.what)
            .field("paths", &self.paths)
            .field("mode", &self.mode)
            .finish_non_exhaustive()
    }
}

impl<T> Reloadable<T> {
    /// Loads the initial value; unlike a reload, failure here is an error (fail closed).
    pub(crate) fn new(
        what: &'static str,
        paths: Vec<PathBuf>,
        mode: Reload,
        load: impl Fn() -> Result<T, TlsError> + Send + Sync + 'static,
    ) -> Result<Self, TlsError> {
        let stamps = stamps(&paths);
        let value = load()?;
        Ok(Self {
            what,
            paths,
            load: Box::new(load),
            mode,
            value: RwLock::new(Arc::new(value)),
            watch: Mutex::new(Watch {
                stamps,
                checked_at: Instant::now(),
            }),
        })
    }

    /// The current value, after a poll for changed files if one is due.
    pub(crate) fn current(&self) -> Arc<T> {
        if let Reload::Poll(interval) = self.mode {
            self.poll(interval);
        }
        self.value.read().unwrap_or_else(PoisonError::into_inner).clone()
    }

    /// Rebuilds from the files now, whether or not they changed. On failure the previous
    /// value stays in force and the error is both logged and returned.
    pub(crate) fn reload(&self) -> Result<(), TlsError> {
        let mut watch = self.watch.lock().unwrap_or_else(PoisonError::into_inner);
        watch.stamps = stamps(&self.paths);
        watch.checked_at = Instant::now();
        self.rebuild()
    }

    fn poll(&self, interval: Duration) {
        // A handshake never waits for another handshake's reload: if one is checking, the
        // current value is good enough for this connection.
        let Ok(mut watch) = self.watch.try_lock() else {
            return;
        };
        if !interval.is_zero() && watch.checked_at.elapsed() < interval {
            return;
        }
        watch.checked_at = Instant::now();
        let now = stamps(&self.paths);
        if now == watch.stamps {
            return;
        }
        watch.stamps = now;
        // The error has been logged by rebuild; the old value stays.
        let _ = self.rebuild();
    }

    fn rebuild(&self) -> Result<(), TlsError> {
        match (self.load)() {
            Ok(value) => {
                *self.value.write().unwrap_or_else(PoisonError::into_inner) = Arc::new(value);
                tracing::info!(what = self.what, paths = ?self.paths, "reloaded TLS material");
                Ok(())
            }
            Err(error) => {
                tracing::error!(
                    what = self.what,
                    paths = ?self.paths,
                    %error,
                    "reload of TLS material FAILED; still serving the previous material, fix the files"
                );
                Err(error)
            }
        }
    }
}

fn stamps(paths: &[PathBuf]) -> Vec<Option<FileStamp>> {
    paths.iter().map(|p| FileStamp::of(p)).collect()
}
