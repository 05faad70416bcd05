//! Fixtures for the official MCP conformance suite (`@modelcontextprotocol/conformance`).
//!
//! The suite's `server` mode calls tools, resources and prompts by fixed names; its reference
//! server is not published, so this crate implements those fixtures with rmcp, for both the
//! 2025-11-25 lifecycle and the stateless 2026-07-28 revision. The gateway's conformance tests
//! run the suite against this fixture alone and through the gateway, and compare scores.
//!
//! The `portcullis-conformance-client` binary (see `client`) is the other half: the MCP client
//! the suite's `client` mode drives against its mock servers.
#![forbid(unsafe_code)]

mod calls;
pub mod client;
mod media;
mod mrtr;
mod prompts;
mod resources;
mod server;
mod state;
mod tools;
mod transport;

pub use server::FixtureServer;
pub use state::FixtureState;
pub use transport::{serve_http, serve_stdio};
