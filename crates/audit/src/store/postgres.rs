//! The PostgreSQL store: several gateway replicas append to one log with one
//! global order.
//!
//! Schema (migrations embedded, run at open, in a schema of the caller's
//! choosing through `search_path`): `audit_log(idx BIGINT PRIMARY KEY,
//! leaf_hash, record TEXT)`, `audit_tree_state` (one row: size, frontier,
//! root), `audit_seals` (one signed tree head per batch) and
//! `audit_checkpoints` (the periodic ones).
//!
//! How order and chaining are kept under concurrent writers: each batch is one
//! transaction that (1) sets `synchronous_commit = on` so COMMIT returns only
//! once the WAL is flushed, (2) locks the single `audit_tree_state` row with
//! `SELECT … FOR UPDATE` — every writer of this log queues on that row lock,
//! so batches are serialised and the row always holds the tree after the last
//! committed batch, (3) continues the Merkle frontier from that row, (4)
//! inserts the batch at `size, size+1, …`, (5) writes the new size, frontier
//! and root back, and (6) commits. A writer that aborts releases the lock and
//! leaves no rows. The `idx` primary key is a second guard: a duplicate index
//! cannot commit. A row lock rather than `pg_advisory_xact_lock` because it
//! lives with the data (no lock-key space to share between schemas) and
//! `FOR UPDATE` re-reads the newest row version after waiting.

use std::ops::Range;
use std::str::FromStr;

use sqlx::migrate::{Migration, MigrationType, Migrator};
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};
use sqlx::{Row, SqlSafeStr};

use super::{AuditStore, Committed, Entry, LogReader, SealedRecords, TreeHead};
use crate::checkpoint::{Checkpoint, CheckpointSigner, SignedCheckpoint};
use crate::error::{Defect, ReadError, StoreError};
use crate::keys::KeyId;
use crate::merkle::hash::{Hash, leaf_hash};
use crate::merkle::tree::Frontier;

const MIGRATION_0001: &str = include_str!("../../migrations/0001_audit_log.sql");
const MIGRATION_0002: &str = include_str!("../../migrations/0002_batch_seals.sql");

/// How long taking a connection from the pool may wait, connecting included. A database
/// that is down refuses connections and sqlx retries until this deadline (its default is
/// 30 s): every batch, and every call behind it, would wait that long before the deny.
/// Connecting to a healthy server takes milliseconds.
pub const ACQUIRE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(3);

/// The PostgreSQL-backed [`AuditStore`].
pub struct PostgresStore {
    pool: PgPool,
}

/// Reads a PostgreSQL log. Cheap to clone.
#[derive(Clone)]
pub struct PgReader {
    pool: PgPool,
}

impl PostgresStore {
    /// Connects with up to `max_connections`, creates `schema` if needed and
    /// runs the embedded migrations.
    pub async fn connect(url: &str, schema: &str, max_connections: u32) -> Result<Self, StoreError> {
        check_schema_name(schema)?;
        let options = PgConnectOptions::from_str(url)
            .map_err(|source| StoreError::Postgres {
                action: "parsing the database URL",
                source,
            })?
            .options([("search_path", schema)]);
        let pool = PgPoolOptions::new()
            .max_connections(max_connections.max(1))
            .acquire_timeout(ACQUIRE_TIMEOUT)
            .connect_with(options)
            .await
            .map_err(|source| StoreError::Postgres {
                action: "connecting",
                source,
            })?;
        let mut migrator = Migrator::with_migrations(vec![
            Migration::new(
                1,
                "audit log".into(),
                MigrationType::Simple,
                MIGRATION_0001.into_sql_str(),
                false,
            ),
            Migration::new(
                2,
                "batch seals".into(),
                MigrationType::Simple,
                MIGRATION_0002.into_sql_str(),
                false,
            ),
        ]);
        migrator.create_schema(schema.to_owned());
        migrator.run(&pool).await?;
        Ok(Self { pool })
    }

    pub fn reader(&self) -> PgReader {
        PgReader {
            pool: self.pool.clone(),
        }
    }

