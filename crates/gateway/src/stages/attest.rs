//! The attest stage: the host's signature on a `tools/call` (docs/PRODUCT.md pillar 3, T13).
//!
//! Runs right after routing, before classify and authorise. A principal the config requires
//! to sign (`[[attestation.hosts]] required = true`) gets every unsigned or badly signed call
//! denied; a signature sent by anyone else is verified too, and a bad one is denied as well
//! (a signature is never silently ignored once the gateway knows host keys). The signature
//! covers the server and tool *as the gateway routed them*, so a call signed for one server
//! cannot be replayed to another. The entry is removed before the call is forwarded: the
//! upstream server has no use for the host's signature.
use portcullis_attest::{CallError, META_KEY, VerifiedCall, Verifier, host::unix_now};
use portcullis_core::Principal;
use portcullis_mcp::Message;
use serde_json::Value;

use crate::config::AttestConfig;

impl AttestConfig {
    /// Whether `principal` must sign its calls.
    pub fn must_sign(&self, principal: &Principal) -> bool {
        self.required_signers.iter().any(|p| {
            p.workload == principal.workload && p.user.as_ref().is_none_or(|u| principal.user.as_ref() == Some(u))
        })
    }

    /// Checks the call signature of a routed `tools/call` for `server`/`tool` sent by `caller`,
    /// and removes it from the message. `Ok(None)`: unsigned, and no signature was required.
    pub async fn check_call(
        &self,
        caller: &Principal,
        server: &str,
        tool: &str,
        msg: &mut Message,
    ) -> Result<Option<VerifiedCall>, CallError> {
        let signed = msg.meta().is_some_and(|meta| meta.contains_key(META_KEY));
        let verified = match (&self.verifier, signed) {
            (_, false) if !self.must_sign(caller) => None,
            (_, false) => return Err(CallError::Unsigned),
            (None, true) if !self.must_sign(caller) => None,
            (None, true) => {
                return Err(CallError::UnknownKey {
                    kid: "(no host keys configured)".into(),
                });
            }
            (Some(verifier), true) => Some(self.verify(verifier, caller, server, tool, msg).await?),
        };
        if signed {
            strip_signature(msg);
        }
        Ok(verified)
    }

    /// Every check but the signature's own first (no waiting for a call that fails them),
    /// then the signature, alone or batched with the calls in this stage at the same time,
    /// then its nonce is consumed.
    async fn verify(
        &self,
        verifier: &Verifier,
        caller: &Principal,
        server: &str,
        tool: &str,
        msg: &Message,
    ) -> Result<VerifiedCall, CallError> {
        let now = unix_now();
        let params = msg.params_value().unwrap_or(&Value::Null);
        let Some(batcher) = &self.batcher else {
            return verifier.verify(caller, server, tool, params, now);
        };
        let prepared = verifier.prepare(caller, server, tool, params, now)?;
        batcher.check(prepared).await?.finish(verifier, now)
    }
}

