//! The PostgreSQL approvals store: the pending requests, used nonces and break-glass
//! windows of every replica on one database, in `portcullis_approval_*` tables of the
//! audit log's schema (migrations embedded, run at open, tracked in their own table
//! `portcullis_approval_migrations`).
//!
//! How exactly one of two racing decisions wins: every change to a request (a grant, a
//! deny, the caller's answer) is one transaction that locks the request's row
//! (`SELECT … FOR UPDATE`), applies the same rules as the in-memory set
//! (`PendingEntry::add_grant`, …) to what it read, and writes it back; the second of
//! two racers waits for the lock, reads the first one's result and finds the request
//! decided. A granted request is used by deleting its row (`DELETE … AND state =
//! 'granted'`: only one deleter gets it) while its nonce goes into
//! `portcullis_approval_nonces`, whose primary key refuses a second use. Opening a
//! request locks the one row of `portcullis_approval_open_lock`, so `max_pending` counts
//! the requests of every replica. Changes are announced with `pg_notify` (see
//! [`super::wake`]). Expiry is judged from the stored expiry times against this
//! gateway's clock. The key protecting 2026-07-28 `requestState`s is one row of
//! `portcullis_approval_keys`, created by the first gateway and read by each at start, so
//! a round trip's retry may reach any replica.
use std::{str::FromStr, sync::Arc};

use sqlx::{
    Row, SqlSafeStr,
    migrate::{Migration, MigrationType, Migrator},
    postgres::{PgConnectOptions, PgConnection, PgPool, PgPoolOptions, PgRow},
};

use super::wake::{self, ListenTask, Waiters};
use crate::{
    binding::Binding,
    error::ApprovalError,
    pending::{Grant, Opening, PendingEntry, PendingSettings, PendingState},
    registry::Approver,
    unix_now,
};

const MIGRATION_0001: &str = include_str!("../../migrations/0001_approvals.sql");
const MIGRATION_0002: &str = include_str!("../../migrations/0002_approval_keys.sql");

/// How long taking a connection may wait, connecting included: a database that is down
/// denies the call in seconds, not after sqlx's default 30 s.
const ACQUIRE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(3);

/// Connections for the store's statements (the listener has its own).
const CONNECTIONS: u32 = 4;

/// The columns a request is read from, in [`entry_from`]'s terms.
macro_rules! request_columns {
    () => {
        "id, binding, required, grants::text AS grants, state, denied_by, call_id, tier, reason, \
         arguments_summary, opened_at"
    };
}

/// The shared store of one gateway.
pub(crate) struct PgStore {
    pub(super) pool: PgPool,
    schema: String,
    pub(super) settings: PendingSettings,
    pub(super) max_ttl_secs: u64,
    /// The `requestState` key every replica on this database shares (never logged).
    pub(super) request_state_key: [u8; 32],
    waiters: Arc<Waiters>,
    _listening: ListenTask,
}

/// The store error for a failed `action`, logged with the driver's message.
pub(super) fn failed(action: &'static str) -> impl Fn(sqlx::Error) -> ApprovalError {
    move |e| {
        tracing::error!(action, "approvals store: {e}");
        ApprovalError::Store {
            action,
            detail: e.to_string(),
        }
    }
}

/// A row that does not hold what this gateway wrote.
pub(super) fn corrupt(action: &'static str, what: impl std::fmt::Display) -> ApprovalError {
    tracing::error!(action, "approvals store: {what}");
    ApprovalError::Store {
        action,
        detail: what.to_string(),
    }
}

