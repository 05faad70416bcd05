//! Harness `fuzz_parser`: the strict parser (`parse_strict`, `parse_message`) and
//! `Message::parse` on any bytes. Properties: nothing panics; what the strict parser
//! accepts, serde_json reads to the same value (it only ever refuses more); anything
//! accepted re-serialises and parses again to the same value; the message mode accepts
//! nothing the generic mode refuses; and no accepted object holds two keys that a
//! case-insensitive (Go) decoder folds equal (T22). Seeds: `testdata/fuzz-seeds/parser/`.
use portcullis_mcp::{Limits, Message, ParseError, parse_message, parse_strict};
use proptest::prelude::*;
use serde_json::Value;

use crate::{go, mutate};

/// Every property of one input; returns whether `Message::parse` accepted it.
fn check(bytes: &[u8]) -> bool {
    let limits = Limits::default();
    let strict = parse_strict(bytes, limits);
    let message_mode = parse_message(bytes, limits);
    let message = Message::parse(bytes, limits);
    // The parser is our own: its grammar must be serde_json's exactly, in both directions.
    let serde: Result<Value, _> = serde_json::from_slice(bytes);
    if let Err(ParseError::Syntax(why)) = &strict {
        assert!(
            serde.is_err(),
            "strict refused as not JSON ({why}) what serde_json reads"
        );
    }
    if serde.is_ok() {
        assert!(
            !matches!(strict, Err(ParseError::Syntax(_))),
            "serde_json reads what strict refused as not JSON: {strict:?}"
        );
    }
    if let Ok(value) = &strict {
        let loose: Value = serde.expect("strict accepted what serde_json refuses");
        assert_eq!(&loose, value, "strict and serde_json read different values");
        let again = parse_strict(&serde_json::to_vec(value).unwrap(), limits);
        assert_eq!(again.as_ref(), Ok(value), "re-serialised value reads differently");
        assert_no_folded_keys(value);
    }
    if let Ok(value) = &message_mode {
        assert_eq!(
            strict.as_ref(),
            Ok(value),
            "message mode accepted what the generic mode refuses"
        );
    }
    // Kept bytes, when kept, say what the value says, with the id spliced in its place.
    let forwardable = Message::parse_forwardable(bytes::Bytes::copy_from_slice(bytes), limits);
    assert_eq!(
        forwardable.as_ref().ok(),
        message.as_ref().ok(),
        "forwardable reading differs"
    );
    if let Ok(mut kept) = forwardable {
        for _ in 0..2 {
            let out = kept.to_bytes();
            assert!(!out.contains(&b'\n'), "forwarded bytes break line framing");
            let again = Message::parse(&out, limits).expect("forwarded bytes parse");
            assert_eq!(again, kept, "forwarded bytes read differently");
            if kept.id().is_none() {
                break;
            }
            kept.replace_id(serde_json::json!("spliced\u{1F600}\n"));
        }
    }
    match &message {
        Ok(msg) => {
            assert!(
                message_mode.is_ok(),
                "Message::parse accepted what parse_message refuses"
            );
            let again = Message::parse(&msg.to_bytes(), limits).expect("a message's own bytes parse again");
            assert_eq!(&again, msg, "a message reads differently after re-serialising");
            assert_eq!(again.kind(), msg.kind());
            true
        }
        Err(_) => false,
    }
}

/// No object, at any depth, has two keys that Go's `foldName` maps to the same key.
fn assert_no_folded_keys(value: &Value) {
    match value {
        Value::Object(map) => {
            let mut folded: Vec<String> = map.keys().map(|k| go::fold_name(k)).collect();
            folded.sort();
            let before = folded.len();
            folded.dedup();
            assert_eq!(
                before,
                folded.len(),
                "accepted an object with keys that fold equal: {map:?}"
            );
            map.values().for_each(assert_no_folded_keys);
        }
        Value::Array(items) => items.iter().for_each(assert_no_folded_keys),
        _ => {}
    }
}

/// Keys in the spellings that matter: protocol fields, case and Unicode-fold variants.
fn key() -> impl Strategy<Value = String> {
    prop::sample::select(vec![
        "jsonrpc",
        "id",
        "method",
        "params",
        "result",
        "error",
        "name",
        "arguments",
        "_meta",
        "uri",
        "Name",
        "NAME",
        "Method",
        "\\u006eame",
        "nam\\u0065",
        "a",
        "s",
        "\u{17f}",
        "k",
        "\u{212a}",
        "\u{430}rguments",
        "\\ud800",
        "progressToken",
    ])
    .prop_map(|k| format!("\"{k}\""))
}

