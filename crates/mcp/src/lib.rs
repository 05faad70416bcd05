//! JSON-RPC 2.0 and MCP vocabulary for the relay: strict parsing, raw messages
//! with read-only views, method classification and protocol revisions.
//!
//! Architecture invariant: this crate does no I/O and does not depend on tokio.
//! The relay forwards the raw [`serde_json::Value`] it parsed; the helpers here
//! only inspect it or make the few documented rewrites (ids, namespacing).
#![forbid(unsafe_code)]

#[cfg(test)]
mod arbitrary;
pub mod canonical;
pub mod encode;
pub mod error;
mod fold;
pub mod headers;
mod level;
pub mod message;
pub mod method;
pub mod revision;
pub mod strict;
mod tokens;

pub use error::{ErrorCode, error_response};
pub use message::{Message, MessageKind, ReadError};
pub use method::{MethodClass, NonActing, NotificationClass};
pub use revision::{Era, ProtocolVersion};
pub use strict::{Limits, ParseError, parse_message, parse_strict};
