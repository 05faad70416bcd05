//! What `run` loads beyond the config text — the HTTP front's certificate, key and trust
//! bundles, the policy files, and the secrets the credential broker's sources name (an
//! environment variable, a file) — loaded once before anything starts. `check-config` and
//! `run` both go through it, so `check-config` fails on what `run` would fail on, and
//! either exits 2 (a bad config) with every such problem listed; `stdio` (no HTTP front)
//! checks the policy files the same way. Material from a SPIFFE
//! Workload API is not fetched here (`run` waits for the agent itself).
use std::path::Path;

use crate::config::{ConfigError, LoadedConfig, Problem};

/// Loads the front's TLS material and the policy set of `loaded` (read from `file`).
pub fn check(loaded: &LoadedConfig, file: &Path) -> Result<(), ConfigError> {
    check_parts(loaded, file, true)
}

/// [`check`] for `stdio`, which serves no HTTP front: the policy set only.
pub fn check_stdio(loaded: &LoadedConfig, file: &Path) -> Result<(), ConfigError> {
    check_parts(loaded, file, false)
}

fn check_parts(loaded: &LoadedConfig, file: &Path, front: bool) -> Result<(), ConfigError> {
    let mut problems = Vec::new();
    if front
        && let Some(tls) = &loaded.tls
        && loaded.workload_api.is_none()
        && let Err(e) = portcullis_identity::ServerTls::new(tls)
    {
        problems.push(Problem {
            key: "listen.tls".into(),
            reason: e.to_string(),
        });
    }
    // Secrets the credential sources name: only serving needs them.
    problems.extend(loaded.unresolved_secrets.iter().cloned());
    if let Err(e) = crate::policy_open::open(&loaded.policy) {
        problems.push(Problem {
            key: "policy".into(),
            reason: format!("{e:#}"),
        });
    }
    let mut problems = problems.into_iter();
    let Some(first) = problems.next() else {
        return Ok(());
    };
    Err(ConfigError {
        file: file.display().to_string(),
        key: first.key,
        reason: first.reason,
        more: problems.collect(),
    })
}
