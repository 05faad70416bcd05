//! `[attestation]` of the config file: the audience hosts sign for, the signature window
//! and replay cache, the host keys (each registered to a principal, read and checked at
//! load), which principals must sign, whether their signatures are verified in batches, and
//! result signing. The result-signing key itself is loaded later, once the audit log (whose
//! key it defaults to) is open.
use std::{
    path::{Path, PathBuf},
    sync::Arc,
};

use portcullis_attest::{SignatureBatcher, Verifier, VerifierConfig};
use portcullis_audit::LogPublicKey;
use portcullis_core::Principal;

use super::{
    problems::{Checked, Problems},
    raw::RawAttestation,
};

/// The audience hosts sign for when the config names none.
pub const DEFAULT_AUDIENCE: &str = "portcullis";

/// The validated `[attestation]` settings.
pub struct Attestation {
    /// Checks host signatures; `None` when no host key is registered.
    pub verifier: Option<Arc<Verifier>>,
    /// Principals whose unsigned calls are denied.
    pub required_signers: Vec<Principal>,
    pub audience: String,
    /// The result-signing key file (loaded after the audit log is open); `None`: unsigned.
    pub receipt_key: Option<PathBuf>,
    /// Batch receipts where the audit batch seals are made with the result-signing key
    /// (`receipts = "batch"`, the default), or a signature per result (`"signed"`).
    pub batch_receipts: bool,
    /// Verifies together the host signatures of calls that reach the attest stage at once
    /// (`batch_verify`, default false); `None`: each alone, or no host keys.
    pub batcher: Option<Arc<SignatureBatcher>>,
}

/// Validates `[attestation]`. `audit_key`: the audit log's key file, the default
/// result-signing key (`None`: the log is off, so results cannot be signed).
pub fn attestation(
    raw: &RawAttestation,
    audit_key: Option<&Path>,
    base: &Path,
    p: &mut Problems,
) -> Checked<Attestation> {
    let audience = raw.audience.clone().unwrap_or_else(|| DEFAULT_AUDIENCE.to_owned());
    let audience_ok = p.check(!audience.is_empty(), "attestation.audience", "must not be empty");
    let mut config = VerifierConfig::new(audience.clone());
    let window_ok = p.check(
        raw.max_window_secs != Some(0),
        "attestation.max_window_secs",
        "must be greater than 0",
    );
    let replay_ok = p.check(
        raw.replay_capacity != Some(0),
        "attestation.replay_capacity",
        "must be greater than 0",
    );
    config.max_window_secs = raw.max_window_secs.unwrap_or(config.max_window_secs);
    config.max_skew_secs = raw.max_skew_secs.unwrap_or(config.max_skew_secs);
    config.replay_capacity = raw.replay_capacity.unwrap_or(config.replay_capacity);
    // The replay cache starts empty: until it is restored from the audit log, signatures
    // that could have been seen before this start (iat up to the start plus the allowed
    // skew) are refused.
    config.issued_not_before = portcullis_attest::host::unix_now() + config.max_skew_secs + 1;
    let mut verifier = Verifier::new(config);
    let mut required_signers = Vec::new();
    let mut hosts_ok = Ok(());
    for (i, host) in raw.hosts.iter().enumerate() {
        let at = |field: &str| format!("attestation.hosts[{i}].{field}");
        let named = p.check(
            !host.workload.is_empty(),
            at("workload"),
            "must name the host's workload (SPIFFE ID or stdio principal)",
        );
        let principal = Principal {
            workload: host.workload.clone(),
            user: host.user.clone(),
        };
        let registered = named.and_then(|()| {
            let (kid, key) = p.take(at("key"), public_key(&base.join(&host.key)))?;
            p.take(at("key"), verifier.register(&kid, principal.clone(), key))
        });
        if host.required.unwrap_or(true) {
            required_signers.push(principal);
        }
        hosts_ok = hosts_ok.and(registered);
    }
    let receipt_key = receipt_key_file(raw, audit_key, base, p);
    let batch_receipts = match raw.receipts.as_deref() {
        None | Some("batch") => Ok(true),
        Some("signed") => Ok(false),
        Some(other) => Err(p.add(
            "attestation.receipts",
            format!("is `{other}`; use \"batch\" (one signature per audit batch) or \"signed\" (one per result)"),
        )),
    };
    audience_ok?;
    window_ok?;
    replay_ok?;
    hosts_ok?;
    Ok(Attestation {
        verifier: (!raw.hosts.is_empty()).then(|| Arc::new(verifier)),
        required_signers,
        audience,
        receipt_key: receipt_key?,
        batch_receipts: batch_receipts?,
        batcher: (!raw.hosts.is_empty() && raw.batch_verify.unwrap_or(false))
            .then(|| Arc::new(SignatureBatcher::new())),
    })
}

/// Which key signs results: `receipt_key`, else the audit log's; none when switched off.
fn receipt_key_file(
    raw: &RawAttestation,
    audit_key: Option<&Path>,
    base: &Path,
    p: &mut Problems,
) -> Checked<Option<PathBuf>> {
    match (raw.sign_results, &raw.receipt_key, audit_key) {
        (Some(false), Some(_), _) => {
            Err(p.add("attestation.receipt_key", "is set but sign_results = false; remove one"))
        }
        (Some(false), None, _) => Ok(None),
        (_, _, None) if raw.sign_results == Some(true) || raw.receipt_key.is_some() => Err(p.add(
            "attestation.sign_results",
            "signed results carry their audit log index; enable [audit] or set sign_results = false",
        )),
        (_, _, None) => Ok(None),
        (_, Some(file), Some(_)) => Ok(Some(base.join(file))),
        (_, None, Some(audit)) => Ok(Some(audit.to_path_buf())),
    }
}

/// A public key file (`portcullis audit keygen` / audit key format): its key id and key.
pub fn public_key(path: &Path) -> Result<(String, ed25519_dalek::VerifyingKey), String> {
    let public = LogPublicKey::load(path).map_err(|e| e.to_string())?;
    let key = ed25519_dalek::VerifyingKey::from_bytes(&public.to_bytes())
        .map_err(|e| format!("`{}` does not hold a valid Ed25519 public key: {e}", path.display()))?;
    Ok((public.key_id().as_str().to_owned(), key))
}

/// The result-signing key from its file (audit key format).
/// `batch`: batch receipts where the audit log's seals are made with this key.
pub fn receipt_key(path: &Path, batch: bool) -> anyhow::Result<portcullis_gateway::config::ReceiptKey> {
    use anyhow::Context;
    let signer = portcullis_audit::LogSigner::load(path)
        .with_context(|| format!("cannot load the result-signing key {}", path.display()))?;
    Ok(portcullis_gateway::config::ReceiptKey {
        key: signer.signing_key().clone(),
        kid: signer.key_id().as_str().to_owned(),
        batch,
    })
}
