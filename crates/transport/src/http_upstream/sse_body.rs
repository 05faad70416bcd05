//! The body of an SSE answer, read chunk by chunk, and what happens to its connection: on
//! the upstream's shared plain-HTTP connections (the hot path) the connection goes back to
//! the idle set the moment the stream ends cleanly; from reqwest (`https://`, and the GET
//! streams) reqwest's pool takes it back once the body is read to its end. A stream dropped
//! before its end closes its connection in both cases.
use std::sync::Arc;

use bytes::Bytes;
use http_body_util::BodyExt;
use hyper::body::Incoming;

use crate::http1_conns::{Http1Conn, Http1Conns, Settling};

/// An SSE body being read.
pub(super) enum SseBody {
    /// On a shared plain-HTTP connection, given back to its upstream's idle set at the
    /// stream's end (`None` once given back or broken).
    Plain {
        body: Incoming,
        conn: Option<(Http1Conn, Arc<Http1Conns>)>,
    },
    Reqwest(reqwest::Response),
}

impl SseBody {
    /// The next chunk of data: `None` at the stream's end (its connection is reusable now),
    /// `Some(Err)` if it broke (the connection is not reused).
    pub(super) async fn chunk(&mut self) -> Option<Result<Bytes, String>> {
        match self {
            Self::Plain { body, conn } => loop {
                match body.frame().await {
                    // Trailers carry nothing for SSE: skipped.
                    Some(Ok(frame)) => match frame.into_data() {
                        Ok(data) => return Some(Ok(data)),
                        Err(_) => continue,
                    },
                    Some(Err(e)) => {
                        conn.take();
                        return Some(Err(e.to_string()));
                    }
                    None => {
                        if let Some((conn, conns)) = conn.take() {
                            conns.reuse(conn);
                        }
                        return None;
                    }
                }
            },
            Self::Reqwest(response) => response.chunk().await.map_err(|e| e.to_string()).transpose(),
        }
    }

    /// Marks the connection as settling (see [`Settling`]): the answer has arrived and the
    /// stream's end is looked for next. `None` off the shared plain-HTTP connections.
    pub(super) fn settling(&self) -> Option<Settling> {
        match self {
            Self::Plain { conn, .. } => conn.as_ref().map(|(_, conns)| conns.settling()),
            Self::Reqwest(_) => None,
        }
    }
}
