//! `portcullis connect`: a desktop host launches the stdio bridge, which relays to a
//! gateway's Streamable HTTP front (plain HTTP here; the bridge's mutual-TLS side is checked
//! against the demo server's HTTPS mode, and against the gateway's TLS front in `cli`).

use portcullis_e2e::{
    clients::{self, Revision, call, eventually, text},
    demo_server_entry,
    pki::Pki,
    procs::{GatewayProc, bridge_once, demo_mtls_upstream, free_port},
};
use serde_json::json;

#[tokio::test]
async fn host_reaches_the_gateway_through_the_bridge_in_both_revisions() {
    let gateway = GatewayProc::start(&demo_server_entry("demo", ""));
    for rev in Revision::BOTH {
        let (client, rec) = clients::connect_bridge(&gateway.url, &[], rev).await;
        let tools = clients::tool_names(&client).await;
        assert!(tools.contains(&"echo".to_string()), "{rev:?}: {tools:?}");
        let echoed = call(&client, "echo", json!({"text": "bridged"})).await.unwrap();
        assert!(text(&echoed).contains("bridged"), "{rev:?}: {}", text(&echoed));
        if rev == Revision::Legacy {
            // Server-to-client requests and notifications travel back over the bridge.
            let sampled = call(&client, "sample", json!({"prompt": "hi"})).await.unwrap();
            assert!(text(&sampled).contains("sampled through the gateway"));
            call(&client, "log", json!({"message": "m"})).await.unwrap();
            eventually("log", || !rec.logs.lock().unwrap().is_empty()).await;
        }
        client.cancel().await.unwrap();
    }
}

const INITIALIZE: &str = "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"initialize\",\"params\":{\"protocolVersion\":\"2025-11-25\",\"capabilities\":{},\"clientInfo\":{\"name\":\"e2e\",\"version\":\"0\"}}}\n";

/// The bridge's TLS side, against the demo server's mTLS mode directly (the gateway's own
/// TLS front is not in this build): host-name and SPIFFE-ID server checks, and failures.
#[tokio::test]
async fn bridge_presents_its_svid_and_checks_the_server() {
    let pki = Pki::new();
    let server = pki.issue("server", "spiffe://example.org/server/demo", &["127.0.0.1"]);
    let agent = pki.issue("agent", "spiffe://example.org/agent/x", &[]);
    let upstream = demo_mtls_upstream(&server, &pki.bundle);
    let (cert, key, ca) = (
        agent.cert.to_str().unwrap(),
        agent.key.to_str().unwrap(),
        pki.bundle.to_str().unwrap().to_owned(),
    );
    let tls = ["--cert", cert, "--key", key, "--ca", &ca];
    let spiffe = [&tls[..], &["--server-spiffe-id", "spiffe://example.org/server/demo"]].concat();
    for flags in [&tls[..], &spiffe[..]] {
        let (client, _) = clients::connect_bridge(&upstream.url, flags, Revision::Legacy).await;
        let echoed = call(&client, "echo", json!({"text": "mtls bridge"})).await.unwrap();
        assert!(text(&echoed).contains("mtls bridge"), "{flags:?}");
        client.cancel().await.unwrap();
    }

    // Another server id, or no client certificate: an error answer, no hang, exit 0.
    let wrong = [&tls[..], &["--server-spiffe-id", "spiffe://example.org/server/files"]].concat();
    let (status, answers, err) = bridge_once(&[&[upstream.url.as_str()], &wrong[..]].concat(), INITIALIZE);
    assert!(status.success(), "{err}");
    assert_eq!(answers.len(), 1, "{answers:?}");
    assert_eq!(answers[0]["error"]["code"], -32010, "{answers:?}");
    assert!(err.contains("could not be reached or refused"), "{err}");
    let (status, answers, err) = bridge_once(&[upstream.url.as_str(), "--ca", &ca], INITIALIZE);
    assert!(status.success(), "{err}");
    assert_eq!(answers[0]["error"]["code"], -32010, "{answers:?}");
}

#[test]
fn unreachable_gateway_answers_with_an_error_and_eof_exits_zero() {
    let url = format!("http://127.0.0.1:{}/mcp", free_port());
    let (status, answers, err) = bridge_once(
        &[&url],
        "{\"jsonrpc\":\"2.0\",\"id\":7,\"method\":\"ping\"}\nnot json\n",
    );
    assert!(status.success(), "{status:?}\n{err}");
    let out = format!("{answers:?}");
    let ping = answers.iter().find(|a| a["id"] == 7).expect("an answer to the ping");
    assert!(
        ping["error"]["message"]
            .as_str()
            .unwrap()
            .contains("Connection refused"),
        "{ping}"
    );
    assert!(answers.iter().any(|a| a["error"]["code"] == -32700), "{out}");
    assert!(err.contains("could not be reached"), "{err}");
    assert!(err.contains("plain HTTP"), "{err}");
}

