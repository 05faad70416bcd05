//! The gateway's view of one upstream connection: send messages, receive events.
use portcullis_mcp::Message;
use serde_json::Value;
use tokio::sync::mpsc;

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
    /// HTTP links only: send requests from the caller's own task (see [`DirectRequests`]).
    pub direct: Option<DirectRequests>,
}

/// Sends a request straight from the caller's task and hands back a plain JSON answer,
/// skipping the hops through the link's tasks and channels (HTTP upstreams; the hot path).
///
/// An answer that does not come back as one JSON body (an SSE stream with
/// notifications, an HTTP failure) is delivered on `rx` as before, and
/// [`Self::request`] returns `None`.
#[derive(Clone)]
pub struct DirectRequests(pub(crate) crate::http_upstream::Conn);

impl DirectRequests {
    /// POSTs `msg` (a request other than `initialize`) and returns its answer when it
    /// came back as a JSON body; otherwise the answer arrives on the link's `rx`.
    pub async fn request(&self, msg: Message) -> Option<Message> {
        self.0.post_direct(msg).await
    }
}

/// Dropping this ends the connection's background tasks.
pub struct LinkGuard {
    pub(crate) _stop: tokio::sync::oneshot::Sender<()>,
}

/// Capacity of link channels: bounded so a flooding server cannot grow memory (T17).
pub(crate) const LINK_CAPACITY: usize = 256;
