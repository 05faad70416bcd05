//! T16: a CA vouches only for its own trust domain. With a partner federated (its bundle
//! beside ours), the partner's CA can issue the partner's IDs and never ours, and ours never
//! the partner's — with bundle files per trust domain and with the Workload API's bundles.
//! A leaf naming only a trust domain (`spiffe://example.org`) is never a workload.
use std::collections::BTreeMap;
use std::time::{Duration, SystemTime};

use portcullis_identity::test_workload_api::{AgentSvid, FakeSpireAgent};
use portcullis_identity::{
    BadSvid, BundleSource, ClientAuth, ClientTrust, DevCa, IssuedSvid, Reload, ServerTls, ServerTlsSettings, SpiffeId,
    SvidError, SvidPolicy, SvidSource, TlsError, TrustDomain, UpstreamTlsSettings, WorkloadApi, WorkloadApiSettings,
    upstream_client_config,
};

use crate::support::*;

fn partner_td() -> TrustDomain {
    TrustDomain::new("partner.org").unwrap()
}

fn spiffe(id: &str) -> SpiffeId {
    SpiffeId::parse(id).unwrap()
}

/// Our PKI plus a partner's CA, its bundle written to `partner.pem`.
fn federation() -> (Pki, DevCa) {
    let pki = Pki::new();
    let partner = DevCa::ephemeral_for_tests(partner_td()).unwrap();
    std::fs::write(pki.path("partner.pem"), partner.bundle_pem()).unwrap();
    (pki, partner)
}

fn both_domains() -> SvidPolicy {
    SvidPolicy::new([td(), partner_td()]).unwrap()
}

/// The front with our SVID from files, trusting `bundle` for client SVIDs under `policy`.
fn front(pki: &Pki, bundle: BundleSource, policy: SvidPolicy) -> Result<ServerTls, TlsError> {
    pki.write_server_svid("server", Duration::from_secs(600));
    ServerTls::new(&ServerTlsSettings {
        svid: SvidSource::Files {
            cert_chain: pki.path("server.pem"),
            private_key: pki.path("server.key"),
        },
        client_trust: Some(ClientTrust {
            bundle,
            mode: ClientAuth::Required,
            svid_policy: policy,
        }),
        reload: Reload::OnDemand,
        alpn_protocols: vec![],
    })
}

fn per_domain_files(pki: &Pki) -> BundleSource {
    BundleSource::Files(BTreeMap::from([
        (td(), pki.bundle()),
        (partner_td(), pki.path("partner.pem")),
    ]))
}

/// Whether the front admits `client`, and the server's error when not.
async fn admitted(tls: &ServerTls, pki: &Pki, client: &IssuedSvid) -> Result<(), String> {
    let (addr, mut rx) = serve(tls.config()).await;
    let (view, outcome) = handshake(addr, &mut rx, client_config(pki.ca.bundle_pem(), Some(client))).await;
    match outcome {
        Ok(_) if view.got_ok => Ok(()),
        Ok(_) => Err(format!("client saw no answer: {view:?}")),
        Err(e) => Err(e),
    }
}

#[tokio::test]
async fn t16_with_per_domain_bundle_files_each_ca_vouches_only_for_its_trust_domain() {
    let (pki, partner) = federation();
    let tls = front(&pki, per_domain_files(&pki), both_domains()).unwrap();
    let ours = pki.ca.issue(&id("/agent"), Duration::from_secs(300), &[]).unwrap();
    admitted(&tls, &pki, &ours).await.expect("our CA, our ID");
    let partners = partner
        .issue(&spiffe("spiffe://partner.org/agent"), Duration::from_secs(300), &[])
        .unwrap();
    admitted(&tls, &pki, &partners)
        .await
        .expect("the partner's CA, the partner's ID");

    // The attack: the federated partner's CA issues an ID of our trust domain.
    let forged = partner.issue_cross_domain_for_tests(&id("/agent")).unwrap();
    let refused = admitted(&tls, &pki, &forged)
        .await
        .expect_err("a partner's CA must not vouch for our IDs");
    assert!(
        refused.contains("ForeignIssuer") && refused.contains("spiffe://example.org/agent"),
        "the handshake error says why: {refused}"
    );
    // Nor may our CA vouch for the partner's.
    let overreach = pki
        .ca
        .issue_cross_domain_for_tests(&spiffe("spiffe://partner.org/agent"))
        .unwrap();
    let refused = admitted(&tls, &pki, &overreach)
        .await
        .expect_err("our CA must not vouch for the partner");
    assert!(
        refused.contains("ForeignIssuer") && refused.contains("partner.org"),
        "{refused}"
    );
    let message = SvidError::ForeignIssuer {
        id: "spiffe://example.org/agent".into(),
        trust_domain: "example.org".into(),
    }
    .to_string();
    assert!(
        message.contains("not issued by a CA in the bundle of its trust domain `example.org`"),
        "{message}"
    );
    // The call-time check agrees that only the chain is wrong (the handshake's job).
    assert_eq!(
        both_domains().workload_id(leaf_of(&forged).as_ref(), SystemTime::now()),
        Ok(id("/agent"))
    );
}

