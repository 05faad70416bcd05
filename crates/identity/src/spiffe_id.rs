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

/// Why a string is not a valid SPIFFE ID or trust domain name (the SPIFFE-ID standard §2), or not a
/// workload's ID (the X509-SVID standard §3.1).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SpiffeIdError {
    #[error("spiffe id is empty; expected `spiffe://<trust-domain>/<path>`")]
    Empty,
    #[error("`{0}` is not a spiffe id: it must start with `spiffe://` (lowercase)")]
    WrongScheme(String),
    #[error("`{0}` has no trust domain; expected `spiffe://<trust-domain>/<path>`")]
    MissingTrustDomain(String),
    #[error("trust domain `{domain}` has {found}; a trust domain is lowercase letters, digits, `.`, `-` and `_` only")]
    BadTrustDomainChar { domain: String, found: Disallowed },
    #[error("`{0}` is too long: a trust domain may have at most 255 bytes and a spiffe id 2048")]
    TooLong(String),
    #[error("path of `{0}` has an empty segment (`//`); remove the extra `/`")]
    EmptySegment(String),
    #[error("`{0}` ends with `/`; a spiffe id has no trailing slash, remove it")]
    TrailingSlash(String),
    #[error("path of `{0}` has a `.` or `..` segment; spiffe ids must be in normal form")]
    DotSegment(String),
    #[error("path of `{id}` has {found}; a path segment is letters, digits, `.`, `-` and `_` only")]
    BadPathChar { id: String, found: Disallowed },
    #[error(
        "`{0}` is the id of the trust domain itself, not of a workload; a workload's spiffe id has a path, \
         e.g. `{0}/agent`"
    )]
    NoPath(String),
}

/// What a refused SPIFFE ID holds that it may not, for the error message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Disallowed {
    Port,
    UserInfo,
    Query,
    Fragment,
    PercentEncoding,
    UpperCase,
    Other(char),
}

impl Disallowed {
    fn of(c: char) -> Self {
        match c {
            ':' => Self::Port,
            '@' => Self::UserInfo,
            '?' => Self::Query,
            '#' => Self::Fragment,
            '%' => Self::PercentEncoding,
            c if c.is_ascii_uppercase() => Self::UpperCase,
            c => Self::Other(c),
        }
    }
}

