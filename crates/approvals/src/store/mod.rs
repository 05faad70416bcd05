//! Where the approvals state lives: the pending requests (with their grants), the nonces
//! of used requests, and the break-glass windows.
//!
//! - [`ApprovalStore::memory`]: in this gateway's memory ([`Pending`], [`BreakGlass`]).
//!   A restart forgets everything — every request opened before it, and so every token
//!   signed for one, is then unknown and refused, which is why used nonces need no
//!   keeping across restarts.
//! - [`ApprovalStore::postgres`]: in PostgreSQL tables beside the audit log (`[audit]
//!   postgres`), shared by every replica on that database: an approval given through
//!   replica A releases the call waiting on replica B, which hears of it through
//!   LISTEN/NOTIFY; row locks let exactly one of two racing decisions win, a granted
//!   request be used once, and `max_pending` count every replica's requests.
//!
//! Both follow the same rules (`PendingEntry::add_grant`, `Window::add_approver`, …).
//! Every operation can fail with [`ApprovalError::Store`] when the shared store cannot
//! be used; the gateway then denies (fail closed).
mod pg_windows;
mod postgres;
mod wake;

use std::sync::Arc;

use crate::{
    binding::Binding,
    break_glass::{BreakGlass, Window},
    error::ApprovalError,
    pending::{Grant, Opening, Pending, PendingEntry, PendingSettings, PendingState},
    registry::Approver,
    request_state::RequestStates,
};

/// The approvals state of a gateway. Cheap to clone (the clones share it).
#[derive(Clone)]
pub struct ApprovalStore {
    backend: Arc<Backend>,
}

impl std::fmt::Debug for ApprovalStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "ApprovalStore({})", self.kind())
    }
}

enum Backend {
    Memory { pending: Pending, windows: BreakGlass },
    Postgres(postgres::PgStore),
}

impl ApprovalStore {
    /// The state in this gateway's memory.
    pub fn memory(settings: PendingSettings, break_glass_max_ttl_secs: u64) -> Self {
        Self {
            backend: Arc::new(Backend::Memory {
                pending: Pending::new(settings),
                windows: BreakGlass::new(break_glass_max_ttl_secs),
            }),
        }
    }

    /// The state shared through PostgreSQL at `url`, in `schema` (the audit log's): the
    /// tables are created if needed, and the store listens for other replicas' decisions.
    pub async fn postgres(
        url: &str,
        schema: &str,
        settings: PendingSettings,
        break_glass_max_ttl_secs: u64,
    ) -> Result<Self, ApprovalError> {
        let store = postgres::PgStore::connect(url, schema, settings, break_glass_max_ttl_secs).await?;
        Ok(Self {
            backend: Arc::new(Backend::Postgres(store)),
        })
    }

