//! `[audit]` of the config file: the store (segment files, or PostgreSQL shared by
//! replicas), the checkpoint signing key and cadence, and body capture. On unless
//! `enabled = false`. The store is only named here; `audit_open` opens it.
use std::{
    path::{Path, PathBuf},
    time::Duration,
};

use portcullis_core::Secret;

use super::{
    problems::{Checked, Problems},
    raw::RawAudit,
};

/// Where the audit log lives and how it is signed.
#[derive(Debug, Clone)]
pub struct AuditSettings {
    pub store: AuditStoreSettings,
    /// The log's Ed25519 signing key (`.pub` beside it holds the public half).
    pub key: PathBuf,
    pub checkpoint_every_records: u64,
    pub checkpoint_interval: Duration,
    /// Keep arguments and results (secrets redacted) in the records.
    pub capture_bodies: bool,
}

/// The audit store: local segment files, or PostgreSQL shared by replicas.
#[derive(Debug, Clone)]
pub enum AuditStoreSettings {
    File { dir: PathBuf },
    Postgres { url: Secret<String>, schema: String },
}

/// The log's signing key file, or `None` when the log is switched off.
pub fn key_file(raw: &RawAudit, base: &Path) -> Option<PathBuf> {
    let on = raw.enabled != Some(false);
    on.then(|| base.join(raw.key.clone().unwrap_or_else(|| "keys/audit.key".into())))
}

/// Validates `[audit]`: `None` when the operator switched the log off.
pub fn audit(raw: &RawAudit, base: &Path, p: &mut Problems) -> Checked<Option<AuditSettings>> {
    let Some(key) = key_file(raw, base) else {
        return Ok(None);
    };
    let store = match &raw.postgres {
        Some(url) => postgres(raw, url, p),
        None => Ok(AuditStoreSettings::File {
            dir: base.join(raw.path.clone().unwrap_or_else(|| "data/audit".into())),
        }),
    };
    let every = raw.checkpoint_every_records.unwrap_or(4096);
    let interval = raw.checkpoint_interval_secs.unwrap_or(5);
    let every_ok = p.check(
        every > 0,
        "audit.checkpoint_every_records",
        "checkpoint intervals must be greater than 0",
    );
    let interval_ok = p.check(
        interval > 0,
        "audit.checkpoint_interval_secs",
        "checkpoint intervals must be greater than 0",
    );
    every_ok?;
    interval_ok?;
    Ok(Some(AuditSettings {
        store: store?,
        key,
        checkpoint_every_records: every,
        checkpoint_interval: Duration::from_secs(interval),
        capture_bodies: raw.capture_bodies.unwrap_or(false),
    }))
}

fn postgres(raw: &RawAudit, url: &str, p: &mut Problems) -> Checked<AuditStoreSettings> {
    let url_ok = p.check(
        url.starts_with("postgres://") || url.starts_with("postgresql://"),
        "audit.postgres",
        "must be a postgres:// URL",
    );
    let one_store = p.check(
        raw.path.is_none(),
        "audit.path",
        "set either `path` (files) or `postgres`, not both",
    );
    let schema = raw.schema.clone().unwrap_or_else(|| "portcullis_audit".into());
    let lowercase = schema
        .chars()
        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
    let schema_ok = p.check(
        !schema.is_empty() && lowercase,
        "audit.schema",
        format!("`{schema}` must be lowercase letters, digits and `_`"),
    );
    url_ok?;
    one_store?;
    schema_ok?;
    Ok(AuditStoreSettings::Postgres {
        url: Secret::new(url.to_owned()),
        schema,
    })
}
