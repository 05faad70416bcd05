//! Putting a gateway together from a validated config: the record stage (audit
//! log), the result-signing key (recorded in the log), the authorise stage (policy
//! store and its watcher), the approvals store replicas share (PostgreSQL, beside the
//! audit log), then the gateway.
//! Shared by `run`, `stdio` and `demo`.
use std::{path::Path, sync::Arc};

use anyhow::Context;
use portcullis_gateway::{Gateway, Recorder};
use sha2::Digest;

use crate::{
    audit_open,
    config::{AuditStoreSettings, LoadedConfig},
    lock_note::{self, LockNote},
    policy_open,
};

/// Opens the stages `loaded` names and builds the gateway. When `config_file` is
/// given, the start is recorded in the audit log with the file's SHA-256. `note` is left
/// in a file log's lock file while this process holds it (`lock_note`).
pub async fn gateway(
    loaded: LoadedConfig,
    config_file: Option<&Path>,
    note: Option<LockNote>,
) -> anyhow::Result<Arc<Gateway>> {
    let recorder = recorder(&loaded, note.as_ref())
        .await
        .map_err(|e| match lock_note::locked(&e) {
            Some((dir, holder)) => anyhow::anyhow!(lock_note::refusal(&dir, holder.as_deref())),
            None => e,
        })?;
    gateway_with(loaded, config_file, recorder).await
}

/// The record stage `loaded` names: its audit log opened for writing (the file store's
/// lock taken, with `note`), or no log.
pub async fn recorder(loaded: &LoadedConfig, note: Option<&LockNote>) -> anyhow::Result<Recorder> {
    match &loaded.audit {
        Some(settings) => audit_open::recorder(settings, note).await,
        None => Ok(Recorder::new(None)),
    }
}

/// [`gateway`] with the record stage already opened.
pub async fn gateway_with(
    loaded: LoadedConfig,
    config_file: Option<&Path>,
    recorder: Recorder,
) -> anyhow::Result<Arc<Gateway>> {
    // Upstream mTLS may take its SVID from the Workload API (a no-op when `run` already connected).
    connect_workload_api(&loaded).await?;
    // Everything that can stop the start comes first; the start is recorded only once
    // nothing can (a failed start leaves no "gateway started" in the log).
    let config_sha256: Option<[u8; 32]> = match config_file {
        Some(path) => {
            let bytes = std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
            Some(sha2::Sha256::digest(&bytes).into())
        }
        None => None,
    };
    let servers: Vec<String> = loaded.gateway.servers.iter().map(|s| s.name.to_string()).collect();
    let mut loaded = loaded;
    let receipts = match &loaded.receipt_key {
        Some(path) => Some(Arc::new(crate::config::receipt_key(path, loaded.batch_receipts)?)),
        None => None,
    };
    loaded.gateway.attest.receipts = receipts.clone();
    let authoriser = policy_open::open(&loaded.policy)?;
    loaded.gateway.approvals.shared = shared_approvals(&loaded).await?;
    let store = authoriser.store.clone();
    let gateway = Gateway::new(loaded.gateway, recorder.clone(), authoriser);
    gateway.start_credential_sweeper().await;
    gateway.start_approval_sweeper();
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
    if let Some(digest) = config_sha256 {
        recorder.config_loaded(digest, &servers).await?;
    }
    if let Some(key) = &receipts {
        recorder
            .receipt_key(&key.kid, key.key.verifying_key().as_bytes())
            .await?;
    }
    policy_open::watch(store, recorder, &loaded.policy);
    Ok(gateway)
}

/// The approvals state replicas share: in PostgreSQL when the audit log is there (its
/// `portcullis_approval_*` tables beside the log's) and approvers are registered; `None`
/// keeps it in this gateway's memory. A database that cannot be reached stops the start.
async fn shared_approvals(loaded: &LoadedConfig) -> anyhow::Result<Option<portcullis_approvals::ApprovalStore>> {
    let Some(AuditStoreSettings::Postgres { url, schema }) = loaded.audit.as_ref().map(|a| &a.store) else {
        return Ok(None);
    };
    let approvals = &loaded.gateway.approvals;
    if approvals.approvers.is_empty() {
        return Ok(None);
    }
    let store = portcullis_approvals::ApprovalStore::postgres(
        url.expose(),
        schema,
        approvals.pending.clone(),
        approvals.break_glass_max_ttl.as_secs(),
    )
    .await
    .with_context(|| format!("cannot open the shared approvals store in PostgreSQL (schema `{schema}`)"))?;
    tracing::info!(schema = %schema, "approvals state shared with other replicas through PostgreSQL");
    Ok(Some(store))
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

/// Serves the admin listener `admin` (the approvers' API) beside a `stdio` gateway, over
/// `tls` when the config asks for it. A listener that cannot bind is reported and skipped:
/// the host's session is still served (approvals then come as signed tokens).
pub async fn spawn_admin(
    gateway: &Arc<Gateway>,
    admin: Option<crate::config::approvals::AdminListen>,
    tls: Option<&portcullis_identity::ServerTlsSettings>,
) {
    let Some(admin) = admin else { return };
    let acceptor = match tls.filter(|_| admin.tls).map(tls_acceptor).transpose() {
        Ok(acceptor) => acceptor,
        Err(e) => {
            tracing::warn!("no admin API: {e:#}");
            return;
        }
    };
    match tokio::net::TcpListener::bind(admin.addr).await {
        Ok(listener) => {
            let scheme = if acceptor.is_some() { "https" } else { "http" };
            if let Ok(local) = listener.local_addr() {
                tracing::info!("portcullis admin API on {scheme}://{local}/approvals");
            }
            tokio::spawn(portcullis_gateway::serve_admin(
                gateway.clone(),
                listener,
                acceptor,
                std::future::pending(),
            ));
        }
        Err(e) => tracing::warn!(
            "no admin API: cannot listen on {} (admin.listen): {e}; approvers can still sign tokens offline",
            admin.addr
        ),
    }
}
