//! Errors of the gateway's data path, each mapped to one JSON-RPC error.
use std::time::Duration;

use portcullis_mcp::ErrorCode;

/// An upstream server failed a call.
#[derive(Debug, Clone, thiserror::Error)]
pub enum UpstreamError {
    #[error("upstream server `{server}` is unavailable: {reason}")]
    Closed { server: String, reason: String },
    #[error("upstream server `{server}` did not answer within {after:?}; the call was cancelled")]
    Timeout { server: String, after: Duration },
    #[error("upstream server `{server}` could not be started: {reason}")]
    Start { server: String, reason: String },
    #[error("upstream server `{server}` refused the handshake: {reason}")]
    Handshake { server: String, reason: String },
}

impl UpstreamError {
    pub fn code(&self) -> ErrorCode {
        match self {
            UpstreamError::Timeout { .. } => ErrorCode::UpstreamTimeout,
            UpstreamError::Closed { .. } | UpstreamError::Start { .. } | UpstreamError::Handshake { .. } => {
                ErrorCode::UpstreamFailed
            }
        }
    }
}
