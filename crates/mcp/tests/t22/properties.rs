//! Property tests: the parser never accepts an object with two keys that Go folds
//! equal, at any depth; and for every message it accepts, the Go-style decoder sees the
//! same method, tool name and arguments as the gateway — and the same tool input fields,
//! unless the arguments hold a lone key that is a case variant of one (user data the
//! gateway cannot tell from a field without the tool's schema; see the README).
use portcullis_mcp::{Limits, Message, parse_strict};
use proptest::prelude::*;
use serde_json::json;

use crate::go::{self, Node, View};

/// One spelling of `base`: mostly exact; otherwise each letter may change case, `s`
/// may become `ſ`, `k` the Kelvin sign, and `a` a Cyrillic `а` (which folds to nothing).
fn spelling(base: &'static str) -> BoxedStrategy<String> {
    let variant = proptest::collection::vec(0u8..6, base.chars().count()).prop_map(move |choices| {
        base.chars()
            .zip(choices)
            .map(|(c, choice)| match (choice, c) {
                (1 | 2, _) => c.to_ascii_uppercase(),
                (3, 's') => '\u{17F}',
                (3, 'k') => '\u{212A}',
                (4, 'a') => '\u{430}',
                _ => c,
            })
            .collect::<String>()
    });
    prop_oneof![4 => Just(base.to_owned()), 1 => variant].boxed()
}

/// An object written as key/value pairs, so that repeated keys survive into the text.
fn object(pairs: &[(String, String)]) -> String {
    let body: Vec<String> = pairs.iter().map(|(k, v)| format!("{}:{v}", json!(k))).collect();
    format!("{{{}}}", body.join(","))
}

/// The key `base` once (mostly), absent, or twice, each time in some spelling.
fn one_or_two(base: &'static str, value: BoxedStrategy<String>) -> BoxedStrategy<Vec<(String, String)>> {
    let pair = (spelling(base), value);
    prop_oneof![
        6 => proptest::collection::vec(pair.clone(), 1..2),
        1 => proptest::collection::vec(pair.clone(), 0..1),
        2 => proptest::collection::vec(pair, 2..3),
    ]
    .boxed()
}

fn arguments() -> BoxedStrategy<String> {
    let value = prop_oneof![
        Just(json!("/tmp").to_string()),
        Just(json!("/etc").to_string()),
        Just("1".to_owned())
    ]
    .boxed();
    (
        one_or_two("key", value.clone()),
        one_or_two("path", value.clone()),
        one_or_two("text", value),
    )
        .prop_map(|(a, b, c)| object(&[a, b, c].concat()))
        .boxed()
}

fn message() -> BoxedStrategy<String> {
    let name = prop_oneof![Just(json!("echo").to_string()), Just(json!("wipe").to_string())].boxed();
    let method = prop_oneof![
        Just(json!("tools/call").to_string()),
        Just(json!("tools/list").to_string())
    ]
    .boxed();
    let params = (
        one_or_two("name", name),
        one_or_two("arguments", arguments()),
        any::<bool>(),
    )
        .prop_map(|(a, b, meta)| {
            let mut pairs = [a, b].concat();
            if meta {
                pairs.push(("_meta".into(), r#"{"progressToken":1}"#.into()));
            }
            pairs
        })
        .prop_shuffle()
        .prop_map(|pairs| object(&pairs))
        .boxed();
    (one_or_two("method", method), one_or_two("params", params))
        .prop_map(|(m, p)| {
            let mut pairs = vec![
                ("jsonrpc".to_owned(), json!("2.0").to_string()),
                ("id".to_owned(), "1".to_owned()),
            ];
            pairs.extend([m, p].concat());
            pairs
        })
        .prop_shuffle()
        .prop_map(|pairs| object(&pairs))
        .boxed()
}

/// Nested objects whose keys are drawn from a few bases in many spellings.
fn nested() -> impl Strategy<Value = String> {
    let key = prop_oneof![
        spelling("name"),
        spelling("ask"),
        spelling("s"),
        spelling("k"),
        spelling("id")
    ];
    let leaf = prop_oneof![Just("1".to_owned()), Just("null".to_owned())];
    leaf.prop_recursive(4, 48, 5, move |inner| {
        prop_oneof![
            proptest::collection::vec((key.clone(), inner.clone()), 0..5).prop_map(|pairs| object(&pairs)),
            proptest::collection::vec(inner, 0..3).prop_map(|items| format!("[{}]", items.join(","))),
        ]
    })
}

fn has_folded_pair(pairs: &[(String, Node)]) -> bool {
    pairs
        .iter()
        .enumerate()
        .any(|(i, (a, _))| pairs[i + 1..].iter().any(|(b, _)| go::fold_name(a) == go::fold_name(b)))
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn t22_no_accepted_object_has_two_keys_that_fold_equal(text in nested()) {
        let accepted = parse_strict(text.as_bytes(), Limits::default()).is_ok();
        let clash = Node::parse(text.as_bytes()).objects().into_iter().any(has_folded_pair);
        prop_assert!(!(accepted && clash), "accepted {}", text);
        if !clash {
            // Nothing else in these objects is refused: the rule costs no honest message.
            prop_assert!(accepted, "refused {}", text);
        }
    }

    #[test]
    fn t22_accepted_messages_read_the_same_to_a_go_decoder(text in message()) {
        if let Ok(msg) = Message::parse(text.as_bytes(), Limits::default()) {
            let (ours, go) = (View::ours(&msg), View::go(text.as_bytes()));
            prop_assert_eq!(ours.call(), go.call(), "{}", text);
            if !go.arguments_impersonate_tool_fields() {
                prop_assert_eq!(ours, go, "{}", text);
            }
        }
    }
}

#[test]
fn t22_the_message_generator_produces_both_outcomes() {
    use proptest::{strategy::ValueTree, test_runner::TestRunner};
    let mut runner = TestRunner::deterministic();
    let (mut accepted, mut refused) = (0, 0);
    for _ in 0..500 {
        let text = message().new_tree(&mut runner).unwrap().current();
        match Message::parse(text.as_bytes(), Limits::default()) {
            Ok(_) => accepted += 1,
            Err(_) => refused += 1,
        }
    }
    assert!(accepted > 50 && refused > 50, "accepted {accepted}, refused {refused}");
}
