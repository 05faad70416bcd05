//! Identify stage of the gateway: who is calling.
//!
//! * Workloads are identified by mutual TLS with SPIFFE X.509-SVIDs: [`server_tls`]
//!   builds the front's rustls config (own certificate and client trust bundle, both
//!   reloaded from files without restart), [`SvidPolicy`] performs the SPIFFE check of a
//!   leaf in the handshake and again on every call with the current time.
//! * Users are identified by OAuth 2.1 bearer JWTs: [`jwt::JwtValidator`] checks them
//!   against the issuer's JWK Set, with a strict audience rule; [`jwt::ProtectedResource`]
//!   and [`jwt::BearerChallenge`] give the MCP authorization surface.
//! * [`Identity`] combines both into the core [`portcullis_core::Principal`].
//! * [`upstream_tls`] builds the client config for forwarding to HTTP upstreams over mTLS,
//!   pinned to the upstream's SPIFFE ID.
//! * [`serve`] serves an axum router over (mutual) TLS or plain HTTP, within connection
//!   caps and timeouts ([`ServeLimits`]), and over TLS hands every request the client's
//!   chain as [`PeerCertificates`], for the per-call SVID check.
//! * [`DevCa`] is the built-in development CA.
//! * [`WorkloadApi`] takes the gateway's SVID and the trust bundles from a SPIFFE Workload
//!   API (a SPIRE agent) instead of files ([`SvidSource`], [`BundleSource`]); the
//!   `test-util` feature adds `test_workload_api::FakeSpireAgent`, a stand-in for tests.
//!
//! Every TLS config is built with the aws-lc-rs provider passed explicitly; nothing here
//! relies on a process-wide default.
#![forbid(unsafe_code)]

mod client_verifier;
mod conn_limits;
mod dev_ca;
mod files;
mod handshake_log;
mod identity;
pub mod jwt;
mod material;
mod own_cert;
mod reload;
pub mod server_tls;
mod sources;
mod spiffe_id;
mod svid;
#[cfg(feature = "test-util")]
pub mod test_issuer;
#[cfg(feature = "test-util")]
mod test_util;
#[cfg(feature = "test-util")]
pub mod test_workload_api;
pub mod tls_serve;
pub mod upstream_tls;
mod workload_api;

pub use client_verifier::SpiffeClientVerifier;
pub use dev_ca::{DevCa, DevCaError, IssuedSvid, bundle_trust_domains, not_after};
pub use identity::{Identity, IdentityError};
pub use material::{TlsError, crypto_provider, install_default_crypto_provider};
pub use own_cert::{OwnCertError, OwnCertWarning, check_own_certificate};
pub use reload::Reload;
pub use server_tls::{ClientAuth, ClientTrust, ServerTls, ServerTlsSettings};
pub use sources::{BundleSource, SvidSource};
pub use spiffe_id::{Disallowed, SpiffeId, SpiffeIdError, TrustDomain};
pub use svid::{SvidError, SvidPolicy};
#[cfg(feature = "test-util")]
pub use test_util::BadSvid;
pub use tls_serve::{PeerCertificates, ServeLimits, serve, serve_tls};
pub use upstream_tls::{UpstreamTlsSettings, upstream_client_config};
pub use workload_api::{WorkloadApi, WorkloadApiError, WorkloadApiSettings};
