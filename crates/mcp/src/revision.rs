//! MCP protocol revisions the gateway speaks and the two eras they fall into.
//!
//! Legacy revisions (2025-03-26 … 2025-11-25) open a session with `initialize`;
//! the modern revision (2026-07-28) is stateless and carries the version and
//! client capabilities in every request's `_meta`.
use std::fmt;

/// `_meta` key carrying the protocol version of a modern request.
pub const META_PROTOCOL_VERSION: &str = "io.modelcontextprotocol/protocolVersion";
/// `_meta` key carrying the client capabilities of a modern request.
pub const META_CLIENT_CAPABILITIES: &str = "io.modelcontextprotocol/clientCapabilities";
/// `_meta` key carrying the client identity of a modern request.
pub const META_CLIENT_INFO: &str = "io.modelcontextprotocol/clientInfo";
/// `_meta` key carrying the server identity in a modern result.
pub const META_SERVER_INFO: &str = "io.modelcontextprotocol/serverInfo";

/// A protocol revision the gateway supports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ProtocolVersion {
    V2025_03_26,
    V2025_06_18,
    V2025_11_25,
    V2026_07_28,
}

/// Whether a revision uses the `initialize` handshake or per-request metadata.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Era {
    Legacy,
    Modern,
}

impl ProtocolVersion {
    /// Every supported revision, newest first.
    pub const ALL: [ProtocolVersion; 4] = [
        ProtocolVersion::V2026_07_28,
        ProtocolVersion::V2025_11_25,
        ProtocolVersion::V2025_06_18,
        ProtocolVersion::V2025_03_26,
    ];
    /// The newest legacy revision, used when bridging to legacy upstreams.
    pub const LATEST_LEGACY: ProtocolVersion = ProtocolVersion::V2025_11_25;

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|v| v.as_str() == s)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            ProtocolVersion::V2025_03_26 => "2025-03-26",
            ProtocolVersion::V2025_06_18 => "2025-06-18",
            ProtocolVersion::V2025_11_25 => "2025-11-25",
            ProtocolVersion::V2026_07_28 => "2026-07-28",
        }
    }

    pub fn era(self) -> Era {
        match self {
            ProtocolVersion::V2026_07_28 => Era::Modern,
            _ => Era::Legacy,
        }
    }

    /// The revision to answer a legacy `initialize` that asked for `requested`:
    /// the same one when supported and legacy, else the newest legacy one.
    pub fn negotiate_legacy(requested: &str) -> Self {
        match Self::parse(requested) {
            Some(v) if v.era() == Era::Legacy => v,
            _ => Self::LATEST_LEGACY,
        }
    }

    pub fn supported_strings() -> Vec<&'static str> {
        Self::ALL.iter().map(|v| v.as_str()).collect()
    }
}

impl fmt::Display for ProtocolVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_and_negotiate() {
        assert_eq!(ProtocolVersion::parse("2026-07-28").map(|v| v.era()), Some(Era::Modern));
        assert_eq!(ProtocolVersion::parse("2024-11-05"), None);
        let cases = [
            ("2025-06-18", ProtocolVersion::V2025_06_18),
            ("2025-03-26", ProtocolVersion::V2025_03_26),
            ("2026-07-28", ProtocolVersion::V2025_11_25),
            ("1999-01-01", ProtocolVersion::V2025_11_25),
        ];
        for (req, want) in cases {
            assert_eq!(ProtocolVersion::negotiate_legacy(req), want, "{req}");
        }
    }
}
