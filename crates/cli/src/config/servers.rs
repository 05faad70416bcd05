//! `[[servers]]` of the config file: each upstream's name, transport (a stdio child's
//! argv, env and working directory, or an HTTP URL with headers and optional mutual TLS),
//! tiers, timeout, isolation, spawn mode and protocol. Programs are resolved and TLS files read now,
//! so a missing one is a config error rather than a failure at the first call.
use std::{
    collections::{BTreeMap, BTreeSet},
    path::Path,
    sync::Arc,
    time::Duration,
};

use portcullis_core::{Secret, ServerName, Tier};
use portcullis_gateway::config::{Isolation, ServerConfig, Spawn, UpstreamProtocol, UpstreamTransport};
use portcullis_identity::{BundleSource, Reload, SpiffeId, SvidSource, UpstreamTlsSettings, upstream_client_config};

use super::{
    problems::{Checked, Problems, every},
    raw::{RawServer, RawUpstreamTls},
    workload_api::{Source, WorkloadApiSlot, refuse_files, source},
};

/// How often TLS files (minute-TTL SVIDs, bundles) are checked for changes.
const TLS_RELOAD_POLL: Duration = Duration::from_secs(5);

/// Validates every entry, one result per entry in order (later checks, such as the
/// manifests, skip the entries that failed); names must be unique.
pub fn servers(
    raw: &[RawServer],
    base: &Path,
    vars: &BTreeMap<String, Secret<String>>,
    apis: &mut WorkloadApiSlot,
    p: &mut Problems,
) -> Vec<Checked<ServerConfig>> {
    if raw.is_empty() {
        p.add("servers", "no servers configured; add at least one [[servers]] entry");
    }
    let mut names = BTreeSet::new();
    let mut servers = Vec::new();
    for (i, s) in raw.iter().enumerate() {
        let at = |field: &str| format!("servers[{i}].{field}");
        let name = p.take(at("name"), ServerName::new(&s.name)).and_then(|name| {
            let unique = names.insert(name.clone());
            p.check(
                unique,
                at("name"),
                format!("server name `{name}` is used twice; names must be unique"),
            )?;
            Ok(name)
        });
        servers.push(server(s, name, base, &at, vars, apis, p));
    }
    servers
}

fn server(
    raw: &RawServer,
    name: Checked<ServerName>,
    base: &Path,
    at: &impl Fn(&str) -> String,
    vars: &BTreeMap<String, Secret<String>>,
    apis: &mut WorkloadApiSlot,
    p: &mut Problems,
) -> Checked<ServerConfig> {
    let transport = match (&raw.command, &raw.url) {
        (Some(_), Some(_)) => Err(p.add(at("url"), "set either `command` (stdio) or `url` (HTTP), not both")),
        (None, None) => Err(p.add(at("command"), "set `command` (stdio server) or `url` (HTTP server)")),
        (Some(argv), None) => stdio(raw, argv, base, at, vars, p),
        (None, Some(url)) => http(raw, url, base, at, vars, apis, p),
    };
    let tier = |p: &mut Problems, text: &str, key: String| p.take(key, text.parse::<Tier>());
    let default_tier = tier(p, raw.default_tier.as_deref().unwrap_or("read"), at("default_tier"));
    let tool_tiers: Checked<BTreeMap<String, Tier>> = every(
        raw.tools
            .iter()
            .map(|(tool, t)| Ok((tool.clone(), tier(p, &t.tier, at(&format!("tools.{tool}.tier")))?))),
    );
    let timeout = raw.timeout_secs.unwrap_or(60);
    let timeout_ok = p.check(timeout > 0, at("timeout_secs"), "must be greater than 0");
    let protocol = match raw.protocol.as_deref().unwrap_or("auto") {
        "auto" => Ok(UpstreamProtocol::Auto),
        "legacy" | "2025-11-25" | "2025-06-18" | "2025-03-26" => Ok(UpstreamProtocol::Legacy),
        "modern" | "2026-07-28" => Ok(UpstreamProtocol::Modern),
        other => Err(p.add(
            at("protocol"),
            format!("unknown protocol `{other}`; use auto, legacy or modern"),
        )),
    };
    let pinned_files = super::pinned_files::pinned_files(raw, base, at, p);
    let spawn = match raw.spawn.as_deref().unwrap_or("session") {
        "session" => Ok(Spawn::Session),
        "per-call" if raw.command.is_none() => Err(p.add(
            at("spawn"),
            "`per-call` applies to stdio servers (`command`); HTTP servers get credentials per request",
        )),
        "per-call" if raw.shared => Err(p.add(
            at("spawn"),
            "`per-call` and `shared = true` exclude each other: a per-call child serves one call",
        )),
        "per-call" => Ok(Spawn::PerCall),
        other => Err(p.add(
            at("spawn"),
            format!("unknown value `{other}`; use \"session\" or \"per-call\""),
        )),
    };
    timeout_ok?;
    Ok(ServerConfig {
        name: name?,
        transport: transport?,
        default_tier: default_tier?,
        tool_tiers: tool_tiers?,
        isolation: if raw.shared {
            Isolation::Shared
        } else {
            Isolation::PerSession
        },
        request_timeout: Duration::from_secs(timeout),
        protocol: protocol?,
        pinned_files: pinned_files?,
        spawn: spawn?,
    })
}