#[tokio::test]
async fn t16_a_trusted_domain_without_a_bundle_is_refused_by_name() {
    let (pki, partner) = federation();
    // partner.org is trusted by policy, but only our bundle is configured.
    let tls = front(&pki, BundleSource::file(td(), pki.bundle()), both_domains()).unwrap();
    let partners = partner
        .issue(&spiffe("spiffe://partner.org/agent"), Duration::from_secs(300), &[])
        .unwrap();
    let error = admitted(&tls, &pki, &partners).await.unwrap_err();
    assert!(
        error.contains("NoTrustBundle") && error.contains("partner.org"),
        "{error}"
    );
    let message = SvidError::NoTrustBundle {
        trust_domain: "partner.org".into(),
    }
    .to_string();
    assert!(
        message.starts_with("no trust bundle for trust domain `partner.org`"),
        "{message}"
    );
    // A bundle without policy trust admits nothing either.
    let tls = front(&pki, per_domain_files(&pki), policy()).unwrap();
    assert!(admitted(&tls, &pki, &partners).await.is_err());
}

#[tokio::test]
async fn t16_a_bundle_file_holding_another_trust_domains_ca_is_refused() {
    let (pki, partner) = federation();
    let combined = format!("{}{}", pki.ca.bundle_pem(), partner.bundle_pem());
    std::fs::write(pki.path("combined.pem"), combined).unwrap();
    let bundle = BundleSource::file(td(), pki.path("combined.pem"));
    let error = front(&pki, bundle.clone(), policy()).unwrap_err();
    assert!(matches!(&error, TlsError::ForeignCa { ca_trust_domain, .. } if ca_trust_domain == "partner.org"));
    let message = error.to_string();
    assert!(
        message.contains("combined.pem") && message.contains("`example.org`") && message.contains("bundles = {"),
        "{message}"
    );
    // The upstream client reads its bundle the same way.
    let gateway = pki.ca.issue(&id("/gateway"), Duration::from_secs(300), &[]).unwrap();
    gateway.write(pki.dir.path(), "gateway").unwrap();
    let upstream = upstream_client_config(&UpstreamTlsSettings {
        svid: SvidSource::Files {
            cert_chain: pki.path("gateway.pem"),
            private_key: pki.path("gateway.key"),
        },
        trust_bundle: bundle,
        expected_server: id("/upstream"),
        reload: Reload::OnDemand,
    });
    assert!(matches!(upstream, Err(TlsError::ForeignCa { .. })), "{upstream:?}");
}

#[tokio::test]
async fn t16_a_trust_domain_id_is_refused_as_a_client_and_as_an_upstream() {
    let pki = Pki::new();
    let tls = front(&pki, BundleSource::file(td(), pki.bundle()), policy()).unwrap();
    let bare = pki
        .ca
        .issue_bad_svid_for_tests(&id("/agent"), BadSvid::TrustDomainId)
        .unwrap();
    assert!(admitted(&tls, &pki, &bare).await.is_err(), "the handshake refuses it");
    let call_time = policy().workload_id(leaf_of(&bare).as_ref(), SystemTime::now());
    assert_eq!(
        call_time,
        Err(SvidError::TrustDomainId {
            id: "spiffe://example.org".into()
        })
    );
    let message = call_time.unwrap_err().to_string();
    assert!(message.contains("the trust domain itself"), "{message}");

    // An upstream expected as `spiffe://example.org` could only be matched by such a leaf.
    let gateway = pki.ca.issue(&id("/gateway"), Duration::from_secs(300), &[]).unwrap();
    gateway.write(pki.dir.path(), "gateway").unwrap();
    let settings = UpstreamTlsSettings {
        svid: SvidSource::Files {
            cert_chain: pki.path("gateway.pem"),
            private_key: pki.path("gateway.key"),
        },
        trust_bundle: BundleSource::file(td(), pki.bundle()),
        expected_server: td().id(),
        reload: Reload::OnDemand,
    };
    let refused = upstream_client_config(&settings);
    assert!(
        matches!(refused, Err(TlsError::Svid(SvidError::TrustDomainId { .. }))),
        "{refused:?}"
    );
}

