//! Where messages for a client go: onto the response stream of the request they
//! belong to when it is still open, else onto the session's general stream
//! (the GET stream, or stdout on the stdio front), else into a small bounded
//! backlog that the next general stream drains. What is queued for one client is bounded
//! in bytes as well as in messages (T23): a server flooding a client that does not read
//! fills the client's budget, and the rest is dropped (a server request answered with an
//! error), never the gateway's memory.
use std::{
    collections::{HashMap, VecDeque},
    sync::{
        Arc, Mutex,
        atomic::{AtomicUsize, Ordering},
    },
};

use portcullis_mcp::encode::json_size;
use serde_json::Value;
use tokio::sync::Notify;

/// Most messages kept for a client that has no stream open (T17).
const BACKLOG_LIMIT: usize = 256;

/// Most bytes (estimated JSON size) of server messages queued for one client, on its
/// streams and in its backlog together (T23): a server that floods a client that does not
/// read fills this, not the gateway's memory.
pub const QUEUED_BYTES_LIMIT: usize = 16 * 1024 * 1024;

/// The outbound half of one client session.
pub struct ClientSink {
    state: Mutex<SinkState>,
    /// Estimated bytes of messages queued and not yet taken by a front.
    queued: Arc<AtomicUsize>,
    limit: usize,
}

impl Default for ClientSink {
    fn default() -> Self {
        Self::with_limit(QUEUED_BYTES_LIMIT)
    }
}

#[derive(Default)]
struct SinkState {
    by_request: HashMap<IdKey, StreamSender>,
    general: Option<StreamSender>,
    backlog: VecDeque<Sized>,
}

/// A queued message and the bytes it was counted as.
type Sized = (Value, usize);

/// The messages of one stream (a request's own, or the general one): the sink adds without
/// waiting, the front takes them in order and waits when there are none. Every HTTP request
/// that accepts SSE opens one, so it is kept light: one small allocation (the queue's
/// buffer only once a message comes), where a tokio channel took two and 3.1 KB per request
/// (docs/benchmarks.md "Instructions per call, counted (issue 21 item 5, 2026-12-06, tenth
/// session)").
struct Stream {
    state: Mutex<StreamState>,
    ready: Notify,
    capacity: usize,
}

#[derive(Default)]
struct StreamState {
    items: VecDeque<Sized>,
    /// The sink let go of the stream: nothing more will come.
    sender_gone: bool,
    /// The front let go of the stream: nothing added would be read.
    receiver_gone: bool,
}

