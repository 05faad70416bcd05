//! `ConformanceClient`, the rmcp `ClientHandler` the conformance client runs with: it declares
//! sampling, elicitation and roots, and answers each deterministically. Elicitation answers
//! fill every field from the schema's `default` (SEP-1034), else a plain value by type.

#![expect(deprecated, reason = "sampling and roots are SEP-2577-deprecated but still graded")]

use rmcp::{
    ClientHandler, ErrorData as McpError, RoleClient,
    model::{
        ClientCapabilities, ClientConfig, CreateMessageRequestParams, CreateMessageResult, ElicitRequestParams,
        ElicitResult, ElicitationAction, Implementation, ListRootsResult, ProtocolVersion, SamplingMessage,
    },
    service::RequestContext,
};
use serde_json::{Map, Value, json};

#[derive(Clone)]
pub struct ConformanceClient {
    protocol_version: ProtocolVersion,
}

impl ConformanceClient {
    pub fn new(protocol_version: ProtocolVersion) -> Self {
        Self { protocol_version }
    }
}

impl ClientHandler for ConformanceClient {
    fn get_info(&self) -> ClientConfig {
        let capabilities = ClientCapabilities::builder()
            .enable_roots()
            .enable_sampling()
            .enable_elicitation()
            .build();
        let mut config = ClientConfig::new(
            capabilities,
            Implementation::new("portcullis-conformance-client", env!("CARGO_PKG_VERSION")),
        );
        config.protocol_version = self.protocol_version.clone();
        config
    }

    async fn create_message(
        &self,
        _params: CreateMessageRequestParams,
        _context: RequestContext<RoleClient>,
    ) -> Result<CreateMessageResult, McpError> {
        Ok(CreateMessageResult::new(
            SamplingMessage::assistant_text("conformance sample"),
            "portcullis-conformance-model".to_owned(),
        ))
    }

    async fn create_elicitation(
        &self,
        request: ElicitRequestParams,
        _context: RequestContext<RoleClient>,
    ) -> Result<ElicitResult, McpError> {
        let ElicitRequestParams::FormElicitationParams { requested_schema, .. } = request else {
            return Ok(ElicitResult::new(ElicitationAction::Decline));
        };
        let schema = serde_json::to_value(&requested_schema).unwrap_or_default();
        Ok(ElicitResult::new(ElicitationAction::Accept).with_content(answer(&schema)))
    }

    async fn list_roots(&self, _context: RequestContext<RoleClient>) -> Result<ListRootsResult, McpError> {
        Ok(ListRootsResult::new(Vec::new()))
    }
}

/// A form answer: each property's default, or a plain value of its type.
fn answer(schema: &Value) -> Value {
    let mut content = Map::new();
    if let Some(properties) = schema.get("properties").and_then(Value::as_object) {
        for (name, property) in properties {
            let value = match property.get("default") {
                Some(default) => default.clone(),
                None => plain_value(property),
            };
            content.insert(name.clone(), value);
        }
    }
    Value::Object(content)
}

fn plain_value(property: &Value) -> Value {
    let first_enum = property.get("enum").and_then(|e| e.get(0)).cloned();
    match property.get("type").and_then(Value::as_str) {
        _ if first_enum.is_some() => first_enum.unwrap_or_default(),
        Some("boolean") => json!(true),
        Some("integer") | Some("number") => json!(0),
        Some("array") => json!([]),
        _ => json!("conformance"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_use_defaults_then_types() {
        let schema = json!({ "type": "object", "properties": {
            "name": { "type": "string", "default": "John Doe" },
            "ok": { "type": "boolean" },
            "count": { "type": "integer" },
            "pick": { "type": "string", "enum": ["a", "b"] },
        }});
        let expected = json!({ "name": "John Doe", "ok": true, "count": 0, "pick": "a" });
        assert_eq!(answer(&schema), expected);
    }
}
