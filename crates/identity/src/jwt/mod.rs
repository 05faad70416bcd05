//! User identity: OAuth 2.1 bearer JWTs validated against the issuer's JWK Set, plus the
//! MCP authorization surface (challenges and Protected Resource Metadata).
//!
//! In the request flow this runs in *identify*, next to the SPIFFE check: the front takes
//! the `Authorization: Bearer` token, [`JwtValidator::validate`]s it, and answers a refusal
//! with [`JwtError::status`] and the [`BearerChallenge`] header. The token itself is never
//! forwarded upstream (T1).
mod challenge;
mod claims;
mod error;
mod jwks;
mod settings;
mod validator;

pub use challenge::{BearerChallenge, ProtectedResource, WELL_KNOWN_PRM};
pub use claims::UserIdentity;
pub use error::JwtError;
pub use settings::{JwksRefresh, JwksSource, JwtSettings, SigningAlgorithm};
pub use validator::JwtValidator;
