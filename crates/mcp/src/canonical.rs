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

// serde_json's string escaping is JCS's (see above); `encode` writes it.
use crate::encode::{buffer, json_size, write_items, write_members, write_str};

/// Largest integer magnitude that is exact as an IEEE 754 double (2^53).
const MAX_EXACT_INTEGER: u64 = 1 << 53;

/// The RFC 8785 canonical bytes of `value`.
pub fn canonical_bytes(value: &Value) -> Vec<u8> {
    // Sized from the value, so the common case writes without growing the buffer.
    let mut out = buffer(json_size(value));
    if write_common(value, &mut out) {
        return out;
    }
    full_form(value)
}

/// The canonical bytes by the full implementation (outside the common case).
fn full_form(value: &Value) -> Vec<u8> {
    // Canonicalising a parsed `Value` cannot fail: it holds no non-finite numbers.
    serde_json_canonicalizer::to_vec(value).unwrap_or_default()
}

/// Largest scratch buffer a thread keeps between digests (a bigger one is given back).
const MAX_KEPT_SCRATCH: usize = 64 * 1024;

/// SHA-256 over the canonical form of `value`. The bytes are written into a buffer the
/// thread keeps between calls: every `tools/call` digests its request and its result, and
/// the bytes are not needed once hashed.
pub fn canonical_sha256(value: &Value) -> [u8; 32] {
    thread_local! {
        static SCRATCH: std::cell::RefCell<Vec<u8>> = const { std::cell::RefCell::new(Vec::new()) };
    }
    SCRATCH.with(|scratch| {
        let Ok(mut out) = scratch.try_borrow_mut() else {
            return Sha256::digest(canonical_bytes(value)).into();
        };
        out.clear();
        let digest = if write_common(value, &mut out) {
            Sha256::digest(&out[..]).into()
        } else {
            Sha256::digest(full_form(value)).into()
        };
        if out.capacity() > MAX_KEPT_SCRATCH {
            *out = Vec::new();
        }
        digest
    })
}

/// A member of an object written by [`canonical_object`], borrowed rather than copied
/// into a `Value`.
#[derive(Debug, Clone, Copy)]
pub enum Member<'a> {
    Text(&'a str),
    Unsigned(u64),
    Value(&'a Value),
}

impl Member<'_> {
    /// Its size as JSON, to size the buffer by ([`json_size`]).
    fn size(self) -> usize {
        match self {
            Self::Text(s) => s.len() + 2,
            Self::Unsigned(_) => 20,
            Self::Value(v) => json_size(v),
        }
    }

    fn to_value(self) -> Value {
        match self {
            Self::Text(s) => Value::from(s),
            Self::Unsigned(n) => Value::from(n),
            Self::Value(v) => v.clone(),
        }
    }
}

