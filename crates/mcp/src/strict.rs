//! Strict JSON parsing for everything that enters the gateway.
//!
//! `serde_json` silently keeps the last of two duplicate keys; a signer and a
//! verifier (or the gateway and an upstream) could then disagree about what a
//! message says. This parser rejects duplicate keys, limits nesting depth and
//! total size, and otherwise produces an ordinary order-preserving `Value`.
//!
//! Two keys that differ only in letter case are duplicates too, to a decoder that
//! matches keys case-insensitively (Go's `encoding/json`: `name` and `Name`, `ſ` and
//! `s`, the Kelvin sign and `k`), so they are refused everywhere (T22, the private module `fold`).
//! [`parse_message`] (behind `Message::parse`, the one way wire messages come in) also
//! knows where it is in a message and refuses a key that folds onto a protocol field
//! name without being it, such as a lone `"Method"` (the private module `level`).
use std::{cell::Cell, fmt};

use serde::de::{self, DeserializeSeed, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Value, map::Entry};

use crate::{
    fold::{self, FoldedKeys, Seen},
    level::Level,
};

/// Bounds applied to every message (T17).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Largest accepted message, in bytes.
    pub max_bytes: usize,
    /// Deepest accepted nesting of arrays and objects.
    pub max_depth: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_bytes: 4 * 1024 * 1024,
            max_depth: 64,
        }
    }
}

/// Why a message was refused before anything looked at its meaning.
#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
pub enum ParseError {
    #[error("message is {size} bytes, over the limit of {limit} bytes; send smaller messages")]
    TooLarge { size: usize, limit: usize },
    #[error("message nests deeper than {limit} levels; flatten the arguments")]
    TooDeep { limit: usize },
    #[error("duplicate key `{key}` in a JSON object; each key may appear once")]
    DuplicateKey { key: String },
    /// Two keys of one object that a case-insensitive decoder takes for the same key (T22).
    #[error(
        "keys `{first}` and `{second}` in one JSON object differ only in letter case, which some servers ignore; send the key once, spelled exactly"
    )]
    FoldedDuplicateKey { first: String, second: String },
    /// A key that a case-insensitive decoder takes for the protocol field `field` (T22).
    #[error(
        "key `{key}` is not the protocol field `{field}` but matches it when letter case is ignored, as some servers do; spell it exactly `{field}` or rename it"
    )]
    FoldedProtocolKey { key: String, field: String },
    #[error("message is not valid JSON: {0}")]
    Syntax(String),
}

/// Parses `bytes` as one JSON value under `limits`, rejecting duplicate keys, also
/// those that differ only in letter case. For JSON that is not an MCP message
/// (manifests, receipts); messages go through [`parse_message`].
pub fn parse_strict(bytes: &[u8], limits: Limits) -> Result<Value, ParseError> {
    parse_at(bytes, limits, Level::Data)
}

/// Parses `bytes` as one JSON-RPC message: as [`parse_strict`], and also refusing keys
/// of the envelope, `params`, `result`, `error`, `ref`, `argument` and `_meta` objects
/// that fold onto a protocol field name without being it.
pub fn parse_message(bytes: &[u8], limits: Limits) -> Result<Value, ParseError> {
    parse_at(bytes, limits, Level::Envelope)
}

fn parse_at(bytes: &[u8], limits: Limits, level: Level) -> Result<Value, ParseError> {
    if bytes.len() > limits.max_bytes {
        return Err(ParseError::TooLarge {
            size: bytes.len(),
            limit: limits.max_bytes,
        });
    }
    let refusal = Cell::new(None);
    let mut de = serde_json::Deserializer::from_slice(bytes);
    // Our own depth check runs first; serde_json's fixed limit of 128 stays as a backstop.
    let seed = StrictSeed {
        depth: 0,
        max_depth: limits.max_depth,
        level,
        refusal: &refusal,
    };
    let value = seed.deserialize(&mut de).map_err(|e| match refusal.take() {
        Some(refused) => refused,
        None if e.to_string().contains("recursion limit exceeded") => ParseError::TooDeep {
            limit: limits.max_depth,
        },
        None => ParseError::Syntax(e.to_string()),
    })?;
    de.end().map_err(|e| ParseError::Syntax(e.to_string()))?;
    Ok(value)
}

/// The visitor's state: how deep it is, where in a message, and the slot in which a
/// refusal is left for [`parse_at`] (serde's error type carries only text).
#[derive(Clone, Copy)]
struct StrictSeed<'r> {
    depth: usize,
    max_depth: usize,
    level: Level,
    refusal: &'r Cell<Option<ParseError>>,
}

