//! End-to-end tests of the demo server binary over stdio, driven by a real rmcp client under
//! both lifecycles: the 2025-11-25 `initialize` handshake and the stateless 2026-07-28
//! revision (`server/discover`, per-request `_meta`, `InputRequiredResult` rounds).
#![allow(
    clippy::unwrap_used,
    clippy::panic,
    reason = "test helpers outside #[test] functions fail the test by panicking"
)]
#![expect(
    clippy::disallowed_methods,
    reason = "these tests start the demo server binary as a child process"
)]
#![expect(
    deprecated,
    reason = "sampling, roots and logging are SEP-2577-deprecated but tested"
)]

use std::{
    process::Stdio,
    sync::{Arc, Mutex},
    time::Duration,
};

use rmcp::{
    ClientHandler, ClientLifecycleMode, ClientServiceExt, ErrorData as McpError, RoleClient,
    model::{
        CallToolRequestParams, CallToolResult, ClientCapabilities, ClientConfig, CreateMessageRequestParams,
        CreateMessageResult, ElicitRequestParams, ElicitResult, ElicitationAction, GetPromptRequestParams,
        Implementation, ListRootsResult, LoggingMessageNotificationParam, ProgressNotificationParam, ProtocolVersion,
        ReadResourceRequestParams, RequestMetaObject, Root, SamplingMessage,
    },
    service::{NotificationContext, RequestContext, RunningService},
    transport::TokioChildProcess,
};
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};

const BIN: &str = env!("CARGO_BIN_EXE_portcullis-demo-server");

/// A client that answers sampling, elicitation and roots, and records notifications.
#[derive(Clone, Default)]
struct Recorder {
    progress: Arc<Mutex<Vec<ProgressNotificationParam>>>,
    logs: Arc<Mutex<Vec<LoggingMessageNotificationParam>>>,
}

impl ClientHandler for Recorder {
    fn get_info(&self) -> ClientConfig {
        let caps = ClientCapabilities::builder()
            .enable_roots()
            .enable_sampling()
            .enable_elicitation()
            .build();
        ClientConfig::new(caps, Implementation::new("demo-server-tests", "0.0.0"))
    }

    async fn create_message(
        &self,
        _params: CreateMessageRequestParams,
        _context: RequestContext<RoleClient>,
    ) -> Result<CreateMessageResult, McpError> {
        Ok(CreateMessageResult::new(
            SamplingMessage::assistant_text("sampled answer"),
            "test-model".to_owned(),
        ))
    }

    async fn create_elicitation(
        &self,
        _request: ElicitRequestParams,
        _context: RequestContext<RoleClient>,
    ) -> Result<ElicitResult, McpError> {
        Ok(ElicitResult::new(ElicitationAction::Accept).with_content(json!({ "value": "42" })))
    }

