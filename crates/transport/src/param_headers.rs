//! 2026-07-28 custom headers (`x-mcp-header`): a tool may ask for some of its
//! arguments to be mirrored into `Mcp-Param-{Name}` HTTP headers. The HTTP
//! upstream link learns the annotations from every `tools/list` answer that
//! passes through it and adds the headers to later `tools/call` requests.
use std::collections::HashMap;

use base64::Engine;
use portcullis_mcp::Message;
use serde_json::Value;

/// Header annotations per tool: `(header name, property path)`.
#[derive(Debug, Default)]
pub struct ParamHeaders {
    by_tool: HashMap<String, Vec<(String, Vec<String>)>>,
}

impl ParamHeaders {
    /// Learns the annotations of every tool in a `tools/list` result.
    pub fn learn(&mut self, result: &Value) {
        let Some(tools) = result.get("tools").and_then(Value::as_array) else {
            return;
        };
        for tool in tools {
            let Some(name) = tool.get("name").and_then(Value::as_str) else {
                continue;
            };
            let mut found = Vec::new();
            if let Some(schema) = tool.get("inputSchema") {
                collect(schema, &mut Vec::new(), &mut found);
            }
            if found.is_empty() {
                self.by_tool.remove(name);
            } else {
                self.by_tool.insert(name.to_owned(), found);
            }
        }
    }

    /// The `Mcp-Param-*` headers for a `tools/call` request.
    pub fn headers_for(&self, call: &Message) -> Vec<(String, String)> {
        let Some(annotations) = call.param_str("name").and_then(|n| self.by_tool.get(n)) else {
            return Vec::new();
        };
        let Some(args) = call.params().and_then(|p| p.get("arguments")) else {
            return Vec::new();
        };
        let mut out = Vec::new();
        for (header, path) in annotations {
            let value = path.iter().try_fold(args, |v, key| v.get(key));
            let text = match value {
                Some(Value::String(s)) => s.clone(),
                Some(Value::Bool(b)) => b.to_string(),
                Some(Value::Number(n)) => n.to_string(),
                _ => continue,
            };
            out.push((format!("mcp-param-{header}"), header_safe(&text)));
        }
        out
    }
}

/// Walks `properties` (and nested `properties`) collecting `x-mcp-header` names.
fn collect(schema: &Value, path: &mut Vec<String>, out: &mut Vec<(String, Vec<String>)>) {
    let Some(props) = schema.get("properties").and_then(Value::as_object) else {
        return;
    };
    for (key, sub) in props {
        path.push(key.clone());
        if let Some(header) = sub.get("x-mcp-header").and_then(Value::as_str) {
            out.push((header.to_owned(), path.clone()));
        }
        collect(sub, path, out);
        path.pop();
    }
}

/// A header-safe rendering of `value`, using the base64 sentinel when needed.
pub fn header_safe(value: &str) -> String {
    let printable = value.bytes().all(|b| (0x20..=0x7e).contains(&b));
    let padded = value.starts_with(' ') || value.ends_with(' ');
    let looks_encoded = value.starts_with("=?base64?") && value.ends_with("?=");
    if printable && !padded && !looks_encoded {
        value.to_owned()
    } else {
        format!("=?base64?{}?=", base64::engine::general_purpose::STANDARD.encode(value))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn learns_and_mirrors_annotated_arguments() {
        let mut h = ParamHeaders::default();
        h.learn(
            &json!({"tools": [{"name": "sql", "inputSchema": {"type": "object", "properties": {
            "region": {"type": "string", "x-mcp-header": "Region"},
            "opts": {"type": "object", "properties": {"dry": {"type": "boolean", "x-mcp-header": "Dry"}}},
            "query": {"type": "string"}}}}]}),
        );
        let call = Message::from_value(
            json!({"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"sql",
            "arguments":{"region":"Hello, 世界","opts":{"dry":true},"query":"select"}}}),
        )
        .unwrap();
        assert_eq!(
            h.headers_for(&call),
            vec![
                (
                    "mcp-param-Region".to_owned(),
                    "=?base64?SGVsbG8sIOS4lueVjA==?=".to_owned()
                ),
                ("mcp-param-Dry".to_owned(), "true".to_owned()),
            ]
        );
        let other =
            Message::from_value(json!({"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"x"}})).unwrap();
        assert!(h.headers_for(&other).is_empty());
    }
}
