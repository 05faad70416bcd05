//! A gateway assembled inside another program: the config file read and validated as
//! `run` does, every stage opened from it except the audit log, which the caller opens
//! and hands in. The end-to-end fault matrix uses it to put a fault-injecting audit store
//! (`portcullis-audit`'s `fault-injection` feature, a test-only dev-dependency) behind a
//! real gateway, so EIO and failed-fsync faults are provoked without the `portcullis`
//! binary ever containing fault injection.
use std::{path::Path, sync::Arc};

use portcullis_audit::AuditLog;
use portcullis_gateway::{Gateway, Recorder};

use crate::{assemble, config};

/// Loads the config at `path` and builds its gateway around `log`; the start is recorded
/// in `log` with the config file's SHA-256, as `run` records it. Serve it with
/// `portcullis_gateway::serve_http`.
pub async fn gateway_with_log(path: &Path, log: Arc<AuditLog>) -> anyhow::Result<Arc<Gateway>> {
    let loaded = config::load(path)?;
    assemble::gateway_with(loaded, Some(path), Recorder::new(Some(log))).await
}
