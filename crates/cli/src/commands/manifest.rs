//! `portcullis manifest pin|pin-files|sign|verify|approve`: the operator's side of pinned servers.
//!
//! `pin` starts a server exactly as the gateway would, reads its tools and writes a manifest
//! (command and executable hash, or URL and SPIFFE ID; each tool's tier and definition hash)
//! for review; `sign` signs it with an operator key; `verify` checks a config's manifests
//! against their signatures, executables, pinned files and what the servers list now; `approve` accepts a
//! tool's current definition (after a reviewed change) and signs the manifest again.
use std::{
    path::{Path, PathBuf},
    process::ExitCode,
};

use anyhow::{Context, bail};
use portcullis_attest::{
    Drift, Manifest, SignedManifest, ToolPin, TransportPin, drift, file_sha256, scan_tool_with, tool_definition_hash,
};
use portcullis_gateway::config::{ServerConfig, UpstreamTransport};
use serde_json::Value;

use crate::config::{self, LoadedConfig, ManifestCheck};

#[derive(Debug, clap::Subcommand)]
pub enum ManifestCommand {
    /// Start a server, read its tools and write its manifest for review (signed with --key).
    Pin {
        /// The gateway config file (or $PORTCULLIS_CONFIG).
        #[arg(long, short, env = "PORTCULLIS_CONFIG")]
        config: PathBuf,
        /// The server entry to pin.
        #[arg(long)]
        server: String,
        /// Where to write the manifest (JSON).
        #[arg(long)]
        out: PathBuf,
        /// Sign it right away with this operator key (otherwise run `manifest sign` after review).
        #[arg(long)]
        key: Option<PathBuf>,
        /// Overwrite --out if it exists.
        #[arg(long)]
        force: bool,
    },
    /// Print the `pinned_files` digests of a stdio server's script, lockfile or package
    /// directory, as the TOML line to paste into its `[[servers]]` entry.
    PinFiles {
        /// The gateway config file (or $PORTCULLIS_CONFIG).
        #[arg(long, short, env = "PORTCULLIS_CONFIG")]
        config: PathBuf,
        /// The stdio server entry (`name` in the config) whose files to pin.
        #[arg(long)]
        server: String,
        /// A file or directory to pin besides those already in `pinned_files` (repeat for
        /// several), relative to the server's `cwd` or else the config file's directory.
        #[arg(long = "path")]
        paths: Vec<String>,
    },
    /// Sign a manifest file with an operator key (in place, or into --out).
    Sign {
        /// The operator's private key (`portcullis audit keygen`).
        #[arg(long)]
        key: PathBuf,
        /// The manifest (as written by `pin`, or already signed: it is signed again).
        file: PathBuf,
        /// Where to write the signed manifest (default: over FILE).
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// Check every manifest of a config: signature, executable hash, and the tools the server lists now.
    Verify {
        /// The gateway config file (or $PORTCULLIS_CONFIG).
        #[arg(long, short, env = "PORTCULLIS_CONFIG")]
        config: PathBuf,
        /// Only this server.
        #[arg(long)]
        server: Option<String>,
        /// Do not start the servers; check signatures and executables only.
        #[arg(long)]
        offline: bool,
    },
    /// Accept tools' current definitions into a server's manifest and sign it again.
    Approve {
        /// The gateway config file (or $PORTCULLIS_CONFIG).
        #[arg(long, short, env = "PORTCULLIS_CONFIG")]
        config: PathBuf,
        /// The server entry whose manifest to amend.
        #[arg(long)]
        server: String,
        /// A tool to approve (repeat for several).
        #[arg(long = "tool", required = true)]
        tools: Vec<String>,
        /// The operator's private key to sign the updated manifest with.
        #[arg(long)]
        key: PathBuf,
    },
}

pub async fn run(command: ManifestCommand) -> anyhow::Result<ExitCode> {
    match command {
        ManifestCommand::Pin {
            config,
            server,
            out,
            key,
            force,
        } => pin(&config, &server, &out, key.as_deref(), force).await,
        ManifestCommand::PinFiles { config, server, paths } => super::pin_files::run(&config, &server, &paths),
        ManifestCommand::Sign { key, file, out } => sign(&key, &file, out.as_deref()),
        ManifestCommand::Verify {
            config,
            server,
            offline,
        } => verify(&config, server.as_deref(), offline).await,
        ManifestCommand::Approve {
            config,
            server,
            tools,
            key,
        } => approve(&config, &server, &tools, &key).await,
    }
}

/// The config (manifests not yet verified: they are what these commands work on) and one server.
fn load(config: &Path) -> anyhow::Result<LoadedConfig> {
    Ok(config::load_with(config, ManifestCheck::Skip)?)
}

fn find<'a>(loaded: &'a LoadedConfig, server: &str) -> anyhow::Result<&'a ServerConfig> {
    loaded
        .gateway
        .servers
        .iter()
        .find(|s| s.name.as_str() == server)
        .with_context(|| format!("the config has no server named `{server}`"))
}

