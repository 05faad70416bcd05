//! Test tools that ask the client for something: `sample` (sampling/createMessage), `elicit`
//! (elicitation/create) and `roots` (roots/list).
//!
//! The two protocol revisions do this differently. Under the 2025-11-25 lifecycle the server
//! sends the request to the client mid-call and waits. The stateless 2026-07-28 revision
//! forbids server-to-client requests: the tool returns an `InputRequiredResult` naming what it
//! needs, and the client retries the call with `inputResponses`. Either way the final result
//! is `{"answer": <the client's reply>}`.

#![expect(
    deprecated,
    reason = "sampling and roots are deprecated by SEP-2577 but still part of both revisions we test"
)]

use rmcp::{
    ErrorData as McpError, RoleServer,
    model::{
        CallToolResponse, CallToolResult, CreateMessageRequest, CreateMessageRequestParams, ElicitRequest,
        ElicitRequestParams, InputRequest, InputRequests, InputRequiredResult, InputResponses, ListRootsRequest,
        ProtocolVersion, SamplingMessage,
    },
    service::RequestContext,
};
use serde_json::{Value, json};

/// What a tool asks the client for.
pub enum ClientAsk {
    Sample { prompt: String },
    Elicit { message: String },
    Roots,
}

/// The key under which the single input request and its response travel.
const INPUT_KEY: &str = "answer";

impl ClientAsk {
    fn input_request(&self) -> Result<InputRequest, McpError> {
        Ok(match self {
            ClientAsk::Sample { prompt } => {
                InputRequest::CreateMessage(CreateMessageRequest::new(sampling_params(prompt)))
            }
            ClientAsk::Elicit { message } => InputRequest::Elicitation(ElicitRequest::new(elicit_params(message)?)),
            ClientAsk::Roots => InputRequest::ListRoots(ListRootsRequest::default()),
        })
    }

    /// Ask the client directly, as the 2025-11-25 lifecycle allows.
    async fn ask_peer(&self, context: &RequestContext<RoleServer>) -> Result<Value, McpError> {
        let peer = &context.peer;
        match self {
            ClientAsk::Sample { prompt } => {
                let result = peer.create_message(sampling_params(prompt)).await;
                result.map_err(failed).and_then(to_json)
            }
            ClientAsk::Elicit { message } => {
                let result = peer.create_elicitation(elicit_params(message)?).await;
                result.map_err(failed).and_then(to_json)
            }
            ClientAsk::Roots => peer.list_roots().await.map_err(failed).and_then(to_json),
        }
    }
}

/// Run `ask` the way the request's protocol revision requires.
pub async fn ask(
    ask: ClientAsk,
    input_responses: Option<InputResponses>,
    context: &RequestContext<RoleServer>,
) -> Result<CallToolResponse, McpError> {
    let stateless = context
        .protocol_version()
        .is_some_and(|v| v.as_str() >= ProtocolVersion::V_2026_07_28.as_str());
    if !stateless {
        let answer = ask.ask_peer(context).await?;
        return Ok(CallToolResult::structured(json!({ "answer": answer })).into());
    }
    match input_responses.and_then(|mut responses| responses.remove(INPUT_KEY)) {
        Some(answer) => Ok(CallToolResult::structured(json!({ "answer": answer })).into()),
        None => {
            let mut requests = InputRequests::new();
            requests.insert(INPUT_KEY.to_owned(), ask.input_request()?);
            Ok(InputRequiredResult::from_input_requests(requests).into())
        }
    }
}

fn sampling_params(prompt: &str) -> CreateMessageRequestParams {
    CreateMessageRequestParams::new(vec![SamplingMessage::user_text(prompt)], 100)
}

fn elicit_params(message: &str) -> Result<ElicitRequestParams, McpError> {
    let schema = json!({
        "type": "object",
        "properties": { "value": { "type": "string", "description": "Your answer" } },
        "required": ["value"],
    });
    let requested_schema = serde_json::from_value(schema)
        .map_err(|e| McpError::internal_error(format!("bad elicitation schema: {e}"), None))?;
    Ok(ElicitRequestParams::FormElicitationParams {
        meta: None,
        message: message.to_owned(),
        requested_schema,
    })
}

fn failed(error: rmcp::ServiceError) -> McpError {
    McpError::internal_error(format!("client request failed: {error}"), None)
}

fn to_json(value: impl serde::Serialize) -> Result<Value, McpError> {
    serde_json::to_value(value).map_err(|e| McpError::internal_error(e.to_string(), None))
}
