//! Approval requests that lapse unused: once a request's TTL has run out it is refused and
//! unlisted at once, and it leaves the approvals store here — handed over exactly once
//! (also across replicas sharing PostgreSQL, where one `DELETE … RETURNING` gives each to
//! one replica) and recorded as an `approval` record with step `expired`, linked to the
//! call it was opened for.
//!
//! Two triggers, and only these: the pipeline sweeps before it opens a new request (so
//! lapsed requests are recorded before the new one, and the pending set stays within
//! `max_pending`), and a task started with the gateway sweeps every
//! [`SWEEP_EVERY`] — the trigger that does not depend on traffic, so every lapsed request
//! is recorded within that long of its expiry even when no further call needs approval.
use std::{sync::Arc, time::Duration};

use portcullis_approvals::PendingEntry;

use crate::{gateway::Gateway, stages::record::RecordError};

/// How often the gateway's own task sweeps lapsed approval requests.
pub const SWEEP_EVERY: Duration = Duration::from_secs(10);

impl Gateway {
    /// Removes the approval requests whose TTL ran out before a call used them and records
    /// each one `expired`. A store that cannot be swept now is retried at the next sweep
    /// (its lapsed requests count for nothing meanwhile). The error: the log could not take
    /// a record — the request is gone from the store either way, so its id is logged.
    pub(crate) async fn expire_approval_requests(&self) -> Result<(), RecordError> {
        let expired = match self.approvals.store.expire_requests().await {
            Ok(expired) => expired,
            Err(e) => {
                tracing::warn!("cannot sweep lapsed approval requests now (retried at the next sweep): {e}");
                return Ok(());
            }
        };
        let mut first_failure = None;
        for entry in expired {
            if let Err(e) = self.record_expired(&entry).await {
                tracing::error!(approval = %entry.binding.id, call = %entry.call_id, "an expired approval request could not be recorded: {e}");
                first_failure.get_or_insert(e);
            }
        }
        first_failure.map_or(Ok(()), Err)
    }

    /// The `expired` record of one lapsed request: where it stood (`waiting`, `granted`
    /// but never used, `denied`) and how many approvals it had of how many.
    async fn record_expired(&self, entry: &PendingEntry) -> Result<(), RecordError> {
        tracing::info!(
            approval = %entry.binding.id, call = %entry.call_id, state = entry.state.label(),
            "approval request expired unused"
        );
        let detail = [
            ("state", entry.state.label().to_owned()),
            ("approvals_given", entry.grants.len().to_string()),
            ("approvals_required", entry.required.to_string()),
        ];
        self.recorder
            .approval(&entry.binding, &entry.call_id, "expired", &detail)
            .await
    }

    /// Starts the task that sweeps lapsed approval requests every `SWEEP_EVERY` (10 s) for as
    /// long as the gateway lives. Only with approvers registered: without them no request
    /// is ever opened.
    pub fn start_approval_sweeper(self: &Arc<Self>) {
        if self.approvals.approvers.is_empty() {
            return;
        }
        let gateway = Arc::downgrade(self);
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(SWEEP_EVERY);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tick.tick().await;
                let Some(gateway) = gateway.upgrade() else { return };
                // Failures are logged per request above; the next tick tries again.
                let _ = gateway.expire_approval_requests().await;
            }
        });
    }
}
