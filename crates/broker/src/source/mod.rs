//! The built credential sources, one module each, and what they have in common: a
//! [`Source`] is made once from its [`crate::SourceConfig`] by [`crate::Broker::new`]
//! (every check that can fail at start fails there), describes a rule's credential for the
//! plan without minting it, and mints one call's credential as a [`Minted`] value that
//! [`crate::Broker::mint`] turns into a [`crate::Lease`].
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use portcullis_core::Secret;
use rand::Rng;
use rand::distr::{Alphanumeric, SampleString};

use crate::config::{SourceConfig, SourceKind};
use crate::error::BrokerError;
use crate::rule::Rule;
use crate::{CallFacts, CallMatch};

pub(crate) mod jwt;
pub(crate) mod postgres;
pub(crate) mod secret;
pub(crate) mod token_exchange;

/// One built source.
pub(crate) enum Source {
    PostgresRole(Arc<postgres::PostgresRole>),
    Jwt(jwt::Jwt),
    TokenExchange(token_exchange::TokenExchange),
    Secret(secret::StaticSecret),
}

/// A freshly minted (or reused) credential, before it becomes a lease.
pub(crate) struct Minted {
    /// The grant's id: fresh per mint, or that of the reused credential (per-session role,
    /// cached exchanged token) so that the audit records of one credential share it.
    pub grant_id: String,
    pub secret: Secret<String>,
    pub expires_at: u64,
    /// A per-call PostgreSQL role the lease must drop.
    pub owned: Option<postgres::OwnedRole>,
}

impl Source {
    pub fn build(config: SourceConfig) -> Result<Self, BrokerError> {
        let subject = format!("source `{}`", config.name);
        if !valid_source_name(&config.name) {
            return Err(BrokerError::config(
                subject,
                "name",
                "use 1 to 64 characters of letters, digits, `-`, `_` and `.`",
            ));
        }
        Ok(match config.kind {
            SourceKind::PostgresRole(c) => Source::PostgresRole(Arc::new(postgres::PostgresRole::new(config.name, c)?)),
            SourceKind::Jwt(c) => Source::Jwt(jwt::Jwt::new(config.name, c)?),
            SourceKind::TokenExchange(c) => Source::TokenExchange(token_exchange::TokenExchange::new(config.name, c)?),
            SourceKind::Secret(c) => Source::Secret(secret::StaticSecret::new(config.name, c)?),
        })
    }

    pub fn kind(&self) -> &'static str {
        match self {
            Source::PostgresRole(_) => "postgres-role",
            Source::Jwt(_) => "jwt",
            Source::TokenExchange(_) => "token-exchange",
            Source::Secret(_) => "secret",
        }
    }

    /// What the credential would allow, in words, for the plan and the audit record.
    pub fn scope(&self, call: &CallMatch<'_>) -> String {
        match self {
            Source::PostgresRole(s) => s.scope().to_owned(),
            Source::Jwt(_) => call.target.to_owned(),
            Source::TokenExchange(s) => s.scope_for(call.target).to_owned(),
            Source::Secret(s) => s.scope(),
        }
    }

    pub async fn mint(&self, rule: &Rule, call: &CallFacts<'_>) -> Result<Minted, BrokerError> {
        match self {
            Source::PostgresRole(s) => postgres::PostgresRole::mint(s, &rule.id, call.session).await,
            Source::Jwt(s) => s.mint(call),
            Source::TokenExchange(s) => s.mint(call).await,
            Source::Secret(s) => s.mint().await,
        }
    }
}

fn valid_source_name(name: &str) -> bool {
    (1..=64).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
}

/// Seconds since the Unix epoch.
pub(crate) fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or_default()
}

/// Whole seconds of a TTL, rounded up (a TTL of 1.5 s lasts 2 s, never 1).
pub(crate) fn ttl_secs(ttl: Duration) -> u64 {
    ttl.as_secs() + u64::from(ttl.subsec_nanos() > 0)
}

/// A fresh grant id: 32 lowercase hex digits from the OS-seeded CSPRNG.
pub(crate) fn grant_id() -> String {
    portcullis_core::CallId::random().as_str().to_owned()
}

/// `len` random characters of `[A-Za-z0-9]` (passwords: nothing to quote or escape).
pub(crate) fn random_alphanumeric(len: usize) -> String {
    Alphanumeric.sample_string(&mut rand::rng(), len)
}

/// `len` random characters of `[a-z0-9]` (role names: no quoting, no case folding).
pub(crate) fn random_lower_alphanumeric(len: usize) -> String {
    const CHARS: &[u8; 36] = b"abcdefghijklmnopqrstuvwxyz0123456789";
    let mut rng = rand::rng();
    (0..len)
        .map(|_| char::from(CHARS[rng.random_range(0..CHARS.len())]))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn random_strings_have_their_alphabet_and_length() {
        let p = random_alphanumeric(32);
        assert_eq!(p.len(), 32);
        assert!(p.bytes().all(|b| b.is_ascii_alphanumeric()), "{p}");
        let n = random_lower_alphanumeric(16);
        assert_eq!(n.len(), 16);
        assert!(n.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit()), "{n}");
        assert_ne!(random_alphanumeric(32), p, "two draws of 190 bits collided");
    }

    #[test]
    fn ttl_rounds_up() {
        assert_eq!(ttl_secs(Duration::from_secs(60)), 60);
        assert_eq!(ttl_secs(Duration::from_millis(1500)), 2);
        assert_eq!(ttl_secs(Duration::from_millis(1)), 1);
    }
}
