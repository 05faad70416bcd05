//! Lowercase hex, the one text form of the gateway's ids and digests: written without
//! allocating, read strictly (exact length, `0-9a-f` only) so that every value has
//! exactly one spelling — ids and digests are compared and hashed as text downstream.
use std::{fmt, marker::PhantomData, str::FromStr};

/// Why a hex id or digest was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HexError {
    #[error("{what} must be {expected} lowercase hex digits, not {found} characters")]
    Length {
        /// What was being read, e.g. `a call id`.
        what: &'static str,
        expected: usize,
        found: usize,
    },
    #[error("{what} must be {expected} lowercase hex digits (0-9, a-f); character {position} is not one")]
    Digit {
        what: &'static str,
        expected: usize,
        /// 1-based position of the first character that is not a lowercase hex digit.
        position: usize,
    },
}

const DIGITS: &[u8; 16] = b"0123456789abcdef";

/// Writes `bytes` as lowercase hex into `out` (twice as long) and returns it as text.
pub(crate) fn encode<'a>(bytes: &[u8], out: &'a mut [u8]) -> &'a str {
    for (pair, byte) in out.chunks_exact_mut(2).zip(bytes) {
        pair.copy_from_slice(&[DIGITS[usize::from(byte >> 4)], DIGITS[usize::from(byte & 0x0f)]]);
    }
    ascii(out)
}

/// `text` as a `str`; only ever called on bytes this module wrote or checked (ASCII hex),
/// so the empty fallback is never taken.
pub(crate) fn ascii(text: &[u8]) -> &str {
    std::str::from_utf8(text).unwrap_or_default()
}

/// Reads `text` (exactly `2 * out.len()` lowercase hex digits) into `out`. A character
/// that is not a lowercase hex digit is named first, whatever the length.
pub(crate) fn decode(text: &str, out: &mut [u8], what: &'static str) -> Result<(), HexError> {
    let expected = out.len() * 2;
    if let Some(at) = text.chars().position(|c| !matches!(c, '0'..='9' | 'a'..='f')) {
        let position = at + 1;
        return Err(HexError::Digit {
            what,
            expected,
            position,
        });
    }
    // Only ASCII digits from here on: bytes are characters.
    if text.len() != expected {
        let found = text.len();
        return Err(HexError::Length { what, expected, found });
    }
    for (slot, pair) in out.iter_mut().zip(text.as_bytes().chunks_exact(2)) {
        if let [high, low] = pair {
            *slot = (nibble(*high) << 4) | nibble(*low);
        }
    }
    Ok(())
}

/// The value of a lowercase hex digit (checked by the caller).
fn nibble(digit: u8) -> u8 {
    match digit {
        b'a'..=b'f' => digit - b'a' + 10,
        _ => digit.wrapping_sub(b'0'),
    }
}

/// Serde visitor for the hex types: a string, parsed with their `FromStr`.
pub(crate) struct Visitor<T>(PhantomData<T>);

impl<T> Visitor<T> {
    pub(crate) fn new() -> Self {
        Self(PhantomData)
    }
}

impl<T: FromStr<Err = HexError>> serde::de::Visitor<'_> for Visitor<T> {
    type Value = T;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a string of lowercase hex digits")
    }

    fn visit_str<E: serde::de::Error>(self, text: &str) -> Result<T, E> {
        text.parse().map_err(E::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encodes_and_decodes_every_byte() {
        let bytes: Vec<u8> = (0..=255).collect();
        let mut text = vec![0u8; 512];
        let hex = encode(&bytes, &mut text).to_owned();
        assert!(hex.starts_with("000102") && hex.ends_with("fdfeff"), "{hex}");
        let mut back = vec![0u8; 256];
        decode(&hex, &mut back, "test").unwrap();
        assert_eq!(back, bytes);
    }

    #[test]
    fn refuses_other_lengths_and_digits_with_a_position() {
        let mut out = [0u8; 2];
        let cases = [
            ("abc", "test must be 4 lowercase hex digits, not 3 characters"),
            ("ab", "test must be 4 lowercase hex digits, not 2 characters"),
            ("abcdef", "test must be 4 lowercase hex digits, not 6 characters"),
            (
                "abCd",
                "test must be 4 lowercase hex digits (0-9, a-f); character 3 is not one",
            ),
            (
                "0x12",
                "test must be 4 lowercase hex digits (0-9, a-f); character 2 is not one",
            ),
            (
                "ab\u{e9}",
                "test must be 4 lowercase hex digits (0-9, a-f); character 3 is not one",
            ),
            (
                "\u{e9}\u{e9}",
                "test must be 4 lowercase hex digits (0-9, a-f); character 1 is not one",
            ),
            (
                "ab \u{e9}",
                "test must be 4 lowercase hex digits (0-9, a-f); character 3 is not one",
            ),
            (
                "xyz",
                "test must be 4 lowercase hex digits (0-9, a-f); character 1 is not one",
            ),
            ("", "test must be 4 lowercase hex digits, not 0 characters"),
        ];
        for (text, want) in cases {
            let err = decode(text, &mut out, "test").unwrap_err();
            assert_eq!(err.to_string(), want, "{text:?}");
        }
    }
}
