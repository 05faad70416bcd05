//! Connection limits of the accept loop ([`crate::serve`], T17 slowloris): how many
//! connections may be open (in all, and per peer address), and how long a connection may
//! take over its TLS handshake, over a request's head, and sit idle between requests.
//!
//! * [`ConnectionGate`] counts open connections; a connection over either cap is closed at
//!   once, before its TLS handshake. The per-peer cap is below the global one, so one
//!   address (an IPv6 /64 counts as one) cannot take every slot.
//! * [`Activity`] follows one connection through its phases — reading a request head,
//!   busy with requests, idle between them — and [`Activity::expired`] completes when the
//!   current phase has lasted too long. Busy connections have no limit here: a request's
//!   body, its upstream call and its SSE stream are bounded by the handler.
//!   hyper's own `header_read_timeout` is not used: hyper also runs it while a kept-alive
//!   connection is idle, so the idle timeout could never be longer than the header one.
use std::{
    collections::HashMap,
    io,
    net::{IpAddr, Ipv6Addr},
    pin::Pin,
    sync::{Arc, Mutex, MutexGuard, PoisonError},
    task::{Context, Poll},
    time::Duration,
};

use tokio::{
    io::{AsyncRead, AsyncWrite, ReadBuf},
    time::Instant,
};

/// How many connections, and how long each may take over its phases.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ServeLimits {
    /// Connections open at once; further ones are closed at once.
    pub max_connections: usize,
    /// Connections open at once from one peer address (IPv6: one /64).
    pub max_connections_per_peer: usize,
    /// A TLS client must finish its handshake within this.
    pub tls_handshake_timeout: Duration,
    /// A request head (request line and headers) must arrive within this of its first byte,
    /// and a new connection's first request head within this of the accept (or handshake).
    pub header_timeout: Duration,
    /// A kept-alive connection with no request in flight is closed after this.
    pub keepalive_timeout: Duration,
}

impl Default for ServeLimits {
    fn default() -> Self {
        Self {
            max_connections: 4096,
            max_connections_per_peer: 256,
            tls_handshake_timeout: Duration::from_secs(10),
            header_timeout: Duration::from_secs(10),
            keepalive_timeout: Duration::from_secs(60),
        }
    }
}

/// Why a connection was refused or closed by the limits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Refusal {
    Full(usize),
    PeerFull(usize),
}

impl std::fmt::Display for Refusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Refusal::Full(max) => write!(f, "{max} connections are open (`listen.max_connections`)"),
            Refusal::PeerFull(max) => write!(
                f,
                "this peer has {max} connections open (`listen.max_connections_per_peer`)"
            ),
        }
    }
}

/// Counts open connections, in all and per peer.
#[derive(Debug)]
pub(crate) struct ConnectionGate {
    max_total: usize,
    max_per_peer: usize,
    counts: Mutex<Counts>,
}

#[derive(Debug, Default)]
struct Counts {
    total: usize,
    per_peer: HashMap<IpAddr, usize>,
    /// Refusals since the last warning (refusals are warned about at most every 10 s).
    refused: u64,
    warned_at: Option<Instant>,
}

const WARN_EVERY: Duration = Duration::from_secs(10);

impl ConnectionGate {
    pub(crate) fn new(limits: &ServeLimits) -> Arc<Self> {
        Arc::new(Self {
            max_total: limits.max_connections.max(1),
            max_per_peer: limits.max_connections_per_peer.max(1),
            counts: Mutex::new(Counts::default()),
        })
    }

    /// A slot for a connection from `peer`, released when dropped; refused over either cap.
    pub(crate) fn admit(self: &Arc<Self>, peer: IpAddr) -> Result<ConnectionSlot, Refusal> {
        let key = peer_key(peer);
        let mut counts = self.lock();
        let refusal = if counts.total >= self.max_total {
            Some(Refusal::Full(self.max_total))
        } else if counts.per_peer.get(&key).copied().unwrap_or(0) >= self.max_per_peer {
            Some(Refusal::PeerFull(self.max_per_peer))
        } else {
            None
        };
        if let Some(refusal) = refusal {
            counts.refused += 1;
            let now = Instant::now();
            if counts.warned_at.is_none_or(|at| now.duration_since(at) >= WARN_EVERY) {
                tracing::warn!(
                    peer = %peer,
                    refused = counts.refused,
                    "connections refused: {refusal}; raise the limit if this load is expected"
                );
                counts.refused = 0;
                counts.warned_at = Some(now);
            } else {
                tracing::debug!(peer = %peer, "connection refused: {refusal}");
            }
            return Err(refusal);
        }
        counts.total += 1;
        *counts.per_peer.entry(key).or_insert(0) += 1;
        Ok(ConnectionSlot {
            gate: self.clone(),
            key,
        })
    }

