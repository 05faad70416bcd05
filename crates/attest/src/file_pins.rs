//! Pins of the files an interpreter-launched server runs (T19): the script, its lockfile,
//! its package directory. The executable pin of a manifest covers `python3` or `node`
//! only; a backdoored `server.py` would still start. The `classify` stage checks these pins
//! immediately before every spawn of the server (and every re-spawn), and a mismatch or a
//! missing file refuses to start it.
//!
//! # Digests
//!
//! A digest is written `sha256:<64 lowercase hex>`.
//!
//! - A **file**'s digest is the SHA-256 of its bytes (what `sha256sum FILE` prints).
//! - A **directory**'s digest is the SHA-256 of a listing of everything under it, in byte
//!   order of the relative paths (`/`-separated), each entry one record:
//!   `<kind> <path length>:<path> <payload length>:<payload>\n`, where kind is `d`
//!   (directory, empty payload), `f` (regular file, payload the hex SHA-256 of its bytes) or
//!   `l` (symbolic link, payload the link's target text), after the header line
//!   `portcullis-tree-v1\n`. Renaming, adding, removing or changing any file, directory or
//!   link under it changes the digest; timestamps, owners and permissions do not.
//! - **Symbolic links inside a directory are hashed as links** (their target text) and never
//!   followed: the digest depends only on what is under the directory, and a link cycle
//!   cannot loop. What a link points to outside the directory is therefore not covered: pin
//!   that target separately. The pinned path itself is followed if it is a link (it is what
//!   the interpreter opens).
//! - Anything else under a directory (a FIFO, socket or device) is refused: its content
//!   cannot be pinned.
//!
//! Hash-then-spawn leaves a short window in which a file can be replaced, as with the
//! executable pin; the pins stop a script changed at rest, not a racing local attacker.
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::fs::Metadata;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use crate::manifest::{ManifestError, file_sha256};

const PREFIX: &str = "sha256:";
const TREE_HEADER: &str = "portcullis-tree-v1\n";

/// Why a file could not be pinned, or no longer matches its pin.
#[derive(Debug, thiserror::Error)]
pub enum FilePinError {
    #[error("`{digest}` is not a digest; write `sha256:` followed by 64 lowercase hex digits")]
    BadDigest { digest: String },
    #[error("pinned file `{shown}` ({path}) cannot be read: {source}; restore it, or pin the server's files again")]
    Unreadable {
        shown: String,
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(
        "pinned directory `{shown}` holds `{entry}`, which is neither a file, a directory nor a symbolic link; \
         remove it or pin a narrower path"
    )]
    Unsupported { shown: String, entry: String },
    #[error(
        "pinned file `{shown}` ({path}) has {actual}, not the pinned {pinned}; refusing to start a server whose \
         code changed. If the change is legitimate, compute the new pins (`portcullis manifest pin-files`) and \
         update `pinned_files`"
    )]
    Mismatch {
        shown: String,
        path: PathBuf,
        pinned: String,
        actual: String,
    },
}

/// One pinned path: as the operator wrote it (for messages), where it is, and its digest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FilePin {
    /// The path as written in the config (relative or absolute).
    pub shown: String,
    /// The resolved path the digest is computed over.
    pub path: PathBuf,
    /// `sha256:<64 hex>`.
    pub digest: String,
}

impl FilePin {
    /// A pin, once `digest` has the `sha256:<64 lowercase hex>` form.
    pub fn new(shown: impl Into<String>, path: PathBuf, digest: &str) -> Result<Self, FilePinError> {
        let hex = digest.strip_prefix(PREFIX).unwrap_or_default();
        let well_formed = hex.len() == 64 && hex.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'));
        if !well_formed {
            return Err(FilePinError::BadDigest {
                digest: digest.to_owned(),
            });
        }
        Ok(Self {
            shown: shown.into(),
            path,
            digest: digest.to_owned(),
        })
    }

    /// Hashes the path now and compares it with the pin.
    pub fn check(&self) -> Result<(), FilePinError> {
        let actual = path_digest(&self.shown, &self.path)?;
        if actual != self.digest {
            return Err(FilePinError::Mismatch {
                shown: self.shown.clone(),
                path: self.path.clone(),
                pinned: self.digest.clone(),
                actual,
            });
        }
        Ok(())
    }
}

/// The files a server's start depends on beyond its executable, by their configured path.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FilePins {
    pins: BTreeMap<String, FilePin>,
}

