//! `[broker]` and `[[credentials]]` of the config file: the sources per-call credentials
//! are minted from (a PostgreSQL role, a gateway-signed JWT, an RFC 8693 token exchange, a
//! static secret) and the rules saying which calls get one and how it is delivered. Secrets
//! come from the environment or files, never from the config text; keys are read now, so a
//! missing one is a config error rather than a failure at the first call. Which server a
//! rule names must match its delivery: a header for HTTP servers, an environment variable
//! for stdio servers started per call.
use std::{collections::BTreeMap, path::Path, sync::Arc, time::Duration};

use portcullis_broker::{
    Broker, Delivery, JwtConfig, Per, PostgresRoleConfig, Privilege, Rule, SchemaGrant, SecretConfig, SecretFrom,
    SourceConfig, SourceKind, TokenExchangeConfig,
};
use portcullis_core::{Secret, Tier};
use portcullis_gateway::config::{CredentialsConfig, ServerConfig, Spawn, UpstreamTransport};

use super::{
    problems::{Checked, Problem, Problems, every},
    raw::{RawBroker, RawCredential, RawSource},
};

/// The value of a secret that could not be read (see [`secret_value`]).
const UNRESOLVED: &str = "postgres://unresolved@unresolved.invalid:5432/unresolved";

/// Default lifetime of a minted credential.
pub const DEFAULT_TTL_SECS: u64 = 300;
/// Default interval of the sweeper that drops expired leftovers.
pub const DEFAULT_SWEEP_INTERVAL_SECS: u64 = 60;

/// Validates `[broker]` and `[[credentials]]` against the servers.
pub fn credentials(
    broker: &RawBroker,
    rules: &[RawCredential],
    servers: &[Checked<ServerConfig>],
    base: &Path,
    vars: &BTreeMap<String, Secret<String>>,
    later: &mut Vec<Problem>,
    p: &mut Problems,
) -> Checked<CredentialsConfig> {
    let interval = broker.sweep_interval_secs.unwrap_or(DEFAULT_SWEEP_INTERVAL_SECS);
    let interval_ok = p.check(interval > 0, "broker.sweep_interval_secs", "must be greater than 0");
    let sources: Checked<Vec<SourceConfig>> = every(
        broker
            .sources
            .iter()
            .map(|(name, raw)| source(name, raw, base, vars, later, p)),
    );
    let rules: Checked<Vec<Rule>> = every(
        rules
            .iter()
            .enumerate()
            .map(|(i, raw)| rule(i, raw, broker, servers, p)),
    );
    let (sources, rules) = (sources?, rules?);
    interval_ok?;
    let broker = if rules.is_empty() {
        None
    } else {
        Some(Arc::new(p.take("credentials", Broker::new(rules, sources))?))
    };
    Ok(CredentialsConfig {
        broker,
        sweep_interval: Duration::from_secs(interval),
    })
}

/// The keys each kind takes (beyond `kind`).
fn keys_of(kind: &str) -> Option<&'static [&'static str]> {
    Some(match kind {
        "postgres-role" => &[
            "admin_url_env",
            "admin_url_file",
            "connect_url",
            "prefix",
            "ttl_secs",
            "per",
            "grants",
            "connection_limit",
        ],
        "jwt" => &["key", "issuer", "audience", "ttl_secs"],
        "token-exchange" => &[
            "token_endpoint",
            "client_id",
            "client_secret_env",
            "client_secret_file",
            "audience",
            "scope",
            "timeout_secs",
        ],
        "secret" => &["file", "env"],
        _ => return None,
    })
}

/// The keys a raw source has set.
fn set_keys(raw: &RawSource) -> Vec<&'static str> {
    let set = [
        ("admin_url_env", raw.admin_url_env.is_some()),
        ("admin_url_file", raw.admin_url_file.is_some()),
        ("connect_url", raw.connect_url.is_some()),
        ("prefix", raw.prefix.is_some()),
        ("ttl_secs", raw.ttl_secs.is_some()),
        ("per", raw.per.is_some()),
        ("grants", raw.grants.is_some()),
        ("connection_limit", raw.connection_limit.is_some()),
        ("key", raw.key.is_some()),
        ("issuer", raw.issuer.is_some()),
        ("audience", raw.audience.is_some()),
        ("token_endpoint", raw.token_endpoint.is_some()),
        ("client_id", raw.client_id.is_some()),
        ("client_secret_env", raw.client_secret_env.is_some()),
        ("client_secret_file", raw.client_secret_file.is_some()),
        ("scope", raw.scope.is_some()),
        ("timeout_secs", raw.timeout_secs.is_some()),
        ("file", raw.file.is_some()),
        ("env", raw.env.is_some()),
    ];
    set.into_iter().filter(|(_, on)| *on).map(|(k, _)| k).collect()
}

