//! One flow per `conformance client` scenario. Each connects with the lifecycle the runner's
//! protocol version implies (rmcp handles headers, `_meta`, MRTR rounds and SSE resumption)
//! and makes the calls the scenario's mock server watches for.

use anyhow::Context as _;
use rmcp::{
    RoleClient,
    model::{CallToolRequestParams, GetPromptRequestParams, JsonObject, ReadResourceRequestParams},
    service::RunningService,
};
use serde_json::{Value, json};

use super::handler::ConformanceClient;

pub type Client = RunningService<RoleClient, ConformanceClient>;

async fn call(client: &Client, name: &str, arguments: Value) -> anyhow::Result<()> {
    let mut params = CallToolRequestParams::new(name.to_owned());
    if let Value::Object(arguments) = arguments {
        params = params.with_arguments(arguments);
    }
    let result = client
        .call_tool(params)
        .await
        .with_context(|| format!("tools/call `{name}`"))?;
    tracing::info!(tool = name, ?result, "tool called");
    Ok(())
}

/// `initialize`, `tools_call`: list tools and call the first with `{a: 2, b: 3}`.
pub async fn basic(client: &Client) -> anyhow::Result<()> {
    let tools = client.list_all_tools().await?;
    if let Some(tool) = tools.first() {
        call(client, &tool.name, json!({ "a": 2, "b": 3 })).await?;
    }
    Ok(())
}

/// `request-metadata`, `json-schema-ref-no-deref`: list tools and nothing else.
pub async fn list_only(client: &Client) -> anyhow::Result<()> {
    client.list_all_tools().await?;
    Ok(())
}

/// `json-schema-2020-12-preservation`: echo the focal tool's schema back unchanged.
pub async fn schema_echo(client: &Client) -> anyhow::Result<()> {
    let tools = client.list_all_tools().await?;
    let focal = tools
        .iter()
        .find(|tool| tool.name == "json_schema_2020_12_tool")
        .context("the focal tool `json_schema_2020_12_tool` is not listed")?;
    let schema = Value::Object((*focal.input_schema).clone());
    call(client, "json_schema_echo", json!({ "schema": schema })).await
}

/// Scenarios whose mock names the tools and arguments in `MCP_CONFORMANCE_CONTEXT.toolCalls`.
pub async fn context_tool_calls(client: &Client, context: &Value) -> anyhow::Result<()> {
    client.list_all_tools().await?;
    let calls = context
        .get("toolCalls")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    for entry in calls {
        let name = entry
            .get("name")
            .and_then(Value::as_str)
            .context("toolCalls entry without a name")?;
        let arguments = entry.get("arguments").cloned().unwrap_or_else(|| json!({}));
        call(client, name, arguments).await?;
    }
    Ok(())
}

/// Call the named tools in order with no arguments (rmcp drives any MRTR rounds).
pub async fn call_each(client: &Client, names: &[&str]) -> anyhow::Result<()> {
    client.list_all_tools().await?;
    for name in names {
        call(client, name, json!({})).await?;
    }
    Ok(())
}

/// Use everything the server lists: every tool (rmcp drops tools whose `x-mcp-header`
/// annotations are invalid), every resource and every prompt.
pub async fn exercise_all(client: &Client) -> anyhow::Result<()> {
    for tool in client.list_all_tools().await? {
        call(client, &tool.name, json!({})).await?;
    }
    if client
        .peer_info()
        .is_some_and(|info| info.capabilities.resources.is_some())
    {
        for resource in client.list_all_resources().await? {
            client
                .read_resource(ReadResourceRequestParams::new(resource.uri.clone()))
                .await?;
        }
    }
    if client
        .peer_info()
        .is_some_and(|info| info.capabilities.prompts.is_some())
    {
        for prompt in client.list_all_prompts().await? {
            let params = GetPromptRequestParams::new(prompt.name.clone()).with_arguments(JsonObject::new());
            client.get_prompt(params).await?;
        }
    }
    Ok(())
}
