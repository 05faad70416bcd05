//! SVIDs and bundles from a SPIFFE Workload API: the front's certificate, the client
//! trust bundle and the upstream client SVID come from a (fake) SPIRE agent, follow the
//! rotations it pushes, outlive the agent until they expire, and startup fails closed when
//! the agent is unreachable.
use std::path::Path;
use std::time::{Duration, Instant, SystemTime};

use portcullis_identity::test_workload_api::{AgentSvid, FakeSpireAgent, X509SvidRequest, X509SvidResponse};
use portcullis_identity::{
    BundleSource, ClientAuth, ClientTrust, DevCa, Reload, ServerTls, ServerTlsSettings, SvidSource, TrustDomain,
    UpstreamTlsSettings, WorkloadApi, WorkloadApiError, WorkloadApiSettings, upstream_client_config,
};
use rustls::pki_types::CertificateDer;

use crate::support::*;

fn gateway_svid(ca: &DevCa, ttl: Duration) -> AgentSvid {
    AgentSvid::issue(ca, &id("/gateway"), ttl, &["localhost".to_string()]).unwrap()
}

fn der(svid: &AgentSvid) -> CertificateDer<'static> {
    svid.svid.cert_der().unwrap()
}

async fn connected(agent: &FakeSpireAgent) -> WorkloadApi {
    let api = WorkloadApi::new(WorkloadApiSettings {
        endpoint: agent.endpoint(),
        startup_timeout: Duration::from_secs(10),
    })
    .unwrap();
    api.connect().await.unwrap();
    api
}

fn front(api: &WorkloadApi) -> ServerTls {
    ServerTls::new(&ServerTlsSettings {
        svid: SvidSource::WorkloadApi(api.clone()),
        client_trust: Some(ClientTrust {
            bundle: BundleSource::WorkloadApi(api.clone()),
            mode: ClientAuth::Required,
            svid_policy: policy(),
        }),
        reload: Reload::OnDemand,
        alpn_protocols: vec![],
    })
    .unwrap()
}

