//! Tools for the stateless 2026-07-28 scenarios: SEP-2322 multi round-trip requests (the tool
//! answers `InputRequiredResult` until the client retries with `inputResponses`), a tool that
//! needs a client capability (SEP-2575 `-32021`), stream and logging probes, and the hooks that
//! fire list-changed notifications on open `subscriptions/listen` streams.
//!
//! Every `requestState` is sealed with an HMAC (`RequestStateCodec`), so a tampered or forged
//! state is rejected with `-32602` instead of steering the next round.

#![expect(deprecated, reason = "sampling, roots and logging appear in MRTR input requests")]

use rmcp::{
    ErrorData as McpError, RoleServer,
    model::{
        CallToolRequestParams, CallToolResponse, CallToolResult, ClientCapabilities, ContentBlock, InputRequests,
        InputRequiredResult, InputResponses, LoggingLevel, LoggingMessageNotificationParam, NumberOrString,
        ProgressNotificationParam, ProgressToken,
    },
    service::RequestContext,
};
use serde_json::{Map, Value, json};

use crate::state::FixtureState;

type Context = RequestContext<RoleServer>;
type Response = Result<Option<CallToolResponse>, McpError>;

fn done(text: impl Into<String>) -> Response {
    Ok(Some(CallToolResult::success(vec![ContentBlock::text(text)]).into()))
}

fn internal(error: impl std::fmt::Display) -> McpError {
    McpError::internal_error(error.to_string(), None)
}

/// `InputRequiredResult` from a JSON map of input requests, with an optional sealed state.
fn ask(requests: Value, state: Option<String>) -> Response {
    let requests: InputRequests = serde_json::from_value(requests).map_err(internal)?;
    Ok(Some(InputRequiredResult::new(Some(requests), state).into()))
}

fn elicitation(message: &str, field: &str, kind: &str) -> Value {
    json!({
        "method": "elicitation/create",
        "params": {
            "message": message,
            "requestedSchema": {
                "type": "object",
                "properties": { field: { "type": kind } },
                "required": [field]
            }
        }
    })
}

fn sampling(text: &str, max_tokens: u32) -> Value {
    json!({
        "method": "sampling/createMessage",
        "params": {
            "messages": [{ "role": "user", "content": { "type": "text", "text": text } }],
            "maxTokens": max_tokens
        }
    })
}

fn roots() -> Value {
    json!({ "method": "roots/list", "params": {} })
}

/// The response under `key`, only if it is a JSON object (anything else counts as missing).
fn response<'a>(responses: &'a Option<InputResponses>, key: &str) -> Option<&'a Map<String, Value>> {
    responses.as_ref()?.get(key)?.as_object()
}

/// `response.content.<field>` as text, as the reference server reads elicitation answers.
fn content_str(response: &Map<String, Value>, field: &str) -> String {
    response
        .get("content")
        .and_then(|content| content.get(field))
        .and_then(Value::as_str)
        .unwrap_or("unknown")
        .to_owned()
}

fn root_count(response: &Map<String, Value>) -> usize {
    response.get("roots").and_then(Value::as_array).map_or(0, Vec::len)
}

fn client_capabilities(context: &Context) -> ClientCapabilities {
    context.meta.client_capabilities().unwrap_or_default()
}