impl Stream {
    /// A stream of at most `capacity` waiting messages, and its two ends.
    fn open(capacity: usize, queued: Arc<AtomicUsize>) -> (StreamSender, SinkReceiver) {
        let stream = Arc::new(Self {
            state: Mutex::default(),
            ready: Notify::new(),
            capacity,
        });
        (StreamSender(stream.clone()), SinkReceiver { stream, queued })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, StreamState> {
        self.state.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// The sink's end of a stream.
struct StreamSender(Arc<Stream>);

impl StreamSender {
    /// Adds `item` unless the stream is full or no longer read; gives it back then.
    fn try_send(&self, item: Sized) -> Result<(), Sized> {
        let mut state = self.0.lock();
        if state.receiver_gone || state.items.len() >= self.0.capacity {
            return Err(item);
        }
        state.items.push_back(item);
        drop(state);
        // A permit is kept when nobody waits, so a receiver about to wait still wakes.
        self.0.ready.notify_one();
        Ok(())
    }

    /// Whether the front stopped reading.
    fn is_closed(&self) -> bool {
        self.0.lock().receiver_gone
    }
}

impl Drop for StreamSender {
    fn drop(&mut self) {
        self.0.lock().sender_gone = true;
        self.0.ready.notify_one();
    }
}

/// The client is not taking its messages: the one that would exceed the byte budget was
/// not queued.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the client is not reading its stream: {queued} bytes are queued for it (limit {limit})")]
pub struct Full {
    pub queued: usize,
    pub limit: usize,
}

/// Key of a request id: ids are strings or integers (the envelope check refuses anything
/// else), and an integer id, the common kind, makes a key without allocating. A string id
/// never equals an integer one (`"1"` is not `1`), as on the wire.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum IdKey {
    Int(i64),
    Uint(u64),
    Text(String),
    /// Anything else, by its JSON text (never from a checked message).
    Other(String),
}

impl IdKey {
    /// The id this key was made from.
    pub fn value(&self) -> Option<Value> {
        match self {
            Self::Int(i) => Some(Value::from(*i)),
            Self::Uint(u) => Some(Value::from(*u)),
            Self::Text(s) => Some(Value::String(s.clone())),
            Self::Other(text) => serde_json::from_str(text).ok(),
        }
    }
}

/// The key of request id `id`.
pub fn id_key(id: &Value) -> IdKey {
    match id {
        Value::Number(n) => match (n.as_i64(), n.as_u64()) {
            (Some(i), _) => IdKey::Int(i),
            (None, Some(u)) => IdKey::Uint(u),
            _ => IdKey::Other(n.to_string()),
        },
        Value::String(s) => IdKey::Text(s.clone()),
        other => IdKey::Other(other.to_string()),
    }
}

/// A stream of messages for the client; what it hands out leaves the byte budget, and
/// what it still holds when dropped does too.
pub struct SinkReceiver {
    stream: Arc<Stream>,
    queued: Arc<AtomicUsize>,
}

impl SinkReceiver {
    /// The next message; `None` once the sink let go of the stream and it is empty.
    /// Cancel-safe: a message is taken only when it is returned.
    pub async fn recv(&mut self) -> Option<Value> {
        loop {
            {
                let mut state = self.stream.lock();
                if let Some((msg, size)) = state.items.pop_front() {
                    drop(state);
                    self.queued.fetch_sub(size, Ordering::AcqRel);
                    return Some(msg);
                }
                if state.sender_gone {
                    return None;
                }
            }
            self.stream.ready.notified().await;
        }
    }

    /// The next message if one is waiting.
    pub fn try_recv(&mut self) -> Option<Value> {
        let (msg, size) = self.stream.lock().items.pop_front()?;
        self.queued.fetch_sub(size, Ordering::AcqRel);
        Some(msg)
    }
}

impl Drop for SinkReceiver {
    fn drop(&mut self) {
        let mut state = self.stream.lock();
        state.receiver_gone = true;
        for (_, size) in state.items.drain(..) {
            self.queued.fetch_sub(size, Ordering::AcqRel);
        }
    }
}

impl ClientSink {
    /// A sink holding at most `limit` bytes of queued messages.
    pub fn with_limit(limit: usize) -> Self {
        Self {
            state: Mutex::default(),
            queued: Arc::default(),
            limit,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, SinkState> {
        self.state.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Opens the stream of request `id`; messages related to it go there until `close_request`.
    pub fn open_request(&self, id: &Value) -> SinkReceiver {
        let (tx, rx) = Stream::open(64, self.queued.clone());
        self.lock().by_request.insert(id_key(id), tx);
        rx
    }

    pub fn close_request(&self, id: &Value) {
        self.lock().by_request.remove(&id_key(id));
    }

    /// Opens the general stream; refuses when one is already open.
    pub fn open_general(&self, capacity: usize) -> Option<SinkReceiver> {
        let mut state = self.lock();
        if state.general.as_ref().is_some_and(|g| !g.is_closed()) {
            return None;
        }
        let (tx, rx) = Stream::open(capacity.max(BACKLOG_LIMIT + 1), self.queued.clone());
        for msg in state.backlog.drain(..) {
            let _ = tx.try_send(msg);
        }
        state.general = Some(tx);
        Some(rx)
    }

    /// Whether a general stream is open.
    pub fn has_general(&self) -> bool {
        self.lock().general.as_ref().is_some_and(|g| !g.is_closed())
    }

    /// Bytes queued for the client now.
    pub fn queued_bytes(&self) -> usize {
        self.queued.load(Ordering::Acquire)
    }

    /// Delivers `msg`, preferring the stream of the related request. Refused, and not
    /// queued, when the client's queued bytes would exceed the limit.
    pub fn deliver(&self, msg: Value, related: Option<&Value>) -> Result<(), Full> {
        let size = json_size(&msg);
        let before = self.queued.fetch_add(size, Ordering::AcqRel);
        if before + size > self.limit {
            self.queued.fetch_sub(size, Ordering::AcqRel);
            return Err(Full {
                queued: before,
                limit: self.limit,
            });
        }
        let mut state = self.lock();
        let mut item = (msg, size);
        if let Some(tx) = related.and_then(|id| state.by_request.get(&id_key(id))) {
            match tx.try_send(item) {
                Ok(()) => return Ok(()),
                Err(back) => item = back,
            }
        }
        if let Some(tx) = &state.general {
            match tx.try_send(item) {
                Ok(()) => return Ok(()),
                Err(back) => item = back,
            }
        }
        if state.backlog.len() >= BACKLOG_LIMIT
            && let Some((_, dropped)) = state.backlog.pop_front()
        {
            self.queued.fetch_sub(dropped, Ordering::AcqRel);
            tracing::warn!("client is not reading its stream; dropped the oldest queued message");
        }
        state.backlog.push_back(item);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[tokio::test]
    async fn routes_to_request_then_general_then_backlog() {
        let sink = ClientSink::default();
        sink.deliver(json!("early"), None).unwrap();
        let mut req = sink.open_request(&json!(1));
        sink.deliver(json!("for-1"), Some(&json!(1))).unwrap();
        sink.deliver(json!("for-2"), Some(&json!(2))).unwrap();
        assert_eq!(req.recv().await, Some(json!("for-1")));
        let mut general = sink.open_general(8).unwrap();
        assert!(sink.open_general(8).is_none(), "only one general stream");
        assert_eq!(general.recv().await, Some(json!("early")));
        assert_eq!(general.recv().await, Some(json!("for-2")));
        sink.close_request(&json!(1));
        sink.deliver(json!("late"), Some(&json!(1))).unwrap();
        assert_eq!(general.recv().await, Some(json!("late")));
    }

    #[test]
    fn request_id_keys_tell_strings_from_integers_and_match_equal_ids() {
        assert_eq!(id_key(&json!(7)), id_key(&json!(7)));
        assert_eq!(id_key(&json!("7")), id_key(&json!("7")));
        assert_ne!(id_key(&json!(7)), id_key(&json!("7")));
        assert_ne!(id_key(&json!(-1)), id_key(&json!(u64::MAX)));
        assert_eq!(id_key(&json!(u64::MAX)), IdKey::Uint(u64::MAX));
        assert_eq!(id_key(&json!(-3)), IdKey::Int(-3));
        assert_ne!(id_key(&json!(1)), id_key(&json!(1.0)));
        for id in [json!(7), json!(-3), json!(u64::MAX), json!("seven"), json!(1.5)] {
            assert_eq!(id_key(&id).value(), Some(id));
        }
    }

    #[tokio::test]
    async fn t23_queued_bytes_are_bounded_and_released_when_taken_or_dropped() {
        let big = json!("x".repeat(1000));
        let sink = ClientSink::with_limit(10 * json_size(&big));
        for _ in 0..10 {
            sink.deliver(big.clone(), None).unwrap();
        }
        let full = sink.deliver(big.clone(), None).unwrap_err();
        assert_eq!(full.limit, 10 * json_size(&big));
        let mut general = sink.open_general(4).unwrap();
        general.recv().await.unwrap();
        sink.deliver(big.clone(), None).expect("one taken, one more fits");
        assert!(sink.deliver(big.clone(), None).is_err());
        drop(general);
        assert_eq!(sink.queued_bytes(), 0, "a dropped stream gives its bytes back");
        let req = sink.open_request(&json!(7));
        sink.deliver(big.clone(), Some(&json!(7))).unwrap();
        assert_eq!(sink.queued_bytes(), json_size(&big));
        drop(req);
        assert_eq!(sink.queued_bytes(), 0);
    }

    /// A request's stream ends once the sink lets go of it and what it held is read; a
    /// message that does not fit goes on; a receiver that waits is woken by the next one.
    #[tokio::test]
    async fn a_request_stream_ends_overflows_and_wakes_its_reader() {
        let sink = Arc::new(ClientSink::default());
        let mut req = sink.open_request(&json!(1));
        for i in 0..65 {
            sink.deliver(json!(i), Some(&json!(1))).unwrap();
        }
        sink.close_request(&json!(1));
        for i in 0..64 {
            assert_eq!(req.recv().await, Some(json!(i)));
        }
        assert_eq!(req.recv().await, None, "let go of and drained");
        assert_eq!(req.try_recv(), None);
        let mut general = sink.open_general(8).unwrap();
        assert_eq!(general.try_recv(), Some(json!(64)), "the 65th went on to the backlog");

        let mut waiting = sink.open_request(&json!("w"));
        let task = tokio::spawn(async move { waiting.recv().await });
        tokio::task::yield_now().await;
        sink.deliver(json!("late"), Some(&json!("w"))).unwrap();
        assert_eq!(task.await.unwrap(), Some(json!("late")));

        drop(general);
        assert!(!sink.has_general(), "a dropped general stream is closed");
        assert!(sink.open_general(8).is_some(), "and another may open");
        assert_eq!(sink.queued_bytes(), 0);
    }
}
