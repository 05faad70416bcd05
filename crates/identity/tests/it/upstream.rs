//! Upstream mTLS: the gateway's client config accepts an upstream only if its SVID names
//! the expected SPIFFE ID, and presents the gateway's own SVID.
use std::time::{Duration, SystemTime};

use portcullis_identity::{BundleSource, Reload, SvidSource, UpstreamTlsSettings, upstream_client_config};

use crate::support::*;

fn upstream_settings(pki: &Pki, expected: &str) -> UpstreamTlsSettings {
    UpstreamTlsSettings {
        svid: SvidSource::Files {
            cert_chain: pki.path("gateway.pem"),
            private_key: pki.path("gateway.key"),
        },
        trust_bundle: BundleSource::file(td(), pki.bundle()),
        expected_server: id(expected),
        reload: Reload::Poll(Duration::from_secs(1)),
    }
}

#[tokio::test]
async fn upstream_must_present_the_expected_spiffe_id() {
    let pki = Pki::new();
    // The upstream: an SVID with no DNS SANs at all, requiring client certificates.
    let (addr, mut rx) = mtls_upstream(&pki).await;
    let gateway = pki.ca.issue(&id("/gateway"), Duration::from_secs(300), &[]).unwrap();
    gateway.write(pki.dir.path(), "gateway").unwrap();

    // The name is not checked: SPIFFE authenticates the ID, so any server name works.
    let good = upstream_client_config(&upstream_settings(&pki, "/upstream")).unwrap();
    let view = connect(addr, good, "upstream.invalid").await;
    assert!(view.got_ok, "{view:?}");
    let peer = rx.recv().await.unwrap().unwrap();
    let seen = policy().peer_workload_id(peer.as_deref(), SystemTime::now()).unwrap();
    assert_eq!(seen, id("/gateway"), "the upstream sees the gateway's SVID");

    let wrong = upstream_client_config(&upstream_settings(&pki, "/other")).unwrap();
    let view = connect(addr, wrong, "upstream.invalid").await;
    assert!(!view.got_ok);
    let error = view.error.unwrap();
    assert!(
        error.contains("UnexpectedPeer") && error.contains("\"/upstream\""),
        "{error}"
    );
    assert!(rx.recv().await.unwrap().is_err());
}
