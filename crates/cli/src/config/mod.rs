//! The TOML config file → the gateway's validated settings. `raw` is the file's format
//! (unknown keys denied); the other modules check one part each and note every problem
//! they find (`problems`), so one run reports all of a file's problems, each with its
//! key path and what to do. Only a TOML syntax error or an unknown key stops parsing
//! early, and is then reported alone. Entry points: [`load`], [`load_with`], [`parse`].
use std::{
    collections::BTreeMap,
    path::{Path, PathBuf},
};

use portcullis_core::{Principal, Secret, ServerName};
use portcullis_gateway::config::{AttestConfig, GatewayConfig, ServerConfig};

pub mod approvals;
mod attest;
mod audit;
mod auth;
pub mod credentials;
mod expand;
mod listen;
mod manifests;
pub mod pinned_files;
mod policy;
mod problems;
mod raw;
mod servers;
pub mod workload_api;

pub use attest::{DEFAULT_AUDIENCE, receipt_key};
pub use audit::{AuditSettings, AuditStoreSettings};
pub use manifests::{ManifestCheck, key_set, load_manifest};
pub use policy::PolicySettings;
pub use problems::{ConfigError, Problem};

use problems::{Checked, Problems};
use workload_api::{ENDPOINT_ENV, WorkloadApiSlot, WorkloadApiUse};

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
    /// Batch receipts where the log's seals use the result-signing key (`receipts = "batch"`).
    pub batch_receipts: bool,
    /// Each server's manifest file (`manifest = "FILE"`).
    pub manifest_files: BTreeMap<ServerName, PathBuf>,
    /// The operator keys trusted to sign manifests (`[manifests] trusted_keys`).
    pub manifest_keys: Vec<PathBuf>,
    /// `tls.spiffe_id` of each mutual-TLS HTTPS server.
    pub upstream_spiffe_ids: BTreeMap<ServerName, String>,
    /// The SPIFFE Workload API (SPIRE agent) TLS material comes from, if any; it must
    /// be connected before serving.
    pub workload_api: Option<WorkloadApiUse>,
    /// The admin listener (`[admin]`): its address, and whether it uses the front's TLS.
    pub admin_listen: Option<approvals::AdminListen>,
    /// Secrets the broker's sources name that could not be read (an unset environment
    /// variable, a missing file): fine for commands that only read the config, a config
    /// error for serving (`preflight`).
    pub unresolved_secrets: Vec<Problem>,
    pub warnings: Vec<String>,
}

impl LoadedConfig {
    /// The operator keys trusted to sign manifests.
    pub fn trusted_manifest_keys(&self) -> anyhow::Result<portcullis_attest::KeySet> {
        key_set(&self.manifest_keys).map_err(|(i, reason)| anyhow::anyhow!("manifests.trusted_keys[{i}]: {reason}"))
    }
}

/// What the config takes from the process environment (read by [`load`] only).
#[derive(Debug, Clone, Default)]
pub struct ConfigEnv {
    /// `SPIFFE_ENDPOINT_SOCKET`: the default Workload API address.
    pub spiffe_endpoint_socket: Option<String>,
    /// The variables `${VAR}` in a server's `env` and `headers` values may name.
    pub vars: BTreeMap<String, Secret<String>>,
}

impl ConfigEnv {
    pub fn from_process() -> Self {
        Self {
            spiffe_endpoint_socket: std::env::var(ENDPOINT_ENV).ok().filter(|s| !s.is_empty()),
            vars: std::env::vars_os()
                .filter_map(|(k, v)| Some((k.into_string().ok()?, Secret::new(v.into_string().ok()?))))
                .collect(),
        }
    }
}

/// Reads and validates `path`, verifying the servers' manifests.
pub fn load(path: &Path) -> Result<LoadedConfig, ConfigError> {
    load_with(path, ManifestCheck::Verify)
}

/// Reads and validates `path`; `check` says whether manifests are verified.
pub fn load_with(path: &Path, check: ManifestCheck) -> Result<LoadedConfig, ConfigError> {
    let file = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|e| {
        let hint = match std::env::current_dir() {
            Ok(cwd) if path.is_relative() && e.kind() == std::io::ErrorKind::NotFound => format!(
                " (a relative path, taken from the current directory {}; desktop hosts start commands in a \
                 directory of their own: give the config's absolute path)",
                cwd.display()
            ),
            _ => String::new(),
        };
        ConfigError::one(&file, "-", format!("cannot read the file: {e}{hint}"))
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
    // serde stops at the first syntax error or unknown key: nothing else can be checked then.
    let raw: raw::RawConfig = toml::from_str(text).map_err(|e| {
        let at = e.span().map(|s| line_col(text, s.start)).unwrap_or_default();
        ConfigError::one(file, at, e.message())
    })?;
    let mut problems = Problems::default();
    let loading = Loading { base, env, check };
    let validated = validate(&raw, loading, &mut problems);
    problems.finish(file, validated)
}

/// Where and how the config is being loaded.
#[derive(Clone, Copy)]
struct Loading<'a> {
    /// The config's directory: relative paths are resolved against it.
    base: &'a Path,
    env: &'a ConfigEnv,
    check: ManifestCheck,
}

