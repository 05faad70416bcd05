//! The authorise stage: a policy decision on every call, by risk tier, failing closed.
//!
//! The gateway builds a [`DecisionRequest`] after identify, attest, classify and
//! validate, and calls [`PolicyStore::authorize`]. The answer is a [`Permit`] — the
//! only way past this stage, and constructible only here — or a [`Deny`] with a
//! client-safe message. Listing methods ask the same policies with
//! [`DecisionRequest::listing`], so `tools/list` shows only what the caller may use.
//!
//! # Design
//! - **One input document.** [`Input`] normalises a request once (argument hash over
//!   RFC 8785, trimmed reason, server-qualified scopes, operator switches). Rego gets
//!   it as `input`; Cedar gets the same facts as principal, resource and context per
//!   `schema/portcullis.cedarschema` ([`CEDAR_SCHEMA`]).
//! - **Engines behind [`Engine`].** [`CedarEngine`] (default; validated against the
//!   schema in strict mode at load) and [`RegoEngine`] (regorus; `data.portcullis.allow`
//!   and optional `data.portcullis.deny_reasons`).
//! - **Fail closed.** [`decide`] allows only if the engine said allow, a permit matched,
//!   no forbid or deny reason matched, no error was reported, evaluation did not panic
//!   and stayed within [`Settings::time_limit`]; [`PolicyStore`] also checks the set it
//!   evaluated is still the current one.
//! - **Never cached.** Each call is evaluated afresh. Cedar policies are *indexed* by
//!   the resource constraint of their scope at load (see `cedar/index.rs`), so a call
//!   evaluates only its tool's, its server's and the unconstrained policies.
//! - **Risk tiers.** `defaults/tiers.cedar` and `defaults/tiers.rego` implement the
//!   tier table: read needs identity + a reason (`require_reason`, a context attribute
//!   so the switch needs no policy edit), read-sensitive also a scope
//!   (`mcp:read-sensitive` or `<server>:read-sensitive`), write an approval
//!   (`approval_present`; until then it is denied with "approval required").
//! - **Operations.** Hot reload that refuses invalid sets ([`PolicyStore::reload_from_files`]
//!   and [`PolicyStore::fingerprint`] for polling), shadow sets
//!   ([`PolicyStore::authorize_with_shadow`]), [`explain`], and offline fixtures
//!   ([`run_fixtures`]).
#![forbid(unsafe_code)]

mod canonical;
mod cedar;
mod decision;
mod engine;
mod error;
mod fixtures;
mod input;
mod rego;
mod request;
mod sources;
mod store;
mod time;

pub use canonical::{Arguments, CanonicalError, arguments_sha256, canonical_json};
pub use cedar::{CedarEngine, Indexing, schema as cedar_schema};
pub use decision::{Decision, Deny, Explanation, Permit};
pub use engine::{Engine, EngineKind, Evaluation, authorize, decide, explain};
pub use error::PolicyError;
pub use fixtures::{Expect, FixtureCase, FixtureError, FixtureReport, Fixtures, Mismatch, run_fixtures};
pub use input::{Input, InputPrincipal, InputTarget, Settings};
pub use rego::RegoEngine;
pub use request::{CredentialFact, DecisionRequest, PrincipalFacts, TargetKind};
pub use sources::{
    CEDAR_SCHEMA, DEFAULT_CEDAR_POLICIES, DEFAULT_REGO_POLICIES, Fingerprint, PolicySource, fingerprint, policy_hash,
    read_sources,
};
pub use store::{PolicyFiles, PolicyStore, Reloaded, load_files, load_sources};
pub use time::{Timestamp, TimestampError};
