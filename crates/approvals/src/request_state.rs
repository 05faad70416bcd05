//! `requestState` for 2026-07-28 clients approving their own call through the
//! multi-round-trip pattern (`input_required` with an elicitation, then the same call again
//! with the answer): the state names the approval request and the call, its principal and a
//! short expiry, integrity-protected with HMAC-SHA256. The key lives only in this gateway's
//! memory (a restart voids every state) — or, with the PostgreSQL store, in the database,
//! created once and read by every replica at start, so a retry may reach any replica (see
//! [`crate::ApprovalStore::request_states`]). Single use is enforced by the pending set: the
//! request it names is granted once and consumed by the call that uses it.
use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD as B64};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::{binding::Binding, error::ApprovalError, unix_now};

/// The protected content.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct State {
    v: u32,
    call: Binding,
    exp: u64,
}

/// Issues and checks request states.
pub struct RequestStates {
    key: [u8; 32],
    ttl_secs: u64,
}

/// 32 random bytes for a new key.
pub(crate) fn fresh_key() -> [u8; 32] {
    let mut key = [0u8; 32];
    rand::Rng::fill(&mut rand::rng(), &mut key);
    key
}

fn hmac_sha256(key: &[u8; 32], message: &[u8]) -> [u8; 32] {
    const BLOCK: usize = 64;
    let mut inner_pad = [0x36u8; BLOCK];
    let mut outer_pad = [0x5cu8; BLOCK];
    for (i, byte) in key.iter().enumerate() {
        inner_pad[i] ^= byte;
        outer_pad[i] ^= byte;
    }
    let inner = Sha256::new().chain_update(inner_pad).chain_update(message).finalize();
    Sha256::new()
        .chain_update(outer_pad)
        .chain_update(inner)
        .finalize()
        .into()
}

impl RequestStates {
    /// A fresh random key, in this gateway's memory only; states live `ttl_secs`.
    pub fn new(ttl_secs: u64) -> Self {
        Self::with_key(fresh_key(), ttl_secs)
    }

    /// States under `key` (shared by replicas); they live `ttl_secs`.
    pub(crate) fn with_key(key: [u8; 32], ttl_secs: u64) -> Self {
        Self { key, ttl_secs }
    }

    /// The state for the open request `binding` (its id names the request).
    pub fn issue(&self, binding: &Binding) -> String {
        let state = State {
            v: 1,
            call: binding.clone(),
            exp: (unix_now() + self.ttl_secs).min(binding.expires_at),
        };
        let payload = serde_json::to_vec(&state).unwrap_or_default();
        let mac = hmac_sha256(&self.key, &payload);
        format!("{}.{}", B64.encode(&payload), B64.encode(mac))
    }

    /// The request a state names, once its integrity, expiry and call are checked against
    /// the call in hand (`call`: principal, server, method, target, arguments, policy).
    pub fn check(&self, text: &str, call: &Binding) -> Result<Binding, ApprovalError> {
        let bad = |why: &str| ApprovalError::Malformed(format!("requestState: {why}"));
        if text.len() > 8 * 1024 {
            return Err(bad("longer than 8 KiB"));
        }
        let (payload, mac) = text.split_once('.').ok_or_else(|| bad("not issued by this gateway"))?;
        let payload = B64.decode(payload).map_err(|_| bad("not issued by this gateway"))?;
        let mac = B64.decode(mac).map_err(|_| bad("not issued by this gateway"))?;
        let expected = hmac_sha256(&self.key, &payload);
        // Constant time: compare every byte.
        let same = mac.len() == expected.len() && mac.iter().zip(expected).fold(0u8, |acc, (a, b)| acc | (a ^ b)) == 0;
        if !same {
            return Err(bad("altered, or issued by a gateway that has restarted since"));
        }
        let state: State = serde_json::from_slice(&payload).map_err(|_| bad("unreadable"))?;
        if unix_now() > state.exp {
            return Err(ApprovalError::Expired(state.exp));
        }
        state.call.check_call_fields(call)?;
        Ok(state.call)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::binding::{BINDING_VERSION, BindingPrincipal};

    fn call() -> Binding {
        Binding {
            v: BINDING_VERSION,
            id: "r1".into(),
            principal: BindingPrincipal {
                workload: "w".into(),
                user: Some("u".into()),
            },
            server: "s".into(),
            method: "tools/call".into(),
            target: "t".into(),
            arguments_sha256: "00".repeat(32),
            policy_sha256: "11".repeat(32),
            nonce: "22".repeat(16),
            expires_at: unix_now() + 600,
        }
    }

    #[test]
    fn hmac_matches_rfc_4231_case_2_shape() {
        // RFC 4231 test case 2 uses a 4-byte key; padded with zeros to 32 bytes it is the
        // same HMAC (keys shorter than the block are zero-padded).
        let mut key = [0u8; 32];
        key[..4].copy_from_slice(b"Jefe");
        assert_eq!(
            hex::encode(hmac_sha256(&key, b"what do ya want for nothing?")),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }

    #[test]
    fn a_state_is_checked_for_integrity_call_and_gateway() {
        let states = RequestStates::new(60);
        let state = states.issue(&call());
        assert_eq!(states.check(&state, &call()).unwrap().id, "r1");
        let mut other = call();
        other.principal.user = Some("mallory".into());
        assert_eq!(states.check(&state, &other), Err(ApprovalError::WrongCall("principal")));
        let mut tampered = state.clone();
        tampered.insert(3, 'x');
        assert!(matches!(
            states.check(&tampered, &call()),
            Err(ApprovalError::Malformed(_))
        ));
        let restarted = RequestStates::new(60);
        assert!(matches!(
            restarted.check(&state, &call()),
            Err(ApprovalError::Malformed(_))
        ));
    }
}
