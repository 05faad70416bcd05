//! The demo's `query` tool (read-sensitive): runs one SQL statement against the database
//! named by `DATABASE_URL` in this process's environment — the connection string the
//! gateway's credential broker hands a `spawn = "per-call"` child for one call, with a
//! role minted for that call. Without one the tool says so. Its answer names the role it
//! ran as, so the demo can show that each call had its own.
use std::time::Duration;

use rmcp::{
    ErrorData as McpError,
    model::{CallToolResult, ContentBlock, JsonObject},
};
use serde_json::json;
use sqlx::{Connection, Row};

use crate::demo_tools::str_arg;

/// The environment variable the connection string comes in.
pub const DATABASE_URL: &str = "DATABASE_URL";

/// How long connecting may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

#[expect(
    clippy::disallowed_methods,
    reason = "a demo tool: its connection string is what the gateway put in this child's environment"
)]
pub async fn query(args: &JsonObject) -> Result<CallToolResult, McpError> {
    let sql = str_arg(args, "sql")?.trim().trim_end_matches(';').to_owned();
    let Ok(url) = std::env::var(DATABASE_URL) else {
        return Ok(failure(format!(
            "no database credential: this server was started without {DATABASE_URL} (behind Portcullis, a [[credentials]] rule delivers one per call)"
        )));
    };
    let connected = tokio::time::timeout(CONNECT_TIMEOUT, sqlx::PgConnection::connect(&url)).await;
    let mut conn = match connected {
        Ok(Ok(conn)) => conn,
        Ok(Err(e)) => {
            return Ok(failure(format!(
                "cannot connect to the database: {}",
                database_error(&e)
            )));
        }
        Err(_) => return Ok(failure("cannot connect to the database: timed out".to_owned())),
    };
    let role: String = match sqlx::query("SELECT current_user::text").fetch_one(&mut conn).await {
        Ok(row) => row.try_get(0).unwrap_or_default(),
        Err(e) => return Ok(failure(database_error(&e))),
    };
    let lowered = sql.to_ascii_lowercase();
    let answer = if lowered.starts_with("select") || lowered.starts_with("with") {
        // Running the caller's SQL is this tool's whole job; what it may touch is decided by
        // the role it connects as (minted per call by the gateway), not by the text.
        let wrapped = format!("SELECT coalesce(json_agg(t), '[]'::json)::text FROM ({sql}) t");
        match sqlx::query(sqlx::AssertSqlSafe(wrapped)).fetch_one(&mut conn).await {
            Ok(row) => {
                let text: String = row.try_get(0).unwrap_or_else(|_| "[]".to_owned());
                let rows: serde_json::Value = serde_json::from_str(&text).unwrap_or_default();
                json!({ "role": role, "rows": rows })
            }
            Err(e) => return Ok(failure_as(&role, database_error(&e))),
        }
    } else {
        match sqlx::query(sqlx::AssertSqlSafe(sql)).execute(&mut conn).await {
            Ok(done) => json!({ "role": role, "rows_affected": done.rows_affected() }),
            Err(e) => return Ok(failure_as(&role, database_error(&e))),
        }
    };
    let _ = conn.close().await;
    Ok(CallToolResult::structured(answer))
}

/// What the database said, without the connection string.
fn database_error(e: &sqlx::Error) -> String {
    match e {
        sqlx::Error::Database(db) => db.message().to_owned(),
        other => other.to_string(),
    }
}

fn failure(text: String) -> CallToolResult {
    CallToolResult::error(vec![ContentBlock::text(text)])
}

fn failure_as(role: &str, text: String) -> CallToolResult {
    failure(format!("as role {role}: {text}"))
}
