//! Who is calling: the workload (SPIFFE ID) and the user, as far as they are known.
use std::fmt;

use serde::{Deserialize, Serialize};

/// The identity a call is made under. Sessions are bound to it (T3).
///
/// Until the identity stage lands, the stdio front uses a configured principal
/// and the HTTP front a configurable anonymous one.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Principal {
    /// SPIFFE ID of the calling workload, or a configured name.
    pub workload: String,
    /// OAuth subject of the user, when a token was presented.
    pub user: Option<String>,
}

impl Principal {
    pub fn workload(workload: impl Into<String>) -> Self {
        Self {
            workload: workload.into(),
            user: None,
        }
    }
}

impl fmt::Display for Principal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.user {
            Some(user) => write!(f, "{} (user {user})", self.workload),
            None => f.write_str(&self.workload),
        }
    }
}