    /// Size covered by the largest stored checkpoint (0 if none).
    pub async fn checkpointed_size(&self) -> Result<u64, StoreError> {
        let row = sqlx::query("SELECT COALESCE(MAX(size), 0) AS size FROM audit_checkpoints")
            .fetch_one(&self.pool)
            .await
            .map_err(pg("reading checkpoints"))?;
        Ok(to_u64(row.try_get("size").map_err(pg("reading checkpoints"))?))
    }
}

impl AuditStore for PostgresStore {
    async fn append_batch(&mut self, entries: Vec<Entry>, signer: &CheckpointSigner) -> Result<Committed, StoreError> {
        let mut tx = self.pool.begin().await.map_err(pg("starting a transaction"))?;
        sqlx::query("SET LOCAL synchronous_commit = on")
            .execute(&mut *tx)
            .await
            .map_err(pg("requiring synchronous commit"))?;
        let row = sqlx::query("SELECT size, frontier FROM audit_tree_state WHERE id FOR UPDATE")
            .fetch_one(&mut *tx)
            .await
            .map_err(pg("locking the tree state"))?;
        let size: i64 = row.try_get("size").map_err(pg("reading the tree state"))?;
        let nodes: Vec<u8> = row.try_get("frontier").map_err(pg("reading the tree state"))?;
        let mut frontier = frontier_from(to_u64(size), &nodes)?;
        let before = frontier.clone();
        let first = frontier.size();
        let mut indexes = Vec::with_capacity(entries.len());
        let mut hashes = Vec::with_capacity(entries.len());
        let mut records = Vec::with_capacity(entries.len());
        for (index, entry) in (first..).zip(entries) {
            indexes.push(to_i64(index));
            hashes.push(entry.leaf.0.to_vec());
            frontier.push(entry.leaf);
            records.push(String::from_utf8(entry.data.to_vec()).map_err(|_| StoreError::State {
                problem: "a record is not UTF-8 text",
            })?);
        }
        sqlx::query(
            "INSERT INTO audit_log (idx, leaf_hash, record) \
             SELECT * FROM UNNEST($1::bigint[], $2::bytea[], $3::text[])",
        )
        .bind(indexes)
        .bind(hashes)
        .bind(records)
        .execute(&mut *tx)
        .await
        .map_err(pg("inserting records"))?;
        let head = TreeHead {
            size: frontier.size(),
            root: frontier.root(),
        };
        // Signed while the tree state is locked: the seal is of exactly this tree.
        let seal = signer.sign(head.size, head.root);
        insert_checkpoint(&mut tx, INSERT_SEAL, &seal)
            .await
            .map_err(pg("storing the batch seal"))?;
        let nodes: Vec<u8> = frontier.nodes().iter().flat_map(|h| h.0).collect();
        sqlx::query("UPDATE audit_tree_state SET size = $1, frontier = $2, root = $3 WHERE id")
            .bind(to_i64(head.size))
            .bind(nodes)
            .bind(head.root.0.to_vec())
            .execute(&mut *tx)
            .await
            .map_err(pg("updating the tree state"))?;
        tx.commit().await.map_err(pg("committing"))?;
        Ok(Committed {
            first_index: first,
            head,
            seal,
            before,
        })
    }

    async fn append_checkpoint(&mut self, checkpoint: SignedCheckpoint) -> Result<(), StoreError> {
        let mut conn = self.pool.acquire().await.map_err(pg("storing a checkpoint"))?;
        insert_checkpoint(&mut conn, INSERT_CHECKPOINT, &checkpoint)
            .await
            .map_err(pg("storing a checkpoint"))?;
        Ok(())
    }

