//! SPIRE: the real binary with `[listen.tls] source = "workload-api"`, taking its SVID and
//! the client trust bundle from a SPIFFE Workload API socket. The agent is the FAKE in
//! `portcullis_identity::test_workload_api` (SPIRE, a Go program, cannot be installed on
//! the test machines); it issues SVIDs from the dev CA and pushes rotations like SPIRE.
use std::{
    io::Write,
    net::{SocketAddr, TcpStream},
    process::{Command, Stdio},
    sync::Arc,
    time::{Duration, Instant},
};

use portcullis_e2e::{
    bin,
    clients::{self, Revision},
    demo_server_entry,
    pki::Pki,
    procs::{GatewayProc, allow_all_policy, wait_exit, write_config},
};
use portcullis_identity::{
    DevCa, SpiffeId, TrustDomain, not_after,
    test_workload_api::{AgentSvid, FakeSpireAgent},
};
use rustls::pki_types::{CertificateDer, ServerName};
use serde_json::json;

const GATEWAY_ID: &str = "spiffe://example.org/gateway";

fn gateway_svid(pki: &Pki, ttl: Duration) -> AgentSvid {
    let names = ["localhost".to_string(), "127.0.0.1".to_string()];
    AgentSvid::issue(&pki.ca, &SpiffeId::parse(GATEWAY_ID).unwrap(), ttl, &names).unwrap()
}

/// The config of a gateway whose TLS material comes from the agent at `endpoint`.
fn spire_config(endpoint: &str, extra_tls: &str) -> String {
    format!(
        "[listen]\nhttp = \"127.0.0.1:0\"\n[listen.tls]\nsource = \"workload-api\"\nworkload_api_socket = \"{endpoint}\"\ntrust_domains = [\"example.org\"]\n{extra_tls}\n[policy]\ncedar = [\"{}\"]\n{}",
        allow_all_policy().display(),
        demo_server_entry("demo", "")
    )
}

/// The certificate the gateway presents on a fresh connection.
fn presented_leaf(pki: &Pki, addr: SocketAddr) -> CertificateDer<'static> {
    let client = pki.client("spiffe://example.org/agent/probe", Duration::from_secs(300));
    let config = Arc::new(pki.client_config(Some(&client)));
    let mut tls = rustls::ClientConnection::new(config, ServerName::try_from("localhost").unwrap()).unwrap();
    let mut tcp = TcpStream::connect(addr).unwrap();
    tcp.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    while tls.is_handshaking() {
        tls.complete_io(&mut tcp).unwrap();
    }
    let leaf = tls.peer_certificates().unwrap()[0].clone();
    tls.send_close_notify();
    let _ = tls.complete_io(&mut tcp);
    let _ = tcp.flush();
    leaf
}

async fn echo_as(pki: &Pki, url: &str, svid: &portcullis_identity::IssuedSvid) -> Result<String, String> {
    let (client, _) = clients::http_with(pki.http_client(Some(svid)), url, Revision::Legacy).await;
    let result = clients::call(&client, "echo", json!({"text": "via spire"})).await;
    let _ = client.cancel().await;
    result.map(|r| clients::text(&r)).map_err(|e| e.to_string())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spire_front_takes_its_svid_from_the_agent_and_follows_rotation() {
    let pki = Pki::new();
    let first = gateway_svid(&pki, Duration::from_secs(3600));
    let agent = FakeSpireAgent::start(&pki.dir.path().join("agent.sock"), &first)
        .await
        .unwrap();
    let gw = GatewayProc::start_with(&spire_config(&agent.endpoint(), ""));

    // A client with a dev-CA SVID of the trusted trust domain calls a tool.
    let agent_a = pki.client("spiffe://example.org/agent/a", Duration::from_secs(600));
    let echoed = echo_as(&pki, &gw.url, &agent_a)
        .await
        .expect("a trusted SVID is served");
    assert!(echoed.contains("via spire"), "{echoed}");
    assert_eq!(presented_leaf(&pki, gw.addr), first.svid.cert_der().unwrap());

    // A client from another trust domain (its own CA) is refused in the handshake.
    let foreign_ca = DevCa::ephemeral_for_tests(TrustDomain::new("other.example").unwrap()).unwrap();
    let foreign = foreign_ca
        .issue(
            &SpiffeId::parse("spiffe://other.example/agent/a").unwrap(),
            Duration::from_secs(600),
            &[],
        )
        .unwrap();
    let refused = pki
        .http_client(Some(&foreign))
        .post(&gw.url)
        .header("content-type", "application/json")
        .body("{}")
        .send()
        .await;
    assert!(
        refused.is_err(),
        "a client of another trust domain must be refused: {refused:?}"
    );

    // The agent rotates the gateway's SVID: new connections see the new certificate.
    let second = gateway_svid(&pki, Duration::from_secs(7200));
    let (old_leaf, new_leaf) = (first.svid.cert_der().unwrap(), second.svid.cert_der().unwrap());
    assert_ne!(not_after(&old_leaf), not_after(&new_leaf));
    agent.rotate(&second).unwrap();
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let seen = presented_leaf(&pki, gw.addr);
        if seen == new_leaf {
            break;
        }
        assert_eq!(seen, old_leaf, "only the old or the new SVID may be presented");
        assert!(Instant::now() < deadline, "the rotated SVID never reached the front");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(not_after(&presented_leaf(&pki, gw.addr)), not_after(&new_leaf));
    let echoed = echo_as(&pki, &gw.url, &agent_a)
        .await
        .expect("calls succeed after rotation");
    assert!(echoed.contains("via spire"), "{echoed}");
    let logs = gw.logs();
    assert!(logs.contains("SPIFFE Workload API pushed new material"), "{logs}");
    assert!(!logs.contains("PRIVATE KEY"), "no key material in the logs");
}

#[test]
fn spire_agent_unreachable_at_start_fails_the_start_naming_the_socket() {
    let dir = tempfile::tempdir().unwrap();
    let endpoint = format!("unix://{}", dir.path().join("no-agent.sock").display());
    let config = write_config(&spire_config(&endpoint, "workload_api_timeout_secs = 1"));

    // check-config reports the switch without contacting the agent.
    let check = Command::new(bin("portcullis"))
        .args(["check-config", "--config"])
        .arg(&config.path)
        .output()
        .unwrap();
    let out = String::from_utf8_lossy(&check.stdout);
    assert!(check.status.success(), "{out}");
    assert!(
        out.contains(&format!("SPIFFE Workload API: `{endpoint}` for listen.tls")),
        "{out}"
    );

    let mut child = Command::new(bin("portcullis"))
        .args(["run", "--config"])
        .arg(&config.path)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let status = wait_exit(&mut child, Duration::from_secs(30));
    let mut stderr = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut stderr).unwrap();
    assert!(
        !status.success(),
        "the gateway must not start without its SVID: {stderr}"
    );
    assert!(stderr.contains(&endpoint), "the error names the socket: {stderr}");
    assert!(
        stderr.contains("start the SPIRE agent"),
        "the error says what to do: {stderr}"
    );
}
