//! Why a policy set could not be loaded or reloaded.
//!
//! Load errors never reach a caller of the gateway: a set that fails to load is
//! refused and the one in force stays. Every message names the file (and the
//! policy, where there is one) and says what to do.
use std::path::PathBuf;

/// A policy set was refused.
#[derive(Debug, thiserror::Error)]
pub enum PolicyError {
    #[error("no policy files match `{pattern}`; check the path in the policy configuration")]
    NoFiles { pattern: String },

    #[error("policy file pattern `{pattern}` is not a valid glob: {message}")]
    BadPattern { pattern: String, message: String },

    #[error("cannot read policy file `{}`: {source}; check that it exists and is readable", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    #[error("policy file `{file}` does not parse: {message}; fix the syntax and reload")]
    Parse { file: String, message: String },

    #[error("policy `{policy}` in `{file}` is a template; write static policies (use context attributes for switches)")]
    Template { file: String, policy: String },

    #[error("policy id `{policy}` is used in both `{first}` and `{second}`; give each policy a unique `@id`")]
    DuplicateId {
        policy: String,
        first: String,
        second: String,
    },

    #[error(
        "policy `{policy}` in `{file}` does not fit the Portcullis schema: {message}{}; fix the policy and reload",
        more_note(*more)
    )]
    Invalid {
        file: String,
        policy: String,
        message: String,
        more: usize,
    },

    #[error("the built-in Cedar schema does not parse: {0}; this is a bug in portcullis-policy")]
    Schema(String),

    #[error(
        "rego policy `{file}` does not define `data.portcullis.allow`; declare `package portcullis` with an `allow` rule"
    )]
    NoAllowRule { file: String },
}

fn more_note(more: usize) -> String {
    match more {
        0 => String::new(),
        1 => " (and 1 more problem)".to_owned(),
        n => format!(" (and {n} more problems)"),
    }
}
