//! What a client told the gateway about itself, kept per session so the
//! gateway can introduce the client to each upstream in the upstream's own
//! protocol era (the heart of revision bridging).
use portcullis_mcp::{
    Era, Message, ProtocolVersion,
    revision::{META_CLIENT_CAPABILITIES, META_CLIENT_INFO, META_PROTOCOL_VERSION},
};
use serde_json::{Value, json};

/// The client's protocol revision, capabilities and identity.
#[derive(Debug, Clone)]
pub struct ClientHello {
    pub version: ProtocolVersion,
    pub capabilities: Value,
    pub client_info: Value,
    /// The client's own `initialize` params (legacy clients), forwarded as-is.
    pub initialize_params: Option<Value>,
}

impl ClientHello {
    /// From a legacy `initialize` request.
    pub fn from_initialize(msg: &Message) -> Self {
        let params = msg.params().cloned().map(Value::Object).unwrap_or_else(|| json!({}));
        let requested = params
            .get("protocolVersion")
            .and_then(Value::as_str)
            .unwrap_or_default();
        Self {
            version: ProtocolVersion::negotiate_legacy(requested),
            capabilities: params.get("capabilities").cloned().unwrap_or_else(|| json!({})),
            client_info: params.get("clientInfo").cloned().unwrap_or_else(default_client_info),
            initialize_params: Some(params),
        }
    }

    /// From the `_meta` of a modern (stateless) request.
    pub fn from_modern_request(msg: &Message) -> Self {
        let meta = msg.meta();
        let get = |k: &str| meta.and_then(|m| m.get(k)).cloned();
        Self {
            version: ProtocolVersion::V2026_07_28,
            capabilities: get(META_CLIENT_CAPABILITIES).unwrap_or_else(|| json!({})),
            client_info: get(META_CLIENT_INFO).unwrap_or_else(default_client_info),
            initialize_params: None,
        }
    }

    /// The gateway introducing itself, for shared children that serve everyone.
    pub fn gateway() -> Self {
        Self {
            version: ProtocolVersion::LATEST_LEGACY,
            capabilities: json!({}),
            client_info: default_client_info(),
            initialize_params: None,
        }
    }

    pub fn era(&self) -> Era {
        self.version.era()
    }

    /// `initialize` params for a legacy upstream: the client's own when it sent them.
    pub fn legacy_initialize_params(&self) -> Value {
        match &self.initialize_params {
            Some(p) => p.clone(),
            None => json!({
                "protocolVersion": ProtocolVersion::LATEST_LEGACY.as_str(),
                "capabilities": self.capabilities,
                "clientInfo": self.client_info,
            }),
        }
    }

    /// `_meta` entries a modern upstream needs on every request.
    pub fn modern_meta(&self) -> [(&'static str, Value); 3] {
        [
            (META_PROTOCOL_VERSION, json!(ProtocolVersion::V2026_07_28.as_str())),
            (META_CLIENT_CAPABILITIES, self.capabilities.clone()),
            (META_CLIENT_INFO, self.client_info.clone()),
        ]
    }

    /// [`ClientHello::modern_meta`] as a `_meta` object.
    pub fn modern_meta_object(&self) -> Value {
        Value::Object(self.modern_meta().into_iter().map(|(k, v)| (k.to_owned(), v)).collect())
    }
}

fn default_client_info() -> Value {
    json!({"name": "portcullis", "version": env!("CARGO_PKG_VERSION")})
}
