//! Arbitrary JSON values for the property tests of the writers (`encode`, `canonical`):
//! keys and strings with controls, quotes, backslashes, private-use and astral-plane
//! characters and long clean runs; integers of every size and finite doubles.
use proptest::prelude::*;
use serde_json::Value;

fn text() -> impl Strategy<Value = String> + Clone {
    prop_oneof![
        "[a-z]{0,6}",
        "\\PC{0,12}",
        "[\\x00-\\x1f\"\\\\/\\x7f a-z]{0,40}",
        "[a-z]{0,5}".prop_map(|s| s.repeat(30)),
        Just("\u{e000}".to_owned()),
        Just("\u{1F600}".to_owned()),
    ]
}

/// A JSON value up to four levels deep.
pub(crate) fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        (-1_000_000i64..1_000_000).prop_map(Value::from),
        any::<f64>()
            .prop_filter("finite", |f| f.is_finite())
            .prop_map(Value::from),
        text().prop_map(Value::String),
    ];
    leaf.prop_recursive(4, 48, 6, move |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::vec((text(), inner), 0..6)
                .prop_map(|entries| Value::Object(entries.into_iter().collect())),
        ]
    })
}
