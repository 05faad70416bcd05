//! The faulty store ([`open_faulty`]): a named fault-injection fake, the file store with a switch
//! that makes its next segment write fail the way disks fail (a torn write, a
//! failed fsync, a full disk), its next zero-fill ahead of the write
//! position find the disk full, or stall until released (a slow disk: appends
//! queue up behind it). Exists only in tests and with the `fault-injection`
//! feature; the release binary never has it.

use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;
use std::path::Path;
use std::sync::{Arc, Condvar, Mutex, PoisonError};

use super::file::FileStore;
use crate::error::StoreError;

/// A failure to inject into the next segment write.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fault {
    /// Half the batch reaches the file, then `write` fails (EIO).
    TornWrite,
    /// The whole batch is written but `fdatasync` fails.
    FailedSync,
    /// `write` fails with "no space left on device" before any byte lands.
    NoSpace,
    /// The next zero-fill ahead of the write position writes a few zeros,
    /// then fails with "no space left on device" (batch writes are not
    /// affected: this fault waits for a zero-fill).
    PrefillNoSpace,
}

/// Arms faults for a store opened with [`open_faulty`]; shared with the test.
#[derive(Debug, Default)]
pub struct FaultSwitch {
    next: Mutex<Option<Fault>>,
    stall: Mutex<Stall>,
    stall_changed: Condvar,
}

/// Where the one-shot stall of the next segment write stands.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
enum Stall {
    #[default]
    Off,
    /// The next segment write will wait for [`FaultSwitch::release`].
    Armed,
    /// A segment write is waiting for [`FaultSwitch::release`].
    Holding,
}

impl FaultSwitch {
    /// Makes the next segment write wait, before any byte is written, until
    /// [`FaultSwitch::release`] (one shot): the writer is held while appends
    /// queue up behind it.
    pub fn stall_next_write(&self) {
        *self.stall.lock().unwrap_or_else(PoisonError::into_inner) = Stall::Armed;
    }

    /// True while a segment write is held by [`FaultSwitch::stall_next_write`].
    pub fn is_stalled(&self) -> bool {
        *self.stall.lock().unwrap_or_else(PoisonError::into_inner) == Stall::Holding
    }

    /// Lets a held write go on (and disarms a stall not reached yet).
    pub fn release(&self) {
        *self.stall.lock().unwrap_or_else(PoisonError::into_inner) = Stall::Off;
        self.stall_changed.notify_all();
    }

    /// Holds the calling (writer) thread while a stall is armed, until released.
    fn hold_if_stalled(&self) {
        let mut stall = self.stall.lock().unwrap_or_else(PoisonError::into_inner);
        if *stall != Stall::Armed {
            return;
        }
        *stall = Stall::Holding;
        while *stall == Stall::Holding {
            stall = self.stall_changed.wait(stall).unwrap_or_else(PoisonError::into_inner);
        }
    }

    /// Makes the next segment write fail with `fault` (one shot).
    pub fn arm(&self, fault: Fault) {
        if let Ok(mut next) = self.next.lock() {
            *next = Some(fault);
        }
    }

    /// The fault armed and not yet used, if any.
    pub fn armed(&self) -> Option<Fault> {
        self.next.lock().ok().and_then(|next| *next)
    }

    /// Takes the armed fault if `wanted` says it is for this call.
    fn take(&self, wanted: impl Fn(Fault) -> bool) -> Option<Fault> {
        let mut next = self.next.lock().ok()?;
        next.take_if(|fault| wanted(*fault))
    }

    /// Called by the file store just before it writes `buf` at byte `at` and syncs.
    pub(crate) fn before_write(&self, file: &File, at: u64, buf: &[u8]) -> io::Result<()> {
        self.hold_if_stalled();
        match self.take(|f| f != Fault::PrefillNoSpace) {
            None | Some(Fault::PrefillNoSpace) => Ok(()),
            Some(Fault::TornWrite) => {
                file.write_all_at(&buf[..buf.len() / 2], at)?;
                Err(io::Error::other("injected fault: write failed after a partial write"))
            }
            Some(Fault::FailedSync) => {
                file.write_all_at(buf, at)?;
                Err(io::Error::other("injected fault: fdatasync failed (EIO)"))
            }
            Some(Fault::NoSpace) => Err(no_space()),
        }
    }

    /// Called by the file store just before it zero-fills `from..to`.
    pub(crate) fn before_prefill(&self, file: &File, from: u64, to: u64) -> io::Result<()> {
        match self.take(|f| f == Fault::PrefillNoSpace) {
            Some(_) => {
                // Some zeros land before the disk is full.
                let some = (to - from).min(4096) as usize;
                file.write_all_at(&vec![0u8; some], from)?;
                Err(no_space())
            }
            None => Ok(()),
        }
    }
}

fn no_space() -> io::Error {
    io::Error::new(io::ErrorKind::StorageFull, "injected fault: no space left on device")
}

/// The faulty store: opens a file log in `dir` (blocking) with its faults armed through the
/// returned [`FaultSwitch`].
pub fn open_faulty(dir: &Path, max_segment_bytes: u64) -> Result<(FileStore, Arc<FaultSwitch>), StoreError> {
    let mut store = FileStore::open(dir, max_segment_bytes)?;
    let switch = Arc::new(FaultSwitch::default());
    if let Some(inner) = store.inner_mut() {
        inner.faults = Some(Arc::clone(&switch));
    }
    Ok((store, switch))
}
