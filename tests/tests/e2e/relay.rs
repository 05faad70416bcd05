//! Relay fidelity: requests, results, notifications and server-to-client
//! requests pass through the gateway untouched, for stdio and HTTP upstreams.
use portcullis_e2e::{
    clients::{self, Revision, call, eventually, text},
    demo_server_entry,
    faults::CuttableProxy,
    procs::{GatewayProc, demo_http_upstream},
    raw_http::{open_session, post},
};
use serde_json::{Value, json};

fn http_entry(url: &str) -> String {
    format!("[[servers]]\nname = \"demo\"\nurl = \"{url}\"\n")
}

/// Calls the `progress` tool for 3 steps with `token`; its 3 notifications reach `rec`.
async fn three_progress_notifications(client: &clients::Client, rec: &clients::Recorder, token: &str) {
    let mut params = rmcp::model::CallToolRequestParams::new("progress")
        .with_arguments(json!({"steps": 3}).as_object().unwrap().clone());
    rmcp::model::RequestParamsMeta::set_progress_token(
        &mut params,
        rmcp::model::ProgressToken(rmcp::model::NumberOrString::String(token.into())),
    );
    client.call_tool(params).await.unwrap();
    eventually("3 progress notifications", || rec.progress.lock().unwrap().len() >= 3).await;
}

/// Everything a legacy (2025-11-25) client can do, checked through the gateway.
async fn full_feature_tour(url: &str) {
    let (client, rec) = clients::http(url, Revision::Legacy).await;
    let tools = clients::tool_names(&client).await;
    assert!(
        tools.contains(&"echo".to_string()) && tools.contains(&"search_docs".to_string()),
        "{tools:?}"
    );

    // Arguments, including unknown nested fields, arrive verbatim.
    let args = json!({"text": "hé \u{1F600}", "nested": {"x-future": [1, 2.5, null, true]}, "n": -7});
    let echoed = call(&client, "echo", args.clone()).await.unwrap();
    let got: Value = echoed
        .structured_content
        .clone()
        .unwrap_or_else(|| serde_json::from_str(&text(&echoed)).unwrap());
    assert_eq!(got["arguments"], args, "echo: {got}");

    // Progress notifications for this call reach the client.
    three_progress_notifications(&client, &rec, "tok-1").await;

    // Logging notifications.
    call(&client, "log", json!({"message": "hello from upstream"}))
        .await
        .unwrap();
    eventually("a log message", || !rec.logs.lock().unwrap().is_empty()).await;

    // Server-to-client requests: sampling, elicitation, roots.
    let sampled = call(&client, "sample", json!({"prompt": "hi"})).await.unwrap();
    assert!(
        text(&sampled).contains("sampled through the gateway"),
        "{}",
        text(&sampled)
    );
    let elicited = call(&client, "elicit", json!({"message": "value?"})).await.unwrap();
    assert!(text(&elicited).contains("elicited-42"), "{}", text(&elicited));
    let roots = call(&client, "roots", json!({})).await.unwrap();
    assert!(text(&roots).contains("file:///e2e/root"), "{}", text(&roots));

    // list_changed notifications.
    call(&client, "notify_list_changed", json!({})).await.unwrap();
    eventually("tools/list_changed", || *rec.tool_list_changed.lock().unwrap() >= 1).await;

    // Prompts and resources.
    let prompts = client.list_all_prompts().await.unwrap();
    assert!(!prompts.is_empty());
    let name = prompts[0].name.clone();
    let mut args = serde_json::Map::new();
    for a in prompts[0].arguments.iter().flatten() {
        args.insert(a.name.clone(), json!("x"));
    }
    let prompt = client
        .get_prompt(rmcp::model::GetPromptRequestParams::new(name).with_arguments(args))
        .await
        .unwrap();
    assert!(!prompt.messages.is_empty());
    let resources = client.list_all_resources().await.unwrap();
    let uri = resources[0].uri.clone();
    let read = client
        .read_resource(rmcp::model::ReadResourceRequestParams::new(uri.clone()))
        .await
        .unwrap();
    assert!(!read.contents.is_empty(), "resource {uri} empty");
    client.cancel().await.unwrap();
}

#[tokio::test]
async fn legacy_client_full_tour_through_stdio_upstream() {
    let gw = GatewayProc::start(&demo_server_entry("demo", ""));
    full_feature_tour(&gw.url).await;
}

#[tokio::test]
async fn legacy_client_full_tour_through_http_upstream() {
    let upstream = demo_http_upstream();
    let gw = GatewayProc::start(&http_entry(&upstream.url));
    full_feature_tour(&gw.url).await;
}

