//! Upstream mutual TLS: the gateway presents its SVID to an HTTPS upstream and accepts
//! only the upstream SPIFFE ID configured in the server's `tls` table. The PKI is made
//! with `portcullis ca`, the upstream is the demo server's HTTPS mode.
use std::time::Duration;

use portcullis_e2e::{
    clients::{self, Revision, call, text},
    pki::{Pki, SvidFiles},
    procs::{GatewayProc, demo_mtls_upstream},
};
use serde_json::json;

const UPSTREAM_ID: &str = "spiffe://example.org/server/demo";

fn mtls_entry(url: &str, pki: &Pki, gateway: &SvidFiles, expected_id: &str) -> String {
    format!(
        "[[servers]]\nname = \"demo\"\nurl = \"{url}\"\ntls = {{ ca = \"{}\", cert = \"{}\", key = \"{}\", spiffe_id = \"{expected_id}\" }}\n",
        pki.bundle.display(),
        gateway.cert.display(),
        gateway.key.display()
    )
}

/// A raw 2025-11-25 `initialize` through the gateway; the answer's body.
async fn initialize_through(gateway_url: &str) -> String {
    let body = json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
        "protocolVersion": "2025-11-25", "capabilities": {},
        "clientInfo": {"name": "e2e", "version": "0"}}});
    let answer = reqwest::Client::new()
        .post(gateway_url)
        .header("accept", "application/json, text/event-stream")
        .json(&body)
        .send();
    let answer = tokio::time::timeout(Duration::from_secs(30), answer)
        .await
        .expect("the gateway answers without hanging")
        .expect("the gateway is reachable");
    answer.text().await.expect("answer body")
}

#[tokio::test]
async fn gateway_presents_its_svid_and_checks_the_upstream_id() {
    let pki = Pki::new();
    let server = pki.issue("server", UPSTREAM_ID, &["127.0.0.1", "localhost"]);
    let gateway_svid = pki.issue("gateway", "spiffe://example.org/gateway", &[]);
    let upstream = demo_mtls_upstream(&server, &pki.bundle);
    let gateway = GatewayProc::start(&mtls_entry(&upstream.url, &pki, &gateway_svid, UPSTREAM_ID));
    for rev in Revision::BOTH {
        let (client, _) = clients::http(&gateway.url, rev).await;
        let echoed = call(&client, "echo", json!({"text": "over mTLS"})).await.unwrap();
        assert!(text(&echoed).contains("over mTLS"), "{rev:?}: {}", text(&echoed));
        client.cancel().await.unwrap();
    }
}

#[tokio::test]
async fn upstream_with_another_spiffe_id_fails_cleanly() {
    let pki = Pki::new();
    let server = pki.issue("server", UPSTREAM_ID, &["127.0.0.1"]);
    let gateway_svid = pki.issue("gateway", "spiffe://example.org/gateway", &[]);
    let upstream = demo_mtls_upstream(&server, &pki.bundle);
    let expected = "spiffe://example.org/server/files";
    let gateway = GatewayProc::start(&mtls_entry(&upstream.url, &pki, &gateway_svid, expected));
    let answer = initialize_through(&gateway.url).await;
    assert!(answer.contains("\"error\""), "{answer}");
    assert!(answer.contains("`demo`"), "the error names the server: {answer}");
    let wanted = format!("upstream presented `{UPSTREAM_ID}` but `{expected}` was expected");
    let logs = gateway.logs_with(&wanted);
    assert!(logs.contains(&wanted), "{logs}");
}

#[tokio::test]
async fn upstream_refuses_a_client_without_a_certificate() {
    let pki = Pki::new();
    let server = pki.issue("server", UPSTREAM_ID, &["127.0.0.1"]);
    let gateway_svid = pki.issue("gateway", "spiffe://example.org/gateway", &[]);
    let upstream = demo_mtls_upstream(&server, &pki.bundle);
    let roots = reqwest::Certificate::from_pem_bundle(&std::fs::read(&pki.bundle).unwrap()).unwrap();
    let probe = |identity: Option<reqwest::Identity>| {
        let mut builder = reqwest::Client::builder().tls_certs_only(roots.clone());
        if let Some(identity) = identity {
            builder = builder.identity(identity);
        }
        let body = json!({"jsonrpc": "2.0", "id": 1, "method": "ping"});
        let request = builder
            .build()
            .unwrap()
            .post(&upstream.url)
            .header("accept", "application/json, text/event-stream")
            .json(&body)
            .send();
        async move {
            tokio::time::timeout(Duration::from_secs(30), request)
                .await
                .expect("no hang")
        }
    };
    // Same trust, no client certificate: the handshake is refused.
    assert!(probe(None).await.is_err(), "an anonymous client must be refused");
    // Control: with the gateway's SVID the same request gets an HTTP answer.
    let mut pem = std::fs::read(&gateway_svid.cert).unwrap();
    pem.extend(std::fs::read(&gateway_svid.key).unwrap());
    let with_svid = probe(Some(reqwest::Identity::from_pem(&pem).unwrap())).await;
    assert!(with_svid.is_ok(), "{with_svid:?}");

    // A gateway configured without `tls` for this server cannot reach it either.
    let plain = format!("[[servers]]\nname = \"demo\"\nurl = \"{}\"\n", upstream.url);
    let gateway = GatewayProc::start(&plain);
    let answer = initialize_through(&gateway.url).await;
    assert!(answer.contains("\"error\""), "{answer}");
}