pub(super) fn to_i64(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

pub(super) fn to_u64(v: i64) -> u64 {
    u64::try_from(v).unwrap_or(0)
}

/// Schema names go into `CREATE SCHEMA` and `search_path`: plain lowercase identifiers only.
fn check_schema_name(schema: &str) -> Result<(), ApprovalError> {
    let mut chars = schema.chars();
    let ok = schema.len() <= 63
        && chars.next().is_some_and(|c| c.is_ascii_lowercase() || c == '_')
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
    if ok {
        Ok(())
    } else {
        Err(corrupt(
            "checking the schema name",
            format!("`{schema}` must be lowercase letters, digits and `_`"),
        ))
    }
}

/// The name of the `requestState` key in `portcullis_approval_keys`.
const REQUEST_STATE_KEY: &str = "request_state";

/// The shared key `name`: created by the first gateway to ask (of two racing, one insert
/// wins and both read it), then read by every one.
async fn shared_key(pool: &PgPool, name: &str) -> Result<[u8; 32], ApprovalError> {
    const READING: &str = "reading the shared request-state key";
    sqlx::query(
        "INSERT INTO portcullis_approval_keys (name, key, created_at) VALUES ($1, $2, $3) \
         ON CONFLICT (name) DO NOTHING",
    )
    .bind(name)
    .bind(crate::request_state::fresh_key().as_slice())
    .bind(to_i64(unix_now()))
    .execute(pool)
    .await
    .map_err(failed(READING))?;
    let key: Vec<u8> = sqlx::query_scalar("SELECT key FROM portcullis_approval_keys WHERE name = $1")
        .bind(name)
        .fetch_one(pool)
        .await
        .map_err(failed(READING))?;
    key.try_into()
        .map_err(|_| corrupt(READING, "the stored key is not 32 bytes"))
}

fn entry_from(row: &PgRow) -> Result<PendingEntry, ApprovalError> {
    const READING: &str = "reading a request";
    let get = failed(READING);
    let binding: String = row.try_get("binding").map_err(&get)?;
    let binding = Binding::from_slice(binding.as_bytes()).map_err(|e| corrupt(READING, e))?;
    let grants: String = row.try_get("grants").map_err(&get)?;
    let grants: Vec<Grant> = serde_json::from_str(&grants).map_err(|e| corrupt(READING, e))?;
    let state: String = row.try_get("state").map_err(&get)?;
    let state = match state.as_str() {
        "waiting" => PendingState::Waiting,
        "granted" => PendingState::Granted,
        "denied" => PendingState::Denied {
            by: row
                .try_get::<Option<String>, _>("denied_by")
                .map_err(&get)?
                .unwrap_or_default(),
        },
        other => return Err(corrupt(READING, format!("unknown state `{other}`"))),
    };
    let required: i32 = row.try_get("required").map_err(&get)?;
    Ok(PendingEntry {
        binding,
        required: usize::try_from(required).unwrap_or(1),
        grants,
        state,
        call_id: row.try_get("call_id").map_err(&get)?,
        tier: row.try_get("tier").map_err(&get)?,
        reason: row.try_get("reason").map_err(&get)?,
        arguments_summary: row.try_get("arguments_summary").map_err(&get)?,
        opened_at: to_u64(row.try_get("opened_at").map_err(&get)?),
    })
}

/// `state` as stored.
fn state_label(state: &str) -> &'static str {
    match state {
        "granted" => "granted",
        "denied" => "denied",
        _ => "waiting",
    }
}

impl PgStore {
    /// Connects, creates `schema` and the tables if needed, and starts listening for the
    /// decisions of other replicas.
    pub(crate) async fn connect(
        url: &str,
        schema: &str,
        settings: PendingSettings,
        max_ttl_secs: u64,
    ) -> Result<Self, ApprovalError> {
        check_schema_name(schema)?;
        let options = PgConnectOptions::from_str(url)
            .map_err(failed("reading the database URL"))?
            .options([("search_path", schema)]);
        let pool_of = |size: u32| {
            PgPoolOptions::new()
                .max_connections(size)
                .acquire_timeout(ACQUIRE_TIMEOUT)
                .connect_with(options.clone())
        };
        let pool = pool_of(CONNECTIONS).await.map_err(failed("connecting"))?;
        let mut migrator = Migrator::with_migrations(vec![
            Migration::new(
                1,
                "approvals".into(),
                MigrationType::Simple,
                MIGRATION_0001.into_sql_str(),
                false,
            ),
            Migration::new(
                2,
                "approval keys".into(),
                MigrationType::Simple,
                MIGRATION_0002.into_sql_str(),
                false,
            ),
        ]);
        migrator.dangerous_set_table_name("portcullis_approval_migrations");
        migrator.create_schema(schema.to_owned());
        migrator
            .run(&pool)
            .await
            .map_err(|e| corrupt("creating its tables", e))?;
        let request_state_key = shared_key(&pool, REQUEST_STATE_KEY).await?;
        let waiters = Arc::new(Waiters::default());
        let listen_pool = pool_of(1).await.map_err(failed("connecting"))?;
        let listening = wake::start(listen_pool, schema, waiters.clone())
            .await
            .map_err(failed("listening for decisions"))?;
        Ok(Self {
            pool,
            schema: schema.to_owned(),
            settings,
            max_ttl_secs,
            request_state_key,
            waiters,
            _listening: listening,
        })
    }

