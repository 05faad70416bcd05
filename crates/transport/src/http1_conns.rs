//! Keep-alive HTTP/1.1 connections to plain `http://` upstreams.
//!
//! Forward step, hot path: each POST to a plain-HTTP upstream goes out on an idle
//! connection to that upstream (or a freshly dialled one) through hyper's HTTP/1 client
//! directly, skipping reqwest's pool checkout, retry layer and URL handling on every call.
//! Links to the same address share its idle connections, so idle sessions hold none of
//! their own. A connection goes back to the idle set only after its answer was read in
//! full: a JSON body at once, an SSE stream when it ends (read on after the request's answer
//! in the background, bounded; see `http_upstream::rest`). While such a stream's end is
//! first looked for, the connection is *settling*: a request finding no idle connection
//! waits for that look before dialling, so back-to-back calls keep one connection.
//! Connections go straight to the URL's host (proxy environment variables play no part).
//! `https://` upstreams (server-authenticated or mutual TLS) use the reqwest client built
//! for their TLS settings.
use std::{
    collections::{HashMap, VecDeque},
    error::Error as StdError,
    pin::pin,
    sync::{
        Arc, Mutex,
        atomic::{AtomicUsize, Ordering},
    },
    time::{Duration, Instant},
};

use bytes::Bytes;
use http::{HeaderValue, Request, Response, Uri, header::HOST, uri::PathAndQuery};
use http_body_util::Full;
use hyper::{
    body::Incoming,
    client::conn::http1::{self, SendRequest},
};
use hyper_util::rt::TokioIo;
use tokio::sync::Notify;

use crate::acking_stream::AckingStream;

/// A connection the upstream has not accepted by then is reported as a failure.
const DIAL_TIMEOUT: Duration = Duration::from_secs(10);
/// Idle connections kept per upstream address.
const MAX_IDLE: usize = 256;
/// An idle connection unused for this long is closed.
const IDLE_TIMEOUT: Duration = Duration::from_secs(90);

/// A failure to reach the upstream or to exchange the request, with its causes.
pub(crate) type SendError = Box<dyn StdError + Send + Sync>;

/// The HTTP client of every link: reqwest (for `https://`, with the TLS settings it was
/// built with) plus the shared idle connections of each plain-`http://` address.
#[derive(Clone, Default)]
pub struct HttpClient {
    reqwest: reqwest::Client,
    plain: Arc<Mutex<HashMap<String, Arc<Http1Conns>>>>,
}

impl HttpClient {
    pub fn new(reqwest: reqwest::Client) -> Self {
        Self {
            reqwest,
            plain: Arc::default(),
        }
    }

    pub(crate) fn reqwest(&self) -> &reqwest::Client {
        &self.reqwest
    }

    /// The connections for `url` when it is plain `http://` without user info, with the
    /// request target to send; `None` for anything else (the link then uses reqwest).
    pub(crate) fn plain(&self, url: &reqwest::Url) -> Option<(Arc<Http1Conns>, PathAndQuery)> {
        if url.scheme() != "http" || !url.username().is_empty() || url.password().is_some() {
            return None;
        }
        // `host_str` keeps the brackets of an IPv6 address, as an authority needs them.
        let host = url.host_str()?;
        let port = url.port_or_known_default()?;
        let address = format!("{host}:{port}");
        let authority = match url.port() {
            Some(_) => address.clone(),
            None => host.to_owned(),
        };
        let target = match url.query() {
            Some(query) => format!("{}?{query}", url.path()),
            None => url.path().to_owned(),
        };
        let target = PathAndQuery::try_from(target).ok()?;
        let host = HeaderValue::from_str(&authority).ok()?;
        let mut plain = self.plain.lock().ok()?;
        let conns = plain
            .entry(format!("{address} {authority}"))
            .or_insert_with(|| {
                Arc::new(Http1Conns {
                    address,
                    host,
                    idle: Mutex::new(VecDeque::new()),
                    settling: AtomicUsize::new(0),
                    settled: Notify::new(),
                })
            })
            .clone();
        Some((conns, target))
    }
}

/// An HTTP/1.1 connection an answer came on; give it back with [`Http1Conns::reuse`]
/// once the answer's body has been read.
pub(crate) struct Http1Conn(SendRequest<Full<Bytes>>);

