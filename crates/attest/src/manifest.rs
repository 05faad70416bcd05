//! Signed server manifests: the pins the `classify` stage checks (docs/PRODUCT.md pillar 3; T8, T19).
//!
//! The operator describes each upstream server in a manifest and signs it. The gateway starts
//! only servers whose manifest verifies, refuses a stdio executable whose SHA-256 differs from
//! the pin (a swapped binary), connects to an HTTP server only at the pinned URL with the
//! pinned SPIFFE ID, and compares every tool the server lists against the pinned definition
//! hash: a changed, new or missing tool is [`Drift`], and a drifted tool is quarantined until
//! the operator re-approves (re-signs) it.
//!
//! # Format (JSON)
//!
//! JSON, not TOML, because the signed bytes are the RFC 8785 form of the `manifest` object and
//! a JSON file shows the operator exactly the structure that is signed. A signed manifest file:
//!
//! ```json
//! {
//!   "manifest": {
//!     "version": 1,
//!     "server": "files",
//!     "transport": {"type": "stdio", "argv": ["/usr/local/bin/mcp-files", "--root", "/srv"],
//!                   "executableSha256": "<64 hex>"},
//!     "tools": {"read_file": {"tier": "read", "definitionHash": "<64 hex>"}}
//!   },
//!   "signature": {"kid": "<key id>", "sig": "<base64url Ed25519, no padding>"}
//! }
//! ```
//!
//! An HTTP transport is `{"type": "http", "url": "https://…", "spiffeId": "spiffe://…"}`.
//! Unknown fields are refused everywhere. `argv[0]` must be an absolute path: it is the file
//! whose hash is pinned, so no `PATH` lookup may pick another one.
//!
//! The signature covers the RFC 8785 bytes of the `manifest` object ([`Manifest::body_bytes`]).
//! Its required fields (`version`, `server`, `transport`, `tools`) share no name with the
//! objects signed for calls and receipts, so one key may sign all three without confusion.
//!
//! A tool's definition hash is the lowercase hex SHA-256 of the RFC 8785 form of the object
//! made of the tool's `name`, `description` and `inputSchema` exactly as the server listed them
//! (a member the server omitted is omitted, not `null`); see [`tool_definition_hash`]. Other
//! members (`title`, `annotations`, `outputSchema`) are not pinned.
use std::collections::{BTreeMap, BTreeSet};
use std::io::Read;
use std::path::Path;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64URL;
use ed25519_dalek::{Signer, SigningKey};
use portcullis_core::{ServerName, Tier};
use portcullis_mcp::canonical::{canonical_bytes, canonical_sha256};
use portcullis_mcp::{Limits, parse_strict};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

use crate::ijson::{self, IJsonError};
use crate::keys::{self, KeyError, KeySet};
use crate::request;

/// The manifest format version this crate reads and writes.
pub const MANIFEST_VERSION: u32 = 1;

/// What the operator pins about one upstream server.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    pub version: u32,
    pub server: ServerName,
    pub transport: TransportPin,
    /// Pinned tools by name (the name on the upstream server, not namespaced).
    pub tools: BTreeMap<String, ToolPin>,
}

/// How the gateway reaches the server, pinned.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "lowercase", deny_unknown_fields)]
pub enum TransportPin {
    /// A child process: exact argv (no shell) and the SHA-256 of the `argv[0]` file.
    #[serde(rename_all = "camelCase")]
    Stdio {
        argv: Vec<String>,
        executable_sha256: String,
    },
    /// A Streamable HTTP server: exact URL and the SPIFFE ID its certificate must carry.
    #[serde(rename_all = "camelCase")]
    Http { url: String, spiffe_id: String },
}

/// One pinned tool: operator-assigned tier and the hash of its definition.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ToolPin {
    pub tier: Tier,
    pub definition_hash: String,
}

/// The detached signature of a manifest.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ManifestSignature {
    pub kid: String,
    pub sig: String,
}

/// A manifest with its signature, as stored in a manifest file. Not yet trusted:
/// call [`SignedManifest::verify`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SignedManifest {
    pub manifest: Manifest,
    pub signature: ManifestSignature,
}

/// A manifest whose signature verified against a trusted key. Only
/// [`SignedManifest::verify`] builds one, so holding one proves the check happened.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PinnedManifest {
    manifest: Manifest,
    kid: String,
}

impl PinnedManifest {
    pub fn manifest(&self) -> &Manifest {
        &self.manifest
    }

    /// The key that signed the manifest (for the audit record).
    pub fn kid(&self) -> &str {
        &self.kid
    }
}

