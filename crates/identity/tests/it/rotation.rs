//! T16 rotation: the front's own certificate and the client trust bundle are replaced on
//! disk while the server runs; new handshakes use the new material without a restart.
use std::time::Duration;

use portcullis_identity::{ClientAuth, DevCa, Reload};

use crate::support::*;

#[tokio::test]
async fn server_certificate_rotates_without_restart() {
    let pki = Pki::new();
    let tls = server_tls(&pki.server_settings(ClientAuth::Optional, Reload::Poll(Duration::ZERO)));
    let (addr, mut rx) = serve(tls.config()).await;
    let first = pki.write_server_svid("server", Duration::from_secs(120));
    let (view, _) = handshake(addr, &mut rx, client_config(pki.ca.bundle_pem(), None)).await;
    assert_eq!(view.server_leaf, Some(leaf_of(&first)));

    let second = pki.write_server_svid("server", Duration::from_secs(120));
    assert_ne!(leaf_of(&first), leaf_of(&second));
    let (view, _) = handshake(addr, &mut rx, client_config(pki.ca.bundle_pem(), None)).await;
    assert_eq!(
        view.server_leaf,
        Some(leaf_of(&second)),
        "new handshakes must see the new certificate"
    );
}

#[tokio::test]
async fn failed_reload_keeps_serving_the_old_certificate() {
    let pki = Pki::new();
    let settings = pki.server_settings(ClientAuth::Optional, Reload::OnDemand);
    let (cert_chain, private_key) = (pki.path("server.pem"), pki.path("server.key"));
    let tls = server_tls(&settings);
    let (addr, mut rx) = serve(tls.config()).await;
    let (before, _) = handshake(addr, &mut rx, client_config(pki.ca.bundle_pem(), None)).await;

    write(
        &cert_chain,
        "-----BEGIN CERTIFICATE-----\nnot base64\n-----END CERTIFICATE-----\n",
    );
    assert!(tls.reload().is_err(), "a broken certificate file must fail the reload");
    let (after, _) = handshake(addr, &mut rx, client_config(pki.ca.bundle_pem(), None)).await;
    assert!(after.got_ok);
    assert_eq!(after.server_leaf, before.server_leaf);

    // A key that does not match the certificate is refused as well.
    let other = pki
        .ca
        .issue(&id("/gateway"), Duration::from_secs(60), &["localhost".into()])
        .unwrap();
    let fresh = pki.write_server_svid("server", Duration::from_secs(60));
    write(&private_key, other.key_pem.expose());
    assert!(tls.reload().is_err());
    let (after, _) = handshake(addr, &mut rx, client_config(pki.ca.bundle_pem(), None)).await;
    assert_eq!(after.server_leaf, before.server_leaf);
    assert_ne!(after.server_leaf, Some(leaf_of(&fresh)));
}

#[tokio::test]
async fn client_trust_bundle_rotates_on_explicit_reload() {
    let pki = Pki::new();
    let tls = server_tls(&pki.server_settings(ClientAuth::Required, Reload::OnDemand));
    let (addr, mut rx) = serve(tls.config()).await;
    let new_ca = DevCa::ephemeral_for_tests(td()).unwrap();
    let client = new_ca.issue(&id("/agent"), Duration::from_secs(300), &[]).unwrap();

    let (_, outcome) = handshake(addr, &mut rx, client_config(pki.ca.bundle_pem(), Some(&client))).await;
    assert!(outcome.is_err(), "a client of an untrusted CA must be refused");

    // Bundle rotation: the old CA and the new one, as during a CA roll-over.
    write(
        &pki.bundle(),
        &format!("{}{}", pki.ca.bundle_pem(), new_ca.bundle_pem()),
    );
    tls.reload().unwrap();
    let (view, outcome) = handshake(addr, &mut rx, client_config(pki.ca.bundle_pem(), Some(&client))).await;
    assert!(view.got_ok, "{view:?}");
    let peer = outcome.unwrap();
    assert_eq!(
        policy()
            .peer_workload_id(peer.as_deref(), std::time::SystemTime::now())
            .unwrap(),
        id("/agent")
    );
}

#[tokio::test]
async fn client_trust_bundle_rotates_by_polling() {
    let pki = Pki::new();
    let tls = server_tls(&pki.server_settings(ClientAuth::Required, Reload::Poll(Duration::ZERO)));
    let (addr, mut rx) = serve(tls.config()).await;
    let old_client = pki.ca.issue(&id("/old"), Duration::from_secs(300), &[]).unwrap();
    let new_ca = DevCa::ephemeral_for_tests(td()).unwrap();
    let new_client = new_ca.issue(&id("/new"), Duration::from_secs(300), &[]).unwrap();

    let (_, outcome) = handshake(addr, &mut rx, client_config(pki.ca.bundle_pem(), Some(&new_client))).await;
    assert!(outcome.is_err());

    // Replace the bundle with the new CA only: the old CA's clients are now refused.
    write(&pki.bundle(), new_ca.bundle_pem());
    let (_, outcome) = handshake(addr, &mut rx, client_config(pki.ca.bundle_pem(), Some(&new_client))).await;
    assert!(outcome.is_ok(), "{outcome:?}");
    let (_, outcome) = handshake(addr, &mut rx, client_config(pki.ca.bundle_pem(), Some(&old_client))).await;
    assert!(outcome.is_err(), "a client of the removed CA must be refused");
}
