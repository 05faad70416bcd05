//! Watching the Workload API connection for the operator: logs when the agent is lost
//! and found again, and every rotation it pushes (SPIFFE IDs and expiry, never keys).
use std::sync::{Arc, Weak};
use std::time::SystemTime;

use spiffe::{WorkloadApiClient, X509Source, X509Svid};

use super::Inner;

/// A connection to the agent, as `X509SourceBuilder::client_factory` wants it.
type ClientFuture =
    std::pin::Pin<Box<dyn Future<Output = Result<WorkloadApiClient, spiffe::WorkloadApiError>> + Send + 'static>>;
type ClientFactory = Arc<dyn Fn() -> ClientFuture + Send + Sync + 'static>;

/// The source's connection factory, wrapped to log when the agent is lost and found
/// again (the source calls it at startup and after every broken stream).
pub(super) fn reconnect_logger(inner: &Arc<Inner>) -> ClientFactory {
    let weak = Arc::downgrade(inner);
    let endpoint = inner.endpoint.clone();
    Arc::new(move || {
        let weak = weak.clone();
        let endpoint = endpoint.clone();
        Box::pin(async move {
            let result = WorkloadApiClient::connect(endpoint).await;
            let Some(inner) = weak.upgrade() else { return result };
            let Some(source) = inner.source.get() else {
                if let Err(error) = &result {
                    tracing::debug!(endpoint = inner.settings.endpoint, %error, "SPIFFE Workload API not reachable yet; retrying");
                }
                return result;
            };
            let expires = source
                .svid()
                .ok()
                .and_then(|svid| crate::not_after(svid.leaf().as_bytes()));
            let expires = expires.map(unix_secs).unwrap_or_else(|| "already expired".into());
            match &result {
                Ok(_) => tracing::info!(
                    endpoint = inner.settings.endpoint,
                    "reconnected to the SPIFFE Workload API"
                ),
                Err(error) => tracing::warn!(
                    endpoint = inner.settings.endpoint,
                    %error,
                    svid_expires = %expires,
                    "lost the SPIFFE Workload API; still serving the last SVID until it expires, retrying"
                ),
            }
            result
        })
    })
}

/// Logs every rotation the agent pushes, until the source shuts down.
pub(super) async fn log_rotations(source: X509Source, inner: Weak<Inner>) {
    let mut updates = source.updated();
    drop(source);
    while updates.changed().await.is_ok() {
        let Some(inner) = inner.upgrade() else { return };
        let Some(source) = inner.source.get() else { continue };
        match source.svid() {
            Ok(svid) => log_svid(
                "SPIFFE Workload API pushed new material",
                &inner.settings.endpoint,
                &svid,
            ),
            Err(error) => tracing::error!(
                endpoint = inner.settings.endpoint,
                %error,
                "SPIFFE Workload API update leaves no usable SVID; TLS handshakes fail until the agent supplies one"
            ),
        }
    }
}

pub(super) fn log_svid(message: &str, endpoint: &str, svid: &X509Svid) {
    let expires = crate::not_after(svid.leaf().as_bytes())
        .map(unix_secs)
        .unwrap_or_default();
    tracing::info!(endpoint, spiffe_id = %svid.spiffe_id(), not_after = %expires, "{message}");
}

/// Unix seconds, the form the rest of the identity logs use for certificate times.
fn unix_secs(time: SystemTime) -> String {
    let secs = time
        .duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    format!("unix {secs}")
}
