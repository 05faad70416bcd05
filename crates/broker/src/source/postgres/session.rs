//! Per-session roles (`per = "session"`): one role per (session, rule), reused by the
//! session's calls until 30 s before it expires, then replaced; dropped when the session
//! ends. Cheaper than a role per call (no `CREATE ROLE` round trip on reuse) at the price
//! of a credential that lives as long as the session, not the call (docs/broker.md).
use std::sync::Arc;

use portcullis_core::Secret;

use super::{PostgresRole, lock};
use crate::error::BrokerError;
use crate::source::{Minted, grant_id, unix_now};

/// A per-session role is reused until this long before it expires.
pub const REUSE_MARGIN: u64 = 30;

/// The role of one (session, rule), if minted yet. The async lock makes a session's
/// concurrent first calls share one role.
pub(super) type SessionSlot = Arc<tokio::sync::Mutex<Option<SessionRole>>>;

pub(super) struct SessionRole {
    grant_id: String,
    role: String,
    secret: Secret<String>,
    expires_at: u64,
}

impl SessionRole {
    fn minted(&self) -> Minted {
        Minted {
            grant_id: self.grant_id.clone(),
            secret: self.secret.clone(),
            expires_at: self.expires_at,
            owned: None,
        }
    }
}

impl PostgresRole {
    pub(super) async fn session_role(this: &Arc<Self>, rule: &str, session: &str) -> Result<Minted, BrokerError> {
        let key = (session.to_owned(), rule.to_owned());
        let slot = Arc::clone(lock(&this.sessions).entry(key.clone()).or_default());
        let mut cached = slot.lock().await;
        // `end_session` takes the slot out of the map before it empties it: a call that got
        // the slot just before must not mint a role nobody would drop.
        if !lock(&this.sessions).get(&key).is_some_and(|s| Arc::ptr_eq(s, &slot)) {
            return Err(BrokerError::unavailable(
                &this.name,
                format!("session `{session}` ended while the call was starting; make the call again"),
            ));
        }
        if let Some(role) = cached.as_ref().filter(|r| r.expires_at > unix_now() + REUSE_MARGIN) {
            return Ok(role.minted());
        }
        // A cancelled mint drops its role: it is owned until it is in the slot.
        let (owned, secret, expires_at) = Self::create(this).await?;
        let role = SessionRole {
            grant_id: grant_id(),
            role: owned.keep(),
            secret,
            expires_at,
        };
        let minted = role.minted();
        if let Some(old) = cached.replace(role) {
            // A call of this session may still use the old role: it is dropped when the
            // session ends, or by the periodic sweep once its VALID UNTIL has passed.
            lock(&this.held).remove(&old.role);
            lock(&this.retired)
                .entry(session.to_owned())
                .or_default()
                .push(old.role);
        }
        Ok(minted)
    }

    /// Drops the session's roles (current and retired).
    pub async fn end_session(&self, session: &str) {
        let slots: Vec<SessionSlot> = {
            let mut sessions = lock(&self.sessions);
            let keys: Vec<_> = sessions.keys().filter(|(s, _)| s == session).cloned().collect();
            keys.into_iter().filter_map(|k| sessions.remove(&k)).collect()
        };
        let mut roles = lock(&self.retired).remove(session).unwrap_or_default();
        for slot in slots {
            // Waits for a mint of this session in progress, then takes its role.
            if let Some(role) = slot.lock().await.take() {
                roles.push(role.role);
            }
        }
        for role in roles {
            // Failures are logged by drop_role; the sweeper drops the role once it expires.
            let _ = self.drop_role(&role).await;
        }
    }
}
