//! Unit tests for host-signed calls: round trip, every refusal, replay and expiry.
use super::*;
use portcullis_mcp::{Limits, parse_strict};
use serde_json::json;

const AUD: &str = "https://gateway.example/mcp";
const NOW: u64 = 1_767_225_600;
const NONCE: &str = "AAAAAAAAAAAAAAAAAAAAAAAA";

fn host_key() -> SigningKey {
    SigningKey::from_bytes(&[7; 32])
}

fn alice() -> Principal {
    Principal::workload("spiffe://example.org/host/alice")
}

fn verifier() -> Verifier {
    let mut v = Verifier::new(VerifierConfig::new(AUD));
    v.register("host-1", alice(), host_key().verifying_key()).unwrap();
    v.register(
        "host-2",
        Principal::workload("spiffe://example.org/host/bob"),
        SigningKey::from_bytes(&[8; 32]).verifying_key(),
    )
    .unwrap();
    v
}

fn target() -> CallTarget<'static> {
    CallTarget {
        audience: AUD,
        server: "files",
        tool: "read_file",
    }
}

/// A `tools/call` params object carrying a signature over `arguments`.
fn signed_params(arguments: Value, nonce: &str) -> Value {
    let entry = sign_call_with_nonce(&host_key(), "host-1", target(), &arguments, nonce, NOW, 60).unwrap();
    json!({"name": "files__read_file", "arguments": arguments, "_meta": {META_KEY: entry}})
}

fn verify(v: &Verifier, params: &Value) -> Result<VerifiedCall, CallError> {
    v.verify(&alice(), "files", "read_file", params, NOW + 1)
}

fn with_entry(mut params: Value, field: &str, value: Value) -> Value {
    params["_meta"][META_KEY][field] = value;
    params
}

#[test]
fn signed_call_verifies_after_strict_parsing() {
    let params = signed_params(json!({"path": "/etc/hosts", "limit": 4.50, "flags": [1, 2e-3]}), NONCE);
    let text = serde_json::to_vec(&params).unwrap();
    let parsed = parse_strict(&text, Limits::default()).unwrap();
    let ok = verify(&verifier(), &parsed).unwrap();
    assert_eq!(ok.kid, "host-1");
    assert_eq!(ok.exp, NOW + 60);
    assert_eq!(ok.signed_sha256.len(), 64);
}

#[test]
fn key_order_and_number_spelling_do_not_matter() {
    let params = signed_params(json!({"b": 1, "a": {"y": 0.5, "x": 1e30}}), NONCE);
    let mut text = serde_json::to_string(&params).unwrap();
    text = text.replace(
        r#"{"b":1,"a":{"y":0.5,"x":1e+30}}"#,
        r#"{"a":{"x":1E+30,"y":5e-1},"b":1.0}"#,
    );
    assert!(text.contains("1E+30"), "{text}");
    let parsed = parse_strict(text.as_bytes(), Limits::default()).unwrap();
    verify(&verifier(), &parsed).unwrap();
}

#[test]
fn signed_bytes_are_the_documented_canonical_object() {
    let args = json!({"z": 1, "a": "€"});
    let fields = SignedFields {
        target: target(),
        arguments: &args,
        nonce: NONCE,
        iat: 10,
        exp: 70,
    };
    let want = format!(
        r#"{{"arguments":{{"a":"€","z":1}},"aud":"{AUD}","exp":70,"iat":10,"nonce":"{NONCE}","server":"files","tool":"read_file"}}"#
    );
    assert_eq!(String::from_utf8(fields.to_bytes()).unwrap(), want);
}

#[test]
fn absent_arguments_are_signed_as_an_empty_object() {
    let mut params = signed_params(json!({}), NONCE);
    params.as_object_mut().unwrap().remove("arguments");
    verify(&verifier(), &params).unwrap();
}