    async fn head(&mut self) -> Result<TreeHead, StoreError> {
        let row = sqlx::query("SELECT size, root FROM audit_tree_state WHERE id")
            .fetch_one(&self.pool)
            .await
            .map_err(pg("reading the tree state"))?;
        let size: i64 = row.try_get("size").map_err(pg("reading the tree state"))?;
        let root: Vec<u8> = row.try_get("root").map_err(pg("reading the tree state"))?;
        let root = hash_from(&root).ok_or(StoreError::State {
            problem: "the stored root is not 32 bytes",
        })?;
        Ok(TreeHead {
            size: to_u64(size),
            root,
        })
    }
}

impl LogReader for PgReader {
    async fn len(&self) -> Result<u64, ReadError> {
        let row = sqlx::query("SELECT COALESCE(MAX(idx) + 1, 0) AS len FROM audit_log")
            .fetch_one(&self.pool)
            .await
            .map_err(rd("counting records"))?;
        Ok(to_u64(row.try_get("len").map_err(rd("counting records"))?))
    }

    async fn read(&self, range: Range<u64>) -> Result<Vec<Vec<u8>>, ReadError> {
        let rows =
            sqlx::query("SELECT idx, leaf_hash, record FROM audit_log WHERE idx >= $1 AND idx < $2 ORDER BY idx")
                .bind(to_i64(range.start))
                .bind(to_i64(range.end))
                .fetch_all(&self.pool)
                .await
                .map_err(rd("reading records"))?;
        let mut out = Vec::with_capacity(rows.len());
        let mut next = range.start;
        for row in rows {
            let idx = to_u64(row.try_get("idx").map_err(rd("reading records"))?);
            if idx != next {
                return Err(ReadError::Corrupt {
                    index: next,
                    defect: Defect::Missing,
                });
            }
            let stored: Vec<u8> = row.try_get("leaf_hash").map_err(rd("reading records"))?;
            let record: String = row.try_get("record").map_err(rd("reading records"))?;
            if hash_from(&stored) != Some(leaf_hash(record.as_bytes())) {
                return Err(ReadError::Corrupt {
                    index: idx,
                    defect: Defect::LeafHash,
                });
            }
            out.push(record.into_bytes());
            next += 1;
        }
        if next < range.end {
            return Err(ReadError::Corrupt {
                index: next,
                defect: Defect::Missing,
            });
        }
        Ok(out)
    }

    async fn read_sealed(&self, range: Range<u64>) -> Result<SealedRecords, ReadError> {
        let records = self.read(range.clone()).await?;
        let rows = sqlx::query(
            "SELECT size, root, time_ms, key_id, signature FROM audit_seals \
             WHERE size > $1 AND size <= $2 ORDER BY size",
        )
        .bind(to_i64(range.start))
        .bind(to_i64(range.end))
        .fetch_all(&self.pool)
        .await
        .map_err(rd("reading batch seals"))?;
        let seals = rows
            .iter()
            .map(|row| {
                seal_from_row(row).map_err(|defect| ReadError::Corrupt {
                    index: range.start,
                    defect,
                })
            })
            .collect::<Result<_, _>>()?;
        Ok(SealedRecords { records, seals })
    }

    async fn last_seal(&self) -> Result<Option<SignedCheckpoint>, ReadError> {
        let row =
            sqlx::query("SELECT size, root, time_ms, key_id, signature FROM audit_seals ORDER BY size DESC LIMIT 1")
                .fetch_optional(&self.pool)
                .await
                .map_err(rd("reading batch seals"))?;
        row.map(|row| seal_from_row(&row).map_err(|defect| ReadError::Corrupt { index: 0, defect }))
            .transpose()
    }

    async fn checkpoints(&self) -> Result<Vec<SignedCheckpoint>, ReadError> {
        let rows = sqlx::query("SELECT size, root, time_ms, key_id, signature FROM audit_checkpoints ORDER BY id")
            .fetch_all(&self.pool)
            .await
            .map_err(rd("reading checkpoints"))?;
        let mut out = Vec::with_capacity(rows.len());
        for (position, row) in (0u64..).zip(rows) {
            out.push(checkpoint_from_row(&row).map_err(|problem| ReadError::BadCheckpoint {
                position,
                problem: problem.to_owned(),
            })?);
        }
        Ok(out)
    }
}

