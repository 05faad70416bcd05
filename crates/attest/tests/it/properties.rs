//! Property tests of the signed-call path (T13): for random argument objects,
//! sign → serialise → parse strictly → canonicalise → verify succeeds; any single-byte
//! mutation of the signed bytes fails; and a mutation of the serialised arguments that still
//! parses either leaves the canonical form unchanged (and verifies) or fails verification.
use ed25519_dalek::{Signature, SigningKey};
use portcullis_attest::request::{CallTarget, META_KEY, SignedFields, Verifier, VerifierConfig, sign_call};
use portcullis_core::Principal;
use portcullis_mcp::canonical::canonical_bytes;
use portcullis_mcp::{Limits, parse_strict};
use proptest::prelude::*;
use serde_json::{Value, json};

const AUD: &str = "https://gw.example/mcp";
const NOW: u64 = 1_767_225_600;

fn key() -> SigningKey {
    SigningKey::from_bytes(&[42; 32])
}

fn target() -> CallTarget<'static> {
    CallTarget {
        audience: AUD,
        server: "files",
        tool: "read",
    }
}

fn verifier() -> Verifier {
    let mut v = Verifier::new(VerifierConfig::new(AUD));
    v.register("host", Principal::workload("host"), key().verifying_key())
        .unwrap();
    v
}

/// I-JSON values: safe integers, finite doubles, Unicode strings (astral included), nesting.
fn arb_json() -> impl Strategy<Value = Value> {
    let safe = (1i64 << 53) - 1;
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        (-safe..=safe).prop_map(Value::from),
        any::<f64>()
            .prop_filter("finite", |f| f.is_finite())
            .prop_map(|f| serde_json::Number::from_f64(f).map_or(Value::Null, Value::Number)),
        "[a-zA-Z0-9 \"\\\\/\\u{0}-\\u{1f}\\u{e9}\\u{20ac}\\u{fb33}\\u{1F600}]{0,12}".prop_map(Value::String),
    ];
    leaf.prop_recursive(4, 48, 6, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            proptest::collection::btree_map("[a-z\\u{e9}\\u{1F600}]{1,5}", inner, 0..6)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

fn arb_arguments() -> impl Strategy<Value = Value> {
    proptest::collection::btree_map("[a-z_]{1,8}", arb_json(), 0..6)
        .prop_map(|m| Value::Object(m.into_iter().collect()))
}

fn signed_request(arguments: &Value) -> Vec<u8> {
    let entry = sign_call(&key(), "host", target(), arguments, NOW, 60).unwrap();
    let request = json!({"jsonrpc": "2.0", "id": 7, "method": "tools/call",
        "params": {"name": "files__read", "arguments": arguments, "_meta": {META_KEY: entry}}});
    serde_json::to_vec(&request).unwrap()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 128, ..ProptestConfig::default() })]

    #[test]
    fn sign_parse_canonicalise_verify_round_trips(arguments in arb_arguments()) {
        let bytes = signed_request(&arguments);
        let parsed = parse_strict(&bytes, Limits::default()).unwrap();
        let ok = verifier().verify(&Principal::workload("host"), "files", "read", &parsed["params"], NOW);
        prop_assert!(ok.is_ok(), "{:?}", ok.err());
    }

    #[test]
    fn any_single_byte_mutation_of_the_signed_bytes_fails(
        arguments in arb_arguments(),
        index in any::<prop::sample::Index>(),
        xor in 1u8..=255,
    ) {
        let parsed = parse_strict(&signed_request(&arguments), Limits::default()).unwrap();
        let entry = &parsed["params"]["_meta"][META_KEY];
        let fields = SignedFields {
            target: target(),
            arguments: &parsed["params"]["arguments"],
            nonce: entry["nonce"].as_str().unwrap(),
            iat: entry["iat"].as_u64().unwrap(),
            exp: entry["exp"].as_u64().unwrap(),
        };
        let signed = fields.to_bytes();
        let sig = {
            use base64::Engine;
            let raw = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(entry["sig"].as_str().unwrap()).unwrap();
            Signature::from_bytes(&<[u8; 64]>::try_from(raw).unwrap())
        };
        prop_assert!(key().verifying_key().verify_strict(&signed, &sig).is_ok());
        let mut mutated = signed.clone();
        let i = index.index(mutated.len());
        mutated[i] ^= xor;
        prop_assert!(key().verifying_key().verify_strict(&mutated, &sig).is_err());
    }

    #[test]
    fn mutated_arguments_verify_only_if_canonically_unchanged(
        arguments in arb_arguments(),
        index in any::<prop::sample::Index>(),
        xor in 1u8..=255,
    ) {
        let original = signed_request(&arguments);
        let text = String::from_utf8(original.clone()).unwrap();
        // Mutate one byte inside the serialised `arguments` member.
        let start = text.find("\"arguments\":").unwrap() + "\"arguments\":".len();
        let end = text.find(",\"_meta\"").unwrap();
        let mut mutated = original;
        let i = start + index.index(end - start);
        mutated[i] ^= xor;
        if let Ok(parsed) = parse_strict(&mutated, Limits::default()) {
            let params = &parsed["params"];
            let result = verifier().verify(&Principal::workload("host"), "files", "read", params, NOW);
            let unchanged = params.get("arguments").is_some_and(|a| canonical_bytes(a) == canonical_bytes(&arguments));
            prop_assert_eq!(result.is_ok(), unchanged, "{:?}", result.err());
        }
    }
}

/// The strict parser's seed corpus (`crates/mcp/testdata/fuzz-seeds/parser/`, shared with
/// the mcp `fuzz_parser` harness), replayed through parse → canonicalise → verify: the
/// canonical form of everything accepted is a fixed point, no unsigned seed verifies, and
/// each seed signed as a call's arguments (when an object) verifies.
#[test]
fn fuzz_seeds_parse_canonicalise_verify() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../mcp/testdata/fuzz-seeds/parser");
    let mut seen = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        let Ok(value) = parse_strict(&std::fs::read(&path).unwrap(), Limits::default()) else {
            continue;
        };
        seen += 1;
        let canonical = canonical_bytes(&value);
        let again = parse_strict(&canonical, Limits::default()).unwrap();
        assert_eq!(canonical_bytes(&again), canonical, "{}", path.display());
        let params = value.get("params").unwrap_or(&value);
        let unsigned = verifier().verify(&Principal::workload("host"), "files", "read", params, NOW);
        assert!(unsigned.is_err(), "{} verified unsigned", path.display());
        if let Some(arguments) = params.get("arguments").filter(|a| a.is_object()) {
            let signed = parse_strict(&signed_request(arguments), Limits::default()).unwrap();
            let ok = verifier().verify(&Principal::workload("host"), "files", "read", &signed["params"], NOW);
            assert!(ok.is_ok(), "{}: {:?}", path.display(), ok.err());
        }
    }
    assert!(seen >= 5, "the parser seed corpus is missing");
}
