//! Risk tiers: an operator-assigned property of every tool (never the server's own claim).
use std::{fmt, str::FromStr};

use serde::{Deserialize, Serialize};

/// How much a call can do, and so what it must show before it is let through.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Tier {
    /// File reads, search, metrics lookups: identity + reason.
    Read,
    /// Database queries, regulated reads: + scope check + PII filter.
    ReadSensitive,
    /// Writes, messages, merges: + human approval or signed approval.
    Write,
}

/// A tier name that is not one of `read`, `read-sensitive`, `write`.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("unknown tier `{0}`; use one of `read`, `read-sensitive`, `write`")]
pub struct TierError(pub String);

impl Tier {
    pub fn as_str(self) -> &'static str {
        match self {
            Tier::Read => "read",
            Tier::ReadSensitive => "read-sensitive",
            Tier::Write => "write",
        }
    }
}

impl FromStr for Tier {
    type Err = TierError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "read" => Ok(Tier::Read),
            "read-sensitive" => Ok(Tier::ReadSensitive),
            "write" => Ok(Tier::Write),
            other => Err(TierError(other.to_owned())),
        }
    }
}

impl fmt::Display for Tier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_every_tier_and_rejects_others() {
        for t in [Tier::Read, Tier::ReadSensitive, Tier::Write] {
            assert_eq!(t.as_str().parse::<Tier>(), Ok(t));
        }
        assert_eq!("admin".parse::<Tier>(), Err(TierError("admin".into())));
    }
}