async fn list_tools(loaded: &LoadedConfig, server: &ServerConfig) -> anyhow::Result<Vec<Value>> {
    portcullis_gateway::list_server_tools(server, loaded.gateway.limits)
        .await
        .with_context(|| format!("cannot read the tools of `{}`", server.name))
}

async fn pin(config: &Path, server: &str, out: &Path, key: Option<&Path>, force: bool) -> anyhow::Result<ExitCode> {
    if out.exists() && !force {
        bail!("{} exists; pass --force to overwrite it", out.display());
    }
    let loaded = load(config)?;
    let entry = find(&loaded, server)?;
    let transport = match &entry.transport {
        UpstreamTransport::Stdio { argv, .. } => {
            let program = argv.first().context("the server's command is empty")?;
            let executable_sha256 =
                file_sha256(Path::new(program)).with_context(|| format!("cannot hash the executable {program}"))?;
            TransportPin::Stdio {
                argv: argv.clone(),
                executable_sha256,
            }
        }
        UpstreamTransport::Http { url, .. } => {
            let spiffe_id = loaded.upstream_spiffe_ids.get(&entry.name).cloned().with_context(|| {
                format!(
                    "`{server}` has no `tls = {{ …, spiffe_id }}`: only mutual-TLS https:// servers can be pinned \
                     (the manifest pins the URL and the server's SPIFFE ID)"
                )
            })?;
            TransportPin::Http {
                url: url.clone(),
                spiffe_id,
            }
        }
    };
    let tools = list_tools(&loaded, entry).await?;
    let mut manifest = Manifest {
        version: portcullis_attest::manifest::MANIFEST_VERSION,
        server: entry.name.clone(),
        transport,
        tools: Default::default(),
    };
    let mut flagged = 0;
    for tool in &tools {
        let name = tool.get("name").and_then(Value::as_str).unwrap_or_default().to_owned();
        let definition_hash = tool_definition_hash(tool).with_context(|| format!("tool `{name}`"))?;
        let findings = scan_tool_with(tool, &loaded.gateway.attest.scan.limits);
        for f in &findings {
            flagged += 1;
            eprintln!("review: tool `{name}` at {}: {:?}", f.pointer, f.kind);
        }
        let tier = entry.tier_of(&name);
        println!("{name}: tier {tier}, definition {}", &definition_hash[..16]);
        manifest.tools.insert(name, ToolPin { tier, definition_hash });
    }
    manifest.validate().context("the manifest would not be valid")?;
    let text = match key {
        Some(key) => signed_text(&manifest, key)?,
        None => serde_json::to_string_pretty(&manifest)?,
    };
    write(out, &text)?;
    println!(
        "wrote {} ({} tools{}); {}",
        out.display(),
        manifest.tools.len(),
        if flagged > 0 {
            format!(", {flagged} scanner findings above")
        } else {
            String::new()
        },
        if key.is_some() {
            "signed".to_owned()
        } else {
            format!(
                "review it, then `portcullis manifest sign --key OPERATOR.key {}`",
                out.display()
            )
        }
    );
    Ok(ExitCode::SUCCESS)
}

fn sign(key: &Path, file: &Path, out: Option<&Path>) -> anyhow::Result<ExitCode> {
    let manifest = read_manifest(file)?;
    manifest
        .validate()
        .with_context(|| format!("{} is not a valid manifest", file.display()))?;
    let out = out.unwrap_or(file);
    write(out, &signed_text(&manifest, key)?)?;
    println!("signed {} for server `{}`", out.display(), manifest.server);
    Ok(ExitCode::SUCCESS)
}

async fn verify(config: &Path, only: Option<&str>, offline: bool) -> anyhow::Result<ExitCode> {
    let loaded = load(config)?;
    let trusted = loaded.trusted_manifest_keys()?;
    let mut problems = 0;
    let mut checked = 0;
    for server in &loaded.gateway.servers {
        if only.is_some_and(|o| o != server.name.as_str()) {
            continue;
        }
        let Some(file) = loaded.manifest_files.get(&server.name) else {
            if only.is_some() {
                bail!("server `{}` has no manifest", server.name);
            }
            continue;
        };
        checked += 1;
        let name = &server.name;
        let spiffe = loaded.upstream_spiffe_ids.get(name).map(String::as_str);
        let pinned = match crate::config::load_manifest(file, &trusted, server, spiffe) {
            Ok(p) => p,
            Err(reason) => {
                problems += 1;
                println!("{name}: FAIL {reason}");
                continue;
            }
        };
        println!("{name}: signature ok (key {})", pinned.kid());
        if let (TransportPin::Stdio { argv, .. }, UpstreamTransport::Stdio { .. }) =
            (&pinned.manifest().transport, &server.transport)
        {
            match pinned.manifest().check_executable(Path::new(&argv[0])) {
                Ok(()) => println!("{name}: executable {} matches its pin", argv[0]),
                Err(e) => {
                    problems += 1;
                    println!("{name}: FAIL {e}");
                }
            }
        }
        let mut files_ok = true;
        for pin in server.pinned_files.iter() {
            match pin.check() {
                Ok(()) => println!("{name}: pinned file `{}` matches its pin", pin.shown),
                Err(e) => {
                    problems += 1;
                    files_ok = false;
                    println!("{name}: FAIL {e}");
                }
            }
        }
        // A server whose pinned files changed is not started to list its tools.
        if offline || !files_ok {
            continue;
        }
        let tools = list_tools(&loaded, server).await?;
        let drifted = drift(pinned.manifest(), &tools);
        for d in &drifted {
            problems += 1;
            println!("{name}: DRIFT {}", describe_drift(d));
        }
        for tool in &tools {
            for f in scan_tool_with(tool, &loaded.gateway.attest.scan.limits) {
                problems += 1;
                let tool_name = tool.get("name").and_then(Value::as_str).unwrap_or_default();
                println!("{name}: FLAGGED tool `{tool_name}` at {}: {:?}", f.pointer, f.kind);
            }
        }
        if drifted.is_empty() {
            println!("{name}: all {} listed tools match their pins", tools.len());
        }
    }
    if checked == 0 {
        bail!("no server in {} has a manifest", config.display());
    }
    if problems > 0 {
        println!("{problems} problem(s)");
        return Ok(ExitCode::FAILURE);
    }
    println!("ok: {checked} manifest(s) verified");
    Ok(ExitCode::SUCCESS)
}