impl StrictSeed<'_> {
    #[cold]
    fn refuse<E: de::Error>(self, refused: ParseError) -> E {
        let text = refused.to_string();
        self.refusal.set(Some(refused));
        E::custom(text)
    }

    fn nested<E: de::Error>(self) -> Result<Self, E> {
        if self.depth >= self.max_depth {
            return Err(self.refuse(ParseError::TooDeep { limit: self.max_depth }));
        }
        Ok(Self {
            depth: self.depth + 1,
            level: Level::Data,
            ..self
        })
    }

    /// Refuses `key` if an earlier key of `out` folds like it, or if it stands in for a
    /// protocol field here; otherwise says where its value sits. Exact repeats are left
    /// to the caller's insert, so that a plain key costs one lookup in `out`.
    #[inline]
    fn admit<E: de::Error>(self, key: &str, out: &Map<String, Value>, folds: &mut FoldedKeys) -> Result<Level, E> {
        if self.level.is_field(key) {
            // A protocol field spelled exactly: any other key folding like it, before or
            // after, is not a field name and is refused as standing in for this one.
            return Ok(self.level.child(key));
        }
        // A short scan of a small object beats hashing the folded key.
        let earlier = |k: &str| match out.len() {
            0..=16 => out.keys().any(|e| e == k),
            _ => out.contains_key(k),
        };
        let folded = match folds.check(key, earlier) {
            Seen::New { folded } => folded,
            Seen::Clash => return Err(self.clash(key, out)),
        };
        if let Some(field) = self.level.impersonated(key, folded) {
            return Err(self.impersonation(key, field));
        }
        Ok(self.level.child(key))
    }

    #[cold]
    fn clash<E: de::Error>(self, key: &str, out: &Map<String, Value>) -> E {
        if out.contains_key(key) {
            return self.duplicate(key);
        }
        let first = out.keys().find(|k| fold::fold_eq(k, key)).cloned().unwrap_or_default();
        self.refuse(ParseError::FoldedDuplicateKey {
            first,
            second: key.to_owned(),
        })
    }

    #[cold]
    fn impersonation<E: de::Error>(self, key: &str, field: &str) -> E {
        self.refuse(ParseError::FoldedProtocolKey {
            key: key.to_owned(),
            field: field.to_owned(),
        })
    }

    #[cold]
    fn duplicate<E: de::Error>(self, key: &str) -> E {
        self.refuse(ParseError::DuplicateKey { key: key.to_owned() })
    }
}

