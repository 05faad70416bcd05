//! `portcullis manifest pin-files`: computes the `pinned_files` digests of a stdio server
//! (its script, lockfile, package directory) and prints the TOML line to paste into the
//! server's `[[servers]]` entry. Paths are the server's current `pinned_files` keys plus any
//! `--path`, resolved as the gateway resolves them (against the server's `cwd`, else the
//! config file's directory); the digests are those the gateway checks before every start.
use std::{
    collections::BTreeMap,
    path::{Path, PathBuf},
    process::ExitCode,
};

use anyhow::{Context, bail};
use portcullis_attest::path_digest;
use portcullis_gateway::config::UpstreamTransport;

use crate::config::{self, ManifestCheck, pinned_files::pin_dir};

pub fn run(config_path: &Path, server: &str, paths: &[String]) -> anyhow::Result<ExitCode> {
    let loaded = config::load_with(config_path, ManifestCheck::Skip)?;
    let entry = loaded
        .gateway
        .servers
        .iter()
        .find(|s| s.name.as_str() == server)
        .with_context(|| format!("the config has no server named `{server}`"))?;
    let UpstreamTransport::Stdio { cwd, .. } = &entry.transport else {
        bail!("`{server}` is an HTTP server; only stdio servers start local files to pin");
    };
    let config_dir = config_path.parent().map(Path::to_path_buf).unwrap_or_default();
    let dir = pin_dir(cwd.as_deref(), &config_dir);
    let mut shown: Vec<String> = entry.pinned_files.iter().map(|pin| pin.shown.clone()).collect();
    shown.extend(paths.iter().cloned());
    if shown.is_empty() {
        bail!(
            "`{server}` pins no files yet; name them with --path (the script, its lockfile, its package \
             directory), relative to {}",
            dir.display()
        );
    }
    let mut digests = BTreeMap::new();
    for path in shown {
        let resolved: PathBuf = dir.join(&path);
        let digest = path_digest(&path, &resolved)?;
        eprintln!("{path} ({}): {digest}", resolved.display());
        digests.insert(path, digest);
    }
    let entries: Vec<String> = digests
        .iter()
        .map(|(path, digest)| format!("{} = \"{digest}\"", toml_key(path)))
        .collect();
    println!("pinned_files = {{ {} }}", entries.join(", "));
    Ok(ExitCode::SUCCESS)
}

/// `path` as a quoted TOML key (basic string, with `"` and `\` escaped).
fn toml_key(path: &str) -> String {
    let mut out = String::from("\"");
    for c in path.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if c.is_control() => out.push_str(&format!("\\u{:04X}", u32::from(c))),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}
