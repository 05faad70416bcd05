//! Test tools that probe a gateway's relay: echo what arrived, report the environment, send
//! progress, logging and list-changed notifications, and misbehave on purpose (crash, hang,
//! write garbage, flood the client). Only listed when `DemoOptions::test_tools` is set.

#![expect(
    deprecated,
    reason = "logging is deprecated by SEP-2577 but still part of both protocol revisions we test"
)]

use std::collections::BTreeMap;

use rmcp::{
    ErrorData as McpError, RoleServer,
    model::{
        CallToolResult, ContentBlock, JsonObject, LoggingLevel, LoggingMessageNotificationParam,
        ProgressNotificationParam,
    },
    service::RequestContext,
};
use serde_json::{Value, json};

use crate::server::Channel;

/// The exit status of the `crash` tool, so tests can tell a deliberate crash from a bug.
pub const CRASH_EXIT_CODE: i32 = 3;

/// The line `garbage` writes to stdout.
pub const GARBAGE_LINE: &str = "this line is not JSON-RPC";

/// The arguments and request `_meta` exactly as received.
pub fn echo(args: Option<JsonObject>, context: &RequestContext<RoleServer>) -> CallToolResult {
    let meta = serde_json::to_value(&context.meta).unwrap_or(Value::Null);
    let arguments = args.map(Value::Object).unwrap_or(Value::Null);
    CallToolResult::structured(json!({ "arguments": arguments, "_meta": meta }))
}

/// The HTTP request headers that carried this call, by lower-case name (an empty
/// object over stdio). Lets tests prove what the gateway forwards upstream.
pub fn http_headers(context: &RequestContext<RoleServer>) -> CallToolResult {
    let headers: BTreeMap<String, String> = context
        .extensions
        .get::<::http::request::Parts>()
        .map(|parts| {
            parts
                .headers
                .iter()
                .map(|(k, v)| {
                    (
                        k.as_str().to_owned(),
                        String::from_utf8_lossy(v.as_bytes()).into_owned(),
                    )
                })
                .collect()
        })
        .unwrap_or_default();
    CallToolResult::structured(json!(headers))
}

/// The process environment, sorted by name; non-UTF-8 bytes are replaced.
#[expect(
    clippy::disallowed_methods,
    reason = "a test tool: shows what environment the gateway passed to its stdio child"
)]
pub fn get_env() -> CallToolResult {
    let env: BTreeMap<String, String> = std::env::vars_os()
        .map(|(k, v)| (k.to_string_lossy().into_owned(), v.to_string_lossy().into_owned()))
        .collect();
    CallToolResult::structured(json!(env))
}

pub async fn progress(args: &JsonObject, context: &RequestContext<RoleServer>) -> Result<CallToolResult, McpError> {
    let steps = args
        .get("steps")
        .and_then(Value::as_u64)
        .filter(|steps| *steps <= 100)
        .ok_or_else(|| McpError::invalid_params("`steps` must be an integer 0..=100", None))?;
    let Some(token) = context.meta.get_progress_token() else {
        return Ok(CallToolResult::error(vec![ContentBlock::text(
            "the request carried no _meta.progressToken",
        )]));
    };
    for step in 1..=steps {
        let param = ProgressNotificationParam::new(token.clone(), step as f64)
            .with_total(steps as f64)
            .with_message(format!("step {step} of {steps}"));
        context
            .peer
            .notify_progress(param)
            .await
            .map_err(|e| McpError::internal_error(format!("progress failed: {e}"), None))?;
    }
    Ok(CallToolResult::success(vec![ContentBlock::text(format!(
        "completed {steps} steps"
    ))]))
}

pub async fn log(message: &str, context: &RequestContext<RoleServer>) -> Result<CallToolResult, McpError> {
    let param =
        LoggingMessageNotificationParam::new(LoggingLevel::Info, json!(message)).with_logger("portcullis-demo-server");
    context
        .peer
        .notify_logging_message(param)
        .await
        .map_err(|e| McpError::internal_error(format!("logging failed: {e}"), None))?;
    Ok(CallToolResult::success(vec![ContentBlock::text(format!(
        "logged `{message}`"
    ))]))
}

pub async fn notify_list_changed(context: &RequestContext<RoleServer>) -> Result<CallToolResult, McpError> {
    context
        .peer
        .notify_tool_list_changed()
        .await
        .map_err(|e| McpError::internal_error(format!("notification failed: {e}"), None))?;
    Ok(CallToolResult::success(vec![ContentBlock::text(
        "sent notifications/tools/list_changed",
    )]))
}

/// Exit at once, without replying, so callers see an upstream that died mid-request.
pub fn crash() -> ! {
    std::process::exit(CRASH_EXIT_CODE)
}

/// Never reply.
pub async fn hang() -> Result<CallToolResult, McpError> {
    std::future::pending().await
}

/// Write a non-JSON line between protocol messages on stdio; refuse on HTTP.
pub fn garbage(channel: &Channel) -> CallToolResult {
    match channel {
        Channel::Stdio { raw_lines } => match raw_lines.send(GARBAGE_LINE.to_owned()) {
            Ok(()) => CallToolResult::success(vec![ContentBlock::text("wrote a garbage line")]),
            Err(_) => CallToolResult::error(vec![ContentBlock::text("stdout is closed")]),
        },
        Channel::Http => CallToolResult::error(vec![ContentBlock::text(
            "`garbage` only applies to stdio; over HTTP there is no stream to corrupt",
        )]),
    }
}

/// `flood`: a hostile server exhausting the gateway (T23). Sends `requests` roots/list
/// requests to the client at once and reports, after at most `wait_ms`, how many were
/// answered, refused with an error, or are still waiting; and `after_ms` after returning,
/// `notifications` logging notifications of `notification_bytes` bytes each, related to no
/// call (so they queue for a client that opened no stream).
pub async fn flood(args: &JsonObject, context: &RequestContext<RoleServer>) -> Result<CallToolResult, McpError> {
    let number = |key: &str, max: u64| args.get(key).and_then(Value::as_u64).unwrap_or(0).min(max);
    let (requests, notifications) = (number("requests", 10_000), number("notifications", 10_000));
    let (bytes, after_ms, wait_ms) = (
        number("notification_bytes", 3_000_000) as usize,
        number("after_ms", 60_000),
        number("wait_ms", 60_000),
    );
    if notifications > 0 {
        let peer = context.peer.clone();
        tokio::spawn(async move {
            tokio::time::sleep(std::time::Duration::from_millis(after_ms)).await;
            let text = "x".repeat(bytes);
            for _ in 0..notifications {
                let param = LoggingMessageNotificationParam::new(LoggingLevel::Info, json!(text));
                if peer.notify_logging_message(param).await.is_err() {
                    break;
                }
            }
        });
    }
    let mut asks = tokio::task::JoinSet::new();
    for _ in 0..requests {
        let peer = context.peer.clone();
        asks.spawn(async move { peer.list_roots().await.is_ok() });
    }
    let (mut answered, mut refused) = (0u64, 0u64);
    let deadline = tokio::time::sleep(std::time::Duration::from_millis(wait_ms));
    tokio::pin!(deadline);
    loop {
        tokio::select! {
            done = asks.join_next() => match done {
                Some(Ok(true)) => answered += 1,
                Some(_) => refused += 1,
                None => break,
            },
            _ = &mut deadline => break,
        }
    }
    let pending = requests - answered - refused;
    asks.detach_all();
    Ok(CallToolResult::structured(
        json!({"answered": answered, "refused": refused, "pending": pending}),
    ))
}
