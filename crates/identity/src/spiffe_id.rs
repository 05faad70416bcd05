//! SPIFFE IDs and trust domains, parsed and validated per the SPIFFE ID specification.
//!
//! The identify stage turns the URI SAN of a client's X.509-SVID into a [`SpiffeId`];
//! everything downstream (policy, audit, session binding) sees only validated IDs.
use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

const SCHEME: &str = "spiffe://";
/// The SPIFFE ID spec caps a trust domain name at 255 bytes.
const MAX_TRUST_DOMAIN_LEN: usize = 255;
/// The SPIFFE ID spec caps a whole ID (as a URI) at 2048 bytes.
const MAX_ID_LEN: usize = 2048;

/// Why a string is not a valid SPIFFE ID or trust domain name.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SpiffeIdError {
    #[error("spiffe id is empty; expected `spiffe://<trust-domain>/<path>`")]
    Empty,
    #[error("`{0}` is not a spiffe id: it must start with `spiffe://` (lowercase)")]
    WrongScheme(String),
    #[error("`{0}` has no trust domain; expected `spiffe://<trust-domain>/<path>`")]
    MissingTrustDomain(String),
    #[error(
        "trust domain `{0}` contains a character other than lowercase letters, digits, `.`, `-` and `_` \
         (ports, user info and upper case are not allowed)"
    )]
    BadTrustDomainChar(String),
    #[error("`{0}` is too long: a trust domain may have at most 255 bytes and a spiffe id 2048")]
    TooLong(String),
    #[error("path of `{0}` has an empty segment or a trailing `/`; remove the extra `/`")]
    EmptySegment(String),
    #[error("path of `{0}` has a `.` or `..` segment; spiffe ids must be in normal form")]
    DotSegment(String),
    #[error(
        "path of `{0}` contains a character other than letters, digits, `.`, `-` and `_` \
         (queries, fragments and percent-encoding are not allowed)"
    )]
    BadPathChar(String),
}

/// A trust domain name such as `example.org`: the root of trust of a SPIFFE ID.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct TrustDomain(String);

impl TrustDomain {
    /// Validates a bare trust domain name (`example.org`, not `spiffe://example.org`).
    pub fn new(name: &str) -> Result<Self, SpiffeIdError> {
        if name.is_empty() {
            return Err(SpiffeIdError::MissingTrustDomain(name.to_string()));
        }
        if name.len() > MAX_TRUST_DOMAIN_LEN {
            return Err(SpiffeIdError::TooLong(name.to_string()));
        }
        let allowed = |c: char| c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '.' | '-' | '_');
        if !name.chars().all(allowed) {
            return Err(SpiffeIdError::BadTrustDomainChar(name.to_string()));
        }
        Ok(Self(name.to_string()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The ID of the trust domain itself, `spiffe://<name>` (used as the dev CA's URI SAN).
    pub fn id(&self) -> SpiffeId {
        SpiffeId {
            trust_domain: self.clone(),
            path: String::new(),
        }
    }
}

impl fmt::Display for TrustDomain {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl FromStr for TrustDomain {
    type Err = SpiffeIdError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::new(s)
    }
}

/// A validated SPIFFE ID: `spiffe://<trust-domain>[/<segment>...]`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct SpiffeId {
    trust_domain: TrustDomain,
    /// Empty, or `/seg(/seg)*`.
    path: String,
}

impl SpiffeId {
    /// Parses and validates a SPIFFE ID.
    pub fn parse(id: &str) -> Result<Self, SpiffeIdError> {
        if id.is_empty() {
            return Err(SpiffeIdError::Empty);
        }
        if id.len() > MAX_ID_LEN {
            return Err(SpiffeIdError::TooLong(id.to_string()));
        }
        let rest = id
            .strip_prefix(SCHEME)
            .ok_or_else(|| SpiffeIdError::WrongScheme(id.to_string()))?;
        let (domain, path) = match rest.find('/') {
            Some(slash) => rest.split_at(slash),
            None => (rest, ""),
        };
        if domain.is_empty() {
            return Err(SpiffeIdError::MissingTrustDomain(id.to_string()));
        }
        let trust_domain = TrustDomain::new(domain)?;
        validate_path(id, path)?;
        Ok(Self {
            trust_domain,
            path: path.to_string(),
        })
    }

    /// Builds `spiffe://<trust_domain><path>`; `path` must be empty or start with `/`.
    pub fn from_parts(trust_domain: &TrustDomain, path: &str) -> Result<Self, SpiffeIdError> {
        Self::parse(&format!("{SCHEME}{trust_domain}{path}"))
    }

    pub fn trust_domain(&self) -> &TrustDomain {
        &self.trust_domain
    }

    /// The path, empty or starting with `/`.
    pub fn path(&self) -> &str {
        &self.path
    }
}

fn validate_path(id: &str, path: &str) -> Result<(), SpiffeIdError> {
    if path.is_empty() {
        return Ok(());
    }
    // `path` starts with '/', so the first split element is empty and skipped.
    for segment in path.split('/').skip(1) {
        match segment {
            "" => return Err(SpiffeIdError::EmptySegment(id.to_string())),
            "." | ".." => return Err(SpiffeIdError::DotSegment(id.to_string())),
            _ => {}
        }
        let allowed = |c: char| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_');
        if !segment.chars().all(allowed) {
            return Err(SpiffeIdError::BadPathChar(id.to_string()));
        }
    }
    Ok(())
}

impl fmt::Display for SpiffeId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{SCHEME}{}{}", self.trust_domain, self.path)
    }
}

