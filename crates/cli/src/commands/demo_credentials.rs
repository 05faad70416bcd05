//! The demo's credential-broker step: when a PostgreSQL is reachable (the one in
//! `PORTCULLIS_DEMO_POSTGRES`, else `postgres://postgres@127.0.0.1:5432/postgres`), the demo
//! server starts per call and its `query` tool gets, for each call, a database role minted
//! by the gateway that can read schema `sales` and nothing else; the step shows a query
//! through it, a refused query on schema `hr`, and that the role is gone afterwards.
//! Without PostgreSQL the step is skipped (the demo runs on embedded defaults).
use std::time::Duration;

use serde_json::{Value, json};
use sqlx::{Connection, Row};

/// The environment variable naming the demo's PostgreSQL admin connection string.
pub const DEMO_POSTGRES_ENV: &str = "PORTCULLIS_DEMO_POSTGRES";
/// Tried when [`DEMO_POSTGRES_ENV`] is not set: the local server's superuser, no password.
const DEFAULT_ADMIN_URL: &str = "postgres://postgres@127.0.0.1:5432/postgres";
/// The environment variable the demo's config takes the admin connection string from.
pub const ADMIN_URL_VAR: &str = "PORTCULLIS_DEMO_DB_ADMIN_URL";
/// Roles the demo mints start with this (the sweeper drops leftovers of it at start).
const PREFIX: &str = "portcullis_demo_";

/// A reachable database, prepared with schemas `sales` and `hr`.
pub struct DemoDb {
    pub admin_url: String,
}

impl DemoDb {
    /// Connects (briefly) and creates the demo's schemas and rows if missing; `Err` says
    /// why the step is skipped.
    pub async fn prepare() -> Result<Self, String> {
        let admin_url = std::env::var(DEMO_POSTGRES_ENV).unwrap_or_else(|_| DEFAULT_ADMIN_URL.to_owned());
        let mut conn = tokio::time::timeout(Duration::from_secs(3), sqlx::PgConnection::connect(&admin_url))
            .await
            .map_err(|_| "connecting timed out".to_owned())?
            .map_err(|e| format!("cannot connect: {}", short(&e)))?;
        for statement in [
            "CREATE SCHEMA IF NOT EXISTS sales",
            "CREATE TABLE IF NOT EXISTS sales.orders (id int PRIMARY KEY, customer text NOT NULL, total numeric NOT NULL)",
            "INSERT INTO sales.orders VALUES (1, 'C-1001', 120.00), (2, 'C-1002', 75.50) ON CONFLICT DO NOTHING",
            "CREATE SCHEMA IF NOT EXISTS hr",
            "CREATE TABLE IF NOT EXISTS hr.salaries (employee text PRIMARY KEY, salary numeric NOT NULL)",
            "INSERT INTO hr.salaries VALUES ('alice', 98000) ON CONFLICT DO NOTHING",
        ] {
            sqlx::query(statement)
                .execute(&mut conn)
                .await
                .map_err(|e| format!("cannot prepare the demo schemas: {}", short(&e)))?;
        }
        let _ = conn.close().await;
        Ok(Self { admin_url })
    }

    /// The servers get this connection string, with the minted role filled in.
    fn connect_url(&self) -> Result<String, String> {
        let url = url::Url::parse(&self.admin_url).map_err(|e| format!("not a URL: {e}"))?;
        let host = url.host_str().unwrap_or("127.0.0.1");
        let port = url.port().unwrap_or(5432);
        Ok(format!("postgres://{{user}}:{{password}}@{host}:{port}{}", url.path()))
    }

    /// The config the demo adds: the demo server started per call, a `postgres-role`
    /// source that can read `sales`, and the rule giving `query` calls such a role.
    pub fn config(&self) -> Result<String, String> {
        Ok(format!(
            r#"
[broker.sources.sales_db]
kind = "postgres-role"
admin_url_env = "{ADMIN_URL_VAR}"
connect_url = "{}"
prefix = "{PREFIX}"
ttl_secs = 300
grants = [{{ schema = "sales", privileges = ["select"] }}]

[[credentials]]
id = "sales-read"
server = "demo"
tools = ["query"]
source = "sales_db"
env = "DATABASE_URL"
"#,
            self.connect_url()?
        ))
    }

    /// Whether `role` still exists.
    pub async fn role_exists(&self, role: &str) -> Result<bool, String> {
        let mut conn = sqlx::PgConnection::connect(&self.admin_url)
            .await
            .map_err(|e| short(&e))?;
        let found = sqlx::query("SELECT count(*) FROM pg_roles WHERE rolname = $1")
            .bind(role)
            .fetch_one(&mut conn)
            .await
            .map_err(|e| short(&e))?;
        let _ = conn.close().await;
        Ok(found.try_get::<i64, _>(0).unwrap_or(1) > 0)
    }
}

/// A policy for the demo agent, which holds no read-sensitive scope: `query` is allowed
/// when the broker gives the call a minted database role (`context.credential`) and the
/// call states a reason.
pub const DEMO_POLICY: &str = r#"// The demo agent may run `query` only with a role minted for the call.
@id("demo-query-with-a-minted-role")
permit (principal, action == Action::"tools/call", resource == Tool::"demo/query")
when {
  !principal.anonymous &&
  context has reason &&
  context has credential && context.credential.kind == "postgres-role"
};
"#;

/// The demo server's `spawn` line: started afresh for every acting call.
pub fn per_call(config: &str) -> String {
    config.replacen(
        "env = {}                             # the only variables the child sees",
        "env = {}                             # the only variables the child sees\nspawn = \"per-call\"",
        1,
    )
}

/// What a `query` call answered: the role it ran as and its rows, or the tool's error.
pub fn answer(body: &Value) -> (Option<String>, Result<Value, String>) {
    let result = body.get("result");
    let structured = result.and_then(|r| r.get("structuredContent"));
    let role = structured
        .and_then(|s| s.get("role"))
        .and_then(Value::as_str)
        .map(str::to_owned);
    let text = result
        .and_then(|r| r.pointer("/content/0/text"))
        .and_then(Value::as_str)
        .unwrap_or_default();
    if result.and_then(|r| r.get("isError")).and_then(Value::as_bool) == Some(true) {
        let role = text
            .strip_prefix("as role ")
            .and_then(|rest| rest.split(':').next())
            .map(str::to_owned);
        return (role, Err(text.to_owned()));
    }
    match (structured, body.pointer("/error/message").and_then(Value::as_str)) {
        (Some(s), _) => (role, Ok(s.get("rows").cloned().unwrap_or(json!([])))),
        (None, Some(error)) => (None, Err(error.to_owned())),
        (None, None) => (None, Err(format!("unexpected answer: {body}"))),
    }
}

fn short(e: &sqlx::Error) -> String {
    match e {
        sqlx::Error::Database(db) => db.message().to_owned(),
        other => other.to_string(),
    }
}