#[tokio::test]
async fn front_takes_svid_and_bundle_from_the_agent_and_follows_rotation() {
    let pki = Pki::new();
    let first = gateway_svid(&pki.ca, Duration::from_secs(600));
    let agent = FakeSpireAgent::start(&pki.path("agent.sock"), &first).await.unwrap();
    let api = connected(&agent).await;
    let (addr, mut rx) = serve(front(&api).config()).await;
    let client = pki.ca.issue(&id("/agent"), Duration::from_secs(300), &[]).unwrap();

    let (view, outcome) = handshake(addr, &mut rx, client_config(pki.ca.bundle_pem(), Some(&client))).await;
    assert!(view.got_ok, "{view:?}");
    assert_eq!(
        view.server_leaf,
        Some(der(&first)),
        "the front presents the agent's SVID"
    );
    let peer = outcome.unwrap();
    assert_eq!(
        policy().peer_workload_id(peer.as_deref(), SystemTime::now()).unwrap(),
        id("/agent")
    );

    // A client whose CA the agent's bundle does not hold, and one from another trust domain.
    let stranger = DevCa::ephemeral_for_tests(td()).unwrap();
    let unknown = stranger.issue(&id("/agent"), Duration::from_secs(300), &[]).unwrap();
    let (_, outcome) = handshake(addr, &mut rx, client_config(pki.ca.bundle_pem(), Some(&unknown))).await;
    assert!(outcome.is_err(), "a client of a CA outside the bundle must be refused");
    let foreign_ca = DevCa::ephemeral_for_tests(TrustDomain::new("other.example").unwrap()).unwrap();
    let foreign_id = portcullis_identity::SpiffeId::parse("spiffe://other.example/agent").unwrap();
    let foreign = foreign_ca.issue(&foreign_id, Duration::from_secs(300), &[]).unwrap();
    let (_, outcome) = handshake(addr, &mut rx, client_config(pki.ca.bundle_pem(), Some(&foreign))).await;
    let error = outcome.unwrap_err();
    assert!(error.contains("other.example"), "{error}");

    // The agent rotates the gateway's SVID: the next handshake presents the new one.
    let second = gateway_svid(&pki.ca, Duration::from_secs(600));
    assert_ne!(der(&first), der(&second));
    agent.rotate(&second).unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let (view, _) = handshake(addr, &mut rx, client_config(pki.ca.bundle_pem(), Some(&client))).await;
        assert!(view.got_ok, "{view:?}");
        if view.server_leaf == Some(der(&second)) {
            break;
        }
        assert_eq!(view.server_leaf, Some(der(&first)));
        assert!(
            Instant::now() < deadline,
            "the rotated SVID never reached the handshake"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn last_svid_outlives_the_agent_until_it_expires() {
    let pki = Pki::new();
    // DevCa leaves start a minute in the past; this one ends four seconds from now.
    let short = gateway_svid(&pki.ca, Duration::from_secs(4));
    let agent = FakeSpireAgent::start(&pki.path("agent.sock"), &short).await.unwrap();
    let api = connected(&agent).await;
    let (addr, mut rx) = serve(front(&api).config()).await;
    let client = pki.ca.issue(&id("/agent"), Duration::from_secs(300), &[]).unwrap();

    agent.stop();
    assert!(!pki.path("agent.sock").exists());
    let (view, _) = handshake(addr, &mut rx, client_config(pki.ca.bundle_pem(), Some(&client))).await;
    assert!(view.got_ok, "the last SVID is still served: {view:?}");
    assert_eq!(view.server_leaf, Some(der(&short)));

    tokio::time::sleep(Duration::from_secs(5)).await;
    let (view, outcome) = handshake(addr, &mut rx, client_config(pki.ca.bundle_pem(), Some(&client))).await;
    assert!(!view.got_ok, "an expired SVID is never served: {view:?}");
    assert!(outcome.is_err());
}

#[tokio::test]
async fn unreachable_agent_fails_connect_naming_the_socket() {
    let dir = tempfile::tempdir().unwrap();
    let endpoint = format!("unix://{}", dir.path().join("no-agent.sock").display());
    let api = WorkloadApi::new(WorkloadApiSettings {
        endpoint: endpoint.clone(),
        startup_timeout: Duration::from_secs(1),
    })
    .unwrap();
    let started = Instant::now();
    let error = api.connect().await.unwrap_err();
    assert!(started.elapsed() < Duration::from_secs(10));
    assert!(matches!(error, WorkloadApiError::Unavailable { .. }), "{error:?}");
    let message = error.to_string();
    assert!(
        message.contains(&endpoint) && message.contains("SPIRE agent"),
        "{message}"
    );

    // Building a front on a source that never connected is refused, not served half-configured.
    let settings = ServerTlsSettings {
        svid: SvidSource::WorkloadApi(api),
        client_trust: None,
        reload: Reload::OnDemand,
        alpn_protocols: vec![],
    };
    assert!(ServerTls::new(&settings).is_err());

    let bad = WorkloadApi::new(WorkloadApiSettings {
        endpoint: "http://agent".into(),
        startup_timeout: Duration::from_secs(1),
    });
    assert!(matches!(bad, Err(WorkloadApiError::BadEndpoint { .. })), "{bad:?}");
}

#[tokio::test]
async fn upstream_client_presents_the_agents_svid_and_checks_against_its_bundle() {
    let pki = Pki::new();
    let (addr, mut rx) = mtls_upstream(&pki).await;
    let agent = FakeSpireAgent::start(
        &pki.path("agent.sock"),
        &gateway_svid(&pki.ca, Duration::from_secs(600)),
    )
    .await
    .unwrap();
    let api = WorkloadApi::new(WorkloadApiSettings {
        endpoint: agent.endpoint(),
        startup_timeout: Duration::from_secs(10),
    })
    .unwrap();
    // Built before the source connects (as while reading the config file), used after.
    let config = upstream_client_config(&UpstreamTlsSettings {
        svid: SvidSource::WorkloadApi(api.clone()),
        trust_bundle: BundleSource::WorkloadApi(api.clone()),
        expected_server: id("/upstream"),
        reload: Reload::OnDemand,
    })
    .unwrap();
    api.connect().await.unwrap();
    let view = connect(addr, config, "upstream.invalid").await;
    assert!(view.got_ok, "{view:?}");
    let peer = rx.recv().await.unwrap().unwrap();
    assert_eq!(
        policy().peer_workload_id(peer.as_deref(), SystemTime::now()).unwrap(),
        id("/gateway"),
        "the upstream sees the SVID the agent issued"
    );
}

/// Calls `FetchX509SVID` on the fake agent with a plain gRPC client, with or without the
/// security header, and returns the first response (or the status).
async fn raw_fetch(socket: &Path, with_header: bool) -> Result<X509SvidResponse, tonic::Status> {
    let path = socket.to_path_buf();
    let channel = tonic::transport::Endpoint::try_from("http://agent.invalid")
        .unwrap()
        .connect_with_connector(tower::service_fn(move |_| {
            let path = path.clone();
            async move {
                let stream = tokio::net::UnixStream::connect(path).await?;
                Ok::<_, std::io::Error>(hyper_util::rt::TokioIo::new(stream))
            }
        }))
        .await
        .unwrap();
    let mut grpc = tonic::client::Grpc::new(channel);
    grpc.ready().await.unwrap();
    let mut request = tonic::Request::new(X509SvidRequest {});
    if with_header {
        request.metadata_mut().insert(
            "workload.spiffe.io",
            tonic::metadata::MetadataValue::from_static("true"),
        );
    }
    let codec = tonic_prost::ProstCodec::<X509SvidRequest, X509SvidResponse>::default();
    let path = tonic::codegen::http::uri::PathAndQuery::from_static("/SpiffeWorkloadAPI/FetchX509SVID");
    let mut stream = grpc.server_streaming(request, path, codec).await?.into_inner();
    Ok(stream.message().await?.unwrap())
}

#[tokio::test]
async fn fake_agent_refuses_requests_without_the_security_header() {
    let pki = Pki::new();
    let socket = pki.path("agent.sock");
    let svid = gateway_svid(&pki.ca, Duration::from_secs(600));
    let _agent = FakeSpireAgent::start(&socket, &svid).await.unwrap();
    let refused = raw_fetch(&socket, false).await.unwrap_err();
    assert_eq!(refused.code(), tonic::Code::InvalidArgument);
    assert_eq!(refused.message(), "security header missing from request");
    let answer = raw_fetch(&socket, true).await.unwrap();
    assert_eq!(answer.svids.len(), 1);
    assert_eq!(answer.svids[0].spiffe_id, "spiffe://example.org/gateway");
    assert_eq!(answer.svids[0].x509_svid, der(&svid).as_ref());
}
