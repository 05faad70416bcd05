//! Data-driven checks of config validation: each bad config names its key.
use std::path::Path;

use super::parse;
use portcullis_core::Tier;
use portcullis_gateway::config::{Isolation, UpstreamProtocol, UpstreamTransport};

const SH: &str = "/bin/sh";

fn server(extra: &str) -> String {
    format!("[[servers]]\nname = \"files\"\ncommand = [\"{SH}\"]\n{extra}\n")
}

#[test]
fn good_config_is_validated_into_settings() {
    let text = format!(
        "[listen]\nhttp = \"127.0.0.1:8080\"\n\n{}\n[[servers]]\nname = \"web\"\nurl = \"https://example.org/mcp\"\nheaders = {{ Authorization = \"Bearer x\" }}\nshared = true\nprotocol = \"modern\"\n",
        server(
            "env = { API_MODE = \"ro\" }\ndefault_tier = \"read-sensitive\"\ntools = { delete = { tier = \"write\" } }"
        )
    );
    let loaded = parse(&text, "t.toml", Path::new("/")).unwrap();
    let g = loaded.gateway;
    assert_eq!(g.listen.http.unwrap().to_string(), "127.0.0.1:8080");
    assert_eq!(g.servers.len(), 2);
    let files = &g.servers[0];
    assert_eq!(files.tier_of("delete"), Tier::Write);
    assert_eq!(files.tier_of("other"), Tier::ReadSensitive);
    assert_eq!(files.isolation, Isolation::PerSession);
    match &files.transport {
        UpstreamTransport::Stdio { argv, env, .. } => {
            assert_eq!(argv, &vec![SH.to_string()]);
            assert_eq!(env.get("API_MODE").map(|s| s.expose().as_str()), Some("ro"));
        }
        other => panic!("expected stdio, got {other:?}"),
    }
    assert_eq!(g.servers[1].isolation, Isolation::Shared);
    assert_eq!(g.servers[1].protocol, UpstreamProtocol::Modern);
    assert!(loaded.warnings.is_empty());
}

#[test]
fn bare_program_names_resolve_through_path() {
    let loaded = parse(
        "[[servers]]\nname = \"a\"\ncommand = [\"sh\", \"-c\", \"true\"]\n",
        "t.toml",
        Path::new("/"),
    )
    .unwrap();
    let UpstreamTransport::Stdio { argv, .. } = &loaded.gateway.servers[0].transport else {
        panic!("stdio")
    };
    assert!(argv[0].ends_with("/sh") && argv[0].starts_with('/'), "{argv:?}");
}

/// A `tls` table whose files do not exist.
const TLS: &str = "{ ca = \"/no/such/ca.pem\", cert = \"gw.pem\", key = \"gw.key\", spiffe_id = \"spiffe://example.org/server/files\" }";

#[test]
fn upstream_tls_files_resolve_against_the_config_dir() {
    let dir = tempfile::tempdir().unwrap();
    let td = portcullis_identity::TrustDomain::new("example.org").unwrap();
    let ca = portcullis_identity::DevCa::init(&dir.path().join("ca"), td).unwrap();
    let gateway_id = portcullis_identity::SpiffeId::parse("spiffe://example.org/gateway").unwrap();
    let svid = ca.issue(&gateway_id, std::time::Duration::from_secs(600), &[]).unwrap();
    svid.write(dir.path(), "gateway").unwrap();
    let text = format!(
        "[[servers]]\nname = \"files\"\nurl = \"https://127.0.0.1:9/mcp\"\ntls = {}\n",
        "{ ca = \"ca/ca.pem\", cert = \"gateway.pem\", key = \"gateway.key\", spiffe_id = \"spiffe://example.org/server/files\" }"
    );
    let loaded = parse(&text, "t.toml", dir.path()).unwrap();
    match &loaded.gateway.servers[0].transport {
        UpstreamTransport::Http { tls, .. } => assert!(tls.is_some()),
        other => panic!("expected http, got {other:?}"),
    }
}

