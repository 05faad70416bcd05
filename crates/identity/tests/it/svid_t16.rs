//! T16: identity failures. Each bad certificate from the dev CA is presented in a real
//! TLS handshake to the front's server config; none may yield a workload identity.
use std::time::{Duration, SystemTime};

use portcullis_identity::{BadSvid, ClientAuth, PeerCertificates, Reload, SvidError, SvidPolicy, TrustDomain};

use crate::support::*;

/// What the per-call SPIFFE check says about each bad certificate on its own (the chain
/// check is the handshake's job, so an unknown issuer passes it and fails the handshake).
fn expected_call_time_error(kind: BadSvid) -> Option<SvidError> {
    Some(match kind {
        BadSvid::NoUriSan => SvidError::NoUriSan,
        BadSvid::TwoUriSans => SvidError::MultipleUriSans { count: 2 },
        BadSvid::WrongTrustDomain => SvidError::UntrustedDomain {
            trust_domain: "untrusted.example".into(),
        },
        BadSvid::CaLeaf => SvidError::CaCertificate,
        BadSvid::TrustDomainId => SvidError::TrustDomainId {
            id: "spiffe://example.org".into(),
        },
        BadSvid::Expired | BadSvid::NotYetValid | BadSvid::UnknownIssuer => return None,
    })
}

#[tokio::test]
async fn t16_bad_svids_are_rejected_in_the_handshake() {
    let pki = Pki::new();
    let tls = server_tls(&pki.server_settings(ClientAuth::Required, Reload::OnDemand));
    let (addr, mut rx) = serve(tls.config()).await;
    for kind in BadSvid::ALL {
        let svid = pki.ca.issue_bad_svid_for_tests(&id("/agent"), kind).unwrap();
        let (view, outcome) = handshake(addr, &mut rx, client_config(pki.ca.bundle_pem(), Some(&svid))).await;
        assert!(outcome.is_err(), "{kind:?}: server accepted the handshake: {outcome:?}");
        assert!(!view.got_ok, "{kind:?}: client got an answer");

        let call_time = policy().workload_id(leaf_of(&svid).as_ref(), SystemTime::now());
        match expected_call_time_error(kind) {
            Some(want) => assert_eq!(call_time, Err(want), "{kind:?}"),
            None if kind == BadSvid::UnknownIssuer => assert!(call_time.is_ok(), "only the chain is wrong"),
            None => assert!(
                matches!(
                    call_time,
                    Err(SvidError::Expired { .. } | SvidError::NotYetValid { .. })
                ),
                "{kind:?}: {call_time:?}"
            ),
        }
    }
}

#[tokio::test]
async fn t16_good_svid_yields_its_spiffe_id() {
    let pki = Pki::new();
    let tls = server_tls(&pki.server_settings(ClientAuth::Required, Reload::OnDemand));
    let (addr, mut rx) = serve(tls.config()).await;
    let svid = pki.ca.issue(&id("/agent"), Duration::from_secs(300), &[]).unwrap();
    let (view, outcome) = handshake(addr, &mut rx, client_config(pki.ca.bundle_pem(), Some(&svid))).await;
    assert!(view.got_ok, "{view:?}");
    let peer = outcome.unwrap();
    let workload = policy().peer_workload_id(peer.as_deref(), SystemTime::now()).unwrap();
    assert_eq!(workload.to_string(), "spiffe://example.org/agent");
}

#[tokio::test]
async fn t16_certificate_is_required_unless_optional() {
    let pki = Pki::new();
    let required = server_tls(&pki.server_settings(ClientAuth::Required, Reload::OnDemand));
    let (addr, mut rx) = serve(required.config()).await;
    let (_, outcome) = handshake(addr, &mut rx, client_config(pki.ca.bundle_pem(), None)).await;
    assert!(outcome.is_err(), "no client certificate must fail when required");

    let optional = server_tls(&pki.server_settings(ClientAuth::Optional, Reload::OnDemand));
    let (addr, mut rx) = serve(optional.config()).await;
    let (view, outcome) = handshake(addr, &mut rx, client_config(pki.ca.bundle_pem(), None)).await;
    assert!(view.got_ok);
    let peer = outcome.unwrap();
    assert_eq!(
        policy().peer_workload_id(peer.as_deref(), SystemTime::now()),
        Err(SvidError::NoCertificate)
    );
    // Optional still verifies a certificate that is presented.
    let bad = pki
        .ca
        .issue_bad_svid_for_tests(&id("/agent"), BadSvid::TwoUriSans)
        .unwrap();
    let (_, outcome) = handshake(addr, &mut rx, client_config(pki.ca.bundle_pem(), Some(&bad))).await;
    assert!(outcome.is_err());
}

#[tokio::test]
async fn t16_expiry_is_rechecked_at_call_time() {
    let pki = Pki::new();
    let tls = server_tls(&pki.server_settings(ClientAuth::Required, Reload::OnDemand));
    let (addr, mut rx) = serve(tls.config()).await;
    let svid = pki.ca.issue(&id("/agent"), Duration::from_secs(120), &[]).unwrap();
    let (_, outcome) = handshake(addr, &mut rx, client_config(pki.ca.bundle_pem(), Some(&svid))).await;
    let peer = outcome.unwrap();
    let now = SystemTime::now();
    assert!(policy().peer_workload_id(peer.as_deref(), now).is_ok());
    // The same connection, ten minutes later: its certificate has expired since the handshake.
    let later = now + Duration::from_secs(600);
    assert!(matches!(
        policy().peer_workload_id(peer.as_deref(), later),
        Err(SvidError::Expired { .. })
    ));
    // As the gateway checks each call of a served connection: the leaf is parsed on the
    // first call and kept, the clock and the trust domains are checked on every call.
    let connection = PeerCertificates::new(peer.unwrap_or_default());
    assert_eq!(policy().connection_workload_id(&connection, now).unwrap(), id("/agent"));
    assert!(matches!(
        policy().connection_workload_id(&connection, later),
        Err(SvidError::Expired { .. })
    ));
    let other_domain = SvidPolicy::new([TrustDomain::new("other.org").unwrap()]).unwrap();
    assert!(matches!(
        other_domain.connection_workload_id(&connection, now),
        Err(SvidError::UntrustedDomain { .. })
    ));
    assert_eq!(
        policy().connection_workload_id(&PeerCertificates::default(), now),
        Err(SvidError::NoCertificate)
    );
}