impl fmt::Display for Disallowed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Port => f.write_str("a port (`:`)"),
            Self::UserInfo => f.write_str("user info (`@`)"),
            Self::Query => f.write_str("a query (`?`)"),
            Self::Fragment => f.write_str("a fragment (`#`)"),
            Self::PercentEncoding => f.write_str("percent-encoding (`%`)"),
            Self::UpperCase => f.write_str("upper case letters"),
            Self::Other(c) => write!(f, "the character {c:?}"),
        }
    }
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
        if let Some(bad) = name.chars().find(|&c| !allowed(c)) {
            return Err(SpiffeIdError::BadTrustDomainChar {
                domain: name.to_string(),
                found: Disallowed::of(bad),
            });
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
        // The authority ends at the first `/`, `?` or `#` (RFC 3986 §3.2); a query or
        // fragment right after it is refused as such, not as a bad trust domain.
        let (domain, path) = match rest.find(['/', '?', '#']) {
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

    /// Parses a workload's SPIFFE ID: a valid ID with a path. `spiffe://<trust-domain>`
    /// alone names the trust domain (its signing authority), never a workload (X509-SVID §3.1).
    pub fn parse_workload(id: &str) -> Result<Self, SpiffeIdError> {
        let parsed = Self::parse(id)?;
        if parsed.is_trust_domain_id() {
            return Err(SpiffeIdError::NoPath(id.to_string()));
        }
        Ok(parsed)
    }

    /// Whether this is `spiffe://<trust-domain>` with no path: the trust domain's own ID.
    pub fn is_trust_domain_id(&self) -> bool {
        self.path.is_empty()
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
    // `path` is empty or starts with `/`, `?` or `#` (where the authority ended).
    let Some(path) = path.strip_prefix('/') else {
        return match path.chars().next() {
            None => Ok(()),
            Some(c) => Err(SpiffeIdError::BadPathChar {
                id: id.to_string(),
                found: Disallowed::of(c),
            }),
        };
    };
    if path.is_empty() || path.ends_with('/') {
        return Err(SpiffeIdError::TrailingSlash(id.to_string()));
    }
    for segment in path.split('/') {
        match segment {
            "" => return Err(SpiffeIdError::EmptySegment(id.to_string())),
            "." | ".." => return Err(SpiffeIdError::DotSegment(id.to_string())),
            _ => {}
        }
        let allowed = |c: char| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_');
        if let Some(bad) = segment.chars().find(|&c| !allowed(c)) {
            return Err(SpiffeIdError::BadPathChar {
                id: id.to_string(),
                found: Disallowed::of(bad),
            });
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
            ("spiffe://10.0.0.1/a", "10.0.0.1", "/a"),
            ("spiffe://example.org/..a/a..", "example.org", "/..a/a.."),
        ] {
            let id = SpiffeId::parse(input).unwrap_or_else(|e| panic!("{input}: {e}"));
            assert_eq!(id.trust_domain().as_str(), domain);
            assert_eq!(id.path(), path);
            assert_eq!(id.to_string(), input);
        }
    }

    /// Every rule of the SPIFFE-ID standard §2 (and the X509-SVID standard §3.1 for workloads): the input, the
    /// error, and a phrase the message must contain so the operator knows what to fix.
    #[test]
    fn t16_each_spiffe_id_rule_is_refused_with_a_clear_message() {
        use Disallowed::*;
        let bad_td = |domain: &str, found| SpiffeIdError::BadTrustDomainChar {
            domain: domain.into(),
            found,
        };
        let bad_path = |id: &str, found| SpiffeIdError::BadPathChar { id: id.into(), found };
        let s = |id: &str| id.to_string();
        let cases: Vec<(&str, SpiffeIdError, &str)> = vec![
            ("", SpiffeIdError::Empty, "is empty"),
            (
                "https://example.org/a",
                SpiffeIdError::WrongScheme(s("https://example.org/a")),
                "must start with `spiffe://`",
            ),
            (
                "SPIFFE://example.org/a",
                SpiffeIdError::WrongScheme(s("SPIFFE://example.org/a")),
                "(lowercase)",
            ),
            (
                "spiffe:/example.org/a",
                SpiffeIdError::WrongScheme(s("spiffe:/example.org/a")),
                "must start with",
            ),
            (
                "spiffe:///a",
                SpiffeIdError::MissingTrustDomain(s("spiffe:///a")),
                "has no trust domain",
            ),
            (
                "spiffe://",
                SpiffeIdError::MissingTrustDomain(s("spiffe://")),
                "has no trust domain",
            ),
            ("spiffe://Example.org/a", bad_td("Example.org", UpperCase), "upper case"),
            (
                "spiffe://example.org:8443/a",
                bad_td("example.org:8443", Port),
                "a port",
            ),
            ("spiffe://example.org:/a", bad_td("example.org:", Port), "a port"),
            (
                "spiffe://user@example.org/a",
                bad_td("user@example.org", UserInfo),
                "user info",
            ),
            (
                "spiffe://exa%6Dple.org/a",
                bad_td("exa%6Dple.org", PercentEncoding),
                "percent-encoding",
            ),
            ("spiffe://[::1]/a", bad_td("[::1]", Other('[')), "the character '['"),
            ("spiffe://exämple.org/a", bad_td("exämple.org", Other('ä')), "'ä'"),
            (
                "spiffe://example.org/",
                SpiffeIdError::TrailingSlash(s("spiffe://example.org/")),
                "trailing slash",
            ),
            (
                "spiffe://example.org/a/",
                SpiffeIdError::TrailingSlash(s("spiffe://example.org/a/")),
                "trailing slash",
            ),
            (
                "spiffe://example.org//a",
                SpiffeIdError::EmptySegment(s("spiffe://example.org//a")),
                "empty segment",
            ),
            (
                "spiffe://example.org/a//b",
                SpiffeIdError::EmptySegment(s("spiffe://example.org/a//b")),
                "empty segment",
            ),
            (
                "spiffe://example.org/a/../b",
                SpiffeIdError::DotSegment(s("spiffe://example.org/a/../b")),
                "`..`",
            ),
            (
                "spiffe://example.org/./b",
                SpiffeIdError::DotSegment(s("spiffe://example.org/./b")),
                "`.`",
            ),
            (
                "spiffe://example.org/a/..",
                SpiffeIdError::DotSegment(s("spiffe://example.org/a/..")),
                "normal form",
            ),
            (
                "spiffe://example.org/a?b=c",
                bad_path("spiffe://example.org/a?b=c", Query),
                "a query",
            ),
            (
                "spiffe://example.org?b=c",
                bad_path("spiffe://example.org?b=c", Query),
                "a query",
            ),
            (
                "spiffe://example.org/a#b",
                bad_path("spiffe://example.org/a#b", Fragment),
                "a fragment",
            ),
            (
                "spiffe://example.org#b",
                bad_path("spiffe://example.org#b", Fragment),
                "a fragment",
            ),
            (
                "spiffe://example.org/a%20b",
                bad_path("spiffe://example.org/a%20b", PercentEncoding),
                "percent-encoding",
            ),
            (
                "spiffe://example.org/a b",
                bad_path("spiffe://example.org/a b", Other(' ')),
                "' '",
            ),
            (
                "spiffe://example.org/a:b",
                bad_path("spiffe://example.org/a:b", Port),
                "`:`",
            ),
            (
                "spiffe://example.org/caf\u{e9}",
                bad_path("spiffe://example.org/caf\u{e9}", Other('\u{e9}')),
                "character",
            ),
        ];
        for (input, want, phrase) in cases {
            let err = SpiffeId::parse(input).expect_err(input);
            assert_eq!(err, want, "{input}");
            let message = err.to_string();
            assert!(message.contains(phrase), "{input}: `{message}` lacks `{phrase}`");
        }
        let long_domain = format!("spiffe://{}", "a".repeat(256));
        assert!(matches!(SpiffeId::parse(&long_domain), Err(SpiffeIdError::TooLong(_))));
        let long_id = format!("spiffe://example.org/{}", "a".repeat(2048));
        assert!(matches!(SpiffeId::parse(&long_id), Err(SpiffeIdError::TooLong(_))));
    }

    #[test]
    fn t16_a_trust_domain_id_is_not_a_workload_id() {
        let domain = SpiffeId::parse("spiffe://example.org").unwrap();
        assert!(domain.is_trust_domain_id());
        let err = SpiffeId::parse_workload("spiffe://example.org").unwrap_err();
        assert_eq!(err, SpiffeIdError::NoPath("spiffe://example.org".into()));
        assert!(err.to_string().contains("the trust domain itself"), "{err}");
        assert!(err.to_string().contains("spiffe://example.org/agent"), "{err}");
        let workload = SpiffeId::parse_workload("spiffe://example.org/agent").unwrap();
        assert!(!workload.is_trust_domain_id());
        // A bad ID is reported as such, not as a missing path.
        assert!(matches!(
            SpiffeId::parse_workload("spiffe://example.org/"),
            Err(SpiffeIdError::TrailingSlash(_))
        ));
    }

    #[test]
    fn serde_round_trip_validates() {
        let id: SpiffeId = serde_json::from_str("\"spiffe://example.org/web\"").unwrap();
        assert_eq!(serde_json::to_string(&id).unwrap(), "\"spiffe://example.org/web\"");
        assert!(serde_json::from_str::<SpiffeId>("\"spiffe://example.org/../x\"").is_err());
    }
}
