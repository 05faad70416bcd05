//! Shared helpers: the PostgreSQL fixture (unique schemas `…_sales` and `…_hr` with a
//! table each, a unique role prefix), rule and call builders, and role lookups through the
//! admin connection.
use std::time::Duration;

use portcullis_broker::{
    CallFacts, CallMatch, DEFAULT_CONNECTION_LIMIT, Delivery, Per, PostgresRoleConfig, Privilege, Rule, SchemaGrant,
    SourceConfig, SourceKind,
};
use portcullis_core::{Secret, Tier};
use sqlx::PgPool;

/// The PostgreSQL server of the tests; `None` (with a notice naming `what`) when CI's
/// `DATABASE_URL` is not set, and the test is skipped (as in portcullis-audit).
#[expect(
    clippy::disallowed_methods,
    reason = "test setup: CI names its PostgreSQL server in DATABASE_URL"
)]
pub fn database_url(what: &str) -> Option<String> {
    let url = std::env::var("DATABASE_URL").ok();
    if url.is_none() {
        eprintln!("DATABASE_URL is not set: skipping {what}");
    }
    url
}

/// `prefix` and 12 random lowercase hex digits.
pub fn unique(prefix: &str) -> String {
    format!("{prefix}{}", &portcullis_core::CallId::random().as_str()[..12])
}

/// One test's corner of the database: its own schemas and role prefix.
pub struct Db {
    pub url: String,
    pub admin: PgPool,
    pub sales: String,
    pub hr: String,
    pub prefix: String,
}

impl Db {
    pub async fn new(url: &str) -> Self {
        let tag = unique("bt_");
        let admin = PgPool::connect(url).await.expect("connect as admin");
        let db = Self {
            url: url.to_owned(),
            admin,
            sales: format!("{tag}_sales"),
            hr: format!("{tag}_hr"),
            prefix: format!("{tag}_"),
        };
        db.exec(&format!(
            "CREATE SCHEMA {s}; CREATE TABLE {s}.orders (id int, amount int); INSERT INTO {s}.orders VALUES (1, 100), (2, 250);
             CREATE SCHEMA {h}; CREATE TABLE {h}.people (name text, salary int); INSERT INTO {h}.people VALUES ('ann', 1);",
            s = db.sales,
            h = db.hr
        ))
        .await;
        db
    }

    pub async fn exec(&self, sql: &str) {
        sqlx::raw_sql(sqlx::AssertSqlSafe(sql.to_owned()))
            .execute(&self.admin)
            .await
            .unwrap_or_else(|e| panic!("{sql}: {e}"));
    }

    /// A `postgres-role` source granting SELECT on the sales schema.
    pub fn source(&self, name: &str, per: Per, ttl: Duration) -> SourceConfig {
        SourceConfig {
            name: name.into(),
            kind: SourceKind::PostgresRole(PostgresRoleConfig {
                admin_url: Secret::new(self.url.clone()),
                connect_url: connect_template(&self.url),
                prefix: self.prefix.clone(),
                ttl,
                per,
                grants: vec![SchemaGrant {
                    schema: self.sales.clone(),
                    privileges: vec![Privilege::Select],
                }],
                connection_limit: DEFAULT_CONNECTION_LIMIT,
            }),
        }
    }

    pub async fn role_exists(&self, role: &str) -> bool {
        sqlx::query_scalar::<_, bool>("SELECT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = $1)")
            .bind(role)
            .fetch_one(&self.admin)
            .await
            .expect("pg_roles")
    }

    /// Roles whose name starts with `prefix`.
    pub async fn roles(&self, prefix: &str) -> Vec<String> {
        sqlx::query_scalar("SELECT rolname::text FROM pg_roles WHERE starts_with(rolname, $1) ORDER BY 1")
            .bind(prefix)
            .fetch_all(&self.admin)
            .await
            .expect("pg_roles")
    }

    /// Drops the schemas and any role left under the prefix (after the test's assertions).
    pub async fn cleanup(self) {
        for role in self.roles(&self.prefix).await {
            self.exec(&format!("DROP OWNED BY \"{role}\"; DROP ROLE \"{role}\""))
                .await;
        }
        self.exec(&format!(
            "DROP SCHEMA {} CASCADE; DROP SCHEMA {} CASCADE",
            self.sales, self.hr
        ))
        .await;
        self.admin.close().await;
    }
}

/// `postgres://{user}:{password}@host:port/db` for the server and database of `url`.
pub fn connect_template(url: &str) -> String {
    let parsed = url::Url::parse(url).expect("DATABASE_URL is a URL");
    format!(
        "postgres://{{user}}:{{password}}@{}:{}{}",
        parsed.host_str().expect("a host"),
        parsed.port().unwrap_or(5432),
        parsed.path()
    )
}

/// The user and password of a delivered connection string.
pub fn credentials(connect_url: &str) -> (String, String) {
    let parsed = url::Url::parse(connect_url).expect("a URL");
    (
        parsed.username().to_owned(),
        parsed.password().expect("a password").to_owned(),
    )
}

/// A rule for `server` from `source`, delivered in `Authorization: Bearer …`, matching anything.
pub fn rule(id: &str, server: &str, source: &str) -> Rule {
    Rule {
        id: id.into(),
        server: server.into(),
        tools: vec![],
        tiers: vec![],
        workloads: vec![],
        users: vec![],
        source: source.into(),
        delivery: Delivery::Header {
            name: "Authorization".into(),
            prefix: "Bearer ".into(),
        },
    }
}

pub const WORKLOAD: &str = "spiffe://example.org/agent/dev";

pub fn call_match<'a>(server: &'a str, target: &'a str) -> CallMatch<'a> {
    CallMatch {
        server,
        target,
        tier: Tier::Read,
        workload: WORKLOAD,
        user: Some("alice"),
    }
}

pub fn facts<'a>(server: &'a str, target: &'a str, session: &'a str) -> CallFacts<'a> {
    CallFacts {
        workload: WORKLOAD,
        user: Some("alice"),
        server,
        target,
        decision_id: "d-0001",
        arguments_sha256: "5feceb66ffc86f38d952786c6d696c79c2dbc239dd4e91b46729d73a27fb57e9",
        session,
        bearer: None,
    }
}
