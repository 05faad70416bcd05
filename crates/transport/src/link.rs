//! The gateway's view of one upstream connection: send messages, receive events.
use std::sync::Arc;

use portcullis_mcp::Message;
use serde_json::Value;
use tokio::{
    io::AsyncWriteExt,
    process::ChildStdin,
    sync::{Mutex, mpsc},
};

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
}

/// Sends from the caller's task, skipping the hop through the link's writer task and its
/// channel (the hot path).
///
/// * HTTP: a request is POSTed and a plain JSON answer handed straight back. An answer that
///   does not come back as one JSON body (an SSE stream with notifications, an HTTP failure)
///   is delivered on `rx` as before, and [`Self::request`] returns `None`. Notifications and
///   responses still go through the link's queue, which keeps them in order.
/// * stdio: every message is written to the child's stdin under a lock shared with the
///   writer task, so lines never interleave and one task's messages keep their order; the
///   answer arrives on `rx`.
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
        match &self.0 {
            Direct::Http(conn) => conn.post_direct(msg).await,
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

/// A child's stdin, shared by the link's writer task and callers writing directly.
#[derive(Clone)]
pub(crate) struct StdinWriter(pub(crate) Arc<Mutex<ChildStdin>>);

impl StdinWriter {
    /// Writes `msg` as one line; false if the child no longer reads.
    pub(crate) async fn write(&self, msg: &Message) -> bool {
        let mut bytes = msg.to_bytes();
        bytes.push(b'\n');
        let mut stdin = self.0.lock().await;
        let written = stdin.write_all(&bytes).await.is_ok() && stdin.flush().await.is_ok();
        if !written {
            tracing::debug!("a stdio server's stdin is closed; its exit is reported on the link");
        }
        written
    }
}

/// Dropping this ends the connection's background tasks.
pub struct LinkGuard {
    pub(crate) _stop: tokio::sync::oneshot::Sender<()>,
}

/// Capacity of link channels: bounded so a flooding server cannot grow memory (T17).
pub(crate) const LINK_CAPACITY: usize = 256;