/// Why a manifest, a pin or a tool definition was refused.
#[derive(Debug, thiserror::Error)]
pub enum ManifestError {
    #[error("the manifest file is not valid: {0}")]
    Parse(String),
    #[error("manifest version {0} is not supported; this gateway reads version {MANIFEST_VERSION}")]
    Version(u32),
    #[error("the manifest is invalid: {0}")]
    Invalid(String),
    #[error("the manifest was signed with key `{kid}`, which is not trusted; add the operator's public key")]
    UnknownKey { kid: String },
    #[error("the manifest signature is malformed: {problem}")]
    Malformed { problem: String },
    #[error("the manifest signature does not verify; the manifest was edited after signing, re-sign it")]
    BadSignature,
    #[error("the tool definition is invalid: {0}")]
    BadTool(String),
    #[error("the tool definition is not I-JSON: {0}")]
    NotIJson(#[from] IJsonError),
    #[error("cannot read `{path}` to hash it: {source}")]
    Io { path: String, source: std::io::Error },
    #[error(
        "the executable `{path}` has SHA-256 {actual}, not the pinned {pinned}; refusing to start a swapped binary"
    )]
    ExecutableMismatch {
        path: String,
        pinned: String,
        actual: String,
    },
    #[error("the server's transport is not stdio, so it has no executable to check")]
    NotStdio,
    #[error("cannot sign: {0}")]
    Key(#[from] KeyError),
}

impl Manifest {
    /// The RFC 8785 bytes the manifest signature covers.
    pub fn body_bytes(&self) -> Result<Vec<u8>, ManifestError> {
        let value = serde_json::to_value(self).map_err(|e| ManifestError::Invalid(e.to_string()))?;
        Ok(canonical_bytes(&value))
    }

    /// Checks what serde cannot: version, argv and URL shapes, hash formats.
    pub fn validate(&self) -> Result<(), ManifestError> {
        if self.version != MANIFEST_VERSION {
            return Err(ManifestError::Version(self.version));
        }
        let invalid = |m: String| Err(ManifestError::Invalid(m));
        match &self.transport {
            TransportPin::Stdio {
                argv,
                executable_sha256,
            } => {
                match argv.first() {
                    Some(exe) if exe.starts_with('/') => {}
                    _ => return invalid("stdio `argv` must start with an absolute executable path".into()),
                }
                if !is_sha256_hex(executable_sha256) {
                    return invalid("`executableSha256` must be 64 lowercase hex digits".into());
                }
            }
            TransportPin::Http { url, spiffe_id } => {
                if !url.starts_with("https://") {
                    return invalid(format!("http `url` `{url}` must start with `https://`"));
                }
                if !spiffe_id.starts_with("spiffe://") {
                    return invalid(format!("`spiffeId` `{spiffe_id}` must start with `spiffe://`"));
                }
            }
        }
        for (name, pin) in &self.tools {
            if name.is_empty() {
                return invalid("a tool name is empty".into());
            }
            if !is_sha256_hex(&pin.definition_hash) {
                return invalid(format!(
                    "tool `{name}`: `definitionHash` must be 64 lowercase hex digits"
                ));
            }
        }
        Ok(())
    }

    /// Signs the manifest with the operator key `key`, named `kid` (detached signature).
    pub fn sign(&self, key: &SigningKey, kid: &str) -> Result<SignedManifest, ManifestError> {
        keys::check_kid(kid)?;
        self.validate()?;
        let sig = key.sign(&self.body_bytes()?);
        Ok(SignedManifest {
            manifest: self.clone(),
            signature: ManifestSignature {
                kid: kid.to_owned(),
                sig: B64URL.encode(sig.to_bytes()),
            },
        })
    }

    /// The pin for an executable at `path`: checks it against the stdio pin.
    ///
    /// Hash-then-spawn leaves a window in which the file can be replaced; the transport should
    /// hash and execute the same open file (or a private copy).
    pub fn check_executable(&self, path: &Path) -> Result<(), ManifestError> {
        let TransportPin::Stdio { executable_sha256, .. } = &self.transport else {
            return Err(ManifestError::NotStdio);
        };
        let actual = file_sha256(path)?;
        if actual != *executable_sha256 {
            return Err(ManifestError::ExecutableMismatch {
                path: path.display().to_string(),
                pinned: executable_sha256.clone(),
                actual,
            });
        }
        Ok(())
    }
}

impl SignedManifest {
    /// Parses a manifest file strictly (duplicate keys, depth, size) with unknown fields refused.
    pub fn from_json(bytes: &[u8]) -> Result<Self, ManifestError> {
        let value = parse_strict(bytes, Limits::default()).map_err(|e| ManifestError::Parse(e.to_string()))?;
        serde_json::from_value(value).map_err(|e| ManifestError::Parse(e.to_string()))
    }

