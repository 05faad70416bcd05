//! `FixtureServer`, the rmcp `ServerHandler` the conformance suite's `server` mode grades.
//! It routes each request to the catalogue modules and decides per request which revision's
//! fixtures to show: requests on the stateless 2026-07-28 revision also see the MRTR,
//! capability and subscription fixtures.

#![expect(
    deprecated,
    reason = "logging and resources/subscribe are SEP-2577-deprecated but 2025-11-25 scenarios test them"
)]

use rmcp::{
    ErrorData as McpError, RoleServer, ServerHandler,
    model::{
        CallToolRequestParams, CallToolResponse, GetPromptRequestParams, GetPromptResponse, Implementation,
        ListPromptsResult, ListResourceTemplatesResult, ListResourcesResult, ListToolsResult, PaginatedRequestParams,
        ProtocolVersion, ReadResourceRequestParams, ReadResourceResponse, ServerCapabilities, ServerConfig,
        SetLevelRequestParams, SubscribeRequestParams, SubscriptionFilter, Tool, UnsubscribeRequestParams,
    },
    service::{RequestContext, SubscriptionContext},
};

use crate::{calls, mrtr, prompts, resources, state::FixtureState, tools};

type Context = RequestContext<RoleServer>;

#[derive(Clone)]
pub struct FixtureServer {
    state: FixtureState,
}

impl FixtureServer {
    pub fn new(state: FixtureState) -> Self {
        Self { state }
    }
}

/// Whether this request uses the stateless 2026-07-28 revision (or later).
fn stateless(context: &Context) -> bool {
    context
        .protocol_version()
        .is_some_and(|v| v.as_str() >= ProtocolVersion::V_2026_07_28.as_str())
}

impl ServerHandler for FixtureServer {
    fn get_info(&self) -> ServerConfig {
        let capabilities = ServerCapabilities::builder()
            .enable_tools()
            .enable_tool_list_changed()
            .enable_prompts()
            .enable_prompts_list_changed()
            .enable_resources()
            .enable_resources_subscribe()
            .enable_resources_list_changed()
            .enable_logging()
            .enable_completions()
            .build();
        ServerConfig::new(capabilities).with_server_info(Implementation::new(
            "portcullis-conformance-fixture",
            env!("CARGO_PKG_VERSION"),
        ))
    }

    async fn list_tools(
        &self,
        _request: Option<PaginatedRequestParams>,
        context: Context,
    ) -> Result<ListToolsResult, McpError> {
        Ok(ListToolsResult::with_all_items(tools::list(stateless(&context))))
    }

    fn get_tool(&self, name: &str) -> Option<Tool> {
        tools::find(name)
    }

    async fn call_tool(&self, request: CallToolRequestParams, context: Context) -> Result<CallToolResponse, McpError> {
        let args = request.arguments.clone().unwrap_or_default();
        if let Some(result) = calls::call(&request.name, &args, &context).await? {
            return Ok(result.into());
        }
        if let Some(response) = mrtr::call(&request, &context, &self.state).await? {
            return Ok(response);
        }
        Err(McpError::invalid_params(
            format!("unknown tool `{}`", request.name),
            None,
        ))
    }

    async fn list_prompts(
        &self,
        _request: Option<PaginatedRequestParams>,
        context: Context,
    ) -> Result<ListPromptsResult, McpError> {
        Ok(ListPromptsResult::with_all_items(prompts::list(stateless(&context))))
    }

    async fn get_prompt(
        &self,
        request: GetPromptRequestParams,
        _context: Context,
    ) -> Result<GetPromptResponse, McpError> {
        prompts::get(&request)
    }

    async fn list_resources(
        &self,
        _request: Option<PaginatedRequestParams>,
        context: Context,
    ) -> Result<ListResourcesResult, McpError> {
        Ok(ListResourcesResult::with_all_items(resources::list(stateless(
            &context,
        ))))
    }

    async fn list_resource_templates(
        &self,
        _request: Option<PaginatedRequestParams>,
        _context: Context,
    ) -> Result<ListResourceTemplatesResult, McpError> {
        Ok(ListResourceTemplatesResult::with_all_items(resources::templates()))
    }

    async fn read_resource(
        &self,
        request: ReadResourceRequestParams,
        _context: Context,
    ) -> Result<ReadResourceResponse, McpError> {
        resources::read(&request.uri).map(Into::into)
    }

    async fn subscribe(&self, request: SubscribeRequestParams, _context: Context) -> Result<(), McpError> {
        self.state.subscribe(request.uri);
        Ok(())
    }

    async fn unsubscribe(&self, request: UnsubscribeRequestParams, _context: Context) -> Result<(), McpError> {
        self.state.unsubscribe(&request.uri);
        Ok(())
    }

    async fn set_level(&self, _request: SetLevelRequestParams, _context: Context) -> Result<(), McpError> {
        Ok(())
    }

    fn accepted_subscription_filter(&self, requested: &SubscriptionFilter) -> Option<SubscriptionFilter> {
        // rmcp narrows this to what was requested and what get_info advertises.
        Some(requested.clone())
    }

    async fn listen(&self, context: SubscriptionContext) -> Result<(), McpError> {
        let sink = context.sink().clone();
        self.state.add_listener(sink.clone());
        context.cancelled().await;
        self.state.remove_listener(&sink);
        Ok(())
    }
}