/// Issue 21 item 0: rmcp's Streamable HTTP server (like the TypeScript SDK's) answers each
/// call as an SSE stream that ends after the answer. The gateway keeps using its upstream
/// connection across calls (it opened one per call), and progress sent on those streams
/// before the answer still arrives.
#[tokio::test]
async fn sse_answering_http_upstream_keeps_its_connection_across_calls() {
    let upstream = demo_http_upstream();
    let target = upstream.url.trim_start_matches("http://").trim_end_matches("/mcp");
    let proxy = CuttableProxy::start(target.parse().unwrap()).await;
    let gw = GatewayProc::start(&http_entry(&format!("http://{}/mcp", proxy.addr)));
    let (client, rec) = clients::http(&gw.url, Revision::Legacy).await;
    // The first call sets the session up upstream (handshake, its GET stream).
    call(&client, "echo", json!({"n": 0})).await.unwrap();
    let before = proxy.accepted();
    for n in 1..=20 {
        let echoed = call(&client, "echo", json!({"n": n})).await.unwrap();
        assert!(text(&echoed).contains(&format!("\"n\":{n}")), "{}", text(&echoed));
    }
    three_progress_notifications(&client, &rec, "tok-sse").await;
    call(&client, "echo", json!({"n": 21})).await.unwrap();
    // The rest of each stream is read in the background: a call racing it may open one more.
    let opened = proxy.accepted() - before;
    assert!(opened <= 2, "22 calls opened {opened} new upstream connections");
    client.cancel().await.unwrap();
}

