//! The demo server's one prompt, `summarize`, so `prompts/list` and `prompts/get` can be
//! exercised through a gateway.

use rmcp::{
    ErrorData as McpError,
    model::{GetPromptRequestParams, GetPromptResult, Prompt, PromptArgument, PromptMessage, Role},
};

pub const SUMMARIZE: &str = "summarize";

pub fn list() -> Vec<Prompt> {
    let topic = PromptArgument::new("topic")
        .with_description("What to summarise, e.g. `refunds`")
        .with_required(true);
    vec![Prompt::new(
        SUMMARIZE,
        Some("Summarise the support handbook's guidance on a topic."),
        Some(vec![topic]),
    )]
}

pub fn get(request: &GetPromptRequestParams) -> Result<GetPromptResult, McpError> {
    if request.name != SUMMARIZE {
        return Err(McpError::invalid_params(
            format!("unknown prompt `{}`", request.name),
            None,
        ));
    }
    let topic = request
        .arguments
        .as_ref()
        .and_then(|args| args.get("topic"))
        .and_then(|topic| topic.as_str())
        .ok_or_else(|| McpError::invalid_params("missing argument `topic`", None))?;
    let text = format!(
        "Summarise what the support handbook (resource demo://docs/handbook) says about {topic}, \
         in three sentences or fewer."
    );
    Ok(GetPromptResult::new(vec![PromptMessage::new_text(Role::User, text)])
        .with_description(format!("Summarise the handbook on {topic}")))
}
