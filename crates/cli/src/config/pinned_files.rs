//! `pinned_files` of a `[[servers]]` entry: the files a stdio server runs beyond its
//! executable (an interpreter's script, lockfile, package directory), each with the digest
//! it must have (T19). Paths resolve against the server's `cwd` (where the interpreter finds
//! a relative script) or, without one, the config file's directory; absolute paths stay as
//! they are. Only the digests' form is checked here: the files are hashed right before every
//! start of the server (`portcullis_attest::file_pins`), so a file changed after loading is
//! still caught.
use std::path::{Path, PathBuf};

use portcullis_attest::{FilePin, FilePins};

use super::{
    problems::{Checked, Problems, every},
    raw::RawServer,
};

/// The directory `pinned_files` paths of a server resolve against: its working directory
/// when it has one (already resolved against the config's directory), else the config's.
pub fn pin_dir(cwd: Option<&Path>, config_dir: &Path) -> PathBuf {
    cwd.map_or_else(|| config_dir.to_path_buf(), Path::to_path_buf)
}

/// The validated pins of `raw`; an HTTP server may not have any.
pub fn pinned_files(raw: &RawServer, base: &Path, at: &impl Fn(&str) -> String, p: &mut Problems) -> Checked<FilePins> {
    if raw.pinned_files.is_empty() {
        return Ok(FilePins::default());
    }
    p.check(
        raw.command.is_some(),
        at("pinned_files"),
        "only stdio servers (`command`) start local files; an HTTP server is pinned by its SPIFFE ID",
    )?;
    let cwd = raw.cwd.as_ref().map(|d| base.join(d));
    let dir = pin_dir(cwd.as_deref(), base);
    let pins: Checked<Vec<FilePin>> = every(raw.pinned_files.iter().map(|(shown, digest)| {
        let key = at(&format!("pinned_files.\"{shown}\""));
        p.check(!shown.is_empty(), &key, "the path is empty; name a file or directory")?;
        p.take(&key, FilePin::new(shown.as_str(), dir.join(shown), digest))
    }));
    Ok(FilePins::new(pins?))
}
