//! The attestation part of the config file: `[attestation]` (host keys, which principals must
//! sign, result signing), `[manifests]` (operator keys trusted to sign manifests, tool
//! scanning) and each server's `manifest = "FILE"`. Host keys and manifests are read and
//! verified at load: a manifest whose signature fails stops the start (exit 2). The
//! result-signing key is loaded later, once the audit log (whose key it defaults to) is open.
use std::{
    collections::BTreeMap,
    path::{Path, PathBuf},
    sync::Arc,
};

use portcullis_attest::{KeySet, PinnedManifest, ScanConfig, SignedManifest, TransportPin, Verifier, VerifierConfig};
use portcullis_audit::LogPublicKey;
use portcullis_core::{Principal, ServerName};
use portcullis_gateway::config::{AttestConfig, ScanMode, ScanPolicy, ServerConfig, UpstreamTransport};
use serde::Deserialize;

use crate::config::ConfigError;

/// The audience hosts sign for when the config names none.
pub const DEFAULT_AUDIENCE: &str = "portcullis";

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawAttestation {
    audience: Option<String>,
    sign_results: Option<bool>,
    receipt_key: Option<PathBuf>,
    max_window_secs: Option<u64>,
    max_skew_secs: Option<u64>,
    replay_capacity: Option<usize>,
    #[serde(default)]
    hosts: Vec<RawHost>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawHost {
    workload: String,
    user: Option<String>,
    key: PathBuf,
    required: Option<bool>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawManifests {
    #[serde(default)]
    trusted_keys: Vec<PathBuf>,
    scan: Option<String>,
    max_description_chars: Option<usize>,
    max_string_chars: Option<usize>,
}

/// One server's manifest setting, as the `[[servers]]` entry gives it.
pub struct ServerManifest<'a> {
    pub file: Option<&'a Path>,
    /// `tls.spiffe_id` of an HTTPS server.
    pub spiffe_id: Option<&'a str>,
}

/// How the config is being loaded.
#[derive(Clone, Copy)]
pub struct Loading<'a> {
    /// The audit log's key file, the default result-signing key (`None`: audit is off).
    pub audit_key: Option<&'a Path>,
    pub check: ManifestCheck,
    /// The config's directory: relative paths are resolved against it.
    pub base: &'a Path,
}

/// The validated attestation settings.
pub struct AttestSettings {
    pub config: AttestConfig,
    pub audience: String,
    /// The result-signing key file (loaded after the audit log is open); `None`: unsigned.
    pub receipt_key: Option<PathBuf>,
    /// Each server's manifest file.
    pub manifest_files: BTreeMap<ServerName, PathBuf>,
    /// `[manifests] trusted_keys`, resolved.
    pub manifest_keys: Vec<PathBuf>,
}

/// Whether loading a config verifies the servers' manifests.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ManifestCheck {
    /// Verify them: a failing manifest is a config error (running the gateway).
    Verify,
    /// Only note where they are (the `manifest` commands, which work on them).
    Skip,
}

type Err<'a> = &'a dyn Fn(&str, String) -> ConfigError;