/// Checks every part, in a fixed order (the order problems are listed in); a part with
/// problems does not stop the next (parts that need it skip only what they cannot check).
fn validate(raw: &raw::RawConfig, loading: Loading<'_>, p: &mut Problems) -> Checked<LoadedConfig> {
    let Loading { base, env, check } = loading;
    let mut warnings = Vec::new();
    let policy = policy::policy(&raw.policy, base, p);
    let audit = audit::audit(&raw.audit, base, p);
    if let Ok(None) = audit {
        warnings.push("[audit] enabled = false: calls are NOT recorded; never run like this in production".into());
    }
    let limits = listen::limits(&raw.limits, p);
    let principal_limits = listen::principal_limits(&raw.limits, p);
    let mut apis = WorkloadApiSlot::new(env.spiffe_endpoint_socket.clone());
    let auth = auth::auth(&raw.listen, base, &mut apis, p);
    let listen = listen::listen(&raw.listen, p, &mut warnings);
    if let (Ok(listen), Ok(auth)) = (&listen, &auth)
        && listen.http.is_some_and(|a| !a.ip().is_loopback())
        && auth.tls.is_none()
    {
        warnings.push("listen.http is reachable from other machines without TLS; add [listen.tls]".into());
    }
    let mut servers = servers::servers(&raw.servers, base, &env.vars, &mut apis, p);
    let audit_key = audit::key_file(&raw.audit, base);
    let attestation = attest::attestation(&raw.attestation, audit_key.as_deref(), base, p);
    let manifests = manifests::manifests(&raw.manifests, &raw.servers, &mut servers, check, base, p);
    let approvals = approvals::approvals(&raw.approvals, base, p);
    let admin_listen = approvals::admin(&raw.admin, raw.listen.tls.is_some(), p);
    let mut unresolved_secrets = Vec::new();
    let credentials = credentials::credentials(
        &raw.broker,
        &raw.credentials,
        &servers,
        base,
        &env.vars,
        &mut unresolved_secrets,
        p,
    );
    warn_missing_secret_files(&raw.broker, base, &mut warnings);
    // Every part is checked; from here on, any problem means no config.
    let (policy, audit, limits, auth, mut listen) = (policy?, audit?, limits?, auth?, listen?);
    let principal_limits = principal_limits?;
    let servers: Vec<ServerConfig> = servers.into_iter().collect::<Checked<_>>()?;
    let (attestation, manifests) = (attestation?, manifests?);
    let (approvals, admin_listen, credentials) = (approvals?, admin_listen?, credentials?);
    listen.auth = auth.http;
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
        principal_limits,
        stdio_principal: principal(&raw.stdio.principal, "stdio-client"),
        anonymous_principal: principal(&raw.listen.anonymous_principal, "anonymous"),
        attest: AttestConfig {
            verifier: attestation.verifier,
            batcher: attestation.batcher,
            required_signers: attestation.required_signers,
            receipts: None,
            manifests: manifests.pinned,
            scan: manifests.scan,
        },
        approvals,
        credentials,
    };
    Ok(LoadedConfig {
        gateway,
        policy,
        audit,
        tls: auth.tls,
        audience: attestation.audience,
        receipt_key: attestation.receipt_key,
        batch_receipts: attestation.batch_receipts,
        manifest_files: manifests.files,
        manifest_keys: manifests.keys,
        upstream_spiffe_ids,
        workload_api: apis.into_use(),
        admin_listen,
        unresolved_secrets,
        warnings,
    })
}

/// A `secret` source's file is read at each call (so it can be rotated without a restart);
/// one that is missing now denies those calls until it exists: say so at start.
fn warn_missing_secret_files(broker: &raw::RawBroker, base: &Path, warnings: &mut Vec<String>) {
    for (name, source) in &broker.sources {
        if let Some(file) = source.file.as_ref().filter(|_| source.kind == "secret")
            && !base.join(file).is_file()
        {
            warnings.push(format!(
                "broker.sources.{name}.file: `{}` does not exist yet; calls whose credential it is are denied until it does",
                base.join(file).display()
            ));
        }
    }
}

fn line_col(text: &str, offset: usize) -> String {
    // The parser's offset should sit on a character boundary; never panic if it does not.
    let before = &text[..text.floor_char_boundary(offset)];
    let line = before.matches('\n').count() + 1;
    let col = before.rsplit('\n').next().map(|l| l.chars().count() + 1).unwrap_or(1);
    format!("line {line}, column {col}")
}

#[cfg(test)]
mod fuzz_config;
#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_federation;
#[cfg(test)]
mod tests_limits;
#[cfg(test)]
mod tests_pinned_files;
#[cfg(test)]
mod tests_problems;
#[cfg(test)]
mod tests_workload_api;