async fn approve(config: &Path, server: &str, tools: &[String], key: &Path) -> anyhow::Result<ExitCode> {
    let loaded = load(config)?;
    let entry = find(&loaded, server)?;
    let file = loaded
        .manifest_files
        .get(&entry.name)
        .with_context(|| format!("server `{server}` has no manifest; pin it first with `portcullis manifest pin`"))?;
    let trusted = loaded.trusted_manifest_keys()?;
    let spiffe = loaded.upstream_spiffe_ids.get(&entry.name).map(String::as_str);
    let current = crate::config::load_manifest(file, &trusted, entry, spiffe)
        .map_err(|reason| anyhow::anyhow!("the current manifest is not trusted, so it cannot be amended: {reason}"))?;
    let mut manifest = current.manifest().clone();
    let listed = list_tools(&loaded, entry).await?;
    for name in tools {
        let tool = listed
            .iter()
            .find(|t| t.get("name").and_then(Value::as_str) == Some(name.as_str()))
            .with_context(|| format!("`{server}` does not list a tool `{name}`"))?;
        let definition_hash = tool_definition_hash(tool).with_context(|| format!("tool `{name}`"))?;
        for f in scan_tool_with(tool, &loaded.gateway.attest.scan.limits) {
            eprintln!("review: tool `{name}` at {}: {:?}", f.pointer, f.kind);
        }
        let tier = manifest.tools.get(name).map(|p| p.tier).unwrap_or(entry.default_tier);
        let before = manifest.tools.insert(name.clone(), ToolPin { tier, definition_hash });
        println!(
            "{name}: {} (tier {tier})",
            if before.is_some() {
                "new definition approved"
            } else {
                "added"
            }
        );
    }
    write(file, &signed_text(&manifest, key)?)?;
    println!(
        "signed {}; restart the gateway (or its sessions) for the approval to take effect",
        file.display()
    );
    Ok(ExitCode::SUCCESS)
}

fn describe_drift(d: &Drift) -> String {
    match d {
        Drift::Changed { tool, pinned, listed } => format!(
            "tool `{tool}` changed: definition {} is pinned as {}",
            &listed[..16.min(listed.len())],
            &pinned[..16.min(pinned.len())]
        ),
        Drift::New { tool, .. } => format!("tool `{tool}` is listed but not pinned"),
        Drift::Missing { tool } => format!("pinned tool `{tool}` is no longer listed"),
        Drift::Duplicate { tool } => format!("tool `{tool}` is listed twice"),
        Drift::Invalid { index, problem } => format!("listed entry {index} is invalid: {problem}"),
    }
}

/// A manifest file as `pin` writes it, or a signed one (its signature is dropped).
fn read_manifest(file: &Path) -> anyhow::Result<Manifest> {
    let bytes = std::fs::read(file).with_context(|| format!("cannot read {}", file.display()))?;
    let value: Value = portcullis_mcp::parse_strict(&bytes, portcullis_mcp::Limits::default())
        .with_context(|| format!("{} is not JSON", file.display()))?;
    let manifest = if value.get("signature").is_some() {
        SignedManifest::from_json(&bytes)
            .with_context(|| format!("{} is not a signed manifest", file.display()))?
            .manifest
    } else {
        serde_json::from_value(value).with_context(|| format!("{} is not a manifest", file.display()))?
    };
    Ok(manifest)
}

fn signed_text(manifest: &Manifest, key: &Path) -> anyhow::Result<String> {
    let signer =
        portcullis_audit::LogSigner::load(key).with_context(|| format!("cannot load the key {}", key.display()))?;
    let signed = manifest
        .sign(signer.signing_key(), signer.key_id().as_str())
        .context("cannot sign the manifest")?;
    Ok(signed.to_json()?)
}

fn write(path: &Path, text: &str) -> anyhow::Result<()> {
    let mut text = text.to_owned();
    text.push('\n');
    std::fs::write(path, text).with_context(|| format!("cannot write {}", path.display()))
}