/// Run the named stateless-revision tool, or `Ok(None)` when the name is not one of these.
pub async fn call(request: &CallToolRequestParams, context: &Context, state: &FixtureState) -> Response {
    let responses = &request.input_responses;
    let opened = match &request.request_state {
        Some(sealed) => Some(state.open(sealed)?),
        None => None,
    };
    let kind = opened.as_ref().and_then(|s| s.get("kind")).and_then(Value::as_str);
    match request.name.as_ref() {
        "test_missing_capability" => {
            if client_capabilities(context).sampling.is_none() {
                let mut required = ClientCapabilities::default();
                required.sampling = Some(Default::default());
                return Err(McpError::missing_required_client_capability(required));
            }
            done("Success")
        }
        "test_input_required_result_elicitation" => match response(responses, "user_name") {
            Some(answer) => done(format!("Hello, {}!", content_str(answer, "name"))),
            None => ask(
                json!({ "user_name": elicitation("What is your name?", "name", "string") }),
                None,
            ),
        },
        "test_input_required_result_sampling" => match response(responses, "sample_request") {
            Some(answer) => done(format!("Sampling result: {}", content_str(answer, "text"))),
            None => ask(
                json!({ "sample_request": sampling("What is the capital of France?", 100) }),
                None,
            ),
        },
        "test_input_required_result_list_roots" => match response(responses, "roots_request") {
            Some(answer) => done(format!("Found {} root(s)", root_count(answer))),
            None => ask(json!({ "roots_request": roots() }), None),
        },
        "test_input_required_result_request_state" | "test_input_required_result_tampered_state" => {
            let confirmed = response(responses, "confirm")
                .and_then(|answer| answer.get("content")?.get("ok")?.as_bool())
                == Some(true);
            if kind == Some("confirm") && confirmed {
                return done("state-ok: requestState validated");
            }
            let sealed = state.seal(json!({ "kind": "confirm" }))?;
            ask(
                json!({ "confirm": elicitation("Please confirm", "ok", "boolean") }),
                Some(sealed),
            )
        }
        "test_input_required_result_multiple_inputs" => {
            let answers = (
                response(responses, "user_name"),
                response(responses, "greeting"),
                response(responses, "client_roots"),
            );
            if let (Some("multiple-inputs"), (Some(name), Some(greeting), Some(roots))) = (kind, answers) {
                return done(format!(
                    "Name: {}; Greeting: {}; Roots: {}",
                    content_str(name, "name"),
                    content_str(greeting, "text"),
                    root_count(roots)
                ));
            }
            let sealed = state.seal(json!({ "kind": "multiple-inputs" }))?;
            let requests = json!({
                "user_name": elicitation("What is your name?", "name", "string"),
                "greeting": sampling("Generate a greeting", 50),
                "client_roots": roots(),
            });
            ask(requests, Some(sealed))
        }
        "test_input_required_result_multi_round" => multi_round(responses, opened.as_ref(), state),
        "test_input_required_result_capabilities" => {
            if responses.as_ref().is_some_and(|r| !r.is_empty()) {
                let keys: Vec<_> = responses.iter().flat_map(|r| r.keys().cloned()).collect();
                return done(format!("capabilities-ok: received {}", keys.join(",")));
            }
            let caps = client_capabilities(context);
            let mut requests = Map::new();
            if caps.elicitation.is_some() {
                requests.insert(
                    "elicit_input".into(),
                    elicitation("Elicitation input", "value", "string"),
                );
            }
            if caps.sampling.is_some() {
                requests.insert("sample_input".into(), sampling("Sample request", 50));
            }
            if requests.is_empty() {
                return done("No supported capabilities declared");
            }
            let sealed = state.seal(json!({ "kind": "capabilities-test" }))?;
            ask(Value::Object(requests), Some(sealed))
        }
        "test_streaming_elicitation" => {
            let token = ProgressToken(NumberOrString::String("token-abc".into()));
            let param = ProgressNotificationParam::new(token, 50.0).with_total(100.0);
            context.peer.notify_progress(param).await.map_err(internal)?;
            done("Streaming complete")
        }
        "test_logging_tool" => {
            // SEP-2575: no logs unless the request asked for them with `_meta.logLevel`.
            if context.meta.log_level().is_some() {
                let param = LoggingMessageNotificationParam::new(
                    LoggingLevel::Info,
                    json!("Diagnostic trace logging activated"),
                );
                context.peer.notify_logging_message(param).await.map_err(internal)?;
            }
            done("Logging evaluated")
        }
        "test_trigger_tool_change" => {
            state.notify_tools_changed().await;
            done("Mutation triggered")
        }
        "test_trigger_prompt_change" => {
            state.notify_prompts_changed().await;
            done("Mutation triggered")
        }
        "test_custom_header" => {
            let region = request.arguments.as_ref().and_then(|a| a.get("region")).cloned();
            done(format!("region={}", region.unwrap_or(Value::Null)))
        }
        _ => Ok(None),
    }
}

fn multi_round(responses: &Option<InputResponses>, opened: Option<&Value>, state: &FixtureState) -> Response {
    let round = opened.and_then(|s| s.get("round")).and_then(Value::as_u64);
    match (round, response(responses, "step1"), response(responses, "step2")) {
        (Some(1), Some(step1), _) => {
            let name = content_str(step1, "name");
            let sealed = state.seal(json!({ "round": 2, "name": name }))?;
            let step2 = elicitation("Step 2: What is your favorite color?", "color", "string");
            ask(json!({ "step2": step2 }), Some(sealed))
        }
        (Some(2), _, Some(step2)) => {
            let name = opened
                .and_then(|s| s.get("name"))
                .and_then(Value::as_str)
                .unwrap_or("friend");
            done(format!(
                "Multi-round complete for {name} who likes {}",
                content_str(step2, "color")
            ))
        }
        _ => {
            let sealed = state.seal(json!({ "round": 1 }))?;
            let step1 = elicitation("Step 1: What is your name?", "name", "string");
            ask(json!({ "step1": step1 }), Some(sealed))
        }
    }
}
