//! RFC 8785 (JCS) canonical form and its SHA-256: the argument and result
//! digests every stage agrees on, whatever key order or number spelling the
//! sender used.
use serde_json::Value;
use sha2::{Digest, Sha256};

/// The RFC 8785 canonical bytes of `value`.
pub fn canonical_bytes(value: &Value) -> Vec<u8> {
    // Canonicalising a parsed `Value` cannot fail: it holds no non-finite numbers.
    serde_json_canonicalizer::to_vec(value).unwrap_or_default()
}

/// SHA-256 over the canonical form of `value`.
pub fn canonical_sha256(value: &Value) -> [u8; 32] {
    Sha256::digest(canonical_bytes(value)).into()
}

#[cfg(test)]
mod tests {
    use super::*;

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
}