    async fn list_roots(&self, _context: RequestContext<RoleClient>) -> Result<ListRootsResult, McpError> {
        Ok(ListRootsResult::new(vec![Root::new("file:///srv/demo")]))
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
}

#[derive(Clone, Copy, Debug)]
enum Lifecycle {
    Initialize,
    Stateless,
}

const LIFECYCLES: [Lifecycle; 2] = [Lifecycle::Initialize, Lifecycle::Stateless];

async fn connect(lifecycle: Lifecycle, extra_args: &[&str]) -> (RunningService<RoleClient, Recorder>, Recorder) {
    let mut command = tokio::process::Command::new(BIN);
    command.args(extra_args).stderr(Stdio::null());
    let transport = TokioChildProcess::new(command).unwrap();
    let mode = match lifecycle {
        Lifecycle::Initialize => ClientLifecycleMode::Initialize,
        Lifecycle::Stateless => ClientLifecycleMode::Discover {
            preferred_versions: vec![ProtocolVersion::V_2026_07_28],
        },
    };
    let recorder = Recorder::default();
    let client = recorder.clone().serve_with_lifecycle(transport, mode).await.unwrap();
    (client, recorder)
}

async fn call(client: &RunningService<RoleClient, Recorder>, name: &'static str, args: Value) -> CallToolResult {
    let Value::Object(args) = args else {
        panic!("arguments must be an object")
    };
    client
        .call_tool(CallToolRequestParams::new(name).with_arguments(args))
        .await
        .unwrap_or_else(|e| panic!("{name} failed: {e}"))
}

fn text(result: &CallToolResult) -> String {
    result
        .content
        .iter()
        .filter_map(|c| c.as_text().map(|t| t.text.clone()))
        .collect::<Vec<_>>()
        .join("\n")
}

/// Wait (briefly) until `cond` holds: notifications are handled on their own task.
async fn eventually(what: &str, cond: impl Fn() -> bool) {
    for _ in 0..100 {
        if cond() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("timed out waiting for {what}");
}

#[tokio::test]
async fn lists_demo_tools_only_by_default() {
    for lifecycle in LIFECYCLES {
        let (client, _) = connect(lifecycle, &[]).await;
        let names: Vec<_> = client
            .list_all_tools()
            .await
            .unwrap()
            .into_iter()
            .map(|t| t.name.to_string())
            .collect();
        assert_eq!(
            names,
            [
                "search_docs",
                "lookup_customer",
                "send_message",
                "delete_record",
                "query"
            ],
            "{lifecycle:?}"
        );
        client.cancel().await.unwrap();
    }
}

#[tokio::test]
async fn demo_tools_return_deterministic_fake_data() {
    for lifecycle in LIFECYCLES {
        let (client, _) = connect(lifecycle, &[]).await;
        let found = call(&client, "search_docs", json!({ "query": "refund" })).await;
        assert!(text(&found).contains("handbook-001"), "{lifecycle:?}");

        let customer = call(&client, "lookup_customer", json!({ "customer_id": "C-1001" })).await;
        let record = customer.structured_content.unwrap();
        assert_eq!(record["email"], "ada@example.com", "{lifecycle:?}");
        assert_eq!(record["phone"], "+44 20 7946 0001");

        let sent = call(&client, "send_message", json!({ "to": "ada", "body": "hi" })).await;
        let again = call(&client, "send_message", json!({ "to": "ada", "body": "hi" })).await;
        let id = &sent.structured_content.unwrap()["message_id"];
        assert!(id.as_str().unwrap().starts_with("msg-"));
        assert_eq!(id, &again.structured_content.unwrap()["message_id"]);

        let deleted = call(&client, "delete_record", json!({ "record_id": "R-9" })).await;
        assert_eq!(deleted.structured_content.unwrap()["status"], "deleted");
        client.cancel().await.unwrap();
    }
}

#[tokio::test]
async fn prompt_and_resources_are_served() {
    for lifecycle in LIFECYCLES {
        let (client, _) = connect(lifecycle, &[]).await;
        let prompts = client.list_all_prompts().await.unwrap();
        assert_eq!(prompts[0].name, "summarize", "{lifecycle:?}");
        let mut args = serde_json::Map::new();
        args.insert("topic".into(), json!("refunds"));
        let prompt = client
            .get_prompt(GetPromptRequestParams::new("summarize").with_arguments(args))
            .await
            .unwrap();
        assert!(serde_json::to_string(&prompt.messages).unwrap().contains("refunds"));

        let resources = client.list_all_resources().await.unwrap();
        assert_eq!(resources[0].uri, "demo://docs/handbook");
        let read = client
            .read_resource(ReadResourceRequestParams::new("demo://docs/handbook"))
            .await
            .unwrap();
        assert!(serde_json::to_string(&read.contents).unwrap().contains("Refund policy"));
        client.cancel().await.unwrap();
    }
}

#[tokio::test]
async fn progress_and_logging_reach_the_client() {
    for lifecycle in LIFECYCLES {
        let (client, recorder) = connect(lifecycle, &["--test-tools"]).await;
        // The rmcp client assigns the progressToken itself and routes notifications by it.
        let done = call(&client, "progress", json!({ "steps": 3 })).await;
        assert_eq!(text(&done), "completed 3 steps", "{lifecycle:?}");
        eventually("progress", || recorder.progress.lock().unwrap().len() == 3).await;
        let progress = recorder.progress.lock().unwrap().clone();
        let token = &progress[0].progress_token;
        assert!(
            progress
                .iter()
                .all(|p| &p.progress_token == token && p.total == Some(3.0)),
            "{lifecycle:?}: {progress:?}"
        );
        assert_eq!(progress[2].progress, 3.0);

        let logged = call(&client, "log", json!({ "message": "hello log" })).await;
        assert_eq!(text(&logged), "logged `hello log`");
        eventually("log", || !recorder.logs.lock().unwrap().is_empty()).await;
        assert_eq!(recorder.logs.lock().unwrap()[0].data, json!("hello log"));
        client.cancel().await.unwrap();
    }
}

#[tokio::test]
async fn client_requests_work_in_both_lifecycles() {
    for lifecycle in LIFECYCLES {
        let (client, _) = connect(lifecycle, &["--test-tools"]).await;
        let sampled = call(&client, "sample", json!({ "prompt": "hi" })).await;
        let answer = &sampled.structured_content.unwrap()["answer"];
        assert_eq!(answer["content"]["text"], "sampled answer", "{lifecycle:?}");

        let elicited = call(&client, "elicit", json!({})).await;
        let answer = &elicited.structured_content.unwrap()["answer"];
        assert_eq!(answer["content"]["value"], "42", "{lifecycle:?}");

        let roots = call(&client, "roots", json!({})).await;
        let answer = &roots.structured_content.unwrap()["answer"];
        assert_eq!(answer["roots"][0]["uri"], "file:///srv/demo", "{lifecycle:?}");
        client.cancel().await.unwrap();
    }
}

#[tokio::test]
async fn echo_returns_arguments_and_meta() {
    for lifecycle in LIFECYCLES {
        let (client, _) = connect(lifecycle, &["--test-tools"]).await;
        let mut params =
            CallToolRequestParams::new("echo").with_arguments(json!({ "a": [1, "two"] }).as_object().unwrap().clone());
        let mut meta = RequestMetaObject::new();
        meta.0.insert("example.test/marker".into(), json!("m-1"));
        params.meta = Some(meta);
        let echoed = client.call_tool(params).await.unwrap();
        let echoed = echoed.structured_content.unwrap();
        assert_eq!(echoed["arguments"], json!({ "a": [1, "two"] }), "{lifecycle:?}");
        assert_eq!(echoed["_meta"]["example.test/marker"], "m-1", "{lifecycle:?}");
        if let Lifecycle::Stateless = lifecycle {
            let version = &echoed["_meta"]["io.modelcontextprotocol/protocolVersion"];
            assert_eq!(version, "2026-07-28");
        }
        client.cancel().await.unwrap();
    }
}

/// Raw JSON-RPC over the child's pipes, for behaviour an rmcp client would hide.
struct RawChild {
    child: tokio::process::Child,
    stdin: tokio::process::ChildStdin,
    stdout: tokio::io::Lines<BufReader<tokio::process::ChildStdout>>,
}

impl RawChild {
    async fn start() -> Self {
        let mut child = tokio::process::Command::new(BIN)
            .arg("--test-tools")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .unwrap();
        let stdin = child.stdin.take().unwrap();
        let stdout = BufReader::new(child.stdout.take().unwrap()).lines();
        let mut raw = Self { child, stdin, stdout };
        raw.send(json!({"jsonrpc": "2.0", "id": 0, "method": "initialize", "params": {
            "protocolVersion": "2025-11-25", "capabilities": {},
            "clientInfo": { "name": "raw", "version": "0" }}}))
            .await;
        assert!(raw.line().await.unwrap().contains("\"id\":0"));
        raw.send(json!({"jsonrpc": "2.0", "method": "notifications/initialized"}))
            .await;
        raw
    }

    async fn send(&mut self, message: Value) {
        let line = format!("{message}\n");
        self.stdin.write_all(line.as_bytes()).await.unwrap();
    }

    async fn line(&mut self) -> Option<String> {
        tokio::time::timeout(Duration::from_secs(5), self.stdout.next_line())
            .await
            .unwrap()
            .unwrap()
    }

    async fn call_tool(&mut self, id: u64, name: &str) {
        self.send(json!({"jsonrpc": "2.0", "id": id, "method": "tools/call",
            "params": { "name": name, "arguments": {} }}))
            .await;
    }
}

#[tokio::test]
async fn garbage_writes_one_non_json_line_then_replies() {
    let mut raw = RawChild::start().await;
    raw.call_tool(1, "garbage").await;
    assert_eq!(raw.line().await.unwrap(), portcullis_demo_server::GARBAGE_LINE);
    let reply: Value = serde_json::from_str(&raw.line().await.unwrap()).unwrap();
    assert_eq!(reply["id"], 1);
    assert_eq!(reply["result"]["isError"], false);
}

#[tokio::test]
async fn crash_exits_with_status_3_without_replying() {
    let mut raw = RawChild::start().await;
    raw.call_tool(1, "crash").await;
    assert_eq!(raw.line().await, None);
    let status = raw.child.wait().await.unwrap();
    assert_eq!(status.code(), Some(portcullis_demo_server::CRASH_EXIT_CODE));
}

#[tokio::test]
async fn hang_never_replies_but_the_server_stays_up() {
    let mut raw = RawChild::start().await;
    raw.call_tool(1, "hang").await;
    raw.call_tool(2, "search_docs").await;
    // The second call is answered (with an argument error) while the first never is.
    let reply: Value = serde_json::from_str(&raw.line().await.unwrap()).unwrap();
    assert_eq!(reply["id"], 2);
    let next = tokio::time::timeout(Duration::from_millis(300), raw.stdout.next_line()).await;
    assert!(next.is_err(), "hang replied: {next:?}");
}
