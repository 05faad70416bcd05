//! `portcullis audit …`: verify, read and prove the audit log offline, through
//! its public read path only (no writer lock is taken, so it works beside a
//! running gateway).
use std::{ops::Range, path::PathBuf, process::ExitCode, time::Duration};

use anyhow::Context;
use clap::{Args, Subcommand};
use portcullis_audit::{
    AuditRecord, LogPublicKey, LogReader, MerkleTree, Progress, StoreReader, TrustedKeys, leaf_hash,
    store::{FileReader, postgres::PostgresStore},
    verify,
};

use crate::{
    audit_open::{self, public_key_path},
    config::{self, AuditStoreSettings},
};

#[derive(Debug, Subcommand)]
pub enum AuditCommand {
    /// Recompute the whole log and check every checkpoint; exit 1 on any problem.
    Verify {
        #[command(flatten)]
        source: Source,
        /// Public key file(s) trusted to sign checkpoints and batch seals (repeat for rotated
        /// or replica keys; default: the config's audit key's .pub).
        #[arg(long = "key", value_name = "PUB")]
        keys: Vec<PathBuf>,
    },
    /// Print the last records (JSON lines).
    Tail {
        #[command(flatten)]
        source: Source,
        /// How many records.
        #[arg(short = 'n', long, default_value_t = 20)]
        lines: u64,
        /// Keep printing new records as they arrive.
        #[arg(long)]
        follow: bool,
    },
    /// Print the records that match every given filter (JSON lines).
    #[command(
        after_help = "Examples:\n  portcullis audit show --config portcullis.toml --decision-id 08a0c2f1e4b24f6d9b1a7e3c5d2f4a61\n  \
                            portcullis audit show --config portcullis.toml --kind decision --tool search_docs"
    )]
    Show {
        #[command(flatten)]
        source: Source,
        #[command(flatten)]
        filter: Filter,
    },
    /// Write every record as JSON lines.
    Export {
        #[command(flatten)]
        source: Source,
        /// Output format (only `jsonl`).
        #[arg(long, default_value = "jsonl")]
        format: String,
        /// Output file (default: stdout).
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// Inclusion proof of record INDEX in the tree of SIZE records (default: the whole log).
    Prove {
        #[command(flatten)]
        source: Source,
        /// The record's index (`auditIndex` of a receipt).
        index: u64,
        /// The tree size to prove against (default: the whole log now).
        #[arg(long)]
        size: Option<u64>,
    },
    /// Consistency proof that the tree of OLD records is a prefix of the tree of NEW.
    Consistency {
        #[command(flatten)]
        source: Source,
        /// The older tree size (e.g. from a checkpoint kept elsewhere).
        old: u64,
        /// The newer tree size.
        new: u64,
    },
    /// Generate an Ed25519 key pair: PATH (private, 0600) and PATH with .pub. Used for the
    /// log key and for the attestation keys (host call signing, operator manifest signing).
    Keygen {
        /// The private key file to write (0600); the public key goes to the same path with `.pub`.
        #[arg(long)]
        out: PathBuf,
    },
}

/// Which log to read: from a config's `[audit]` section or given directly.
#[derive(Debug, Args)]
pub struct Source {
    /// A gateway config; its `[audit]` section names the log and key.
    #[arg(long, short, env = "PORTCULLIS_CONFIG", conflicts_with_all = ["dir", "postgres"])]
    config: Option<PathBuf>,
    /// The file store directory.
    #[arg(long)]
    dir: Option<PathBuf>,
    /// A PostgreSQL URL (with --schema).
    #[arg(long)]
    postgres: Option<String>,
    /// The PostgreSQL schema of the log (with --postgres).
    #[arg(long, default_value = "portcullis_audit")]
    schema: String,
}

#[derive(Debug, Args)]
pub struct Filter {
    /// Only records of this call (the `callId` of a result's receipt).
    #[arg(long)]
    call_id: Option<String>,
    /// Only records of this upstream server.
    #[arg(long)]
    server: Option<String>,
    /// Only records of this tool, resource or prompt (the server's own name).
    #[arg(long)]
    tool: Option<String>,
    /// The decision id a refusal named ("… look up decision `ID`"): its decision and call
    /// records.
    #[arg(long)]
    decision_id: Option<String>,
    /// Only records of this kind.
    #[arg(long, value_parser = ["decision", "call", "config_change", "policy_change", "pin_drift", "admin", "approval"])]
    kind: Option<String>,
    /// First index (inclusive).
    #[arg(long)]
    from: Option<u64>,
    /// Last index (exclusive).
    #[arg(long)]
    to: Option<u64>,
}

/// The log's read side (file or PostgreSQL), as the gateway's own reader.
type Reader = StoreReader;

