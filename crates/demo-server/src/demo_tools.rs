//! Four of the demo tools (the fifth, `query`, is in `query_tool.rs`), one per risk tier: `search_docs` (read), `lookup_customer`
//! (read-sensitive), `send_message` and `delete_record` (write). All are pure functions of
//! their arguments over the fake data in `data.rs`.

use rmcp::{
    ErrorData as McpError,
    model::{CallToolResult, ContentBlock, JsonObject},
};
use serde_json::json;

use crate::data;

/// The string argument `key`, or an invalid-params error naming it.
pub fn str_arg<'a>(args: &'a JsonObject, key: &str) -> Result<&'a str, McpError> {
    args.get(key)
        .and_then(|value| value.as_str())
        .ok_or_else(|| McpError::invalid_params(format!("missing string argument `{key}`"), None))
}

pub fn search_docs(args: &JsonObject) -> Result<CallToolResult, McpError> {
    let query = str_arg(args, "query")?;
    let hits = data::search(query);
    if hits.is_empty() {
        return Ok(CallToolResult::success(vec![ContentBlock::text(format!(
            "no documents match `{query}`"
        ))]));
    }
    let snippets = hits
        .iter()
        .map(|doc| ContentBlock::text(format!("[{}] {}: {}", doc.id, doc.title, doc.body)))
        .collect();
    Ok(CallToolResult::success(snippets))
}

pub fn lookup_customer(args: &JsonObject) -> Result<CallToolResult, McpError> {
    let customer_id = str_arg(args, "customer_id")?;
    match data::customer(customer_id) {
        Some(customer) => {
            let record = serde_json::to_value(customer).map_err(|e| McpError::internal_error(e.to_string(), None))?;
            Ok(CallToolResult::structured(record))
        }
        None => Ok(CallToolResult::error(vec![ContentBlock::text(format!(
            "no customer with id `{customer_id}`"
        ))])),
    }
}

pub fn send_message(args: &JsonObject) -> Result<CallToolResult, McpError> {
    let to = str_arg(args, "to")?;
    let body = str_arg(args, "body")?;
    let message_id = data::message_id(to, body);
    Ok(CallToolResult::structured(json!({
        "status": "sent",
        "message_id": message_id,
        "to": to,
    })))
}

pub fn delete_record(args: &JsonObject) -> Result<CallToolResult, McpError> {
    let record_id = str_arg(args, "record_id")?;
    Ok(CallToolResult::structured(json!({
        "status": "deleted",
        "record_id": record_id,
    })))
}
