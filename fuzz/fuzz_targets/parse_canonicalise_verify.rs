//! Fuzz target for T13: arbitrary bytes through the strict parser, RFC 8785 canonicalisation
//! and Ed25519 call verification. Properties: nothing panics; the canonical form of a parsed
//! value parses again to a value with the same canonical form (a fixed point); a value given
//! to the verifier as call params is never accepted without a valid signature; and a call the
//! host signs over a parsed I-JSON object always verifies, while any change to it does not.
//! The message mode of the parser (T22) accepts nothing the generic mode refuses.
//!
//! Run: `cargo +nightly fuzz run parse_canonicalise_verify -- -max_total_time=60` in `fuzz/`.
#![no_main]

use ed25519_dalek::SigningKey;
use libfuzzer_sys::fuzz_target;
use portcullis_attest::{CallTarget, META_KEY, Verifier, VerifierConfig, ijson, key_id, sign_call_with_nonce};
use portcullis_core::Principal;
use portcullis_mcp::{Limits, canonical::canonical_bytes, parse_message, parse_strict};
use serde_json::{Value, json};

const NOW: u64 = 1_767_225_600;
const NONCE: &str = "fuzz-nonce-0123456789";

fn verifier(key: &SigningKey, host: &Principal) -> Verifier {
    let mut config = VerifierConfig::new("aud");
    config.replay_capacity = 4;
    let mut verifier = Verifier::new(config);
    verifier
        .register(&key_id(&key.verifying_key()), host.clone(), key.verifying_key())
        .expect("register");
    verifier
}

fuzz_target!(|data: &[u8]| {
    let message = parse_message(data, Limits::default());
    let Ok(value) = parse_strict(data, Limits::default()) else {
        assert!(message.is_err(), "message mode is stricter than the generic parser (T22)");
        return;
    };
    if let Ok(message) = message {
        assert_eq!(message, value, "both modes read an accepted message alike");
    }
    let canonical = canonical_bytes(&value);
    let again = parse_strict(&canonical, Limits::default()).expect("canonical bytes parse strictly");
    assert_eq!(canonical_bytes(&again), canonical, "the canonical form is a fixed point");

    let key = SigningKey::from_bytes(&[42; 32]);
    let host = Principal::workload("spiffe://example.org/host");
    // Whatever arrives as params verifies only with a real signature from the registered key.
    if verifier(&key, &host).verify(&host, "s", "t", &value, NOW).is_ok() {
        panic!("accepted params that the fuzzer made up: {value}");
    }
    // A host signature over these arguments verifies, and not for another tool.
    if !value.is_object() || ijson::check(&value).is_err() {
        return;
    }
    let target = CallTarget {
        audience: "aud",
        server: "s",
        tool: "t",
    };
    let kid = key_id(&key.verifying_key());
    let entry = sign_call_with_nonce(&key, &kid, target, &value, NONCE, NOW, 60).expect("sign");
    let params = json!({"arguments": value, "_meta": {META_KEY: entry}});
    let reparsed = parse_strict(params.to_string().as_bytes(), Limits::default()).expect("signed params parse");
    verifier(&key, &host)
        .verify(&host, "s", "t", &reparsed, NOW)
        .expect("the host's own signature verifies after a round trip");
    assert!(verifier(&key, &host).verify(&host, "s", "other", &reparsed, NOW).is_err());
    let mut altered = reparsed;
    if let Some(args) = altered.get_mut("arguments").and_then(Value::as_object_mut) {
        args.insert("\u{0}fuzz".into(), json!(1));
    }
    assert!(verifier(&key, &host).verify(&host, "s", "t", &altered, NOW).is_err());
});