/// One `[broker.sources.NAME]`.
fn source(
    name: &str,
    raw: &RawSource,
    base: &Path,
    vars: &BTreeMap<String, Secret<String>>,
    later: &mut Vec<Problem>,
    p: &mut Problems,
) -> Checked<SourceConfig> {
    let at = |key: &str| format!("broker.sources.{name}.{key}");
    let Some(allowed) = keys_of(&raw.kind) else {
        return Err(p.add(
            at("kind"),
            format!(
                "unknown kind `{}`; use postgres-role, jwt, token-exchange or secret",
                raw.kind
            ),
        ));
    };
    let mut ok = Ok(());
    for key in set_keys(raw).into_iter().filter(|k| !allowed.contains(k)) {
        ok = ok.and(Err(
            p.add(at(key), format!("does not apply to a `{}` source; remove it", raw.kind))
        ));
    }
    let ttl = Duration::from_secs(raw.ttl_secs.unwrap_or(DEFAULT_TTL_SECS));
    ok = ok.and(p.check(!ttl.is_zero(), at("ttl_secs"), "must be greater than 0"));
    let kind = match raw.kind.as_str() {
        "postgres-role" => postgres_role(raw, ttl, base, vars, &at, later, p).map(SourceKind::PostgresRole),
        "jwt" => jwt(raw, ttl, base, &at, p).map(SourceKind::Jwt),
        "token-exchange" => token_exchange(raw, base, vars, &at, later, p).map(SourceKind::TokenExchange),
        _ => secret(raw, base, vars, &at, later, p).map(SourceKind::Secret),
    };
    ok?;
    Ok(SourceConfig {
        name: name.to_owned(),
        kind: kind?,
    })
}

/// A secret named by `<what>_env` or `<what>_file` (exactly one), read now. One that cannot
/// be read goes on `later`: commands that only read the config (audit, approvals, policy)
/// work without the gateway's secrets; serving refuses to start (`ready_to_serve`).
fn secret_value(
    named: (Option<&String>, Option<&std::path::PathBuf>),
    what: &str,
    base: &Path,
    vars: &BTreeMap<String, Secret<String>>,
    at: &impl Fn(&str) -> String,
    later: &mut Vec<Problem>,
    p: &mut Problems,
) -> Checked<Option<Secret<String>>> {
    // Stands in for what could not be read: well-formed, and useless if it were ever used
    // (nothing serves with unresolved secrets; a mint with it fails, which denies the call).
    let mut unresolved = |key: String, reason: String| {
        later.push(Problem { key, reason });
        Ok(Some(Secret::new(UNRESOLVED.to_owned())))
    };
    match named {
        (Some(_), Some(_)) => Err(p.add(
            at(&format!("{what}_env")),
            format!("set either `{what}_env` or `{what}_file`, not both"),
        )),
        (Some(var), None) => match vars.get(var) {
            Some(value) if !value.expose().trim().is_empty() => Ok(Some(Secret::new(value.expose().trim().to_owned()))),
            _ => unresolved(
                at(&format!("{what}_env")),
                format!(
                    "environment variable `{var}` is not set (or empty) in the gateway's environment; export it before starting"
                ),
            ),
        },
        (None, Some(path)) => {
            let path = base.join(path);
            match std::fs::read_to_string(&path) {
                Ok(text) if !text.trim().is_empty() => Ok(Some(Secret::new(text.trim().to_owned()))),
                Ok(_) => unresolved(at(&format!("{what}_file")), format!("`{}` is empty", path.display())),
                Err(e) => unresolved(
                    at(&format!("{what}_file")),
                    format!("cannot read `{}`: {e}", path.display()),
                ),
            }
        }
        (None, None) => Ok(None),
    }
}