/// A stdio server: the program resolved now, the child's environment checked.
fn stdio(
    raw: &RawServer,
    argv: &[String],
    base: &Path,
    at: &impl Fn(&str) -> String,
    vars: &BTreeMap<String, Secret<String>>,
    p: &mut Problems,
) -> Checked<UpstreamTransport> {
    let program = match argv.first().filter(|program| !program.is_empty()) {
        Some(program) => Ok(program),
        None => Err(p.add(at("command"), "is empty; give the program and its arguments as a list")),
    };
    let no_headers = p.check(raw.headers.is_empty(), at("headers"), "only HTTP servers take headers");
    let no_tls = p.check(
        raw.tls.is_none(),
        at("tls"),
        "only https:// servers take tls; a stdio server is a local child process",
    );
    let program = program.and_then(|program| p.take(at("command"), resolve_program(program, base)));
    let env: Checked<BTreeMap<String, Secret<String>>> = every(raw.env.iter().map(|(k, v)| {
        let valid = !(k.is_empty() || k.contains('=') || k.contains('\0') || v.contains('\0'));
        p.check(valid, at(&format!("env.{k}")), "is not a valid environment variable")?;
        let value = p.take(at(&format!("env.{k}")), super::expand::expand(v, vars))?;
        Ok((k.clone(), Secret::new(value)))
    }));
    no_headers?;
    no_tls?;
    let mut argv = argv.to_vec();
    argv[0] = program?;
    Ok(UpstreamTransport::Stdio {
        argv,
        env: env?,
        cwd: raw.cwd.as_ref().map(|d| base.join(d)),
    })
}

/// A Streamable HTTP server, with mutual TLS when it has a `tls` table.
fn http(
    raw: &RawServer,
    url: &str,
    base: &Path,
    at: &impl Fn(&str) -> String,
    vars: &BTreeMap<String, Secret<String>>,
    apis: &mut WorkloadApiSlot,
    p: &mut Problems,
) -> Checked<UpstreamTransport> {
    let scheme = p
        .take(
            at("url"),
            url::Url::parse(url).map_err(|e| format!("`{url}` is not a URL: {e}")),
        )
        .and_then(|parsed| {
            let web = matches!(parsed.scheme(), "http" | "https");
            p.check(web, at("url"), "must be an http:// or https:// URL")?;
            Ok(parsed.scheme().to_owned())
        });
    let no_env = p.check(
        raw.env.is_empty(),
        at("env"),
        "only stdio servers take env; use headers for HTTP servers",
    );
    let tls = match (&raw.tls, &scheme) {
        (None, _) => Ok(None),
        (Some(_), Ok(scheme)) if scheme != "https" => {
            Err(p.add(at("tls"), format!("mutual TLS needs an https:// url, not `{url}`")))
        }
        (Some(tls), _) => upstream_tls(tls, base, &at("tls"), apis, p).map(Some),
    };
    let headers: Checked<Vec<_>> = every(raw.headers.iter().map(|(k, v)| {
        let value = p.take(at(&format!("headers.{k}")), super::expand::expand(v, vars))?;
        Ok((k.clone(), Secret::new(value)))
    }));
    scheme?;
    no_env?;
    let headers = headers?.into_iter().collect();
    Ok(UpstreamTransport::Http {
        url: url.to_owned(),
        headers,
        tls: tls?,
    })
}

