//! `portcullis init [DIR]`: a working starter config that runs the bundled demo
//! server behind the gateway.
use std::{path::PathBuf, process::ExitCode};

use anyhow::Context;

/// The approver key `init` writes (its public half is registered in the starter config).
pub const APPROVER_KEY: &str = "keys/approver.key";

/// Validity of the SVIDs `init` issues (re-issue with `portcullis ca issue`).
const STARTER_TTL: std::time::Duration = std::time::Duration::from_secs(30 * 24 * 3600);

/// The starter config for `program` (this binary), its front at `listen` and the approvers'
/// admin API at `admin`.
pub fn starter_config(program: &str, listen: &str, admin: &str) -> String {
    format!(
        r#"# Portcullis config, written by `portcullis init`. Reference: docs/config.md ("Config reference").

[listen]
http = "{listen}"                  # Streamable HTTP front, endpoint /mcp (HTTPS: see [listen.tls])
# allowed_hosts = ["localhost", "127.0.0.1", "[::1]"]   # DNS-rebinding guard (default)

[listen.tls]                         # mutual TLS: callers present a SPIFFE SVID (dev CA in pki/, `portcullis ca`)
cert = "pki/gateway.pem"             # the gateway's own SVID (re-read when the file changes)
key = "pki/gateway.key"
client_ca = "pki/ca/ca.pem"          # trust bundle for client SVIDs
trust_domains = ["example.org"]

[stdio]
principal = "desktop-host"           # who `portcullis stdio` clients are

[[servers]]
name = "demo"                        # the bundled demo MCP server
command = ["{program}", "demo-server"]
env = {{}}                             # the only variables the child sees
default_tier = "read"
tools = {{ lookup_customer = {{ tier = "read-sensitive" }}, query = {{ tier = "read-sensitive" }}, send_message = {{ tier = "write" }}, delete_record = {{ tier = "write" }} }}

[policy]
cedar = ["policies/*.cedar"]         # Cedar policies (schema: README "Policy"); checked on change and SIGHUP
require_reason = true                # calls state why: `_meta["io.portcullis/reason"]`, or…
reason_argument = true               # …the `portcullis_reason` argument every tool lists as required (desktop hosts cannot set `_meta`)

[audit]
path = "data/audit"                  # tamper-evident log; `postgres = "postgres://…"` shares one log between replicas
key = "keys/audit.key"               # checkpoint signing key (generated on first start; back it up)

[approvals]                          # write calls wait for an approver (README "Approvals")
wait_secs = 120                      # how long a write call is held for an answer

[[approvals.approvers]]
name = "operator"                    # approves with the private half, keys/approver.key:
key = "keys/approver.pub"            #   portcullis approvals list|approve ID --config portcullis.toml --key keys/approver.key

[admin]
listen = "{admin}"             # the approvers' API (and break-glass)
tls = false                          # loopback: every request is signed with an approver key

# Per-call credentials (README "Credentials"): e.g. a PostgreSQL role per `query` call that can
# read schema `sales` only, gone when the call ends. The server must start per call:
# [[servers]] … spawn = "per-call"
# [broker.sources.sales_db]
# kind = "postgres-role"
# admin_url_env = "PORTCULLIS_DB_ADMIN_URL"   # the admin connection string, from the environment
# connect_url = "postgres://{{user}}:{{password}}@127.0.0.1:5432/app"
# grants = [{{ schema = "sales", privileges = ["select"] }}]
# ttl_secs = 300
# [[credentials]]
# id = "sales-read"
# server = "demo"
# tools = ["query"]
# source = "sales_db"
# env = "DATABASE_URL"
"#
    )
}