    /// Connections open now.
    #[cfg(test)]
    fn open(&self) -> usize {
        self.lock().total
    }

    fn release(&self, key: IpAddr) {
        let mut counts = self.lock();
        counts.total = counts.total.saturating_sub(1);
        if let Some(n) = counts.per_peer.get_mut(&key) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                counts.per_peer.remove(&key);
            }
        }
    }

    fn lock(&self) -> MutexGuard<'_, Counts> {
        self.counts.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// One open connection's place in the [`ConnectionGate`].
#[derive(Debug)]
pub(crate) struct ConnectionSlot {
    gate: Arc<ConnectionGate>,
    key: IpAddr,
}

impl Drop for ConnectionSlot {
    fn drop(&mut self) {
        self.gate.release(self.key);
    }
}

/// The address a peer is counted under: IPv4 as is (IPv4-mapped IPv6 too), IPv6 by its
/// /64 (one host usually holds a whole /64).
fn peer_key(peer: IpAddr) -> IpAddr {
    match peer {
        IpAddr::V4(_) => peer,
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => {
                let s = v6.segments();
                IpAddr::V6(Ipv6Addr::new(s[0], s[1], s[2], s[3], 0, 0, 0, 0))
            }
        },
    }
}

/// Where a connection is between requests.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// Waiting for (the rest of) a request head.
    Head,
    /// This many requests are being answered.
    Busy(usize),
    /// Kept alive with nothing in flight, and no byte of the next request yet.
    Idle,
}

/// The phase of one connection and when it began.
#[derive(Debug)]
pub(crate) struct Activity {
    state: Mutex<(Phase, Instant)>,
}

impl Activity {
    /// A new connection: its first request head is due.
    pub(crate) fn new() -> Arc<Self> {
        Arc::new(Self {
            state: Mutex::new((Phase::Head, Instant::now())),
        })
    }

    /// Bytes arrived: on an idle connection, that starts a request head.
    fn read_some(&self) {
        let mut state = self.lock();
        if state.0 == Phase::Idle {
            *state = (Phase::Head, Instant::now());
        }
    }

    /// A request head was read in full; the request is being answered.
    pub(crate) fn request_started(&self) {
        let mut state = self.lock();
        let busy = match state.0 {
            Phase::Busy(n) => n + 1,
            Phase::Head | Phase::Idle => 1,
        };
        *state = (Phase::Busy(busy), Instant::now());
    }

    /// A request's answer was sent (or abandoned).
    fn request_done(&self) {
        let mut state = self.lock();
        *state = match state.0 {
            Phase::Busy(n) if n > 1 => (Phase::Busy(n - 1), state.1),
            _ => (Phase::Idle, Instant::now()),
        };
    }

    /// Completes when the current phase has lasted longer than `limits` allow, with why.
    pub(crate) async fn expired(&self, limits: &ServeLimits) -> &'static str {
        loop {
            let (phase, since) = *self.lock();
            let (limit, why) = match phase {
                Phase::Head => (limits.header_timeout, "request head not received in time"),
                Phase::Idle => (limits.keepalive_timeout, "idle keep-alive timeout"),
                Phase::Busy(_) => {
                    // Nothing to time here; look again later.
                    tokio::time::sleep(limits.header_timeout.min(limits.keepalive_timeout)).await;
                    continue;
                }
            };
            let deadline = since + limit;
            if Instant::now() >= deadline {
                return why;
            }
            // The phase may change meanwhile; it is looked at again on waking.
            tokio::time::sleep_until(deadline).await;
        }
    }

    /// Marks the end of a request when dropped (with its answer's body, or its handler).
    pub(crate) fn request_guard(self: &Arc<Self>) -> RequestGuard {
        RequestGuard(self.clone())
    }

    fn lock(&self) -> MutexGuard<'_, (Phase, Instant)> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// Ends a request's busy phase when dropped.
#[derive(Debug)]
pub(crate) struct RequestGuard(Arc<Activity>);

impl Drop for RequestGuard {
    fn drop(&mut self) {
        self.0.request_done();
    }
}