/// Validates the attestation settings and applies each server's manifest (tiers from the
/// manifest) to `servers`. `audit_key`: the audit log's key, the default result-signing key.
pub fn attest(
    raw: &RawAttestation,
    manifests: &RawManifests,
    per_server: &[ServerManifest<'_>],
    servers: &mut [ServerConfig],
    loading: Loading<'_>,
    err: Err<'_>,
) -> Result<AttestSettings, ConfigError> {
    let Loading { audit_key, check, base } = loading;
    let audience = raw.audience.clone().unwrap_or_else(|| DEFAULT_AUDIENCE.to_owned());
    if audience.is_empty() {
        return Err(err("attestation.audience", "must not be empty".into()));
    }
    let mut verifier_config = VerifierConfig::new(audience.clone());
    if let Some(secs) = raw.max_window_secs {
        if secs == 0 {
            return Err(err("attestation.max_window_secs", "must be greater than 0".into()));
        }
        verifier_config.max_window_secs = secs;
    }
    if let Some(secs) = raw.max_skew_secs {
        verifier_config.max_skew_secs = secs;
    }
    if let Some(n) = raw.replay_capacity {
        if n == 0 {
            return Err(err("attestation.replay_capacity", "must be greater than 0".into()));
        }
        verifier_config.replay_capacity = n;
    }
    // The replay cache starts empty: signatures issued before this start are refused.
    verifier_config.issued_not_before = portcullis_attest::host::unix_now();
    let mut verifier = Verifier::new(verifier_config);
    let mut required_signers = Vec::new();
    for (i, host) in raw.hosts.iter().enumerate() {
        let at = |field: &str| format!("attestation.hosts[{i}].{field}");
        if host.workload.is_empty() {
            return Err(err(
                &at("workload"),
                "must name the host's workload (SPIFFE ID or stdio principal)".into(),
            ));
        }
        let principal = Principal {
            workload: host.workload.clone(),
            user: host.user.clone(),
        };
        let (kid, key) = public_key(&base.join(&host.key)).map_err(|reason| err(&at("key"), reason))?;
        verifier
            .register(&kid, principal.clone(), key)
            .map_err(|e| err(&at("key"), e.to_string()))?;
        if host.required.unwrap_or(true) {
            required_signers.push(principal);
        }
    }
    let receipt_key = match (raw.sign_results, &raw.receipt_key, audit_key) {
        (Some(false), Some(_), _) => {
            return Err(err(
                "attestation.receipt_key",
                "is set but sign_results = false; remove one".into(),
            ));
        }
        (Some(false), None, _) => None,
        (_, _, None) if raw.sign_results == Some(true) || raw.receipt_key.is_some() => {
            return Err(err(
                "attestation.sign_results",
                "signed results carry their audit log index; enable [audit] or set sign_results = false".into(),
            ));
        }
        (_, _, None) => None,
        (_, Some(file), Some(_)) => Some(base.join(file)),
        (_, None, Some(audit)) => Some(audit.to_path_buf()),
    };
    let trusted = trusted_keys(manifests, base, err)?;
    let mut pinned = BTreeMap::new();
    let mut manifest_files = BTreeMap::new();
    for (i, (setting, server)) in per_server.iter().zip(servers.iter_mut()).enumerate() {
        let Some(file) = setting.file else { continue };
        manifest_files.insert(server.name.clone(), base.join(file));
        if check == ManifestCheck::Skip {
            continue;
        }
        let at = format!("servers[{i}].manifest");
        if trusted.is_empty() {
            return Err(err(
                &at,
                "no [manifests] trusted_keys to verify it with; add the operator's public key".into(),
            ));
        }
        let manifest =
            load_manifest(&base.join(file), &trusted, server, setting.spiffe_id).map_err(|reason| err(&at, reason))?;
        // The manifest decides tiers; tiers also given here must agree with it.
        for (tool, tier) in &server.tool_tiers {
            let pinned = manifest.manifest().tools.get(tool).map(|p| p.tier);
            if pinned != Some(*tier) {
                let pinned = pinned.map_or("no pin".to_owned(), |t| format!("tier {t}"));
                return Err(err(
                    &format!("servers[{i}].tools.{tool}.tier"),
                    format!(
                        "is {tier} but the signed manifest has {pinned}; the manifest decides tiers — remove it here or pin again"
                    ),
                ));
            }
        }
        server.tool_tiers = manifest
            .manifest()
            .tools
            .iter()
            .map(|(name, pin)| (name.clone(), pin.tier))
            .collect();
        pinned.insert(server.name.clone(), Arc::new(manifest));
    }
    let scan = scan_policy(manifests, err)?;
    Ok(AttestSettings {
        config: AttestConfig {
            verifier: (!raw.hosts.is_empty()).then(|| Arc::new(verifier)),
            required_signers,
            receipts: None,
            manifests: pinned,
            scan,
        },
        audience,
        receipt_key,
        manifest_files,
        manifest_keys: manifests.trusted_keys.iter().map(|k| base.join(k)).collect(),
    })
}

/// A public key file (`portcullis audit keygen` / audit key format): its key id and key.
pub fn public_key(path: &Path) -> Result<(String, ed25519_dalek::VerifyingKey), String> {
    let public = LogPublicKey::load(path).map_err(|e| e.to_string())?;
    let key = ed25519_dalek::VerifyingKey::from_bytes(&public.to_bytes())
        .map_err(|e| format!("`{}` does not hold a valid Ed25519 public key: {e}", path.display()))?;
    Ok((public.key_id().as_str().to_owned(), key))
}

/// The operator keys trusted to sign manifests.
fn trusted_keys(raw: &RawManifests, base: &Path, err: Err<'_>) -> Result<KeySet, ConfigError> {
    let files: Vec<PathBuf> = raw.trusted_keys.iter().map(|k| base.join(k)).collect();
    key_set(&files).map_err(|(i, reason)| err(&format!("manifests.trusted_keys[{i}]"), reason))
}

/// A key set from public key files; the error names the failing file's position.
pub fn key_set(files: &[PathBuf]) -> Result<KeySet, (usize, String)> {
    let mut set = KeySet::new();
    for (i, file) in files.iter().enumerate() {
        let (kid, key) = public_key(file).map_err(|reason| (i, reason))?;
        set.insert(&kid, key).map_err(|e| (i, e.to_string()))?;
    }
    Ok(set)
}

/// Reads and verifies a server's manifest and checks that it describes this server entry.
pub fn load_manifest(
    path: &Path,
    trusted: &KeySet,
    server: &ServerConfig,
    spiffe_id: Option<&str>,
) -> Result<PinnedManifest, String> {
    let bytes = std::fs::read(path).map_err(|e| format!("cannot read `{}`: {e}", path.display()))?;
    let signed = SignedManifest::from_json(&bytes).map_err(|e| format!("`{}`: {e}", path.display()))?;
    let pinned = signed.verify(trusted).map_err(|e| {
        format!(
            "`{}` does not verify: {e}; the gateway does not start a server whose manifest fails (sign it with `portcullis manifest sign`)",
            path.display()
        )
    })?;
    let manifest = pinned.manifest();
    if manifest.server != server.name {
        return Err(format!(
            "`{}` is the manifest of server `{}`, not `{}`",
            path.display(),
            manifest.server,
            server.name
        ));
    }
    match (&manifest.transport, &server.transport) {
        (TransportPin::Stdio { argv: pinned, .. }, UpstreamTransport::Stdio { argv, .. }) if pinned != argv => Err(
            format!("the manifest pins the command {pinned:?} but the config runs {argv:?}; pin the server again"),
        ),
        (TransportPin::Http { url: pinned, .. }, UpstreamTransport::Http { url, .. }) if pinned != url => Err(format!(
            "the manifest pins the URL `{pinned}` but the config uses `{url}`; pin the server again"
        )),
        (TransportPin::Http { spiffe_id: pinned, .. }, UpstreamTransport::Http { .. })
            if spiffe_id != Some(pinned.as_str()) =>
        {
            Err(format!(
                "the manifest pins the upstream identity `{pinned}`; give the server `tls = {{ …, spiffe_id = \"{pinned}\" }}`"
            ))
        }
        (TransportPin::Stdio { .. }, UpstreamTransport::Stdio { .. })
        | (TransportPin::Http { .. }, UpstreamTransport::Http { .. }) => Ok(pinned),
        _ => Err("the manifest pins another kind of transport (stdio or http) than the config gives".into()),
    }
}

fn scan_policy(raw: &RawManifests, err: Err<'_>) -> Result<ScanPolicy, ConfigError> {
    let mode = match raw.scan.as_deref().unwrap_or("block") {
        "block" => ScanMode::Block,
        "flag" => ScanMode::Flag,
        "off" => ScanMode::Off,
        other => {
            return Err(err(
                "manifests.scan",
                format!("unknown mode `{other}`; use block, flag or off"),
            ));
        }
    };
    let defaults = ScanConfig::default();
    let limits = ScanConfig {
        max_description_chars: raw.max_description_chars.unwrap_or(defaults.max_description_chars),
        max_string_chars: raw.max_string_chars.unwrap_or(defaults.max_string_chars),
    };
    if limits.max_description_chars == 0 || limits.max_string_chars == 0 {
        return Err(err(
            "manifests.max_description_chars",
            "limits must be greater than 0".into(),
        ));
    }
    Ok(ScanPolicy { mode, limits })
}

/// The result-signing key from its file (audit key format).
pub fn receipt_key(path: &Path) -> anyhow::Result<portcullis_gateway::config::ReceiptKey> {
    use anyhow::Context;
    let signer = portcullis_audit::LogSigner::load(path)
        .with_context(|| format!("cannot load the result-signing key {}", path.display()))?;
    Ok(portcullis_gateway::config::ReceiptKey {
        key: signer.signing_key().clone(),
        kid: signer.key_id().as_str().to_owned(),
    })
}
