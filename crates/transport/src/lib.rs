//! Bytes and connections to upstream MCP servers: stdio child processes and
//! Streamable HTTP, both presented to the gateway as a [`Link`] — a pair of
//! channels carrying whole, strictly parsed JSON-RPC messages.
//!
//! Architecture invariant: this is the only crate that spawns processes, and it
//! always clears the child's environment before adding the configured variables.
#![forbid(unsafe_code)]

mod acking_stream;
mod child;
mod http1_conns;
mod http_upstream;
mod lines;
mod link;
mod param_headers;
pub mod sse;
mod stdin_writer;
#[cfg(test)]
mod test_server;
pub mod tls_words;

pub use child::{ChildSpec, SpawnError, spawn_child};
pub use http_upstream::{HttpSpec, connect_http};
pub use http1_conns::HttpClient;
pub use lines::{LineReader, LineReaderError};
pub use link::{CallHeader, DirectRequests, EventHandler, HandlerSlot, Link, LinkEvent, LinkGuard};
