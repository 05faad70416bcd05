//! The HTTP front's accept loop: serves an axum router over TLS (mutual TLS when the
//! acceptor's config verifies client certificates) or plain HTTP, for the gateway's front
//! and the demo server's HTTPS mode.
//!
//! One accept loop, [`serve`] ([`serve_tls`] without limits of its own): each connection
//! takes a place in the connection caps first ([`ServeLimits`], `conn_limits`), is
//! handshaken in its own task (bounded by a timeout, so a silent client cannot hold
//! anything), then served as HTTP/1.1 with its request heads and idle periods timed, and
//! over TLS the peer's certificate chain attached to **every request** as
//! [`PeerCertificates`]. Handlers re-check the SVID per call from it (with
//! [`crate::SvidPolicy::connection_workload_id`]), because a connection can outlive the
//! certificate it was opened with.
use std::{
    convert::Infallible,
    future::Future,
    io,
    net::SocketAddr,
    sync::{Arc, OnceLock},
    time::Duration,
};

use axum::Router;
use hyper::{Request, body::Incoming, service::service_fn};
use hyper_util::{
    rt::TokioIo,
    server::graceful::{GracefulShutdown, Watcher},
};
use rustls::pki_types::CertificateDer;
use tokio::{
    io::{AsyncRead, AsyncWrite},
    net::TcpListener,
};
use tokio_rustls::TlsAcceptor;
use tower::ServiceExt as _;

pub use crate::conn_limits::ServeLimits;
use crate::{
    conn_limits::{Activity, ConnectionGate, ConnectionSlot, Tracked, TrackedBody},
    handshake_log::{MissingCertificateLog, is_missing_client_certificate},
    svid::{LeafFacts, SvidError},
};

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

/// Serves `router` on `listener` over TLS until `shutdown` completes, with the default
/// [`ServeLimits`].
pub async fn serve_tls<F>(listener: TcpListener, acceptor: TlsAcceptor, router: Router, shutdown: F) -> io::Result<()>
where
    F: Future<Output = ()> + Send,
{
    serve(listener, Some(acceptor), router, ServeLimits::default(), shutdown).await
}

/// Serves `router` on `listener` until `shutdown` completes: over TLS with `tls`, plain
/// HTTP without.
///
/// * A connection over [`ServeLimits`]' caps is closed at once (logged, at most every
///   10 s as a warning); one that takes too long over its TLS handshake, a request head, or
///   sits idle too long between requests is closed (logged at debug).
/// * A handshake refused because the client presented no certificate is logged as a
///   warning (at most one line per address every 10 s, `handshake_log`); other handshake
///   failures (plain HTTP spoken to a TLS port, a client giving up) at debug, and refused
///   certificates by the client verifier. Each only ends that connection.
/// * `accept` errors are logged and retried after a short pause, like `axum::serve`.
/// * On `shutdown` the listener is closed at once; connections in flight finish their
///   current request and close, and this function returns when the last one has. Callers
///   holding long-lived streams (SSE) must end them, or bound the wait with a timeout.
pub async fn serve<F>(
    listener: TcpListener,
    tls: Option<TlsAcceptor>,
    router: Router,
    limits: ServeLimits,
    shutdown: F,
) -> io::Result<()>
where
    F: Future<Output = ()> + Send,
{
    let graceful = GracefulShutdown::new();
    let gate = ConnectionGate::new(&limits);
    let missing_certs = Arc::new(MissingCertificateLog::default());
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        let (tcp, remote) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(pair) => pair,
                Err(e) => {
                    tracing::warn!("cannot accept a connection: {e}; retrying");
                    tokio::time::sleep(ACCEPT_BACKOFF).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        // Over a cap: closed before anything else is spent on it (the TLS handshake).
        let Ok(slot) = gate.admit(remote.ip()) else {
            drop(tcp);
            continue;
        };
        let conn = Conn {
            remote,
            slot,
            watcher: graceful.watcher(),
            router: router.clone(),
            limits,
        };
        match &tls {
            Some(acceptor) => {
                let acceptor = acceptor.clone();
                let missing_certs = missing_certs.clone();
                tokio::spawn(async move {
                    let accepted = tokio::time::timeout(limits.tls_handshake_timeout, acceptor.accept(tcp)).await;
                    let tls = match accepted {
                        Ok(Ok(tls)) => tls,
                        Ok(Err(e)) if is_missing_client_certificate(&e) => {
                            if let Some(line) = missing_certs.refused(remote, std::time::Instant::now()) {
                                tracing::warn!(%remote, "{line}");
                            }
                            return;
                        }
                        Ok(Err(e)) => return tracing::debug!(%remote, "TLS handshake failed: {e}"),
                        Err(_) => return tracing::debug!(%remote, "TLS handshake timed out"),
                    };
                    let chain = tls.get_ref().1.peer_certificates().map(<[_]>::to_vec);
                    let peer = PeerCertificates::new(chain.unwrap_or_default());
                    conn.serve(tls, Some(peer)).await;
                });
            }
            None => {
                tokio::spawn(conn.serve(tcp, None));
            }
        }
    }
    drop(listener);
    graceful.shutdown().await;
    Ok(())
}

/// One accepted connection, holding its place in the caps until it ends.
struct Conn {
    remote: SocketAddr,
    slot: ConnectionSlot,
    watcher: Watcher,
    router: Router,
    limits: ServeLimits,
}

impl Conn {
    /// Serves HTTP/1.1 on `io` until the client or the server closes it, or a phase of
    /// the connection lasts longer than the limits allow.
    async fn serve<I>(self, io: I, peer: Option<PeerCertificates>)
    where
        I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        let Conn {
            remote,
            slot,
            watcher,
            router,
            limits,
        } = self;
        let activity = Activity::new();
        let tracker = activity.clone();
        let service = service_fn(move |mut request: Request<Incoming>| {
            if let Some(peer) = &peer {
                request.extensions_mut().insert(peer.clone());
            }
            tracker.request_started();
            let done = tracker.request_guard();
            let router = router.clone();
            async move {
                let response = router.oneshot(request).await?;
                Ok::<_, Infallible>(response.map(|body| TrackedBody::new(body, done)))
            }
        });
        let connection = hyper::server::conn::http1::Builder::new()
            // Timed by `Activity` instead (hyper's would also cut idle connections short).
            .header_read_timeout(None)
            .serve_connection(TokioIo::new(Tracked::new(io, activity.clone())), service);
        tokio::select! {
            served = watcher.watch(connection) => if let Err(e) = served {
                tracing::debug!(%remote, "connection ended with an error: {e}");
            },
            why = activity.expired(&limits) => tracing::debug!(%remote, "connection closed: {why}"),
        }
        drop(slot);
    }
}
