//! The config file's format: the TOML tables exactly as written, before any checking.
//! Every table denies unknown keys, so a misspelt key is an error rather than a silently
//! ignored setting; serde stops at the first such error (or TOML syntax error), which is
//! therefore reported alone. Everything else is checked by the other `config` modules,
//! which report every problem they find. The README's "Config" section and docs/config.md ("Config reference") are the contract.
use std::{collections::BTreeMap, path::PathBuf};

use serde::Deserialize;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawConfig {
    #[serde(default)]
    pub listen: RawListen,
    #[serde(default)]
    pub stdio: RawStdio,
    #[serde(default)]
    pub limits: RawLimits,
    #[serde(default)]
    pub servers: Vec<RawServer>,
    #[serde(default)]
    pub policy: RawPolicy,
    #[serde(default)]
    pub audit: RawAudit,
    #[serde(default)]
    pub attestation: RawAttestation,
    #[serde(default)]
    pub manifests: RawManifests,
    #[serde(default)]
    pub approvals: RawApprovals,
    #[serde(default)]
    pub admin: RawAdmin,
    #[serde(default)]
    pub broker: RawBroker,
    #[serde(default)]
    pub credentials: Vec<RawCredential>,
}

/// `[broker]`: the sources per-call credentials are minted from.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawBroker {
    pub sweep_interval_secs: Option<u64>,
    /// `[broker.sources.NAME]`.
    #[serde(default)]
    pub sources: BTreeMap<String, RawSource>,
}

/// `[broker.sources.NAME]`: one credential source. `kind` says which keys apply.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawSource {
    /// `postgres-role`, `jwt`, `token-exchange` or `secret`.
    pub kind: String,
    // postgres-role
    pub admin_url_env: Option<String>,
    pub admin_url_file: Option<PathBuf>,
    pub connect_url: Option<String>,
    pub prefix: Option<String>,
    pub ttl_secs: Option<u64>,
    pub per: Option<String>,
    pub grants: Option<Vec<RawGrant>>,
    pub connection_limit: Option<u32>,
    // jwt
    pub key: Option<PathBuf>,
    pub issuer: Option<String>,
    pub audience: Option<String>,
    // token-exchange
    pub token_endpoint: Option<String>,
    pub client_id: Option<String>,
    pub client_secret_env: Option<String>,
    pub client_secret_file: Option<PathBuf>,
    pub scope: Option<String>,
    pub timeout_secs: Option<u64>,
    // secret
    pub file: Option<PathBuf>,
    pub env: Option<String>,
}

/// `grants = [{ schema = "sales", privileges = ["select"] }]` of a `postgres-role` source.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawGrant {
    pub schema: String,
    pub privileges: Vec<String>,
}

/// `[[credentials]]`: which calls get a credential from which source, delivered how.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawCredential {
    pub id: String,
    pub server: String,
    #[serde(default)]
    pub tools: Vec<String>,
    #[serde(default)]
    pub tiers: Vec<String>,
    #[serde(default)]
    pub workloads: Vec<String>,
    #[serde(default)]
    pub users: Vec<String>,
    pub source: String,
    /// Delivery to a stdio server (`spawn = "per-call"`): this environment variable.
    pub env: Option<String>,
    /// Delivery to an HTTP server: this request header ...
    pub header: Option<String>,
    /// ... its value prefixed with this (e.g. `"Bearer "`).
    pub prefix: Option<String>,
}

/// `[approvals]`: who approves, how long calls wait, N-of-M.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawApprovals {
    pub wait_secs: Option<u64>,
    pub ttl_secs: Option<u64>,
    pub max_pending: Option<usize>,
    pub break_glass_max_ttl_secs: Option<u64>,
    /// Tiers whose calls the calling user may approve through an elicitation.
    #[serde(default)]
    pub user_may_approve: Vec<String>,
    /// `"<server>/<target glob>" = N`.
    #[serde(default)]
    pub required: BTreeMap<String, usize>,
    #[serde(default)]
    pub approvers: Vec<RawApprover>,
}

/// `[[approvals.approvers]]`: one approver, by SPIFFE ID and/or public key.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawApprover {
    pub name: String,
    pub spiffe_id: Option<String>,
    pub user: Option<String>,
    pub key: Option<PathBuf>,
    pub revoked: Option<bool>,
}

/// `[admin]`: the admin listener.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawAdmin {
    pub listen: Option<String>,
    /// `false`: plain HTTP on loopback even when the front has TLS (requests are signed).
    pub tls: Option<bool>,
}

/// `[listen]`: the HTTP front, and who its callers are.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawListen {
    pub http: Option<String>,
    pub allowed_hosts: Option<Vec<String>>,
    pub allowed_origins: Option<Vec<String>>,
    pub session_idle_timeout_secs: Option<u64>,
    pub max_sessions: Option<usize>,
    pub max_connections: Option<usize>,
    pub max_connections_per_peer: Option<usize>,
    pub tls_handshake_timeout_secs: Option<u64>,
    pub header_timeout_secs: Option<u64>,
    pub body_timeout_secs: Option<u64>,
    pub keepalive_timeout_secs: Option<u64>,
    pub anonymous_principal: Option<String>,
    pub require: Option<Vec<String>>,
    pub unattested_workload: Option<String>,
    pub tls: Option<RawTls>,
    pub oauth: Option<RawOauth>,
}

