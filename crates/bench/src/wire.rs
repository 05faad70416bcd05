//! The JSON-RPC messages the benchmark sends, and the upstream's answers.
//!
//! The upstream answers `initialize`, `tools/list`, `tools/call` of `echo` and
//! `ping`; notifications get no answer, and neither does a `tools/call` of `hang`. Kept minimal and allocation-light on
//! purpose: it must be much cheaper than the gateway it is measured against.
use portcullis_core::REASON_META_KEY;
use serde_json::{Value, json};

/// The protocol revision the load client speaks (sessions via `Mcp-Session-Id`).
pub const PROTOCOL: &str = "2025-11-25";
/// The upstream's name in the gateway's config (what host signatures name).
pub const SERVER: &str = "bench";
/// The tool of the bench upstream that the load calls.
pub const TOOL: &str = "echo";
/// A tool that never answers over stdio: the soak's hanging call (fault injection).
pub const HANG_TOOL: &str = "hang";

/// The client's `initialize` request.
pub fn initialize(id: u64) -> Value {
    json!({
        "jsonrpc": "2.0", "id": id, "method": "initialize",
        "params": {
            "protocolVersion": PROTOCOL,
            "capabilities": {},
            "clientInfo": {"name": "portcullis-bench", "version": env!("CARGO_PKG_VERSION")}
        }
    })
}

/// The `notifications/initialized` notification.
pub fn initialized() -> Value {
    json!({"jsonrpc": "2.0", "method": "notifications/initialized"})
}

/// The text argument of the echo call: `payload` bytes of printable ASCII.
pub fn payload_text(payload: usize) -> String {
    (0..payload).map(|i| char::from(b'a' + (i % 26) as u8)).collect()
}

/// A `tools/call` of `echo` with `text` (about `text.len()` bytes of arguments).
pub fn call(id: u64, text: &str) -> Value {
    json!({
        "jsonrpc": "2.0", "id": id, "method": "tools/call",
        "params": {
            "name": TOOL,
            "arguments": {"text": text},
            "_meta": {REASON_META_KEY: "benchmark"}
        }
    })
}

/// Whether `body` is a successful JSON-RPC answer (SSE `data:` lines accepted too).
pub fn is_success(body: &[u8]) -> bool {
    let parse = |bytes: &[u8]| serde_json::from_slice::<Value>(bytes).ok();
    let answer = match parse(body) {
        Some(v) => Some(v),
        None => std::str::from_utf8(body).ok().and_then(|text| {
            text.lines()
                .filter_map(|l| l.strip_prefix("data:"))
                .filter_map(|d| serde_json::from_str::<Value>(d.trim()).ok())
                .find(|v| v.get("id").is_some())
        }),
    };
    answer.is_some_and(|v| {
        v.get("result")
            .is_some_and(|r| r.get("isError") != Some(&Value::Bool(true)))
    })
}

/// The upstream's answer to one message; `None` for notifications and responses.
pub fn answer(msg: &Value) -> Option<Value> {
    let id = msg.get("id")?.clone();
    let method = msg.get("method").and_then(Value::as_str)?;
    let params = msg.get("params");
    let result = match method {
        "initialize" => {
            let asked = params
                .and_then(|p| p.get("protocolVersion"))
                .and_then(Value::as_str)
                .filter(|v| matches!(*v, "2025-11-25" | "2025-06-18" | "2025-03-26" | "2024-11-05"))
                .unwrap_or(PROTOCOL);
            json!({
                "protocolVersion": asked,
                "capabilities": {"tools": {}},
                "serverInfo": {"name": "portcullis-bench-upstream", "version": env!("CARGO_PKG_VERSION")}
            })
        }
        "ping" => json!({}),
        "tools/list" => json!({"tools": [{
            "name": TOOL,
            "description": "Returns its `text` argument.",
            "inputSchema": {"type": "object", "properties": {"text": {"type": "string"}}, "required": ["text"]}
        }, {
            "name": HANG_TOOL,
            "description": "Never answers (over stdio).",
            "inputSchema": {"type": "object"}
        }]}),
        "tools/call" if params.and_then(|p| p.get("name")).and_then(Value::as_str) == Some(HANG_TOOL) => return None,
        "tools/call" if params.and_then(|p| p.get("name")).and_then(Value::as_str) == Some(TOOL) => {
            let text = params
                .and_then(|p| p.pointer("/arguments/text"))
                .and_then(Value::as_str)
                .unwrap_or_default();
            json!({"content": [{"type": "text", "text": text}], "isError": false})
        }
        _ => {
            return Some(json!({
                "jsonrpc": "2.0", "id": id,
                "error": {"code": -32601, "message": format!("`{method}` is not supported by the bench upstream")}
            }));
        }
    };
    Some(json!({"jsonrpc": "2.0", "id": id, "result": result}))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn echo_round_trip() {
        let text = payload_text(1024);
        assert_eq!(text.len(), 1024);
        let request = call(7, &text);
        assert!(serde_json::to_vec(&request).map(|v| v.len()).unwrap_or(0) > 1024);
        let answer = answer(&request).map(|a| serde_json::to_vec(&a).unwrap_or_default());
        assert!(answer.as_deref().is_some_and(is_success));
        assert!(super::answer(&initialized()).is_none());
        let sse = b"event: message\ndata: {\"jsonrpc\":\"2.0\",\"id\":1,\"result\":{}}\n\n";
        assert!(is_success(sse));
        assert!(!is_success(
            br#"{"jsonrpc":"2.0","id":1,"error":{"code":1,"message":"x"}}"#
        ));
    }
}
