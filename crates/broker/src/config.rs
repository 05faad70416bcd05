//! The credential sources as the gateway's config parser hands them over: plain values,
//! secrets already resolved from an environment variable or a file (never from config
//! text). [`crate::Broker::new`] checks them and builds the sources in [`crate::source`].
use std::path::PathBuf;
use std::time::Duration;

use ed25519_dalek::SigningKey;
use portcullis_core::Secret;

/// Connections a minted PostgreSQL role may hold at once, unless configured.
pub const DEFAULT_CONNECTION_LIMIT: u32 = 2;

/// One named credential source.
#[derive(Debug, Clone)]
pub struct SourceConfig {
    pub name: String,
    pub kind: SourceKind,
}

#[derive(Debug, Clone)]
pub enum SourceKind {
    PostgresRole(PostgresRoleConfig),
    Jwt(JwtConfig),
    TokenExchange(TokenExchangeConfig),
    Secret(SecretConfig),
}

impl SourceKind {
    /// The kind's config name, as recorded in plans and leases.
    pub fn name(&self) -> &'static str {
        match self {
            SourceKind::PostgresRole(_) => "postgres-role",
            SourceKind::Jwt(_) => "jwt",
            SourceKind::TokenExchange(_) => "token-exchange",
            SourceKind::Secret(_) => "secret",
        }
    }
}

/// A dynamic PostgreSQL role per call (or per session).
#[derive(Debug, Clone)]
pub struct PostgresRoleConfig {
    /// Connection string of a role with `CREATEROLE` that owns (or may grant on) the
    /// schemas, in the database the grants are for.
    pub admin_url: Secret<String>,
    /// What the server gets: a template with `{user}` and `{password}`, e.g.
    /// `postgres://{user}:{password}@127.0.0.1:5432/app`.
    pub connect_url: String,
    /// Role names are this prefix and 16 random characters of `a-z0-9`. `[a-z_][a-z0-9_]{0,30}`.
    pub prefix: String,
    /// `VALID UNTIL` now + ttl.
    pub ttl: Duration,
    pub per: Per,
    pub grants: Vec<SchemaGrant>,
    pub connection_limit: u32,
}

/// How long a PostgreSQL role lives.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Per {
    /// A role for each call, dropped when the call ends.
    #[default]
    Call,
    /// A role for each (session, rule), reused until 30 s before it expires and dropped
    /// when the session ends.
    Session,
}

/// Privileges on the tables of one schema; `USAGE` on the schema is implied.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SchemaGrant {
    pub schema: String,
    pub privileges: Vec<Privilege>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Privilege {
    Select,
    Insert,
    Update,
    Delete,
}

impl Privilege {
    pub fn as_sql(self) -> &'static str {
        match self {
            Privilege::Select => "SELECT",
            Privilege::Insert => "INSERT",
            Privilege::Update => "UPDATE",
            Privilege::Delete => "DELETE",
        }
    }
}

/// A short-lived JWT the gateway signs per call (EdDSA).
#[derive(Debug, Clone)]
pub struct JwtConfig {
    pub issuer: String,
    /// `aud`; the server's name if `None`.
    pub audience: Option<String>,
    pub ttl: Duration,
    pub key: SigningKey,
    /// The JWKS `kid`; if empty, the first 16 hex digits of the SHA-256 of the public key.
    pub kid: String,
}

/// OAuth 2.0 Token Exchange (RFC 8693) of the caller's bearer token.
#[derive(Debug, Clone)]
pub struct TokenExchangeConfig {
    /// `https://…` (plain `http://` only on loopback).
    pub token_endpoint: String,
    pub client_id: String,
    /// HTTP Basic client authentication when set; else `client_id` in the form.
    pub client_secret: Option<Secret<String>>,
    /// `audience`; the server's name if `None`.
    pub audience: Option<String>,
    /// `scope`; the call's target if `None`.
    pub scope: Option<String>,
    /// For the whole exchange, connecting included.
    pub timeout: Duration,
}

/// A static secret, read at every mint (rotation needs no restart; a missing file denies).
#[derive(Debug, Clone)]
pub struct SecretConfig {
    pub from: SecretFrom,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SecretFrom {
    File(PathBuf),
    /// A variable of the gateway's own environment, read by the CLI at load (only the CLI
    /// reads the environment; a process's environment does not change after start).
    Env {
        var: String,
        value: Secret<String>,
    },
}
