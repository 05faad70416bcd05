//! Shared vocabulary of the gateway: the names every stage speaks.
//!
//! `core` does no I/O and knows nothing of tokio; it only defines validated
//! value types (server names, tiers, principals) and the redacting [`Secret`]
//! wrapper, so that stages can exchange facts without depending on each other.
#![forbid(unsafe_code)]

mod names;
mod principal;
mod secret;
mod tier;

pub use names::{NAMESPACE_SEPARATOR, NameError, ServerName, split_namespaced, split_namespaced_uri};
pub use principal::Principal;
pub use secret::Secret;
pub use tier::{Tier, TierError};