    /// Announces a change of request `id` to every replica, when `tx` commits.
    async fn announce(&self, tx: &mut PgConnection, id: &str) -> Result<(), ApprovalError> {
        sqlx::query("SELECT pg_notify($1, $2)")
            .bind(wake::CHANNEL)
            .bind(format!("{}/{id}", self.schema))
            .execute(tx)
            .await
            .map_err(failed("announcing a decision"))?;
        Ok(())
    }

    pub(crate) fn prepare(&self, opening: Opening) -> PendingEntry {
        self.settings.new_entry(opening, unix_now())
    }

    pub(crate) async fn admit(&self, entry: PendingEntry) -> Result<PendingEntry, ApprovalError> {
        let now = unix_now();
        let fail = failed("opening a request");
        let mut tx = self.pool.begin().await.map_err(&fail)?;
        sqlx::query("SELECT id FROM portcullis_approval_open_lock WHERE id FOR UPDATE")
            .fetch_one(&mut *tx)
            .await
            .map_err(&fail)?;
        // Expired requests count for nothing; they are removed (and recorded) by
        // `expire_requests`, not here.
        let open: i64 = sqlx::query_scalar("SELECT count(*) FROM portcullis_approval_requests WHERE expires_at >= $1")
            .bind(to_i64(now))
            .fetch_one(&mut *tx)
            .await
            .map_err(&fail)?;
        if to_u64(open) >= self.settings.max_pending as u64 {
            return Err(ApprovalError::QueueFull(self.settings.max_pending));
        }
        let b = &entry.binding;
        sqlx::query(
            "INSERT INTO portcullis_approval_requests (id, binding, arguments_sha256, required, state, call_id, \
             tier, reason, arguments_summary, opened_at, expires_at) \
             VALUES ($1, $2, $3, $4, 'waiting', $5, $6, $7, $8, $9, $10)",
        )
        .bind(&b.id)
        .bind(String::from_utf8_lossy(&b.to_bytes()).into_owned())
        .bind(&b.arguments_sha256)
        .bind(i32::try_from(entry.required).unwrap_or(i32::MAX))
        .bind(&entry.call_id)
        .bind(&entry.tier)
        .bind(&entry.reason)
        .bind(&entry.arguments_summary)
        .bind(to_i64(entry.opened_at))
        .bind(to_i64(b.expires_at))
        .execute(&mut *tx)
        .await
        .map_err(&fail)?;
        tx.commit().await.map_err(&fail)?;
        Ok(entry)
    }

    pub(crate) async fn get(&self, id: &str) -> Result<PendingEntry, ApprovalError> {
        let row = sqlx::query(concat!(
            "SELECT ",
            request_columns!(),
            " FROM portcullis_approval_requests WHERE id = $1 AND expires_at >= $2"
        ))
        .bind(id)
        .bind(to_i64(unix_now()))
        .fetch_optional(&self.pool)
        .await
        .map_err(failed("reading a request"))?;
        entry_from(&row.ok_or_else(|| ApprovalError::UnknownRequest(id.to_owned()))?)
    }

    pub(crate) async fn list(&self) -> Result<Vec<PendingEntry>, ApprovalError> {
        let rows = sqlx::query(concat!(
            "SELECT ",
            request_columns!(),
            " FROM portcullis_approval_requests WHERE expires_at >= $1 ORDER BY opened_at, id"
        ))
        .bind(to_i64(unix_now()))
        .fetch_all(&self.pool)
        .await
        .map_err(failed("listing requests"))?;
        rows.iter().map(entry_from).collect()
    }

