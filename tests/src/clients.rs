//! Real MCP clients (rmcp) for the tests, with a handler that records what the
//! servers send (progress, logs, list changes) and answers server requests
//! (sampling, elicitation, roots) with fixed values.
use std::{
    sync::{Arc, Mutex},
    time::Duration,
};

use rmcp::{
    ClientHandler, ClientLifecycleMode, ClientServiceExt, ErrorData as McpError, RoleClient,
    model::{
        CallToolRequestParams, CallToolResult, ClientCapabilities, ClientConfig, CreateMessageRequestParams,
        CreateMessageResult, ElicitRequestParams, ElicitResult, ElicitationAction, Implementation, ListRootsResult,
        LoggingMessageNotificationParam, ProgressNotificationParam, ProtocolVersion, Root, SamplingMessage,
    },
    service::{NotificationContext, RequestContext, RunningService},
    transport::{
        StreamableHttpClientTransport, TokioChildProcess, streamable_http_client::StreamableHttpClientTransportConfig,
    },
};
use serde_json::Value;

/// Which lifecycle the client uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Revision {
    /// 2025-11-25 `initialize` handshake and sessions.
    Legacy,
    /// 2026-07-28 stateless requests.
    Modern,
}

impl Revision {
    pub const BOTH: [Revision; 2] = [Revision::Legacy, Revision::Modern];

    fn mode(self) -> ClientLifecycleMode {
        match self {
            Revision::Legacy => ClientLifecycleMode::Initialize,
            Revision::Modern => ClientLifecycleMode::Discover {
                preferred_versions: vec![ProtocolVersion::V_2026_07_28],
            },
        }
    }
}

/// Records notifications; answers server requests.
#[derive(Clone, Default)]
pub struct Recorder {
    pub progress: Arc<Mutex<Vec<ProgressNotificationParam>>>,
    pub logs: Arc<Mutex<Vec<LoggingMessageNotificationParam>>>,
    pub tool_list_changed: Arc<Mutex<usize>>,
}

impl ClientHandler for Recorder {
    fn get_info(&self) -> ClientConfig {
        let caps = ClientCapabilities::builder()
            .enable_roots()
            .enable_sampling()
            .enable_elicitation()
            .build();
        ClientConfig::new(caps, Implementation::new("portcullis-e2e", "0.0.0"))
    }

    async fn create_message(
        &self,
        _params: CreateMessageRequestParams,
        _context: RequestContext<RoleClient>,
    ) -> Result<CreateMessageResult, McpError> {
        Ok(CreateMessageResult::new(
            SamplingMessage::assistant_text("sampled through the gateway"),
            "e2e-model".into(),
        ))
    }

    async fn create_elicitation(
        &self,
        _request: ElicitRequestParams,
        _context: RequestContext<RoleClient>,
    ) -> Result<ElicitResult, McpError> {
        Ok(ElicitResult::new(ElicitationAction::Accept).with_content(serde_json::json!({"value": "elicited-42"})))
    }

    async fn list_roots(&self, _context: RequestContext<RoleClient>) -> Result<ListRootsResult, McpError> {
        Ok(ListRootsResult::new(vec![Root::new("file:///e2e/root")]))
    }

    async fn on_progress(&self, params: ProgressNotificationParam, _context: NotificationContext<RoleClient>) {
        self.progress.lock().unwrap().push(params);
    }

    async fn on_logging_message(
        &self,
        params: LoggingMessageNotificationParam,
        _context: NotificationContext<RoleClient>,
    ) {
        self.logs.lock().unwrap().push(params);
    }

    async fn on_tool_list_changed(&self, _context: NotificationContext<RoleClient>) {
        *self.tool_list_changed.lock().unwrap() += 1;
    }
}

pub type Client = RunningService<RoleClient, Recorder>;

/// Connects over Streamable HTTP.
pub async fn http(url: &str, revision: Revision) -> (Client, Recorder) {
    http_with(reqwest::Client::new(), url, revision).await
}

/// Connects over Streamable HTTP with `http` (for example one presenting a client certificate).
pub async fn http_with(http: reqwest::Client, url: &str, revision: Revision) -> (Client, Recorder) {
    let transport =
        StreamableHttpClientTransport::with_client(http, StreamableHttpClientTransportConfig::with_uri(url.to_owned()));
    let recorder = Recorder::default();
    let client = recorder
        .clone()
        .serve_with_lifecycle(transport, revision.mode())
        .await
        .unwrap_or_else(|e| panic!("{revision:?} client could not connect to {url}: {e}"));
    (client, recorder)
}

/// Launches `program args…` and connects over its stdio.
pub async fn stdio(program: &std::path::Path, args: &[&str], revision: Revision) -> (Client, Recorder) {
    let mut cmd = tokio::process::Command::new(program);
    cmd.args(args).stderr(std::process::Stdio::null());
    let transport = TokioChildProcess::new(cmd).expect("spawn stdio client transport");
    let recorder = Recorder::default();
    let client = recorder
        .clone()
        .serve_with_lifecycle(transport, revision.mode())
        .await
        .unwrap_or_else(|e| panic!("{revision:?} client could not start over stdio: {e}"));
    (client, recorder)
}

/// Launches `portcullis connect <gateway_url> <flags…>` (the stdio bridge) and connects
/// over its stdio; `flags` carry TLS options such as `--cert`, `--key`, `--ca`.
pub async fn connect_bridge(gateway_url: &str, flags: &[&str], revision: Revision) -> (Client, Recorder) {
    let mut args = vec!["connect", gateway_url];
    args.extend_from_slice(flags);
    stdio(&crate::bin("portcullis"), &args, revision).await
}

/// Calls `name` with object `args`.
pub async fn call(client: &Client, name: &str, args: Value) -> Result<CallToolResult, rmcp::ServiceError> {
    let Value::Object(args) = args else {
        panic!("arguments must be an object")
    };
    client
        .call_tool(CallToolRequestParams::new(name.to_owned()).with_arguments(args))
        .await
}

/// All text content of a tool result.
pub fn text(result: &CallToolResult) -> String {
    result
        .content
        .iter()
        .filter_map(|c| c.as_text().map(|t| t.text.clone()))
        .collect::<Vec<_>>()
        .join("\n")
}

/// Waits briefly until `cond` holds (notifications are handled on their own task).
pub async fn eventually(what: &str, cond: impl Fn() -> bool) {
    for _ in 0..250 {
        if cond() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("timed out waiting for {what}");
}

/// Tool names the client sees.
pub async fn tool_names(client: &Client) -> Vec<String> {
    client
        .list_all_tools()
        .await
        .expect("tools/list")
        .into_iter()
        .map(|t| t.name.to_string())
        .collect()
}
