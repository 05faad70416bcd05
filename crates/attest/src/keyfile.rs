//! Reading Ed25519 key files in the audit log's format, so one operator tool and one file
//! layout serve checkpoint, receipt, manifest and host keys.
//!
//! The format is the one `crates/audit/src/keys.rs` writes (`LogSigner::save`,
//! `LogPublicKey::save`): `name=value` lines, `#` comments, standard base64 (with padding).
//!
//! ```text
//! # portcullis audit log key (ed25519). Keep secret.
//! key_id=1f2e3d4c5b6a7988
//! private=<base64 of the 32-byte seed>      (private file, mode 0600)
//! public=<base64 of the 32-byte public key> (public file)
//! ```
//!
//! `key_id`, when present, must equal the derived id ([`crate::key_id`]); the returned id is
//! always the derived one. Writing key files stays with the audit crate and the CLI; this
//! module only reads what the caller (the CLI, which owns config and file paths) points it at.
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use ed25519_dalek::{SigningKey, VerifyingKey};

use crate::keys::key_id;

/// Why a key file could not be read. Never contains key material.
#[derive(Debug, thiserror::Error)]
pub enum KeyFileError {
    #[error("cannot read key file `{path}`: {source}")]
    Io { path: PathBuf, source: std::io::Error },
    #[error("key file `{path}` is malformed: {problem}; regenerate it or restore it from backup")]
    Malformed { path: PathBuf, problem: &'static str },
    #[error("key file `{path}` says key id `{stated}` but its key has id `{actual}`; the file was edited or mixed up")]
    KeyIdMismatch {
        path: PathBuf,
        stated: String,
        actual: String,
    },
    #[error("private key file `{path}` is readable by group or others (mode {mode:o}); run `chmod 600` on it")]
    TooOpen { path: PathBuf, mode: u32 },
    #[error("key file `{path}` holds a small-order (weak) public key; generate a new key")]
    Weak { path: PathBuf },
}

/// Reads a private key file; returns the derived key id and the key.
pub fn load_signing_key(path: &Path) -> Result<(String, SigningKey), KeyFileError> {
    check_private_mode(path)?;
    let fields = read_fields(path)?;
    let key = SigningKey::from_bytes(&decode_32(path, fields.get("private"))?);
    let kid = key_id(&key.verifying_key());
    check_stated_id(path, fields.get("key_id"), &kid)?;
    Ok((kid, key))
}

/// Reads a public key file; returns the derived key id and the key. Weak keys are refused.
pub fn load_verifying_key(path: &Path) -> Result<(String, VerifyingKey), KeyFileError> {
    let fields = read_fields(path)?;
    let key =
        VerifyingKey::from_bytes(&decode_32(path, fields.get("public"))?).map_err(|_| KeyFileError::Malformed {
            path: path.to_owned(),
            problem: "`public` is not a valid Ed25519 public key",
        })?;
    if key.is_weak() {
        return Err(KeyFileError::Weak { path: path.to_owned() });
    }
    let kid = key_id(&key);
    check_stated_id(path, fields.get("key_id"), &kid)?;
    Ok((kid, key))
}

#[cfg(unix)]
fn check_private_mode(path: &Path) -> Result<(), KeyFileError> {
    use std::os::unix::fs::PermissionsExt;
    let meta = std::fs::metadata(path).map_err(|source| KeyFileError::Io {
        path: path.to_owned(),
        source,
    })?;
    let mode = meta.permissions().mode() & 0o777;
    if mode & 0o077 != 0 {
        return Err(KeyFileError::TooOpen {
            path: path.to_owned(),
            mode,
        });
    }
    Ok(())
}

#[cfg(not(unix))]
fn check_private_mode(_path: &Path) -> Result<(), KeyFileError> {
    Ok(())
}

fn read_fields(path: &Path) -> Result<BTreeMap<String, String>, KeyFileError> {
    let text = std::fs::read_to_string(path).map_err(|source| KeyFileError::Io {
        path: path.to_owned(),
        source,
    })?;
    let mut fields = BTreeMap::new();
    for line in text.lines().map(str::trim) {
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let Some((name, value)) = line.split_once('=') else {
            return Err(KeyFileError::Malformed {
                path: path.to_owned(),
                problem: "a line is not `name=value`",
            });
        };
        fields.insert(name.trim().to_owned(), value.trim().to_owned());
    }
    Ok(fields)
}

fn decode_32(path: &Path, value: Option<&String>) -> Result<[u8; 32], KeyFileError> {
    let malformed = |problem| KeyFileError::Malformed {
        path: path.to_owned(),
        problem,
    };
    let value = value.ok_or(malformed("the key line is missing"))?;
    let bytes = B64.decode(value).map_err(|_| malformed("the key is not base64"))?;
    <[u8; 32]>::try_from(bytes.as_slice()).map_err(|_| malformed("the key is not 32 bytes"))
}

fn check_stated_id(path: &Path, stated: Option<&String>, actual: &str) -> Result<(), KeyFileError> {
    match stated {
        Some(stated) if stated != actual => Err(KeyFileError::KeyIdMismatch {
            path: path.to_owned(),
            stated: stated.clone(),
            actual: actual.to_owned(),
        }),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Writes `body` to `name` in `dir` with `mode`, as the audit crate's `save` would.
    fn write(dir: &Path, name: &str, body: &str, mode: u32) -> PathBuf {
        let path = dir.join(name);
        std::fs::write(&path, body).unwrap();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).unwrap();
        }
        path
    }