pub fn run(dir: Option<PathBuf>, force: bool, renew: bool) -> anyhow::Result<ExitCode> {
    let dir = dir.unwrap_or_else(|| PathBuf::from("."));
    if renew {
        return renew_svids(&dir);
    }
    std::fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let path = dir.join("portcullis.toml");
    if path.exists() && !force {
        anyhow::bail!(
            "{} already exists; pass --force to write a new one (the old one is kept as a .bak file), or --renew to \
             re-issue only the SVIDs",
            path.display()
        );
    }
    let stamp = backup_stamp();
    let exe = std::env::current_exe().context("cannot find this program's own path")?;
    let text = starter_config(&exe.to_string_lossy(), "127.0.0.1:8080", "127.0.0.1:9443");
    back_up(&path, &text, &stamp)?;
    write_private(&path, &text)?;
    let policies = dir.join("policies");
    std::fs::create_dir_all(&policies).with_context(|| format!("cannot create {}", policies.display()))?;
    let tiers = policies.join("tiers.cedar");
    if !tiers.exists() || force {
        back_up(&tiers, portcullis_policy::DEFAULT_CEDAR_POLICIES, &stamp)?;
        std::fs::write(&tiers, portcullis_policy::DEFAULT_CEDAR_POLICIES)
            .with_context(|| format!("cannot write {}", tiers.display()))?;
        println!(
            "wrote {} (the tier policies: read, read-sensitive, write)",
            tiers.display()
        );
    }
    let pki = crate::commands::ca::starter_pki(&dir, STARTER_TTL)?;
    println!(
        "wrote {} (dev CA), pki/gateway.pem (the gateway's SVID) and {} (an agent SVID, spiffe://example.org/agent/dev), \
         valid until {} (30 days; renew with `portcullis init --renew {}`)",
        pki.bundle.display(),
        pki.agent_cert.display(),
        portcullis_audit::time::rfc3339_utc(pki.not_after),
        dir.display()
    );
    let key = dir.join("keys/audit.key");
    if !key.exists() {
        crate::audit_open::generate(&key)?;
        println!("wrote {} (audit log signing key, keep it private)", key.display());
    }
    let approver = dir.join(APPROVER_KEY);
    if !approver.exists() {
        crate::audit_open::generate(&approver)?;
        println!(
            "wrote {} (the approver key of `operator`: approves write calls, keep it private)",
            approver.display()
        );
    }
    println!("wrote {}", path.display());
    let abs = |p: &std::path::Path| crate::lock_note::absolute(p).display().to_string();
    println!(
        "next: portcullis check-config --config {0}\n      portcullis run --config {0}\n      \
         portcullis connect https://127.0.0.1:8080/mcp --cert {1} --key {2} --ca {3}   (a desktop host's command)\n      \
         or, for a desktop host that launches the gateway itself: portcullis stdio --config {0}",
        abs(&path),
        abs(&pki.agent_cert),
        abs(&pki.agent_key),
        abs(&pki.bundle)
    );
    Ok(ExitCode::SUCCESS)
}

/// `init --renew`: new gateway and agent SVIDs from the dev CA `init` made (kept), for
/// another 30 days; nothing else is touched.
fn renew_svids(dir: &std::path::Path) -> anyhow::Result<ExitCode> {
    let ca = dir.join("pki/ca/ca.key");
    if !ca.exists() {
        anyhow::bail!(
            "{} has no dev CA ({} is missing): `--renew` re-issues the SVIDs of a directory written by `portcullis \
             init`; run `portcullis init {}` first",
            dir.display(),
            ca.display(),
            dir.display()
        );
    }
    let pki = crate::commands::ca::starter_pki(dir, STARTER_TTL)?;
    println!(
        "renewed {} and {} from the dev CA in {} (kept); valid until {}",
        dir.join("pki/gateway.pem").display(),
        pki.agent_cert.display(),
        dir.join("pki/ca").display(),
        portcullis_audit::time::rfc3339_utc(pki.not_after)
    );
    println!(
        "a running gateway picks up its new certificate by itself; restart `portcullis connect` bridges that use the \
         agent SVID"
    );
    Ok(ExitCode::SUCCESS)
}

/// `20261205T095500Z`: the suffix of this run's backups.
fn backup_stamp() -> String {
    portcullis_audit::time::rfc3339_utc(std::time::SystemTime::now())
        .chars()
        .filter(|c| c.is_ascii_alphanumeric())
        .take(15)
        .collect::<String>()
        + "Z"
}

/// Before `path` is replaced by `new`: copies it to `PATH.bak-STAMP` (keeping its mode) and
/// says so, unless it does not exist or already holds exactly `new`.
fn back_up(path: &std::path::Path, new: &str, stamp: &str) -> anyhow::Result<()> {
    match std::fs::read(path) {
        Ok(old) if old == new.as_bytes() => Ok(()),
        Ok(_) => {
            let mut name = path.as_os_str().to_owned();
            name.push(format!(".bak-{stamp}"));
            let backup = PathBuf::from(name);
            std::fs::copy(path, &backup)
                .with_context(|| format!("cannot back up {} to {}", path.display(), backup.display()))?;
            println!("backed up {} to {} (it is replaced)", path.display(), backup.display());
            Ok(())
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e).with_context(|| format!("cannot read {} to back it up", path.display())),
    }
}

/// Writes a file only its owner can read (a config may come to hold secrets: headers,
/// connection strings).
fn write_private(path: &std::path::Path, text: &str) -> anyhow::Result<()> {
    use std::io::Write as _;
    use std::os::unix::fs::OpenOptionsExt as _;
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)
        .with_context(|| format!("cannot write {}", path.display()))?;
    file.write_all(text.as_bytes())
        .with_context(|| format!("cannot write {}", path.display()))?;
    // An existing file keeps its mode through `open`; narrow it too.
    std::fs::set_permissions(path, std::os::unix::fs::PermissionsExt::from_mode(0o600))
        .with_context(|| format!("cannot restrict {} to its owner", path.display()))
}