#[test]
fn bad_configs_name_key_and_reason() {
    let cases: Vec<(String, &str, &str)> = vec![
        ("".into(), "servers", "no servers configured"),
        ("[listen]\nhttp = \"nope\"\n".into(), "listen.http", "not an address"),
        ("[listen]\nbogus = 1\n".into(), "line 2", "unknown field `bogus`"),
        (
            server("default_tier = \"admin\""),
            "servers[0].default_tier",
            "unknown tier `admin`",
        ),
        (
            server("tools = { x = { tier = \"root\" } }"),
            "servers[0].tools.x.tier",
            "unknown tier",
        ),
        (format!("{}{}", server(""), server("")), "servers[1].name", "used twice"),
        (
            "[[servers]]\nname = \"Bad_Name\"\ncommand = [\"/bin/sh\"]\n".into(),
            "servers[0].name",
            "lowercase",
        ),
        (
            "[[servers]]\nname = \"a\"\n".into(),
            "servers[0].command",
            "set `command`",
        ),
        (
            "[[servers]]\nname = \"a\"\ncommand = []\n".into(),
            "servers[0].command",
            "is empty",
        ),
        (
            "[[servers]]\nname = \"a\"\ncommand = [\"/no/such/program\"]\n".into(),
            "servers[0].command",
            "does not exist",
        ),
        (
            "[[servers]]\nname = \"a\"\ncommand = [\"no-such-program-xyz\"]\n".into(),
            "servers[0].command",
            "not found on PATH",
        ),
        (
            "[[servers]]\nname = \"a\"\nurl = \"ftp://x\"\n".into(),
            "servers[0].url",
            "http:// or https://",
        ),
        (
            "[[servers]]\nname = \"a\"\nurl = \"http://x\"\ncommand = [\"/bin/sh\"]\n".into(),
            "servers[0].url",
            "not both",
        ),
        (
            "[[servers]]\nname = \"a\"\nurl = \"http://x\"\nenv = { A = \"b\" }\n".into(),
            "servers[0].env",
            "only stdio",
        ),
        (server("protocol = \"2099\""), "servers[0].protocol", "unknown protocol"),
        (server("timeout_secs = 0"), "servers[0].timeout_secs", "greater than 0"),
        (
            format!("[limits]\nmax_json_depth = 1000\n{}", server("")),
            "limits.max_json_depth",
            "between 2 and 128",
        ),
        ("servers = 3\n".into(), "line 1", "invalid type"),
        (
            server(&format!("tls = {TLS}")),
            "servers[0].tls",
            "only https:// servers take tls",
        ),
        (
            format!("[[servers]]\nname = \"a\"\nurl = \"http://x\"\ntls = {TLS}\n"),
            "servers[0].tls",
            "needs an https:// url",
        ),
        (
            format!(
                "[[servers]]\nname = \"a\"\nurl = \"https://x\"\ntls = {}\n",
                TLS.replace("spiffe://", "http://")
            ),
            "servers[0].tls",
            "`http://example.org/server/files` is not a spiffe id",
        ),
        (
            format!("[[servers]]\nname = \"a\"\nurl = \"https://x\"\ntls = {TLS}\n"),
            "servers[0].tls",
            "cannot read PEM file `/no/such/ca.pem`",
        ),
        (
            "[[servers]]\nname = \"a\"\nurl = \"https://x\"\ntls = { ca = \"ca.pem\" }\n".into(),
            "line 4",
            "missing field",
        ),
        (
            format!("[listen]\nrequire = [\"workload\"]\n{}", server("")),
            "listen.require",
            "needs client certificates",
        ),
        (
            format!("[listen]\nrequire = [\"user\"]\n{}", server("")),
            "listen.require",
            "add a [listen.oauth] table",
        ),
        (
            format!("[listen]\nrequire = [\"root\"]\n{}", server("")),
            "listen.require",
            "unknown credential `root`",
        ),
        (
            format!("[listen.tls]\ncert = \"g.pem\"\n{}", server("")),
            "listen.tls",
            "set both `cert`",
        ),
        (
            format!(
                "[listen.tls]\ncert = \"g.pem\"\nkey = \"g.key\"\nclient_ca = \"b.pem\"\n{}",
                server("")
            ),
            "listen.tls.trust_domains",
            "list the trust domains",
        ),
        (
            format!(
                "[listen.tls]\ncert = \"g.pem\"\nkey = \"g.key\"\nrequire_client_cert = true\n{}",
                server("")
            ),
            "listen.tls.require_client_cert",
            "need `client_ca`",
        ),
        (
            format!(
                "[listen.oauth]\nissuer = \"https://a\"\njwks_file = \"k.json\"\n{}",
                server("")
            ),
            "listen.oauth.resource",
            "resource URI",
        ),
        (
            format!(
                "[listen.oauth]\nissuer = \"https://a\"\nresource = \"https://g/mcp\"\njwks_file = \"k.json\"\njwks_url = \"https://a/k\"\n{}",
                server("")
            ),
            "listen.oauth",
            "exactly one of `jwks_url` and `jwks_file`",
        ),
        (
            format!(
                "[listen.oauth]\nissuer = \"https://a\"\nresource = \"https://g/mcp\"\njwks_file = \"k.json\"\nalgorithms = [\"HS256\"]\n{}",
                server("")
            ),
            "listen.oauth.algorithms",
            "`HS256` is not an accepted algorithm",
        ),
    ];
    for (text, key, reason) in cases {
        let e = parse(&text, "bad.toml", Path::new("/")).expect_err(&text);
        assert_eq!(e.file, "bad.toml");
        assert!(
            e.key.contains(key),
            "key {:?} should contain {key:?} for:\n{text}",
            e.key
        );
        assert!(
            e.reason.contains(reason),
            "reason {:?} should contain {reason:?} for:\n{text}",
            e.reason
        );
    }
}