/// The idle connections to one upstream address.
pub(crate) struct Http1Conns {
    /// `host:port` to dial.
    address: String,
    host: HeaderValue,
    /// Idle connections, the most recently used last, with when they became idle.
    idle: Mutex<VecDeque<(Instant, SendRequest<Full<Bytes>>)>>,
    /// Connections whose SSE answer has arrived and whose stream's end has not been looked
    /// for yet (each held by a [`Settling`]).
    settling: AtomicUsize,
    /// Told whenever a connection stops settling (given back or not).
    settled: Notify,
}

/// Held from the moment a request's answer arrived on an SSE stream until the rest of that
/// stream has been polled once: if the stream had ended by then, the connection is back in
/// the idle set; if not, it may stay open for long (see `http_upstream::rest`), and waiting
/// requests dial their own. Dropping it ends the settling.
pub(crate) struct Settling(Arc<Http1Conns>);

impl Drop for Settling {
    fn drop(&mut self) {
        self.0.settling.fetch_sub(1, Ordering::AcqRel);
        self.0.settled.notify_waiters();
    }
}

impl Http1Conns {
    /// Sends `request` to `target` (its URI and `Host` are set here) and returns the
    /// answer's head with the connection it came on. A request that an idle connection
    /// could not take (it closed meanwhile; nothing was written) goes out on a new one.
    pub(crate) async fn send(
        &self,
        target: &PathAndQuery,
        mut request: Request<Full<Bytes>>,
    ) -> Result<(Response<Incoming>, Http1Conn), SendError> {
        *request.uri_mut() = Uri::from(target.clone());
        request.headers_mut().insert(HOST, self.host.clone());
        // An idle connection's answer was read in full; its connection task may still have
        // to catch up before it takes the next request, which `ready` waits for. With none
        // idle, a connection about to come back (settling) is waited for once.
        let mut waited = false;
        loop {
            while let Some(mut sender) = self.take_idle() {
                if sender.ready().await.is_err() {
                    continue;
                }
                match sender.try_send_request(request).await {
                    Ok(response) => return Ok((response, Http1Conn(sender))),
                    Err(mut e) => match e.take_message() {
                        Some(unsent) => request = unsent,
                        None => return Err(Box::new(e.into_error())),
                    },
                }
            }
            if waited || !self.wait_settled().await {
                break;
            }
            waited = true;
        }
        let mut sender = self.dial().await?;
        let response = sender.send_request(request).await?;
        Ok((response, Http1Conn(sender)))
    }

    /// Keeps `conn` for a later request, if it can take one.
    pub(crate) fn reuse(&self, conn: Http1Conn) {
        if conn.0.is_closed() {
            return;
        }
        if let Ok(mut idle) = self.idle.lock()
            && idle.len() < MAX_IDLE
        {
            idle.push_back((Instant::now(), conn.0));
        }
    }

    /// Marks a connection as settling (see [`Settling`]) until the guard is dropped.
    pub(crate) fn settling(self: &Arc<Self>) -> Settling {
        self.settling.fetch_add(1, Ordering::AcqRel);
        Settling(self.clone())
    }

    /// Waits until some settling connection stops settling; `false` at once if none is.
    async fn wait_settled(&self) -> bool {
        let mut notified = pin!(self.settled.notified());
        // Registered before the count is read, so a settling that ends in between is seen.
        notified.as_mut().enable();
        if self.settling.load(Ordering::Acquire) == 0 {
            return false;
        }
        notified.await;
        true
    }

    /// The most recently used idle connection still open; connections idle for too long
    /// are closed on the way.
    fn take_idle(&self) -> Option<SendRequest<Full<Bytes>>> {
        let mut idle = self.idle.lock().ok()?;
        while idle.front().is_some_and(|(since, _)| since.elapsed() >= IDLE_TIMEOUT) {
            idle.pop_front();
        }
        while let Some((_, sender)) = idle.pop_back() {
            if !sender.is_closed() {
                return Some(sender);
            }
        }
        None
    }

