//! Host-signed calls: the `attest` stage of the pipeline (docs/PRODUCT.md pillar 3, docs/THREATS.md T13).
//!
//! The host signs every `tools/call` it sends; the gateway verifies the signature right after
//! identifying the caller and before anything else looks at the call, and refuses a call whose
//! signature is missing, malformed, expired, replayed, made for another gateway, server or
//! tool, or made with a key that belongs to someone else.
//!
//! # Exactly what is signed
//!
//! The Ed25519 signature (RFC 8032, verified with `verify_strict`, or in a batch with the same
//! verdicts but for the one case [`crate::batch_verify`] documents) covers the RFC 8785
//! canonical bytes of this object:
//!
//! ```json
//! {"arguments":{…},"aud":"<gateway audience>","exp":<unix s>,"iat":<unix s>,"nonce":"<nonce>","server":"<server>","tool":"<tool>"}
//! ```
//!
//! - `aud`: the gateway's audience string (its resource URI), so a signature made for one
//!   gateway is useless at another.
//! - `server`, `tool`: the upstream server name and the tool name *on that server*, as the
//!   gateway resolves them (not a namespaced alias).
//! - `arguments`: the call's `params.arguments` object; an absent `arguments` is signed as `{}`.
//!   It must be I-JSON ([`crate::ijson`]).
//! - `nonce`: 16–128 characters from the base64url alphabet `[A-Za-z0-9_-]`, fresh per call.
//! - `iat`, `exp`: issued-at and expiry, integer Unix seconds; `exp - iat` is at most the
//!   verifier's maximum window (default 5 minutes).
//!
//! RFC 8785 sorts the keys, so the signed bytes start `{"arguments":` and the remaining keys
//! follow in the order shown. [`SignedFields::to_bytes`] produces them.
//!
//! # Where the signature travels
//!
//! In the request's `params._meta`, under [`META_KEY`]:
//!
//! ```json
//! "_meta": {"io.portcullis/signature": {
//!     "kid": "<host key id>", "sig": "<base64url, no padding, 64 bytes>",
//!     "aud": "…", "server": "…", "tool": "…", "nonce": "…", "iat": 1767225600, "exp": 1767225660}}
//! ```
//!
//! `aud`, `server` and `tool` are repeated only so that a mismatch gets a precise error. The
//! gateway never trusts them: it rebuilds the signed object from its own audience and its own
//! resolution of server and tool, so a signature for anything else fails regardless. Unknown
//! fields in the entry are refused.
//!
//! The verifier expects values that came through `portcullis_mcp::parse_strict` (no duplicate
//! keys, no lone surrogates, bounded depth); it canonicalises the parsed value, never the raw
//! bytes, so key order and number spelling do not matter. The caller should also run
//! [`crate::ijson::check_text`] on the raw message: an integer literal beyond `u64` becomes a
//! double in parsing, and only the raw text still shows it.
use std::collections::BTreeMap;
use std::sync::{
    Mutex,
    atomic::{AtomicU64, Ordering},
};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64URL;
use ed25519_dalek::{Signature, Signer, SigningKey, VerifyingKey};
use portcullis_core::Principal;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

use crate::ijson::{self, IJsonError, MAX_SAFE_INTEGER};
use crate::keys::{self, KeyError};
use crate::replay::{ReplayCache, ReplayError};

/// The `_meta` key that carries the call signature.
pub const META_KEY: &str = "io.portcullis/signature";
/// Shortest accepted nonce, in characters.
pub const NONCE_MIN: usize = 16;
/// Longest accepted nonce, in characters.
pub const NONCE_MAX: usize = 128;

/// The signature entry in `params._meta[META_KEY]` (see the module docs for its exact shape).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SignedCall {
    pub kid: String,
    pub sig: String,
    pub aud: String,
    pub server: String,
    pub tool: String,
    pub nonce: String,
    pub iat: u64,
    pub exp: u64,
}

/// Who a call is addressed to: the gateway's audience and the upstream server and tool.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CallTarget<'a> {
    pub audience: &'a str,
    pub server: &'a str,
    pub tool: &'a str,
}

/// The fields covered by a call signature; [`SignedFields::to_bytes`] gives the signed bytes.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SignedFields<'a> {
    pub target: CallTarget<'a>,
    pub arguments: &'a Value,
    pub nonce: &'a str,
    pub iat: u64,
    pub exp: u64,
}

