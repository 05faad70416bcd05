//! Who makes one call, as the identify stage established it: the principal that
//! sessions are bound to (T3), plus what policy may weigh on this call alone
//! (whether anyone vouches for the caller, the token's scopes and claims).
//!
//! The HTTP front builds a `Caller` afresh for every request (certificate expiry
//! and token validity are checked per call); the stdio front's comes from config.
use std::collections::BTreeMap;

use portcullis_core::Principal;
use portcullis_policy::PrincipalFacts;
use serde_json::Value;

/// The caller of one request.
#[derive(Debug, Clone, PartialEq)]
pub struct Caller {
    pub principal: Principal,
    /// No credential vouches for the principal (the HTTP front's anonymous caller).
    pub anonymous: bool,
    /// OAuth scopes granted by the presented token.
    pub scopes: Vec<String>,
    /// Validated token claims.
    pub claims: BTreeMap<String, Value>,
    /// The validated bearer token, kept only for a `token-exchange` credential's subject
    /// token (never logged: `Secret`).
    pub bearer: Option<portcullis_core::Secret<String>>,
}

impl Caller {
    /// A principal named by configuration (the stdio front) or verified by a credential.
    pub fn known(principal: Principal) -> Self {
        Self {
            principal,
            anonymous: false,
            scopes: Vec::new(),
            claims: BTreeMap::new(),
            bearer: None,
        }
    }

    /// The configured name for HTTP callers who presented nothing.
    pub fn anonymous(principal: Principal) -> Self {
        Self {
            anonymous: true,
            ..Self::known(principal)
        }
    }

    /// The caller as policy sees it.
    pub fn facts(&self) -> PrincipalFacts {
        PrincipalFacts {
            anonymous: self.anonymous,
            claims: self.claims.clone(),
            scopes: self.scopes.clone(),
            ..PrincipalFacts::from(&self.principal)
        }
    }
}
