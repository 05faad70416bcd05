//! `DemoServer`, the rmcp `ServerHandler`: advertises capabilities, lists tools, prompts and
//! resources, and dispatches `tools/call` to the demo and test tool modules. rmcp itself
//! serves both lifecycles (2025-11-25 `initialize` and stateless 2026-07-28 per-request
//! `_meta`) on the same handler.

#![expect(
    deprecated,
    reason = "logging is deprecated by SEP-2577 but the 2025-11-25 lifecycle still uses it"
)]

use rmcp::{
    ErrorData as McpError, RoleServer, ServerHandler,
    model::{
        CallToolRequestParams, CallToolResponse, GetPromptRequestParams, GetPromptResponse, Implementation,
        ListPromptsResult, ListResourcesResult, ListToolsResult, PaginatedRequestParams, ReadResourceRequestParams,
        ReadResourceResponse, ServerCapabilities, ServerConfig, SetLevelRequestParams,
    },
    service::{NotificationContext, RequestContext},
};
use std::{
    io::Write as _,
    path::PathBuf,
    sync::{Arc, Mutex},
};

use tokio::sync::mpsc::UnboundedSender;

use crate::{
    DemoOptions,
    attack_tools::{self, RugPull},
    catalog::DemoTool,
    client_requests::{self, ClientAsk},
    demo_tools::{self, str_arg},
    prompts, resources, test_tools,
};

/// How this server instance reaches its client; `garbage` needs to know.
#[derive(Clone)]
pub enum Channel {
    /// Newline-delimited JSON on stdout; `raw_lines` writes a line between messages.
    Stdio {
        raw_lines: UnboundedSender<String>,
    },
    Http,
}

#[derive(Clone)]
pub struct DemoServer {
    test_tools: bool,
    channel: Channel,
    rug_pull: Option<Arc<RugPull>>,
    poisoned_tools: bool,
    /// Client notifications received (method, and a `tools/call`'s tool name), for
    /// `notifications_seen`: tests prove what the gateway relayed or refused (T21).
    notifications: Arc<Mutex<Vec<String>>>,
    /// Where every `tools/call` received is noted (`DemoOptions::call_log`).
    call_log: Option<Arc<PathBuf>>,
}

impl DemoServer {
    pub fn new(opts: &DemoOptions, channel: Channel) -> Self {
        Self {
            test_tools: opts.test_tools,
            channel,
            rug_pull: opts.rug_pull_after.map(RugPull::new),
            poisoned_tools: opts.poisoned_tools,
            notifications: Arc::default(),
            call_log: opts.call_log.clone().map(Arc::new),
        }
    }

    /// Notes a `tools/call` of `tool` in the call log, if there is one. One `write` of a
    /// whole line to a file opened for appending, so lines from several processes never mix.
    fn log_call(&self, tool: &str) {
        let Some(path) = &self.call_log else { return };
        let written = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path.as_ref())
            .and_then(|mut file| file.write_all(format!("{tool}\n").as_bytes()));
        if let Err(error) = written {
            tracing::error!(%error, path = %path.display(), "cannot write the call log");
        }
    }

    fn saw(&self, method: &str, params: Option<&serde_json::Value>) {
        let name = params.and_then(|p| p.get("name")).and_then(serde_json::Value::as_str);
        let entry = match name {
            Some(name) => format!("{method} {name}"),
            None => method.to_owned(),
        };
        if let Ok(mut seen) = self.notifications.lock() {
            seen.push(entry);
        }
    }

    async fn call(
        &self,
        tool: DemoTool,
        request: CallToolRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, McpError> {
        let args = request.arguments.clone().unwrap_or_default();
        let text = |key| str_arg(&args, key).map(str::to_owned);
        let result = match tool {
            DemoTool::SearchDocs => demo_tools::search_docs(&args)?,
            DemoTool::LookupCustomer => demo_tools::lookup_customer(&args)?,
            DemoTool::SendMessage => demo_tools::send_message(&args)?,
            DemoTool::DeleteRecord => demo_tools::delete_record(&args)?,
            DemoTool::Query => crate::query_tool::query(&args).await?,
            DemoTool::Echo => test_tools::echo(request.arguments, &context),
            DemoTool::GetEnv => test_tools::get_env(),
            DemoTool::HttpHeaders => test_tools::http_headers(&context),
            DemoTool::Progress => test_tools::progress(&args, &context).await?,
            DemoTool::Log => test_tools::log(&text("message")?, &context).await?,
            DemoTool::NotifyListChanged => test_tools::notify_list_changed(&context).await?,
            DemoTool::Flood => test_tools::flood(&args, &context).await?,
            DemoTool::NotificationsSeen => {
                let seen = self.notifications.lock().map(|s| s.clone()).unwrap_or_default();
                rmcp::model::CallToolResult::structured(serde_json::json!({ "notifications": seen }))
            }
            DemoTool::Crash => test_tools::crash(),
            DemoTool::Hang => test_tools::hang().await?,
            DemoTool::Garbage => test_tools::garbage(&self.channel),
            DemoTool::Sample | DemoTool::Elicit | DemoTool::Roots => {
                let ask = match tool {
                    DemoTool::Sample => ClientAsk::Sample {
                        prompt: text("prompt").unwrap_or_else(|_| "Say hello.".to_owned()),
                    },
                    DemoTool::Elicit => ClientAsk::Elicit {
                        message: text("message").unwrap_or_else(|_| "Enter a value.".to_owned()),
                    },
                    _ => ClientAsk::Roots,
                };
                return client_requests::ask(ask, request.input_responses, &context).await;
            }
        };
        Ok(result.into())
    }
}