/// TLS failures in words: `connect` checks its own certificate first (expired: stops with
/// the time; issued outside `--ca`: a warning), and a refused handshake's alert is
/// translated (no certificate, a certificate from another CA, a key that does not belong to
/// the certificate); the gateway logs a handshake refused for want of a client certificate.
#[test]
fn connect_says_why_tls_fails_in_plain_words() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().to_str().unwrap().to_owned();
    let (code, text) = portcullis_e2e::portcullis(&["init", &d]);
    assert_eq!(code, 0, "{text}");
    let path = dir.path().join("portcullis.toml");
    let config = std::fs::read_to_string(&path)
        .unwrap()
        .replace("127.0.0.1:8080", "127.0.0.1:0")
        .replace("127.0.0.1:9443", "127.0.0.1:0");
    std::fs::write(&path, config).unwrap();
    let gw = GatewayProc::start_file(portcullis_e2e::procs::TempConfig { dir, path });
    let pki = gw.config.dir.path().join("pki");
    let file = |name: &str| pki.join(name).to_str().unwrap().to_owned();
    let (ca, cert, key) = (file("ca/ca.pem"), file("agent.pem"), file("agent.key"));
    let url = gw.url.as_str();
    let issue = |ca_dir: &str, name: &str, ttl: &str| {
        let out = file(name);
        let (code, text) = portcullis_e2e::portcullis(&[
            "ca",
            "issue",
            "--dir",
            ca_dir,
            "--spiffe-id",
            "spiffe://example.org/agent/x",
            "--ttl",
            ttl,
            "--out",
            &out,
        ]);
        assert_eq!(code, 0, "{text}");
        out
    };

    // No certificate: the client hears why, the gateway logs it.
    let (_, answers, err) = bridge_once(&[url, "--ca", &ca], INITIALIZE);
    let message = answers[0]["error"]["message"].as_str().unwrap_or_default().to_owned();
    assert!(message.contains("requires a client certificate"), "{message}\n{err}");
    let logs = gw.logs_with("presented no certificate");
    assert!(logs.contains("presented no certificate"), "{logs}");

    // Expired: stopped before connecting, with the time.
    let old = issue(&file("ca"), "old", "1s");
    std::thread::sleep(std::time::Duration::from_millis(2100));
    let (status, answers, err) = bridge_once(
        &[
            url,
            "--cert",
            &format!("{old}.pem"),
            "--key",
            &format!("{old}.key"),
            "--ca",
            &ca,
        ],
        INITIALIZE,
    );
    assert_eq!(status.code(), Some(1), "{err}");
    assert!(answers.is_empty(), "{answers:?}");
    assert!(err.contains("your certificate") && err.contains("expired at"), "{err}");

    // Issued by another CA (one made again): a warning first, then the refusal in words.
    let other_ca = file("other-ca");
    let (code, text) = portcullis_e2e::portcullis(&["ca", "init", "--dir", &other_ca, "--trust-domain", "example.org"]);
    assert_eq!(code, 0, "{text}");
    let foreign = issue(&other_ca, "foreign", "1h");
    let (_, answers, err) = bridge_once(
        &[
            url,
            "--cert",
            &format!("{foreign}.pem"),
            "--key",
            &format!("{foreign}.key"),
            "--ca",
            &ca,
        ],
        INITIALIZE,
    );
    assert!(err.contains("is not a CA in"), "{err}");
    let message = answers[0]["error"]["message"].as_str().unwrap_or_default();
    assert!(
        message.contains("refused this client's certificate")
            || message.contains("does not trust the CA")
            || message.contains("issued by a CA the server does not trust"),
        "{message}"
    );

    // A key that is not the certificate's.
    let (_, answers, err) = bridge_once(
        &[url, "--cert", &cert, "--key", &format!("{foreign}.key"), "--ca", &ca],
        INITIALIZE,
    );
    let message = answers
        .first()
        .map(|a| a["error"]["message"].to_string())
        .unwrap_or_default();
    assert!(
        message.contains("do not belong together") || err.contains("is not the key of the certificate (--cert)"),
        "{message}\n{err}"
    );
    let _ = key;
}
