//! Serving an axum router over TLS (mutual TLS when the acceptor's config verifies client
//! certificates), for the gateway's HTTPS front and the demo server's HTTPS mode.
//!
//! One accept loop, [`serve_tls`]: every connection is handshaken in its own task (bounded
//! by a timeout, so a silent client cannot hold anything), then served as HTTP/1.1 with
//! the peer's certificate chain attached to **every request** as [`PeerCertificates`].
//! Handlers re-check the SVID per call from it (with [`crate::SvidPolicy::connection_workload_id`]),
//! because a connection can outlive the certificate it was opened with.
use std::{
    future::Future,
    io,
    sync::{Arc, OnceLock},
    time::Duration,
};

use axum::Router;
use hyper::{Request, body::Incoming, service::service_fn};
use hyper_util::{rt::TokioIo, server::graceful::GracefulShutdown};
use rustls::pki_types::CertificateDer;
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;
use tower::ServiceExt as _;

use crate::svid::{LeafFacts, SvidError};

/// A client that has not finished its handshake by then is dropped.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// Pause after a failed `accept` (out of file descriptors, for instance) before retrying.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(100);

/// The certificate chain the client presented in the TLS handshake, leaf first; empty
/// when it presented none (allowed with [`crate::ClientAuth::Optional`]). A request
/// extension on every request served by [`serve_tls`].
#[derive(Debug, Clone, Default)]
pub struct PeerCertificates(Arc<Peer>);

#[derive(Debug, Default)]
struct Peer {
    chain: Vec<CertificateDer<'static>>,
    /// The leaf's SVID facts, read on the first call of the connection.
    leaf: OnceLock<Result<LeafFacts, SvidError>>,
}

impl PeerCertificates {
    pub fn new(chain: Vec<CertificateDer<'static>>) -> Self {
        Self(Arc::new(Peer {
            chain,
            leaf: OnceLock::new(),
        }))
    }

    /// The whole chain, leaf first.
    pub fn chain(&self) -> &[CertificateDer<'static>] {
        &self.0.chain
    }

    /// The client's own certificate, if it presented one.
    pub fn leaf(&self) -> Option<&CertificateDer<'static>> {
        self.0.chain.first()
    }

    /// The leaf's SVID facts, parsed once per connection; `None` without a certificate.
    pub(crate) fn leaf_facts(&self) -> Option<&Result<LeafFacts, SvidError>> {
        let leaf = self.leaf()?;
        Some(self.0.leaf.get_or_init(|| LeafFacts::read(leaf.as_ref())))
    }
}

/// Serves `router` on `listener` over TLS until `shutdown` completes.
///
/// * Handshake failures (no or untrusted client certificate, wrong SPIFFE ID, plain HTTP
///   spoken to a TLS port) are logged at debug and only end that connection.
/// * `accept` errors are logged and retried after a short pause, like `axum::serve`.
/// * On `shutdown` the listener is closed at once; connections in flight finish their
///   current request and close, and this function returns when the last one has. Callers
///   holding long-lived streams (SSE) must end them, or bound the wait with a timeout.
pub async fn serve_tls<F>(listener: TcpListener, acceptor: TlsAcceptor, router: Router, shutdown: F) -> io::Result<()>
where
    F: Future<Output = ()> + Send,
{
    let graceful = GracefulShutdown::new();
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        let (tcp, remote) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(pair) => pair,
                Err(e) => {
                    tracing::warn!("cannot accept a TLS connection: {e}; retrying");
                    tokio::time::sleep(ACCEPT_BACKOFF).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let watcher = graceful.watcher();
        let acceptor = acceptor.clone();
        let router = router.clone();
        tokio::spawn(async move {
            let tls = match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(tcp)).await {
                Ok(Ok(tls)) => tls,
                Ok(Err(e)) => return tracing::debug!(%remote, "TLS handshake failed: {e}"),
                Err(_) => return tracing::debug!(%remote, "TLS handshake timed out"),
            };
            let chain = tls.get_ref().1.peer_certificates().map(<[_]>::to_vec);
            let peer = PeerCertificates::new(chain.unwrap_or_default());
            let service = service_fn(move |mut request: Request<Incoming>| {
                request.extensions_mut().insert(peer.clone());
                router.clone().oneshot(request)
            });
            let connection = hyper::server::conn::http1::Builder::new().serve_connection(TokioIo::new(tls), service);
            if let Err(e) = watcher.watch(connection).await {
                tracing::debug!(%remote, "TLS connection ended with an error: {e}");
            }
        });
    }
    drop(listener);
    graceful.shutdown().await;
    Ok(())
}
