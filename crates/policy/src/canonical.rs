//! RFC 8785 (JSON Canonicalization Scheme) and the argument hash the policies see.
//!
//! The authorise stage hashes the call's arguments over their canonical form so
//! that a policy (and later an approval bound to "this exact call") names the same
//! arguments however the client spaced, ordered or escaped them.
use std::sync::OnceLock;

use serde::{Deserialize, Serialize};

/// The arguments could not be put in canonical form.
#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
#[error("arguments cannot be canonicalised (RFC 8785): {0}; send plain JSON arguments")]
pub struct CanonicalError(String);

/// The RFC 8785 canonical text of `value` (the gateway's one implementation,
/// [`portcullis_mcp::canonical`]).
pub fn canonical_json(value: &serde_json::Value) -> Result<String, CanonicalError> {
    String::from_utf8(portcullis_mcp::canonical::canonical_bytes(value)).map_err(|e| CanonicalError(e.to_string()))
}

/// Lowercase hex SHA-256 of the RFC 8785 canonical form of `arguments`.
pub fn arguments_sha256(arguments: &serde_json::Value) -> Result<String, CanonicalError> {
    Ok(hex::encode(portcullis_mcp::canonical::canonical_sha256(arguments)))
}

/// A call's arguments with the SHA-256 of their RFC 8785 canonical form, computed
/// once, the first time it is read: the policy input (`arguments_sha256`) and the
/// audit record (`args_sha256`) both read this digest, so arguments are
/// canonicalised at most once per call and the two can never disagree. A call whose
/// policy and audit read neither (an unconditional permit, audit off) is never hashed.
///
/// Serialised as the bare JSON value (the fixture format is unchanged).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(from = "serde_json::Value", into = "serde_json::Value")]
pub struct Arguments {
    value: serde_json::Value,
    sha256: OnceLock<[u8; 32]>,
}

impl Arguments {
    /// Wraps `value`; it is canonicalised and hashed when the digest is first read.
    pub fn new(value: serde_json::Value) -> Self {
        Self {
            value,
            sha256: OnceLock::new(),
        }
    }

    /// The arguments as given.
    pub fn value(&self) -> &serde_json::Value {
        &self.value
    }

    /// SHA-256 of the RFC 8785 canonical form (the same digest as [`arguments_sha256`]).
    pub fn sha256(&self) -> [u8; 32] {
        *self
            .sha256
            .get_or_init(|| portcullis_mcp::canonical::canonical_sha256(&self.value))
    }
}

/// Equal when the arguments are: whether the digest was read yet does not matter.
impl PartialEq for Arguments {
    fn eq(&self, other: &Self) -> bool {
        self.value == other.value
    }
}

impl Default for Arguments {
    /// No arguments: `null`.
    fn default() -> Self {
        Self::new(serde_json::Value::Null)
    }
}

impl From<serde_json::Value> for Arguments {
    fn from(value: serde_json::Value) -> Self {
        Self::new(value)
    }
}

impl From<Arguments> for serde_json::Value {
    fn from(arguments: Arguments) -> Self {
        arguments.value
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{Value, json};
    use sha2::{Digest, Sha256};

    /// The digest is read lazily but always names the canonical form, and reading it does
    /// not change what the arguments compare equal to.
    #[test]
    fn lazy_digest_is_the_canonical_hash_and_does_not_affect_equality() {
        let spaced: Value = serde_json::from_str(r#"{ "b": [1, 2.50], "a": "\u0041" }"#).unwrap();
        let tight: Value = serde_json::from_str(r#"{"a":"A","b":[1,2.5]}"#).unwrap();
        let (read, unread) = (Arguments::new(spaced), Arguments::new(tight.clone()));
        let want: [u8; 32] = Sha256::digest(br#"{"a":"A","b":[1,2.5]}"#).into();
        assert_eq!(read.sha256(), want);
        assert_eq!(read.sha256(), want, "a second read gives the same digest");
        assert_eq!(hex::encode(want), arguments_sha256(&tight).unwrap());
        assert_eq!(
            read, unread,
            "equal arguments are equal whether or not a digest was read"
        );
        assert_ne!(read, Arguments::new(json!({"a": "B"})));
    }

    /// RFC 8785 §3.2.2: the sample input and its canonical output.
    #[test]
    fn rfc8785_section_3_2_2_sample() {
        let input = r#"{
          "numbers": [333333333.33333329, 1E30, 4.50, 2e-3, 0.000000000000000000000000001],
          "string": "\u20ac$\u000F\u000aA'\u0042\u0022\u005c\\\"\/",
          "literals": [null, true, false]
        }"#;
        let value: Value = serde_json::from_str(input).unwrap();
        let want = "{\"literals\":[null,true,false],\"numbers\":[333333333.3333333,1e+30,4.5,0.002,1e-27],\
                    \"string\":\"€$\\u000f\\nA'B\\\"\\\\\\\\\\\"/\"}";
        assert_eq!(canonical_json(&value).unwrap(), want);
    }

    /// RFC 8785 §3.2.3: properties sorted by their UTF-16 code units.
    #[test]
    fn rfc8785_section_3_2_3_sorting() {
        let input = r#"{"\u20ac":"Euro Sign","\r":"Carriage Return","\ufb33":"Hebrew Letter Dalet With Dagesh",
          "1":"One","\ud83d\ude00":"Emoji: Grinning Face","\u0080":"Control","\u00f6":"Latin Small Letter O With Diaeresis"}"#;
        let value: Value = serde_json::from_str(input).unwrap();
        let out = canonical_json(&value).unwrap();
        let want = "{\"\\r\":\"Carriage Return\",\"1\":\"One\",\"\u{80}\":\"Control\",\
                    \"ö\":\"Latin Small Letter O With Diaeresis\",\"€\":\"Euro Sign\",\
                    \"😀\":\"Emoji: Grinning Face\",\"\u{fb33}\":\"Hebrew Letter Dalet With Dagesh\"}";
        assert_eq!(out, want);
    }

    /// RFC 8785 Appendix B: IEEE 754 doubles and their canonical text.
    #[test]
    fn rfc8785_appendix_b_numbers() {
        let cases: [(u64, &str); 9] = [
            (0x0000000000000000, "0"),
            (0x8000000000000000, "0"),
            (0x0000000000000001, "5e-324"),
            (0x7fefffffffffffff, "1.7976931348623157e+308"),
            (0x4340000000000000, "9007199254740992"),
            (0x4430000000000000, "295147905179352830000"),
            (0x44b52d02c7e14af5, "9.999999999999997e+22"),
            (0x3eb0c6f7a0b5ed8d, "0.000001"),
            (0x41b3de4355555555, "333333333.3333333"),
        ];
        for (bits, want) in cases {
            let v = json!(f64::from_bits(bits));
            assert_eq!(canonical_json(&v).unwrap(), want, "bits {bits:#x}");
        }
    }

    #[test]
    fn hash_ignores_spacing_and_key_order() {
        let a: Value = serde_json::from_str(r#"{"b": 1, "a": [1, 2.0]}"#).unwrap();
        let b: Value = serde_json::from_str(r#"{"a":[1,2],"b":1}"#).unwrap();
        assert_eq!(arguments_sha256(&a).unwrap(), arguments_sha256(&b).unwrap());
        // sha256 of the canonical text `null`.
        assert_eq!(
            arguments_sha256(&Value::Null).unwrap(),
            "74234e98afe7498fb5daf1f36ac2d78acc339464f950703b8c019892f982b90b"
        );
    }
}
