//! Graceful shutdown on SIGINT or SIGTERM: stop accepting, finish in-flight work.
use tokio::signal::unix::{SignalKind, signal};

/// Completes on the first SIGINT or SIGTERM.
pub async fn signalled() {
    let term = signal(SignalKind::terminate());
    let int = signal(SignalKind::interrupt());
    match (term, int) {
        (Ok(mut term), Ok(mut int)) => {
            tokio::select! {
                _ = term.recv() => tracing::info!("SIGTERM: finishing in-flight calls, then stopping"),
                _ = int.recv() => tracing::info!("SIGINT: finishing in-flight calls, then stopping"),
            }
        }
        _ => {
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}
