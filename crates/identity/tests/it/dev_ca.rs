//! The dev CA on disk: file modes, reload from its directory, refusal to overwrite, and
//! the shape of the SVIDs it issues (what SVID parsers and webpki insist on).
use std::os::unix::fs::PermissionsExt;
use std::time::{Duration, SystemTime};

use portcullis_identity::{DevCa, DevCaError, TrustDomain, not_after};
use x509_parser::extensions::GeneralName;
use x509_parser::prelude::{FromDer, X509Certificate};

use crate::support::*;

#[test]
fn init_writes_private_key_0600_and_refuses_to_overwrite() {
    let dir = tempfile::tempdir().unwrap();
    let ca_dir = dir.path().join("ca");
    DevCa::init(&ca_dir, td()).unwrap();
    let mode = |name: &str| std::fs::metadata(ca_dir.join(name)).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode("ca.key"), 0o600);
    assert_eq!(mode("ca.pem"), 0o644);
    assert!(matches!(
        DevCa::init(&ca_dir, td()),
        Err(DevCaError::AlreadyExists { .. })
    ));
}

#[test]
fn loaded_ca_issues_svids_the_same_bundle_verifies() {
    let dir = tempfile::tempdir().unwrap();
    let created = DevCa::init(dir.path(), TrustDomain::new("prod.example.org").unwrap()).unwrap();
    let loaded = DevCa::load(dir.path()).unwrap();
    assert_eq!(loaded.trust_domain().as_str(), "prod.example.org");
    assert_eq!(loaded.bundle_pem(), created.bundle_pem());

    let id = portcullis_identity::SpiffeId::parse("spiffe://prod.example.org/web").unwrap();
    let svid = loaded
        .issue(
            &id,
            Duration::from_secs(300),
            &["web.internal".into(), "10.0.0.7".into()],
        )
        .unwrap();
    let (cert_path, key_path) = svid.write(dir.path(), "web").unwrap();
    assert_eq!(
        std::fs::metadata(&key_path).unwrap().permissions().mode() & 0o777,
        0o600
    );
    assert!(cert_path.ends_with("web.pem"));

    // webpki accepts the chain (as a server certificate for the DNS SAN) ...
    let der = svid.cert_der().unwrap();
    let parsed = rustls::server::ParsedCertificate::try_from(&der).unwrap();
    let roots = roots(created.bundle_pem());
    let now = rustls::pki_types::UnixTime::now();
    let algs = portcullis_identity::crypto_provider()
        .signature_verification_algorithms
        .all;
    rustls::client::verify_server_cert_signed_by_trust_anchor(&parsed, &roots, &[], now, algs).unwrap();
    let name = rustls::pki_types::ServerName::try_from("web.internal").unwrap();
    rustls::client::verify_server_name(&parsed, &name).unwrap();

    // ... and the SPIFFE check names the workload.
    let policy = portcullis_identity::SvidPolicy::new([loaded.trust_domain().clone()]).unwrap();
    assert_eq!(policy.workload_id(der.as_ref(), SystemTime::now()).unwrap(), id);
    let expiry = not_after(der.as_ref()).unwrap();
    assert!(expiry > SystemTime::now() && expiry <= SystemTime::now() + Duration::from_secs(301));
}

#[test]
fn issued_leaf_has_the_svid_extensions() {
    let pki = Pki::new();
    let svid = pki
        .ca
        .issue(&id("/agent"), Duration::from_secs(60), &["localhost".into()])
        .unwrap();
    let der = svid.cert_der().unwrap();
    let (_, cert) = X509Certificate::from_der(der.as_ref()).unwrap();

    let bc = cert.basic_constraints().unwrap().expect("explicit basic constraints");
    assert!(!bc.value.ca, "leaf must say CA:FALSE explicitly");
    let ku = cert.key_usage().unwrap().unwrap().value;
    assert!(ku.digital_signature() && !ku.key_cert_sign() && !ku.crl_sign());
    let eku = cert.extended_key_usage().unwrap().unwrap().value;
    assert!(eku.server_auth && eku.client_auth);
    let names = &cert.subject_alternative_name().unwrap().unwrap().value.general_names;
    assert_eq!(
        names,
        &vec![
            GeneralName::URI("spiffe://example.org/agent"),
            GeneralName::DNSName("localhost")
        ]
    );
    let not_before = cert.validity().not_before.timestamp();
    let now = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    assert!(not_before < now, "not_before is slightly in the past");
}

#[test]
fn issue_refuses_foreign_trust_domains_and_zero_ttl() {
    let pki = Pki::new();
    let foreign = portcullis_identity::SpiffeId::parse("spiffe://other.org/x").unwrap();
    assert!(matches!(
        pki.ca.issue(&foreign, Duration::from_secs(60), &[]),
        Err(DevCaError::ForeignTrustDomain { .. })
    ));
    assert!(matches!(
        pki.ca.issue(&id("/x"), Duration::ZERO, &[]),
        Err(DevCaError::ZeroTtl)
    ));
    assert!(matches!(
        pki.ca.issue(&id("/x"), Duration::from_secs(60), &["bad name!".into()]),
        Err(DevCaError::BadServerName { .. })
    ));
}
