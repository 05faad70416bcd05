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
//! Known gap: an integer literal too large for `u64` is parsed by `serde_json` into a double
//! without error; after parsing it cannot be told apart from the same number written with an
//! exponent. The signature still covers the canonical (double) form, so signer and gateway
//! agree; only an upstream reading the raw literal with big integers could differ.
use serde_json::Value;

/// The largest integer magnitude I-JSON guarantees to be exact (2^53 − 1).
pub const MAX_SAFE_INTEGER: u64 = (1 << 53) - 1;

/// A value outside the I-JSON subset, with a JSON Pointer to where it was found.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IJsonError {
    #[error("the integer at `{pointer}` is beyond ±2^53-1 and not exact in I-JSON; send it as a string")]
    UnsafeInteger { pointer: String },
    #[error("the string at `{pointer}` contains the Unicode noncharacter U+{code:04X}; remove it")]
    Noncharacter { pointer: String, code: u32 },
}

/// Checks that `value` lies inside I-JSON (object keys included).
pub fn check(value: &Value) -> Result<(), IJsonError> {
    let mut pointer = String::new();
    walk(value, &mut pointer)
}

fn walk(value: &Value, pointer: &mut String) -> Result<(), IJsonError> {
    match value {
        Value::Number(n) => {
            let unsafe_int = match (n.as_u64(), n.as_i64()) {
                (Some(u), _) => u > MAX_SAFE_INTEGER,
                (None, Some(i)) => i.unsigned_abs() > MAX_SAFE_INTEGER,
                (None, None) => false,
            };
            if unsafe_int {
                return Err(IJsonError::UnsafeInteger {
                    pointer: pointer.clone(),
                });
            }
            Ok(())
        }
        Value::String(s) => check_str(s, pointer),
        Value::Array(items) => {
            for (i, item) in items.iter().enumerate() {
                let len = pointer.len();
                pointer.push('/');
                pointer.push_str(&i.to_string());
                walk(item, pointer)?;
                pointer.truncate(len);
            }
            Ok(())
        }
        Value::Object(map) => {
            for (key, item) in map {
                let len = pointer.len();
                pointer.push('/');
                pointer.push_str(&key.replace('~', "~0").replace('/', "~1"));
                check_str(key, pointer)?;
                walk(item, pointer)?;
                pointer.truncate(len);
            }
            Ok(())
        }
        Value::Null | Value::Bool(_) => Ok(()),
    }
}

fn check_str(s: &str, pointer: &str) -> Result<(), IJsonError> {
    match s.chars().find(|&c| is_noncharacter(c)) {
        Some(c) => Err(IJsonError::Noncharacter {
            pointer: pointer.to_owned(),
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
