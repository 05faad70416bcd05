//! The stages of the per-call path, each a plain object that judges or records and never
//! calls back into the orchestrator: `route` (which server, namespacing), `attest` (the
//! host's signature), `classify` (pins and scanner verdicts), `authorise` (the policy
//! decision), `approve` (approvals bound to the call), `scope` (the call's own credential,
//! from the broker), `record` (the audit log, durable before forwarding and before release) and
//! `receipts` (the signed result). [`crate::pipeline::run`] calls them in order; a stage's
//! failure becomes a [`crate::deny::Deny`].
pub(crate) mod approve;
pub(crate) mod attest;
pub(crate) mod authorise;
pub(crate) mod classify;
pub(crate) mod receipts;
pub(crate) mod record;
pub(crate) mod redact;
pub(crate) mod route;
pub(crate) mod scope;