impl FilePins {
    pub fn new(pins: impl IntoIterator<Item = FilePin>) -> Self {
        Self {
            pins: pins.into_iter().map(|pin| (pin.shown.clone(), pin)).collect(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.pins.is_empty()
    }

    pub fn iter(&self) -> impl Iterator<Item = &FilePin> {
        self.pins.values()
    }

    /// Checks every pin, in path order; the first mismatch or unreadable file is the error.
    pub fn check(&self) -> Result<(), FilePinError> {
        self.pins.values().try_for_each(FilePin::check)
    }
}

/// The digest of the file or directory at `path` (see the module docs); `shown` names it in
/// errors.
pub fn path_digest(shown: &str, path: &Path) -> Result<String, FilePinError> {
    let unreadable = |source| FilePinError::Unreadable {
        shown: shown.to_owned(),
        path: path.to_path_buf(),
        source,
    };
    let meta = std::fs::metadata(path).map_err(unreadable)?;
    if meta.is_dir() {
        return tree_digest(shown, path);
    }
    if !meta.is_file() {
        return Err(FilePinError::Unsupported {
            shown: shown.to_owned(),
            entry: ".".to_owned(),
        });
    }
    Ok(format!("{PREFIX}{}", file_hex(shown, path)?))
}

fn file_hex(shown: &str, path: &Path) -> Result<String, FilePinError> {
    file_sha256(path).map_err(|e| match e {
        ManifestError::Io { source, .. } => FilePinError::Unreadable {
            shown: shown.to_owned(),
            path: path.to_path_buf(),
            source,
        },
        other => FilePinError::Unreadable {
            shown: shown.to_owned(),
            path: path.to_path_buf(),
            source: std::io::Error::other(other.to_string()),
        },
    })
}

/// The directory digest: every entry under `root`, sorted by relative path, one record each.
fn tree_digest(shown: &str, root: &Path) -> Result<String, FilePinError> {
    let mut entries: BTreeMap<Vec<u8>, (Metadata, PathBuf)> = BTreeMap::new();
    let mut pending = vec![root.to_path_buf()];
    while let Some(dir) = pending.pop() {
        let unreadable = |source| FilePinError::Unreadable {
            shown: shown.to_owned(),
            path: dir.clone(),
            source,
        };
        for entry in std::fs::read_dir(&dir).map_err(unreadable)? {
            let entry = entry.map_err(unreadable)?;
            let path = entry.path();
            // `symlink_metadata`: a link is recorded as a link, never followed.
            let meta = std::fs::symlink_metadata(&path).map_err(|source| FilePinError::Unreadable {
                shown: shown.to_owned(),
                path: path.clone(),
                source,
            })?;
            if meta.is_dir() {
                pending.push(path.clone());
            }
            entries.insert(relative_bytes(root, &path), (meta, path));
        }
    }
    let mut listing = Sha256::new();
    listing.update(TREE_HEADER.as_bytes());
    for (relative, (meta, path)) in &entries {
        let (kind, payload) = if meta.is_dir() {
            ('d', Vec::new())
        } else if meta.is_symlink() {
            let target = std::fs::read_link(path).map_err(|source| FilePinError::Unreadable {
                shown: shown.to_owned(),
                path: path.clone(),
                source,
            })?;
            ('l', os_bytes(target.as_os_str()))
        } else if meta.is_file() {
            ('f', file_hex(shown, path)?.into_bytes())
        } else {
            return Err(FilePinError::Unsupported {
                shown: shown.to_owned(),
                entry: String::from_utf8_lossy(relative).into_owned(),
            });
        };
        let mut head = String::new();
        let _ = write!(head, "{kind} {}:", relative.len());
        listing.update(head.as_bytes());
        listing.update(relative);
        listing.update(format!(" {}:", payload.len()).as_bytes());
        listing.update(&payload);
        listing.update(b"\n");
    }
    Ok(format!("{PREFIX}{}", hex::encode(listing.finalize())))
}

/// `path` relative to `root`, components joined by `/`, as bytes.
fn relative_bytes(root: &Path, path: &Path) -> Vec<u8> {
    let relative = path.strip_prefix(root).unwrap_or(path);
    let mut out = Vec::new();
    for (i, part) in relative.components().enumerate() {
        if i > 0 {
            out.push(b'/');
        }
        out.extend(os_bytes(part.as_os_str()));
    }
    out
}

#[cfg(unix)]
fn os_bytes(s: &std::ffi::OsStr) -> Vec<u8> {
    std::os::unix::ffi::OsStrExt::as_bytes(s).to_vec()
}

#[cfg(not(unix))]
fn os_bytes(s: &std::ffi::OsStr) -> Vec<u8> {
    s.to_string_lossy().into_owned().into_bytes()
}

#[cfg(test)]
#[path = "file_pins_tests.rs"]
mod tests;