    #[test]
    fn reads_files_in_the_audit_key_format() {
        let dir = tempfile::tempdir().unwrap();
        let key = SigningKey::from_bytes(&[11; 32]);
        let kid = key_id(&key.verifying_key());
        let private = write(
            dir.path(),
            "log.key",
            &format!(
                "# portcullis audit log key (ed25519). Keep secret.\nkey_id={kid}\nprivate={}\n",
                B64.encode(key.to_bytes())
            ),
            0o600,
        );
        let public = write(
            dir.path(),
            "log.pub",
            &format!(
                "# portcullis audit log public key (ed25519)\nkey_id={kid}\npublic={}\n",
                B64.encode(key.verifying_key().to_bytes())
            ),
            0o644,
        );
        let (got_kid, got_key) = load_signing_key(&private).unwrap();
        assert_eq!((got_kid.as_str(), got_key.to_bytes()), (kid.as_str(), key.to_bytes()));
        let (got_kid, got_key) = load_verifying_key(&public).unwrap();
        assert_eq!((got_kid, got_key), (kid, key.verifying_key()));
    }

    #[test]
    fn refuses_mismatched_ids_weak_keys_open_modes_and_garbage() {
        let dir = tempfile::tempdir().unwrap();
        let key = SigningKey::from_bytes(&[12; 32]);
        let public = B64.encode(key.verifying_key().to_bytes());
        let wrong_id = write(dir.path(), "a.pub", &format!("key_id=0000\npublic={public}\n"), 0o644);
        assert!(matches!(
            load_verifying_key(&wrong_id),
            Err(KeyFileError::KeyIdMismatch { .. })
        ));
        let mut identity = [0u8; 32];
        identity[0] = 1;
        let weak = write(
            dir.path(),
            "w.pub",
            &format!("public={}\n", B64.encode(identity)),
            0o644,
        );
        assert!(matches!(load_verifying_key(&weak), Err(KeyFileError::Weak { .. })));
        let short = write(dir.path(), "s.pub", "public=AAAA\n", 0o644);
        assert!(matches!(
            load_verifying_key(&short),
            Err(KeyFileError::Malformed { .. })
        ));
        let junk = write(dir.path(), "j.pub", "not a key file\n", 0o644);
        assert!(matches!(load_verifying_key(&junk), Err(KeyFileError::Malformed { .. })));
        let seed = B64.encode(key.to_bytes());
        let open = write(dir.path(), "o.key", &format!("private={seed}\n"), 0o644);
        #[cfg(unix)]
        {
            let e = load_signing_key(&open).unwrap_err();
            assert!(matches!(e, KeyFileError::TooOpen { .. }));
            assert!(!e.to_string().contains(&seed), "errors never show key material");
        }
        let missing = load_signing_key(&dir.path().join("missing"));
        assert!(matches!(missing, Err(KeyFileError::Io { .. })));
    }
}