#[test]
fn refusals() {
    let good = || signed_params(json!({"path": "/tmp/x"}), NONCE);
    let mut tampered_args = good();
    tampered_args["arguments"]["path"] = json!("/etc/shadow");
    let mut no_meta = good();
    no_meta.as_object_mut().unwrap().remove("_meta");
    let mut args_array = good();
    args_array["arguments"] = json!([1]);
    let mut big_int = signed_params(json!({"n": 1}), NONCE);
    big_int["arguments"]["n"] = json!(9_007_199_254_740_993u64);
    let mut extra = good();
    extra["_meta"][META_KEY]["alg"] = json!("none");
    let sig = good()["_meta"][META_KEY]["sig"].as_str().unwrap().to_owned();

    type Check = fn(&CallError) -> bool;
    let cases: Vec<(&str, Value, Check)> = vec![
        ("no _meta", no_meta, |e| matches!(e, CallError::Unsigned)),
        ("unknown field", extra, |e| matches!(e, CallError::Malformed { .. })),
        ("iat as float", with_entry(good(), "iat", json!(1.5)), |e| {
            matches!(e, CallError::Malformed { .. })
        }),
        (
            "padded sig",
            with_entry(good(), "sig", json!(format!("{sig}=="))),
            |e| matches!(e, CallError::Malformed { .. }),
        ),
        ("short sig", with_entry(good(), "sig", json!(&sig[..40])), |e| {
            matches!(e, CallError::Malformed { .. })
        }),
        ("unknown kid", with_entry(good(), "kid", json!("host-9")), |e| {
            matches!(e, CallError::UnknownKey { .. })
        }),
        (
            "other principal's kid",
            with_entry(good(), "kid", json!("host-2")),
            |e| matches!(e, CallError::WrongPrincipal { .. }),
        ),
        (
            "wrong audience",
            with_entry(good(), "aud", json!("https://other.example/mcp")),
            |e| matches!(e, CallError::WrongAudience { .. }),
        ),
        ("wrong tool", with_entry(good(), "tool", json!("write_file")), |e| {
            matches!(e, CallError::WrongTarget { .. })
        }),
        ("wrong server", with_entry(good(), "server", json!("db")), |e| {
            matches!(e, CallError::WrongTarget { .. })
        }),
        ("short nonce", with_entry(good(), "nonce", json!("abc")), |e| {
            matches!(e, CallError::BadNonce)
        }),
        (
            "nonce charset",
            with_entry(good(), "nonce", json!("AAAAAAAAAAAAAAAA AAAA")),
            |e| matches!(e, CallError::BadNonce),
        ),
        (
            "other nonce",
            with_entry(good(), "nonce", json!("BBBBBBBBBBBBBBBBBBBBBBBB")),
            |e| matches!(e, CallError::BadSignature),
        ),
        ("tampered arguments", tampered_args, |e| {
            matches!(e, CallError::BadSignature)
        }),
        ("tampered exp", with_entry(good(), "exp", json!(NOW + 61)), |e| {
            matches!(e, CallError::BadSignature)
        }),
        ("arguments not object", args_array, |e| {
            matches!(e, CallError::ArgumentsNotObject)
        }),
        ("unsafe integer", big_int, |e| matches!(e, CallError::NotIJson(_))),
        ("empty window", with_entry(good(), "exp", json!(NOW)), |e| {
            matches!(e, CallError::BadWindow { .. })
        }),
        ("window too long", with_entry(good(), "exp", json!(NOW + 301)), |e| {
            matches!(e, CallError::BadWindow { .. })
        }),
    ];
    let v = verifier();
    for (name, params, check) in cases {
        match verify(&v, &params) {
            Ok(_) => panic!("{name}: verified"),
            Err(e) => assert!(check(&e), "{name}: wrong error {e:?}"),
        }
    }
}

#[test]
fn time_checks_use_skew_for_iat_and_none_for_exp() {
    let v = verifier();
    let params = |n: &str| signed_params(json!({}), n);
    // Host clock 30 s ahead: accepted; 31 s: refused.
    v.verify(&alice(), "files", "read_file", &params("n000000000000000001"), NOW - 30)
        .unwrap();
    let e = v.verify(&alice(), "files", "read_file", &params("n000000000000000002"), NOW - 31);
    assert!(matches!(e, Err(CallError::IssuedInFuture { skew: 30, .. })), "{e:?}");
    v.verify(&alice(), "files", "read_file", &params("n000000000000000003"), NOW + 59)
        .unwrap();
    let e = v.verify(&alice(), "files", "read_file", &params("n000000000000000004"), NOW + 60);
    assert!(matches!(e, Err(CallError::Expired { .. })), "{e:?}");
}