impl<'de> DeserializeSeed<'de> for StrictSeed<'_> {
    type Value = Value;
    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for StrictSeed<'_> {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a JSON value")
    }
    fn visit_bool<E>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }
    fn visit_i64<E>(self, v: i64) -> Result<Value, E> {
        Ok(Value::from(v))
    }
    fn visit_u64<E>(self, v: u64) -> Result<Value, E> {
        Ok(Value::from(v))
    }
    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Value, E> {
        serde_json::Number::from_f64(v)
            .map(Value::Number)
            .ok_or_else(|| E::custom("number is not finite"))
    }
    fn visit_str<E>(self, v: &str) -> Result<Value, E> {
        Ok(Value::String(v.to_owned()))
    }
    fn visit_string<E>(self, v: String) -> Result<Value, E> {
        Ok(Value::String(v))
    }
    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let inner = self.nested()?;
        let mut out = Vec::new();
        while let Some(v) = seq.next_element_seed(inner)? {
            out.push(v);
        }
        Ok(Value::Array(out))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let inner = self.nested()?;
        // Room for four keys from the start: a request's envelope has four (`jsonrpc`,
        // `id`, `method`, `params`), and an empty map would grow its entries and its
        // table on the fourth.
        let mut out = Map::with_capacity(4);
        let mut folds = FoldedKeys::default();
        while let Some(key) = map.next_key::<String>()? {
            let level = self.admit(&key, &out, &mut folds)?;
            // One lookup per key: the slot found free is the one filled.
            match out.entry(key) {
                Entry::Occupied(taken) => return Err(self.duplicate(taken.key())),
                Entry::Vacant(slot) => {
                    slot.insert(map.next_value_seed(StrictSeed { level, ..inner })?);
                }
            }
        }
        Ok(Value::Object(out))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(s: &str) -> Result<Value, ParseError> {
        parse_strict(
            s.as_bytes(),
            Limits {
                max_bytes: 1024,
                max_depth: 4,
            },
        )
    }

    #[test]
    fn table_of_inputs() {
        let cases: &[(&str, Result<&str, ParseError>)] = &[
            (r#"{"a":1,"b":[true,null,"x"]}"#, Ok(r#"{"a":1,"b":[true,null,"x"]}"#)),
            (r#"{"b":1,"a":2}"#, Ok(r#"{"b":1,"a":2}"#)),
            (r#"{"a":1,"a":2}"#, Err(ParseError::DuplicateKey { key: "a".into() })),
            (r#"{"A":1,"A":2}"#, Err(ParseError::DuplicateKey { key: "A".into() })),
            (r#"{"a":1,"A":2}"#, Err(folded("a", "A"))),
            (r#"{"A":1,"a":2}"#, Err(folded("A", "a"))),
            (r#"{"x":[{"s":1,"\u017f":2}]}"#, Err(folded("s", "\u{17f}"))),
            (r#"{"Ab":1,"aB":2}"#, Err(folded("Ab", "aB"))),
            (r#"{"Name":1,"method":"x"}"#, Ok(r#"{"Name":1,"method":"x"}"#)),
            (
                r#"{"x":{"k":1,"k":1}}"#,
                Err(ParseError::DuplicateKey { key: "k".into() }),
            ),
            (r#"[[[[1]]]]"#, Ok("[[[[1]]]]")),
            (r#"[[[[[1]]]]]"#, Err(ParseError::TooDeep { limit: 4 })),
            (r#"{"a":{"b":{"c":{"d":{}}}}}"#, Err(ParseError::TooDeep { limit: 4 })),
        ];
        for (input, want) in cases {
            let got = parse(input);
            match want {
                Ok(text) => assert_eq!(got.map(|v| v.to_string()).as_deref(), Ok(*text), "{input}"),
                Err(e) => assert_eq!(got.as_ref().err(), Some(e), "{input}"),
            }
        }
    }

    fn folded(first: &str, second: &str) -> ParseError {
        ParseError::FoldedDuplicateKey {
            first: first.into(),
            second: second.into(),
        }
    }

    #[test]
    fn many_keys_that_need_folding_are_all_compared() {
        let limits = Limits {
            max_bytes: 1 << 20,
            max_depth: 4,
        };
        let keys: Vec<String> = (0..40).map(|i| format!("\"Key{i}\":{i}")).collect();
        let object = format!("{{{}}}", keys.join(","));
        assert!(parse_strict(object.as_bytes(), limits).is_ok());
        for (late, early) in [("key39", "Key39"), ("KEY3", "Key3"), ("kEy17", "Key17")] {
            let text = format!("{{{},\"{late}\":0}}", keys.join(","));
            assert_eq!(
                parse_strict(text.as_bytes(), limits),
                Err(folded(early, late)),
                "{late}"
            );
        }
    }

    #[test]
    fn a_duplicate_key_is_reported_whole() {
        let got = parse(r#"{"k at line 1":1,"k at line 1":2}"#);
        assert_eq!(
            got,
            Err(ParseError::DuplicateKey {
                key: "k at line 1".into()
            })
        );
    }

    #[test]
    fn escaped_duplicate_keys_are_still_duplicates() {
        let got = parse(r#"{"a":1,"\u0061":2}"#);
        assert_eq!(got, Err(ParseError::DuplicateKey { key: "a".into() }));
    }

    #[test]
    fn size_and_syntax_errors() {
        let big = format!("\"{}\"", "x".repeat(2000));
        assert_eq!(
            parse(&big),
            Err(ParseError::TooLarge {
                size: 2002,
                limit: 1024
            })
        );
        assert!(matches!(parse("{\"a\":"), Err(ParseError::Syntax(_))));
        assert!(matches!(parse("{} {}"), Err(ParseError::Syntax(_))));
    }

    #[test]
    fn deep_bomb_is_refused_without_stack_overflow() {
        let bomb = "[".repeat(100_000);
        let r = parse_strict(
            bomb.as_bytes(),
            Limits {
                max_bytes: 1 << 20,
                max_depth: 64,
            },
        );
        assert_eq!(r, Err(ParseError::TooDeep { limit: 64 }));
    }

    proptest::proptest! {
        #[test]
        fn agrees_with_serde_json_on_duplicate_free_input(v in arb_json()) {
            let text = v.to_string();
            let parsed = parse_strict(text.as_bytes(), Limits { max_bytes: 1 << 20, max_depth: 64 });
            proptest::prop_assert_eq!(parsed, Ok(v));
        }
    }

    fn arb_json() -> impl proptest::strategy::Strategy<Value = Value> {
        use proptest::prelude::*;
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::Bool),
            any::<i64>().prop_map(Value::from),
            "[a-z\\u{e9}\\u{1F600}]{0,8}".prop_map(Value::String),
        ];
        leaf.prop_recursive(4, 32, 6, |inner| {
            prop_oneof![
                proptest::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
                proptest::collection::btree_map("[a-z]{1,4}", inner, 0..6)
                    .prop_map(|m| Value::Object(m.into_iter().collect())),
            ]
        })
    }
}
