//! The scope stage (pillar 4, least privilege): the credential broker gives a call its own
//! credential after the decision, and nothing before it.
//!
//! Before the decision, the broker's rules (`[[credentials]]`) name the credential a call
//! would get, so the policy sees it (`context.credential`) and the records name it. Once
//! the call is allowed (and approved, when it needed approval), the broker mints it —
//! a database role, a signed JWT, an exchanged token or a named secret — bound to that
//! call; a failure denies the call, recorded (fail closed: the server never sees a call
//! without the credential its rule requires). The forward stage delivers it (a header on
//! that one request, or the environment of a child started for that call alone), and it
//! is released as soon as the answer is in (a per-call database role is dropped). No rule,
//! no credential: the server gets nothing.
//!
//! This module holds the stage's judgement (how a lease is delivered); its orchestration
//! (plan, mint, deny, release) sits below `pipeline::run`, the sweeper with the gateway.
use portcullis_broker::Lease;
use portcullis_transport::CallHeader;

/// The header a credential is delivered in, if it goes in one (`Some(None)`: it should,
/// but its value cannot be an HTTP header).
pub(crate) fn header_of(lease: &Lease) -> Option<Option<CallHeader>> {
    let (name, value) = lease.header()?;
    Some(CallHeader::new(name, value.expose()))
}

/// The environment variable a credential is delivered in, if it goes in one.
pub(crate) fn env_of(lease: &Lease) -> Option<(String, portcullis_core::Secret<String>)> {
    let (var, value) = lease.env()?;
    Some((var.to_owned(), value.clone()))
}
