//! The gateway: sessions, upstream connections, namespacing, the per-call
//! pipeline, and the two fronts (Streamable HTTP and stdio) that feed it.
//!
//! Reading order: `pipeline` (the per-call path), `gateway` (state and session
//! lifecycle), `upstream` (JSON-RPC peer over a transport link), `connect`
//! (handshakes and revision detection), `front_http` / `front_stdio`.
#![forbid(unsafe_code)]

mod attest_call;
mod authorise;
mod caller;
mod classify;
pub mod config;
mod connect;
mod error;
mod front_http;
mod front_stdio;
mod gateway;
mod hello;
mod http_clients;
mod identify;
mod namespace;
mod origin;
mod pipeline;
mod probe;
mod record;
mod redact;
mod session;
mod sink;
mod upstream;

pub use authorise::{Authoriser, REASON_ARGUMENT, REASON_META_KEY};
pub use caller::Caller;
pub use classify::Hold;
pub use error::UpstreamError;
pub use front_http::serve_http;
pub use front_stdio::serve_stdio;
pub use gateway::{Gateway, SessionError};
pub use hello::ClientHello;
pub use namespace::{Namespacer, RouteError};
pub use probe::list_server_tools;
pub use record::{RECEIPT_META_KEY, Recorder};
