//! The 2026-07-28 request headers (`Mcp-Method`, `Mcp-Name`) and their check
//! against the body: a load balancer and the gateway must never disagree on
//! what a request does, so any mismatch is refused with `HeaderMismatch`.
use base64::Engine;

use crate::{Message, method::MethodClass};

/// A disagreement between the headers and the body, or a malformed header.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum HeaderError {
    #[error("missing required header `{0}`")]
    Missing(&'static str),
    #[error("header `{header}` value `{header_value}` does not match body value `{body_value}`")]
    Mismatch {
        header: &'static str,
        header_value: String,
        body_value: String,
    },
    #[error("header `{0}` has an invalid base64 sentinel value")]
    BadEncoding(&'static str),
}

/// Decodes a header value that may use the `=?base64?…?=` sentinel encoding.
pub fn decode_header_value(raw: &str, header: &'static str) -> Result<String, HeaderError> {
    match raw.strip_prefix("=?base64?").and_then(|r| r.strip_suffix("?=")) {
        Some(b64) => base64::engine::general_purpose::STANDARD
            .decode(b64)
            .ok()
            .and_then(|bytes| String::from_utf8(bytes).ok())
            .ok_or(HeaderError::BadEncoding(header)),
        None => Ok(raw.to_owned()),
    }
}

/// Checks `Mcp-Method` and, where required, `Mcp-Name` against the message body.
pub fn check_request_headers(
    msg: &Message,
    mcp_method: Option<&str>,
    mcp_name: Option<&str>,
) -> Result<(), HeaderError> {
    let method = msg.method().unwrap_or_default();
    let header_method = mcp_method.ok_or(HeaderError::Missing("Mcp-Method"))?;
    if header_method != method {
        return Err(HeaderError::Mismatch {
            header: "Mcp-Method",
            header_value: header_method.to_owned(),
            body_value: method.to_owned(),
        });
    }
    let body_name = match MethodClass::of(method) {
        MethodClass::CallTool | MethodClass::GetPrompt => msg.param_str("name"),
        _ if method == "resources/read" => msg.param_str("uri"),
        _ => return Ok(()),
    };
    let raw = mcp_name.ok_or(HeaderError::Missing("Mcp-Name"))?;
    let header_name = decode_header_value(raw, "Mcp-Name")?;
    let body_name = body_name.unwrap_or_default();
    if header_name != body_name {
        return Err(HeaderError::Mismatch {
            header: "Mcp-Name",
            header_value: header_name,
            body_value: body_name.to_owned(),
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn msg(v: serde_json::Value) -> Message {
        Message::from_value(v).unwrap()
    }

    #[test]
    fn header_table() {
        let call = msg(json!({"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"get_weather"}}));
        let read = msg(json!({"jsonrpc":"2.0","id":1,"method":"resources/read","params":{"uri":"file:///a b"}}));
        let list = msg(json!({"jsonrpc":"2.0","id":1,"method":"tools/list"}));
        let b64 = "=?base64?ZmlsZTovLy9hIGI=?=";
        type Case<'a> = (&'a Message, Option<&'a str>, Option<&'a str>, Result<(), HeaderError>);
        let cases: Vec<Case> = vec![
            (&call, Some("tools/call"), Some("get_weather"), Ok(())),
            (
                &call,
                Some("tools/call"),
                Some("other"),
                Err(HeaderError::Mismatch {
                    header: "Mcp-Name",
                    header_value: "other".into(),
                    body_value: "get_weather".into(),
                }),
            ),
            (
                &call,
                Some("tools/list"),
                Some("get_weather"),
                Err(HeaderError::Mismatch {
                    header: "Mcp-Method",
                    header_value: "tools/list".into(),
                    body_value: "tools/call".into(),
                }),
            ),
            (
                &call,
                None,
                Some("get_weather"),
                Err(HeaderError::Missing("Mcp-Method")),
            ),
            (&call, Some("tools/call"), None, Err(HeaderError::Missing("Mcp-Name"))),
            (&read, Some("resources/read"), Some(b64), Ok(())),
            (
                &read,
                Some("resources/read"),
                Some("=?base64?!!?="),
                Err(HeaderError::BadEncoding("Mcp-Name")),
            ),
            (&list, Some("tools/list"), None, Ok(())),
        ];
        for (m, method, name, want) in cases {
            assert_eq!(check_request_headers(m, method, name), want, "{method:?} {name:?}");
        }
    }
}
