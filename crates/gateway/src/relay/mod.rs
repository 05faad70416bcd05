//! The gateway's side of each upstream server: starting it and introducing the client in
//! the server's protocol era (`connect`, `hello`), the JSON-RPC peer over its link
//! (`upstream`), bridging between protocol revisions (`bridge`), reading whole listings
//! (`lists`), shared HTTP clients (`http_clients`) and probing a server outside any session
//! (`probe`). Nothing here decides anything: the relay moves what the stages let through.
pub(crate) mod bridge;
pub(crate) mod connect;
pub(crate) mod hello;
pub(crate) mod http_clients;
pub(crate) mod lists;
pub(crate) mod probe;
pub(crate) mod upstream;

use std::sync::Arc;

use portcullis_mcp::NonActing;
use portcullis_policy::Permit;

use crate::{
    relay::{connect::UpstreamEra, upstream::UpstreamPeer},
    stages::classify::ToolGate,
};

/// An upstream as one session sees it.
#[derive(Clone)]
pub struct Connected {
    pub peer: Arc<UpstreamPeer>,
    pub era: UpstreamEra,
    /// The classify stage's verdicts on this connection's tools.
    pub gate: Arc<ToolGate>,
}

impl Connected {
    pub fn new(peer: Arc<UpstreamPeer>, era: UpstreamEra) -> Self {
        Self {
            peer,
            era,
            gate: Arc::default(),
        }
    }
}

/// What lets a request reach an upstream: the authorise stage's [`Permit`] for a call that
/// acts, or the [`NonActing`] proof method classification gives a listing or a handshake.
/// Neither can be made up here: only `portcullis-policy` builds a `Permit`, only
/// `portcullis-mcp`'s classification a `NonActing`.
pub enum Clearance {
    Permitted(Permit),
    NonActing(NonActing),
}