#[test]
fn t13_replay_within_window_is_refused_and_expired_replay_is_expired() {
    let v = verifier();
    let params = signed_params(json!({"q": "x"}), NONCE);
    verify(&v, &params).unwrap();
    let again = v.verify(&alice(), "files", "read_file", &params, NOW + 59);
    assert!(
        matches!(again, Err(CallError::Replay(ReplayError::Replayed { .. }))),
        "{again:?}"
    );
    let late = v.verify(&alice(), "files", "read_file", &params, NOW + 61);
    assert!(matches!(late, Err(CallError::Expired { .. })), "{late:?}");
}

#[test]
fn failed_verifications_do_not_take_replay_slots() {
    let mut config = VerifierConfig::new(AUD);
    config.replay_capacity = 1;
    let mut v = Verifier::new(config);
    v.register("host-1", alice(), host_key().verifying_key()).unwrap();
    let mut forged = signed_params(json!({"a": 1}), "forged0000000000000000");
    forged["arguments"]["a"] = json!(2);
    assert!(matches!(verify(&v, &forged), Err(CallError::BadSignature)));
    verify(&v, &signed_params(json!({"a": 1}), "first00000000000000000")).unwrap();
    let full = verify(&v, &signed_params(json!({"a": 1}), "second0000000000000000"));
    assert!(
        matches!(full, Err(CallError::Replay(ReplayError::Full { capacity: 1 }))),
        "{full:?}"
    );
    assert!(
        full.unwrap_err()
            .to_string()
            .contains("refused rather than risk a replay")
    );
}

#[test]
fn user_scoped_key_serves_only_that_user() {
    let mut v = Verifier::new(VerifierConfig::new(AUD));
    let mut owner = alice();
    owner.user = Some("u-1".into());
    v.register("host-1", owner.clone(), host_key().verifying_key()).unwrap();
    let params = signed_params(json!({}), NONCE);
    let e = v.verify(&alice(), "files", "read_file", &params, NOW);
    assert!(matches!(e, Err(CallError::WrongPrincipal { .. })));
    v.verify(&owner, "files", "read_file", &params, NOW).unwrap();
}

#[test]
fn register_refuses_weak_and_duplicate_keys_and_revoke_works() {
    let mut v = verifier();
    let mut identity = [0u8; 32];
    identity[0] = 1;
    let weak = VerifyingKey::from_bytes(&identity).unwrap();
    assert!(matches!(v.register("weak", alice(), weak), Err(KeyError::Weak { .. })));
    assert!(matches!(
        v.register("host-1", alice(), host_key().verifying_key()),
        Err(KeyError::Conflict { .. })
    ));
    assert!(v.revoke("host-1"));
    let e = verify(&v, &signed_params(json!({}), NONCE));
    assert!(matches!(e, Err(CallError::UnknownKey { .. })));
}

#[test]
fn signing_refuses_bad_input_and_makes_fresh_nonces() {
    let key = host_key();
    let e = sign_call_with_nonce(&key, "host-1", target(), &json!({}), "short", NOW, 60);
    assert!(matches!(e, Err(CallError::BadNonce)));
    let e = sign_call(&key, "host-1", target(), &json!({}), NOW, 0);
    assert!(matches!(e, Err(CallError::BadLifetime)));
    let e = sign_call(&key, "host-1", target(), &json!([1]), NOW, 60);
    assert!(matches!(e, Err(CallError::ArgumentsNotObject)));
    let e = sign_call(&key, "host 1", target(), &json!({}), NOW, 60);
    assert!(matches!(e, Err(CallError::Key(KeyError::BadKeyId { .. }))));
    let a = sign_call(&key, "host-1", target(), &json!({}), NOW, 60).unwrap();
    let b = sign_call(&key, "host-1", target(), &json!({}), NOW, 60).unwrap();
    assert_ne!(a["nonce"], b["nonce"]);
    assert_eq!(a["nonce"].as_str().unwrap().len(), 32);
}

