//! Attestation inside `portcullis connect`, for hosts that cannot sign themselves:
//! every `tools/call` going to the gateway is signed with the host's key (`--sign-key`), and
//! every result coming back is checked against the gateway's receipt (`--receipt-key`); a
//! result whose receipt fails (altered on the way, or not signed at all) is replaced by a
//! JSON-RPC error, so the host never sees an unattested result.
//!
//! The signature names the server and tool the gateway routes the call to: `server__tool`
//! names are split at the namespace separator; a gateway with a single server (no
//! namespacing) needs `--server NAME`.
use std::collections::HashMap;

use portcullis_attest::{HostSigner, KeySet, host::unix_now, verify_result};
use portcullis_core::split_namespaced;
use portcullis_mcp::{ErrorCode, Message, MessageKind, error_response};
use serde_json::Value;

/// The bridge's signing and receipt-checking state.
#[derive(Debug, Default)]
pub struct BridgeAttest {
    signer: Option<HostSigner>,
    /// The server every tool belongs to when names are not namespaced.
    server: Option<String>,
    /// Gateway keys receipts must verify against; `None`: results are not checked.
    trusted: Option<KeySet>,
    /// `params` of the calls sent and not yet answered, by request id.
    sent: HashMap<String, Value>,
}

impl BridgeAttest {
    pub fn new(signer: Option<HostSigner>, server: Option<String>, trusted: Option<KeySet>) -> Self {
        Self {
            signer,
            server,
            trusted,
            sent: HashMap::new(),
        }
    }

    /// A message on its way to the gateway: `tools/call` requests are signed. The error is
    /// the JSON-RPC answer to give the host instead.
    pub fn outgoing(&mut self, msg: Message) -> Result<Message, Value> {
        if msg.kind() != MessageKind::Request || msg.method() != Some("tools/call") {
            return Ok(msg);
        }
        let id = msg.id().cloned();
        let refuse = |text: String| error_response(id.as_ref(), ErrorCode::InvalidParams, &text, None);
        let msg = match &self.signer {
            None => msg,
            Some(signer) => {
                let name = msg.param_str("name").unwrap_or_default();
                let (server, tool) = match (&self.server, split_namespaced(name)) {
                    (Some(server), _) => (server.clone(), name.to_owned()),
                    (None, Some((server, tool))) => (server.to_owned(), tool.to_owned()),
                    (None, None) => {
                        return Err(refuse(format!(
                            "cannot tell which server tool `{name}` belongs to; start the bridge with --server NAME"
                        )));
                    }
                };
                let mut value = msg.into_value();
                signer
                    .sign_request(&mut value, &server, &tool, unix_now())
                    .map_err(|e| refuse(format!("the bridge could not sign the call: {e}")))?;
                Message::from_value(value).map_err(|e| refuse(e.to_string()))?
            }
        };
        if self.trusted.is_some()
            && let Some(id) = msg.id()
        {
            let params = msg.params_value().cloned().unwrap_or(Value::Null);
            self.sent.insert(id.to_string(), params);
        }
        Ok(msg)
    }

    /// A message from the gateway: a result to a call sent is checked against its receipt.
    pub fn incoming(&mut self, msg: Message) -> Message {
        let Some(trusted) = &self.trusted else {
            return msg;
        };
        if msg.kind() != MessageKind::Response {
            return msg;
        }
        let Some(params) = msg.id().and_then(|id| self.sent.remove(&id.to_string())) else {
            return msg;
        };
        let Some(result) = msg.result() else {
            return msg;
        };
        match verify_result(&params, result, trusted) {
            Ok(_) => msg,
            Err(e) => {
                tracing::error!("a result from the gateway failed its receipt check and was discarded: {e}");
                let text = format!("the gateway's result did not verify and was discarded: {e}");
                let answer = error_response(msg.id(), ErrorCode::Denied, &text, None);
                Message::from_value(answer).unwrap_or(msg)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use ed25519_dalek::SigningKey;
    use portcullis_attest::{HashedFacts, RESULT_SIGNATURE_META_KEY, key_id, sign_hashed_receipt};
    use portcullis_mcp::canonical::canonical_sha256;
    use serde_json::json;

    use super::*;

    fn call(name: &str) -> Message {
        Message::from_value(json!({"jsonrpc": "2.0", "id": 4, "method": "tools/call",
            "params": {"name": name, "arguments": {"text": "hi"}}}))
        .unwrap()
    }

    fn bridge(server: Option<&str>, gateway: &SigningKey) -> BridgeAttest {
        let signer = HostSigner::new(SigningKey::from_bytes(&[1; 32]), "aud");
        let mut trusted = KeySet::new();
        trusted.insert_derived(gateway.verifying_key()).unwrap();
        BridgeAttest::new(Some(signer), server.map(str::to_owned), Some(trusted))
    }

    /// The answer a gateway would give: the result with a receipt over the params it received.
    fn answer(gateway: &SigningKey, params: &Value, text: &str) -> Value {
        let mut result = json!({"content": [{"type": "text", "text": "hi"}]});
        let receipt = sign_hashed_receipt(
            gateway,
            &key_id(&gateway.verifying_key()),
            HashedFacts {
                request_sha256: canonical_sha256(params),
                result_sha256: canonical_sha256(&result),
                decision_id: "d",
                audit_index: 1,
                time: unix_now(),
                approval_ids: &[],
            },
        )
        .unwrap();
        result["content"][0]["text"] = json!(text);
        result["_meta"] = json!({ RESULT_SIGNATURE_META_KEY: receipt });
        json!({"jsonrpc": "2.0", "id": 4, "result": result})
    }

    #[test]
    fn calls_are_signed_for_the_routed_server_and_tool() {
        let gateway = SigningKey::from_bytes(&[2; 32]);
        let mut b = bridge(None, &gateway);
        let signed = b.outgoing(call("demo__echo")).unwrap();
        let entry = &signed.params().unwrap()["_meta"][portcullis_attest::META_KEY];
        assert_eq!(
            (entry["server"].as_str(), entry["tool"].as_str()),
            (Some("demo"), Some("echo"))
        );
        let refused = b.outgoing(call("echo")).unwrap_err();
        assert!(refused["error"]["message"].as_str().unwrap().contains("--server"));
        let mut single = bridge(Some("demo"), &gateway);
        let signed = single.outgoing(call("echo")).unwrap();
        assert_eq!(
            signed.params().unwrap()["_meta"][portcullis_attest::META_KEY]["tool"],
            "echo"
        );
    }

    #[test]
    fn an_intact_result_passes_and_a_tampered_one_becomes_an_error() {
        let gateway = SigningKey::from_bytes(&[2; 32]);
        let mut b = bridge(Some("demo"), &gateway);
        let sent = b.outgoing(call("echo")).unwrap();
        let params = sent.params_value().unwrap().clone();
        let intact = Message::from_value(answer(&gateway, &params, "hi")).unwrap();
        assert!(b.incoming(intact).result().is_some());

        let sent = b.outgoing(call("echo")).unwrap();
        let params = sent.params_value().unwrap().clone();
        let tampered = Message::from_value(answer(&gateway, &params, "tampered")).unwrap();
        let out = b.incoming(tampered);
        assert_eq!(out.error().unwrap()["code"], ErrorCode::Denied.code());
        assert!(out.error().unwrap()["message"].as_str().unwrap().contains("altered"));
    }
}
