//! [`OwnedRole`]: a per-call role this process created and must drop. It is owned from
//! just before `CREATE ROLE` runs until the lease is released, so a mint cancelled half-way
//! or a lease dropped unreleased (a cancelled call) still drops its role, in the background.
use std::sync::Arc;

use super::{PostgresRole, lock};
use crate::error::BrokerError;

/// A per-call role this process created: released explicitly, or dropped in the
/// background when this value is dropped.
pub(crate) struct OwnedRole {
    inner: Option<(Arc<PostgresRole>, String)>,
}

impl OwnedRole {
    pub(super) fn new(source: Arc<PostgresRole>, role: String) -> Self {
        lock(&source.held).insert(role.clone());
        Self {
            inner: Some((source, role)),
        }
    }

    /// The role stays (held) and is no longer this value's to drop.
    pub(super) fn keep(mut self) -> String {
        self.inner.take().map(|(_, role)| role).unwrap_or_default()
    }

    /// The role was never created: nothing to drop.
    pub(super) fn forget(mut self) {
        if let Some((source, role)) = self.inner.take() {
            lock(&source.held).remove(&role);
        }
    }

    pub fn role(&self) -> Option<&str> {
        self.inner.as_ref().map(|(_, role)| role.as_str())
    }

    pub async fn release(mut self) -> Result<(), BrokerError> {
        match self.inner.take() {
            Some((source, role)) => source.drop_role(&role).await.map(|_| ()),
            None => Ok(()),
        }
    }
}

impl Drop for OwnedRole {
    fn drop(&mut self) {
        let Some((source, role)) = self.inner.take() else {
            return;
        };
        match tokio::runtime::Handle::try_current() {
            Ok(runtime) => {
                tracing::debug!(source = %source.name, %role, "lease dropped unreleased; dropping its role in the background");
                runtime.spawn(async move {
                    // drop_role logs its own failure.
                    let _ = source.drop_role(&role).await;
                });
            }
            Err(_) => {
                lock(&source.held).remove(&role);
                tracing::warn!(
                    source = %source.name, %role,
                    "lease dropped outside a tokio runtime; the sweeper drops its role once it expires"
                );
            }
        }
    }
}
