//! Atomic writes of PEM files for the dev CA: private keys 0600, certificates 0644.
//!
//! Rotation relies on these: the reloading TLS configs poll the same files, and a
//! write-then-rename never exposes a half-written certificate or key.
use std::fs;
use std::io::Write;
use std::path::Path;

use crate::dev_ca::DevCaError;

/// Writes a private key readable only by its owner.
pub(crate) fn write_private(path: &Path, contents: &[u8]) -> Result<(), DevCaError> {
    write_atomic(path, contents, 0o600)
}

/// Writes a certificate or bundle readable by everyone.
pub(crate) fn write_public(path: &Path, contents: &[u8]) -> Result<(), DevCaError> {
    write_atomic(path, contents, 0o644)
}

fn write_atomic(path: &Path, contents: &[u8], mode: u32) -> Result<(), DevCaError> {
    let io = |source| DevCaError::Io {
        path: path.to_path_buf(),
        source,
    };
    let mut tmp_name = path.as_os_str().to_owned();
    tmp_name.push(".tmp");
    let tmp = Path::new(&tmp_name);
    let mut options = fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, mode);
    #[cfg(not(unix))]
    let _ = mode;
    let mut file = options.open(tmp).map_err(io)?;
    // `mode` only applies when the file is created; enforce it on a leftover temp file too.
    #[cfg(unix)]
    fs::set_permissions(tmp, std::os::unix::fs::PermissionsExt::from_mode(mode)).map_err(io)?;
    file.write_all(contents).map_err(io)?;
    file.sync_all().map_err(io)?;
    drop(file);
    fs::rename(tmp, path).map_err(io)
}