/// Issue 21 item 5: a relayed call's request and answer go on as the bytes they came in,
/// only their ids written anew (the server sees the client's escape, the client the
/// server's escape and spacing); an answer the gateway changes (the audit receipt added) or
/// would write otherwise (a float) is written by the gateway from what it read.
#[tokio::test]
async fn relayed_messages_go_on_as_they_were_written() {
    let script = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("peers/verbatim_server.py");
    let server = format!(
        "[[servers]]\nname = \"verbatim\"\ncommand = [\"python3\", \"{}\"]\n",
        script.display()
    );
    let call = |id: &str, tool: &str| {
        format!(
            r#"{{"jsonrpc":"2.0","id":{id},"method":"tools/call","params":{{"name":"{tool}","arguments":{{"q":"\u0042"}}}}}}"#
        )
    };
    let relay = GatewayProc::start(&format!("[audit]\nenabled = false\n{server}"));
    let sid = open_session(&relay.url).await;
    let h = [("mcp-session-id", sid.as_str())];
    let reply = post(&relay.url, call(r#""c-1""#, "verbatim"), &h).await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    let answer = reply.json();
    // What the server received: the client's bytes, the gateway's own id in place.
    let seen = answer["result"]["content"][0]["text"].as_str().unwrap_or_default();
    let upstream_id = serde_json::from_str::<Value>(seen).unwrap()["id"].clone();
    assert!(upstream_id.is_u64(), "{seen}");
    assert_eq!(seen, call(&upstream_id.to_string(), "verbatim"));
    // What the client received: the server's bytes, the client's id in place.
    let written = format!(
        r#"{{"jsonrpc":"2.0","id":"c-1","result":{{"content":[{{"type":"text","text":{}}},{{"type":"text","text":"\u0041"}}], "isError":false}}}}"#,
        json!(seen)
    );
    assert_eq!(reply.body, written);
    // A float is written as the gateway read it.
    let reply = post(&relay.url, call("7", "float"), &h).await;
    assert_eq!(
        reply.body,
        r#"{"jsonrpc":"2.0","id":7,"result":{"content":[],"structuredContent":{"t":100.0}}}"#
    );
    // With the audit log on, the answer carries its receipt: written by the gateway.
    let audited = GatewayProc::start(&server);
    let sid = open_session(&audited.url).await;
    let reply = post(&audited.url, call("8", "verbatim"), &[("mcp-session-id", sid.as_str())]).await;
    let answer = reply.json();
    assert!(answer["result"]["_meta"].is_object(), "{}", reply.body);
    assert_eq!(answer["result"]["content"][1]["text"], "A");
    assert!(
        !reply.body.contains(r"\u0041") && !reply.body.contains(", "),
        "{}",
        reply.body
    );
}

#[tokio::test]
async fn stdio_child_sees_only_configured_environment() {
    let gw = GatewayProc::start(&demo_server_entry(
        "demo",
        "env = { API_MODE = \"ro\", REGION = \"eu\" }",
    ));
    let (client, _) = clients::http(&gw.url, Revision::Legacy).await;
    let env = call(&client, "get_env", json!({})).await.unwrap();
    let vars: Value = env
        .structured_content
        .clone()
        .unwrap_or_else(|| serde_json::from_str(&text(&env)).unwrap());
    let keys: Vec<&String> = vars.as_object().unwrap().keys().collect();
    assert_eq!(keys, ["API_MODE", "REGION"], "child environment: {vars}");
    assert_eq!(vars["API_MODE"], "ro");
    client.cancel().await.unwrap();
}

/// T3 on a `shared = true` server: two sessions on one child pick the same progress token
/// (rmcp numbers its tokens per client, so both send the same one); each gets exactly its
/// own call's notifications, with the token it sent.
#[tokio::test]
async fn t03_shared_server_progress_never_crosses_sessions() {
    let gw = GatewayProc::start(&demo_server_entry("demo", "shared = true"));
    let (a, rec_a) = clients::http(&gw.url, Revision::Legacy).await;
    let (b, rec_b) = clients::http(&gw.url, Revision::Legacy).await;
    async fn progress(client: &clients::Client, steps: u64) -> Result<rmcp::model::CallToolResult, rmcp::ServiceError> {
        let mut params = rmcp::model::CallToolRequestParams::new("progress")
            .with_arguments(json!({"steps": steps}).as_object().unwrap().clone());
        rmcp::model::RequestParamsMeta::set_progress_token(
            &mut params,
            rmcp::model::ProgressToken(rmcp::model::NumberOrString::String("same-token".into())),
        );
        client.call_tool(params).await
    }
    for _round in 0..3 {
        rec_a.progress.lock().unwrap().clear();
        rec_b.progress.lock().unwrap().clear();
        let (ra, rb) = tokio::join!(progress(&a, 20), progress(&b, 15));
        ra.unwrap();
        rb.unwrap();
        eventually("a's 20 notifications", || rec_a.progress.lock().unwrap().len() >= 20).await;
        eventually("b's 15 notifications", || rec_b.progress.lock().unwrap().len() >= 15).await;
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
        let got_a = rec_a.progress.lock().unwrap().clone();
        let got_b = rec_b.progress.lock().unwrap().clone();
        assert_eq!(got_a.len(), 20, "a got another session's progress: {got_a:?}");
        assert_eq!(got_b.len(), 15, "b got another session's progress: {got_b:?}");
        let tokens: std::collections::BTreeSet<String> = got_a
            .iter()
            .chain(&got_b)
            .map(|p| serde_json::to_value(&p.progress_token).unwrap().to_string())
            .collect();
        assert_eq!(
            tokens.len(),
            1,
            "both clients chose one token and got it back: {tokens:?}"
        );
        assert!(got_a.iter().all(|p| p.total == Some(20.0)), "{got_a:?}");
        assert!(got_b.iter().all(|p| p.total == Some(15.0)), "{got_b:?}");
    }
    a.cancel().await.unwrap();
    b.cancel().await.unwrap();
}

/// `${VAR}` in a server's `env` comes from the gateway's own environment (`$${` is a
/// literal); a variable that is not set is a config error naming it (exit 2).
#[test]
fn env_values_expand_variables_of_the_gateways_environment() {
    use std::io::Write as _;
    let cfg = portcullis_e2e::procs::write_config(&format!(
        "{}{}",
        portcullis_e2e::procs::relay_policy(),
        demo_server_entry(
            "demo",
            "env = { FROM_GATEWAY = \"token ${PORTCULLIS_E2E_SECRET}\", LITERAL = \"$${NOT_EXPANDED}\" }"
        )
    ));
    let config = cfg.path.to_str().unwrap();
    let mut child = std::process::Command::new(portcullis_e2e::bin("portcullis"))
        .args(["stdio", "--config", config])
        .env("PORTCULLIS_E2E_SECRET", "s3cret")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    for line in [
        json!({"jsonrpc": "2.0", "id": 0, "method": "initialize", "params": {
            "protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "t", "version": "1"}}}),
        json!({"jsonrpc": "2.0", "method": "notifications/initialized"}),
        json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {"name": "get_env", "arguments": {}}}),
    ] {
        writeln!(stdin, "{line}").unwrap();
    }
    drop(stdin);
    let out = child.wait_with_output().unwrap();
    let answer: Value = String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .find(|v| v["id"] == 1)
        .expect("an answer to get_env");
    let env = &answer["result"]["structuredContent"];
    assert_eq!(env["FROM_GATEWAY"], "token s3cret", "{answer}");
    assert_eq!(env["LITERAL"], "${NOT_EXPANDED}", "{answer}");

    let out = std::process::Command::new(portcullis_e2e::bin("portcullis"))
        .args(["check-config", "--config", config])
        .env_remove("PORTCULLIS_E2E_SECRET")
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        err.contains("servers[0].env.FROM_GATEWAY") && err.contains("`PORTCULLIS_E2E_SECRET` is not set"),
        "{err}"
    );
    assert!(!err.contains("s3cret"));
}