    async fn dial(&self) -> Result<SendRequest<Full<Bytes>>, SendError> {
        let dial = tokio::net::TcpStream::connect(&self.address);
        let stream = match tokio::time::timeout(DIAL_TIMEOUT, dial).await {
            Ok(stream) => stream?,
            Err(_) => return Err(format!("no TCP connection to {} within {DIAL_TIMEOUT:?}", self.address).into()),
        };
        stream.set_nodelay(true)?;
        let (sender, connection) = http1::handshake(TokioIo::new(AckingStream::new(stream))).await?;
        tokio::spawn(async move {
            if let Err(e) = connection.await {
                tracing::debug!("upstream HTTP connection ended: {e}");
            }
        });
        Ok(sender)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::Ordering;

    use http_body_util::BodyExt;
    use tokio::net::TcpListener;

    use super::*;
    use crate::test_server::echo_server;

    fn post(body: &'static str) -> Request<Full<Bytes>> {
        let mut request = Request::new(Full::new(Bytes::from_static(body.as_bytes())));
        *request.method_mut() = http::Method::POST;
        request
    }

    async fn exchange(conns: &Http1Conns, target: &PathAndQuery, body: &'static str) -> Http1Conn {
        let (response, conn) = conns.send(target, post(body)).await.unwrap();
        assert_eq!(response.status(), 200);
        let answer = response.into_body().collect().await.unwrap().to_bytes();
        assert_eq!(answer, body.as_bytes());
        conn
    }

    #[tokio::test]
    async fn answered_connections_are_reused_and_shared_by_links_to_the_same_address() {
        let server = echo_server(false).await;
        let client = HttpClient::default();
        let (conns, target) = client.plain(&server.url).unwrap();
        for body in ["{\"n\":1}", "{\"n\":2}", "{\"n\":3}"] {
            let conn = exchange(&conns, &target, body).await;
            conns.reuse(conn);
        }
        // A second link to the same upstream takes the same idle connection.
        let (again, _) = client.plain(&server.url).unwrap();
        assert!(Arc::ptr_eq(&conns, &again));
        let conn = exchange(&again, &target, "{\"n\":4}").await;
        assert_eq!(
            server.connections.load(Ordering::SeqCst),
            1,
            "one connection carried all four"
        );
        // A connection not given back (its answer still in use) is not shared: a concurrent
        // request dials its own.
        let other = exchange(&conns, &target, "{\"n\":5}").await;
        assert_eq!(server.connections.load(Ordering::SeqCst), 2);
        drop((conn, other));
        let heads = server.heads.lock().unwrap().clone();
        let port = server.url.port().unwrap();
        for head in &heads {
            assert!(
                head.starts_with("POST /mcp?tenant=a HTTP/1.1\r\n"),
                "origin-form target: {head}"
            );
            assert!(
                head.to_ascii_lowercase()
                    .contains(&format!("host: 127.0.0.1:{port}\r\n")),
                "{head}"
            );
        }
    }

    #[tokio::test]
    async fn a_connection_the_server_closed_is_replaced() {
        let server = echo_server(true).await;
        let client = HttpClient::default();
        let (conns, target) = client.plain(&server.url).unwrap();
        let conn = exchange(&conns, &target, "{\"n\":1}").await;
        conns.reuse(conn);
        tokio::time::sleep(Duration::from_millis(50)).await;
        let conn = exchange(&conns, &target, "{\"n\":2}").await;
        drop(conn);
        assert_eq!(server.connections.load(Ordering::SeqCst), 2);
    }

    #[tokio::test]
    async fn an_unreachable_upstream_fails_with_the_cause() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = reqwest::Url::parse(&format!("http://{}/mcp", listener.local_addr().unwrap())).unwrap();
        drop(listener);
        let (conns, target) = HttpClient::default().plain(&url).unwrap();
        let Err(error) = conns.send(&target, post("{}")).await else {
            panic!("nothing listens there");
        };
        assert!(error.to_string().to_lowercase().contains("refused"), "{error}");
    }

    #[test]
    fn only_plain_http_without_user_info_takes_this_path() {
        let client = HttpClient::default();
        let plain = |u: &str| client.plain(&reqwest::Url::parse(u).unwrap()).is_some();
        assert!(plain("http://localhost/mcp"));
        assert!(plain("http://[::1]:8080/mcp"));
        assert!(!plain("https://localhost/mcp"));
        assert!(!plain("http://user:secret@localhost/mcp"));
        let (conns, target) = client.plain(&reqwest::Url::parse("http://[::1]/mcp").unwrap()).unwrap();
        assert_eq!((conns.address.as_str(), target.as_str()), ("[::1]:80", "/mcp"));
        assert_eq!(conns.host, "[::1]");
    }
}
