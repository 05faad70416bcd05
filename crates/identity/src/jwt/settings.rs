//! Settings of bearer-token validation: who issues tokens, for which resource, where their
//! keys come from and which algorithms are acceptable. Built by the CLI from config.
use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use url::Url;

/// Asymmetric JWS algorithms the validator can accept.
///
/// `none` and the HMAC family (`HS*`) are deliberately unrepresentable: a gateway that
/// verifies with a public key must never accept a token "signed" with that key as an
/// HMAC secret (T1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum SigningAlgorithm {
    RS256,
    RS384,
    RS512,
    PS256,
    PS384,
    PS512,
    ES256,
    ES384,
    EdDSA,
}

impl SigningAlgorithm {
    /// The default allowlist: RS256, ES256, EdDSA.
    pub const DEFAULT: [SigningAlgorithm; 3] = [
        SigningAlgorithm::RS256,
        SigningAlgorithm::ES256,
        SigningAlgorithm::EdDSA,
    ];

    /// Parses a JWS `alg` header value; `None` for anything not listed above.
    pub fn from_jws(alg: &str) -> Option<Self> {
        Some(match alg {
            "RS256" => Self::RS256,
            "RS384" => Self::RS384,
            "RS512" => Self::RS512,
            "PS256" => Self::PS256,
            "PS384" => Self::PS384,
            "PS512" => Self::PS512,
            "ES256" => Self::ES256,
            "ES384" => Self::ES384,
            "EdDSA" => Self::EdDSA,
            _ => return None,
        })
    }

    pub(crate) fn to_jsonwebtoken(self) -> jsonwebtoken::Algorithm {
        use jsonwebtoken::Algorithm as A;
        match self {
            Self::RS256 => A::RS256,
            Self::RS384 => A::RS384,
            Self::RS512 => A::RS512,
            Self::PS256 => A::PS256,
            Self::PS384 => A::PS384,
            Self::PS512 => A::PS512,
            Self::ES256 => A::ES256,
            Self::ES384 => A::ES384,
            Self::EdDSA => A::EdDSA,
        }
    }
}

/// Where the issuer's signing keys (a JWK Set) come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JwksSource {
    /// Fetched over HTTP(S) with no redirects, a timeout and a size cap. Plain `http` is
    /// accepted only for loopback hosts (local development and tests).
    Url {
        url: Url,
        timeout: Duration,
        max_bytes: usize,
    },
    /// Read from a local file (air-gapped deployments, pinned keys).
    File(PathBuf),
}

impl JwksSource {
    pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(5);
    pub const DEFAULT_MAX_BYTES: usize = 256 * 1024;

    /// A URL source with the default timeout (5 s) and size cap (256 KiB).
    pub fn url(url: Url) -> Self {
        Self::Url {
            url,
            timeout: Self::DEFAULT_TIMEOUT,
            max_bytes: Self::DEFAULT_MAX_BYTES,
        }
    }
}

/// When the cached key set is fetched again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct JwksRefresh {
    /// Minimum time between two fetches, whatever triggered them (an unknown `kid`, stale
    /// keys, a failed first fetch), so forged kids or an issuer outage cannot make the
    /// gateway hammer the issuer. Failed fetches count too.
    pub min_interval: Duration,
    /// Keys older than this are refetched before use (subject to `min_interval`), so
    /// removed keys stop working; if that refetch fails the cached keys stay in use and a
    /// warning is logged.
    pub max_age: Duration,
}

impl Default for JwksRefresh {
    fn default() -> Self {
        Self {
            min_interval: Duration::from_secs(30),
            max_age: Duration::from_secs(15 * 60),
        }
    }
}

/// Everything the validator needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JwtSettings {
    /// Exact `iss` value required.
    pub issuer: String,
    /// This gateway's resource URI. The `aud` claim must be exactly this string, or an
    /// array of exactly one element equal to it; anything else is rejected (T1).
    pub audience: String,
    pub jwks: JwksSource,
    pub refresh: JwksRefresh,
    /// Accepted `alg` values; the header's `alg` must be listed.
    pub algorithms: Vec<SigningAlgorithm>,
    /// Allowed clock skew for `exp` and `nbf`.
    pub leeway: Duration,
}

impl JwtSettings {
    pub const DEFAULT_LEEWAY: Duration = Duration::from_secs(60);

    /// Settings with the default algorithms, leeway and refresh policy.
    pub fn new(issuer: impl Into<String>, audience: impl Into<String>, jwks: JwksSource) -> Self {
        Self {
            issuer: issuer.into(),
            audience: audience.into(),
            jwks,
            refresh: JwksRefresh::default(),
            algorithms: SigningAlgorithm::DEFAULT.to_vec(),
            leeway: Self::DEFAULT_LEEWAY,
        }
    }
}