impl SignedFields<'_> {
    /// The RFC 8785 canonical bytes the signature covers.
    pub fn to_bytes(&self) -> Vec<u8> {
        use portcullis_mcp::canonical::{Member, canonical_object};
        // Written from the borrowed fields: the arguments are not copied into a new object.
        canonical_object(&mut [
            ("aud", Member::Text(self.target.audience)),
            ("server", Member::Text(self.target.server)),
            ("tool", Member::Text(self.target.tool)),
            ("arguments", Member::Value(self.arguments)),
            ("nonce", Member::Text(self.nonce)),
            ("iat", Member::Unsigned(self.iat)),
            ("exp", Member::Unsigned(self.exp)),
        ])
    }
}

/// Why a call's signature was refused (or could not be made).
#[derive(Debug, thiserror::Error)]
pub enum CallError {
    #[error("the call carries no `_meta.\"{META_KEY}\"` signature; the host must sign every call")]
    Unsigned,
    #[error("the call signature entry is malformed: {problem}; see the attest request format")]
    Malformed { problem: String },
    #[error("the call was signed with unknown key `{kid}`; register the host's public key with the gateway")]
    UnknownKey { kid: String },
    #[error("key `{kid}` is registered for a different principal; each host must sign with its own key")]
    WrongPrincipal { kid: String },
    #[error(
        "the call was signed for audience `{got}`, not this gateway (`{expected}`); configure the host with the gateway's audience"
    )]
    WrongAudience { expected: String, got: String },
    #[error(
        "the call was signed for `{got_server}`/`{got_tool}` but calls `{server}`/`{tool}`; sign the call actually sent"
    )]
    WrongTarget {
        server: String,
        tool: String,
        got_server: String,
        got_tool: String,
    },
    #[error("the nonce must be {NONCE_MIN}-{NONCE_MAX} characters from [A-Za-z0-9_-]; generate a fresh random nonce")]
    BadNonce,
    #[error(
        "the signature is issued at {iat}, more than {skew} s after the gateway's time {now}; the host's clock or \
         the gateway's clock is wrong: check both"
    )]
    IssuedInFuture { iat: u64, now: u64, skew: u64 },
    #[error(
        "the signature was issued at {iat}; after a restart with no record of the signatures it saw before, the \
         gateway refuses those issued before {start} (the start plus the allowed clock skew); sign the call again"
    )]
    IssuedBeforeStart { iat: u64, start: u64 },
    #[error(
        "the signature expired at {exp} (gateway time {now}); sign the call again, and if it was signed just now, \
         the host's clock or the gateway's clock is wrong: check both"
    )]
    Expired { exp: u64, now: u64 },
    #[error("the signature's validity window ({iat} to {exp}) is empty or longer than {max} s; use a shorter lifetime")]
    BadWindow { iat: u64, exp: u64, max: u64 },
    #[error("the call arguments must be a JSON object")]
    ArgumentsNotObject,
    #[error("the call arguments are not I-JSON: {0}")]
    NotIJson(#[from] IJsonError),
    #[error(
        "the signature does not match the call (altered arguments, other target, or wrong key); re-sign the exact call"
    )]
    BadSignature,
    #[error(
        "the signature could not be checked: the gateway task verifying it together with others stopped; retry the call"
    )]
    SignatureUnchecked,
    #[error(transparent)]
    Replay(#[from] ReplayError),
    #[error("the replay cache is unavailable after an internal failure; calls are refused until the gateway restarts")]
    ReplayUnavailable,
    #[error("cannot sign: {0}")]
    Key(#[from] KeyError),
    #[error("cannot sign: the lifetime must be 1 s or more and end before 2^53 s")]
    BadLifetime,
    #[error("the operating system's random number generator failed: {0}; retry")]
    Random(String),
}

/// Signs a call for a host: returns the value to put in `params._meta[META_KEY]`.
///
/// The nonce is 24 random bytes, base64url-encoded; `iat = now`, `exp = now + ttl`.
pub fn sign_call(
    key: &SigningKey,
    kid: &str,
    target: CallTarget<'_>,
    arguments: &Value,
    now: u64,
    ttl: u64,
) -> Result<Value, CallError> {
    let mut raw = [0u8; 24];
    getrandom::fill(&mut raw).map_err(|e| CallError::Random(e.to_string()))?;
    sign_call_with_nonce(key, kid, target, arguments, &B64URL.encode(raw), now, ttl)
}

/// [`sign_call`] with a caller-chosen nonce (hosts with their own nonce source; tests).
pub fn sign_call_with_nonce(
    key: &SigningKey,
    kid: &str,
    target: CallTarget<'_>,
    arguments: &Value,
    nonce: &str,
    now: u64,
    ttl: u64,
) -> Result<Value, CallError> {
    keys::check_kid(kid)?;
    check_nonce(nonce)?;
    let exp = now.checked_add(ttl).filter(|&e| ttl > 0 && e <= MAX_SAFE_INTEGER);
    let exp = exp.ok_or(CallError::BadLifetime)?;
    if !arguments.is_object() {
        return Err(CallError::ArgumentsNotObject);
    }
    ijson::check(arguments)?;
    let fields = SignedFields {
        target,
        arguments,
        nonce,
        iat: now,
        exp,
    };
    let sig = key.sign(&fields.to_bytes());
    let entry = SignedCall {
        kid: kid.to_owned(),
        sig: B64URL.encode(sig.to_bytes()),
        aud: target.audience.to_owned(),
        server: target.server.to_owned(),
        tool: target.tool.to_owned(),
        nonce: nonce.to_owned(),
        iat: now,
        exp,
    };
    serde_json::to_value(entry).map_err(|e| CallError::Malformed { problem: e.to_string() })
}

/// Verification settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifierConfig {
    /// This gateway's audience string; signatures for any other audience are refused.
    pub audience: String,
    /// How far `iat` may lie in the future (host clock ahead of the gateway), in seconds.
    pub max_skew_secs: u64,
    /// Longest accepted `exp - iat`, in seconds.
    pub max_window_secs: u64,
    /// Most unexpired (kid, nonce) pairs remembered; beyond this new calls are refused.
    pub replay_capacity: usize,
    /// Signatures issued before this Unix time are refused, until [`Verifier::restore`] lifts
    /// the guard. The replay cache lives in memory, so after a start with no record of the
    /// signatures consumed before it, set this to the start time plus `max_skew_secs` plus
    /// one: a signature seen before the start had `iat <= start + skew`, and cannot be
    /// replayed after it. 0 (the default) disables the check.
    pub issued_not_before: u64,
}