#[test]
fn errors_do_not_echo_signatures_or_arguments() {
    let params = signed_params(json!({"password": "hunter2-canary"}), NONCE);
    let sig = params["_meta"][META_KEY]["sig"].as_str().unwrap().to_owned();
    let mut tampered = params.clone();
    tampered["arguments"]["password"] = json!("other-canary");
    let text = verify(&verifier(), &tampered).unwrap_err().to_string();
    assert!(!text.contains("canary") && !text.contains(&sig), "{text}");
}

#[test]
fn verifier_is_send_and_sync() {
    fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<Verifier>();
}

#[test]
fn t13_concurrent_replays_let_exactly_one_call_through() {
    let v = verifier();
    let params = signed_params(json!({"q": "race"}), NONCE);
    let successes = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..8).map(|_| scope.spawn(|| verify(&v, &params).is_ok())).collect();
        handles.into_iter().map(|h| h.join().unwrap()).filter(|ok| *ok).count()
    });
    assert_eq!(successes, 1);
}

#[test]
fn signature_for_another_audience_fails_even_with_our_audience_claimed() {
    let args = json!({"path": "/tmp/x"});
    let other = CallTarget {
        audience: "https://other.example/mcp",
        ..target()
    };
    let entry = sign_call_with_nonce(&host_key(), "host-1", other, &args, NONCE, NOW, 60).unwrap();
    let params = json!({"arguments": args, "_meta": {META_KEY: entry}});
    let forged = with_entry(params, "aud", json!(AUD));
    assert!(matches!(verify(&verifier(), &forged), Err(CallError::BadSignature)));
}

#[test]
fn t13_signatures_from_before_a_restart_are_refused() {
    // The replay cache is in memory; after a restart it is empty, so the start time fences
    // off every signature the previous process may already have accepted.
    let params = signed_params(json!({}), NONCE);
    let mut config = VerifierConfig::new(AUD);
    config.issued_not_before = NOW + 1;
    let mut restarted = Verifier::new(config);
    restarted
        .register("host-1", alice(), host_key().verifying_key())
        .unwrap();
    let e = verify(&restarted, &params);
    assert!(matches!(e, Err(CallError::IssuedBeforeStart { .. })), "{e:?}");
    let mut config = VerifierConfig::new(AUD);
    config.issued_not_before = NOW;
    let mut same_second = Verifier::new(config);
    same_second
        .register("host-1", alice(), host_key().verifying_key())
        .unwrap();
    verify(&same_second, &params).unwrap();
}

#[test]
fn t13_a_restored_replay_cache_refuses_what_was_consumed_before_the_restart() {
    let params = signed_params(json!({}), NONCE);
    let mut before = verifier();
    verify(&before, &params).unwrap();
    // The restart: a new verifier with the guard at start + skew + 1 …
    let mut config = VerifierConfig::new(AUD);
    config.issued_not_before = NOW + config.max_skew_secs + 1;
    before = Verifier::new(config);
    before.register("host-1", alice(), host_key().verifying_key()).unwrap();
    let guarded = verify(&before, &params);
    assert!(
        matches!(guarded, Err(CallError::IssuedBeforeStart { .. })),
        "{guarded:?}"
    );
    // … then what the log says was consumed is restored, and the guard is lifted.
    let consumed = vec![
        ("host-1".to_owned(), NONCE.to_owned(), NOW + 60),
        ("host-1".to_owned(), "old".into(), NOW - 1),
    ];
    assert_eq!(before.restore(consumed, NOW).unwrap(), 1, "expired entries are skipped");
    let replayed = verify(&before, &params);
    assert!(matches!(replayed, Err(CallError::Replay(_))), "{replayed:?}");
    let fresh = signed_params(json!({}), "a-fresh-nonce-0123456789");
    verify(&before, &fresh).expect("the guard is lifted for calls the log did not see");
}
