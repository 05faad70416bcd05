//! The `postgres-role` source: a PostgreSQL role per call (or per session) with a random
//! name under the source's prefix, a random password, `VALID UNTIL` now + ttl, a connection
//! limit and the configured schema grants only; dropped (its sessions terminated) when the
//! call ends, when the session ends, or by the sweeper.
//!
//! - `check`: the config checks; `sql`: the statements; `scram`: the password verifier.
//! - [`OwnedRole`]: a per-call role, dropped on release or, if the lease is dropped
//!   unreleased, in the background.
//! - `session`: per-session roles.
//!
//! Every role this broker holds (per-call leases alive, current session roles) is listed
//! in `held`, and the periodic sweep leaves those alone.
use std::collections::{HashMap, HashSet};
use std::str::FromStr;
use std::sync::{Arc, Mutex, MutexGuard, OnceLock, PoisonError};
use std::time::Duration;

use portcullis_core::Secret;
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};
use sqlx::{AssertSqlSafe, ConnectOptions};

use super::{Minted, grant_id, random_alphanumeric, random_lower_alphanumeric, ttl_secs, unix_now};
use crate::config::{Per, PostgresRoleConfig, SchemaGrant};
use crate::error::BrokerError;

mod check;
mod owned;
pub(crate) mod scram;
mod session;
pub(crate) mod sql;

pub(crate) use owned::OwnedRole;
use session::SessionSlot;

/// How long taking an admin connection may wait, connecting included: a PostgreSQL that
/// is down fails the call after this, not after sqlx's default 30 s.
pub const ACQUIRE_TIMEOUT: Duration = Duration::from_secs(3);
/// Admin connections per source: mints and drops are a round trip or two each.
pub const MAX_CONNECTIONS: u32 = 4;
/// Characters of randomness after the prefix (`[a-z0-9]`, about 82 bits).
const NAME_RANDOM_LEN: usize = 16;
const PASSWORD_LEN: usize = 32;

