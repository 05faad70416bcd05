//! Putting a gateway together from a validated config: the record stage (audit
//! log), the result-signing key (recorded in the log), the authorise stage (policy
//! store and its watcher), then the gateway.
//! Shared by `run`, `stdio` and `demo`.
use std::{path::Path, sync::Arc};

use anyhow::Context;
use portcullis_gateway::{Gateway, Recorder};
use sha2::Digest;

use crate::{audit_open, config::LoadedConfig, policy_open};

/// Opens the stages `loaded` names and builds the gateway. When `config_file` is
/// given, the start is recorded in the audit log with the file's SHA-256.
pub async fn gateway(loaded: LoadedConfig, config_file: Option<&Path>) -> anyhow::Result<Arc<Gateway>> {
    // Upstream mTLS may take its SVID from the Workload API (a no-op when `run` already connected).
    connect_workload_api(&loaded).await?;
    let recorder = match &loaded.audit {
        Some(settings) => audit_open::recorder(settings).await?,
        None => Recorder::new(None),
    };
    gateway_with(loaded, recorder, config_file).await
}

/// [`gateway`] with a record stage the caller built (the config's `[audit]` is not opened).
pub async fn gateway_with(
    loaded: LoadedConfig,
    recorder: Recorder,
    config_file: Option<&Path>,
) -> anyhow::Result<Arc<Gateway>> {
    connect_workload_api(&loaded).await?;
    if let Some(path) = config_file {
        let bytes = std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
        let servers: Vec<String> = loaded.gateway.servers.iter().map(|s| s.name.to_string()).collect();
        recorder
            .config_loaded(sha2::Sha256::digest(&bytes).into(), &servers)
            .await?;
    }
    let mut loaded = loaded;
    if let Some(path) = &loaded.receipt_key {
        let key = crate::config::receipt_key(path)?;
        recorder
            .receipt_key(&key.kid, key.key.verifying_key().as_bytes())
            .await?;
        loaded.gateway.attest.receipts = Some(Arc::new(key));
    }
    let authoriser = policy_open::open(&loaded.policy)?;
    policy_open::watch(authoriser.store.clone(), recorder.clone(), &loaded.policy);
    let gateway = Gateway::new(loaded.gateway, recorder, authoriser);
    match gateway.restore_replay_cache().await? {
        Some(restored) => tracing::info!(
            restored,
            "host signatures consumed before the start restored from the audit log"
        ),
        None if gateway.config().attest.verifier.is_some() => tracing::warn!(
            "the audit log is off: host signatures issued before the start plus the allowed clock skew are refused"
        ),
        None => {}
    }
    Ok(gateway)
}

/// The HTTP front's TLS acceptor: the gateway's certificate and the client trust
/// bundle are read now (a failure stops the start) and re-read when the files change
/// (or pushed by the SPIFFE Workload API, which must be connected first).
pub fn tls_acceptor(settings: &portcullis_identity::ServerTlsSettings) -> anyhow::Result<tokio_rustls::TlsAcceptor> {
    let tls = portcullis_identity::ServerTls::new(settings)
        .with_context(|| format!("cannot set up TLS from {}", settings.svid.describe()))?;
    Ok(tokio_rustls::TlsAcceptor::from(tls.config()))
}

/// Connects to the SPIFFE Workload API the config names, if any, waiting up to its
/// startup timeout for the first SVID: without it the gateway must not start (fail closed).
pub async fn connect_workload_api(loaded: &LoadedConfig) -> anyhow::Result<()> {
    let Some(used) = &loaded.workload_api else {
        return Ok(());
    };
    tracing::info!(
        endpoint = used.api.endpoint(),
        used_by = %used.used_by.join(", "),
        "connecting to the SPIFFE Workload API"
    );
    used.api.connect().await?;
    Ok(())
}
