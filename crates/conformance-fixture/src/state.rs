//! State shared by every session of one fixture process: the key that seals MRTR
//! `requestState`, the open `subscriptions/listen` streams that list-changed hooks notify, and
//! the legacy `resources/subscribe` set.

use std::{
    collections::BTreeSet,
    hash::{BuildHasher, Hasher},
    sync::{Arc, Mutex, PoisonError},
};

use rmcp::{
    ErrorData as McpError,
    model::RequestStateCodec,
    service::{SubscriptionSendError, SubscriptionSink},
};
use serde_json::Value;

#[derive(Clone)]
pub struct FixtureState {
    inner: Arc<Inner>,
}

struct Inner {
    codec: RequestStateCodec,
    listeners: Mutex<Vec<SubscriptionSink>>,
    subscribed: Mutex<BTreeSet<String>>,
}

/// 32 bytes from the standard library's per-process random hash seeds: enough for a test
/// fixture's HMAC key without pulling in a crypto RNG.
fn random_key() -> Vec<u8> {
    (0..4u64)
        .flat_map(|i| {
            let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
            hasher.write_u64(i);
            hasher.finish().to_le_bytes()
        })
        .collect()
}

impl FixtureState {
    pub fn new() -> anyhow::Result<Self> {
        let codec = RequestStateCodec::try_new(random_key())?;
        Ok(Self {
            inner: Arc::new(Inner {
                codec,
                listeners: Mutex::new(Vec::new()),
                subscribed: Mutex::new(BTreeSet::new()),
            }),
        })
    }

    /// Seal a JSON value into an opaque, integrity-protected `requestState`.
    pub fn seal(&self, value: Value) -> Result<String, McpError> {
        self.inner
            .codec
            .seal_json(&value)
            .map_err(|e| McpError::internal_error(e.to_string(), None))
    }

    /// Open a `requestState` the client echoed back; forged or altered values are rejected.
    pub fn open(&self, sealed: &str) -> Result<Value, McpError> {
        self.inner
            .codec
            .open_json(sealed)
            .map_err(|e| McpError::invalid_params(format!("requestState integrity check failed: {e}"), None))
    }

    pub fn add_listener(&self, sink: SubscriptionSink) {
        lock(&self.inner.listeners).push(sink);
    }

    pub fn remove_listener(&self, sink: &SubscriptionSink) {
        lock(&self.inner.listeners).retain(|s| s.id() != sink.id());
    }

    pub async fn notify_tools_changed(&self) {
        for sink in self.listeners() {
            report(sink.notify_tool_list_changed().await);
        }
    }

    pub async fn notify_prompts_changed(&self) {
        for sink in self.listeners() {
            report(sink.notify_prompt_list_changed().await);
        }
    }

    fn listeners(&self) -> Vec<SubscriptionSink> {
        lock(&self.inner.listeners).clone()
    }

    pub fn subscribe(&self, uri: String) {
        lock(&self.inner.subscribed).insert(uri);
    }

    pub fn unsubscribe(&self, uri: &str) {
        lock(&self.inner.subscribed).remove(uri);
    }
}

/// A listener whose filter excludes a notification simply does not get it.
fn report(result: Result<(), SubscriptionSendError>) {
    match result {
        Ok(()) | Err(SubscriptionSendError::NotificationNotAccepted(_)) => {}
        Err(e) => tracing::debug!("list-changed notification not delivered: {e}"),
    }
}

/// The guarded data stays consistent even if a holder panicked, so poisoning is ignored.
fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}
