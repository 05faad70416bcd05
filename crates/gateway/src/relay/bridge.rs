//! Bridging between protocol revisions, on plain values: the client's hello (its era and
//! `_meta` context), the upstream's era from its handshake, and the configured servers.
//!
//! - a request is adapted to the upstream's era: a 2026-07-28 upstream needs the client's
//!   context in `_meta` on every request; a legacy upstream gets those keys removed;
//! - an answer is adapted to the client's era: a 2026-07-28 client needs `resultType` and
//!   cache hints; a legacy client cannot take an upstream's `input_required`;
//! - the gateway's own handshake answers (`initialize` for a legacy client,
//!   `server/discover` for a modern one) merge the upstreams' capabilities and instructions.
use portcullis_core::ServerName;
use portcullis_mcp::{
    Era, ErrorCode, Message, ProtocolVersion, error_response,
    revision::{META_CLIENT_CAPABILITIES, META_CLIENT_INFO, META_PROTOCOL_VERSION},
};
use serde_json::{Map, Value, json};

use crate::relay::{connect::UpstreamEra, hello::ClientHello};

/// Adapts a request to the upstream's era: modern upstreams need the client's
/// context in `_meta`; legacy upstreams get the client↔gateway keys removed.
pub fn bridge_request(client: &ClientHello, upstream: &UpstreamEra, msg: &mut Message) {
    match (client.era(), upstream.is_modern()) {
        (Era::Legacy, true) => msg.with_params(|params| {
            let meta = params.entry("_meta").or_insert_with(|| json!({}));
            if let Some(meta) = meta.as_object_mut() {
                for (k, v) in client.modern_meta() {
                    meta.entry(k).or_insert(v);
                }
            }
        }),
        (Era::Modern, false) => {
            // Looked at first: taking `params` to change drops the bytes kept to forward.
            const MODERN_KEYS: [&str; 3] = [META_PROTOCOL_VERSION, META_CLIENT_CAPABILITIES, META_CLIENT_INFO];
            if !msg
                .meta()
                .is_some_and(|m| MODERN_KEYS.iter().any(|k| m.contains_key(*k)))
            {
                return;
            }
            let Some(params) = msg.params_mut() else {
                return;
            };
            let now_empty = match params.get_mut("_meta").and_then(Value::as_object_mut) {
                Some(meta) => {
                    for k in MODERN_KEYS {
                        meta.shift_remove(k);
                    }
                    meta.is_empty()
                }
                None => false,
            };
            if now_empty {
                params.shift_remove("_meta");
            }
        }
        _ => {}
    }
}

/// Whether a method's 2026-07-28 result needs cache hints.
pub fn cacheable(method: &str) -> bool {
    matches!(
        method,
        "tools/list" | "prompts/list" | "resources/list" | "resources/templates/list" | "resources/read"
    )
}

/// Adapts an answer to the client's era.
pub fn bridge_response(client: Era, upstream: &UpstreamEra, cacheable: bool, answer: &mut Message) {
    match (client, upstream) {
        (Era::Modern, UpstreamEra::Legacy { .. }) => {
            if let Some(result) = answer.result_mut().and_then(Value::as_object_mut) {
                result.entry("resultType").or_insert(json!("complete"));
                if cacheable {
                    // 2026-07-28 requires cache hints on these results; results depend on
                    // the caller, so: private, and fresh for no time at all.
                    result.entry("ttlMs").or_insert(json!(0));
                    result.entry("cacheScope").or_insert(json!("private"));
                }
            }
        }
        (Era::Legacy, UpstreamEra::Modern { .. }) => {
            let needs_input = answer
                .result()
                .and_then(|r| r.get("resultType"))
                .and_then(Value::as_str)
                == Some("input_required");
            if needs_input {
                let text = "the upstream asked for more input (2026-07-28 multi round-trip), which the gateway cannot yet bridge to a 2025 client";
                let err = error_response(answer.id(), ErrorCode::UpstreamFailed, text, None);
                if let Ok(m) = Message::from_value(err) {
                    *answer = m;
                }
            }
        }
        _ => {}
    }
}

/// A merged list result for a client of `client` era (2026-07-28 results carry cache hints).
pub fn list_result(client: Era, field: &str, items: Vec<Value>) -> Value {
    let mut result = Map::new();
    result.insert(field.to_owned(), Value::Array(items));
    if client == Era::Modern {
        result.insert("resultType".into(), json!("complete"));
        result.insert("ttlMs".into(), json!(0));
        result.insert("cacheScope".into(), json!("private"));
    }
    Value::Object(result)
}

/// The configured servers, in the order their eras are given, and whether names are
/// namespaced (several servers).
#[derive(Clone, Copy)]
pub struct Servers<'a> {
    pub names: &'a [ServerName],
    pub namespaced: bool,
}

/// The `initialize` result for a legacy client.
pub fn initialize_result(hello: &ClientHello, eras: &[UpstreamEra], servers: Servers<'_>) -> Value {
    if let ([UpstreamEra::Legacy { init }], false) = (eras, servers.namespaced) {
        // One legacy server: its own answer, untouched (it negotiated with the client's params).
        return Value::clone(init);
    }
    let mut result = json!({
        "protocolVersion": hello.version.as_str(),
        "capabilities": merge_capabilities(eras),
        "serverInfo": gateway_info(),
    });
    if let Some(text) = merged_instructions(eras, servers)
        && let Some(obj) = result.as_object_mut()
    {
        obj.insert("instructions".into(), Value::String(text));
    }
    result
}

/// The `server/discover` result for a modern client.
pub fn discover_result(eras: &[UpstreamEra], servers: Servers<'_>) -> Value {
    if let ([UpstreamEra::Modern { discover }], false) = (eras, servers.namespaced) {
        return Value::clone(discover);
    }
    let mut result = json!({
        "resultType": "complete",
        "supportedVersions": ProtocolVersion::supported_strings(),
        "capabilities": merge_capabilities(eras),
        "_meta": {"io.modelcontextprotocol/serverInfo": gateway_info()},
        // What a caller may use depends on who it is: never shared, never stale.
        "ttlMs": 0,
        "cacheScope": "private",
    });
    if let Some(text) = merged_instructions(eras, servers)
        && let Some(obj) = result.as_object_mut()
    {
        obj.insert("instructions".into(), Value::String(text));
    }
    result
}

/// Unions the upstreams' capabilities (flags inside each capability are OR-ed).
fn merge_capabilities(eras: &[UpstreamEra]) -> Value {
    let mut merged = Map::new();
    for era in eras {
        let Value::Object(caps) = era.capabilities() else {
            continue;
        };
        for (key, value) in caps {
            match (merged.get_mut(&key), value) {
                (Some(Value::Object(into)), Value::Object(from)) => {
                    for (k, v) in from {
                        let keep_true = into.get(&k) == Some(&Value::Bool(true));
                        if !keep_true {
                            into.insert(k, v);
                        }
                    }
                }
                (None, value) => {
                    merged.insert(key, value);
                }
                _ => {}
            }
        }
    }
    Value::Object(merged)
}

fn merged_instructions(eras: &[UpstreamEra], servers: Servers<'_>) -> Option<String> {
    let parts: Vec<String> = eras
        .iter()
        .zip(servers.names)
        .filter_map(|(era, server)| {
            let text = era.instructions()?;
            Some(if servers.namespaced {
                format!("[{server}] {text}")
            } else {
                text.to_owned()
            })
        })
        .collect();
    (!parts.is_empty()).then(|| parts.join("\n\n"))
}

fn gateway_info() -> Value {
    json!({"name": "portcullis", "version": env!("CARGO_PKG_VERSION")})
}