/// `[listen.tls]`: the front's certificate and the trust for client SVIDs.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawTls {
    /// `files` (default) or `workload-api`.
    pub source: Option<String>,
    pub workload_api_socket: Option<String>,
    pub workload_api_timeout_secs: Option<u64>,
    pub cert: Option<PathBuf>,
    pub key: Option<PathBuf>,
    /// The bundle of the gateway's own trust domain (the one of `trust_domains` that
    /// `bundles` does not name).
    pub client_ca: Option<PathBuf>,
    /// One bundle file per trust domain (federated partners): `{ "partner.org" = "FILE" }`.
    #[serde(default)]
    pub bundles: BTreeMap<String, PathBuf>,
    pub require_client_cert: Option<bool>,
    #[serde(default)]
    pub trust_domains: Vec<String>,
    pub reload_interval_secs: Option<u64>,
}

/// `[listen.oauth]`: bearer tokens (the user).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawOauth {
    pub issuer: Option<String>,
    pub resource: Option<String>,
    pub jwks_url: Option<String>,
    pub jwks_file: Option<PathBuf>,
    pub algorithms: Option<Vec<String>>,
    pub leeway_secs: Option<u64>,
    #[serde(default)]
    pub required_scopes: Vec<String>,
    pub authorization_servers: Option<Vec<String>>,
    pub scopes_supported: Option<Vec<String>>,
}

/// `[stdio]`: the stdio front's client.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawStdio {
    pub principal: Option<String>,
}

/// `[limits]`: message size and depth, and what one principal may hold and send.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawLimits {
    pub max_message_bytes: Option<usize>,
    pub max_json_depth: Option<usize>,
    pub max_sessions_per_principal: Option<usize>,
    pub max_concurrent_calls_per_principal: Option<usize>,
    pub calls_per_second_per_principal: Option<u32>,
    pub call_burst_per_principal: Option<u32>,
}

/// One `[[servers]]` entry: a stdio child (`command`) or an HTTP upstream (`url`).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawServer {
    pub name: String,
    pub command: Option<Vec<String>>,
    #[serde(default)]
    pub env: BTreeMap<String, String>,
    pub cwd: Option<PathBuf>,
    pub url: Option<String>,
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    pub default_tier: Option<String>,
    #[serde(default)]
    pub tools: BTreeMap<String, RawTool>,
    #[serde(default)]
    pub shared: bool,
    pub timeout_secs: Option<u64>,
    pub protocol: Option<String>,
    pub tls: Option<RawUpstreamTls>,
    /// The server's signed manifest (pins its transport and tools).
    pub manifest: Option<PathBuf>,
    /// Files a stdio server runs beyond its executable, by path (relative to `cwd`, or to
    /// the config file's directory without one): `{ "server.py" = "sha256:…" }`.
    #[serde(default)]
    pub pinned_files: BTreeMap<String, String>,
    /// `session` (default) or `per-call`: a fresh child for every acting call.
    pub spawn: Option<String>,
}

/// `tls = { ca, cert, key, spiffe_id }` of an `https://` server: mutual TLS upstream;
/// or `tls = { source = "workload-api", spiffe_id }` with SVID and bundle from SPIRE.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawUpstreamTls {
    /// `files` (default) or `workload-api`.
    pub source: Option<String>,
    pub workload_api_socket: Option<String>,
    /// Trust bundle the upstream's SVID must chain to.
    pub ca: Option<PathBuf>,
    /// The gateway's own SVID (chain and key) presented to the upstream.
    pub cert: Option<PathBuf>,
    pub key: Option<PathBuf>,
    /// The only SPIFFE ID the upstream may present.
    pub spiffe_id: String,
}

/// `tools = { NAME = { tier = "…" } }` of a server.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawTool {
    pub tier: String,
}

/// `[policy]`: which policies decide.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawPolicy {
    pub engine: Option<String>,
    pub cedar: Option<Vec<String>>,
    pub rego: Option<Vec<String>>,
    pub shadow: Option<Vec<String>>,
    pub require_reason: Option<bool>,
    pub reason_argument: Option<bool>,
    pub reload_interval_secs: Option<u64>,
}

/// `[audit]`: where the log lives and how it is signed.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawAudit {
    pub enabled: Option<bool>,
    pub path: Option<PathBuf>,
    pub key: Option<PathBuf>,
    pub postgres: Option<String>,
    pub schema: Option<String>,
    pub checkpoint_every_records: Option<u64>,
    pub checkpoint_interval_secs: Option<u64>,
    pub capture_bodies: Option<bool>,
}

/// `[attestation]`: signed calls and signed results.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawAttestation {
    pub audience: Option<String>,
    pub sign_results: Option<bool>,
    pub receipt_key: Option<PathBuf>,
    /// `"batch"` (default) or `"signed"`.
    pub receipts: Option<String>,
    pub max_window_secs: Option<u64>,
    pub max_skew_secs: Option<u64>,
    pub replay_capacity: Option<usize>,
    /// Verify together the signatures of calls that arrive at once (default false).
    pub batch_verify: Option<bool>,
    #[serde(default)]
    pub hosts: Vec<RawHost>,
}

/// `[[attestation.hosts]]`: a host key, registered to a principal.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawHost {
    pub workload: String,
    pub user: Option<String>,
    pub key: PathBuf,
    pub required: Option<bool>,
}

/// `[manifests]`: who may sign server manifests, and the tool scanner.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawManifests {
    #[serde(default)]
    pub trusted_keys: Vec<PathBuf>,
    pub scan: Option<String>,
    pub max_description_chars: Option<usize>,
    pub max_string_chars: Option<usize>,
}
