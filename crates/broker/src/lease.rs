//! [`Lease`]: one call's minted credential, what the gateway delivers to the upstream and
//! records (everything but the secret). A lease that owns a per-call PostgreSQL role
//! drops it on [`Lease::release`], or in the background if the lease is dropped unreleased
//! (a cancelled call leaves nothing behind).
use std::fmt;

use portcullis_core::Secret;

use crate::error::BrokerError;
use crate::rule::Delivery;
use crate::source::postgres::OwnedRole;

/// A minted credential. `Debug` never prints the secret.
pub struct Lease {
    /// The grant's id (32 hex digits), recorded in the audit log. Fresh for every mint,
    /// except that a reused credential (a per-session role, a cached exchanged token)
    /// keeps the id it was minted with.
    pub grant_id: String,
    pub rule: String,
    pub source: String,
    /// `postgres-role`, `jwt`, `token-exchange` or `secret`.
    pub kind: &'static str,
    pub scope: String,
    /// When the credential expires (Unix seconds); 0 when it does not (`secret`) or the
    /// token endpoint did not say (`token-exchange` without `expires_in`).
    pub expires_at: u64,
    pub delivery: Delivery,
    pub(crate) secret: Secret<String>,
    pub(crate) owned: Option<OwnedRole>,
}

impl Lease {
    /// The credential itself: a connection string, a JWT, an access token, a static secret.
    pub fn secret(&self) -> &Secret<String> {
        &self.secret
    }

    /// With [`Delivery::Header`]: the header's name and its value (prefix + secret).
    pub fn header(&self) -> Option<(&str, Secret<String>)> {
        match &self.delivery {
            Delivery::Header { name, prefix } => {
                Some((name.as_str(), Secret::new(format!("{prefix}{}", self.secret.expose()))))
            }
            Delivery::Env { .. } => None,
        }
    }

    /// With [`Delivery::Header`]: the header value, prefix + secret.
    pub fn header_value(&self) -> Option<Secret<String>> {
        self.header().map(|(_, value)| value)
    }

    /// With [`Delivery::Env`]: the variable's name and value, for the child spawned for the call.
    pub fn env(&self) -> Option<(&str, &Secret<String>)> {
        match &self.delivery {
            Delivery::Env { var } => Some((var.as_str(), &self.secret)),
            Delivery::Header { .. } => None,
        }
    }

    /// With [`Delivery::Env`]: the variable's value (the secret).
    pub fn env_value(&self) -> Option<&Secret<String>> {
        self.env().map(|(_, value)| value)
    }

    /// The name of the per-call PostgreSQL role this lease owns, if any (not a secret).
    pub fn role(&self) -> Option<&str> {
        self.owned.as_ref().and_then(OwnedRole::role)
    }

    /// Ends the credential where it can be ended: a per-call PostgreSQL role has its
    /// connections terminated and is dropped. Other kinds (and per-session roles, dropped
    /// by [`crate::Broker::end_session`]) need nothing.
    pub async fn release(mut self) -> Result<(), BrokerError> {
        match self.owned.take() {
            Some(owned) => owned.release().await,
            None => Ok(()),
        }
    }
}

impl fmt::Debug for Lease {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Lease")
            .field("grant_id", &self.grant_id)
            .field("rule", &self.rule)
            .field("source", &self.source)
            .field("kind", &self.kind)
            .field("scope", &self.scope)
            .field("expires_at", &self.expires_at)
            .field("delivery", &self.delivery)
            .field("secret", &self.secret)
            .field("role", &self.role())
            .finish()
    }
}