impl VerifierConfig {
    /// Defaults: 30 s skew, 5 min window, 100 000 remembered nonces, no start-time check.
    pub fn new(audience: impl Into<String>) -> Self {
        Self {
            audience: audience.into(),
            max_skew_secs: 30,
            max_window_secs: 300,
            replay_capacity: 100_000,
            issued_not_before: 0,
        }
    }
}

/// What a successful verification established.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedCall {
    /// The host key that signed the call.
    pub kid: String,
    pub nonce: String,
    pub iat: u64,
    pub exp: u64,
    /// Hex SHA-256 of the signed bytes (for the audit record).
    pub signed_sha256: String,
}

/// A call that passed every check except its signature's validity ([`Verifier::prepare`]).
///
/// Next: [`PreparedCall::verify_alone`], or [`crate::SignatureBatcher::check`] (several
/// calls' signatures verified together); either gives a [`CheckedCall`].
#[derive(Debug)]
pub struct PreparedCall {
    pub(crate) claims: Claims,
    pub(crate) pending: PendingSignature,
}

impl PreparedCall {
    /// The host key id the call names.
    pub fn kid(&self) -> &str {
        &self.claims.kid
    }

    /// Verifies the signature on its own with `verify_strict`.
    pub fn verify_alone(self) -> Result<CheckedCall, CallError> {
        if self.pending.verify_strict() {
            Ok(CheckedCall { claims: self.claims })
        } else {
            Err(CallError::BadSignature)
        }
    }
}

/// A call whose signature verified; only this crate makes one (after `verify_strict`, or a
/// batch that [`crate::batch_verify`] treats as equivalent). [`CheckedCall::finish`]
/// consumes its nonce.
#[derive(Debug)]
pub struct CheckedCall {
    claims: Claims,
}

impl CheckedCall {
    pub(crate) fn new(claims: Claims) -> Self {
        Self { claims }
    }

    /// Records the nonce in `verifier`'s replay cache (the verifier that prepared the call)
    /// and returns what the verification established. A replay is refused here.
    pub fn finish(self, verifier: &Verifier, now: u64) -> Result<VerifiedCall, CallError> {
        let Claims {
            kid,
            nonce,
            iat,
            exp,
            signed_sha256,
        } = self.claims;
        // Only a verified signature may take a slot in the bounded replay cache.
        let mut replay = verifier.replay.lock().map_err(|_| CallError::ReplayUnavailable)?;
        replay.record(&kid, &nonce, exp, now)?;
        drop(replay);
        Ok(VerifiedCall {
            kid,
            nonce,
            iat,
            exp,
            signed_sha256,
        })
    }
}

/// The claims of a prepared call, kept for [`CheckedCall::finish`].
#[derive(Debug)]
pub(crate) struct Claims {
    kid: String,
    nonce: String,
    iat: u64,
    exp: u64,
    signed_sha256: String,
}