    /// The manifest file text (pretty JSON).
    pub fn to_json(&self) -> Result<String, ManifestError> {
        serde_json::to_string_pretty(self).map_err(|e| ManifestError::Invalid(e.to_string()))
    }

    /// Verifies the signature against the trusted operator keys and validates the manifest.
    pub fn verify(&self, trusted: &KeySet) -> Result<PinnedManifest, ManifestError> {
        let kid = &self.signature.kid;
        let key = trusted
            .get(kid)
            .ok_or_else(|| ManifestError::UnknownKey { kid: kid.clone() })?;
        let sig = request::decode_signature(&self.signature.sig)
            .map_err(|e| ManifestError::Malformed { problem: e.to_string() })?;
        key.verify_strict(&self.manifest.body_bytes()?, &sig)
            .map_err(|_| ManifestError::BadSignature)?;
        self.manifest.validate()?;
        Ok(PinnedManifest {
            manifest: self.manifest.clone(),
            kid: kid.clone(),
        })
    }
}

/// The definition hash of a tool as listed by a server (see the module docs).
pub fn tool_definition_hash(tool: &Value) -> Result<String, ManifestError> {
    let object = tool
        .as_object()
        .ok_or_else(|| ManifestError::BadTool("a listed tool is not a JSON object".into()))?;
    match object.get("name") {
        Some(Value::String(name)) if !name.is_empty() => {}
        _ => {
            return Err(ManifestError::BadTool(
                "a listed tool has no non-empty string `name`".into(),
            ));
        }
    }
    let mut pinned = Map::new();
    for member in ["name", "description", "inputSchema"] {
        if let Some(v) = object.get(member) {
            pinned.insert(member.to_owned(), v.clone());
        }
    }
    let pinned = Value::Object(pinned);
    ijson::check(&pinned)?;
    Ok(hex::encode(canonical_sha256(&pinned)))
}

/// Lowercase hex SHA-256 of the file at `path`, read in chunks.
pub fn file_sha256(path: &Path) -> Result<String, ManifestError> {
    let io = |source| ManifestError::Io {
        path: path.display().to_string(),
        source,
    };
    let mut file = std::fs::File::open(path).map_err(io)?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = file.read(&mut buf).map_err(io)?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
    }
    Ok(hex::encode(hasher.finalize()))
}

/// A difference between the manifest and what the server lists (T8).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Drift {
    /// A pinned tool's definition changed (rug pull): quarantine it until re-approved.
    Changed {
        tool: String,
        pinned: String,
        listed: String,
    },
    /// A listed tool the manifest does not pin: deny it until the operator pins it.
    New { tool: String, listed: String },
    /// A pinned tool the server no longer lists.
    Missing { tool: String },
    /// The server listed one name twice (the definitions cannot both be the pinned one).
    Duplicate { tool: String },
    /// A listed entry that is not a valid tool definition (position in the list).
    Invalid { index: usize, problem: String },
}

/// Compares the tools a server listed with the manifest. An empty result means every listed
/// tool is pinned with an identical definition and every pinned tool is listed.
/// Order: findings in listing order, then missing tools by name.
pub fn drift(manifest: &Manifest, listed_tools: &[Value]) -> Vec<Drift> {
    let mut out = Vec::new();
    let mut seen = BTreeSet::new();
    for (index, tool) in listed_tools.iter().enumerate() {
        let hash = match tool_definition_hash(tool) {
            Ok(hash) => hash,
            Err(e) => {
                out.push(Drift::Invalid {
                    index,
                    problem: e.to_string(),
                });
                continue;
            }
        };
        let name = tool.get("name").and_then(Value::as_str).unwrap_or_default().to_owned();
        if !seen.insert(name.clone()) {
            out.push(Drift::Duplicate { tool: name });
            continue;
        }
        match manifest.tools.get(&name) {
            Some(pin) if pin.definition_hash == hash => {}
            Some(pin) => out.push(Drift::Changed {
                tool: name,
                pinned: pin.definition_hash.clone(),
                listed: hash,
            }),
            None => out.push(Drift::New {
                tool: name,
                listed: hash,
            }),
        }
    }
    for name in manifest.tools.keys() {
        if !seen.contains(name) {
            out.push(Drift::Missing { tool: name.clone() });
        }
    }
    out
}

fn is_sha256_hex(s: &str) -> bool {
    s.len() == 64 && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

#[cfg(test)]
#[path = "manifest_tests.rs"]
mod tests;