/// JSON-ish value text: edge-case numbers and strings (some of which serde_json refuses),
/// nested objects and arrays whose keys repeat, and now and then nesting around the depth
/// limit.
fn value() -> impl Strategy<Value = String> {
    let plain = prop::sample::select(vec![
        "null",
        "true",
        "0",
        "-0",
        "-0.0",
        "1.5",
        "1e308",
        "9007199254740993",
        "18446744073709551615",
        "123456789012345678901234567890",
        "\"x\"",
        "\"\\ud83d\\ude00\"",
        "\"\\u0000\"",
        "\"tools/call\"",
        "\"2.0\"",
        "\"=?base64?eA==?=\"",
        "\"a\\n\\t\\\"\\\\\\/b\"",
        "\"\\u00e9t\u{e9} \u{1F600}\"",
        "\"\\uD83D\\uDE00 \\u0041\\u20ac\"",
        "\"0123456789abcdefghij\\r\"",
        "-9223372036854775808",
        "-9223372036854775809",
        "1.0e+2",
        "-1E-2",
        "2.5e-324",
        "0.1",
        "17976931348623157e292",
    ]);
    let edge = prop::sample::select(vec![
        "1e309",
        "-1e-400",
        "18446744073709551616",
        "\"\\ud800\"",
        "\"\\udc00\\ud800\"",
        "01",
        "+1",
        "NaN",
        "1.",
        ".5",
        "1e",
        "-",
        "1E400",
        "\"\\uD83D\\u0041\"",
        "\"\\uD83Dx\"",
        "\"\\u12\"",
        "\"\\x\"",
        "\"tab\there\"",
        "tru",
        "nul",
        "[1,]",
        "{\"a\":1,}",
    ]);
    let leaf = prop_oneof![8 => plain, 1 => edge].prop_map(str::to_owned);
    let tree = leaf.prop_recursive(5, 40, 5, |inner| {
        prop_oneof![
            prop::collection::vec((key(), inner.clone()), 0..4).prop_map(|pairs| object(&pairs)),
            prop::collection::vec(inner, 0..4).prop_map(|items| format!("[{}]", items.join(","))),
        ]
    });
    prop_oneof![
        19 => tree,
        1 => (60usize..70).prop_map(|depth| format!("{}1{}", "[".repeat(depth), "]".repeat(depth))),
    ]
}

fn object(pairs: &[(String, String)]) -> String {
    let members: Vec<String> = pairs.iter().map(|(k, v)| format!("{k}:{v}")).collect();
    format!("{{{}}}", members.join(","))
}

/// A JSON-RPC envelope: the usual members (now and then missing or twice, or of the
/// wrong type) plus, rarely, stray ones; shuffled.
fn message() -> impl Strategy<Value = String> {
    fn member(k: &'static str, v: BoxedStrategy<String>) -> BoxedStrategy<Vec<(String, String)>> {
        let count = prop_oneof![12 => Just(1usize), 1 => Just(0), 1 => Just(2)];
        (count, prop::collection::vec(v, 2))
            .prop_map(move |(n, vs)| vs.into_iter().take(n).map(|v| (format!("\"{k}\""), v)).collect())
            .boxed()
    }
    let id = prop_oneof![8 => prop::sample::select(vec!["1", "\"a\"", "0", "9007199254740993"]).prop_map(str::to_owned), 1 => value()];
    let method =
        prop::sample::select(vec!["\"tools/call\"", "\"ping\"", "\"initialize\"", "1"]).prop_map(str::to_owned);
    let params = prop_oneof![
        8 => prop::collection::vec((key(), value()), 0..4).prop_map(|pairs| object(&pairs)),
        1 => value(),
    ];
    let stray = prop_oneof![6 => Just(Vec::new()), 1 => prop::collection::vec((key(), value()), 1..2)];
    (
        member("jsonrpc", Just("\"2.0\"".to_owned()).boxed()),
        member("id", id.boxed()),
        member("method", method.boxed()),
        member("params", params.boxed()),
        stray,
    )
        .prop_map(|(a, b, c, d, e)| [a, b, c, d, e].concat())
        .prop_shuffle()
        .prop_map(|pairs| object(&pairs))
}

#[test]
fn fuzz_parser_replays_its_seed_corpus() {
    let seeds = mutate::seeds("parser");
    let mut accepted = 0;
    for (name, bytes) in &seeds {
        let ok = check(bytes);
        // Seeds named `ok-…` are valid messages; every other one is a near miss.
        assert_eq!(ok, name.starts_with("ok-"), "seed {name}");
        accepted += usize::from(ok);
    }
    assert!(accepted >= 5, "too few valid seeds");
}

proptest! {
    #[test]
    fn fuzz_parser_mutated_seeds(bytes in mutate::mutated(mutate::seeds("parser"))) {
        check(&bytes);
    }

    #[test]
    fn fuzz_parser_generated_messages(text in message()) {
        check(text.as_bytes());
    }

    #[test]
    fn fuzz_parser_any_bytes(bytes in prop::collection::vec(any::<u8>(), 0..256)) {
        check(&bytes);
    }
}

#[test]
fn fuzz_parser_generators_reach_both_outcomes() {
    use proptest::{strategy::ValueTree, test_runner::TestRunner};
    let mut runner = TestRunner::deterministic();
    let seeds = mutate::mutated(mutate::seeds("parser"));
    let (mut generated, mut mutated) = ((0, 0), (0, 0));
    for _ in 0..500 {
        let text = message().new_tree(&mut runner).unwrap().current();
        if check(text.as_bytes()) {
            generated.0 += 1
        } else {
            generated.1 += 1
        }
        let bytes = seeds.new_tree(&mut runner).unwrap().current();
        if check(&bytes) { mutated.0 += 1 } else { mutated.1 += 1 }
    }
    // (accepted, refused): a generator that only makes one of them tests half the parser.
    assert!(generated.0 > 25 && generated.1 > 25, "generated {generated:?}");
    assert!(mutated.0 > 10 && mutated.1 > 10, "mutated {mutated:?}");
}
