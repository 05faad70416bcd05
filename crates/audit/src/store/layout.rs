//! Directory layout of the embedded file store, shared by the writer, crash
//! recovery and the read-only reader:
//!
//! ```text
//! <dir>/lock                         advisory lock: one writer process per log
//! <dir>/log-00000000000000000000.seg records 0.., framed (see `frame`)
//! <dir>/log-00000000000000081920.seg next segment, named by its first index;
//!                                    the last one ends in a zero tail (`file`)
//! <dir>/checkpoints.ckp              signed checkpoints, framed JSON
//! ```

use std::fs::File;
use std::io;
use std::path::{Path, PathBuf};

use crate::error::StoreError;

pub(crate) const CHECKPOINT_FILE: &str = "checkpoints.ckp";
pub(crate) const LOCK_FILE: &str = "lock";
const SEGMENT_PREFIX: &str = "log-";
const SEGMENT_SUFFIX: &str = ".seg";

/// Path of the segment whose first record has index `first`.
pub(crate) fn segment_path(dir: &Path, first: u64) -> PathBuf {
    dir.join(format!("{SEGMENT_PREFIX}{first:020}{SEGMENT_SUFFIX}"))
}

/// Segment files in `dir`, sorted by first index.
pub(crate) fn list_segments(dir: &Path) -> io::Result<Vec<(u64, PathBuf)>> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let name = entry.file_name();
        let Some(name) = name.to_str() else { continue };
        let first = name
            .strip_prefix(SEGMENT_PREFIX)
            .and_then(|rest| rest.strip_suffix(SEGMENT_SUFFIX))
            .filter(|digits| digits.len() == 20)
            .and_then(|digits| digits.parse::<u64>().ok());
        if let Some(first) = first {
            out.push((first, entry.path()));
        }
    }
    out.sort();
    Ok(out)
}

/// Makes directory entries (new files, truncations) durable.
pub(crate) fn sync_dir(dir: &Path) -> Result<(), StoreError> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(io_error("syncing directory", dir))
}

/// Maps an `io::Error` into [`StoreError::Io`] with what was being done.
pub(crate) fn io_error(action: &'static str, path: &Path) -> impl FnOnce(io::Error) -> StoreError {
    let path = path.to_owned();
    move |source| StoreError::Io { action, path, source }
}
