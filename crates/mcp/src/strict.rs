//! Strict JSON parsing for everything that enters the gateway.
//!
//! `serde_json` silently keeps the last of two duplicate keys; a signer and a
//! verifier (or the gateway and an upstream) could then disagree about what a
//! message says. This parser rejects duplicate keys, limits nesting depth and
//! total size, and otherwise produces an ordinary order-preserving `Value`.
use std::fmt;

use serde::de::{self, DeserializeSeed, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Value, map::Entry};

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
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ParseError {
    #[error("message is {size} bytes, over the limit of {limit} bytes; send smaller messages")]
    TooLarge { size: usize, limit: usize },
    #[error("message nests deeper than {limit} levels; flatten the arguments")]
    TooDeep { limit: usize },
    #[error("duplicate key `{key}` in a JSON object; each key may appear once")]
    DuplicateKey { key: String },
    #[error("message is not valid JSON: {0}")]
    Syntax(String),
}

/// Parses `bytes` as one JSON value under `limits`, rejecting duplicate keys.
pub fn parse_strict(bytes: &[u8], limits: Limits) -> Result<Value, ParseError> {
    if bytes.len() > limits.max_bytes {
        return Err(ParseError::TooLarge {
            size: bytes.len(),
            limit: limits.max_bytes,
        });
    }
    let mut de = serde_json::Deserializer::from_slice(bytes);
    // Our own depth check runs first; serde_json's fixed limit of 128 stays as a backstop.
    let seed = StrictSeed {
        depth: 0,
        max_depth: limits.max_depth,
    };
    let value = seed.deserialize(&mut de).map_err(|e| classify(e, limits))?;
    de.end().map_err(|e| ParseError::Syntax(e.to_string()))?;
    Ok(value)
}

const DUPLICATE_TAG: &str = "\u{0}duplicate key:";
const DEPTH_TAG: &str = "\u{0}too deep";

fn classify(e: serde_json::Error, limits: Limits) -> ParseError {
    let text = e.to_string();
    if let Some(rest) = text.strip_prefix(DUPLICATE_TAG) {
        let key = rest.split(" at line ").next().unwrap_or(rest).to_owned();
        ParseError::DuplicateKey { key }
    } else if text.starts_with(DEPTH_TAG) || text.contains("recursion limit exceeded") {
        ParseError::TooDeep {
            limit: limits.max_depth,
        }
    } else {
        ParseError::Syntax(text)
    }
}

#[derive(Clone, Copy)]
struct StrictSeed {
    depth: usize,
    max_depth: usize,
}

impl StrictSeed {
    fn nested<E: de::Error>(self) -> Result<Self, E> {
        if self.depth >= self.max_depth {
            return Err(E::custom(DEPTH_TAG));
        }
        Ok(Self {
            depth: self.depth + 1,
            ..self
        })
    }
}

impl<'de> DeserializeSeed<'de> for StrictSeed {
    type Value = Value;
    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for StrictSeed {
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
        let mut out = Map::new();
        while let Some(key) = map.next_key::<String>()? {
            // One lookup per key: the slot found free is the one filled.
            match out.entry(key) {
                Entry::Occupied(taken) => {
                    return Err(de::Error::custom(format!("{DUPLICATE_TAG}{}", taken.key())));
                }
                Entry::Vacant(slot) => {
                    slot.insert(map.next_value_seed(inner)?);
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
