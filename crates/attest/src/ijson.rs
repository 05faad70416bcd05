//! I-JSON (RFC 7493) checks on parsed values, run before any signed value is canonicalised.
//!
//! RFC 8785 canonicalisation is only well defined on I-JSON: numbers are IEEE 754 doubles and
//! strings are Unicode scalar values. A value outside that subset can mean different things to
//! the signer, the gateway and the upstream (a parser differential, T13), so it is refused
//! rather than canonicalised.
//!
//! - Integers beyond ±(2^53 − 1) are refused: `serde_json` keeps them exact as `i64`/`u64`, a
//!   double-based peer rounds them, and the canonical form would not be the sender's number.
//! - Non-finite numbers cannot occur in a `serde_json::Value`; the strict parser refuses them.
//! - Lone surrogates (`"\ud800"`) cannot occur in a Rust `String`; `portcullis_mcp::parse_strict`
//!   refuses such escapes (see the tests below, which pin that behaviour).
//! - Unicode noncharacters (U+FDD0..U+FDEF and U+xFFFE/U+xFFFF) are refused, as RFC 7493 §2.1
//!   requires.
//!
//! An integer literal too large for `u64` is parsed by `serde_json` into a double without
//! error; after parsing it cannot be told apart from the same number written with an exponent.
//! [`check_text`] closes that gap on the raw bytes: run it on every signed message before (or
//! after) `parse_strict`. Exponent and fraction spellings are accepted, since they say "double".
use serde_json::Value;

/// The largest integer magnitude I-JSON guarantees to be exact (2^53 − 1).
pub const MAX_SAFE_INTEGER: u64 = (1 << 53) - 1;

/// A value outside the I-JSON subset, with a JSON Pointer to where it was found.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IJsonError {
    #[error("the integer at `{pointer}` is beyond ±2^53-1 and not exact in I-JSON; send it as a string")]
    UnsafeInteger { pointer: String },
    #[error("the integer literal at byte {offset} is beyond ±2^53-1 and not exact in I-JSON; send it as a string")]
    UnsafeIntegerLiteral { offset: usize },
    #[error("the string at `{pointer}` contains the Unicode noncharacter U+{code:04X}; remove it")]
    Noncharacter { pointer: String, code: u32 },
}

/// Checks that `value` lies inside I-JSON (object keys included).
pub fn check(value: &Value) -> Result<(), IJsonError> {
    walk(value, &mut Vec::new())
}

/// One step of the path to a value: where an error is reported, as a JSON Pointer. The
/// pointer is written only for an error; a value inside I-JSON costs no text.
enum Step<'a> {
    Key(&'a str),
    Index(usize),
}

fn pointer(path: &[Step<'_>]) -> String {
    let mut out = String::new();
    for step in path {
        out.push('/');
        match step {
            Step::Key(key) => push_pointer_token(&mut out, key),
            Step::Index(i) => out.push_str(&i.to_string()),
        }
    }
    out
}

/// Checks the raw JSON text of a message for integer literals (no fraction, no exponent)
/// beyond ±(2^53 − 1), which a parsed value can no longer reveal. Assumes `text` is JSON that
/// the strict parser accepts (or will reject anyway); it only tokenises strings and numbers.
pub fn check_text(text: &[u8]) -> Result<(), IJsonError> {
    let mut i = 0;
    while i < text.len() {
        match text[i] {
            b'"' => {
                i += 1;
                while i < text.len() && text[i] != b'"' {
                    i += if text[i] == b'\\' { 2 } else { 1 };
                }
                i += 1;
            }
            b'-' | b'0'..=b'9' => {
                let start = i;
                while i < text.len() && matches!(text[i], b'-' | b'+' | b'.' | b'e' | b'E' | b'0'..=b'9') {
                    i += 1;
                }
                let token = &text[start..i];
                let digits = token.strip_prefix(b"-").unwrap_or(token);
                let integer = digits.iter().all(u8::is_ascii_digit);
                let too_big = digits.len() > 16
                    || std::str::from_utf8(digits)
                        .ok()
                        .and_then(|d| d.parse::<u64>().ok())
                        .is_some_and(|n| n > MAX_SAFE_INTEGER);
                if integer && too_big {
                    return Err(IJsonError::UnsafeIntegerLiteral { offset: start });
                }
            }
            _ => i += 1,
        }
    }
    Ok(())
}

/// Appends `key` as a JSON Pointer reference token (RFC 6901: `~` as `~0`, `/` as `~1`).
pub(crate) fn push_pointer_token(pointer: &mut String, key: &str) {
    for c in key.chars() {
        match c {
            '~' => pointer.push_str("~0"),
            '/' => pointer.push_str("~1"),
            c => pointer.push(c),
        }
    }
}

fn walk<'a>(value: &'a Value, path: &mut Vec<Step<'a>>) -> Result<(), IJsonError> {
    match value {
        Value::Number(n) => {
            let unsafe_int = match (n.as_u64(), n.as_i64()) {
                (Some(u), _) => u > MAX_SAFE_INTEGER,
                (None, Some(i)) => i.unsigned_abs() > MAX_SAFE_INTEGER,
                (None, None) => false,
            };
            if unsafe_int {
                return Err(IJsonError::UnsafeInteger { pointer: pointer(path) });
            }
            Ok(())
        }
        Value::String(s) => check_str(s, path),
        Value::Array(items) => {
            for (i, item) in items.iter().enumerate() {
                path.push(Step::Index(i));
                walk(item, path)?;
                path.pop();
            }
            Ok(())
        }
        Value::Object(map) => {
            for (key, item) in map {
                path.push(Step::Key(key));
                check_str(key, path)?;
                walk(item, path)?;
                path.pop();
            }
            Ok(())
        }
        Value::Null | Value::Bool(_) => Ok(()),
    }
}