    /// `memory` or `postgres`, for logs.
    pub fn kind(&self) -> &'static str {
        match &*self.backend {
            Backend::Memory { .. } => "memory",
            Backend::Postgres(_) => "postgres",
        }
    }

    pub fn settings(&self) -> &PendingSettings {
        match &*self.backend {
            Backend::Memory { pending, .. } => pending.settings(),
            Backend::Postgres(pg) => &pg.settings,
        }
    }

    /// The longest break-glass window an approver may request.
    pub fn break_glass_max_ttl_secs(&self) -> u64 {
        match &*self.backend {
            Backend::Memory { windows, .. } => windows.max_ttl_secs(),
            Backend::Postgres(pg) => pg.max_ttl_secs,
        }
    }

    /// The `requestState` protection of 2026-07-28 round trips, states living `ttl_secs`
    /// (the gateway asks once, at start): in memory, under a fresh key of this gateway's
    /// alone (the retry must come back to it); with PostgreSQL, under the key every replica
    /// reads from the database (the retry may reach any of them).
    pub fn request_states(&self, ttl_secs: u64) -> RequestStates {
        match &*self.backend {
            Backend::Memory { .. } => RequestStates::new(ttl_secs),
            Backend::Postgres(pg) => RequestStates::with_key(pg.request_state_key, ttl_secs),
        }
    }

    /// Opens a request for a call: a fresh id and nonce, expiring after the TTL; refused
    /// when `max_pending` unexpired requests are open. Expired ones are left to
    /// [`Self::expire_requests`], so that each is recorded.
    pub async fn open(&self, opening: Opening) -> Result<PendingEntry, ApprovalError> {
        self.admit(self.prepare(opening)).await
    }

    /// The request [`Self::open`] would open (its id, nonce, expiry and the approvals it
    /// needs), not yet open: nobody can list, grant or deny it until [`Self::admit`]. The
    /// gateway makes the request's `requested` record durable in between, so that no
    /// approver acts on a request the audit log does not hold yet.
    pub fn prepare(&self, opening: Opening) -> PendingEntry {
        match &*self.backend {
            Backend::Memory { pending, .. } => pending.prepare(opening),
            Backend::Postgres(pg) => pg.prepare(opening),
        }
    }

    /// Opens a prepared request; refused when `max_pending` unexpired requests are open.
    pub async fn admit(&self, entry: PendingEntry) -> Result<PendingEntry, ApprovalError> {
        match &*self.backend {
            Backend::Memory { pending, .. } => pending.admit(entry),
            Backend::Postgres(pg) => pg.admit(entry).await,
        }
    }

    /// Waits until request `id` is granted or denied (wrap it in a timeout); an error
    /// when the request is gone (used, withdrawn, expired) or the store fails.
    pub async fn wait_decided(&self, id: &str) -> Result<PendingState, ApprovalError> {
        match &*self.backend {
            Backend::Memory { pending, .. } => {
                let mut changes = pending.watch(id)?;
                let decided = changes.wait_for(|state| *state != PendingState::Waiting).await;
                decided
                    .map(|state| state.clone())
                    .map_err(|_| ApprovalError::UnknownRequest(id.to_owned()))
            }
            Backend::Postgres(pg) => pg.wait_decided(id).await,
        }
    }

    /// The open (unexpired) requests, oldest first.
    pub async fn list(&self) -> Result<Vec<PendingEntry>, ApprovalError> {
        match &*self.backend {
            Backend::Memory { pending, .. } => Ok(pending.list()),
            Backend::Postgres(pg) => pg.list().await,
        }
    }

    /// One open request.
    pub async fn get(&self, id: &str) -> Result<PendingEntry, ApprovalError> {
        match &*self.backend {
            Backend::Memory { pending, .. } => pending.get(id),
            Backend::Postgres(pg) => pg.get(id).await,
        }
    }

    /// Adds `approver`'s approval (never to their own call; the same approver twice counts
    /// once). Returns the request afterwards.
    pub async fn grant(&self, id: &str, approver: &Approver, grant: Grant) -> Result<PendingEntry, ApprovalError> {
        match &*self.backend {
            Backend::Memory { pending, .. } => pending.grant(id, approver, grant),
            Backend::Postgres(pg) => pg.grant(id, approver, grant).await,
        }
    }

    /// The caller's own confirmation, for tiers the operator lets users approve.
    pub async fn confirm_by_caller(&self, id: &str, grant: Grant) -> Result<PendingEntry, ApprovalError> {
        match &*self.backend {
            Backend::Memory { pending, .. } => pending.confirm_by_caller(id, grant),
            Backend::Postgres(pg) => pg.confirm_by_caller(id, grant).await,
        }
    }

    /// The caller refused its own call.
    pub async fn refuse_by_caller(&self, id: &str, by: &str) -> Result<(), ApprovalError> {
        match &*self.backend {
            Backend::Memory { pending, .. } => pending.refuse_by_caller(id, by),
            Backend::Postgres(pg) => pg.refuse_by_caller(id, by).await,
        }
    }

    /// An approver refuses the request.
    pub async fn deny(&self, id: &str, approver: &Approver) -> Result<(), ApprovalError> {
        match &*self.backend {
            Backend::Memory { pending, .. } => pending.deny(id, approver),
            Backend::Postgres(pg) => pg.deny(id, approver).await,
        }
    }

    /// Uses a granted request, once.
    pub async fn consume(&self, id: &str) -> Result<PendingEntry, ApprovalError> {
        match &*self.backend {
            Backend::Memory { pending, .. } => pending.consume(id),
            Backend::Postgres(pg) => pg.consume(id).await,
        }
    }

    /// The granted, unexpired request for the same call as `call`, used.
    pub async fn take_granted_for(&self, call: &Binding) -> Result<Option<PendingEntry>, ApprovalError> {
        match &*self.backend {
            Backend::Memory { pending, .. } => Ok(pending.take_granted_for(call)),
            Backend::Postgres(pg) => pg.take_granted_for(call).await,
        }
    }

    /// Removes a request whose call went away; returns it when it was still open.
    pub async fn withdraw(&self, id: &str) -> Result<Option<PendingEntry>, ApprovalError> {
        match &*self.backend {
            Backend::Memory { pending, .. } => Ok(pending.withdraw(id)),
            Backend::Postgres(pg) => pg.withdraw(id).await,
        }
    }

    /// Removes the requests whose TTL ran out before a call used them and returns them,
    /// each exactly once (also across replicas sharing PostgreSQL), to be recorded as
    /// expired. Expired requests are refused and unlisted from the moment they expire;
    /// this is when they leave the store.
    pub async fn expire_requests(&self) -> Result<Vec<PendingEntry>, ApprovalError> {
        match &*self.backend {
            Backend::Memory { pending, .. } => Ok(pending.expire()),
            Backend::Postgres(pg) => pg.expire_requests().await,
        }
    }

    /// Opens a break-glass request (a reason, a TTL within the cap).
    pub async fn request_window(
        &self,
        requested_by: &str,
        reason: &str,
        ttl_secs: u64,
        workload: Option<String>,
    ) -> Result<Window, ApprovalError> {
        match &*self.backend {
            Backend::Memory { windows, .. } => windows.request(requested_by, reason, ttl_secs, workload),
            Backend::Postgres(pg) => pg.request_window(requested_by, reason, ttl_secs, workload).await,
        }
    }

    /// An approver approves a requested window at `now` (Unix seconds: an activated
    /// window's TTL runs from then); the second distinct one activates it.
    pub async fn approve_window(&self, id: &str, approver: &Approver, now: u64) -> Result<Window, ApprovalError> {
        match &*self.backend {
            Backend::Memory { windows, .. } => windows.approve(id, approver, now),
            Backend::Postgres(pg) => pg.approve_window(id, approver, now).await,
        }
    }

    /// Ends a window now.
    pub async fn end_window(&self, id: &str, by: &str) -> Result<Window, ApprovalError> {
        match &*self.backend {
            Backend::Memory { windows, .. } => windows.end(id, by),
            Backend::Postgres(pg) => pg.end_window(id, by).await,
        }
    }

    /// Ends the windows whose TTL ran out and returns them (to be recorded, once).
    pub async fn expire_windows(&self) -> Result<Vec<Window>, ApprovalError> {
        match &*self.backend {
            Backend::Memory { windows, .. } => Ok(windows.expire()),
            Backend::Postgres(pg) => pg.expire_windows().await,
        }
    }

    /// For one call: the windows whose TTL ran out (ended now, to be recorded), and the
    /// active window a call from `workload` is under, if any.
    pub async fn expire_and_find_window(&self, workload: &str) -> Result<(Vec<Window>, Option<String>), ApprovalError> {
        match &*self.backend {
            Backend::Memory { windows, .. } => Ok(windows.expire_and_find(workload)),
            Backend::Postgres(pg) => pg.expire_and_find_window(workload).await,
        }
    }

    /// Every window, newest first.
    pub async fn windows(&self) -> Result<Vec<Window>, ApprovalError> {
        match &*self.backend {
            Backend::Memory { windows, .. } => Ok(windows.list()),
            Backend::Postgres(pg) => pg.windows().await,
        }
    }
}
