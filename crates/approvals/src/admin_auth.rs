//! Signed admin-API requests: an approver who holds a key (rather than an SVID) signs each
//! request to the admin listener. The header [`HEADER`] carries `<kid>.<unix secs>.<sig>`,
//! the Ed25519 signature over [`DOMAIN`], the method, the path, the time and the body's
//! SHA-256, one per line. A request more than [`MAX_SKEW_SECS`] away from the gateway's
//! clock is refused, so a captured request stops working within a minute (and approving
//! twice counts once).
use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD as B64};
use ed25519_dalek::{Signature, Signer, SigningKey};
use sha2::{Digest, Sha256};

use crate::{
    error::ApprovalError,
    registry::{Approver, Approvers},
};

/// The request header.
pub const HEADER: &str = "x-portcullis-approver";
/// Domain separation for the signed bytes.
pub const DOMAIN: &str = "portcullis-admin-v1";
/// Allowed distance between the request's time and the gateway's clock.
pub const MAX_SKEW_SECS: u64 = 60;

fn message(method: &str, path: &str, ts: u64, body: &[u8]) -> Vec<u8> {
    format!(
        "{DOMAIN}\n{method}\n{path}\n{ts}\n{}",
        hex::encode(Sha256::digest(body))
    )
    .into_bytes()
}

/// The header value for a request.
pub fn sign(key: &SigningKey, kid: &str, method: &str, path: &str, ts: u64, body: &[u8]) -> String {
    let sig = key.sign(&message(method, path, ts, body));
    format!("{kid}.{ts}.{}", B64.encode(sig.to_bytes()))
}

/// Who signed the request, if the header is valid at `now`.
pub fn verify<'a>(
    approvers: &'a Approvers,
    header: &str,
    method: &str,
    path: &str,
    body: &[u8],
    now: u64,
) -> Result<&'a Approver, ApprovalError> {
    let bad = |why: &str| ApprovalError::Unauthenticated(why.to_owned());
    let mut parts = header.trim().split('.');
    let (Some(kid), Some(ts), Some(sig), None) = (parts.next(), parts.next(), parts.next(), parts.next()) else {
        return Err(bad("the approver header is not <kid>.<time>.<signature>"));
    };
    let ts: u64 = ts
        .parse()
        .map_err(|_| bad("the approver header's time is not a number"))?;
    if ts.abs_diff(now) > MAX_SKEW_SECS {
        return Err(bad(
            "the request's time is more than 60 s away from the gateway's clock; check the clocks",
        ));
    }
    let sig: [u8; 64] = B64
        .decode(sig)
        .ok()
        .and_then(|s| s.try_into().ok())
        .ok_or_else(|| bad("the approver header's signature is not 64 base64url bytes"))?;
    let approver = approvers.by_kid(kid)?;
    let Some((_, key)) = &approver.key else {
        return Err(ApprovalError::UnknownKey(kid.to_owned()));
    };
    key.verify_strict(&message(method, path, ts, body), &Signature::from_bytes(&sig))
        .map_err(|_| bad("the approver header's signature does not verify"))?;
    Ok(approver)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signed_requests_verify_only_as_sent_and_in_time() {
        let key = SigningKey::from_bytes(&[4; 32]);
        let approvers = Approvers::new(vec![Approver {
            name: "bob".into(),
            spiffe_id: None,
            user: "bob".into(),
            key: Some(("00000000000000aa".into(), key.verifying_key())),
            revoked: false,
        }]);
        let h = sign(&key, "00000000000000aa", "POST", "/approvals/x/approve", 1000, b"{}");
        assert_eq!(
            verify(&approvers, &h, "POST", "/approvals/x/approve", b"{}", 1010)
                .unwrap()
                .name,
            "bob"
        );
        assert!(verify(&approvers, &h, "POST", "/approvals/y/approve", b"{}", 1010).is_err());
        assert!(verify(&approvers, &h, "POST", "/approvals/x/deny", b"{}", 1010).is_err());
        assert!(verify(&approvers, &h, "POST", "/approvals/x/approve", b"{}", 1061).is_err());
        let other = SigningKey::from_bytes(&[5; 32]);
        let h = sign(&other, "00000000000000bb", "GET", "/approvals", 1000, b"");
        assert!(matches!(
            verify(&approvers, &h, "GET", "/approvals", b"", 1000),
            Err(ApprovalError::UnknownKey(_))
        ));
    }
}
