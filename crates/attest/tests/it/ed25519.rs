//! Ed25519 edge cases, Wycheproof style (T13): RFC 8032 known answers, malleable `S >= L`,
//! small-order public keys, and single-bit flips, both directly against `verify_strict` and
//! through the crate's verifiers (calls, receipts, manifests).
use ed25519_dalek::{Signature, Signer, SigningKey, Verifier as _, VerifyingKey};
use portcullis_attest::request::{CallError, CallTarget, META_KEY, Verifier, VerifierConfig, sign_call_with_nonce};
use portcullis_attest::{KeySet, Receipt, ReceiptError, ReceiptFacts, sign_receipt, verify_receipt};
use portcullis_core::Principal;
use serde_json::{Value, json};

use crate::curve_points::{SMALL_ORDER, malleate};

fn h32(text: &str) -> [u8; 32] {
    <[u8; 32]>::try_from(hex::decode(text).unwrap()).unwrap()
}

fn h64(text: &str) -> [u8; 64] {
    <[u8; 64]>::try_from(hex::decode(text).unwrap()).unwrap()
}

#[test]
fn rfc8032_known_answers_verify_strictly() {
    // RFC 8032 section 7.1, TEST 1 and TEST 2.
    let cases = [
        (
            "9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60",
            "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a",
            "",
            "e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b",
        ),
        (
            "4ccd089b28ff96da9db6c346ec114e0f5b8a319f35aba624da8cf6ed4fb8a6fb",
            "3d4017c3e843895a92b70aa74d1b7ebc9c982ccf2ec4968cc0cd55f12af4660c",
            "72",
            "92a009a9f0d4cab8720e820b5f642540a2b27b5416503f8fb3762223ebdb69da085ac1e43e15996e458f3613d0f11d8c387b2eaeb4302aeeb00d291612bb0c00",
        ),
    ];
    for (secret, public, message, signature) in cases {
        let key = SigningKey::from_bytes(&h32(secret));
        assert_eq!(key.verifying_key().to_bytes(), h32(public));
        let message = hex::decode(message).unwrap();
        let sig = key.sign(&message);
        assert_eq!(sig.to_bytes(), h64(signature));
        key.verifying_key().verify_strict(&message, &sig).unwrap();
    }
}

#[test]
fn malleable_signature_with_s_at_least_l_is_rejected() {
    let key = SigningKey::from_bytes(&[3; 32]);
    let message = b"portcullis";
    let sig = key.sign(message).to_bytes();
    let malleated = Signature::from_bytes(&malleate(&sig));
    assert!(key.verifying_key().verify_strict(message, &malleated).is_err());
    assert!(key.verifying_key().verify(message, &malleated).is_err());
}

#[test]
fn small_order_public_keys_are_rejected() {
    // With A of small order and R = identity, S = 0, the plain equation holds for every
    // message; `verify_strict` refuses the key, and so does every key registry here.
    let mut forged = [0u8; 64];
    forged[0] = 1;
    let forged = Signature::from_bytes(&forged);
    for text in SMALL_ORDER {
        let key = VerifyingKey::from_bytes(&h32(text)).unwrap();
        assert!(key.is_weak(), "{text}");
        assert!(key.verify_strict(b"any message", &forged).is_err(), "{text}");
        let mut set = KeySet::new();
        assert!(set.insert("weak", key).is_err(), "{text}");
        let mut verifier = Verifier::new(VerifierConfig::new("aud"));
        assert!(
            verifier.register("weak", Principal::workload("w"), key).is_err(),
            "{text}"
        );
    }
    // The identity key would even pass the non-strict check: this is why `verify_strict`.
    let identity = VerifyingKey::from_bytes(&h32(SMALL_ORDER[0])).unwrap();
    assert!(identity.verify(b"any message", &forged).is_ok());
}

#[test]
fn every_single_bit_flip_of_signature_or_message_is_rejected() {
    let key = SigningKey::from_bytes(&[4; 32]);
    let public = key.verifying_key();
    let message = br#"{"aud":"a","exp":2,"iat":1}"#.to_vec();
    let sig = key.sign(&message).to_bytes();
    for bit in 0..512 {
        let mut flipped = sig;
        flipped[bit / 8] ^= 1 << (bit % 8);
        assert!(
            public
                .verify_strict(&message, &Signature::from_bytes(&flipped))
                .is_err(),
            "sig bit {bit}"
        );
    }
    for bit in 0..message.len() * 8 {
        let mut flipped = message.clone();
        flipped[bit / 8] ^= 1 << (bit % 8);
        assert!(
            public.verify_strict(&flipped, &Signature::from_bytes(&sig)).is_err(),
            "message bit {bit}"
        );
    }
}

fn b64url(bytes: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

fn b64url_decode(text: &str) -> [u8; 64] {
    use base64::Engine;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(text).unwrap();
    <[u8; 64]>::try_from(bytes).unwrap()
}

#[test]
fn malleated_and_flipped_call_signatures_are_bad_signatures() {
    let key = SigningKey::from_bytes(&[5; 32]);
    let mut verifier = Verifier::new(VerifierConfig::new("aud"));
    let host = Principal::workload("host");
    verifier.register("h", host.clone(), key.verifying_key()).unwrap();
    let target = CallTarget {
        audience: "aud",
        server: "s",
        tool: "t",
    };
    let args = json!({"x": 1});
    let entry = sign_call_with_nonce(&key, "h", target, &args, "nonce-0123456789abcdef", 100, 60).unwrap();
    let sig = b64url_decode(entry["sig"].as_str().unwrap());
    let mut variants = vec![malleate(&sig)];
    for bit in [0, 7, 255, 256, 511] {
        let mut flipped = sig;
        flipped[bit / 8] ^= 1 << (bit % 8);
        variants.push(flipped);
    }
    for variant in variants {
        let mut entry = entry.clone();
        entry["sig"] = Value::String(b64url(&variant));
        let params = json!({"name": "t", "arguments": args, "_meta": {META_KEY: entry}});
        let e = verifier.verify(&host, "s", "t", &params, 100);
        assert!(matches!(e, Err(CallError::BadSignature)), "{e:?}");
    }
}

#[test]
fn malleated_receipt_signature_is_rejected() {
    let key = SigningKey::from_bytes(&[6; 32]);
    let mut trusted = KeySet::new();
    trusted.insert("gw", key.verifying_key()).unwrap();
    let (request, result) = (json!({"id": 1}), json!({"content": []}));
    let facts = ReceiptFacts {
        request: &request,
        result: &result,
        decision_id: "d",
        audit_index: 1,
        time: 1,
        approval_ids: &[],
    };
    let receipt = sign_receipt(&key, "gw", facts).unwrap();
    let malleated = Receipt {
        sig: b64url(&malleate(&b64url_decode(&receipt.sig))),
        ..receipt.clone()
    };
    verify_receipt(&receipt, &result, &request, &trusted).unwrap();
    assert!(matches!(
        verify_receipt(&malleated, &result, &request, &trusted),
        Err(ReceiptError::BadSignature)
    ));
}