/// A connection's byte stream, telling its [`Activity`] when bytes arrive.
#[derive(Debug)]
pub(crate) struct Tracked<T> {
    inner: T,
    activity: Arc<Activity>,
}

impl<T> Tracked<T> {
    pub(crate) fn new(inner: T, activity: Arc<Activity>) -> Self {
        Self { inner, activity }
    }
}

impl<T: AsyncRead + Unpin> AsyncRead for Tracked<T> {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let polled = Pin::new(&mut self.inner).poll_read(cx, buf);
        if matches!(polled, Poll::Ready(Ok(()))) && buf.filled().len() > before {
            self.activity.read_some();
        }
        polled
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for Tracked<T> {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
}

/// An answer's body that ends its request's busy phase when it is dropped (sent in full,
/// or the connection closed).
pub(crate) struct TrackedBody {
    inner: axum::body::Body,
    _done: RequestGuard,
}

impl TrackedBody {
    pub(crate) fn new(inner: axum::body::Body, done: RequestGuard) -> Self {
        Self { inner, _done: done }
    }
}

impl hyper::body::Body for TrackedBody {
    type Data = <axum::body::Body as hyper::body::Body>::Data;
    type Error = <axum::body::Body as hyper::body::Body>::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<hyper::body::Frame<Self::Data>, Self::Error>>> {
        Pin::new(&mut self.inner).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> hyper::body::SizeHint {
        self.inner.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits(total: usize, per_peer: usize) -> ServeLimits {
        ServeLimits {
            max_connections: total,
            max_connections_per_peer: per_peer,
            ..ServeLimits::default()
        }
    }

    #[test]
    fn one_peer_cannot_take_every_slot_and_slots_come_back() {
        let gate = ConnectionGate::new(&limits(3, 2));
        let a: IpAddr = "10.0.0.1".parse().unwrap();
        let b: IpAddr = "10.0.0.2".parse().unwrap();
        let a1 = gate.admit(a).unwrap();
        let _a2 = gate.admit(a).unwrap();
        assert_eq!(gate.admit(a).unwrap_err(), Refusal::PeerFull(2));
        let _b1 = gate.admit(b).unwrap();
        assert_eq!(gate.admit(b).unwrap_err(), Refusal::Full(3));
        drop(a1);
        assert_eq!(gate.open(), 2);
        gate.admit(b).unwrap();
    }

    #[test]
    fn ipv6_peers_are_counted_by_their_64_and_mapped_ipv4_as_ipv4() {
        let gate = ConnectionGate::new(&limits(10, 1));
        let _one = gate.admit("2001:db8::1".parse().unwrap()).unwrap();
        assert!(gate.admit("2001:db8::ffff:2".parse().unwrap()).is_err(), "same /64");
        gate.admit("2001:db8:0:1::1".parse().unwrap()).unwrap();
        let _v4 = gate.admit("192.0.2.1".parse().unwrap()).unwrap();
        assert!(gate.admit("::ffff:192.0.2.1".parse().unwrap()).is_err());
    }

    #[tokio::test(start_paused = true)]
    async fn each_phase_has_its_own_limit_and_busy_has_none() {
        let limits = ServeLimits {
            header_timeout: Duration::from_secs(2),
            keepalive_timeout: Duration::from_secs(5),
            ..ServeLimits::default()
        };
        // A head that never completes: the header timeout.
        let activity = Activity::new();
        let start = Instant::now();
        assert_eq!(activity.expired(&limits).await, "request head not received in time");
        assert_eq!(start.elapsed(), Duration::from_secs(2));

        // Busy for a long time, then idle: the keep-alive timeout, counted from the answer.
        let activity = Activity::new();
        activity.request_started();
        let guard = activity.request_guard();
        let busy = tokio::time::timeout(Duration::from_secs(30), activity.expired(&limits)).await;
        assert!(busy.is_err(), "a busy connection is not timed out here");
        drop(guard);
        let start = Instant::now();
        assert_eq!(activity.expired(&limits).await, "idle keep-alive timeout");
        assert_eq!(start.elapsed(), Duration::from_secs(5));

        // A byte on an idle connection starts a head: the header timeout again.
        activity.read_some();
        let start = Instant::now();
        assert_eq!(activity.expired(&limits).await, "request head not received in time");
        assert_eq!(start.elapsed(), Duration::from_secs(2));
    }
}
