//! The gateway's view of one upstream connection: send messages, receive events.
use std::sync::{Arc, OnceLock};

use portcullis_mcp::Message;
use serde_json::Value;
use tokio::sync::mpsc;

use crate::stdin_writer::StdinWriter;

/// Something that happened on an upstream connection.
#[derive(Debug)]
pub enum LinkEvent {
    /// A message from the server. `related` is the id of the request (as sent
    /// upstream) this message belongs to, when the transport knows it (HTTP).
    Message { msg: Message, related: Option<Value> },
    /// The server sent something that is not a JSON-RPC message.
    Malformed { reason: String },
    /// The connection is gone; `reason` says why (exit status, HTTP error).
    Closed { reason: String },
}

/// One upstream connection.
pub struct Link {
    /// Messages to send to the server, in order.
    pub tx: mpsc::Sender<Message>,
    /// Everything the server sends, in order, ending with `Closed`.
    pub rx: mpsc::Receiver<LinkEvent>,
    /// Stops the connection (kills the child, closes the HTTP session) when dropped.
    pub guard: LinkGuard,
    /// Send from the caller's own task where the transport allows it (see [`DirectRequests`]).
    pub direct: Option<DirectRequests>,
    /// stdio: set a handler here and the task that reads the child's stdout calls it with
    /// each event instead of sending it on `rx` (see [`EventHandler`]). `None`: events
    /// always come on `rx`.
    pub handler: Option<HandlerSlot>,
}

/// Takes a link's events where they are read, in order: no channel and no second task
/// between the transport's reader and the consumer (the stdio answer goes straight from
/// the reader to the waiting call). Returns `false` to stop reading (the consumer gave up
/// on the link). It runs on the reader's task: it must not block.
pub type EventHandler = Arc<dyn Fn(LinkEvent) -> bool + Send + Sync>;

/// Where a consumer sets its [`EventHandler`] (once). Events read before it is set come on
/// the link's `rx` (a server may write before the consumer is ready); every later one goes
/// to the handler.
pub type HandlerSlot = Arc<OnceLock<EventHandler>>;

/// Where a transport's tasks put the events they read: the consumer's handler once set,
/// else the link's channel.
#[derive(Clone)]
pub(crate) struct EventSink {
    pub(crate) handler: HandlerSlot,
    pub(crate) events: mpsc::Sender<LinkEvent>,
}

impl EventSink {
    /// Delivers `event`. `false`: stop reading (the handler said so, or nobody receives
    /// the channel any more).
    pub(crate) async fn send(&self, event: LinkEvent) -> bool {
        match self.handler.get() {
            Some(handler) => handler(event),
            None => self.events.send(event).await.is_ok(),
        }
    }
}

/// Sends from the caller's task, skipping the hop through the link's writer task and its
/// channel (the hot path).
///
/// * HTTP: a request is POSTed and its answer handed straight back when it comes as one JSON
///   body or as the first message of an SSE stream. An answer that follows other messages on
///   its stream (they are delivered on `rx` first, in order), or an HTTP failure, is
///   delivered on `rx`, and [`Self::request`] returns `None`. Notifications and responses
///   still go through the link's queue, which keeps them in order.
/// * stdio: every message is queued as one line for the child's stdin and written in batches
///   by whichever caller got there first (`StdinWriter`), shared with the link's writer
///   task, so lines never interleave and one task's messages keep their order; the answer
///   arrives on `rx`, or at the link's [`EventHandler`] once one is set.
#[derive(Clone)]
pub struct DirectRequests(pub(crate) Direct);

#[derive(Clone)]
pub(crate) enum Direct {
    Http(crate::http_upstream::Conn),
    Stdio(StdinWriter),
}

impl DirectRequests {
    /// Sends `msg` (a request other than `initialize`) and returns its answer when the
    /// transport gave it back at once; otherwise the answer arrives on the link's `rx`.
    pub async fn request(&self, msg: Message) -> Option<Message> {
        self.request_with(msg, None).await
    }

    /// [`Self::request`], with one more header on this request alone (a per-call
    /// credential, marked sensitive). Returns `Err(msg)` when the transport has no
    /// headers (stdio): the header cannot be delivered and nothing was sent.
    pub async fn request_with_header(&self, msg: Message, header: &CallHeader) -> Result<Option<Message>, Message> {
        match &self.0 {
            Direct::Http(_) => Ok(self.request_with(msg, Some(header)).await),
            Direct::Stdio(_) => Err(msg),
        }
    }

    async fn request_with(&self, msg: Message, header: Option<&CallHeader>) -> Option<Message> {
        match &self.0 {
            Direct::Http(conn) => conn.post_direct(msg, header).await,
            Direct::Stdio(stdin) => {
                // A failed write means the child is going away: its exit reaches `rx` as `Closed`.
                stdin.write(&msg).await;
                None
            }
        }
    }

    /// Sends a notification or response from the caller's task when this transport keeps
    /// them in order that way (stdio): `Ok(false)` if the server no longer reads. Otherwise
    /// hands `msg` back for the link's queue.
    pub async fn send(&self, msg: Message) -> Result<bool, Message> {
        match &self.0 {
            Direct::Http(_) => Err(msg),
            Direct::Stdio(stdin) => Ok(stdin.write(&msg).await),
        }
    }
}

/// A header sent with one request only: a per-call credential. Its value is marked
/// sensitive (never logged by the HTTP stack, kept out of HPACK tables).
#[derive(Clone)]
pub struct CallHeader {
    pub name: http::HeaderName,
    pub value: http::HeaderValue,
}

impl CallHeader {
    /// `None` when `name` or `value` is not valid in an HTTP header.
    pub fn new(name: &str, value: &str) -> Option<Self> {
        let name = http::HeaderName::from_bytes(name.as_bytes()).ok()?;
        let mut value = http::HeaderValue::from_str(value).ok()?;
        value.set_sensitive(true);
        Some(Self { name, value })
    }
}

impl std::fmt::Debug for CallHeader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "CallHeader({}: [redacted])", self.name)
    }
}

/// Dropping this ends the connection's background tasks.
pub struct LinkGuard {
    pub(crate) _stop: tokio::sync::oneshot::Sender<()>,
}

/// Capacity of link channels: bounded so a flooding server cannot grow memory (T17).
pub(crate) const LINK_CAPACITY: usize = 256;
