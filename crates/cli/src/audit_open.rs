//! Opening the audit log a config names: the store, and the signing key —
//! generated on first start (when the log is still empty), refused when a log
//! exists but its key is gone (its checkpoints could no longer be continued).
use std::{path::Path, sync::Arc};

use anyhow::Context;
use portcullis_audit::{AuditLog, CheckpointPolicy, LogOptions, LogPublicKey, LogSigner};

use crate::{
    config::{AuditSettings, AuditStoreSettings},
    lock_note::LockNote,
};

/// The public key file beside a signing key file: `audit.key` → `audit.pub`.
pub fn public_key_path(key: &Path) -> std::path::PathBuf {
    key.with_extension("pub")
}

/// The record stage for `settings`: the opened log, capturing bodies when configured.
/// `note` says who holds a file log while this process runs (see `lock_note`).
pub async fn recorder(
    settings: &AuditSettings,
    note: Option<&LockNote>,
) -> anyhow::Result<portcullis_gateway::Recorder> {
    let recorder = portcullis_gateway::Recorder::new(Some(open(settings, note).await?));
    Ok(if settings.capture_bodies {
        recorder.capturing_bodies()
    } else {
        recorder
    })
}

/// Opens the log for writing.
pub async fn open(settings: &AuditSettings, note: Option<&LockNote>) -> anyhow::Result<Arc<AuditLog>> {
    let signer = signer(settings)?;
    let options = LogOptions {
        checkpoints: CheckpointPolicy {
            every_records: settings.checkpoint_every_records,
            interval: Some(settings.checkpoint_interval),
        },
        lock_note: note.map(LockNote::to_line),
        ..LogOptions::default()
    };
    let log = match &settings.store {
        AuditStoreSettings::File { dir } => AuditLog::open_file(dir, signer, options)
            .await
            .with_context(|| format!("cannot open the audit log at {}", dir.display()))?,
        AuditStoreSettings::Postgres { url, schema } => AuditLog::open_postgres(url.expose(), schema, signer, options)
            .await
            .with_context(|| format!("cannot open the PostgreSQL audit log (schema `{schema}`)"))?,
    };
    Ok(Arc::new(log))
}

fn signer(settings: &AuditSettings) -> anyhow::Result<LogSigner> {
    let key = &settings.key;
    if key.exists() {
        return LogSigner::load(key).with_context(|| format!("cannot load the audit key {}", key.display()));
    }
    let has_records = match &settings.store {
        AuditStoreSettings::File { dir } => std::fs::read_dir(dir).map(|mut d| d.next().is_some()).unwrap_or(false),
        AuditStoreSettings::Postgres { .. } => false,
    };
    if has_records {
        anyhow::bail!(
            "the audit key {} is missing but the log already has records; restore the key, or point `audit.path` at a new directory",
            key.display()
        );
    }
    let signer = generate(key)?;
    tracing::warn!(key = %key.display(), key_id = %signer.key_id().as_str(), "generated a new audit log key; back it up");
    Ok(signer)
}

/// Generates a key pair at `key` (0600) and `key.pub`.
pub fn generate(key: &Path) -> anyhow::Result<LogSigner> {
    if let Some(dir) = key.parent() {
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    }
    let signer = LogSigner::generate().context("cannot generate an audit key")?;
    signer
        .save(key)
        .with_context(|| format!("cannot write {}", key.display()))?;
    let public: LogPublicKey = signer.public_key();
    let pub_path = public_key_path(key);
    public
        .save(&pub_path)
        .with_context(|| format!("cannot write {}", pub_path.display()))?;
    Ok(signer)
}
