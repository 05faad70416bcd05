//! `portcullis keygen --out PREFIX`: an Ed25519 key pair for the attestation roles — a host's
//! call-signing key, an operator's manifest-signing key, or a separate result-signing key.
//! Writes `PREFIX.key` (private, mode 0600, never overwritten) and `PREFIX.pub`, in the same
//! format as the audit log's key, and prints the key id that signatures will name.
use std::{path::PathBuf, process::ExitCode};

use anyhow::bail;

use crate::audit_open;

pub fn run(out: PathBuf) -> anyhow::Result<ExitCode> {
    let key = out.with_extension("key");
    let public = audit_open::public_key_path(&key);
    for path in [&key, &public] {
        if path.exists() {
            bail!(
                "{} exists; keys are never overwritten — pick another --out",
                path.display()
            );
        }
    }
    let signer = audit_open::generate(&key)?;
    println!(
        "key id {}\nprivate key {} (keep it secret)\npublic key  {}",
        signer.key_id().as_str(),
        key.display(),
        public.display()
    );
    Ok(ExitCode::SUCCESS)
}
