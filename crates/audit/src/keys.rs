//! The gateway's Ed25519 log key: [`LogSigner`] signs checkpoints,
//! [`LogPublicKey`] and [`TrustedKeys`] check them. Key id = first 8 bytes of
//! SHA-256(public key), hex (16 characters), carried in every checkpoint so
//! rotated keys keep verifying old checkpoints (docs/THREATS.md T20).
//!
//! Key files are small `name=value` text files:
//! ```text
//! # portcullis audit log key (ed25519)
//! key_id=1f2e3d4c5b6a7988
//! private=<base64 of the 32-byte seed>     (private file, mode 0600)
//! public=<base64 of the 32-byte public key>  (public file)
//! ```

use std::collections::BTreeMap;
use std::fmt;
use std::io::Write;
use std::path::{Path, PathBuf};

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use ed25519_dalek::{Signature, Signer, SigningKey, VerifyingKey};
use sha2::{Digest, Sha256};

/// First 8 bytes of SHA-256 of the public key, as 16 lowercase hex digits.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Debug)]
pub struct KeyId(String);

impl KeyId {
    fn of(key: &VerifyingKey) -> Self {
        Self(hex::encode(&Sha256::digest(key.as_bytes())[..8]))
    }

    /// Wraps a stored key id (used when reading checkpoints back).
    pub fn from_stored(text: &str) -> Self {
        Self(text.to_owned())
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for KeyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Why a key could not be created, loaded or saved.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("cannot read or write key file `{path}`: {source}")]
    Io { path: PathBuf, source: std::io::Error },
    #[error("key file `{path}` is malformed: {problem}; regenerate it or restore it from backup")]
    Malformed { path: PathBuf, problem: &'static str },
    #[error("key file `{path}` says key id `{stated}` but its key has id `{actual}`; the file was edited or mixed up")]
    KeyIdMismatch {
        path: PathBuf,
        stated: String,
        actual: KeyId,
    },
    #[error("private key file `{path}` is readable by group or others (mode {mode:o}); run `chmod 600` on it")]
    TooOpen { path: PathBuf, mode: u32 },
    #[error("the operating system's random number generator failed: {0}; retry, or check the entropy source")]
    Random(String),
}

/// The gateway's checkpoint signing key. `Debug` never prints the secret.
pub struct LogSigner {
    key: SigningKey,
    key_id: KeyId,
}

impl LogSigner {
    /// A fresh key from the operating system's random number generator.
    pub fn generate() -> Result<Self, KeyError> {
        let mut seed = [0u8; 32];
        getrandom::fill(&mut seed).map_err(|e| KeyError::Random(e.to_string()))?;
        Ok(Self::from_seed(seed))
    }

    /// A key from a 32-byte Ed25519 seed (deterministic; tests and imports).
    pub fn from_seed(seed: [u8; 32]) -> Self {
        let key = SigningKey::from_bytes(&seed);
        let key_id = KeyId::of(&key.verifying_key());
        Self { key, key_id }
    }

    pub fn key_id(&self) -> &KeyId {
        &self.key_id
    }

    /// The Ed25519 key itself, for the gateway's other signatures made with a key file of this
    /// format (result receipts). Never log or print it.
    pub fn signing_key(&self) -> &SigningKey {
        &self.key
    }

    pub fn public_key(&self) -> LogPublicKey {
        LogPublicKey::from_key(self.key.verifying_key())
    }

    pub(crate) fn sign(&self, message: &[u8]) -> Signature {
        self.key.sign(message)
    }

    /// Writes the private key file (created new, mode 0600, fsynced). Refuses
    /// to overwrite an existing file so a log key is never lost by accident.
    pub fn save(&self, path: &Path) -> Result<(), KeyError> {
        let body = format!(
            "# portcullis audit log key (ed25519). Keep secret.\nkey_id={}\nprivate={}\n",
            self.key_id,
            B64.encode(self.key.to_bytes())
        );
        write_new(path, body.as_bytes(), 0o600)
    }

    /// Reads a private key file written by [`LogSigner::save`].
    pub fn load(path: &Path) -> Result<Self, KeyError> {
        check_private_mode(path)?;
        let fields = read_fields(path)?;
        let seed = decode_32(path, fields.get("private"))?;
        let signer = Self::from_seed(seed);
        check_key_id(path, fields.get("key_id"), &signer.key_id)?;
        Ok(signer)
    }
}

impl fmt::Debug for LogSigner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "LogSigner {{ key_id: {}, private: <redacted> }}", self.key_id)
    }
}

/// A log public key with its key id.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LogPublicKey {
    key: VerifyingKey,
    key_id: KeyId,
}

impl LogPublicKey {
    fn from_key(key: VerifyingKey) -> Self {
        let key_id = KeyId::of(&key);
        Self { key, key_id }
    }

