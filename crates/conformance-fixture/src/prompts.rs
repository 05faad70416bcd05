//! The fixture's prompts, named and worded as the prompts scenarios expect, plus the
//! stateless-only `test_input_required_result_prompt` that needs an elicitation round first.

use rmcp::{
    ErrorData as McpError,
    model::{
        ContentBlock, GetPromptRequestParams, GetPromptResponse, GetPromptResult, InputRequests, InputRequiredResult,
        Prompt, PromptArgument, PromptMessage, ResourceContents, Role,
    },
};
use serde_json::{Value, json};

use crate::media;

const MRTR_PROMPT: &str = "test_input_required_result_prompt";

fn arg(name: &str, description: &str) -> PromptArgument {
    PromptArgument::new(name)
        .with_description(description)
        .with_required(true)
}

pub fn list(stateless: bool) -> Vec<Prompt> {
    let mut prompts = vec![
        Prompt::new("test_simple_prompt", Some("A simple prompt without arguments"), None)
            .with_title("Simple Test Prompt"),
        Prompt::new(
            "test_prompt_with_arguments",
            Some("A prompt with required arguments"),
            Some(vec![
                arg("arg1", "First test argument"),
                arg("arg2", "Second test argument"),
            ]),
        )
        .with_title("Prompt With Arguments"),
        Prompt::new(
            "test_prompt_with_embedded_resource",
            Some("A prompt that includes an embedded resource"),
            Some(vec![arg("resourceUri", "URI of the resource to embed")]),
        )
        .with_title("Prompt With Embedded Resource"),
        Prompt::new(
            "test_prompt_with_image",
            Some("A prompt that includes image content"),
            None,
        )
        .with_title("Prompt With Image"),
    ];
    if stateless {
        prompts.push(Prompt::new(
            MRTR_PROMPT,
            Some("MRTR: prompt that requires elicitation input"),
            None,
        ));
    }
    prompts
}

fn argument(request: &GetPromptRequestParams, name: &str) -> String {
    let value = request.arguments.as_ref().and_then(|args| args.get(name));
    value.and_then(Value::as_str).unwrap_or_default().to_owned()
}

fn user(content: ContentBlock) -> PromptMessage {
    PromptMessage::new(Role::User, content)
}

pub fn get(request: &GetPromptRequestParams) -> Result<GetPromptResponse, McpError> {
    let messages = match request.name.as_str() {
        "test_simple_prompt" => vec![user(ContentBlock::text("This is a simple prompt for testing."))],
        "test_prompt_with_arguments" => vec![user(ContentBlock::text(format!(
            "Prompt with arguments: arg1='{}', arg2='{}'",
            argument(request, "arg1"),
            argument(request, "arg2")
        )))],
        "test_prompt_with_embedded_resource" => vec![
            user(ContentBlock::resource(ResourceContents::text(
                "Embedded resource content for testing.",
                argument(request, "resourceUri"),
            ))),
            user(ContentBlock::text("Please process the embedded resource above.")),
        ],
        "test_prompt_with_image" => vec![
            user(ContentBlock::image(media::PNG_BASE64, "image/png")),
            user(ContentBlock::text("Please analyze the image above.")),
        ],
        MRTR_PROMPT => return mrtr_prompt(request),
        other => {
            return Err(McpError::invalid_params(format!("unknown prompt `{other}`"), None));
        }
    };
    Ok(GetPromptResult::new(messages).into())
}

fn mrtr_prompt(request: &GetPromptRequestParams) -> Result<GetPromptResponse, McpError> {
    let answer = request.input_responses.as_ref().and_then(|r| r.get("user_context"));
    if let Some(context) = answer.and_then(Value::as_object) {
        let context = context
            .get("content")
            .and_then(|c| c.get("context"))
            .and_then(Value::as_str)
            .unwrap_or("unknown");
        let text = format!("Prompt with context: {context}");
        return Ok(GetPromptResult::new(vec![user(ContentBlock::text(text))]).into());
    }
    let requests: InputRequests = serde_json::from_value(json!({
        "user_context": {
            "method": "elicitation/create",
            "params": {
                "message": "What context should the prompt use?",
                "requestedSchema": {
                    "type": "object",
                    "properties": { "context": { "type": "string" } },
                    "required": ["context"]
                }
            }
        }
    }))
    .map_err(|e| McpError::internal_error(e.to_string(), None))?;
    Ok(InputRequiredResult::from_input_requests(requests).into())
}
