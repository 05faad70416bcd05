//! Strict JSON parsing for everything that enters the gateway.
//!
//! `serde_json` silently keeps the last of two duplicate keys; a signer and a
//! verifier (or the gateway and an upstream) could then disagree about what a
//! message says. This parser rejects duplicate keys, limits nesting depth and
//! total size, and otherwise produces an ordinary order-preserving `Value`: the one
//! `serde_json` would read from the same bytes. It is our own (no serde visitor): keys
//! are checked while still borrowed from the input, and strings are scanned a word at a
//! time (the private module `tokens`).
//!
//! Two keys that differ only in letter case are duplicates too, to a decoder that
//! matches keys case-insensitively (Go's `encoding/json`: `name` and `Name`, `ſ` and
//! `s`, the Kelvin sign and `k`), so they are refused everywhere (T22, the private module `fold`).
//! [`parse_message`] (behind `Message::parse`, the one way wire messages come in) also
//! knows where it is in a message and refuses a key that folds onto a protocol field
//! name without being it, such as a lone `"Method"` (the private module `level`).
use std::ops::Range;

use serde_json::{Map, Value};

use crate::{
    fold::{self, FoldedKeys, Seen},
    level::Level,
    tokens::Reader,
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
    parse_at(bytes, limits, Level::Data).map(|(value, _)| value)
}

/// Parses `bytes` as one JSON-RPC message: as [`parse_strict`], and also refusing keys
/// of the envelope, `params`, `result`, `error`, `ref`, `argument` and `_meta` objects
/// that fold onto a protocol field name without being it.
pub fn parse_message(bytes: &[u8], limits: Limits) -> Result<Value, ParseError> {
    parse_at(bytes, limits, Level::Envelope).map(|(value, _)| value)
}

/// What [`parse_message_on_wire`] learned about the bytes besides their value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct WireText {
    /// Whether writing the value out again would say exactly what the bytes say: every
    /// number an integer read exactly (a float or an integer past 64 bits is written as
    /// serde_json rounds it), and no whitespace but spaces (so the bytes fit on one
    /// line of newline-delimited framing).
    pub(crate) exact: bool,
    /// Where the message's `id` value lies in the bytes, if it has one.
    pub(crate) id: Option<Range<usize>>,
}

/// [`parse_message`], also saying whether the bytes can be forwarded in place of the
/// value, and where the id to splice is ([`crate::Message`] keeps them).
pub(crate) fn parse_message_on_wire(bytes: &[u8], limits: Limits) -> Result<(Value, WireText), ParseError> {
    parse_at(bytes, limits, Level::Envelope)
}

fn parse_at(bytes: &[u8], limits: Limits, level: Level) -> Result<(Value, WireText), ParseError> {
    if bytes.len() > limits.max_bytes {
        return Err(ParseError::TooLarge {
            size: bytes.len(),
            limit: limits.max_bytes,
        });
    }
    let mut parser = Parser {
        reader: Reader::new(bytes),
        max_depth: limits.max_depth,
        id: None,
    };
    let value = parser.value(0, level)?;
    if !parser.reader.at_end() {
        return Err(parser.reader.error("trailing characters"));
    }
    let text = WireText {
        exact: parser.reader.exact(),
        id: parser.id,
    };
    Ok((value, text))
}

/// The structural half of the parser: arrays and objects, depth, and the rules on keys.
/// Bytes are read by [`Reader`] ([`crate::tokens`]).
struct Parser<'a> {
    reader: Reader<'a>,
    max_depth: usize,
    /// Where the envelope's `id` value lies (message mode).
    id: Option<Range<usize>>,
}

impl Parser<'_> {
    /// One value, at `depth` containers deep, in the place `level` of a message.
    fn value(&mut self, depth: usize, level: Level) -> Result<Value, ParseError> {
        match self.reader.peek() {
            Some(b'{') => {
                self.enter(depth)?;
                self.object(depth + 1, level)
            }
            Some(b'[') => {
                self.enter(depth)?;
                self.array(depth + 1)
            }
            Some(b'"') => {
                self.reader.bump();
                Ok(Value::String(self.reader.string()?.into_owned()))
            }
            Some(b't' | b'f' | b'n') => self.reader.literal(),
            Some(b'-' | b'0'..=b'9') => self.reader.number(),
            Some(_) => Err(self.reader.error("expected value")),
            None => Err(self.reader.error("EOF while parsing a value")),
        }
    }

    /// Opens a container at `depth`: refused past the nesting limit (T17), before
    /// anything inside it is read.
    fn enter(&mut self, depth: usize) -> Result<(), ParseError> {
        if depth >= self.max_depth {
            return Err(ParseError::TooDeep { limit: self.max_depth });
        }
        self.reader.bump();
        Ok(())
    }

    fn array(&mut self, depth: usize) -> Result<Value, ParseError> {
        let mut out = Vec::new();
        if self.reader.peek() == Some(b']') {
            self.reader.bump();
            return Ok(Value::Array(out));
        }
        loop {
            out.push(self.value(depth, Level::Data)?);
            match self.reader.peek() {
                Some(b',') => {
                    self.reader.bump();
                    if self.reader.peek() == Some(b']') {
                        return Err(self.reader.error("trailing comma"));
                    }
                }
                Some(b']') => {
                    self.reader.bump();
                    return Ok(Value::Array(out));
                }
                Some(_) => return Err(self.reader.error("expected `,` or `]`")),
                None => return Err(self.reader.error("EOF while parsing a list")),
            }
        }
    }

    fn object(&mut self, depth: usize, level: Level) -> Result<Value, ParseError> {
        // An empty object allocates nothing (`{}` is common: capabilities, schemas).
        if self.reader.peek() == Some(b'}') {
            self.reader.bump();
            return Ok(Value::Object(Map::new()));
        }
        // Room for four keys from the start: a request's envelope has four (`jsonrpc`,
        // `id`, `method`, `params`), and an empty map would grow its entries and its
        // table on the fourth.
        let mut out = Map::with_capacity(4);
        let mut folds = FoldedKeys::default();
        loop {
            match self.reader.peek() {
                Some(b'"') => self.reader.bump(),
                Some(b'}') => return Err(self.reader.error("trailing comma")),
                Some(_) => return Err(self.reader.error("key must be a string")),
                None => return Err(self.reader.error("EOF while parsing an object")),
            }
            let key = self.reader.string()?;
            let child = admit(level, &key, &out, &mut folds)?;
            if holds(&out, &key) {
                return Err(ParseError::DuplicateKey { key: key.into_owned() });
            }
            match self.reader.peek() {
                Some(b':') => self.reader.bump(),
                Some(_) => return Err(self.reader.error("expected `:`")),
                None => return Err(self.reader.error("EOF while parsing an object")),
            }
            let value = if level == Level::Envelope && key == "id" {
                let start = self.reader.value_start();
                let value = self.value(depth, child)?;
                self.id = Some(start..self.reader.position());
                value
            } else {
                self.value(depth, child)?
            };
            out.insert(key.into_owned(), value);
            match self.reader.peek() {
                Some(b',') => self.reader.bump(),
                Some(b'}') => {
                    self.reader.bump();
                    return Ok(Value::Object(out));
                }
                Some(_) => return Err(self.reader.error("expected `,` or `}`")),
                None => return Err(self.reader.error("EOF while parsing an object")),
            }
        }
    }
}