/// The RFC 8785 canonical bytes of the object with `members` (each key once), written
/// from the borrowed members: the bytes a host signs hold the call's arguments, which are
/// not copied into a new object for it. Outside the common case (see the module docs) the
/// object is built and handed to the full implementation.
pub fn canonical_object(members: &mut [(&str, Member<'_>)]) -> Vec<u8> {
    let size = members
        .iter()
        .map(|(key, member)| key.len() + 4 + member.size())
        .sum::<usize>();
    let mut out = buffer(2 + size);
    if members.iter().all(|(k, _)| sorts_as_utf16(k)) {
        members.sort_unstable_by(|a, b| a.0.as_bytes().cmp(b.0.as_bytes()));
        let common = write_members(members.iter().copied(), &mut out, |member, out| match member {
            Member::Text(s) => {
                write_str(s, out);
                true
            }
            Member::Unsigned(n) if n <= MAX_EXACT_INTEGER => {
                let _ = write!(out, "{n}");
                true
            }
            Member::Unsigned(_) => false,
            Member::Value(v) => write_common(v, out),
        });
        if common {
            return out;
        }
    }
    let object: Map<String, Value> = members.iter().map(|(k, m)| ((*k).to_owned(), m.to_value())).collect();
    canonical_bytes(&Value::Object(object))
}

/// Whether sorting `key` by UTF-8 bytes sorts it as UTF-16 code units do: unless it has a
/// character above U+FFFF (4 UTF-8 bytes, a surrogate pair in UTF-16).
fn sorts_as_utf16(key: &str) -> bool {
    // Such a character is the only one whose UTF-8 form starts with a byte of 0xF0 or more.
    key.bytes().all(|b| b < 0xF0)
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
        Value::String(s) => write_str(s, out),
        Value::Array(items) => return write_items(items, out, write_common),
        Value::Object(map) => return write_object(map, out),
    }
    true
}

/// Objects of up to this many members are sorted on the stack.
const SMALL_OBJECT: usize = 8;

fn write_object(map: &Map<String, Value>, out: &mut Vec<u8>) -> bool {
    if !map.keys().all(|k| sorts_as_utf16(k)) {
        return false;
    }
    let by_key = |a: &(&str, &Value), b: &(&str, &Value)| a.0.as_bytes().cmp(b.0.as_bytes());
    if map.len() <= SMALL_OBJECT {
        const NULL: &Value = &Value::Null;
        let mut entries = [("", NULL); SMALL_OBJECT];
        for (slot, (k, v)) in entries.iter_mut().zip(map) {
            *slot = (k.as_str(), v);
        }
        let entries = &mut entries[..map.len()];
        entries.sort_unstable_by(by_key);
        return write_members(entries.iter().copied(), out, write_common);
    }
    let mut entries: Vec<(&str, &Value)> = map.iter().map(|(k, v)| (k.as_str(), v)).collect();
    entries.sort_unstable_by(by_key);
    write_members(entries, out, write_common)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::arbitrary::json_value;
    use proptest::prelude::*;
    use serde_json::json;

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

    /// An object written from borrowed members has the bytes of the same object built whole,
    /// in the common case and outside it.
    #[test]
    fn an_object_of_borrowed_members_is_the_object_built_whole() {
        for arguments in [
            json!({"b": "x\n\"y", "a": [1, -2, {"z": null, "é": true}]}),
            json!({"ratio": 0.5}),
            json!({"\u{1F600}": 1, "\u{fb33}": 2}),
        ] {
            for (iat, key) in [(1_700_000_000, "nonce"), (u64::MAX, "n\u{1F600}")] {
                let mut members = [
                    ("tool", Member::Text("echo")),
                    ("arguments", Member::Value(&arguments)),
                    (key, Member::Text("abc")),
                    ("iat", Member::Unsigned(iat)),
                ];
                let whole = json!({"tool": "echo", "arguments": arguments, key: "abc", "iat": iat});
                assert_eq!(canonical_object(&mut members), canonical_bytes(&whole), "{whole}");
            }
        }
    }

    /// Objects past the stack-sorted size, and keys either side of U+FFFF, are written as
    /// the full implementation writes them.
    #[test]
    fn objects_of_any_size_and_keys_near_the_astral_planes_match_the_reference() {
        for n in [0, 1, SMALL_OBJECT - 1, SMALL_OBJECT, SMALL_OBJECT + 1, 40] {
            let object: Map<String, Value> = (0..n)
                .rev()
                .map(|i| (format!("k{i:02}\u{e9}"), Value::from(i)))
                .collect();
            let value = Value::Object(object);
            let mut out = Vec::new();
            assert!(write_common(&value, &mut out), "{n} members: the common case");
            assert_eq!(out, serde_json_canonicalizer::to_vec(&value).unwrap(), "{n} members");
        }
        assert!(sorts_as_utf16("\u{ffff}\u{800}\u{7f}"));
        assert!(!sorts_as_utf16("a\u{10000}"));
        assert!(!sorts_as_utf16("\u{10ffff}"));
        let astral = json!({"\u{1F600}": 1, "\u{ffff}": 2, "a": 3});
        assert_eq!(
            canonical_bytes(&astral),
            serde_json_canonicalizer::to_vec(&astral).unwrap()
        );
    }

    proptest! {
        /// Whatever the fast path takes or leaves, the bytes are the reference implementation's.
        #[test]
        fn canonical_bytes_match_the_reference(value in json_value()) {
            prop_assert_eq!(canonical_bytes(&value), serde_json_canonicalizer::to_vec(&value).unwrap());
        }

        /// The digest written through the thread's scratch buffer (reused from one value to
        /// the next, common case or not) is the digest of the reference bytes.
        #[test]
        fn canonical_sha256_is_the_digest_of_the_reference_bytes(first in json_value(), second in json_value()) {
            for value in [&first, &second, &first] {
                let reference: [u8; 32] = Sha256::digest(serde_json_canonicalizer::to_vec(value).unwrap()).into();
                prop_assert_eq!(canonical_sha256(value), reference);
            }
        }
    }
}
