//! [`CallId`]: the gateway's name for one call, minted when the call enters the
//! pipeline and repeated in its audit records, its receipt and its logs.
use std::{fmt, str::FromStr};

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::hex::{self, HexError};

/// The id of one call: 128 bits, always written as 32 lowercase hex digits
/// (serialised as that string). Only that spelling parses, so two ids are equal
/// exactly when their text is.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct CallId {
    /// The 32 hex digits (ASCII), kept as text: ids are read far more often than made.
    hex: [u8; 32],
}

impl CallId {
    /// A fresh id from the operating system's randomness (via `rand`'s thread-local
    /// generator, seeded from the OS).
    ///
    /// Randomness is not I/O in the sense of `core`'s invariant: it touches no file,
    /// socket, environment or configuration, cannot fail in a way a caller handles,
    /// and no test depends on its value. Minting here keeps every caller on the same
    /// 128-bit, unguessable id; callers that need a fixed id use [`CallId::from_bytes`].
    pub fn random() -> Self {
        Self::from_bytes(rand::random())
    }

    /// The id whose 16 bytes are `bytes`.
    pub fn from_bytes(bytes: [u8; 16]) -> Self {
        let mut text = [0u8; 32];
        hex::encode(&bytes, &mut text);
        Self { hex: text }
    }

    /// The 32 lowercase hex digits.
    pub fn as_str(&self) -> &str {
        hex::ascii(&self.hex)
    }
}

impl FromStr for CallId {
    type Err = HexError;

    /// Parses exactly 32 lowercase hex digits.
    fn from_str(text: &str) -> Result<Self, HexError> {
        hex::decode(text, &mut [0u8; 16], "a call id")?;
        let mut hex = [0u8; 32];
        hex.copy_from_slice(text.as_bytes());
        Ok(Self { hex })
    }
}

impl fmt::Display for CallId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Debug for CallId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "CallId({})", self.as_str())
    }
}

impl From<CallId> for String {
    fn from(id: CallId) -> Self {
        id.as_str().to_owned()
    }
}

impl Serialize for CallId {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for CallId {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_str(hex::Visitor::new())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TEXT: &str = "00112233445566778899aabbccddeeff";
    const BYTES: [u8; 16] = [
        0x00, 0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77, 0x88, 0x99, 0xaa, 0xbb, 0xcc, 0xdd, 0xee, 0xff,
    ];

    #[test]
    fn bytes_text_and_parse_round_trip() {
        let id = CallId::from_bytes(BYTES);
        assert_eq!(id.as_str(), TEXT);
        assert_eq!(id.to_string(), TEXT);
        assert_eq!(format!("{id:?}"), format!("CallId({TEXT})"));
        assert_eq!(TEXT.parse::<CallId>(), Ok(id));
        assert_eq!(String::from(id), TEXT);
    }

    #[test]
    fn random_ids_are_32_hex_digits_and_differ() {
        let (a, b) = (CallId::random(), CallId::random());
        assert_ne!(a, b);
        for id in [a, b] {
            assert_eq!(id.as_str().parse::<CallId>(), Ok(id));
        }
    }

    #[test]
    fn refuses_other_spellings_with_a_clear_error() {
        let cases = [
            ("", "a call id must be 32 lowercase hex digits, not 0 characters"),
            ("0011", "a call id must be 32 lowercase hex digits, not 4 characters"),
            (
                "00112233445566778899AABBCCDDEEFF",
                "a call id must be 32 lowercase hex digits (0-9, a-f); character 21 is not one",
            ),
            (
                "c-42",
                "a call id must be 32 lowercase hex digits (0-9, a-f); character 2 is not one",
            ),
        ];
        for (text, want) in cases {
            let err = text.parse::<CallId>().unwrap_err();
            assert_eq!(err.to_string(), want, "{text:?}");
        }
    }

    #[test]
    fn serialises_as_the_hex_string() {
        let id = CallId::from_bytes(BYTES);
        let json = serde_json::to_string(&id).unwrap();
        assert_eq!(json, format!("\"{TEXT}\""));
        assert_eq!(serde_json::from_str::<CallId>(&json).unwrap(), id);
        let owned = serde_json::Value::String(TEXT.to_owned());
        assert_eq!(serde_json::from_value::<CallId>(owned).unwrap(), id);
        let err = serde_json::from_str::<CallId>("\"C-42\"").unwrap_err().to_string();
        assert!(err.contains("a call id must be 32 lowercase hex digits"), "{err}");
        let err = serde_json::from_str::<CallId>("42").unwrap_err().to_string();
        assert!(err.contains("expected a string of lowercase hex digits"), "{err}");
    }
}