fn check_str(s: &str, path: &[Step<'_>]) -> Result<(), IJsonError> {
    // Every noncharacter is U+FDD0 or above, whose UTF-8 starts with a byte of 0xEF or more:
    // a string without such a byte (one vectorised pass) holds none.
    if s.bytes().max().is_none_or(|top| top < 0xEF) {
        return Ok(());
    }
    match s.chars().find(|&c| is_noncharacter(c)) {
        Some(c) => Err(IJsonError::Noncharacter {
            pointer: pointer(path),
            code: u32::from(c),
        }),
        None => Ok(()),
    }
}

fn is_noncharacter(c: char) -> bool {
    let code = u32::from(c);
    (0xFDD0..=0xFDEF).contains(&code) || code & 0xFFFE == 0xFFFE
}

#[cfg(test)]
mod tests {
    use super::*;
    use portcullis_mcp::{Limits, parse_strict};
    use serde_json::json;

    #[test]
    fn integers_inside_the_safe_range_pass_and_beyond_fail() {
        let max = MAX_SAFE_INTEGER;
        assert_eq!(check(&json!({"a": [max, -(max as i64), 1.5, 1e30, 0.000001]})), Ok(()));
        assert_eq!(
            check(&json!({"a": [1, max + 1]})),
            Err(IJsonError::UnsafeInteger { pointer: "/a/1".into() })
        );
        assert_eq!(
            check(&json!({"a/b": {"~": -(max as i64) - 1}})),
            Err(IJsonError::UnsafeInteger {
                pointer: "/a~1b/~0".into()
            })
        );
        assert!(check(&json!(u64::MAX)).is_err());
        assert!(check(&json!(i64::MIN)).is_err());
    }

    #[test]
    fn noncharacters_are_refused_in_keys_and_values() {
        assert!(matches!(
            check(&json!({"k": "a\u{FFFF}"})),
            Err(IJsonError::Noncharacter { code: 0xFFFF, .. })
        ));
        assert!(matches!(
            check(&json!({"\u{FDD0}": 1})),
            Err(IJsonError::Noncharacter { code: 0xFDD0, .. })
        ));
        assert!(matches!(
            check(&json!(["\u{10FFFE}"])),
            Err(IJsonError::Noncharacter { code: 0x10FFFE, .. })
        ));
        assert_eq!(check(&json!({"k": "\u{1F600} \u{FFFD} \u{FEFF}"})), Ok(()));
        // Just outside the ranges, and the first byte the quick scan looks for (0xEF).
        assert_eq!(
            check(&json!({"k": "\u{FDCF}\u{F000}\u{FDF0}\u{FFFD}\u{1FFFD}"})),
            Ok(())
        );
        assert_eq!(
            check(&json!({"a": ["x", {"b/c": "long text \u{FDEF}"}]})),
            Err(IJsonError::Noncharacter {
                pointer: "/a/1/b~1c".into(),
                code: 0xFDEF
            })
        );
    }

    #[test]
    fn raw_text_check_finds_integer_literals_the_parser_turned_into_doubles() {
        let huge = br#"{"a":"12345678901234567890123","b":[1,-9007199254740991,1e300,1.5e22,123456789012345678901.5]}"#;
        assert_eq!(check_text(huge), Ok(()));
        let cases: &[(&[u8], usize)] = &[
            (br#"{"a":12345678901234567890123}"#, 5),
            (br#"[1, -9007199254740992]"#, 4),
            (br#"{"k\"":9007199254740993}"#, 7),
        ];
        for (text, offset) in cases {
            assert_eq!(
                check_text(text),
                Err(IJsonError::UnsafeIntegerLiteral { offset: *offset }),
                "{}",
                String::from_utf8_lossy(text)
            );
        }
        // Why the raw check exists: after parsing, the literal is an innocent-looking double.
        let parsed = parse_strict(br#"{"a":12345678901234567890123}"#, Limits::default()).unwrap();
        assert_eq!(check(&parsed), Ok(()));
    }

    /// The strict parser is the only way signed JSON enters the gateway; pin that it refuses
    /// lone surrogate escapes (I-JSON §2.1), and accepts a proper surrogate pair.
    #[test]
    fn strict_parser_refuses_lone_surrogates() {
        for text in [
            r#""\ud800""#,
            r#""\udc00""#,
            r#"{"\ud83d":1}"#,
            r#""\ud83d\u0041""#,
            r#""a\udfff""#,
        ] {
            assert!(parse_strict(text.as_bytes(), Limits::default()).is_err(), "{text}");
        }
        let pair = parse_strict(br#""\ud83d\ude00""#, Limits::default());
        assert_eq!(pair, Ok(json!("\u{1F600}")));
    }

    #[test]
    fn strict_parser_refuses_non_finite_numbers() {
        for text in ["1e400", "-1e400", "NaN", "Infinity"] {
            assert!(parse_strict(text.as_bytes(), Limits::default()).is_err(), "{text}");
        }
    }
}
