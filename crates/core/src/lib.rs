//! Shared vocabulary of the gateway: the names every stage speaks.
//!
//! `core` does no I/O and knows nothing of tokio; it only defines validated
//! value types (server names, tiers, principals, call ids, SHA-256 digests), the
//! redacting [`Secret`] wrapper, the [`Clock`] stages read the time from, and the
//! `_meta` keys of the gateway's namespace, so that stages can exchange facts
//! without depending on each other. It reads the system clock ([`SystemClock`]) and
//! OS randomness ([`CallId::random`]); neither is I/O in the invariant's sense.
#![forbid(unsafe_code)]

mod call_id;
mod clock;
mod hex;
pub mod merkle;
mod meta;
mod names;
mod principal;
mod secret;
mod sha256;
mod tier;

pub use call_id::CallId;
pub use clock::{Clock, ManualClock, SystemClock};
pub use hex::HexError;
pub use meta::REASON_META_KEY;
pub use names::{NAMESPACE_SEPARATOR, NameError, ServerName, split_namespaced, split_namespaced_uri};
pub use principal::Principal;
pub use secret::Secret;
pub use sha256::Sha256;
pub use tier::{Tier, TierError};
