//! Policy sources: the embedded defaults, files found by glob, their hash and a cheap fingerprint.
//!
//! The policy hash names the policy set in force in every decision and audit
//! record; the fingerprint lets the gateway poll for changed files cheaply
//! (metadata only) and call [`crate::PolicyStore::reload_from_files`] when it moves.
use std::path::PathBuf;
use std::time::UNIX_EPOCH;

use sha2::{Digest, Sha256};

use crate::engine::EngineKind;
use crate::error::PolicyError;

/// The Portcullis Cedar schema (`schema/portcullis.cedarschema`).
pub const CEDAR_SCHEMA: &str = include_str!("../schema/portcullis.cedarschema");
/// The default tier policies in Cedar (`defaults/tiers.cedar`).
pub const DEFAULT_CEDAR_POLICIES: &str = include_str!("../defaults/tiers.cedar");
/// The default tier policies in Rego (`defaults/tiers.rego`).
pub const DEFAULT_REGO_POLICIES: &str = include_str!("../defaults/tiers.rego");

/// One policy file's text and the name errors and explanations call it by.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PolicySource {
    /// The file path, or a label such as `defaults/tiers.cedar`.
    pub name: String,
    pub text: String,
}

impl PolicySource {
    pub fn new(name: impl Into<String>, text: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            text: text.into(),
        }
    }

    /// The built-in tier policies for `kind`.
    pub fn defaults(kind: EngineKind) -> Self {
        match kind {
            EngineKind::Cedar => Self::new("defaults/tiers.cedar", DEFAULT_CEDAR_POLICIES),
            EngineKind::Rego => Self::new("defaults/tiers.rego", DEFAULT_REGO_POLICIES),
        }
    }
}

/// Reads every file matched by `patterns`, sorted by path. A pattern matching nothing is an error.
pub fn read_sources(patterns: &[String]) -> Result<Vec<PolicySource>, PolicyError> {
    matched_paths(patterns)?
        .into_iter()
        .map(|path| match std::fs::read_to_string(&path) {
            Ok(text) => Ok(PolicySource::new(path.display().to_string(), text)),
            Err(source) => Err(PolicyError::Read { path, source }),
        })
        .collect()
}

/// SHA-256 over the engine kind and the sorted source texts (length-prefixed), lowercase hex.
/// Renaming or reordering files does not change it; changing any policy text does.
pub fn policy_hash(kind: EngineKind, sources: &[PolicySource]) -> String {
    let mut texts: Vec<&str> = sources.iter().map(|s| s.text.as_str()).collect();
    texts.sort_unstable();
    let mut hasher = Sha256::new();
    hasher.update(b"portcullis-policy-set-v1\0");
    hasher.update(kind.as_str().as_bytes());
    for text in texts {
        hasher.update((text.len() as u64).to_be_bytes());
        hasher.update(text.as_bytes());
    }
    hex::encode(hasher.finalize())
}

/// A cheap summary of the policy files (paths, sizes, modification times); compare two to
/// learn whether a reload is worth trying.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Fingerprint(String);

impl Fingerprint {
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Fingerprints the files matched by `patterns` from their metadata only.
pub fn fingerprint(patterns: &[String]) -> Result<Fingerprint, PolicyError> {
    let mut hasher = Sha256::new();
    for path in matched_paths(patterns)? {
        let meta = std::fs::metadata(&path).map_err(|source| PolicyError::Read {
            path: path.clone(),
            source,
        })?;
        let modified = meta
            .modified()
            .ok()
            .and_then(|m| m.duration_since(UNIX_EPOCH).ok())
            .map(|d| d.as_nanos())
            .unwrap_or_default();
        hasher.update(path.display().to_string().as_bytes());
        hasher.update([0]);
        hasher.update(meta.len().to_be_bytes());
        hasher.update(modified.to_be_bytes());
    }
    Ok(Fingerprint(hex::encode(hasher.finalize())))
}

fn matched_paths(patterns: &[String]) -> Result<Vec<PathBuf>, PolicyError> {
    let mut paths = Vec::new();
    for pattern in patterns {
        let entries = glob::glob(pattern).map_err(|e| PolicyError::BadPattern {
            pattern: pattern.clone(),
            message: e.to_string(),
        })?;
        let before = paths.len();
        for entry in entries {
            match entry {
                Ok(path) if path.is_file() => paths.push(path),
                Ok(_) => {}
                Err(e) => {
                    let path = e.path().to_path_buf();
                    return Err(PolicyError::Read { path, source: e.into() });
                }
            }
        }
        if paths.len() == before {
            return Err(PolicyError::NoFiles {
                pattern: pattern.clone(),
            });
        }
    }
    paths.sort();
    paths.dedup();
    Ok(paths)
}