#[tokio::test]
async fn t16_an_upstream_svid_from_a_partner_ca_is_refused() {
    let (pki, partner) = federation();
    // The upstream presents our ID, but its SVID was issued by the partner's CA.
    let forged = partner.issue_cross_domain_for_tests(&id("/upstream")).unwrap();
    forged.write(pki.dir.path(), "upstream").unwrap();
    let upstream = ServerTls::new(&ServerTlsSettings {
        svid: SvidSource::Files {
            cert_chain: pki.path("upstream.pem"),
            private_key: pki.path("upstream.key"),
        },
        client_trust: None,
        reload: Reload::OnDemand,
        alpn_protocols: vec![],
    })
    .unwrap();
    let (addr, _rx) = serve(upstream.config()).await;
    let gateway = pki.ca.issue(&id("/gateway"), Duration::from_secs(300), &[]).unwrap();
    gateway.write(pki.dir.path(), "gateway").unwrap();
    let config = upstream_client_config(&UpstreamTlsSettings {
        svid: SvidSource::Files {
            cert_chain: pki.path("gateway.pem"),
            private_key: pki.path("gateway.key"),
        },
        trust_bundle: per_domain_files(&pki),
        expected_server: id("/upstream"),
        reload: Reload::OnDemand,
    })
    .unwrap();
    let view = connect(addr, config, "upstream.invalid").await;
    assert!(!view.got_ok, "{view:?}");
    let error = view.error.unwrap_or_default();
    assert!(
        error.contains("ForeignIssuer") && error.contains("spiffe://example.org/upstream"),
        "{error}"
    );
}

async fn agent_api(agent: &FakeSpireAgent, startup: Duration) -> Result<WorkloadApi, String> {
    let api = WorkloadApi::new(WorkloadApiSettings {
        endpoint: agent.endpoint(),
        startup_timeout: startup,
    })
    .unwrap();
    api.connect().await.map_err(|e| e.to_string())?;
    Ok(api)
}

#[tokio::test]
async fn t16_spire_federated_bundles_vouch_only_for_their_own_trust_domain() {
    let (pki, partner) = federation();
    let mut svid = AgentSvid::issue(
        &pki.ca,
        &id("/gateway"),
        Duration::from_secs(600),
        &["localhost".into()],
    )
    .unwrap();
    svid.federated = vec![("partner.org".into(), partner.bundle_pem().to_owned())];
    let agent = FakeSpireAgent::start(&pki.path("agent.sock"), &svid).await.unwrap();
    let api = agent_api(&agent, Duration::from_secs(10)).await.unwrap();
    let tls = ServerTls::new(&ServerTlsSettings {
        svid: SvidSource::WorkloadApi(api.clone()),
        client_trust: Some(ClientTrust {
            bundle: BundleSource::WorkloadApi(api),
            mode: ClientAuth::Required,
            svid_policy: both_domains(),
        }),
        reload: Reload::OnDemand,
        alpn_protocols: vec![],
    })
    .unwrap();
    let partners = partner
        .issue(&spiffe("spiffe://partner.org/agent"), Duration::from_secs(300), &[])
        .unwrap();
    admitted(&tls, &pki, &partners)
        .await
        .expect("federated partner, its own ID");
    let forged = partner.issue_cross_domain_for_tests(&id("/agent")).unwrap();
    let refused = admitted(&tls, &pki, &forged).await.expect_err("partner CA, our ID");
    assert!(refused.contains("ForeignIssuer"), "{refused}");
    let overreach = pki
        .ca
        .issue_cross_domain_for_tests(&spiffe("spiffe://partner.org/agent"))
        .unwrap();
    let refused = admitted(&tls, &pki, &overreach)
        .await
        .expect_err("our CA, the partner's ID");
    assert!(refused.contains("ForeignIssuer"), "{refused}");
    // A leaf naming only our trust domain is no workload, whichever bundle would chain it.
    let bare = pki
        .ca
        .issue_bad_svid_for_tests(&id("/agent"), BadSvid::TrustDomainId)
        .unwrap();
    let refused = admitted(&tls, &pki, &bare)
        .await
        .expect_err("trust domain id as a client");
    assert!(refused.contains("TrustDomainId"), "{refused}");
}

#[tokio::test]
async fn t16_spire_an_agent_svid_naming_only_the_trust_domain_is_never_used() {
    let pki = Pki::new();
    let bare = pki
        .ca
        .issue_bad_svid_for_tests(&id("/gateway"), BadSvid::TrustDomainId)
        .unwrap();
    let svid = AgentSvid {
        spiffe_id: td().id(),
        svid: bare,
        bundle_pem: pki.ca.bundle_pem().to_owned(),
        federated: Vec::new(),
    };
    let agent = FakeSpireAgent::start(&pki.path("agent.sock"), &svid).await.unwrap();
    // The spiffe crate's X509-SVID parser refuses it (X509-SVID §3.1), so no SVID arrives.
    let error = agent_api(&agent, Duration::from_secs(2)).await.unwrap_err();
    assert!(error.contains("no X.509-SVID"), "{error}");
}
