//! The outcome of the identify stage: a core [`Principal`] for sessions, policy and audit,
//! with the verified workload ID and user claims kept beside it for policy.
use portcullis_core::Principal;

use crate::jwt::UserIdentity;
use crate::spiffe_id::SpiffeId;

/// Why no identity could be formed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IdentityError {
    #[error("the caller presented neither a client SVID nor a bearer token; authenticate with one of them")]
    Unauthenticated,
}

/// Who is calling, as verified by this stage.
#[derive(Debug, Clone, PartialEq)]
pub struct Identity {
    /// What sessions are bound to and what policy and audit see.
    pub principal: Principal,
    /// The workload's SPIFFE ID, when it presented an SVID.
    pub workload: Option<SpiffeId>,
    /// The user, when a bearer token was presented; scopes and claims for policy.
    pub user: Option<UserIdentity>,
}

impl Identity {
    /// Combines what was verified on this call. The principal's workload is the SPIFFE ID;
    /// with no SVID (token-only clients) it is `unattested_workload`, a name from config
    /// that policy can recognise. With neither an SVID nor a token the call is refused:
    /// the HTTP front never treats a caller as anonymous by default.
    pub fn new(
        workload: Option<SpiffeId>,
        user: Option<UserIdentity>,
        unattested_workload: &str,
    ) -> Result<Self, IdentityError> {
        if workload.is_none() && user.is_none() {
            return Err(IdentityError::Unauthenticated);
        }
        let principal = Principal {
            workload: workload
                .as_ref()
                .map_or_else(|| unattested_workload.to_string(), SpiffeId::to_string),
            user: user.as_ref().map(|u| u.subject.clone()),
        };
        Ok(Self {
            principal,
            workload,
            user,
        })
    }

    /// Scopes granted to the user (empty without a token).
    pub fn scopes(&self) -> &[String] {
        self.user.as_ref().map_or(&[], |u| u.scopes.as_slice())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn user() -> UserIdentity {
        UserIdentity {
            subject: "alice".into(),
            issuer: "https://auth.example.com".into(),
            scopes: vec!["tools:call".into()],
            claims: serde_json::Map::new(),
        }
    }

    #[test]
    fn combines_workload_and_user() {
        let id = SpiffeId::parse("spiffe://example.org/agent").unwrap();
        let both = Identity::new(Some(id.clone()), Some(user()), "unattested").unwrap();
        assert_eq!(both.principal.workload, "spiffe://example.org/agent");
        assert_eq!(both.principal.user.as_deref(), Some("alice"));
        assert_eq!(both.scopes(), ["tools:call"]);

        let workload_only = Identity::new(Some(id), None, "unattested").unwrap();
        assert_eq!(workload_only.principal.user, None);
        assert!(workload_only.scopes().is_empty());

        let user_only = Identity::new(None, Some(user()), "unattested").unwrap();
        assert_eq!(user_only.principal.workload, "unattested");

        assert_eq!(Identity::new(None, None, "x"), Err(IdentityError::Unauthenticated));
    }
}
