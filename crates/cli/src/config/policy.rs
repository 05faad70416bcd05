//! `[policy]` of the config file: the engine, the policy files (globs relative to the
//! config; none: the built-in tier policies), the shadow set, and decision settings.
//! The files are only named here; `policy_open` loads and watches them.
use std::{path::Path, time::Duration};

use portcullis_policy::EngineKind;

use super::{
    problems::{Checked, Problems},
    raw::RawPolicy,
};

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

/// Validates `[policy]`; relative patterns are resolved against `base`.
pub fn policy(raw: &RawPolicy, base: &Path, p: &mut Problems) -> Checked<PolicySettings> {
    let engine = match raw.engine.as_deref().unwrap_or("cedar") {
        "cedar" => EngineKind::Cedar,
        "rego" => EngineKind::Rego,
        other => {
            // Which file list belongs to the engine is unknown: nothing more to check.
            return Err(p.add(
                "policy.engine",
                format!("unknown engine `{other}`; use `cedar` or `rego`"),
            ));
        }
    };
    let (patterns, key, other) = match engine {
        EngineKind::Cedar => (&raw.cedar, "policy.cedar", &raw.rego),
        EngineKind::Rego => (&raw.rego, "policy.rego", &raw.cedar),
    };
    let one_engine = p.check(
        other.is_none(),
        key,
        "give the policy files of the selected `engine` only",
    );
    let not_empty = p.check(
        !patterns.as_ref().is_some_and(Vec::is_empty),
        key,
        "is an empty list; remove it to use the built-in tier policies",
    );
    one_engine?;
    not_empty?;
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