/// The rustls client config of a mutual-TLS upstream; its files are read now (a missing
/// or mismatched file is a config error) and re-read when they change. With
/// `source = "workload-api"` the SVID and bundle come from the agent at each handshake.
fn upstream_tls(
    raw: &RawUpstreamTls,
    base: &Path,
    table: &str,
    apis: &mut WorkloadApiSlot,
    p: &mut Problems,
) -> Checked<Arc<rustls::ClientConfig>> {
    let expected_server = p.take(format!("{table}.spiffe_id"), SpiffeId::parse_workload(&raw.spiffe_id));
    let material = match source(raw.source.as_deref(), &format!("{table}.source"), p)? {
        Source::Files => {
            let no_socket = p.check(
                raw.workload_api_socket.is_none(),
                format!("{table}.workload_api_socket"),
                "only applies with source = \"workload-api\"",
            );
            let (Some(ca), Some(cert), Some(key)) = (&raw.ca, &raw.cert, &raw.key) else {
                return Err(p.add(
                    table,
                    "set `ca`, `cert` and `key` (the upstream's trust bundle and the gateway's SVID), \
                     or source = \"workload-api\"",
                ));
            };
            let svid = SvidSource::Files {
                cert_chain: base.join(cert),
                private_key: base.join(key),
            };
            // `ca` is the bundle of the expected upstream's trust domain, and of no other.
            let bundle = |id: &SpiffeId| BundleSource::file(id.trust_domain().clone(), base.join(ca));
            no_socket.and_then(|()| {
                let id = expected_server.as_ref().map_err(|noted| *noted)?;
                Ok((svid, bundle(id)))
            })
        }
        Source::WorkloadApi => {
            let given = [
                ("ca", raw.ca.is_some()),
                ("cert", raw.cert.is_some()),
                ("key", raw.key.is_some()),
            ];
            let no_files = refuse_files(table, &given, p);
            let api = apis.use_for(table, raw.workload_api_socket.as_deref(), None, p);
            no_files
                .and(api)
                .map(|api| (SvidSource::WorkloadApi(api.clone()), BundleSource::WorkloadApi(api)))
        }
    };
    let ((svid, trust_bundle), expected_server) = (material?, expected_server?);
    let settings = UpstreamTlsSettings {
        svid,
        trust_bundle,
        expected_server,
        reload: Reload::Poll(TLS_RELOAD_POLL),
    };
    p.take(table, upstream_client_config(&settings))
}

/// Makes the program an absolute path: relative paths against the config's
/// directory, bare names through the gateway's `PATH` (the child gets no PATH).
fn resolve_program(program: &str, base: &Path) -> Result<String, String> {
    let candidate = if program.contains('/') {
        let p = Path::new(program);
        if p.is_absolute() { p.to_path_buf() } else { base.join(p) }
    } else {
        let path = std::env::var_os("PATH").unwrap_or_default();
        std::env::split_paths(&path)
            .map(|dir| dir.join(program))
            .find(|p| p.is_file())
            .ok_or_else(|| format!("program `{program}` was not found on PATH; give its full path"))?
    };
    if !candidate.is_file() {
        return Err(format!("program `{}` does not exist", candidate.display()));
    }
    Ok(candidate.to_string_lossy().into_owned())
}