fn postgres_role(
    raw: &RawSource,
    ttl: Duration,
    base: &Path,
    vars: &BTreeMap<String, Secret<String>>,
    at: &impl Fn(&str) -> String,
    later: &mut Vec<Problem>,
    p: &mut Problems,
) -> Checked<PostgresRoleConfig> {
    let admin_url = secret_value(
        (raw.admin_url_env.as_ref(), raw.admin_url_file.as_ref()),
        "admin_url",
        base,
        vars,
        at,
        later,
        p,
    )
    .and_then(|url| {
        url.ok_or_else(|| {
            p.add(
                at("admin_url_env"),
                "set `admin_url_env` (an environment variable) or `admin_url_file` holding the admin connection string; never the string itself",
            )
        })
    });
    let connect_url = match &raw.connect_url {
        Some(url) if url.contains("{user}") && url.contains("{password}") => Ok(url.clone()),
        Some(_) => Err(p.add(
            at("connect_url"),
            "must contain `{user}` and `{password}`, e.g. \"postgres://{user}:{password}@127.0.0.1:5432/app\"",
        )),
        None => Err(p.add(
            at("connect_url"),
            "set the connection string servers get, with `{user}` and `{password}` placeholders",
        )),
    };
    let per = match raw.per.as_deref().unwrap_or("call") {
        "call" => Ok(Per::Call),
        "session" => Ok(Per::Session),
        other => Err(p.add(
            at("per"),
            format!("unknown value `{other}`; use \"call\" or \"session\""),
        )),
    };
    let grants: Checked<Vec<SchemaGrant>> = every(raw.grants.iter().flatten().enumerate().map(|(i, g)| {
        let privileges: Checked<Vec<Privilege>> =
            every(
                g.privileges
                    .iter()
                    .map(|name| match name.to_ascii_lowercase().as_str() {
                        "select" => Ok(Privilege::Select),
                        "insert" => Ok(Privilege::Insert),
                        "update" => Ok(Privilege::Update),
                        "delete" => Ok(Privilege::Delete),
                        _ => Err(p.add(
                            at(&format!("grants[{i}].privileges")),
                            format!("unknown privilege `{name}`; use select, insert, update or delete"),
                        )),
                    }),
            );
        Ok(SchemaGrant {
            schema: g.schema.clone(),
            privileges: privileges?,
        })
    }));
    let grants_given = p.check(
        raw.grants.as_ref().is_some_and(|g| !g.is_empty()),
        at("grants"),
        "name what the role may do, e.g. grants = [{ schema = \"sales\", privileges = [\"select\"] }]",
    );
    grants_given?;
    Ok(PostgresRoleConfig {
        admin_url: admin_url?,
        connect_url: connect_url?,
        prefix: raw.prefix.clone().unwrap_or_else(|| "portcullis_".to_owned()),
        ttl,
        per: per?,
        grants: grants?,
        connection_limit: raw.connection_limit.unwrap_or(2),
    })
}

fn jwt(
    raw: &RawSource,
    ttl: Duration,
    base: &Path,
    at: &impl Fn(&str) -> String,
    p: &mut Problems,
) -> Checked<JwtConfig> {
    let key = match &raw.key {
        Some(path) => p
            .take(at("key"), portcullis_audit::LogSigner::load(&base.join(path)))
            .map(|signer| (signer.signing_key().clone(), signer.key_id().to_string())),
        None => Err(p.add(
            at("key"),
            "set the Ed25519 key file tokens are signed with (`portcullis init` writes keys in this format)",
        )),
    };
    let (key, kid) = key?;
    Ok(JwtConfig {
        issuer: raw.issuer.clone().unwrap_or_else(|| "portcullis".to_owned()),
        audience: raw.audience.clone(),
        ttl,
        key,
        kid,
    })
}

fn token_exchange(
    raw: &RawSource,
    base: &Path,
    vars: &BTreeMap<String, Secret<String>>,
    at: &impl Fn(&str) -> String,
    later: &mut Vec<Problem>,
    p: &mut Problems,
) -> Checked<TokenExchangeConfig> {
    let endpoint = match &raw.token_endpoint {
        Some(url)
            if url.starts_with("https://")
                || url.starts_with("http://127.0.0.1")
                || url.starts_with("http://localhost") =>
        {
            Ok(url.clone())
        }
        Some(_) => Err(p.add(
            at("token_endpoint"),
            "must be an https:// URL (plain http only on loopback)",
        )),
        None => Err(p.add(at("token_endpoint"), "set the authorization server's token endpoint")),
    };
    let client_id = raw.client_id.clone().ok_or_else(|| {
        p.add(
            at("client_id"),
            "set the gateway's client id at the authorization server",
        )
    });
    let client_secret = secret_value(
        (raw.client_secret_env.as_ref(), raw.client_secret_file.as_ref()),
        "client_secret",
        base,
        vars,
        at,
        later,
        p,
    );
    let timeout = raw.timeout_secs.unwrap_or(5);
    let timeout_ok = p.check(timeout > 0, at("timeout_secs"), "must be greater than 0");
    timeout_ok?;
    Ok(TokenExchangeConfig {
        token_endpoint: endpoint?,
        client_id: client_id?,
        client_secret: client_secret?,
        audience: raw.audience.clone(),
        scope: raw.scope.clone(),
        timeout: Duration::from_secs(timeout),
    })
}

