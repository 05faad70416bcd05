//! The MCP authorization surface of the HTTP front: `WWW-Authenticate` challenges for 401
//! and 403 answers, and the OAuth Protected Resource Metadata document (RFC 9728) that
//! tells clients which authorization server issues tokens for this gateway.
use serde_json::{Value, json};
use url::Url;

/// The well-known path segment of RFC 9728 §3.
pub const WELL_KNOWN_PRM: &str = "/.well-known/oauth-protected-resource";

/// What the front tells a client it must do next.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BearerChallenge {
    /// No token was presented: 401 with only `resource_metadata`.
    MissingToken,
    /// A token was presented and refused: 401 with `error="invalid_token"`.
    InvalidToken { description: String },
    /// The token is valid but lacks scopes the call needs: 403 with
    /// `error="insufficient_scope"` and the scopes to request.
    InsufficientScope { scopes: Vec<String> },
}

impl BearerChallenge {
    pub fn status(&self) -> u16 {
        match self {
            Self::MissingToken | Self::InvalidToken { .. } => 401,
            Self::InsufficientScope { .. } => 403,
        }
    }

    /// The `WWW-Authenticate` header value, pointing at the metadata document.
    pub fn header_value(&self, resource_metadata: &Url) -> String {
        let mut value = format!("Bearer resource_metadata={}", quoted(resource_metadata.as_str()));
        match self {
            Self::MissingToken => {}
            Self::InvalidToken { description } => {
                value.push_str(", error=\"invalid_token\", error_description=");
                value.push_str(&quoted(description));
            }
            Self::InsufficientScope { scopes } => {
                value.push_str(", error=\"insufficient_scope\", scope=");
                value.push_str(&quoted(&scopes.join(" ")));
            }
        }
        value
    }
}

/// An RFC 7230 quoted-string; control characters are dropped so a header cannot be split.
fn quoted(raw: &str) -> String {
    let mut out = String::with_capacity(raw.len() + 2);
    out.push('"');
    for c in raw.chars().filter(|c| !c.is_control()) {
        if matches!(c, '"' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('"');
    out
}

/// This gateway as an OAuth protected resource.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProtectedResource {
    /// The resource URI (also the required token audience).
    pub resource: Url,
    /// Issuer URLs of the authorization servers clients should use.
    pub authorization_servers: Vec<Url>,
    pub scopes_supported: Vec<String>,
}

impl ProtectedResource {
    /// The metadata document served at [`Self::metadata_path`].
    pub fn metadata_document(&self) -> Value {
        json!({
            "resource": self.resource.as_str(),
            "authorization_servers": self.authorization_servers.iter().map(Url::as_str).collect::<Vec<_>>(),
            "scopes_supported": self.scopes_supported,
            "bearer_methods_supported": ["header"],
        })
    }

    /// Path of the metadata document per RFC 9728 §3.1: the well-known segment inserted
    /// before the resource's path (`https://gw/mcp` gives
    /// `/.well-known/oauth-protected-resource/mcp`; a bare host gives the plain path).
    pub fn metadata_path(&self) -> String {
        match self.resource.path() {
            "" | "/" => WELL_KNOWN_PRM.to_string(),
            path => format!("{WELL_KNOWN_PRM}{path}"),
        }
    }

    /// Absolute URL of the metadata document, for `resource_metadata` in challenges.
    pub fn metadata_url(&self) -> Url {
        let mut url = self.resource.clone();
        url.set_path(&self.metadata_path());
        url.set_query(None);
        url.set_fragment(None);
        url
    }

    pub fn challenge_header(&self, challenge: &BearerChallenge) -> String {
        challenge.header_value(&self.metadata_url())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn resource(uri: &str) -> ProtectedResource {
        ProtectedResource {
            resource: Url::parse(uri).unwrap(),
            authorization_servers: vec![Url::parse("https://auth.example.com").unwrap()],
            scopes_supported: vec!["tools:read".into(), "tools:call".into()],
        }
    }

    #[test]
    fn challenges_follow_the_mcp_authorization_spec() {
        let prm = resource("https://gw.example.com/mcp");
        let url = "https://gw.example.com/.well-known/oauth-protected-resource/mcp";
        assert_eq!(prm.metadata_url().as_str(), url);
        let cases = [
            (
                BearerChallenge::MissingToken,
                401,
                format!("Bearer resource_metadata=\"{url}\""),
            ),
            (
                BearerChallenge::InvalidToken {
                    description: "token \"expired\"\r\nX: y".into(),
                },
                401,
                format!(
                    "Bearer resource_metadata=\"{url}\", error=\"invalid_token\", \
                     error_description=\"token \\\"expired\\\"X: y\""
                ),
            ),
            (
                BearerChallenge::InsufficientScope {
                    scopes: vec!["tools:call".into(), "admin".into()],
                },
                403,
                format!("Bearer resource_metadata=\"{url}\", error=\"insufficient_scope\", scope=\"tools:call admin\""),
            ),
        ];
        for (challenge, status, header) in cases {
            assert_eq!(challenge.status(), status);
            assert_eq!(prm.challenge_header(&challenge), header);
        }
    }

    #[test]
    fn metadata_document_is_rfc9728() {
        let prm = resource("https://gw.example.com/");
        assert_eq!(prm.metadata_path(), "/.well-known/oauth-protected-resource");
        assert_eq!(
            prm.metadata_document(),
            json!({
                "resource": "https://gw.example.com/",
                "authorization_servers": ["https://auth.example.com/"],
                "scopes_supported": ["tools:read", "tools:call"],
                "bearer_methods_supported": ["header"],
            })
        );
    }
}
