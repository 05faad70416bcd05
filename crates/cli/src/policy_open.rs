//! Building the policy stage a config names (built-in tier policies, or the
//! operator's Cedar/Rego files, plus an optional shadow set), and keeping it
//! current: files are polled and SIGHUP forces a check; a new set is validated
//! and swapped atomically, an invalid one is refused loudly and the current set
//! stays. Every swap is recorded in the audit log with the new policy hash.
use std::{sync::Arc, time::Duration};

use anyhow::Context;
use portcullis_gateway::{Authoriser, Recorder};
use portcullis_policy::{CedarEngine, Engine, EngineKind, PolicyFiles, PolicyStore, RegoEngine};

use crate::config::PolicySettings;

/// The authorise stage for `settings`; fails on any invalid policy (nothing starts).
pub fn open(settings: &PolicySettings) -> anyhow::Result<Authoriser> {
    let store = if settings.patterns.is_empty() {
        PolicyStore::new(defaults(settings)?)
    } else {
        PolicyStore::from_files(files(settings, &settings.patterns)).context("the policy set is invalid")?
    };
    if !settings.shadow.is_empty() {
        let shadow = portcullis_policy::load_files(&files(settings, &settings.shadow))
            .context("the shadow policy set is invalid")?;
        store.set_shadow(Some(shadow));
    }
    Ok(Authoriser {
        store: Arc::new(store),
        reason_argument: settings.reason_argument,
    })
}

fn defaults(settings: &PolicySettings) -> anyhow::Result<Arc<dyn Engine>> {
    Ok(match settings.engine {
        EngineKind::Cedar => Arc::new(CedarEngine::defaults(settings.decision)?),
        EngineKind::Rego => Arc::new(RegoEngine::defaults(settings.decision)?),
    })
}

fn files(settings: &PolicySettings, patterns: &[String]) -> PolicyFiles {
    PolicyFiles {
        engine: settings.engine,
        patterns: patterns.to_vec(),
        settings: settings.decision,
    }
}

/// Watches the policy files until the process ends: polls every `reload_interval`
/// and checks at once on SIGHUP.
pub fn watch(store: Arc<PolicyStore>, recorder: Recorder, settings: &PolicySettings) {
    if settings.patterns.is_empty() {
        return;
    }
    let interval = settings.reload_interval;
    tokio::spawn(async move {
        let mut hangup = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()).ok();
        let mut last = store.fingerprint().ok().flatten();
        loop {
            let forced = tokio::select! {
                _ = tokio::time::sleep(if interval.is_zero() { Duration::from_secs(3600) } else { interval }) => false,
                _ = async { match hangup.as_mut() { Some(h) => { h.recv().await; } None => std::future::pending().await } } => true,
            };
            let now = store.fingerprint().ok().flatten();
            if !forced && now == last {
                continue;
            }
            last = now;
            match store.reload_from_files() {
                Ok(reloaded) if reloaded.changed => {
                    tracing::info!(policy_hash = %reloaded.policy_hash, "policy set reloaded");
                    if let Err(e) = recorder
                        .policy_change(&reloaded.policy_hash, "policy set reloaded")
                        .await
                    {
                        tracing::error!("{e}");
                    }
                }
                Ok(_) => tracing::debug!("policy files touched; the set is unchanged"),
                Err(e) => tracing::error!("policy reload REFUSED; the current set stays in force: {e:#}"),
            }
        }
    });
}