impl FromStr for SpiffeId {
    type Err = SpiffeIdError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

impl Serialize for SpiffeId {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for SpiffeId {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let s = String::deserialize(deserializer)?;
        Self::parse(&s).map_err(serde::de::Error::custom)
    }
}

impl Serialize for TrustDomain {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for TrustDomain {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let s = String::deserialize(deserializer)?;
        Self::new(&s).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_valid_ids() {
        for (input, domain, path) in [
            ("spiffe://example.org", "example.org", ""),
            ("spiffe://example.org/ns/prod/sa/web", "example.org", "/ns/prod/sa/web"),
            ("spiffe://a-b_c.d/X.y-Z_9", "a-b_c.d", "/X.y-Z_9"),
        ] {
            let id = SpiffeId::parse(input).unwrap_or_else(|e| panic!("{input}: {e}"));
            assert_eq!(id.trust_domain().as_str(), domain);
            assert_eq!(id.path(), path);
            assert_eq!(id.to_string(), input);
        }
    }

    #[test]
    fn rejects_invalid_ids() {
        type Check = fn(&SpiffeIdError) -> bool;
        let cases: &[(&str, Check)] = &[
            ("", |e| matches!(e, SpiffeIdError::Empty)),
            ("https://example.org/a", |e| matches!(e, SpiffeIdError::WrongScheme(_))),
            ("SPIFFE://example.org/a", |e| matches!(e, SpiffeIdError::WrongScheme(_))),
            ("spiffe:///a", |e| matches!(e, SpiffeIdError::MissingTrustDomain(_))),
            ("spiffe://Example.org/a", |e| {
                matches!(e, SpiffeIdError::BadTrustDomainChar(_))
            }),
            ("spiffe://example.org:8443/a", |e| {
                matches!(e, SpiffeIdError::BadTrustDomainChar(_))
            }),
            ("spiffe://user@example.org/a", |e| {
                matches!(e, SpiffeIdError::BadTrustDomainChar(_))
            }),
            ("spiffe://example.org/", |e| matches!(e, SpiffeIdError::EmptySegment(_))),
            ("spiffe://example.org//a", |e| {
                matches!(e, SpiffeIdError::EmptySegment(_))
            }),
            ("spiffe://example.org/a/../b", |e| {
                matches!(e, SpiffeIdError::DotSegment(_))
            }),
            ("spiffe://example.org/./b", |e| {
                matches!(e, SpiffeIdError::DotSegment(_))
            }),
            ("spiffe://example.org/a?b=c", |e| {
                matches!(e, SpiffeIdError::BadPathChar(_))
            }),
            ("spiffe://example.org/a#b", |e| {
                matches!(e, SpiffeIdError::BadPathChar(_))
            }),
            ("spiffe://example.org/a%20b", |e| {
                matches!(e, SpiffeIdError::BadPathChar(_))
            }),
        ];
        for (input, check) in cases {
            let err = SpiffeId::parse(input).expect_err(input);
            assert!(check(&err), "{input}: unexpected error {err:?}");
        }
        let long = format!("spiffe://{}", "a".repeat(256));
        assert!(matches!(SpiffeId::parse(&long), Err(SpiffeIdError::TooLong(_))));
    }

    #[test]
    fn serde_round_trip_validates() {
        let id: SpiffeId = serde_json::from_str("\"spiffe://example.org/web\"").unwrap();
        assert_eq!(serde_json::to_string(&id).unwrap(), "\"spiffe://example.org/web\"");
        assert!(serde_json::from_str::<SpiffeId>("\"spiffe://example.org/../x\"").is_err());
    }
}
