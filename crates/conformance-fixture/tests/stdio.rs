//! Smoke tests of the fixture binary over stdio with a real rmcp client (the conformance suite
//! itself only grades HTTP): both lifecycles see the right tools, and the stateless revision's
//! MRTR fixtures complete through rmcp's automatic `inputResponses` rounds.
#![allow(
    clippy::unwrap_used,
    clippy::panic,
    reason = "test helpers outside #[test] functions fail the test by panicking"
)]
#![expect(
    clippy::disallowed_methods,
    reason = "these tests start the fixture binary as a child process"
)]

use std::process::Stdio;

use portcullis_conformance_fixture::client::ConformanceClient;
use rmcp::{
    ClientLifecycleMode, ClientServiceExt, RoleClient,
    model::{CallToolRequestParams, ProtocolVersion},
    service::RunningService,
    transport::TokioChildProcess,
};

const BIN: &str = env!("CARGO_BIN_EXE_portcullis-conformance-fixture");

async fn connect(version: ProtocolVersion) -> RunningService<RoleClient, ConformanceClient> {
    let mut command = tokio::process::Command::new(BIN);
    command.stderr(Stdio::null());
    let transport = TokioChildProcess::new(command).unwrap();
    let mode = if version == ProtocolVersion::V_2026_07_28 {
        ClientLifecycleMode::Discover {
            preferred_versions: vec![version.clone()],
        }
    } else {
        ClientLifecycleMode::Initialize
    };
    ConformanceClient::new(version)
        .serve_with_lifecycle(transport, mode)
        .await
        .unwrap()
}

async fn text(client: &RunningService<RoleClient, ConformanceClient>, tool: &'static str) -> String {
    let result = client.call_tool(CallToolRequestParams::new(tool)).await.unwrap();
    let content = serde_json::to_value(&result.content).unwrap();
    content[0]["text"].as_str().unwrap_or_default().to_owned()
}

#[tokio::test]
async fn legacy_lifecycle_lists_the_2025_fixtures() {
    let client = connect(ProtocolVersion::V_2025_11_25).await;
    let tools = client.list_all_tools().await.unwrap();
    assert_eq!(tools.len(), 14);
    assert!(tools.iter().all(|t| !t.name.starts_with("test_input_required")));
    assert_eq!(
        text(&client, "test_simple_text").await,
        "This is a simple text response for testing."
    );
    let sampled = text(&client, "test_sampling").await;
    assert_eq!(sampled, "LLM response: conformance sample");
    client.cancel().await.unwrap();
}

#[tokio::test]
async fn stateless_lifecycle_completes_mrtr_rounds() {
    let client = connect(ProtocolVersion::V_2026_07_28).await;
    let tools = client.list_all_tools().await.unwrap();
    assert!(tools.iter().any(|t| t.name == "test_input_required_result_multi_round"));
    let cases = [
        ("test_input_required_result_elicitation", "Hello, conformance!"),
        (
            "test_input_required_result_request_state",
            "state-ok: requestState validated",
        ),
        (
            "test_input_required_result_multi_round",
            "Multi-round complete for conformance who likes conformance",
        ),
        ("test_input_required_result_list_roots", "Found 0 root(s)"),
    ];
    for (tool, expected) in cases {
        assert_eq!(text(&client, tool).await, expected, "{tool}");
    }
    client.cancel().await.unwrap();
}
