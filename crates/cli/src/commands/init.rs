//! `portcullis init [DIR]`: a working starter config that runs the bundled demo
//! server behind the gateway.
use std::{path::PathBuf, process::ExitCode};

use anyhow::Context;

/// Validity of the SVIDs `init` issues (re-issue with `portcullis ca issue`).
const STARTER_TTL: std::time::Duration = std::time::Duration::from_secs(30 * 24 * 3600);

/// The starter config for `program` (this binary).
pub fn starter_config(program: &str, listen: &str) -> String {
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
tools = {{ lookup_customer = {{ tier = "read-sensitive" }}, send_message = {{ tier = "write" }}, delete_record = {{ tier = "write" }} }}

[policy]
cedar = ["policies/*.cedar"]         # Cedar policies (schema: README "Policy"); checked on change and SIGHUP
require_reason = true                # calls state why: `_meta["io.portcullis/reason"]`, or…
reason_argument = true               # …the `portcullis_reason` argument every tool lists as required (desktop hosts cannot set `_meta`)

[audit]
path = "data/audit"                  # tamper-evident log; `postgres = "postgres://…"` shares one log between replicas
key = "keys/audit.key"               # checkpoint signing key (generated on first start; back it up)
"#
    )
}

pub fn run(dir: Option<PathBuf>, force: bool) -> anyhow::Result<ExitCode> {
    let dir = dir.unwrap_or_else(|| PathBuf::from("."));
    std::fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let path = dir.join("portcullis.toml");
    if path.exists() && !force {
        anyhow::bail!("{} already exists; pass --force to overwrite it", path.display());
    }
    let exe = std::env::current_exe().context("cannot find this program's own path")?;
    let text = starter_config(&exe.to_string_lossy(), "127.0.0.1:8080");
    write_private(&path, &text)?;
    let policies = dir.join("policies");
    std::fs::create_dir_all(&policies).with_context(|| format!("cannot create {}", policies.display()))?;
    let tiers = policies.join("tiers.cedar");
    if !tiers.exists() || force {
        std::fs::write(&tiers, portcullis_policy::DEFAULT_CEDAR_POLICIES)
            .with_context(|| format!("cannot write {}", tiers.display()))?;
        println!(
            "wrote {} (the tier policies: read, read-sensitive, write)",
            tiers.display()
        );
    }
    let pki = crate::commands::ca::starter_pki(&dir, STARTER_TTL)?;
    println!(
        "wrote {} (dev CA), pki/gateway.pem (the gateway's SVID) and {} (an agent SVID, spiffe://example.org/agent/dev), valid 30 days",
        pki.bundle.display(),
        pki.agent_cert.display()
    );
    let key = dir.join("keys/audit.key");
    if !key.exists() {
        crate::audit_open::generate(&key)?;
        println!("wrote {} (audit log signing key, keep it private)", key.display());
    }
    println!("wrote {}", path.display());
    println!(
        "next: portcullis check-config --config {0}\n      portcullis run --config {0}\n      \
         portcullis connect https://127.0.0.1:8080/mcp --cert {1} --key {2} --ca {3}   (a desktop host's command)",
        path.display(),
        pki.agent_cert.display(),
        pki.agent_key.display(),
        pki.bundle.display()
    );
    Ok(ExitCode::SUCCESS)
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
