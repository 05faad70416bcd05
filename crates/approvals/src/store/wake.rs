//! Waking a call that waits on an approval request when another replica decides it.
//! Every change to a request is announced with `pg_notify` inside the transaction that
//! makes it, so only committed changes are heard; one listening connection per gateway
//! (sqlx `PgListener`) wakes the call waiting here on that request, which then reads the
//! request's row. Notifications are lost while the listening connection is down: when it
//! is back every waiting call re-reads its row, and each also re-reads every
//! [`SAFETY_RECHECK`] whatever it heard — a safety net, not the way answers arrive.
use std::{
    collections::HashMap,
    sync::{Arc, Mutex, MutexGuard},
    time::Duration,
};

use sqlx::postgres::{PgListener, PgPool};
use tokio::sync::Notify;

/// The channel every schema's changes are announced on; the payload is `<schema>/<id>`
/// (a schema name holds no `/`), so gateways of other schemas on the database ignore it.
pub(crate) const CHANNEL: &str = "portcullis_approvals";

/// How often a waiting call re-reads its request even when it heard nothing.
pub(crate) const SAFETY_RECHECK: Duration = Duration::from_secs(5);

/// Pause before listening again after the listening connection failed.
const RECONNECT_PAUSE: Duration = Duration::from_secs(1);

/// The calls waiting on this gateway, by request id.
#[derive(Default)]
pub(crate) struct Waiters {
    map: Mutex<HashMap<String, Arc<Notify>>>,
}

/// One call's place among the waiters; leaves when dropped.
pub(crate) struct Waiting {
    waiters: Arc<Waiters>,
    id: String,
    pub(crate) notify: Arc<Notify>,
}

impl Drop for Waiting {
    fn drop(&mut self) {
        self.waiters.map().remove(&self.id);
    }
}

impl Waiters {
    fn map(&self) -> MutexGuard<'_, HashMap<String, Arc<Notify>>> {
        // Insert and remove are single operations: a poisoned map is still consistent.
        self.map.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Registers a call waiting on request `id`. A wake-up that arrives before the call
    /// waits is kept (`Notify` stores one permit), so none is lost between reading the
    /// row and waiting.
    pub(crate) fn register(self: &Arc<Self>, id: &str) -> Waiting {
        let notify = self.map().entry(id.to_owned()).or_default().clone();
        Waiting {
            waiters: self.clone(),
            id: id.to_owned(),
            notify,
        }
    }

    pub(crate) fn wake(&self, id: &str) {
        if let Some(notify) = self.map().get(id) {
            notify.notify_one();
        }
    }

    fn wake_all(&self) {
        for notify in self.map().values() {
            notify.notify_one();
        }
    }
}

/// The listening task; stopped when the store is dropped.
pub(crate) struct ListenTask(tokio::task::AbortHandle);

impl Drop for ListenTask {
    fn drop(&mut self) {
        self.0.abort();
    }
}

async fn subscribe(pool: &PgPool) -> Result<PgListener, sqlx::Error> {
    let mut listener = PgListener::connect_with(pool).await?;
    listener.listen(CHANNEL).await?;
    Ok(listener)
}

/// Starts listening for the changes of `schema`'s requests on `pool` (a pool of its own:
/// the listener keeps its connection). The first subscription is made now, so a store
/// that cannot listen does not open.
pub(crate) async fn start(pool: PgPool, schema: &str, waiters: Arc<Waiters>) -> Result<ListenTask, sqlx::Error> {
    let first = subscribe(&pool).await?;
    let prefix = format!("{schema}/");
    let task = tokio::spawn(listen(first, pool, prefix, waiters));
    Ok(ListenTask(task.abort_handle()))
}

async fn listen(first: PgListener, pool: PgPool, prefix: String, waiters: Arc<Waiters>) {
    let mut listener = Some(first);
    loop {
        if let Some(mut active) = listener.take() {
            loop {
                match active.try_recv().await {
                    Ok(Some(note)) => {
                        if let Some(id) = note.payload().strip_prefix(&prefix) {
                            waiters.wake(id);
                        }
                    }
                    // The connection was lost and is back: what was said meanwhile is lost.
                    Ok(None) => waiters.wake_all(),
                    Err(e) => {
                        tracing::warn!(
                            "approvals store: stopped hearing decisions from other replicas ({e}); \
                             waiting calls re-check every {} s until it is back",
                            SAFETY_RECHECK.as_secs()
                        );
                        break;
                    }
                }
            }
        }
        waiters.wake_all();
        tokio::time::sleep(RECONNECT_PAUSE).await;
        match subscribe(&pool).await {
            Ok(again) => {
                tracing::info!("approvals store: hearing decisions from other replicas again");
                // Whatever was decided while nobody listened.
                waiters.wake_all();
                listener = Some(again);
            }
            Err(e) => tracing::debug!("approvals store: cannot listen yet ({e})"),
        }
    }
}
