//! Behaviour of the tools the 2025-era scenarios call: content of every type, logging and
//! progress during a call, a tool-level error, and sampling and elicitation requests sent to
//! the client mid-call. Texts match the suite's reference server.

#![expect(
    deprecated,
    reason = "sampling and logging are SEP-2577-deprecated but the scenarios still test them"
)]

use std::time::Duration;

use rmcp::{
    ErrorData as McpError, RoleServer,
    model::{
        CallToolResult, ContentBlock, CreateMessageRequestParams, ElicitRequestParams, JsonObject, LoggingLevel,
        LoggingMessageNotificationParam, NumberOrString, ProgressNotificationParam, ProgressToken, ResourceContents,
        SamplingMessage,
    },
    service::RequestContext,
};
use serde_json::{Value, json};

use crate::media;

type Context = RequestContext<RoleServer>;

/// Run the named tool, or `Ok(None)` when the name is not one of these tools.
pub async fn call(name: &str, args: &JsonObject, context: &Context) -> Result<Option<CallToolResult>, McpError> {
    let result = match name {
        "test_simple_text" => text("This is a simple text response for testing."),
        "test_image_content" => success(ContentBlock::image(media::PNG_BASE64, "image/png")),
        "test_audio_content" => success(ContentBlock::audio(media::WAV_BASE64, "audio/wav")),
        "test_embedded_resource" => success(ContentBlock::resource(ResourceContents::text(
            "This is an embedded resource content.",
            "test://embedded-resource",
        ))),
        "test_multiple_content_types" => CallToolResult::success(vec![
            ContentBlock::text("Multiple content types test:"),
            ContentBlock::image(media::PNG_BASE64, "image/png"),
            ContentBlock::resource(
                ResourceContents::text(
                    json!({ "test": "data", "value": 123 }).to_string(),
                    "test://mixed-content-resource",
                )
                .with_mime_type("application/json"),
            ),
        ]),
        "test_tool_with_logging" => with_logging(context).await?,
        "test_tool_with_progress" => with_progress(context).await?,
        "test_error_handling" => CallToolResult::error(vec![ContentBlock::text(
            "This tool intentionally returns an error for testing",
        )]),
        "test_reconnection" => {
            tokio::time::sleep(Duration::from_millis(100)).await;
            text(
                "Reconnection test completed successfully. If you received this, the client \
                 properly reconnected after stream closure.",
            )
        }
        "test_sampling" => sampling(string(args, "prompt"), context).await,
        "test_elicitation" => {
            let schema = json!({
                "type": "object",
                "properties": { "response": { "type": "string", "description": "User's response" } },
                "required": ["response"],
            });
            elicit(string(args, "message"), schema, "User response", context).await
        }
        "test_elicitation_sep1034_defaults" => {
            let message = "Please review and update the form fields with defaults";
            let schema = media::elicitation_defaults_schema();
            elicit(message.to_owned(), schema, "Elicitation completed", context).await
        }
        "test_elicitation_sep1330_enums" => {
            let message = "Please select options from the enum fields";
            let schema = media::elicitation_enums_schema();
            elicit(message.to_owned(), schema, "Elicitation completed", context).await
        }
        "json_schema_2020_12_tool" => text(format!(
            "JSON Schema 2020-12 tool called with: {}",
            Value::Object(args.clone())
        )),
        _ => return Ok(None),
    };
    Ok(Some(result))
}

fn success(content: ContentBlock) -> CallToolResult {
    CallToolResult::success(vec![content])
}

fn text(text: impl Into<String>) -> CallToolResult {
    success(ContentBlock::text(text))
}

fn string(args: &JsonObject, key: &str) -> String {
    args.get(key).and_then(Value::as_str).unwrap_or_default().to_owned()
}

fn internal(error: impl std::fmt::Display) -> McpError {
    McpError::internal_error(error.to_string(), None)
}

async fn with_logging(context: &Context) -> Result<CallToolResult, McpError> {
    let steps = [
        "Tool execution started",
        "Tool processing data",
        "Tool execution completed",
    ];
    for (i, step) in steps.iter().enumerate() {
        if i > 0 {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let param = LoggingMessageNotificationParam::new(LoggingLevel::Info, json!(step));
        context.peer.notify_logging_message(param).await.map_err(internal)?;
    }
    Ok(text("Tool with logging executed successfully"))
}

async fn with_progress(context: &Context) -> Result<CallToolResult, McpError> {
    let token = context
        .meta
        .get_progress_token()
        .unwrap_or(ProgressToken(NumberOrString::Number(0)));
    for (i, progress) in [0u32, 50, 100].into_iter().enumerate() {
        if i > 0 {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let param = ProgressNotificationParam::new(token.clone(), f64::from(progress))
            .with_total(100.0)
            .with_message(format!("Completed step {progress} of 100"));
        context.peer.notify_progress(param).await.map_err(internal)?;
    }
    let shown = match &token.0 {
        NumberOrString::Number(n) => n.to_string(),
        NumberOrString::String(s) => s.to_string(),
    };
    Ok(text(shown))
}

async fn sampling(prompt: String, context: &Context) -> CallToolResult {
    let params = CreateMessageRequestParams::new(vec![SamplingMessage::user_text(prompt)], 100);
    match context.peer.create_message(params).await {
        Ok(result) => {
            let reply = serde_json::to_value(&result.message.content).unwrap_or_default();
            let said = reply["text"].as_str().unwrap_or("No response").to_owned();
            text(format!("LLM response: {said}"))
        }
        Err(e) => text(format!("Sampling not supported or error: {e}")),
    }
}

async fn elicit(message: String, schema: Value, label: &str, context: &Context) -> CallToolResult {
    let requested_schema = match serde_json::from_value(schema) {
        Ok(schema) => schema,
        Err(e) => return CallToolResult::error(vec![ContentBlock::text(format!("bad schema: {e}"))]),
    };
    let params = ElicitRequestParams::FormElicitationParams {
        meta: None,
        message,
        requested_schema,
    };
    match context.peer.create_elicitation(params).await {
        Ok(result) => {
            let action = serde_json::to_value(result.action).unwrap_or_default();
            let action = action.as_str().unwrap_or("unknown").to_owned();
            let content = result.content.unwrap_or_else(|| json!({}));
            text(format!("{label}: action={action}, content={content}"))
        }
        Err(e) => text(format!("Elicitation not supported or error: {e}")),
    }
}