/// What checking one signature needs: the key, the signed bytes, the signature.
#[derive(Debug)]
pub(crate) struct PendingSignature {
    pub key: VerifyingKey,
    pub message: Vec<u8>,
    pub signature: Signature,
    /// The key has no torsion component: a batch equation judges its signatures as
    /// `verify_strict` does (but for the one difference crate::batch_verify documents).
    pub batchable: bool,
}

impl PendingSignature {
    pub(crate) fn verify_strict(&self) -> bool {
        self.key.verify_strict(&self.message, &self.signature).is_ok()
    }
}

/// A registered host key and the principal it belongs to.
#[derive(Debug)]
struct HostKey {
    owner: Principal,
    key: VerifyingKey,
    /// `key` has no torsion component (see [`PendingSignature::batchable`]).
    batchable: bool,
}

/// Verifies host call signatures against registered host keys, with a replay cache.
///
/// `Send + Sync`: `verify` takes `&self`; the replay cache sits behind a mutex.
#[derive(Debug)]
pub struct Verifier {
    config: VerifierConfig,
    hosts: BTreeMap<String, HostKey>,
    replay: Mutex<ReplayCache>,
    /// `config.issued_not_before` until [`Verifier::restore`] sets it to 0.
    issued_not_before: AtomicU64,
}

impl Verifier {
    pub fn new(config: VerifierConfig) -> Self {
        let replay = Mutex::new(ReplayCache::new(config.replay_capacity));
        Self {
            issued_not_before: AtomicU64::new(config.issued_not_before),
            config,
            hosts: BTreeMap::new(),
            replay,
        }
    }

    /// The longest time a signature can stay acceptable after it is issued: the window plus
    /// the allowed skew. Records of consumed signatures older than this need not be restored.
    pub fn replay_horizon_secs(&self) -> u64 {
        self.config.max_window_secs + self.config.max_skew_secs
    }

    /// Restores the signatures consumed before a restart — `(kid, nonce, exp)`, read back from
    /// the audit log's records — into the replay cache, and lifts the start-time guard: from
    /// now on the replay cache alone refuses a replay. Expired entries are skipped. Returns
    /// how many were remembered; a full cache is an error (the guard then stays).
    pub fn restore(
        &self,
        consumed: impl IntoIterator<Item = (String, String, u64)>,
        now: u64,
    ) -> Result<usize, ReplayError> {
        let mut replay = self.replay.lock().map_err(|_| ReplayError::Full { capacity: 0 })?;
        let mut remembered = 0;
        for (kid, nonce, exp) in consumed {
            if exp <= now {
                continue;
            }
            match replay.record(&kid, &nonce, exp, now) {
                Ok(()) | Err(ReplayError::Replayed { .. }) => remembered += 1,
                Err(full) => return Err(full),
            }
        }
        self.issued_not_before.store(0, Ordering::Release);
        Ok(remembered)
    }

    /// Registers a host key for `principal`. If the principal names no user, the key is good
    /// for every user of that workload; otherwise only for that user. Weak keys and a second
    /// registration of one key id are refused.
    pub fn register(&mut self, kid: &str, principal: Principal, key: VerifyingKey) -> Result<(), KeyError> {
        keys::check_kid(kid)?;
        keys::check_not_weak(kid, &key)?;
        if self.hosts.contains_key(kid) {
            return Err(KeyError::Conflict { kid: kid.to_owned() });
        }
        // A key with a torsion component is not weak (`is_weak` finds small-order keys only);
        // honest key generation never makes one, but a batch equation would treat it
        // differently from `verify_strict`, so its signatures are always verified alone.
        let batchable = key.to_edwards().is_torsion_free();
        self.hosts.insert(
            kid.to_owned(),
            HostKey {
                owner: principal,
                key,
                batchable,
            },
        );
        Ok(())
    }

    /// How many host keys are registered.
    pub fn host_count(&self) -> usize {
        self.hosts.len()
    }

    /// Revokes a host key: its signatures are refused from now on.
    pub fn revoke(&mut self, kid: &str) -> bool {
        self.hosts.remove(kid).is_some()
    }

    /// Verifies the signature on a `tools/call` whose `params` are given, sent by `caller`, that
    /// the gateway resolved to `server`/`tool`, at Unix time `now`. On success the nonce is
    /// recorded, so the same signature is refused next time.
    ///
    /// The same as [`Verifier::prepare`], then [`PreparedCall::verify_alone`], then
    /// [`CheckedCall::finish`]; the gateway puts a [`crate::SignatureBatcher`] in the middle.
    pub fn verify(
        &self,
        caller: &Principal,
        server: &str,
        tool: &str,
        params: &Value,
        now: u64,
    ) -> Result<VerifiedCall, CallError> {
        self.prepare(caller, server, tool, params, now)?
            .verify_alone()?
            .finish(self, now)
    }

