//! Approvals: a `write`-tier call (or any call the policy says needs one) proceeds only
//! with approvals bound to that exact call. This crate is the approvals stage's judgement,
//! used by the gateway between authorise and record; it depends on no other stage crate.
//!
//! - [`Binding`]: what one approval is for — principal, server, method, target, the
//!   canonical argument digest, the policy hash of the decision, a gateway nonce, an
//!   expiry. Approving a call approves nothing else.
//! - [`token`]: an approver's Ed25519 signature over a binding (`pca1.…`), made by the
//!   CLI (`portcullis approvals approve|sign`) or any tool holding an approver key.
//! - [`Approvers`]: who may approve (by SPIFFE ID and/or public key), never their own calls.
//! - [`Pending`]: the calls waiting for approval, bounded; each collects distinct
//!   approvers until it has the `required` number (N-of-M), is denied, expires, or is
//!   withdrawn, and is consumed once.
//! - [`BreakGlass`]: emergency windows, active once two distinct approvers approve them,
//!   ending at their TTL or when ended.
//! - [`ApprovalStore`]: where pending requests, used nonces and windows live — this
//!   gateway's memory ([`Pending`], [`BreakGlass`]), or PostgreSQL shared by replicas.
//! - [`RequestStates`]: the integrity-protected `requestState` of 2026-07-28 clients
//!   approving their own call through the multi-round-trip pattern.
//! - [`admin_auth`]: signed admin-API requests for approvers who hold a key.
//!
//! The design is in `docs/approvals.md`.
#![forbid(unsafe_code)]

pub mod admin_auth;
mod binding;
mod break_glass;
mod error;
mod pending;
mod registry;
mod request_state;
mod store;
pub mod token;

pub use binding::{BINDING_VERSION, Binding, BindingPrincipal};
pub use break_glass::{APPROVERS_NEEDED, BreakGlass, Window, WindowState};
pub use error::ApprovalError;
pub use pending::{Grant, Opening, Pending, PendingEntry, PendingSettings, PendingState, Requirement};
pub use registry::{Approver, Approvers};
pub use request_state::RequestStates;
pub use store::ApprovalStore;

/// `_meta` key under which a host passes approval tokens with a call: one token string,
/// or an array of them (N-of-M).
pub const APPROVAL_META_KEY: &str = "io.portcullis/approval";

/// Seconds since the Unix epoch.
pub fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or_default()
}