#[test]
fn identity_settings_default_from_what_is_configured() {
    let text = format!(
        "[listen]\nhttp = \"127.0.0.1:8443\"\n[listen.tls]\ncert = \"g.pem\"\nkey = \"g.key\"\nclient_ca = \"b.pem\"\ntrust_domains = [\"example.org\"]\n[listen.oauth]\nissuer = \"https://a\"\nresource = \"https://g/mcp\"\njwks_file = \"k.json\"\nrequired_scopes = [\"mcp:tools\"]\n{}",
        server("")
    );
    let loaded = parse(&text, "t.toml", Path::new("/etc/pc")).unwrap();
    let tls = loaded.tls.expect("tls settings");
    assert!(
        matches!(&tls.svid, portcullis_identity::SvidSource::Files { cert_chain, .. } if cert_chain == Path::new("/etc/pc/g.pem"))
    );
    let auth = &loaded.gateway.listen.auth;
    assert!(auth.require_workload && auth.require_user);
    assert!(auth.svid.is_some());
    let bearer = auth.bearer.as_ref().unwrap();
    assert_eq!(bearer.required_scopes, ["mcp:tools"]);
    assert_eq!(bearer.resource.resource.as_str(), "https://g/mcp");
    assert_eq!(bearer.resource.authorization_servers[0].as_str(), "https://a/");

    let optional = text.replace("[listen.tls]", "[listen.tls]\nrequire_client_cert = false");
    let optional = optional.replace("[listen]\n", "[listen]\nrequire = []\n");
    let loaded = parse(&optional, "t.toml", Path::new("/")).unwrap();
    let auth = &loaded.gateway.listen.auth;
    assert!(!auth.require_workload && !auth.require_user);
}

#[test]
fn unenforced_or_disabled_controls_are_reported() {
    let text = format!("[audit]\nenabled = false\n{}", server(""));
    let loaded = parse(&text, "t.toml", Path::new("/")).unwrap();
    assert_eq!(loaded.warnings.len(), 1, "{:?}", loaded.warnings);
    assert!(loaded.audit.is_none());
}

#[test]
fn policy_settings() {
    let loaded = parse(&server(""), "t.toml", Path::new("/etc/pc")).unwrap();
    assert!(loaded.policy.patterns.is_empty(), "built-in tier policies by default");
    assert!(loaded.policy.decision.require_reason);
    let text = format!(
        "[policy]\nengine = \"rego\"\nrego = [\"p/*.rego\"]\nrequire_reason = false\n{}",
        server("")
    );
    let loaded = parse(&text, "t.toml", Path::new("/etc/pc")).unwrap();
    assert_eq!(loaded.policy.patterns, vec!["/etc/pc/p/*.rego".to_string()]);
    assert!(!loaded.policy.decision.require_reason);
    for (text, key) in [
        ("[policy]\nengine = \"opa\"\n", "policy.engine"),
        ("[policy]\ncedar = [\"a\"]\nrego = [\"b\"]\n", "policy.cedar"),
        ("[policy]\ncedar = []\n", "policy.cedar"),
    ] {
        let e = parse(&format!("{text}{}", server("")), "t.toml", Path::new("/")).expect_err(text);
        assert_eq!(e.key, key, "{e}");
    }
}

