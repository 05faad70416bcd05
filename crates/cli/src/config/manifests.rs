//! `[manifests]` of the config file and each server's `manifest = "FILE"`: the operator
//! keys trusted to sign server manifests, the tool scanner's mode and limits, and the
//! manifests themselves — read and verified at load (a manifest whose signature fails
//! stops the start, exit 2); a verified manifest decides its server's tool tiers.
use std::{
    collections::BTreeMap,
    path::{Path, PathBuf},
    sync::Arc,
};

use portcullis_attest::{KeySet, PinnedManifest, ScanConfig, SignedManifest, TransportPin};
use portcullis_core::ServerName;
use portcullis_gateway::config::{ScanMode, ScanPolicy, ServerConfig, UpstreamTransport};

use super::{
    attest::public_key,
    problems::{Checked, Problems},
    raw::{RawManifests, RawServer},
};

/// Whether loading a config verifies the servers' manifests.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ManifestCheck {
    /// Verify them: a failing manifest is a config error (running the gateway).
    Verify,
    /// Only note where they are (the `manifest` commands, which work on them).
    Skip,
}

/// The validated manifest settings.
pub struct Manifests {
    /// Each verified server manifest (none with [`ManifestCheck::Skip`]).
    pub pinned: BTreeMap<ServerName, Arc<PinnedManifest>>,
    /// Each server's manifest file.
    pub files: BTreeMap<ServerName, PathBuf>,
    /// `[manifests] trusted_keys`, resolved.
    pub keys: Vec<PathBuf>,
    pub scan: ScanPolicy,
}

/// Validates `[manifests]` and, unless `check` skips it, verifies each server's manifest
/// and applies its tiers to the server. `servers` holds one result per `raw_servers`
/// entry; entries that failed validation are skipped (their problems are noted already).
pub fn manifests(
    raw: &RawManifests,
    raw_servers: &[RawServer],
    servers: &mut [Checked<ServerConfig>],
    check: ManifestCheck,
    base: &Path,
    p: &mut Problems,
) -> Checked<Manifests> {
    let trusted = trusted_keys(raw, base, p);
    let mut pinned = BTreeMap::new();
    let mut files = BTreeMap::new();
    let mut all_ok = Ok(());
    for (i, (setting, server)) in raw_servers.iter().zip(servers.iter_mut()).enumerate() {
        let (Some(file), Ok(server)) = (&setting.manifest, server) else {
            continue;
        };
        files.insert(server.name.clone(), base.join(file));
        // Without the keys (their problem is noted) a manifest cannot be checked.
        let (ManifestCheck::Verify, Ok(trusted)) = (check, &trusted) else {
            continue;
        };
        let at = format!("servers[{i}].manifest");
        let spiffe_id = setting.tls.as_ref().map(|t| t.spiffe_id.as_str());
        let verified = p
            .check(
                !trusted.is_empty(),
                &at,
                "no [manifests] trusted_keys to verify it with; add the operator's public key",
            )
            .and_then(|()| p.take(&at, load_manifest(&base.join(file), trusted, server, spiffe_id)))
            .and_then(|manifest| {
                apply_tiers(&manifest, server, i, p)?;
                pinned.insert(server.name.clone(), Arc::new(manifest));
                Ok(())
            });
        all_ok = all_ok.and(verified);
    }
    let scan = scan_policy(raw, p);
    trusted?;
    all_ok?;
    Ok(Manifests {
        pinned,
        files,
        keys: raw.trusted_keys.iter().map(|k| base.join(k)).collect(),
        scan: scan?,
    })
}

/// The manifest decides tiers; tiers also given in the config must agree with it.
fn apply_tiers(manifest: &PinnedManifest, server: &mut ServerConfig, i: usize, p: &mut Problems) -> Checked<()> {
    let mut agree = Ok(());
    for (tool, tier) in &server.tool_tiers {
        let pinned = manifest.manifest().tools.get(tool).map(|pin| pin.tier);
        if pinned != Some(*tier) {
            let pinned = pinned.map_or("no pin".to_owned(), |t| format!("tier {t}"));
            agree = Err(p.add(
                format!("servers[{i}].tools.{tool}.tier"),
                format!(
                    "is {tier} but the signed manifest has {pinned}; the manifest decides tiers — remove it here or pin again"
                ),
            ));
        }
    }
    agree?;
    server.tool_tiers = manifest
        .manifest()
        .tools
        .iter()
        .map(|(name, pin)| (name.clone(), pin.tier))
        .collect();
    Ok(())
}

/// The operator keys trusted to sign manifests; each file that fails is noted.
fn trusted_keys(raw: &RawManifests, base: &Path, p: &mut Problems) -> Checked<KeySet> {
    let mut set = KeySet::new();
    let mut all_ok = Ok(());
    for (i, file) in raw.trusted_keys.iter().enumerate() {
        let added =
            public_key(&base.join(file)).and_then(|(kid, key)| set.insert(&kid, key).map_err(|e| e.to_string()));
        all_ok = all_ok.and(p.take(format!("manifests.trusted_keys[{i}]"), added));
    }
    all_ok.map(|()| set)
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

/// `scan`, `max_description_chars` and `max_string_chars`.
fn scan_policy(raw: &RawManifests, p: &mut Problems) -> Checked<ScanPolicy> {
    let mode = match raw.scan.as_deref().unwrap_or("block") {
        "block" => Ok(ScanMode::Block),
        "flag" => Ok(ScanMode::Flag),
        "off" => Ok(ScanMode::Off),
        other => Err(p.add(
            "manifests.scan",
            format!("unknown mode `{other}`; use block, flag or off"),
        )),
    };
    let defaults = ScanConfig::default();
    let limits = ScanConfig {
        max_description_chars: raw.max_description_chars.unwrap_or(defaults.max_description_chars),
        max_string_chars: raw.max_string_chars.unwrap_or(defaults.max_string_chars),
    };
    let description_ok = p.check(
        limits.max_description_chars > 0,
        "manifests.max_description_chars",
        "limits must be greater than 0",
    );
    let string_ok = p.check(
        limits.max_string_chars > 0,
        "manifests.max_string_chars",
        "limits must be greater than 0",
    );
    description_ok?;
    string_ok?;
    Ok(ScanPolicy { mode: mode?, limits })
}
