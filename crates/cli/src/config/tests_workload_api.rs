//! The SPIRE switch of the config: `source = "workload-api"` in `[listen.tls]` and in
//! upstream `tls` tables, its socket default, and the errors for mixed-up tables.
use std::path::Path;
use std::time::Duration;

use super::{ConfigEnv, parse, parse_in};
use portcullis_gateway::config::UpstreamTransport;
use portcullis_identity::{BundleSource, SvidSource};

const SERVER: &str = "[[servers]]\nname = \"files\"\ncommand = [\"/bin/sh\"]\n";
const SOCKET: &str = "unix:///run/spire/agent.sock";

fn front(extra: &str) -> String {
    format!(
        "[listen]\nhttp = \"127.0.0.1:8443\"\n[listen.tls]\nsource = \"workload-api\"\ntrust_domains = [\"example.org\"]\n{extra}\n{SERVER}"
    )
}

fn upstream(tls: &str) -> String {
    format!("[[servers]]\nname = \"web\"\nurl = \"https://127.0.0.1:9/mcp\"\ntls = {tls}\n")
}

fn env(socket: &str) -> ConfigEnv {
    ConfigEnv {
        spiffe_endpoint_socket: Some(socket.to_owned()),
        ..ConfigEnv::default()
    }
}

#[test]
fn front_takes_svid_and_bundle_from_the_workload_api() {
    let text = front(&format!(
        "workload_api_socket = \"{SOCKET}\"\nworkload_api_timeout_secs = 30"
    ));
    let loaded = parse(&text, "t.toml", Path::new("/")).unwrap();
    let tls = loaded.tls.unwrap();
    assert!(matches!(&tls.svid, SvidSource::WorkloadApi(api) if api.endpoint() == SOCKET));
    let trust = tls.client_trust.unwrap();
    assert!(matches!(trust.bundle, BundleSource::WorkloadApi(_)));
    let used = loaded.workload_api.unwrap();
    assert_eq!(used.used_by, ["listen.tls"]);
    assert_eq!(used.startup_timeout, Duration::from_secs(30));
    assert!(!used.api.is_connected(), "parsing never contacts the agent");
    assert!(loaded.gateway.listen.auth.require_workload);
}

#[test]
fn socket_defaults_to_spiffe_endpoint_socket() {
    let loaded = parse_in(&front(""), "t.toml", Path::new("/"), &env("unix:///tmp/env.sock")).unwrap();
    let used = loaded.workload_api.unwrap();
    assert_eq!(used.api.endpoint(), "unix:///tmp/env.sock");
    assert_eq!(used.startup_timeout, super::workload_api::DEFAULT_STARTUP_TIMEOUT);
    // An explicit socket wins over the environment.
    let text = front(&format!("workload_api_socket = \"{SOCKET}\""));
    let loaded = parse_in(&text, "t.toml", Path::new("/"), &env("unix:///tmp/env.sock")).unwrap();
    assert_eq!(loaded.workload_api.unwrap().api.endpoint(), SOCKET);
}

#[test]
fn upstream_and_front_share_one_workload_api() {
    let text = format!(
        "{}{}",
        front(&format!("workload_api_socket = \"{SOCKET}\"")),
        upstream("{ source = \"workload-api\", spiffe_id = \"spiffe://example.org/server/web\" }")
    );
    let loaded = parse(&text, "t.toml", Path::new("/")).unwrap();
    let used = loaded.workload_api.unwrap();
    assert_eq!(used.used_by, ["listen.tls", "servers[1].tls"]);
    match &loaded.gateway.servers[1].transport {
        UpstreamTransport::Http { tls, .. } => assert!(tls.is_some()),
        other => panic!("expected http, got {other:?}"),
    }
    // An upstream alone may use it too (files for the front, or no TLS front at all).
    let alone = format!(
        "{SERVER}{}",
        upstream(&format!(
            "{{ source = \"workload-api\", workload_api_socket = \"{SOCKET}\", spiffe_id = \"spiffe://example.org/s\" }}"
        ))
    );
    let loaded = parse(&alone, "t.toml", Path::new("/")).unwrap();
    assert_eq!(loaded.workload_api.unwrap().used_by, ["servers[1].tls"]);
}

#[test]
fn workload_api_config_errors_name_key_and_reason() {
    let up = |tls: &str| format!("{SERVER}{}", upstream(tls));
    let with_socket = |extra: &str| front(&format!("workload_api_socket = \"{SOCKET}\"\n{extra}"));
    let cases: Vec<(String, &str, &str)> = vec![
        (front(""), "listen.tls.workload_api_socket", "SPIFFE_ENDPOINT_SOCKET"),
        (with_socket("cert = \"g.pem\""), "listen.tls.cert", "must be absent"),
        (with_socket("key = \"g.key\""), "listen.tls.key", "must be absent"),
        (
            with_socket("client_ca = \"b.pem\""),
            "listen.tls.client_ca",
            "must be absent",
        ),
        (
            front("workload_api_socket = \"http://agent\""),
            "listen.tls.workload_api_socket",
            "not a SPIFFE Workload API address",
        ),
        (
            with_socket("workload_api_timeout_secs = 0"),
            "listen.tls.workload_api_timeout_secs",
            "greater than 0",
        ),
        (
            with_socket("").replace("workload-api", "spire"),
            "listen.tls.source",
            "unknown source `spire`",
        ),
        (
            with_socket("").replace("trust_domains = [\"example.org\"]\n", ""),
            "listen.tls.trust_domains",
            "list the trust domains",
        ),
        (
            format!(
                "[listen]\n[listen.tls]\ncert = \"g.pem\"\nkey = \"g.key\"\nworkload_api_socket = \"{SOCKET}\"\n{SERVER}"
            ),
            "listen.tls.workload_api_socket",
            "only applies with source = \"workload-api\"",
        ),
        (
            up("{ source = \"workload-api\", ca = \"ca.pem\", spiffe_id = \"spiffe://example.org/s\" }"),
            "servers[1].tls.ca",
            "must be absent",
        ),
        (
            up("{ source = \"workload-api\", spiffe_id = \"spiffe://example.org/s\" }"),
            "servers[1].tls.workload_api_socket",
            "set `workload_api_socket`",
        ),
        (
            up("{ cert = \"g.pem\", spiffe_id = \"spiffe://example.org/s\" }"),
            "servers[1].tls",
            "set `ca`, `cert` and `key`",
        ),
        (
            up("{ source = \"workload-api\", workload_api_socket = \"unix:///a.sock\", spiffe_id = \"not-spiffe\" }"),
            "servers[1].tls.spiffe_id",
            "",
        ),
        (
            format!(
                "{}{}",
                with_socket(""),
                upstream(
                    "{ source = \"workload-api\", workload_api_socket = \"unix:///other.sock\", spiffe_id = \"spiffe://example.org/s\" }"
                )
            ),
            "servers[1].tls.workload_api_socket",
            "one Workload API",
        ),
    ];
    for (text, key, reason) in cases {
        let e = parse(&text, "bad.toml", Path::new("/")).expect_err(&text);
        assert_eq!(e.key, key, "{e}\nfor:\n{text}");
        assert!(
            e.reason.contains(reason),
            "reason {:?} should contain {reason:?} for:\n{text}",
            e.reason
        );
    }
}
