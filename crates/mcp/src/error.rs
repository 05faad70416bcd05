//! JSON-RPC error codes used by the gateway and builders for error responses.
//!
//! Codes -32000…-32019 are implementation-defined; -32020…-32099 belong to the
//! MCP specification (2026-07-28 error-code policy).
use serde_json::{Value, json};

/// Error codes the gateway sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorCode {
    ParseError,
    InvalidRequest,
    MethodNotFound,
    InvalidParams,
    InternalError,
    /// The upstream server failed: exited, closed, or sent malformed output.
    UpstreamFailed,
    /// The upstream server did not answer in time.
    UpstreamTimeout,
    /// The gateway is at a configured limit (sessions, queue).
    Overloaded,
    /// The call was denied by a control (policy, attestation, audit).
    Denied,
    /// 2026-07-28: HTTP headers disagree with the body.
    HeaderMismatch,
    /// 2026-07-28: the requested protocol version is not supported.
    UnsupportedProtocolVersion,
}

impl ErrorCode {
    pub fn code(self) -> i64 {
        match self {
            ErrorCode::ParseError => -32700,
            ErrorCode::InvalidRequest => -32600,
            ErrorCode::MethodNotFound => -32601,
            ErrorCode::InvalidParams => -32602,
            ErrorCode::InternalError => -32603,
            ErrorCode::UpstreamFailed => -32010,
            ErrorCode::UpstreamTimeout => -32011,
            ErrorCode::Overloaded => -32012,
            ErrorCode::Denied => -32013,
            ErrorCode::HeaderMismatch => -32020,
            ErrorCode::UnsupportedProtocolVersion => -32022,
        }
    }
}

/// A JSON-RPC error response with `id` (or `null` when the request had none usable).
pub fn error_response(id: Option<&Value>, code: ErrorCode, message: &str, data: Option<Value>) -> Value {
    let mut error = json!({"code": code.code(), "message": message});
    if let (Some(data), Some(obj)) = (data, error.as_object_mut()) {
        obj.insert("data".to_owned(), data);
    }
    json!({"jsonrpc": "2.0", "id": id.cloned().unwrap_or(Value::Null), "error": error})
}