/// Refuses `key` if an earlier key of `out` folds like it, or if it stands in for a
/// protocol field at `level`; otherwise says where its value sits. Exact repeats are
/// left to the caller.
#[inline]
fn admit(level: Level, key: &str, out: &Map<String, Value>, folds: &mut FoldedKeys) -> Result<Level, ParseError> {
    if level.is_field(key) {
        // A protocol field spelled exactly: any other key folding like it, before or
        // after, is not a field name and is refused as standing in for this one.
        return Ok(level.child(key));
    }
    let folded = match folds.check(key, |k| holds(out, k)) {
        Seen::New { folded } => folded,
        Seen::Clash => return Err(clash(key, out)),
    };
    if let Some(field) = level.impersonated(key, folded) {
        return Err(ParseError::FoldedProtocolKey {
            key: key.to_owned(),
            field: field.to_owned(),
        });
    }
    Ok(level.child(key))
}

/// Whether `out` has the key `key`: a short scan of a small object (cheaper than hashing
/// the key), a lookup in a large one.
#[inline]
fn holds(out: &Map<String, Value>, key: &str) -> bool {
    match out.len() {
        0..=16 => out.keys().any(|k| k == key),
        _ => out.contains_key(key),
    }
}

#[cold]
fn clash(key: &str, out: &Map<String, Value>) -> ParseError {
    if out.contains_key(key) {
        return ParseError::DuplicateKey { key: key.to_owned() };
    }
    let first = out.keys().find(|k| fold::fold_eq(k, key)).cloned().unwrap_or_default();
    ParseError::FoldedDuplicateKey {
        first,
        second: key.to_owned(),
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
    fn every_escape_reads_as_serde_json_reads_it() {
        let limits = Limits::default();
        // serde_json writes the short escapes (`\b \f \n \r \t \" \\`) and `\u00XX` for
        // the other controls; `\/` and upper-case hex are read but never written.
        let ascii: String = (0u8..0x80).map(char::from).collect();
        let mut texts = vec![serde_json::to_string(&ascii).unwrap()];
        texts.push(r#""\/\u00E9\u00e9\uD834\uDD1E\b\f\n\r\t\"\\""#.to_owned());
        for text in texts {
            let want: Value = serde_json::from_str(&text).unwrap();
            assert_eq!(parse_strict(text.as_bytes(), limits), Ok(want), "{text}");
        }
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

        /// Any text serde_json writes, with every kind of string (controls, quotes,
        /// backslashes, astral characters) and number (floats, both integer widths),
        /// reads as serde_json reads it, escaped or not (`\uXXXX` for every character
        /// of one string, surrogate pairs included).
        #[test]
        fn reads_what_serde_json_reads(v in arb_wide_json(), escape_all in proptest::bool::ANY) {
            let mut text = v.to_string();
            if escape_all && let Value::String(s) = &v {
                text = format!("\"{}\"", s.encode_utf16().map(|u| format!("\\u{u:04X}")).collect::<String>());
            }
            let limits = Limits { max_bytes: 1 << 20, max_depth: 64 };
            let reference: Value = serde_json::from_str(&text).expect("serde_json reads its own text");
            proptest::prop_assert_eq!(parse_strict(text.as_bytes(), limits), Ok(reference));
        }
    }

    fn arb_wide_json() -> impl proptest::strategy::Strategy<Value = Value> {
        use proptest::prelude::*;
        let leaf = prop_oneof![
            any::<String>().prop_map(Value::String),
            any::<f64>().prop_filter_map("finite", |f| serde_json::Number::from_f64(f).map(Value::Number)),
            any::<u64>().prop_map(Value::from),
            any::<i64>().prop_map(Value::from),
        ];
        leaf.prop_recursive(3, 16, 4, |inner| {
            prop_oneof![
                proptest::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
                proptest::collection::btree_map("[a-z]{1,4}", inner, 0..4)
                    .prop_map(|m| Value::Object(m.into_iter().collect())),
            ]
        })
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
