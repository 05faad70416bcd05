//! Every way the broker can refuse: a configuration problem found at start, or a source
//! that cannot mint a call's credential (the call is then denied: fail closed). Each
//! message names the rule or source and says what to do; none quotes a secret, a
//! password, a token or an admin connection string.
use thiserror::Error;

/// A broker failure. `Config` is found by [`crate::Broker::new`]; the others by
/// [`crate::Broker::mint`], [`crate::Broker::sweep`] or [`crate::Lease::release`].
///
/// The source's name is in `source_name` (thiserror reserves a field called `source`
/// for the underlying error).
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum BrokerError {
    /// A `[[credentials]]` rule or a credential source is wrong. `subject` names it
    /// (``rule `sales-read` `` or ``source `db` ``), `key` the offending setting.
    #[error("credentials config: {subject}, `{key}`: {problem}")]
    Config {
        subject: String,
        key: &'static str,
        problem: String,
    },
    /// The source could not mint (PostgreSQL down, token endpoint 5xx or unreachable,
    /// secret file missing): the call is denied.
    #[error(
        "credential source `{source_name}` is unavailable: {reason}; the call is denied until it is back — \
         check the source and retry"
    )]
    Unavailable { source_name: String, reason: String },
    /// The source answered but refused (token endpoint 4xx): the call is denied.
    #[error(
        "credential source `{source_name}` refused the credential: {reason}; the call is denied — check the \
         caller's token and the source's client registration"
    )]
    Refused { source_name: String, reason: String },
    /// A token-exchange source needs the caller's bearer token and the call came without one.
    #[error(
        "credential source `{source_name}` exchanges the caller's bearer token and this call carries none; \
         authenticate with an OAuth bearer token to use this server"
    )]
    NoBearer { source_name: String },
    /// A plan names a rule this broker does not have, or was made for another server.
    #[error(
        "credential plan for rule `{rule}` does not fit this call ({problem}); plan the call again with this broker"
    )]
    PlanMismatch { rule: String, problem: String },
}

impl BrokerError {
    pub(crate) fn config(subject: impl Into<String>, key: &'static str, problem: impl Into<String>) -> Self {
        Self::Config {
            subject: subject.into(),
            key,
            problem: problem.into(),
        }
    }

    pub(crate) fn unavailable(source_name: &str, reason: impl Into<String>) -> Self {
        Self::Unavailable {
            source_name: source_name.to_owned(),
            reason: reason.into(),
        }
    }
}
