//! [`Sha256`]: a SHA-256 digest, the one type every stage uses for the hashes it
//! records or signs (arguments, results, policy sets, executables).
//!
//! Its text form — 64 lowercase hex digits — is part of serialised contracts: audit
//! records store it as Merkle leaf data, so `Display` and `Serialize` must never change.
use std::{fmt, str::FromStr};

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use sha2::Digest as _;

use crate::hex::{self, HexError};

/// A SHA-256 digest, written as 64 lowercase hex digits. Only a digest fits, so a
/// body cannot be recorded in a hash field by mistake; only the lowercase spelling
/// parses, so each digest has exactly one text form.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Sha256([u8; 32]);

impl Sha256 {
    /// Hashes `data`.
    pub fn of(data: &[u8]) -> Self {
        Self(sha2::Sha256::digest(data).into())
    }

    /// Wraps a digest computed elsewhere.
    pub const fn from_digest(digest: [u8; 32]) -> Self {
        Self(digest)
    }

    /// Parses exactly 64 lowercase hex digits.
    pub fn from_hex(text: &str) -> Result<Self, HexError> {
        let mut digest = [0u8; 32];
        hex::decode(text, &mut digest, "a SHA-256 digest")?;
        Ok(Self(digest))
    }

    pub const fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// The digest's bytes, by value.
    pub const fn digest(&self) -> [u8; 32] {
        self.0
    }

    /// Writes the 64 hex digits into `out` and returns them (no allocation).
    fn hex<'a>(&self, out: &'a mut [u8; 64]) -> &'a str {
        hex::encode(&self.0, out)
    }
}

impl From<[u8; 32]> for Sha256 {
    fn from(digest: [u8; 32]) -> Self {
        Self(digest)
    }
}

impl FromStr for Sha256 {
    type Err = HexError;

    fn from_str(text: &str) -> Result<Self, HexError> {
        Self::from_hex(text)
    }
}

impl fmt::Display for Sha256 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.hex(&mut [0u8; 64]))
    }
}

impl fmt::Debug for Sha256 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Sha256({self})")
    }
}

impl Serialize for Sha256 {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.hex(&mut [0u8; 64]))
    }
}

impl<'de> Deserialize<'de> for Sha256 {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_str(hex::Visitor::new())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// SHA-256("abc"), FIPS 180-2 appendix B.1.
    const ABC: &str = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad";
    /// SHA-256(""), the empty message.
    const EMPTY: &str = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

    #[test]
    fn hashes_known_answers_and_round_trips_hex() {
        for (data, want) in [(&b"abc"[..], ABC), (&b""[..], EMPTY)] {
            let d = Sha256::of(data);
            assert_eq!(d.to_string(), want);
            assert_eq!(Sha256::from_hex(want), Ok(d));
            assert_eq!(want.parse::<Sha256>(), Ok(d));
            assert_eq!(Sha256::from_digest(*d.as_bytes()), d);
            assert_eq!(Sha256::from(d.digest()), d);
        }
        assert_eq!(format!("{:?}", Sha256::of(b"abc")), format!("Sha256({ABC})"));
    }

    #[test]
    fn refuses_other_spellings_with_a_clear_error() {
        let cases = [
            (
                "abc",
                "a SHA-256 digest must be 64 lowercase hex digits, not 3 characters",
            ),
            (
                &ABC[..62],
                "a SHA-256 digest must be 64 lowercase hex digits, not 62 characters",
            ),
            (
                "BA7816BF8F01CFEA414140DE5DAE2223B00361A396177A9CB410FF61F20015AD",
                "a SHA-256 digest must be 64 lowercase hex digits (0-9, a-f); character 1 is not one",
            ),
        ];
        for (text, want) in cases {
            assert_eq!(Sha256::from_hex(text).unwrap_err().to_string(), want, "{text:?}");
        }
    }

    #[test]
    fn serialises_as_the_hex_string() {
        let d = Sha256::of(b"abc");
        let json = serde_json::to_string(&d).unwrap();
        assert_eq!(json, format!("\"{ABC}\""));
        assert_eq!(serde_json::from_str::<Sha256>(&json).unwrap(), d);
        let owned = serde_json::Value::String(ABC.to_owned());
        assert_eq!(serde_json::from_value::<Sha256>(owned).unwrap(), d);
        let err = serde_json::from_str::<Sha256>("\"abc\"").unwrap_err().to_string();
        assert!(err.contains("64 lowercase hex digits"), "{err}");
    }
}