const INSERT_SEAL: &str =
    "INSERT INTO audit_seals (size, root, time_ms, key_id, signature) VALUES ($1, $2, $3, $4, $5)";
const INSERT_CHECKPOINT: &str =
    "INSERT INTO audit_checkpoints (size, root, time_ms, key_id, signature) VALUES ($1, $2, $3, $4, $5)";

/// Inserts a signed checkpoint with `statement` ([`INSERT_SEAL`] or
/// [`INSERT_CHECKPOINT`]: the two tables share their columns).
async fn insert_checkpoint(
    conn: &mut sqlx::PgConnection,
    statement: &'static str,
    checkpoint: &SignedCheckpoint,
) -> Result<(), sqlx::Error> {
    let cp = checkpoint.checkpoint;
    sqlx::query(statement)
        .bind(to_i64(cp.size))
        .bind(cp.root.0.to_vec())
        .bind(to_i64(cp.time_ms))
        .bind(checkpoint.key_id.to_string())
        .bind(checkpoint.signature.to_vec())
        .execute(conn)
        .await?;
    Ok(())
}

/// A signed checkpoint from a row of `audit_seals` or `audit_checkpoints`.
fn checkpoint_from_row(row: &sqlx::postgres::PgRow) -> Result<SignedCheckpoint, &'static str> {
    let size: i64 = row.try_get("size").map_err(|_| "size is unreadable")?;
    let time_ms: i64 = row.try_get("time_ms").map_err(|_| "time is unreadable")?;
    let key_id: String = row.try_get("key_id").map_err(|_| "key id is unreadable")?;
    let root: Vec<u8> = row.try_get("root").map_err(|_| "root is unreadable")?;
    let sig: Vec<u8> = row.try_get("signature").map_err(|_| "signature is unreadable")?;
    let root = hash_from(&root).ok_or("root is not 32 bytes")?;
    let signature = <[u8; 64]>::try_from(sig.as_slice()).map_err(|_| "signature is not 64 bytes")?;
    Ok(SignedCheckpoint {
        checkpoint: Checkpoint {
            size: to_u64(size),
            root,
            time_ms: to_u64(time_ms),
        },
        key_id: KeyId::from_stored(&key_id),
        signature,
    })
}

fn seal_from_row(row: &sqlx::postgres::PgRow) -> Result<SignedCheckpoint, Defect> {
    checkpoint_from_row(row).map_err(Defect::Seal)
}

/// Schema names are interpolated into `CREATE SCHEMA` and `search_path`, so
/// only plain lowercase identifiers are accepted.
fn check_schema_name(schema: &str) -> Result<(), StoreError> {
    let mut chars = schema.chars();
    let ok = schema.len() <= 63
        && chars.next().is_some_and(|c| c.is_ascii_lowercase() || c == '_')
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
    if ok {
        Ok(())
    } else {
        Err(StoreError::SchemaName(schema.to_owned()))
    }
}

fn frontier_from(size: u64, bytes: &[u8]) -> Result<Frontier, StoreError> {
    let nodes: Option<Vec<Hash>> = bytes.chunks(32).map(hash_from).collect();
    nodes
        .filter(|_| bytes.len().is_multiple_of(32))
        .and_then(|nodes| Frontier::from_parts(size, nodes))
        .ok_or(StoreError::State {
            problem: "the stored frontier does not match the stored size",
        })
}

fn hash_from(bytes: &[u8]) -> Option<Hash> {
    <[u8; 32]>::try_from(bytes).ok().map(Hash)
}

/// Sizes and indexes are below 2^63 in practice; BIGINT holds them.
fn to_i64(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

fn to_u64(v: i64) -> u64 {
    u64::try_from(v).unwrap_or(0)
}

fn pg(action: &'static str) -> impl Fn(sqlx::Error) -> StoreError {
    move |source| StoreError::Postgres { action, source }
}

fn rd(action: &'static str) -> impl Fn(sqlx::Error) -> ReadError {
    move |source| ReadError::Postgres { action, source }
}