impl Source {
    /// The reader, and the public keys the config names (none for --dir / --postgres).
    async fn open(&self) -> anyhow::Result<(Reader, Vec<PathBuf>)> {
        let (store, keys) = match (&self.config, &self.dir, &self.postgres) {
            (Some(path), _, _) => {
                let loaded = config::load(path)?;
                let audit = loaded
                    .audit
                    .ok_or_else(|| anyhow::anyhow!("{}: [audit] is disabled; there is no log", path.display()))?;
                (audit.store, vec![public_key_path(&audit.key)])
            }
            (None, Some(dir), _) => (AuditStoreSettings::File { dir: dir.clone() }, vec![]),
            (None, None, Some(url)) => (
                AuditStoreSettings::Postgres {
                    url: portcullis_core::Secret::new(url.clone()),
                    schema: self.schema.clone(),
                },
                vec![],
            ),
            (None, None, None) => anyhow::bail!("say which log: --config FILE, --dir DIR or --postgres URL"),
        };
        let reader = match store {
            AuditStoreSettings::File { dir } => Reader::File(
                FileReader::open(&dir).with_context(|| format!("cannot read the audit log at {}", dir.display()))?,
            ),
            AuditStoreSettings::Postgres { url, schema } => {
                let store = PostgresStore::connect(url.expose(), &schema, 2)
                    .await
                    .with_context(|| format!("cannot reach the PostgreSQL audit log (schema `{schema}`)"))?;
                Reader::Postgres(store.reader())
            }
        };
        Ok((reader, keys))
    }
}

pub async fn run(command: AuditCommand) -> anyhow::Result<ExitCode> {
    match command {
        AuditCommand::Verify { source, keys } => verify_log(&source, &keys).await,
        AuditCommand::Tail { source, lines, follow } => tail(&source, lines, follow).await,
        AuditCommand::Show { source, filter } => show(&source, &filter).await,
        AuditCommand::Export { source, format, out } => export(&source, &format, out).await,
        AuditCommand::Prove { source, index, size } => prove(&source, index, size).await,
        AuditCommand::Consistency { source, old, new } => consistency(&source, old, new).await,
        AuditCommand::Keygen { out } => {
            if out.exists() {
                anyhow::bail!("{} already exists; refusing to overwrite a key", out.display());
            }
            let signer = audit_open::generate(&out)?;
            println!(
                "wrote {} and {} (key id {})",
                out.display(),
                public_key_path(&out).display(),
                signer.key_id().as_str()
            );
            Ok(ExitCode::SUCCESS)
        }
    }
}

async fn verify_log(source: &Source, given: &[PathBuf]) -> anyhow::Result<ExitCode> {
    let (reader, mut key_paths) = source.open().await?;
    if !given.is_empty() {
        key_paths = given.to_vec();
    }
    let mut keys = TrustedKeys::new();
    for path in &key_paths {
        keys.insert(LogPublicKey::load(path).with_context(|| format!("cannot load public key {}", path.display()))?);
    }
    let mut last_percent = 0;
    let mut progress = |p: Progress| {
        if p.records_total >= 100_000 {
            let percent = p.records_done * 100 / p.records_total.max(1);
            if percent >= last_percent + 10 {
                last_percent = percent;
                eprintln!("verifying: {percent}% ({}/{})", p.records_done, p.records_total);
            }
        }
    };
    let report = verify(&reader, &keys, &mut progress)
        .await
        .context("cannot read the audit log")?;
    match &report.failure {
        None => {
            println!(
                "ok: {} records, {} checkpoints and {} batch seals verified, root {}, {} records no signature covers",
                report.records,
                report.checkpoints,
                report.seals,
                hex::encode(report.root.0),
                report.unsigned_tail
            );
            Ok(ExitCode::SUCCESS)
        }
        Some(failure) => {
            let at = failure
                .first_bad_index()
                .map(|i| format!(" (first bad index {i})"))
                .unwrap_or_default();
            println!("FAILED{at}: {failure}");
            Ok(ExitCode::FAILURE)
        }
    }
}

/// The log `config` names, opened for reading (no lock: beside a running gateway).
pub(crate) async fn reader_for(config: &std::path::Path) -> anyhow::Result<Reader> {
    let source = Source {
        config: Some(config.to_owned()),
        dir: None,
        postgres: None,
        schema: "portcullis_audit".into(),
    };
    Ok(source.open().await?.0)
}

/// Record `index` of the log.
pub(crate) async fn record_at(reader: &Reader, index: u64) -> anyhow::Result<AuditRecord> {
    let len = reader.len().await?;
    if index >= len {
        anyhow::bail!(
            "the audit log has {len} records (indexes 0 to {}); there is no record {index}",
            len.saturating_sub(1)
        );
    }
    let mut found = records(reader, index..index + 1).await?;
    found
        .pop()
        .map(|(_, r)| r)
        .ok_or_else(|| anyhow::anyhow!("record {index} could not be read"))
}

/// Every record that carries decision id `id` (its decision and, if it ran, its call).
pub(crate) async fn find_decision(reader: &Reader, id: &str) -> anyhow::Result<Vec<(u64, AuditRecord)>> {
    let len = reader.len().await?;
    let mut out = Vec::new();
    let mut start = 0;
    while start < len {
        let end = (start + 4096).min(len);
        for (i, r) in records(reader, start..end).await? {
            if r.decision_id.as_deref() == Some(id) {
                out.push((i, r));
            }
        }
        start = end;
    }
    Ok(out)
}