/// Removes the call signature (and `_meta` if nothing else is left in it).
fn strip_signature(msg: &mut Message) {
    let Some(params) = msg.params_mut() else {
        return;
    };
    let now_empty = match params.get_mut("_meta").and_then(Value::as_object_mut) {
        Some(meta) => {
            meta.shift_remove(META_KEY);
            meta.is_empty()
        }
        None => false,
    };
    if now_empty {
        params.shift_remove("_meta");
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use ed25519_dalek::SigningKey;
    use portcullis_attest::{HostSigner, SignatureBatcher, Verifier, VerifierConfig};
    use serde_json::json;

    use super::*;

    fn call() -> Value {
        json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {"name": "echo", "arguments": {"t": 1}}})
    }

    /// The same settings with signatures verified alone, and with the batcher.
    fn configs(required: bool) -> Vec<(AttestConfig, HostSigner, Principal)> {
        [None, Some(Arc::new(SignatureBatcher::new()))]
            .into_iter()
            .map(|batcher| {
                let key = SigningKey::from_bytes(&[5; 32]);
                let host = Principal::workload("spiffe://example.org/host");
                let signer = HostSigner::new(key.clone(), "aud");
                let mut verifier = Verifier::new(VerifierConfig::new("aud"));
                verifier
                    .register(signer.kid(), host.clone(), key.verifying_key())
                    .unwrap();
                let config = AttestConfig {
                    verifier: Some(Arc::new(verifier)),
                    batcher,
                    required_signers: if required { vec![host.clone()] } else { vec![] },
                    ..AttestConfig::default()
                };
                (config, signer, host)
            })
            .collect()
    }

    #[tokio::test]
    async fn required_signers_need_a_valid_signature_and_it_is_stripped() {
        for (config, signer, host) in configs(true) {
            let mut unsigned = Message::from_value(call()).unwrap();
            assert!(matches!(
                config.check_call(&host, "demo", "echo", &mut unsigned).await,
                Err(CallError::Unsigned)
            ));
            let mut value = call();
            signer.sign_request(&mut value, "demo", "echo", unix_now()).unwrap();
            let mut signed = Message::from_value(value.clone()).unwrap();
            let verified = config.check_call(&host, "demo", "echo", &mut signed).await.unwrap();
            assert_eq!(verified.unwrap().kid, signer.kid());
            assert!(
                signed.params().unwrap().get("_meta").is_none(),
                "signature removed before forwarding"
            );
            let mut replayed = Message::from_value(value.clone()).unwrap();
            assert!(matches!(
                config.check_call(&host, "demo", "echo", &mut replayed).await,
                Err(CallError::Replay(_))
            ));
            value["params"]["arguments"]["t"] = json!(2);
            let mut altered = Message::from_value(value).unwrap();
            assert!(matches!(
                config.check_call(&host, "demo", "echo", &mut altered).await,
                Err(CallError::BadSignature)
            ));
        }
    }

    #[tokio::test]
    async fn others_may_stay_unsigned_but_a_bad_signature_is_always_refused() {
        for (config, signer, _) in configs(false) {
            let stranger = Principal::workload("spiffe://example.org/other");
            let mut unsigned = Message::from_value(call()).unwrap();
            assert!(
                config
                    .check_call(&stranger, "demo", "echo", &mut unsigned)
                    .await
                    .unwrap()
                    .is_none()
            );
            let mut value = call();
            signer.sign_request(&mut value, "demo", "echo", unix_now()).unwrap();
            let mut borrowed = Message::from_value(value).unwrap();
            assert!(matches!(
                config.check_call(&stranger, "demo", "echo", &mut borrowed).await,
                Err(CallError::WrongPrincipal { .. })
            ));
        }
    }

    /// Calls in the stage at once: every good one passes (each nonce consumed once), every
    /// altered one is refused, whether or not its signature met others in a batch.
    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn concurrent_calls_through_the_batcher_get_their_own_verdicts() {
        let Some((config, signer, host)) = configs(true).pop() else {
            unreachable!("two configs")
        };
        let config = Arc::new(config);
        const CALLS: usize = 48;
        let barrier = Arc::new(tokio::sync::Barrier::new(CALLS));
        let tasks: Vec<_> = (0..CALLS)
            .map(|i| {
                let mut value = call();
                value["params"]["arguments"]["t"] = json!(i);
                signer.sign_request(&mut value, "demo", "echo", unix_now()).unwrap();
                if i % 5 == 0 {
                    value["params"]["arguments"]["t"] = json!(i + 1000); // signed for another value
                }
                let (config, host, barrier) = (config.clone(), host.clone(), barrier.clone());
                tokio::spawn(async move {
                    let mut msg = Message::from_value(value).unwrap();
                    barrier.wait().await;
                    config.check_call(&host, "demo", "echo", &mut msg).await
                })
            })
            .collect();
        for (i, task) in tasks.into_iter().enumerate() {
            match task.await.unwrap() {
                Ok(verified) if i % 5 != 0 => assert!(verified.is_some()),
                Err(CallError::BadSignature) if i % 5 == 0 => {}
                other => panic!("call {i}: {other:?}"),
            }
        }
        let stats = config.batcher.as_ref().unwrap().stats();
        assert!(
            stats.verified_alone + stats.batched_signatures >= CALLS as u64,
            "every signature went through the batcher: {stats:?}"
        );
    }
}