impl ServerHandler for DemoServer {
    fn get_info(&self) -> ServerConfig {
        let capabilities = ServerCapabilities::builder()
            .enable_tools()
            .enable_tool_list_changed()
            .enable_prompts()
            .enable_resources()
            .enable_logging()
            .build();
        ServerConfig::new(capabilities)
            .with_server_info(Implementation::new("portcullis-demo-server", env!("CARGO_PKG_VERSION")))
            .with_instructions("A demo server with fake data. Nothing it does is real.")
    }

    async fn list_tools(
        &self,
        _request: Option<PaginatedRequestParams>,
        _context: RequestContext<RoleServer>,
    ) -> Result<ListToolsResult, McpError> {
        let mut tools: Vec<_> = DemoTool::enabled(self.test_tools).map(DemoTool::definition).collect();
        if let Some(rug) = &self.rug_pull {
            tools.push(rug.definition());
        }
        if self.poisoned_tools {
            tools.extend(attack_tools::poisoned());
        }
        Ok(ListToolsResult::with_all_items(tools))
    }

    async fn call_tool(
        &self,
        request: CallToolRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, McpError> {
        self.log_call(&request.name);
        if let Some(rug) = &self.rug_pull
            && request.name == attack_tools::RUG_PULL_TOOL
        {
            let args = request.arguments.clone().unwrap_or_default();
            return rug.call(&args, &context).await.map(Into::into);
        }
        if self.poisoned_tools && attack_tools::is_poisoned(&request.name) {
            return Ok(attack_tools::poisoned_call(&request.name).into());
        }
        match DemoTool::find(&request.name, self.test_tools) {
            Some(tool) => self.call(tool, request, context).await,
            None => Err(McpError::invalid_params(
                format!("unknown tool `{}`", request.name),
                None,
            )),
        }
    }

    async fn list_prompts(
        &self,
        _request: Option<PaginatedRequestParams>,
        _context: RequestContext<RoleServer>,
    ) -> Result<ListPromptsResult, McpError> {
        Ok(ListPromptsResult::with_all_items(prompts::list()))
    }

    async fn get_prompt(
        &self,
        request: GetPromptRequestParams,
        _context: RequestContext<RoleServer>,
    ) -> Result<GetPromptResponse, McpError> {
        prompts::get(&request).map(Into::into)
    }

    async fn list_resources(
        &self,
        _request: Option<PaginatedRequestParams>,
        _context: RequestContext<RoleServer>,
    ) -> Result<ListResourcesResult, McpError> {
        Ok(ListResourcesResult::with_all_items(resources::list()))
    }

    async fn read_resource(
        &self,
        request: ReadResourceRequestParams,
        _context: RequestContext<RoleServer>,
    ) -> Result<ReadResourceResponse, McpError> {
        resources::read(&request.uri).map(Into::into)
    }

    async fn on_roots_list_changed(&self, _context: NotificationContext<RoleServer>) {
        self.saw("notifications/roots/list_changed", None);
    }

    async fn on_custom_notification(
        &self,
        notification: rmcp::model::CustomNotification,
        _context: NotificationContext<RoleServer>,
    ) {
        self.saw(&notification.method, notification.params.as_ref());
    }

    async fn set_level(
        &self,
        _request: SetLevelRequestParams,
        _context: RequestContext<RoleServer>,
    ) -> Result<(), McpError> {
        Ok(())
    }
}
