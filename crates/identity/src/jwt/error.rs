//! Why a bearer token was refused, and how each refusal maps onto the MCP authorization
//! behaviour (401 + `WWW-Authenticate`, or 503 when the gateway itself cannot check).
use super::challenge::BearerChallenge;

/// Why a bearer token was not accepted. Messages never include the token itself.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum JwtError {
    #[error("bearer token is malformed ({reason}); send a compact JWS")]
    Malformed { reason: &'static str },
    #[error("bearer token is unsigned (`alg: none`); tokens must be signed by the issuer")]
    AlgNone,
    #[error("bearer token algorithm `{alg}` is not allowed; use one of the configured algorithms")]
    DisallowedAlgorithm { alg: String },
    #[error("bearer token header carries `{name}`; key references in the token are never trusted")]
    ForbiddenHeader { name: &'static str },
    #[error("bearer token header has `crit` extensions, which this gateway does not support")]
    CriticalHeader,
    #[error("bearer token has no `kid` header; the issuer must name its signing key")]
    MissingKid,
    #[error("no key `{kid}` in the issuer's key set; the token was signed by an unknown key")]
    UnknownKid { kid: String },
    #[error("key `{kid}` cannot verify `{alg}` tokens; the token's algorithm does not match its key")]
    KeyAlgorithmMismatch { kid: String, alg: String },
    #[error("bearer token signature is invalid")]
    BadSignature,
    #[error("bearer token issuer does not match the configured issuer")]
    WrongIssuer,
    #[error("bearer token has no `aud` claim; request a token for this gateway's resource URI")]
    MissingAudience,
    #[error("bearer token audience is not exactly this gateway's resource URI; request a token for it")]
    WrongAudience,
    #[error("bearer token has no numeric `exp` claim")]
    MissingExpiry,
    #[error("bearer token expired; obtain a new one")]
    Expired,
    #[error("bearer token is not valid yet (`nbf` in the future); check clocks")]
    NotYetValid,
    #[error("bearer token claim `{claim}` is missing or has the wrong type")]
    BadClaim { claim: &'static str },
    #[error("cannot obtain the issuer's keys: {reason}")]
    JwksUnavailable { reason: String },
    #[error("invalid bearer token settings: {reason}")]
    InvalidSettings { reason: String },
}

impl JwtError {
    /// HTTP status for this refusal: 503 when the gateway could not check the token
    /// (keys unavailable, misconfiguration), 401 when the token itself is bad.
    pub fn status(&self) -> u16 {
        match self {
            Self::JwksUnavailable { .. } | Self::InvalidSettings { .. } => 503,
            _ => 401,
        }
    }

    /// The `WWW-Authenticate` challenge for a 401. Descriptions are fixed strings, so
    /// nothing from the token is reflected back to the client.
    pub fn challenge(&self) -> BearerChallenge {
        let description = match self {
            Self::Expired => "token expired",
            Self::NotYetValid => "token not yet valid",
            Self::MissingAudience | Self::WrongAudience => "token audience is not this resource",
            Self::WrongIssuer => "token issuer is not trusted",
            Self::JwksUnavailable { .. } | Self::InvalidSettings { .. } => "token could not be verified",
            _ => "token is invalid",
        };
        BearerChallenge::InvalidToken {
            description: description.to_string(),
        }
    }
}