    /// Applies `change` to request `id` under its row lock (not expired at `live_at`),
    /// writes it back and announces it.
    async fn change(
        &self,
        id: &str,
        live_at: u64,
        change: impl FnOnce(&mut PendingEntry) -> Result<(), ApprovalError>,
    ) -> Result<PendingEntry, ApprovalError> {
        let fail = failed("deciding a request");
        let mut tx = self.pool.begin().await.map_err(&fail)?;
        let row = sqlx::query(concat!(
            "SELECT ",
            request_columns!(),
            " FROM portcullis_approval_requests WHERE id = $1 AND expires_at >= $2 FOR UPDATE"
        ))
        .bind(id)
        .bind(to_i64(live_at))
        .fetch_optional(&mut *tx)
        .await
        .map_err(&fail)?;
        let mut entry = entry_from(&row.ok_or_else(|| ApprovalError::UnknownRequest(id.to_owned()))?)?;
        change(&mut entry)?;
        let grants = serde_json::to_string(&entry.grants).map_err(|e| corrupt("deciding a request", e))?;
        let (state, denied_by) = match &entry.state {
            PendingState::Denied { by } => ("denied", Some(by.as_str())),
            other => (other.label(), None),
        };
        sqlx::query(
            "UPDATE portcullis_approval_requests SET grants = $2::jsonb, state = $3, denied_by = $4 WHERE id = $1",
        )
        .bind(id)
        .bind(grants)
        .bind(state)
        .bind(denied_by)
        .execute(&mut *tx)
        .await
        .map_err(&fail)?;
        self.announce(&mut tx, id).await?;
        tx.commit().await.map_err(&fail)?;
        // A call waiting here needs no round trip through the listener.
        self.waiters.wake(id);
        Ok(entry)
    }

    pub(crate) async fn grant(
        &self,
        id: &str,
        approver: &Approver,
        grant: Grant,
    ) -> Result<PendingEntry, ApprovalError> {
        self.change(id, unix_now(), |e| e.add_grant(approver, grant)).await
    }

    pub(crate) async fn confirm_by_caller(&self, id: &str, grant: Grant) -> Result<PendingEntry, ApprovalError> {
        self.change(id, unix_now(), |e| e.confirm(grant)).await
    }

    pub(crate) async fn refuse_by_caller(&self, id: &str, by: &str) -> Result<(), ApprovalError> {
        // As in memory: the caller's own no counts even on an expired request.
        self.change(id, 0, |e| e.refuse(by)).await.map(drop)
    }

    pub(crate) async fn deny(&self, id: &str, approver: &Approver) -> Result<(), ApprovalError> {
        self.change(id, unix_now(), |e| e.refuse(&approver.name))
            .await
            .map(drop)
    }

    /// Uses granted request `id`: its row is deleted and its nonce recorded as used, in one
    /// transaction; of two replicas using it, one gets it.
    pub(crate) async fn consume(&self, id: &str) -> Result<PendingEntry, ApprovalError> {
        let fail = failed("using a granted request");
        let mut tx = self.pool.begin().await.map_err(&fail)?;
        let row = sqlx::query(concat!(
            "DELETE FROM portcullis_approval_requests WHERE id = $1 AND state = 'granted' RETURNING ",
            request_columns!()
        ))
        .bind(id)
        .fetch_optional(&mut *tx)
        .await
        .map_err(&fail)?;
        let Some(row) = row else {
            let state: Option<String> =
                sqlx::query_scalar("SELECT state FROM portcullis_approval_requests WHERE id = $1")
                    .bind(id)
                    .fetch_optional(&mut *tx)
                    .await
                    .map_err(&fail)?;
            return Err(match state {
                Some(state) => ApprovalError::AlreadyDecided(id.to_owned(), state_label(&state)),
                None => ApprovalError::UnknownRequest(id.to_owned()),
            });
        };
        let entry = entry_from(&row)?;
        let used = sqlx::query(
            "INSERT INTO portcullis_approval_nonces (nonce, request_id, expires_at, used_at) VALUES ($1, $2, $3, $4)",
        )
        .bind(&entry.binding.nonce)
        .bind(id)
        .bind(to_i64(entry.binding.expires_at))
        .bind(to_i64(unix_now()))
        .execute(&mut *tx)
        .await;
        match used {
            Ok(_) => {}
            Err(sqlx::Error::Database(e)) if e.is_unique_violation() => {
                tracing::warn!(approval = %id, "approval nonce already used: refused");
                return Err(ApprovalError::UnknownRequest(id.to_owned()));
            }
            Err(e) => return Err(fail(e)),
        }
        tx.commit().await.map_err(&fail)?;
        Ok(entry)
    }

