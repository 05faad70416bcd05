//! RFC 8785 (JCS) canonical form and its SHA-256: the argument and result
//! digests every stage agrees on, whatever key order or number spelling the
//! sender used.
//!
//! Every `tools/call` is canonicalised several times (the request the receipt covers, the
//! bytes a host signed, the arguments' digest, the result), so the common case has a
//! fast writer: integers within ±2^53, strings and keys without characters above U+FFFF.
//! There JCS and serde_json agree byte for byte — integers print as ECMAScript prints
//! them, serde_json escapes exactly what JCS escapes (`"`, `\`, control characters, the
//! short forms, lowercase `\u00xx`), and sorting keys by UTF-8 bytes equals sorting by
//! UTF-16 code units. Anything else (fractions, large integers, astral-plane keys) goes
//! to the full implementation, `serde_json_canonicalizer`.
use std::io::Write;

use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

/// Largest integer magnitude that is exact as an IEEE 754 double (2^53).
const MAX_EXACT_INTEGER: u64 = 1 << 53;

/// The RFC 8785 canonical bytes of `value`.
pub fn canonical_bytes(value: &Value) -> Vec<u8> {
    let mut out = Vec::with_capacity(256);
    if write_common(value, &mut out) {
        return out;
    }
    // Canonicalising a parsed `Value` cannot fail: it holds no non-finite numbers.
    serde_json_canonicalizer::to_vec(value).unwrap_or_default()
}

/// SHA-256 over the canonical form of `value`.
pub fn canonical_sha256(value: &Value) -> [u8; 32] {
    Sha256::digest(canonical_bytes(value)).into()
}

/// Writes `value` in canonical form if it lies in the common case; false (with `out`
/// partly written) if it does not.
fn write_common(value: &Value, out: &mut Vec<u8>) -> bool {
    match value {
        Value::Null => out.extend_from_slice(b"null"),
        Value::Bool(true) => out.extend_from_slice(b"true"),
        Value::Bool(false) => out.extend_from_slice(b"false"),
        // Written straight into `out` (no string per number); writing to a Vec cannot fail.
        Value::Number(n) => match (n.as_u64(), n.as_i64()) {
            (Some(u), _) if u <= MAX_EXACT_INTEGER => {
                let _ = write!(out, "{u}");
            }
            (None, Some(i)) if i.unsigned_abs() <= MAX_EXACT_INTEGER => {
                let _ = write!(out, "{i}");
            }
            _ => return false,
        },
        Value::String(s) => write_string(s, out),
        Value::Array(items) => {
            out.push(b'[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                if !write_common(item, out) {
                    return false;
                }
            }
            out.push(b']');
        }
        Value::Object(map) => return write_object(map, out),
    }
    true
}

fn write_object(map: &Map<String, Value>, out: &mut Vec<u8>) -> bool {
    // UTF-8 byte order is UTF-16 code unit order unless a key has a character above U+FFFF
    // (4 UTF-8 bytes, a surrogate pair in UTF-16).
    if map.keys().any(|k| k.chars().any(|c| u32::from(c) > 0xFFFF)) {
        return false;
    }
    let mut entries: Vec<(&String, &Value)> = map.iter().collect();
    entries.sort_unstable_by(|a, b| a.0.as_bytes().cmp(b.0.as_bytes()));
    out.push(b'{');
    for (i, (key, value)) in entries.into_iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        write_string(key, out);
        out.push(b':');
        if !write_common(value, out) {
            return false;
        }
    }
    out.push(b'}');
    true
}

fn write_string(s: &str, out: &mut Vec<u8>) {
    // serde_json's string escaping is JCS's (see the module docs); writing to a Vec cannot fail.
    let _ = serde_json::to_writer(&mut *out, s);
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// Examples from RFC 8785 section 3.2.2 / 3.2.3.
    #[test]
    fn rfc8785_examples() {
        let input: Value = serde_json::from_str(
            r#"{"numbers": [333333333.33333329, 1E30, 4.50, 2e-3, 0.000000000000000000000000001],
                "string": "\u20ac$\u000F\u000aA'\u0042\u0022\u005c\\\"\/",
                "literals": [null, true, false]}"#,
        )
        .unwrap();
        let want = r#"{"literals":[null,true,false],"numbers":[333333333.3333333,1e+30,4.5,0.002,1e-27],"string":"€$\u000f\nA'B\"\\\\\"/"}"#;
        assert_eq!(String::from_utf8(canonical_bytes(&input)).unwrap(), want);
    }

    #[test]
    fn key_order_does_not_change_the_digest() {
        let a: Value = serde_json::from_str(r#"{"b":1,"a":[1,{"y":2,"x":1}]}"#).unwrap();
        let b: Value = serde_json::from_str(r#"{"a":[1,{"x":1,"y":2}],"b":1.0}"#).unwrap();
        assert_eq!(canonical_sha256(&a), canonical_sha256(&b));
    }

    /// The common-case writer takes these, and agrees with the full implementation.
    #[test]
    fn common_case_matches_the_reference() {
        let input: Value = serde_json::from_str(
            r#"{"z":[9007199254740992,-9007199254740992,0,-1],"a\u007f":"\u0000\u001f\b\t\n\f\r\u00e9\ud83d\ude00",
                "\u00e9":1,"e":{"":null,"\ufb33":true,"\ue000":false}}"#,
        )
        .unwrap();
        let mut out = Vec::new();
        assert!(write_common(&input, &mut out), "the common case");
        assert_eq!(out, serde_json_canonicalizer::to_vec(&input).unwrap());
    }

    /// Keys that sort differently in UTF-16 and in UTF-8, fractions and large integers go
    /// to the full implementation.
    #[test]
    fn other_cases_use_the_reference() {
        for text in [
            r#"{"\ud83d\ude00":1,"\ufb33":2}"#,
            r#"{"a":1.5}"#,
            r#"[9007199254740993]"#,
            r#"[-9007199254740993]"#,
            r#"[18446744073709551615]"#,
        ] {
            let input: Value = serde_json::from_str(text).unwrap();
            assert!(!write_common(&input, &mut Vec::new()), "{text}");
            assert_eq!(
                canonical_bytes(&input),
                serde_json_canonicalizer::to_vec(&input).unwrap(),
                "{text}"
            );
        }
    }

    fn json_value() -> impl Strategy<Value = Value> {
        let key = prop_oneof![
            "[a-z]{0,6}",
            "\\PC{0,4}",
            Just("\u{e000}".to_owned()),
            Just("\u{1F600}".to_owned())
        ];
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::Bool),
            any::<i64>().prop_map(Value::from),
            any::<u64>().prop_map(Value::from),
            (-1_000_000i64..1_000_000).prop_map(Value::from),
            any::<f64>()
                .prop_filter("finite", |f| f.is_finite())
                .prop_map(Value::from),
            "\\PC{0,12}".prop_map(Value::String),
            "[\\x00-\\x1f\"\\\\/\\x7f]{0,6}".prop_map(Value::String),
        ];
        leaf.prop_recursive(4, 48, 6, move |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
                prop::collection::vec((key.clone(), inner), 0..6)
                    .prop_map(|entries| Value::Object(entries.into_iter().collect())),
            ]
        })
    }

    proptest! {
        /// Whatever the fast path takes or leaves, the bytes are the reference implementation's.
        #[test]
        fn canonical_bytes_match_the_reference(value in json_value()) {
            prop_assert_eq!(canonical_bytes(&value), serde_json_canonicalizer::to_vec(&value).unwrap());
        }
    }
}
