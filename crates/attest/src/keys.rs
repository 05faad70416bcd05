//! Key ids and the set of trusted public keys by id.
//!
//! Every signature this crate makes or checks names its key id (`kid`), so a key can be
//! rotated without invalidating what was signed before: a verifier keeps the old public key in
//! its [`KeySet`] until it is revoked (removed), docs/THREATS.md T20.
//!
//! Key ids derived here use the audit log's rule (`crates/audit/src/keys.rs`): the first 8 bytes
//! of SHA-256 of the 32-byte public key, as 16 lowercase hex digits. The gateway's receipt and
//! the manifest keys can therefore be the same key files the audit log uses (`key_id=`,
//! `private=`, `public=`); loading them stays with the caller, which owns the files.
use std::collections::BTreeMap;

use ed25519_dalek::VerifyingKey;
use sha2::{Digest, Sha256};

/// The derived key id of `key`: first 8 bytes of SHA-256(public key), lowercase hex.
pub fn key_id(key: &VerifyingKey) -> String {
    hex::encode(&Sha256::digest(key.as_bytes())[..8])
}

/// Why a key was not accepted into a key set.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyError {
    #[error("key `{kid}` is a small-order (weak) Ed25519 key that verifies forged signatures; generate a new key")]
    Weak { kid: String },
    #[error("key id `{kid}` is already registered with a different key; pick a distinct key id")]
    Conflict { kid: String },
    #[error("key id `{kid}` is empty or longer than 128 characters, or has characters outside [A-Za-z0-9._:-]")]
    BadKeyId { kid: String },
}

/// Checks a key id's shape: 1–128 characters from `[A-Za-z0-9._:-]`.
pub(crate) fn check_kid(kid: &str) -> Result<(), KeyError> {
    let ok = (1..=128).contains(&kid.len())
        && kid
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b':' | b'-'));
    if ok {
        Ok(())
    } else {
        Err(KeyError::BadKeyId {
            kid: kid.chars().take(128).collect(),
        })
    }
}

/// Checks that `key` is not of small order (such a key "verifies" forged signatures).
pub(crate) fn check_not_weak(kid: &str, key: &VerifyingKey) -> Result<(), KeyError> {
    if key.is_weak() {
        return Err(KeyError::Weak { kid: kid.to_owned() });
    }
    Ok(())
}

/// Trusted Ed25519 public keys by key id (gateway receipt keys, manifest signing keys).
#[derive(Clone, Debug, Default)]
pub struct KeySet {
    keys: BTreeMap<String, VerifyingKey>,
}

impl KeySet {
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds `key` under `kid`. Refuses weak keys and a second, different key for one id;
    /// re-adding the same key is a no-op.
    pub fn insert(&mut self, kid: &str, key: VerifyingKey) -> Result<(), KeyError> {
        check_kid(kid)?;
        check_not_weak(kid, &key)?;
        match self.keys.get(kid) {
            Some(existing) if *existing != key => Err(KeyError::Conflict { kid: kid.to_owned() }),
            _ => {
                self.keys.insert(kid.to_owned(), key);
                Ok(())
            }
        }
    }

    /// Adds `key` under its derived id ([`key_id`]) and returns the id.
    pub fn insert_derived(&mut self, key: VerifyingKey) -> Result<String, KeyError> {
        let kid = key_id(&key);
        self.insert(&kid, key)?;
        Ok(kid)
    }

    /// Revokes a key: signatures under `kid` no longer verify. Returns whether it was present.
    pub fn revoke(&mut self, kid: &str) -> bool {
        self.keys.remove(kid).is_some()
    }

    pub fn get(&self, kid: &str) -> Option<&VerifyingKey> {
        self.keys.get(kid)
    }

    pub fn len(&self) -> usize {
        self.keys.len()
    }

    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ed25519_dalek::SigningKey;

    fn key(seed: u8) -> VerifyingKey {
        SigningKey::from_bytes(&[seed; 32]).verifying_key()
    }

    #[test]
    fn derived_id_is_sixteen_hex_digits_of_the_key_hash() {
        let k = key(1);
        let id = key_id(&k);
        assert_eq!(id.len(), 16);
        assert_eq!(id, hex::encode(&Sha256::digest(k.as_bytes())[..8]));
    }

    #[test]
    fn insert_refuses_weak_conflicting_and_malformed_ids() {
        let mut set = KeySet::new();
        set.insert("gw-2026", key(1)).unwrap();
        set.insert("gw-2026", key(1)).unwrap();
        assert_eq!(
            set.insert("gw-2026", key(2)),
            Err(KeyError::Conflict { kid: "gw-2026".into() })
        );
        let mut identity = [0u8; 32];
        identity[0] = 1;
        let weak = VerifyingKey::from_bytes(&identity).unwrap();
        assert!(matches!(set.insert("weak", weak), Err(KeyError::Weak { .. })));
        assert!(matches!(set.insert("", key(3)), Err(KeyError::BadKeyId { .. })));
        assert!(matches!(set.insert("a b", key(3)), Err(KeyError::BadKeyId { .. })));
        let derived = set.insert_derived(key(3)).unwrap();
        assert!(set.get(&derived).is_some());
        assert!(set.revoke("gw-2026"));
        assert!(set.get("gw-2026").is_none());
        assert_eq!(set.len(), 1);
    }
}