fn secret(
    raw: &RawSource,
    base: &Path,
    vars: &BTreeMap<String, Secret<String>>,
    at: &impl Fn(&str) -> String,
    later: &mut Vec<Problem>,
    p: &mut Problems,
) -> Checked<SecretConfig> {
    let from = match (&raw.file, &raw.env) {
        (Some(_), Some(_)) => Err(p.add(at("file"), "set either `file` or `env`, not both")),
        (Some(path), None) => Ok(SecretFrom::File(base.join(path))),
        (None, Some(var)) => match vars.get(var) {
            Some(value) => Ok(SecretFrom::Env {
                var: var.clone(),
                value: value.clone(),
            }),
            None => {
                later.push(Problem {
                    key: at("env"),
                    reason: format!("environment variable `{var}` is not set in the gateway's environment; export it before starting"),
                });
                Ok(SecretFrom::Env {
                    var: var.clone(),
                    value: Secret::new(String::new()),
                })
            }
        },
        (None, None) => Err(p.add(
            at("file"),
            "set `file` (read at each call) or `env` (a variable of the gateway's environment)",
        )),
    };
    Ok(SecretConfig { from: from? })
}

/// One `[[credentials]]` rule, checked against its server and source.
fn rule(
    i: usize,
    raw: &RawCredential,
    broker: &RawBroker,
    servers: &[Checked<ServerConfig>],
    p: &mut Problems,
) -> Checked<Rule> {
    let at = |key: &str| format!("credentials[{i}].{key}");
    let mut ok = p.check(
        !raw.id.trim().is_empty(),
        at("id"),
        "must name the rule (it is recorded with every grant)",
    );
    ok = ok.and(p.check(
        broker.sources.contains_key(&raw.source),
        at("source"),
        format!(
            "no source `{}`; define it as [broker.sources.{}]",
            raw.source, raw.source
        ),
    ));
    let server = servers.iter().flatten().find(|s| s.name.as_str() == raw.server);
    let known = p.check(
        server.is_some() || servers.iter().any(Result::is_err),
        at("server"),
        format!("no server named `{}`", raw.server),
    );
    let delivery = match (&raw.env, &raw.header) {
        (Some(_), Some(_)) => Err(p.add(at("env"), "set either `env` (stdio) or `header` (HTTP), not both")),
        (None, None) => Err(p.add(
            at("header"),
            "say how the server gets it: `header = \"Authorization\"` (HTTP) or `env = \"VAR\"` (stdio, spawn = \"per-call\")",
        )),
        (Some(var), None) => {
            let stdio_per_call = server.is_none_or(|s| {
                matches!(s.transport, UpstreamTransport::Stdio { .. }) && s.spawn == Spawn::PerCall
            });
            let prefix_ok = p.check(raw.prefix.is_none(), at("prefix"), "applies to `header` delivery only");
            p.check(
                stdio_per_call,
                at("env"),
                format!(
                    "delivery by environment needs a stdio server started per call: set `spawn = \"per-call\"` on server `{}` (a child started before the call cannot receive the call's credential)",
                    raw.server
                ),
            )
            .and(prefix_ok)
            .map(|()| Delivery::Env { var: var.clone() })
        }
        (None, Some(name)) => {
            let http = server.is_none_or(|s| matches!(s.transport, UpstreamTransport::Http { .. }));
            let valid = reqwest::header::HeaderName::from_bytes(name.as_bytes()).is_ok();
            p.check(http, at("header"), format!("server `{}` is a stdio server: deliver by `env`", raw.server))
                .and(p.check(valid, at("header"), format!("`{name}` is not a valid HTTP header name")))
                .map(|()| Delivery::Header {
                    name: name.clone(),
                    prefix: raw.prefix.clone().unwrap_or_default(),
                })
        }
    };
    let tiers: Checked<Vec<Tier>> = every(
        raw.tiers
            .iter()
            .enumerate()
            .map(|(n, t)| p.take(at(&format!("tiers[{n}]")), t.parse::<Tier>())),
    );
    let (delivery, tiers) = (delivery?, tiers?);
    ok?;
    known?;
    Ok(Rule {
        id: raw.id.clone(),
        server: raw.server.clone(),
        tools: raw.tools.clone(),
        tiers,
        workloads: raw.workloads.clone(),
        users: raw.users.clone(),
        source: raw.source.clone(),
        delivery,
    })
}