pub(crate) struct PostgresRole {
    name: String,
    options: PgConnectOptions,
    /// Made on first use, inside the runtime (sqlx spawns its pool maintenance there), so
    /// the gateway starts without PostgreSQL and its calls are denied until it is back.
    pool: OnceLock<PgPool>,
    connect_url: String,
    prefix: String,
    ttl: Duration,
    per: Per,
    grants: Vec<SchemaGrant>,
    connection_limit: u32,
    scope: String,
    /// Every role of this source this broker holds (live per-call leases, current session roles).
    held: Mutex<HashSet<String>>,
    /// Per-session roles, one slot per (session, rule).
    sessions: Mutex<HashMap<(String, String), SessionSlot>>,
    /// Per-session roles replaced near their expiry, by session: dropped when it ends.
    retired: Mutex<HashMap<String, Vec<String>>>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl PostgresRole {
    pub fn new(name: String, config: PostgresRoleConfig) -> Result<Self, BrokerError> {
        check::config(&name, &config)?;
        let err = |key, problem: &str| BrokerError::config(format!("source `{name}`"), key, problem);
        // Never quote the URL or sqlx's message about it: it holds the admin password.
        let options = PgConnectOptions::from_str(config.admin_url.expose())
            .map_err(|_| {
                err(
                    "admin_url",
                    "is not a valid PostgreSQL connection URL (postgres://user:password@host:port/database); fix \
                     the secret it is read from",
                )
            })?
            // The statements hold password verifiers: sqlx must not log them.
            .disable_statement_logging();
        let scope = describe(&config.grants, config.per);
        Ok(Self {
            name,
            options,
            pool: OnceLock::new(),
            connect_url: config.connect_url,
            prefix: config.prefix,
            ttl: config.ttl,
            per: config.per,
            grants: config.grants,
            connection_limit: config.connection_limit,
            scope,
            held: Mutex::new(HashSet::new()),
            sessions: Mutex::new(HashMap::new()),
            retired: Mutex::new(HashMap::new()),
        })
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    pub fn scope(&self) -> &str {
        &self.scope
    }

    fn pool(&self) -> &PgPool {
        self.pool.get_or_init(|| {
            PgPoolOptions::new()
                .max_connections(MAX_CONNECTIONS)
                .acquire_timeout(ACQUIRE_TIMEOUT)
                .connect_lazy_with(self.options.clone())
        })
    }

    /// This call's role: a fresh one per call, or the session's.
    pub async fn mint(this: &Arc<Self>, rule: &str, session: &str) -> Result<Minted, BrokerError> {
        match this.per {
            Per::Call => {
                let (owned, secret, expires_at) = Self::create(this).await?;
                Ok(Minted {
                    grant_id: grant_id(),
                    secret,
                    expires_at,
                    owned: Some(owned),
                })
            }
            Per::Session => Self::session_role(this, rule, session).await,
        }
    }

    /// Creates a role; returns it owned (dropped unless released or kept), its connection
    /// string and its expiry.
    async fn create(this: &Arc<Self>) -> Result<(OwnedRole, Secret<String>, u64), BrokerError> {
        let role = format!("{}{}", this.prefix, random_lower_alphanumeric(NAME_RANDOM_LEN));
        let password = Secret::new(random_alphanumeric(PASSWORD_LEN));
        let salt: [u8; 16] = rand::random();
        let verifier = {
            let password = password.clone();
            tokio::task::spawn_blocking(move || scram::verifier(password.expose(), &salt, scram::ITERATIONS))
                .await
                .map_err(|_| BrokerError::unavailable(&this.name, "computing the password verifier failed"))?
        };
        let expires_at = unix_now() + ttl_secs(this.ttl);
        let sql = sql::create_role(&role, &verifier, expires_at, this.connection_limit, &this.grants);
        // Owned before the statement runs: if this future is dropped mid-way, the role is dropped too.
        let owned = OwnedRole::new(Arc::clone(this), role.clone());
        if let Err(e) = sqlx::raw_sql(AssertSqlSafe(sql)).execute(this.pool()).await {
            if definitely_not_created(&e) {
                owned.forget();
            }
            let reason = scrub(&e.to_string(), &[password.expose(), &verifier]);
            return Err(BrokerError::unavailable(
                &this.name,
                format!(
                    "cannot create a role ({reason}); check that PostgreSQL is up and the admin role may create roles and grant on the schemas"
                ),
            ));
        }
        let secret = Secret::new(
            this.connect_url
                .replace("{user}", &role)
                .replace("{password}", password.expose()),
        );
        tracing::debug!(source = %this.name, %role, expires_at, "postgres role created");
        Ok((owned, secret, expires_at))
    }

    /// Drops one role: no new logins, its sessions terminated, its grants revoked, the role
    /// dropped. A role that no longer exists counts as dropped (`Ok(false)`).
    pub async fn drop_role(&self, role: &str) -> Result<bool, BrokerError> {
        let result = self.drop_role_inner(role).await;
        lock(&self.held).remove(role);
        match &result {
            Ok(true) => tracing::debug!(source = %self.name, %role, "postgres role dropped"),
            Ok(false) => tracing::debug!(source = %self.name, %role, "postgres role was already gone"),
            Err(e) => {
                tracing::warn!(source = %self.name, %role, error = %e, "cannot drop a postgres role; the sweeper drops it after it expires")
            }
        }
        result
    }

    async fn drop_role_inner(&self, role: &str) -> Result<bool, BrokerError> {
        if !sql::is_plain_role_name(role) {
            return Err(BrokerError::unavailable(
                &self.name,
                format!("`{role}` is not a role this broker makes"),
            ));
        }
        let fail = |e: sqlx::Error| {
            BrokerError::unavailable(
                &self.name,
                format!("cannot drop role `{role}` ({e}); the admin role needs CREATEROLE and pg_signal_backend"),
            )
        };
        for statement in [sql::forbid_login(role), sql::terminate_and_drop(role)] {
            match sqlx::raw_sql(AssertSqlSafe(statement)).execute(self.pool()).await {
                Ok(_) => {}
                Err(e) if is_undefined_object(&e) => return Ok(false),
                Err(e) => return Err(fail(e)),
            }
        }
        Ok(true)
    }

    /// Drops this source's leftover roles that this broker does not hold: all of them, or
    /// only those past their `VALID UNTIL`.
    pub async fn sweep(&self, expired_only: bool) -> Result<usize, BrokerError> {
        let names: Vec<String> = sqlx::query_scalar(sql::leftover_roles(expired_only))
            .bind(&self.prefix)
            .bind(i32::try_from(self.prefix.len() + NAME_RANDOM_LEN).unwrap_or(i32::MAX))
            .bind(i32::try_from(self.prefix.len() + 1).unwrap_or(i32::MAX))
            .fetch_all(self.pool())
            .await
            .map_err(|e| {
                BrokerError::unavailable(
                    &self.name,
                    format!("cannot list leftover roles ({e}); check that PostgreSQL is up"),
                )
            })?;
        let mut dropped = 0;
        for role in names {
            if lock(&self.held).contains(&role) {
                continue;
            }
            if self.drop_role(&role).await? {
                dropped += 1;
            }
        }
        Ok(dropped)
    }
}

/// `SELECT on schema sales; SELECT, INSERT on schema hr`, and how long the role lives.
fn describe(grants: &[SchemaGrant], per: Per) -> String {
    let grants: Vec<String> = grants
        .iter()
        .map(|g| {
            let privileges: Vec<&str> = g.privileges.iter().map(|p| p.as_sql()).collect();
            format!("{} on schema {}", privileges.join(", "), g.schema)
        })
        .collect();
    let per = match per {
        Per::Call => "role per call",
        Per::Session => "role per session",
    };
    format!("{} ({per})", grants.join("; "))
}

/// The statement did not run: the pool gave no connection, or the server rejected it (the
/// batch is one transaction, rolled back on error).
fn definitely_not_created(e: &sqlx::Error) -> bool {
    matches!(
        e,
        sqlx::Error::PoolTimedOut | sqlx::Error::PoolClosed | sqlx::Error::Database(_)
    )
}

/// SQLSTATE 42704 `undefined_object`: the role is not there.
fn is_undefined_object(e: &sqlx::Error) -> bool {
    e.as_database_error()
        .and_then(|d| d.code())
        .is_some_and(|c| c == "42704")
}

/// `text` with every occurrence of the secrets replaced (defence in depth: a server message
/// quoting part of a statement).
fn scrub(text: &str, secrets: &[&str]) -> String {
    secrets
        .iter()
        .filter(|s| !s.is_empty())
        .fold(text.to_owned(), |t, s| t.replace(s, "[redacted]"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Privilege;

    #[test]
    fn scope_in_words() {
        let grants = vec![
            SchemaGrant {
                schema: "sales".into(),
                privileges: vec![Privilege::Select],
            },
            SchemaGrant {
                schema: "hr".into(),
                privileges: vec![Privilege::Select, Privilege::Insert],
            },
        ];
        assert_eq!(
            describe(&grants, Per::Call),
            "SELECT on schema sales; SELECT, INSERT on schema hr (role per call)"
        );
    }

    #[test]
    fn scrub_removes_every_secret() {
        assert_eq!(
            scrub("a pw b pw v", &["pw", "v", ""]),
            "a [redacted] b [redacted] [redacted]"
        );
    }
}