async fn records(reader: &Reader, range: Range<u64>) -> anyhow::Result<Vec<(u64, AuditRecord)>> {
    let start = range.start;
    let raw = reader.read(range).await?;
    raw.iter()
        .enumerate()
        .map(|(i, data)| {
            let index = start + i as u64;
            AuditRecord::from_bytes(data)
                .map(|r| (index, r))
                .with_context(|| format!("record {index} is unreadable"))
        })
        .collect()
}

fn print(index: u64, record: &AuditRecord) {
    let mut value = serde_json::to_value(record).unwrap_or_default();
    if let Some(obj) = value.as_object_mut() {
        obj.insert("index".into(), index.into());
    }
    println!("{value}");
}

async fn tail(source: &Source, lines: u64, follow: bool) -> anyhow::Result<ExitCode> {
    let (reader, _) = source.open().await?;
    let mut len = reader.len().await?;
    for (i, r) in records(&reader, len.saturating_sub(lines)..len).await? {
        print(i, &r);
    }
    if !follow {
        return Ok(ExitCode::SUCCESS);
    }
    loop {
        tokio::time::sleep(Duration::from_secs(1)).await;
        let now = reader.len().await?;
        for (i, r) in records(&reader, len..now).await? {
            print(i, &r);
        }
        len = now;
    }
}

async fn show(source: &Source, f: &Filter) -> anyhow::Result<ExitCode> {
    let (reader, _) = source.open().await?;
    let len = reader.len().await?;
    let range = f.from.unwrap_or(0).min(len)..f.to.unwrap_or(len).min(len);
    let mut start = range.start;
    while start < range.end {
        let end = (start + 4096).min(range.end);
        for (i, r) in records(&reader, start..end).await? {
            let kind = serde_json::to_value(r.kind)
                .ok()
                .and_then(|v| v.as_str().map(str::to_owned));
            let keep = f.call_id.as_ref().is_none_or(|c| r.call_id.as_ref() == Some(c))
                && f.server.as_ref().is_none_or(|s| r.server.as_ref() == Some(s))
                && f.tool.as_ref().is_none_or(|t| r.tool.as_ref() == Some(t))
                && f.decision_id.as_ref().is_none_or(|d| r.decision_id.as_ref() == Some(d))
                && f.kind.as_ref().is_none_or(|k| kind.as_ref() == Some(k));
            if keep {
                print(i, &r);
            }
        }
        start = end;
    }
    Ok(ExitCode::SUCCESS)
}

async fn export(source: &Source, format: &str, out: Option<PathBuf>) -> anyhow::Result<ExitCode> {
    if format != "jsonl" {
        anyhow::bail!("unknown format `{format}`; only `jsonl` is supported");
    }
    let (reader, _) = source.open().await?;
    let len = reader.len().await?;
    let mut text = String::new();
    let mut start = 0;
    while start < len {
        let end = (start + 4096).min(len);
        for data in reader.read(start..end).await? {
            text.push_str(&String::from_utf8_lossy(&data));
            text.push('\n');
        }
        start = end;
    }
    match out {
        Some(path) => std::fs::write(&path, text).with_context(|| format!("cannot write {}", path.display()))?,
        None => print!("{text}"),
    }
    Ok(ExitCode::SUCCESS)
}

async fn tree(reader: &Reader, size: u64) -> anyhow::Result<MerkleTree> {
    let mut tree = MerkleTree::new();
    let mut start = 0;
    while start < size {
        let end = (start + 4096).min(size);
        for data in reader.read(start..end).await? {
            tree.push(leaf_hash(&data));
        }
        start = end;
    }
    Ok(tree)
}

async fn prove(source: &Source, index: u64, size: Option<u64>) -> anyhow::Result<ExitCode> {
    let (reader, _) = source.open().await?;
    let size = size.unwrap_or(reader.len().await?);
    let tree = tree(&reader, size).await?;
    let proof = tree.inclusion_proof(index, size)?;
    let leaf = reader
        .read(index..index + 1)
        .await?
        .into_iter()
        .next()
        .map(|d| leaf_hash(&d));
    let root = tree.root(size).map(|r| hex::encode(r.0));
    let out = serde_json::json!({"index": index, "size": size, "leaf_hash": leaf.map(|l| hex::encode(l.0)), "root": root, "proof": proof});
    println!("{}", serde_json::to_string_pretty(&out)?);
    Ok(ExitCode::SUCCESS)
}

async fn consistency(source: &Source, old: u64, new: u64) -> anyhow::Result<ExitCode> {
    let (reader, _) = source.open().await?;
    let tree = tree(&reader, new).await?;
    let proof = tree.consistency_proof(old, new)?;
    let root = |n| tree.root(n).map(|r| hex::encode(r.0));
    let out = serde_json::json!({"old_size": old, "new_size": new, "old_root": root(old), "new_root": root(new), "proof": proof});
    println!("{}", serde_json::to_string_pretty(&out)?);
    Ok(ExitCode::SUCCESS)
}
