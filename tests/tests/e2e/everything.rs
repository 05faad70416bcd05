//! `@modelcontextprotocol/server-everything` (a third-party server exercising
//! every protocol feature) over stdio behind the gateway, driven by an rmcp client.
use portcullis_e2e::{
    clients::{self, Revision, call, eventually, text},
    procs::GatewayProc,
    repo_root,
};
use serde_json::{Value, json};

fn everything_entry(env: &str) -> String {
    let peers = repo_root().join("tools/peers/node_modules");
    let node = peers.join(".bin/node");
    let main = peers.join("@modelcontextprotocol/server-everything/dist/index.js");
    assert!(
        main.is_file(),
        "{} is missing: run tools/peers/install.sh",
        main.display()
    );
    format!(
        "[[servers]]\nname = \"everything\"\ncommand = [\"{}\", \"{}\", \"stdio\"]\nenv = {env}\n",
        node.display(),
        main.display()
    )
}

#[tokio::test]
async fn server_everything_behind_the_gateway() {
    let gw = GatewayProc::start(&everything_entry("{ PROBE = \"scrubbed-env-check\" }"));
    let (client, rec) = clients::http(&gw.url, Revision::Legacy).await;

    let tools = clients::tool_names(&client).await;
    for want in ["echo", "get-env", "get-sum", "trigger-long-running-operation"] {
        assert!(tools.contains(&want.to_string()), "{want} missing from {tools:?}");
    }
    let echoed = call(&client, "echo", json!({"message": "through the gateway"}))
        .await
        .unwrap();
    assert!(text(&echoed).contains("through the gateway"), "{}", text(&echoed));
    let sum = call(&client, "get-sum", json!({"a": 2, "b": 40})).await.unwrap();
    assert!(text(&sum).contains("42"), "{}", text(&sum));

    // The child sees exactly the configured environment: nothing of the gateway's.
    let env: Value = serde_json::from_str(&text(&call(&client, "get-env", json!({})).await.unwrap())).unwrap();
    assert_eq!(env, json!({"PROBE": "scrubbed-env-check"}), "child environment");

    // Progress notifications from a long-running operation.
    let mut params = rmcp::model::CallToolRequestParams::new("trigger-long-running-operation")
        .with_arguments(json!({"duration": 1, "steps": 3}).as_object().unwrap().clone());
    rmcp::model::RequestParamsMeta::set_progress_token(
        &mut params,
        rmcp::model::ProgressToken(rmcp::model::NumberOrString::String("everything-1".into())),
    );
    client.call_tool(params).await.unwrap();
    eventually("progress from server-everything", || {
        rec.progress.lock().unwrap().len() >= 3
    })
    .await;

    // Prompts and resources.
    let prompt = client
        .get_prompt(rmcp::model::GetPromptRequestParams::new("simple-prompt"))
        .await
        .unwrap();
    assert!(!prompt.messages.is_empty());
    let resources = client.list_all_resources().await.unwrap();
    assert!(!resources.is_empty());
    let read = client
        .read_resource(rmcp::model::ReadResourceRequestParams::new(resources[0].uri.clone()))
        .await
        .unwrap();
    assert!(!read.contents.is_empty());

    // Logging notifications once the server is asked to emit them.
    client
        .set_level(rmcp::model::SetLevelRequestParams::new(
            rmcp::model::LoggingLevel::Debug,
        ))
        .await
        .unwrap();
    call(&client, "toggle-simulated-logging", json!({})).await.unwrap();
    eventually("log messages from server-everything", || {
        !rec.logs.lock().unwrap().is_empty()
    })
    .await;
    client.cancel().await.unwrap();
}

#[tokio::test]
async fn server_everything_for_a_stateless_client() {
    let gw = GatewayProc::start(&everything_entry("{}"));
    let (client, _) = clients::http(&gw.url, Revision::Modern).await;
    let echoed = call(&client, "echo", json!({"message": "2026-07-28 to 2025-11-25"}))
        .await
        .unwrap();
    assert!(text(&echoed).contains("2026-07-28 to 2025-11-25"));
    let env: Value = serde_json::from_str(&text(&call(&client, "get-env", json!({})).await.unwrap())).unwrap();
    assert_eq!(env, json!({}), "empty allow-list, empty environment");
    client.cancel().await.unwrap();
}
