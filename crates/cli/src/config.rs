//! The TOML config file: parsed into raw structs that reject unknown keys, then
//! validated into the gateway's settings. Every error names the file, the key
//! and the reason.
use std::{
    collections::{BTreeMap, BTreeSet},
    net::SocketAddr,
    path::{Path, PathBuf},
    sync::Arc,
    time::Duration,
};

use portcullis_core::{Principal, Secret, ServerName, Tier};
use portcullis_gateway::config::{
    GatewayConfig, Isolation, ListenConfig, ServerConfig, UpstreamProtocol, UpstreamTransport,
};
use portcullis_identity::{BundleSource, Reload, SpiffeId, SvidSource, UpstreamTlsSettings, upstream_client_config};
use portcullis_mcp::Limits;
use portcullis_policy::EngineKind;
use serde::Deserialize;

use crate::config_workload_api::{ENDPOINT_ENV, Source, WorkloadApiSlot, WorkloadApiUse, refuse_files, source};

/// How often TLS files (minute-TTL SVIDs, bundles) are checked for changes.
const TLS_RELOAD_POLL: Duration = Duration::from_secs(5);

/// A config file that cannot be used, with where and why.
#[derive(Debug, thiserror::Error)]
#[error("{file}: {key}: {reason}")]
pub struct ConfigError {
    pub file: String,
    pub key: String,
    pub reason: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    #[serde(default)]
    listen: RawListen,
    #[serde(default)]
    stdio: RawStdio,
    #[serde(default)]
    limits: RawLimits,
    #[serde(default)]
    servers: Vec<RawServer>,
    #[serde(default)]
    policy: RawPolicy,
    #[serde(default)]
    audit: RawAudit,
    #[serde(default)]
    attestation: crate::config_attest::RawAttestation,
    #[serde(default)]
    manifests: crate::config_attest::RawManifests,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPolicy {
    engine: Option<String>,
    cedar: Option<Vec<String>>,
    rego: Option<Vec<String>>,
    shadow: Option<Vec<String>>,
    require_reason: Option<bool>,
    reason_argument: Option<bool>,
    reload_interval_secs: Option<u64>,
}

/// Which policies decide, and how.
#[derive(Debug, Clone)]
pub struct PolicySettings {
    pub engine: EngineKind,
    /// Absolute glob patterns; empty means the built-in tier policies.
    pub patterns: Vec<String>,
    /// A second set (same engine) evaluated and logged, never enforced.
    pub shadow: Vec<String>,
    pub decision: portcullis_policy::Settings,
    pub reason_argument: bool,
    /// How often the policy files are checked for changes (0: only on SIGHUP).
    pub reload_interval: Duration,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawAudit {
    enabled: Option<bool>,
    path: Option<PathBuf>,
    key: Option<PathBuf>,
    postgres: Option<String>,
    schema: Option<String>,
    checkpoint_every_records: Option<u64>,
    checkpoint_interval_secs: Option<u64>,
    capture_bodies: Option<bool>,
}

/// Where the audit log lives and how it is signed.
#[derive(Debug, Clone)]
pub struct AuditSettings {
    pub store: AuditStoreSettings,
    /// The log's Ed25519 signing key (`.pub` beside it holds the public half).
    pub key: PathBuf,
    pub checkpoint_every_records: u64,
    pub checkpoint_interval: Duration,
    /// Keep arguments and results (secrets redacted) in the records.
    pub capture_bodies: bool,
}

/// The audit store: local segment files, or PostgreSQL shared by replicas.
#[derive(Debug, Clone)]
pub enum AuditStoreSettings {
    File { dir: PathBuf },
    Postgres { url: Secret<String>, schema: String },
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawListen {
    http: Option<String>,
    allowed_hosts: Option<Vec<String>>,
    allowed_origins: Option<Vec<String>>,
    session_idle_timeout_secs: Option<u64>,
    max_sessions: Option<usize>,
    anonymous_principal: Option<String>,
    require: Option<Vec<String>>,
    unattested_workload: Option<String>,
    tls: Option<crate::config_auth::RawTls>,
    oauth: Option<crate::config_auth::RawOauth>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawStdio {
    principal: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawLimits {
    max_message_bytes: Option<usize>,
    max_json_depth: Option<usize>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawServer {
    name: String,
    command: Option<Vec<String>>,
    #[serde(default)]
    env: BTreeMap<String, String>,
    cwd: Option<PathBuf>,
    url: Option<String>,
    #[serde(default)]
    headers: BTreeMap<String, String>,
    default_tier: Option<String>,
    #[serde(default)]
    tools: BTreeMap<String, RawTool>,
    #[serde(default)]
    shared: bool,
    timeout_secs: Option<u64>,
    protocol: Option<String>,
    tls: Option<RawUpstreamTls>,
    /// The server's signed manifest (pins its transport and tools).
    manifest: Option<PathBuf>,
}

/// `tls = { ca, cert, key, spiffe_id }` of an `https://` server: mutual TLS upstream;
/// or `tls = { source = "workload-api", spiffe_id }` with SVID and bundle from SPIRE.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawUpstreamTls {
    /// `files` (default) or `workload-api`.
    source: Option<String>,
    workload_api_socket: Option<String>,
    /// Trust bundle the upstream's SVID must chain to.
    ca: Option<PathBuf>,
    /// The gateway's own SVID (chain and key) presented to the upstream.
    cert: Option<PathBuf>,
    key: Option<PathBuf>,
    /// The only SPIFFE ID the upstream may present.
    spiffe_id: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTool {
    tier: String,
}

/// A validated config plus notes for the operator (sections not yet enforced).
#[derive(Debug)]
pub struct LoadedConfig {
    pub gateway: GatewayConfig,
    pub policy: PolicySettings,
    /// `None` when the operator switched the audit log off.
    pub audit: Option<AuditSettings>,
    /// The HTTP front's TLS (`None`: plain HTTP).
    pub tls: Option<portcullis_identity::ServerTlsSettings>,
    /// The audience hosts sign their calls for (`[attestation] audience`).
    pub audience: String,
    /// The result-signing key file, loaded once the audit log is open; `None`: unsigned.
    pub receipt_key: Option<PathBuf>,
    /// Each server's manifest file (`manifest = "FILE"`).
    pub manifest_files: BTreeMap<ServerName, PathBuf>,
    /// The operator keys trusted to sign manifests (`[manifests] trusted_keys`).
    pub manifest_keys: Vec<PathBuf>,
    /// `tls.spiffe_id` of each mutual-TLS HTTPS server.
    pub upstream_spiffe_ids: BTreeMap<ServerName, String>,
    /// The SPIFFE Workload API (SPIRE agent) TLS material comes from, if any; it must
    /// be connected before serving.
    pub workload_api: Option<WorkloadApiUse>,
    pub warnings: Vec<String>,
}

/// What the config takes from the process environment (read by [`load`] only).
#[derive(Debug, Clone, Default)]
pub struct ConfigEnv {
    /// `SPIFFE_ENDPOINT_SOCKET`: the default Workload API address.
    pub spiffe_endpoint_socket: Option<String>,
}

impl ConfigEnv {
    pub fn from_process() -> Self {
        Self {
            spiffe_endpoint_socket: std::env::var(ENDPOINT_ENV).ok().filter(|s| !s.is_empty()),
        }
    }
}

pub use crate::config_attest::ManifestCheck;

impl LoadedConfig {
    /// The operator keys trusted to sign manifests.
    pub fn trusted_manifest_keys(&self) -> anyhow::Result<portcullis_attest::KeySet> {
        crate::config_attest::key_set(&self.manifest_keys)
            .map_err(|(i, reason)| anyhow::anyhow!("manifests.trusted_keys[{i}]: {reason}"))
    }
}

/// Reads and validates `path`, verifying the servers' manifests.
pub fn load(path: &Path) -> Result<LoadedConfig, ConfigError> {
    load_with(path, ManifestCheck::Verify)
}

/// Reads and validates `path`; `check` says whether manifests are verified.
pub fn load_with(path: &Path, check: ManifestCheck) -> Result<LoadedConfig, ConfigError> {
    let file = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|e| ConfigError {
        file: file.clone(),
        key: "-".into(),
        reason: format!("cannot read the file: {e}"),
    })?;
    let base = path.parent().map(Path::to_path_buf).unwrap_or_default();
    parse_full(&text, &file, &base, &ConfigEnv::from_process(), check)
}

/// Validates config `text`; relative paths are resolved against `base`. The
/// environment is not consulted (see [`parse_in`]).
pub fn parse(text: &str, file: &str, base: &Path) -> Result<LoadedConfig, ConfigError> {
    parse_in(text, file, base, &ConfigEnv::default())
}

/// [`parse`], with defaults from `env`.
pub fn parse_in(text: &str, file: &str, base: &Path, env: &ConfigEnv) -> Result<LoadedConfig, ConfigError> {
    parse_full(text, file, base, env, ManifestCheck::Verify)
}

fn parse_full(
    text: &str,
    file: &str,
    base: &Path,
    env: &ConfigEnv,
    check: ManifestCheck,
) -> Result<LoadedConfig, ConfigError> {
    let err = |key: &str, reason: String| ConfigError {
        file: file.to_owned(),
        key: key.to_owned(),
        reason,
    };
    let raw: RawConfig = toml::from_str(text).map_err(|e| {
        let at = e.span().map(|s| line_col(text, s.start)).unwrap_or_default();
        err(&at, e.message().to_owned())
    })?;
    let mut warnings = Vec::new();
    let policy = policy(&raw.policy, base, &err)?;
    let audit = audit(&raw.audit, base, &err)?;
    if audit.is_none() {
        warnings.push("[audit] enabled = false: calls are NOT recorded; never run like this in production".into());
    }
    let limits = Limits {
        max_bytes: raw.limits.max_message_bytes.unwrap_or(Limits::default().max_bytes),
        max_depth: raw.limits.max_json_depth.unwrap_or(Limits::default().max_depth),
    };
    if limits.max_bytes < 1024 {
        return Err(err("limits.max_message_bytes", "must be at least 1024".into()));
    }
    if !(2..=128).contains(&limits.max_depth) {
        return Err(err("limits.max_json_depth", "must be between 2 and 128".into()));
    }
    let mut apis = WorkloadApiSlot::new(env.spiffe_endpoint_socket.clone());
    let auth = crate::config_auth::auth(
        &crate::config_auth::RawAuth {
            tls: raw.listen.tls.as_ref(),
            oauth: raw.listen.oauth.as_ref(),
            require: raw.listen.require.as_deref(),
            unattested_workload: raw.listen.unattested_workload.as_deref(),
        },
        base,
        &mut apis,
        &err,
    )?;
    let mut listen = listen(&raw.listen, &err, &mut warnings)?;
    listen.auth = auth.http;
    if listen.http.is_some_and(|a| !a.ip().is_loopback()) && auth.tls.is_none() {
        warnings.push("listen.http is reachable from other machines without TLS; add [listen.tls]".into());
    }
    if raw.servers.is_empty() {
        return Err(err(
            "servers",
            "no servers configured; add at least one [[servers]] entry".into(),
        ));
    }
    let mut names = BTreeSet::new();
    let mut servers = Vec::new();
    for (i, s) in raw.servers.iter().enumerate() {
        let key = |field: &str| format!("servers[{i}].{field}");
        let server = server(s, base, &key, &err, &mut apis)?;
        if !names.insert(server.name.clone()) {
            return Err(err(
                &key("name"),
                format!("server name `{}` is used twice; names must be unique", server.name),
            ));
        }
        servers.push(server);
    }
    let per_server: Vec<crate::config_attest::ServerManifest<'_>> = raw
        .servers
        .iter()
        .map(|s| crate::config_attest::ServerManifest {
            file: s.manifest.as_deref(),
            spiffe_id: s.tls.as_ref().map(|t| t.spiffe_id.as_str()),
        })
        .collect();
    let attest = crate::config_attest::attest(
        &raw.attestation,
        &raw.manifests,
        &per_server,
        &mut servers,
        crate::config_attest::Loading {
            audit_key: audit.as_ref().map(|a| a.key.as_path()),
            check,
            base,
        },
        &err,
    )?;
    let upstream_spiffe_ids = raw
        .servers
        .iter()
        .zip(&servers)
        .filter_map(|(r, s)| Some((s.name.clone(), r.tls.as_ref()?.spiffe_id.clone())))
        .collect();
    let principal = |value: &Option<String>, default: &str| {
        Principal::workload(value.clone().unwrap_or_else(|| default.to_owned()))
    };
    let gateway = GatewayConfig {
        listen,
        servers,
        limits,
        stdio_principal: principal(&raw.stdio.principal, "stdio-client"),
        anonymous_principal: principal(&raw.listen.anonymous_principal, "anonymous"),
        attest: attest.config,
    };
    Ok(LoadedConfig {
        gateway,
        policy,
        audit,
        tls: auth.tls,
        audience: attest.audience,
        receipt_key: attest.receipt_key,
        manifest_files: attest.manifest_files,
        manifest_keys: attest.manifest_keys,
        upstream_spiffe_ids,
        workload_api: apis.into_use(),
        warnings,
    })
}

fn policy(
    raw: &RawPolicy,
    base: &Path,
    err: &impl Fn(&str, String) -> ConfigError,
) -> Result<PolicySettings, ConfigError> {
    let engine = match raw.engine.as_deref().unwrap_or("cedar") {
        "cedar" => EngineKind::Cedar,
        "rego" => EngineKind::Rego,
        other => {
            return Err(err(
                "policy.engine",
                format!("unknown engine `{other}`; use `cedar` or `rego`"),
            ));
        }
    };
    let (patterns, key, other) = match engine {
        EngineKind::Cedar => (&raw.cedar, "policy.cedar", &raw.rego),
        EngineKind::Rego => (&raw.rego, "policy.rego", &raw.cedar),
    };
    if other.is_some() {
        return Err(err(key, "give the policy files of the selected `engine` only".into()));
    }
    if patterns.as_ref().is_some_and(Vec::is_empty) {
        return Err(err(
            key,
            "is an empty list; remove it to use the built-in tier policies".into(),
        ));
    }
    let absolute = |list: &Option<Vec<String>>| -> Vec<String> {
        list.iter()
            .flatten()
            .map(|p| base.join(p).to_string_lossy().into_owned())
            .collect()
    };
    Ok(PolicySettings {
        engine,
        patterns: absolute(patterns),
        shadow: absolute(&raw.shadow),
        decision: portcullis_policy::Settings {
            require_reason: raw.require_reason.unwrap_or(true),
            ..portcullis_policy::Settings::default()
        },
        reason_argument: raw.reason_argument.unwrap_or(false),
        reload_interval: Duration::from_secs(raw.reload_interval_secs.unwrap_or(2)),
    })
}

fn audit(
    raw: &RawAudit,
    base: &Path,
    err: &impl Fn(&str, String) -> ConfigError,
) -> Result<Option<AuditSettings>, ConfigError> {
    if raw.enabled == Some(false) {
        return Ok(None);
    }
    let store = match &raw.postgres {
        Some(url) => {
            if !(url.starts_with("postgres://") || url.starts_with("postgresql://")) {
                return Err(err("audit.postgres", "must be a postgres:// URL".into()));
            }
            if raw.path.is_some() {
                return Err(err(
                    "audit.path",
                    "set either `path` (files) or `postgres`, not both".into(),
                ));
            }
            let schema = raw.schema.clone().unwrap_or_else(|| "portcullis_audit".into());
            let ok = schema
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
            if schema.is_empty() || !ok {
                return Err(err(
                    "audit.schema",
                    format!("`{schema}` must be lowercase letters, digits and `_`"),
                ));
            }
            AuditStoreSettings::Postgres {
                url: Secret::new(url.clone()),
                schema,
            }
        }
        None => AuditStoreSettings::File {
            dir: base.join(raw.path.clone().unwrap_or_else(|| "data/audit".into())),
        },
    };
    let every = raw.checkpoint_every_records.unwrap_or(4096);
    let interval = raw.checkpoint_interval_secs.unwrap_or(5);
    if every == 0 || interval == 0 {
        return Err(err(
            "audit.checkpoint_every_records",
            "checkpoint intervals must be greater than 0".into(),
        ));
    }
    Ok(Some(AuditSettings {
        store,
        key: base.join(raw.key.clone().unwrap_or_else(|| "keys/audit.key".into())),
        checkpoint_every_records: every,
        checkpoint_interval: Duration::from_secs(interval),
        capture_bodies: raw.capture_bodies.unwrap_or(false),
    }))
}

fn listen(
    raw: &RawListen,
    err: &impl Fn(&str, String) -> ConfigError,
    warnings: &mut Vec<String>,
) -> Result<ListenConfig, ConfigError> {
    let http = match &raw.http {
        None => None,
        Some(text) => {
            let addr: SocketAddr = text
                .parse()
                .map_err(|_| err("listen.http", format!("`{text}` is not an address like 127.0.0.1:8080")))?;
            if !addr.ip().is_loopback() {
                warnings.push(format!(
                    "listen.http binds {addr}, which is reachable from other machines"
                ));
            }
            Some(addr)
        }
    };
    let idle = raw.session_idle_timeout_secs.unwrap_or(1800);
    if idle == 0 {
        return Err(err("listen.session_idle_timeout_secs", "must be greater than 0".into()));
    }
    Ok(ListenConfig {
        http,
        allowed_hosts: raw
            .allowed_hosts
            .clone()
            .unwrap_or_else(ListenConfig::default_allowed_hosts),
        allowed_origins: raw
            .allowed_origins
            .clone()
            .unwrap_or_else(ListenConfig::default_allowed_origins),
        session_idle_timeout: Duration::from_secs(idle),
        max_sessions: raw.max_sessions.unwrap_or(10_000),
        auth: Default::default(),
    })
}

fn server(
    raw: &RawServer,
    base: &Path,
    key: &impl Fn(&str) -> String,
    err: &impl Fn(&str, String) -> ConfigError,
    apis: &mut WorkloadApiSlot,
) -> Result<ServerConfig, ConfigError> {
    let name = ServerName::new(&raw.name).map_err(|e| err(&key("name"), e.to_string()))?;
    let transport = match (&raw.command, &raw.url) {
        (Some(_), Some(_)) => {
            return Err(err(
                &key("url"),
                "set either `command` (stdio) or `url` (HTTP), not both".into(),
            ));
        }
        (None, None) => {
            return Err(err(
                &key("command"),
                "set `command` (stdio server) or `url` (HTTP server)".into(),
            ));
        }
        (Some(argv), None) => {
            let program = argv.first().filter(|p| !p.is_empty()).ok_or_else(|| {
                err(
                    &key("command"),
                    "is empty; give the program and its arguments as a list".into(),
                )
            })?;
            if !raw.headers.is_empty() {
                return Err(err(&key("headers"), "only HTTP servers take headers".into()));
            }
            if raw.tls.is_some() {
                return Err(err(
                    &key("tls"),
                    "only https:// servers take tls; a stdio server is a local child process".into(),
                ));
            }
            let mut argv = argv.clone();
            argv[0] = resolve_program(program, base).map_err(|reason| err(&key("command"), reason))?;
            let mut env = BTreeMap::new();
            for (k, v) in &raw.env {
                if k.is_empty() || k.contains('=') || k.contains('\0') || v.contains('\0') {
                    return Err(err(
                        &key(&format!("env.{k}")),
                        "is not a valid environment variable".into(),
                    ));
                }
                env.insert(k.clone(), Secret::new(v.clone()));
            }
            let cwd = raw.cwd.as_ref().map(|d| base.join(d));
            UpstreamTransport::Stdio { argv, env, cwd }
        }
        (None, Some(url)) => {
            let parsed = url::Url::parse(url).map_err(|e| err(&key("url"), format!("`{url}` is not a URL: {e}")))?;
            if !matches!(parsed.scheme(), "http" | "https") {
                return Err(err(&key("url"), "must be an http:// or https:// URL".into()));
            }
            if !raw.env.is_empty() {
                return Err(err(
                    &key("env"),
                    "only stdio servers take env; use headers for HTTP servers".into(),
                ));
            }
            let headers = raw
                .headers
                .iter()
                .map(|(k, v)| (k.clone(), Secret::new(v.clone())))
                .collect();
            let tls = match &raw.tls {
                None => None,
                Some(_) if parsed.scheme() != "https" => {
                    return Err(err(
                        &key("tls"),
                        format!("mutual TLS needs an https:// url, not `{url}`"),
                    ));
                }
                Some(tls) => Some(upstream_tls(tls, base, &key("tls"), err, apis)?),
            };
            UpstreamTransport::Http {
                url: url.clone(),
                headers,
                tls,
            }
        }
    };
    let tier = |text: &str, at: &str| text.parse::<Tier>().map_err(|e| err(at, e.to_string()));
    let default_tier = tier(raw.default_tier.as_deref().unwrap_or("read"), &key("default_tier"))?;
    let mut tool_tiers = BTreeMap::new();
    for (tool, t) in &raw.tools {
        tool_tiers.insert(tool.clone(), tier(&t.tier, &key(&format!("tools.{tool}.tier")))?);
    }
    let timeout = raw.timeout_secs.unwrap_or(60);
    if timeout == 0 {
        return Err(err(&key("timeout_secs"), "must be greater than 0".into()));
    }
    let protocol = match raw.protocol.as_deref().unwrap_or("auto") {
        "auto" => UpstreamProtocol::Auto,
        "legacy" | "2025-11-25" | "2025-06-18" | "2025-03-26" => UpstreamProtocol::Legacy,
        "modern" | "2026-07-28" => UpstreamProtocol::Modern,
        other => {
            return Err(err(
                &key("protocol"),
                format!("unknown protocol `{other}`; use auto, legacy or modern"),
            ));
        }
    };
    Ok(ServerConfig {
        name,
        transport,
        default_tier,
        tool_tiers,
        isolation: if raw.shared {
            Isolation::Shared
        } else {
            Isolation::PerSession
        },
        request_timeout: Duration::from_secs(timeout),
        protocol,
    })
}

/// The rustls client config of a mutual-TLS upstream; its files are read now (a missing
/// or mismatched file is a config error) and re-read when they change. With
/// `source = "workload-api"` the SVID and bundle come from the agent at each handshake.
fn upstream_tls(
    raw: &RawUpstreamTls,
    base: &Path,
    table: &str,
    err: &impl Fn(&str, String) -> ConfigError,
    apis: &mut WorkloadApiSlot,
) -> Result<Arc<rustls::ClientConfig>, ConfigError> {
    let expected_server =
        SpiffeId::parse(&raw.spiffe_id).map_err(|e| err(&format!("{table}.spiffe_id"), e.to_string()))?;
    let (svid, trust_bundle) = match source(raw.source.as_deref(), &format!("{table}.source"), err)? {
        Source::Files => {
            if raw.workload_api_socket.is_some() {
                return Err(err(
                    &format!("{table}.workload_api_socket"),
                    "only applies with source = \"workload-api\"".into(),
                ));
            }
            let (Some(ca), Some(cert), Some(key)) = (&raw.ca, &raw.cert, &raw.key) else {
                return Err(err(
                    table,
                    "set `ca`, `cert` and `key` (the upstream's trust bundle and the gateway's SVID), \
                     or source = \"workload-api\""
                        .into(),
                ));
            };
            let svid = SvidSource::Files {
                cert_chain: base.join(cert),
                private_key: base.join(key),
            };
            (svid, BundleSource::File(base.join(ca)))
        }
        Source::WorkloadApi => {
            let given = [
                ("ca", raw.ca.is_some()),
                ("cert", raw.cert.is_some()),
                ("key", raw.key.is_some()),
            ];
            refuse_files(table, &given, err)?;
            let api = apis.use_for(table, raw.workload_api_socket.as_deref(), None, err)?;
            (SvidSource::WorkloadApi(api.clone()), BundleSource::WorkloadApi(api))
        }
    };
    let settings = UpstreamTlsSettings {
        svid,
        trust_bundle,
        expected_server,
        reload: Reload::Poll(TLS_RELOAD_POLL),
    };
    upstream_client_config(&settings).map_err(|e| err(table, e.to_string()))
}

/// Makes the program an absolute path: relative paths against the config's
/// directory, bare names through the gateway's `PATH` (the child gets no PATH).
fn resolve_program(program: &str, base: &Path) -> Result<String, String> {
    let candidate = if program.contains('/') {
        let p = Path::new(program);
        if p.is_absolute() { p.to_path_buf() } else { base.join(p) }
    } else {
        let path = std::env::var_os("PATH").unwrap_or_default();
        std::env::split_paths(&path)
            .map(|dir| dir.join(program))
            .find(|p| p.is_file())
            .ok_or_else(|| format!("program `{program}` was not found on PATH; give its full path"))?
    };
    if !candidate.is_file() {
        return Err(format!("program `{}` does not exist", candidate.display()));
    }
    Ok(candidate.to_string_lossy().into_owned())
}

fn line_col(text: &str, offset: usize) -> String {
    let before = &text[..offset.min(text.len())];
    let line = before.matches('\n').count() + 1;
    let col = before.rsplit('\n').next().map(|l| l.chars().count() + 1).unwrap_or(1);
    format!("line {line}, column {col}")
}

#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_workload_api;