    /// The granted, unexpired request for the same call as `call`, used.
    pub(crate) async fn take_granted_for(&self, call: &Binding) -> Result<Option<PendingEntry>, ApprovalError> {
        let rows = sqlx::query(concat!(
            "SELECT ",
            request_columns!(),
            " FROM portcullis_approval_requests WHERE state = 'granted' AND expires_at >= $1 \
             AND arguments_sha256 = $2 ORDER BY opened_at, id"
        ))
        .bind(to_i64(unix_now()))
        .bind(&call.arguments_sha256)
        .fetch_all(&self.pool)
        .await
        .map_err(failed("finding a granted request"))?;
        for row in &rows {
            let entry = entry_from(row)?;
            if entry.binding.check_call_fields(call).is_err() {
                continue;
            }
            match self.consume(&entry.binding.id).await {
                Ok(used) => return Ok(Some(used)),
                Err(e @ ApprovalError::Store { .. }) => return Err(e),
                // Another replica used it first.
                Err(_) => {}
            }
        }
        Ok(None)
    }

    pub(crate) async fn withdraw(&self, id: &str) -> Result<Option<PendingEntry>, ApprovalError> {
        let fail = failed("withdrawing a request");
        let mut tx = self.pool.begin().await.map_err(&fail)?;
        let row = sqlx::query(concat!(
            "DELETE FROM portcullis_approval_requests WHERE id = $1 RETURNING ",
            request_columns!()
        ))
        .bind(id)
        .fetch_optional(&mut *tx)
        .await
        .map_err(&fail)?;
        let Some(row) = row else { return Ok(None) };
        self.announce(&mut tx, id).await?;
        tx.commit().await.map_err(&fail)?;
        self.waiters.wake(id);
        entry_from(&row).map(Some)
    }

    /// Removes the requests whose TTL ran out unused, and the nonces of used requests past
    /// their expiry (a request that expired can never be used, so its nonce needs no
    /// keeping). Returns the removed requests: one `DELETE … RETURNING`, so of replicas
    /// sweeping at once each request goes to exactly one, which records it. A call still
    /// waiting on one, on any replica, is woken and finds it gone.
    pub(crate) async fn expire_requests(&self) -> Result<Vec<PendingEntry>, ApprovalError> {
        let fail = failed("removing expired requests");
        let now = to_i64(unix_now());
        let mut tx = self.pool.begin().await.map_err(&fail)?;
        let rows = sqlx::query(concat!(
            "DELETE FROM portcullis_approval_requests WHERE expires_at < $1 RETURNING ",
            request_columns!()
        ))
        .bind(now)
        .fetch_all(&mut *tx)
        .await
        .map_err(&fail)?;
        sqlx::query("DELETE FROM portcullis_approval_nonces WHERE expires_at < $1")
            .bind(now)
            .execute(&mut *tx)
            .await
            .map_err(&fail)?;
        let mut expired = rows.iter().map(entry_from).collect::<Result<Vec<_>, _>>()?;
        for entry in &expired {
            self.announce(&mut tx, &entry.binding.id).await?;
        }
        tx.commit().await.map_err(&fail)?;
        for entry in &expired {
            self.waiters.wake(&entry.binding.id);
        }
        crate::pending::oldest_first(&mut expired);
        Ok(expired)
    }

    /// Waits until request `id` is decided, woken by the replica that decides it.
    pub(crate) async fn wait_decided(&self, id: &str) -> Result<PendingState, ApprovalError> {
        let waiting = self.waiters.register(id);
        loop {
            let entry = self.get(id).await?;
            if entry.state != PendingState::Waiting {
                return Ok(entry.state);
            }
            // Woken by a decision, or the slow re-check; either way the row says.
            let _ = tokio::time::timeout(wake::SAFETY_RECHECK, waiting.notify.notified()).await;
        }
    }
}