#[test]
fn audit_defaults_and_stores() {
    let loaded = parse(&server(""), "t.toml", Path::new("/etc/pc")).unwrap();
    let audit = loaded.audit.unwrap();
    assert_eq!(audit.key, Path::new("/etc/pc/keys/audit.key"));
    assert!(
        matches!(audit.store, super::AuditStoreSettings::File { ref dir } if dir == Path::new("/etc/pc/data/audit"))
    );
    let pg = format!(
        "[audit]\npostgres = \"postgres://u@h/db\"\nschema = \"gw_audit\"\n{}",
        server("")
    );
    let loaded = parse(&pg, "t.toml", Path::new("/")).unwrap();
    assert!(
        matches!(loaded.audit.unwrap().store, super::AuditStoreSettings::Postgres { ref schema, .. } if schema == "gw_audit")
    );
    for (text, key) in [
        ("[audit]\npostgres = \"mysql://x\"\n", "audit.postgres"),
        (
            "[audit]\npostgres = \"postgres://x\"\nschema = \"Bad-Schema\"\n",
            "audit.schema",
        ),
        ("[audit]\npath = \"a\"\npostgres = \"postgres://x\"\n", "audit.path"),
        ("[audit]\ncheckpoint_interval_secs = 0\n", "audit.checkpoint"),
    ] {
        let e = parse(&format!("{text}{}", server("")), "t.toml", Path::new("/")).expect_err(text);
        assert!(e.key.starts_with(key), "{key}: {e}");
    }
}

/// `[approvals]` and `[admin]` problems name their key (T25: an approver key that cannot be
/// read stops the start, as a bad config).
#[test]
fn approvals_config_errors_name_key_and_reason() {
    let cases = [
        (
            "[[approvals.approvers]]\nname = \"bob\"\nkey = \"/no/such/bob.pub\"\n",
            "approvals.approvers[0].key",
        ),
        (
            "[[approvals.approvers]]\nname = \"bob\"\n",
            "approvals.approvers[0].key",
        ),
        (
            "[[approvals.approvers]]\nname = \"bob\"\nspiffe_id = \"bob\"\n",
            "approvals.approvers[0].spiffe_id",
        ),
        ("[approvals]\nwait_secs = 1000\nttl_secs = 10\n", "approvals.wait_secs"),
        ("[approvals]\nrequired = { \"delete\" = 2 }\n", "approvals.required"),
        (
            "[approvals]\nuser_may_approve = [\"admin\"]\n",
            "approvals.user_may_approve[0]",
        ),
        ("[admin]\nlisten = \"0.0.0.0:9443\"\n", "admin.listen"),
        ("[admin]\nlisten = \"nowhere\"\n", "admin.listen"),
    ];
    for (text, key) in cases {
        let e = parse(&format!("{text}{}", server("")), "t.toml", Path::new("/")).expect_err(text);
        assert!(e.to_string().contains(key), "{text}: {e}");
    }
}

#[test]
fn host_signatures_are_batch_verified_only_when_switched_on() {
    let dir = tempfile::tempdir().unwrap();
    portcullis_audit::LogSigner::from_seed([4; 32])
        .public_key()
        .save(&dir.path().join("host.pub"))
        .unwrap();
    let host = "[[attestation.hosts]]\nworkload = \"spiffe://example.org/host\"\nkey = \"host.pub\"\n";
    for (attestation, batched) in [
        (format!("[attestation]\n{host}"), false),
        (format!("[attestation]\nbatch_verify = true\n{host}"), true),
        (format!("[attestation]\nbatch_verify = false\n{host}"), false),
        // No host keys: nothing to verify, so no batcher either.
        ("[attestation]\nbatch_verify = true\n".to_owned(), false),
    ] {
        let text = format!("{attestation}\n{}", server(""));
        let loaded = parse(&text, "t.toml", dir.path()).unwrap();
        assert_eq!(loaded.gateway.attest.batcher.is_some(), batched, "{attestation}");
    }
}