    /// Every check on a call except the signature's validity: the entry parses, the key is
    /// registered to `caller`, the claims (audience, target, nonce, window, clock) hold, the
    /// arguments are an I-JSON object, the signature decodes. Returns the signed bytes, key
    /// and signature ready to verify; nothing is recorded yet.
    pub fn prepare(
        &self,
        caller: &Principal,
        server: &str,
        tool: &str,
        params: &Value,
        now: u64,
    ) -> Result<PreparedCall, CallError> {
        let entry = params
            .get("_meta")
            .and_then(|meta| meta.get(META_KEY))
            .ok_or(CallError::Unsigned)?;
        let call = SignedCall::deserialize(entry).map_err(|e| CallError::Malformed { problem: e.to_string() })?;
        let host = self
            .hosts
            .get(&call.kid)
            .ok_or_else(|| CallError::UnknownKey { kid: call.kid.clone() })?;
        if !principal_matches(&host.owner, caller) {
            return Err(CallError::WrongPrincipal { kid: call.kid });
        }
        self.check_claims(&call, server, tool, now)?;
        let empty = Value::Object(Map::new());
        let arguments = match params.get("arguments") {
            None => &empty,
            Some(v) if v.is_object() => v,
            Some(_) => return Err(CallError::ArgumentsNotObject),
        };
        ijson::check(arguments)?;
        let signature = decode_signature(&call.sig)?;
        let target = CallTarget {
            audience: &self.config.audience,
            server,
            tool,
        };
        let fields = SignedFields {
            target,
            arguments,
            nonce: &call.nonce,
            iat: call.iat,
            exp: call.exp,
        };
        let message = fields.to_bytes();
        Ok(PreparedCall {
            claims: Claims {
                signed_sha256: hex::encode(Sha256::digest(&message)),
                kid: call.kid,
                nonce: call.nonce,
                iat: call.iat,
                exp: call.exp,
            },
            pending: PendingSignature {
                key: host.key,
                message,
                signature,
                batchable: host.batchable,
            },
        })
    }

    fn check_claims(&self, call: &SignedCall, server: &str, tool: &str, now: u64) -> Result<(), CallError> {
        if call.aud != self.config.audience {
            return Err(CallError::WrongAudience {
                expected: self.config.audience.clone(),
                got: call.aud.clone(),
            });
        }
        if call.server != server || call.tool != tool {
            return Err(CallError::WrongTarget {
                server: server.to_owned(),
                tool: tool.to_owned(),
                got_server: call.server.clone(),
                got_tool: call.tool.clone(),
            });
        }
        check_nonce(&call.nonce)?;
        let (iat, exp, max) = (call.iat, call.exp, self.config.max_window_secs);
        if exp <= iat || exp - iat > max || exp > MAX_SAFE_INTEGER {
            return Err(CallError::BadWindow { iat, exp, max });
        }
        let skew = self.config.max_skew_secs;
        if iat > now.saturating_add(skew) {
            return Err(CallError::IssuedInFuture { iat, now, skew });
        }
        if now >= exp {
            return Err(CallError::Expired { exp, now });
        }
        let start = self.issued_not_before.load(Ordering::Acquire);
        if iat < start {
            return Err(CallError::IssuedBeforeStart { iat, start });
        }
        Ok(())
    }
}

/// A key registered without a user serves every user of the workload; with a user, only them.
fn principal_matches(owner: &Principal, caller: &Principal) -> bool {
    owner.workload == caller.workload && owner.user.as_ref().is_none_or(|u| caller.user.as_ref() == Some(u))
}

fn check_nonce(nonce: &str) -> Result<(), CallError> {
    let ok = (NONCE_MIN..=NONCE_MAX).contains(&nonce.len())
        && nonce
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    if ok { Ok(()) } else { Err(CallError::BadNonce) }
}

/// Decodes a base64url (no padding, canonical) 64-byte Ed25519 signature.
pub(crate) fn decode_signature(text: &str) -> Result<Signature, CallError> {
    let bytes = B64URL.decode(text).map_err(|_| CallError::Malformed {
        problem: "`sig` is not unpadded base64url".into(),
    })?;
    let bytes = <[u8; 64]>::try_from(bytes.as_slice()).map_err(|_| CallError::Malformed {
        problem: "`sig` is not 64 bytes".into(),
    })?;
    Ok(Signature::from_bytes(&bytes))
}

#[cfg(test)]
#[path = "request_tests.rs"]
mod tests;
