//! The rest of an answer stream, after the request's answer: read in the background to its
//! end so that its connection goes back for reuse — servers built on the official SDKs end
//! the stream right after the answer. Bounded: a stream still open [`DRAIN_TIME`] after the
//! answer (a server that keeps it open, a `subscriptions/listen` that goes on) or sending
//! more than the message size limit after it is dropped with its connection. Messages that
//! do arrive after the answer are still delivered on the link.
use std::{sync::Arc, time::Duration};

use bytes::Bytes;
use futures::FutureExt;
use portcullis_mcp::Message;
use serde_json::Value;
use tokio::sync::mpsc;

use super::{Conn, HttpSpec, sse_body::SseBody};
use crate::{LinkEvent, http1_conns::Settling, sse};

/// How long the rest of an answered stream is read for before its connection is dropped.
const DRAIN_TIME: Duration = Duration::from_secs(1);

impl Conn {
    /// Reads the rest of an answered stream in the background (see [`Rest`]).
    pub(super) fn read_rest(&self, body: SseBody, parser: sse::Parser, related: Option<Value>) {
        let rest = Rest {
            settling: body.settling(),
            body,
            parser,
            related,
            spec: self.spec.clone(),
            events: self.events.clone(),
        };
        tokio::spawn(rest.read());
    }
}

/// The rest of an answer stream after the answer: read to its end so that its connection
/// goes back for reuse, within [`DRAIN_TIME`] and the message size limit; what it carries
/// is delivered on the link.
struct Rest {
    /// Marks the connection as about to come back until the first look at the stream's end.
    settling: Option<Settling>,
    body: SseBody,
    parser: sse::Parser,
    related: Option<Value>,
    spec: Arc<HttpSpec>,
    events: mpsc::Sender<LinkEvent>,
}

/// One read from the body: a chunk, its end (`None`) or why it broke.
type Chunk = Option<Result<Bytes, String>>;

impl Rest {
    async fn read(mut self) {
        // One look without waiting: a server that ends the stream with its answer has usually
        // ended it by now, and the connection is back before a waiting request dials.
        let first = self.body.chunk().now_or_never();
        self.settling = None;
        if matches!(first, Some(None)) {
            return;
        }
        let name = self.spec.name.clone();
        if tokio::time::timeout(DRAIN_TIME, self.read_on(first)).await.is_err() {
            tracing::debug!(server = %name, "an answered SSE stream stayed open for {DRAIN_TIME:?}; its connection is closed");
        }
    }

    /// Reads on from `next` (a chunk already read, if any) to the end of the stream.
    async fn read_on(&mut self, mut next: Option<Chunk>) {
        let mut read = 0usize;
        loop {
            let chunk = match next.take() {
                Some(chunk) => chunk,
                None => self.body.chunk().await,
            };
            let bytes = match chunk {
                None => return,
                Some(Ok(bytes)) => bytes,
                Some(Err(e)) => {
                    tracing::debug!(server = %self.spec.name, "an answered SSE stream broke off: {e}");
                    return;
                }
            };
            read += bytes.len();
            if read > self.spec.limits.max_bytes {
                tracing::debug!(
                    server = %self.spec.name,
                    "an answered SSE stream sent over {} bytes after the answer; its connection is closed",
                    self.spec.limits.max_bytes
                );
                return;
            }
            let events = match self.parser.push(&bytes) {
                Ok(events) => events,
                Err(e) => {
                    let _ = self.events.send(LinkEvent::Malformed { reason: e.to_string() }).await;
                    return;
                }
            };
            for event in events {
                let ev = match Message::parse_forwardable(Bytes::from(event.data), self.spec.limits) {
                    Ok(msg) => LinkEvent::Message {
                        msg,
                        related: self.related.clone(),
                    },
                    Err(e) => LinkEvent::Malformed { reason: e.to_string() },
                };
                if self.events.send(ev).await.is_err() {
                    return;
                }
            }
        }
    }
}
