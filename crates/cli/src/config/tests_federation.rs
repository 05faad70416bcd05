//! T16 in the config: each client trust bundle is bound to one trust domain (`client_ca`
//! to the gateway's own, `bundles` to federated ones), so a partner's CA can never vouch
//! for our IDs; upstream `tls.ca` is the bundle of the expected SPIFFE ID's trust domain.
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use super::parse;
use portcullis_identity::{BundleSource, TrustDomain};

const SERVER: &str = "[[servers]]\nname = \"files\"\ncommand = [\"/bin/sh\"]\n";

fn front(extra: &str) -> String {
    format!("[listen]\nhttp = \"127.0.0.1:8443\"\n[listen.tls]\ncert = \"g.pem\"\nkey = \"g.key\"\n{extra}\n{SERVER}")
}

fn bound(text: &str) -> BTreeMap<String, PathBuf> {
    let loaded = parse(text, "t.toml", Path::new("/etc/pc")).unwrap_or_else(|e| panic!("{e}\n{text}"));
    let trust = loaded.tls.and_then(|t| t.client_trust).expect("client trust");
    match trust.bundle {
        BundleSource::Files(files) => files.into_iter().map(|(td, p)| (td.to_string(), p)).collect(),
        BundleSource::WorkloadApi(_) => panic!("expected files"),
    }
}

#[test]
fn t16_each_bundle_file_is_bound_to_one_trust_domain() {
    let own = |p: &str| ("example.org".to_string(), PathBuf::from(p));
    let partner = |p: &str| ("partner.org".to_string(), PathBuf::from(p));
    // The old single key: the bundle of our one trust domain.
    let text = front("client_ca = \"ca.pem\"\ntrust_domains = [\"example.org\"]");
    assert_eq!(bound(&text), BTreeMap::from([own("/etc/pc/ca.pem")]));
    // Federated: client_ca is ours, `bundles` names the partner's.
    let text = front(
        "client_ca = \"ca.pem\"\nbundles = { \"partner.org\" = \"partner.pem\" }\ntrust_domains = [\"example.org\", \"partner.org\"]",
    );
    assert_eq!(
        bound(&text),
        BTreeMap::from([own("/etc/pc/ca.pem"), partner("/etc/pc/partner.pem")])
    );
    // Or every trust domain in `bundles`.
    let text = front(
        "bundles = { \"example.org\" = \"ca.pem\", \"partner.org\" = \"p.pem\" }\ntrust_domains = [\"example.org\", \"partner.org\"]",
    );
    assert_eq!(
        bound(&text),
        BTreeMap::from([own("/etc/pc/ca.pem"), partner("/etc/pc/p.pem")])
    );
}

/// Before bundles were bound, one `client_ca` with two trust domains made every CA in it
/// vouch for both: a partner's CA could issue our IDs. Now it is a config error.
#[test]
fn t16_one_client_ca_for_two_trust_domains_is_refused() {
    let text = front("client_ca = \"both.pem\"\ntrust_domains = [\"example.org\", \"partner.org\"]");
    let e = parse(&text, "t.toml", Path::new("/")).expect_err("one file for two trust domains");
    assert_eq!(e.key, "listen.tls.client_ca", "{e}");
    assert!(
        e.reason
            .contains("`example.org`, `partner.org` have no bundle of their own")
            && e.reason.contains("bundles = {"),
        "{e}"
    );
}

#[test]
fn t16_bundle_config_errors_name_key_and_reason() {
    let two = "trust_domains = [\"example.org\", \"partner.org\"]";
    let cases: Vec<(String, &str, &str)> = vec![
        (
            front(
                "client_ca = \"ca.pem\"\nbundles = { \"partner.org\" = \"p.pem\" }\ntrust_domains = [\"example.org\"]",
            ),
            "listen.tls.bundles.\"partner.org\"",
            "`partner.org` is not in trust_domains",
        ),
        (
            front(&format!("bundles = {{ \"example.org\" = \"ca.pem\" }}\n{two}")),
            "listen.tls.bundles",
            "`partner.org` have no trust bundle",
        ),
        (
            front(&format!(
                "client_ca = \"ca.pem\"\nbundles = {{ \"example.org\" = \"a.pem\", \"partner.org\" = \"p.pem\" }}\n{two}"
            )),
            "listen.tls.client_ca",
            "would belong to none",
        ),
        (
            front("bundles = { \"Partner.org\" = \"p.pem\" }\ntrust_domains = [\"example.org\"]"),
            "listen.tls.bundles.\"Partner.org\"",
            "upper case",
        ),
        (
            format!(
                "[listen]\nhttp = \"127.0.0.1:8443\"\n[listen.tls]\nsource = \"workload-api\"\nworkload_api_socket = \"unix:///a.sock\"\ntrust_domains = [\"example.org\"]\nbundles = {{ \"partner.org\" = \"p.pem\" }}\n{SERVER}"
            ),
            "listen.tls.bundles",
            "must be absent",
        ),
        (
            format!(
                "{SERVER}[[servers]]\nname = \"web\"\nurl = \"https://127.0.0.1:9/mcp\"\ntls = {{ ca = \"ca.pem\", cert = \"g.pem\", key = \"g.key\", spiffe_id = \"spiffe://example.org\" }}\n"
            ),
            "servers[1].tls.spiffe_id",
            "the trust domain itself",
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
    // A trust domain's name is checked as such.
    assert!(TrustDomain::new("Partner.org").is_err());
}
