//! The fixture's tool catalogue: the names, descriptions and input schemas the conformance
//! scenarios look up, in the order of the suite's reference server. Tools that only make
//! sense on the stateless 2026-07-28 revision (MRTR, capability checks) are listed only to
//! requests on that revision. Behaviour lives in `calls.rs` and `mrtr.rs`.

use std::sync::Arc;

use rmcp::model::{JsonObject, Tool};
use serde_json::{Value, json};

use crate::media;

/// Which requests see a tool in `tools/list`.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Listed {
    Always,
    StatelessOnly,
}

struct Spec {
    name: &'static str,
    description: &'static str,
    listed: Listed,
    schema: fn() -> Value,
}

fn no_args() -> Value {
    json!({ "type": "object", "properties": {} })
}

fn prompt_arg() -> Value {
    string_arg("prompt", "The prompt to send to the LLM")
}

fn message_arg() -> Value {
    string_arg("message", "The message to show the user")
}

fn string_arg(name: &str, description: &str) -> Value {
    json!({
        "type": "object",
        "properties": { name: { "type": "string", "description": description } },
        "required": [name],
    })
}

/// SEP-2243: a parameter the client must mirror into an `Mcp-Param-Region` header.
fn header_arg() -> Value {
    json!({
        "type": "object",
        "properties": {
            "region": { "type": "string", "x-mcp-header": "Region", "description": "Any region name" }
        },
    })
}

const fn spec(name: &'static str, description: &'static str, schema: fn() -> Value) -> Spec {
    Spec {
        name,
        description,
        listed: Listed::Always,
        schema,
    }
}

const fn stateless(name: &'static str, description: &'static str) -> Spec {
    Spec {
        name,
        description,
        listed: Listed::StatelessOnly,
        schema: no_args,
    }
}

const SPECS: &[Spec] = &[
    spec("test_simple_text", "Tests simple text content response", no_args),
    spec("test_image_content", "Tests image content response", no_args),
    spec("test_audio_content", "Tests audio content response", no_args),
    spec(
        "test_embedded_resource",
        "Tests embedded resource content response",
        no_args,
    ),
    spec(
        "test_multiple_content_types",
        "Tests response with multiple content types (text, image, resource)",
        no_args,
    ),
    spec(
        "test_tool_with_logging",
        "Tests tool that emits log messages during execution",
        no_args,
    ),
    spec(
        "test_tool_with_progress",
        "Tests tool that reports progress notifications",
        no_args,
    ),
    spec("test_error_handling", "Tests error response handling", no_args),
    spec(
        "test_reconnection",
        "Tests SSE stream disconnection and client reconnection (SEP-1699)",
        no_args,
    ),
    spec(
        "test_sampling",
        "Tests server-initiated sampling (LLM completion request)",
        prompt_arg,
    ),
    spec(
        "test_elicitation",
        "Tests server-initiated elicitation (user input request)",
        message_arg,
    ),
    spec(
        "test_elicitation_sep1034_defaults",
        "Tests elicitation with default values per SEP-1034",
        no_args,
    ),
    spec(
        "test_elicitation_sep1330_enums",
        "Tests elicitation with enum schema improvements per SEP-1330",
        no_args,
    ),
    spec(
        "json_schema_2020_12_tool",
        "Tool with JSON Schema 2020-12 features for conformance testing (SEP-1613)",
        media::json_schema_2020_12,
    ),
    stateless("test_missing_capability", "Test tool requiring sampling"),
    stateless(
        "test_input_required_result_elicitation",
        "MRTR: returns InputRequiredResult with elicitation request",
    ),
    stateless(
        "test_input_required_result_sampling",
        "MRTR: returns InputRequiredResult with sampling request",
    ),
    stateless(
        "test_input_required_result_list_roots",
        "MRTR: returns InputRequiredResult with roots/list request",
    ),
    stateless(
        "test_input_required_result_request_state",
        "MRTR: returns InputRequiredResult with requestState",
    ),
    stateless(
        "test_input_required_result_multiple_inputs",
        "MRTR: returns InputRequiredResult with multiple input requests",
    ),
    stateless(
        "test_input_required_result_multi_round",
        "MRTR: multi-round InputRequiredResult workflow",
    ),
    stateless(
        "test_input_required_result_tampered_state",
        "MRTR: HMAC-signed requestState integrity test",
    ),
    stateless(
        "test_input_required_result_capabilities",
        "MRTR: respects client capabilities in inputRequests",
    ),
    stateless(
        "test_streaming_elicitation",
        "Diagnostic tool validating response progress streams",
    ),
    stateless("test_logging_tool", "Diagnostic logging validator tool"),
    Spec {
        name: "test_custom_header",
        description: "SEP-2243: echoes a parameter that travels in the Mcp-Param-Region header",
        listed: Listed::StatelessOnly,
        schema: header_arg,
    },
];

fn definition(spec: &Spec) -> Tool {
    let schema = match (spec.schema)() {
        Value::Object(map) => map,
        _ => JsonObject::new(),
    };
    Tool::new(spec.name, spec.description, Arc::new(schema))
}

/// The tools a request on this revision sees, in `tools/list` order.
pub fn list(stateless: bool) -> Vec<Tool> {
    SPECS
        .iter()
        .filter(|spec| stateless || spec.listed == Listed::Always)
        .map(definition)
        .collect()
}

/// Any tool's definition, whichever revision lists it (used for `Mcp-Param-*` validation).
pub fn find(name: &str) -> Option<Tool> {
    SPECS.iter().find(|spec| spec.name == name).map(definition)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stateless_requests_see_more_tools() {
        let legacy = list(false);
        let modern = list(true);
        assert_eq!(legacy.len(), 14);
        assert!(modern.len() > legacy.len());
        assert_eq!(modern[..legacy.len()], legacy[..]);
        assert!(find("test_custom_header").is_some());
    }

    #[test]
    fn json_schema_is_listed_verbatim() {
        let tool = find("json_schema_2020_12_tool").unwrap();
        assert_eq!(
            Value::Object((*tool.input_schema).clone()),
            media::json_schema_2020_12()
        );
    }
}