    /// Parses 32 raw public key bytes; `None` if they are not a valid point.
    pub fn from_bytes(bytes: &[u8; 32]) -> Option<Self> {
        VerifyingKey::from_bytes(bytes).ok().map(Self::from_key)
    }

    pub fn key_id(&self) -> &KeyId {
        &self.key_id
    }

    pub fn to_bytes(&self) -> [u8; 32] {
        self.key.to_bytes()
    }

    /// Strict Ed25519 verification (rejects non-canonical and small-order
    /// encodings).
    pub(crate) fn verify(&self, message: &[u8], signature: &[u8; 64]) -> bool {
        let sig = Signature::from_bytes(signature);
        self.key.verify_strict(message, &sig).is_ok()
    }

    /// Writes the public key file (created new, mode 0644).
    pub fn save(&self, path: &Path) -> Result<(), KeyError> {
        let body = format!(
            "# portcullis audit log public key (ed25519)\nkey_id={}\npublic={}\n",
            self.key_id,
            B64.encode(self.key.to_bytes())
        );
        write_new(path, body.as_bytes(), 0o644)
    }

    /// Reads a public key file written by [`LogPublicKey::save`].
    pub fn load(path: &Path) -> Result<Self, KeyError> {
        let fields = read_fields(path)?;
        let bytes = decode_32(path, fields.get("public"))?;
        let key = Self::from_bytes(&bytes).ok_or(KeyError::Malformed {
            path: path.to_owned(),
            problem: "`public` is not a valid Ed25519 public key",
        })?;
        check_key_id(path, fields.get("key_id"), &key.key_id)?;
        Ok(key)
    }
}

/// The public keys a verifier accepts, by key id.
#[derive(Clone, Debug, Default)]
pub struct TrustedKeys {
    keys: BTreeMap<KeyId, LogPublicKey>,
}

impl TrustedKeys {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn insert(&mut self, key: LogPublicKey) {
        self.keys.insert(key.key_id.clone(), key);
    }

    pub fn get(&self, key_id: &KeyId) -> Option<&LogPublicKey> {
        self.keys.get(key_id)
    }
}

impl FromIterator<LogPublicKey> for TrustedKeys {
    fn from_iter<I: IntoIterator<Item = LogPublicKey>>(iter: I) -> Self {
        let mut keys = Self::new();
        for key in iter {
            keys.insert(key);
        }
        keys
    }
}

fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> KeyError + '_ {
    move |source| KeyError::Io {
        path: path.to_owned(),
        source,
    }
}

fn write_new(path: &Path, body: &[u8], mode: u32) -> Result<(), KeyError> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, mode);
    #[cfg(not(unix))]
    let _ = mode;
    let mut file = options.open(path).map_err(io_err(path))?;
    file.write_all(body).map_err(io_err(path))?;
    file.sync_all().map_err(io_err(path))
}

#[cfg(unix)]
fn check_private_mode(path: &Path) -> Result<(), KeyError> {
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(path).map_err(io_err(path))?.permissions().mode() & 0o777;
    if mode & 0o077 != 0 {
        return Err(KeyError::TooOpen {
            path: path.to_owned(),
            mode,
        });
    }
    Ok(())
}

#[cfg(not(unix))]
fn check_private_mode(_path: &Path) -> Result<(), KeyError> {
    Ok(())
}

fn read_fields(path: &Path) -> Result<BTreeMap<String, String>, KeyError> {
    let text = std::fs::read_to_string(path).map_err(io_err(path))?;
    let mut fields = BTreeMap::new();
    for line in text.lines().map(str::trim) {
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let Some((name, value)) = line.split_once('=') else {
            return Err(KeyError::Malformed {
                path: path.to_owned(),
                problem: "a line is not `name=value`",
            });
        };
        fields.insert(name.trim().to_owned(), value.trim().to_owned());
    }
    Ok(fields)
}

fn decode_32(path: &Path, value: Option<&String>) -> Result<[u8; 32], KeyError> {
    let malformed = |problem| KeyError::Malformed {
        path: path.to_owned(),
        problem,
    };
    let value = value.ok_or(malformed("the key line is missing"))?;
    let bytes = B64.decode(value).map_err(|_| malformed("the key is not base64"))?;
    <[u8; 32]>::try_from(bytes.as_slice()).map_err(|_| malformed("the key is not 32 bytes"))
}

fn check_key_id(path: &Path, stated: Option<&String>, actual: &KeyId) -> Result<(), KeyError> {
    match stated {
        Some(stated) if stated != actual.as_str() => Err(KeyError::KeyIdMismatch {
            path: path.to_owned(),
            stated: stated.clone(),
            actual: actual.clone(),
        }),
        _ => Ok(()),
    }
}
