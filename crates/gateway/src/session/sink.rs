//! Where messages for a client go: onto the response stream of the request they
//! belong to when it is still open, else onto the session's general stream
//! (the GET stream, or stdout on the stdio front), else into a small bounded
//! backlog that the next general stream drains.
use std::{
    collections::{HashMap, VecDeque},
    sync::Mutex,
};

use serde_json::Value;
use tokio::sync::mpsc;

/// Most messages kept for a client that has no stream open (T17).
const BACKLOG_LIMIT: usize = 256;

/// The outbound half of one client session.
#[derive(Default)]
pub struct ClientSink {
    state: Mutex<SinkState>,
}

#[derive(Default)]
struct SinkState {
    by_request: HashMap<String, mpsc::Sender<Value>>,
    general: Option<mpsc::Sender<Value>>,
    backlog: VecDeque<Value>,
}

/// Key of a client request id (ids are strings or integers; compare their JSON text).
pub fn id_key(id: &Value) -> String {
    id.to_string()
}

impl ClientSink {
    fn lock(&self) -> std::sync::MutexGuard<'_, SinkState> {
        self.state.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Opens the stream of request `id`; messages related to it go there until `close_request`.
    pub fn open_request(&self, id: &Value) -> mpsc::Receiver<Value> {
        let (tx, rx) = mpsc::channel(64);
        self.lock().by_request.insert(id_key(id), tx);
        rx
    }

    pub fn close_request(&self, id: &Value) {
        self.lock().by_request.remove(&id_key(id));
    }

    /// Opens the general stream; refuses when one is already open.
    pub fn open_general(&self, capacity: usize) -> Option<mpsc::Receiver<Value>> {
        let mut state = self.lock();
        if state.general.as_ref().is_some_and(|g| !g.is_closed()) {
            return None;
        }
        let (tx, rx) = mpsc::channel(capacity.max(BACKLOG_LIMIT + 1));
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

    /// Delivers `msg`, preferring the stream of the related request.
    pub fn deliver(&self, msg: Value, related: Option<&Value>) {
        let mut state = self.lock();
        let mut msg = msg;
        if let Some(tx) = related.and_then(|id| state.by_request.get(&id_key(id))) {
            match tx.try_send(msg) {
                Ok(()) => return,
                Err(e) => msg = e.into_inner(),
            }
        }
        if let Some(tx) = &state.general {
            match tx.try_send(msg) {
                Ok(()) => return,
                Err(e) => msg = e.into_inner(),
            }
        }
        if state.backlog.len() >= BACKLOG_LIMIT {
            state.backlog.pop_front();
            tracing::warn!("client is not reading its stream; dropped the oldest queued message");
        }
        state.backlog.push_back(msg);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[tokio::test]
    async fn routes_to_request_then_general_then_backlog() {
        let sink = ClientSink::default();
        sink.deliver(json!("early"), None);
        let mut req = sink.open_request(&json!(1));
        sink.deliver(json!("for-1"), Some(&json!(1)));
        sink.deliver(json!("for-2"), Some(&json!(2)));
        assert_eq!(req.recv().await, Some(json!("for-1")));
        let mut general = sink.open_general(8).unwrap();
        assert!(sink.open_general(8).is_none(), "only one general stream");
        assert_eq!(general.recv().await, Some(json!("early")));
        assert_eq!(general.recv().await, Some(json!("for-2")));
        sink.close_request(&json!(1));
        sink.deliver(json!("late"), Some(&json!(1)));
        assert_eq!(general.recv().await, Some(json!("late")));
    }
}
