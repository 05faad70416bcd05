//! The stdio front: a desktop host launches `portcullis stdio` and talks MCP
//! over its stdin/stdout, in either protocol era.
use portcullis_e2e::{
    bin,
    clients::{self, Revision, call, text},
    demo_server_entry,
    procs::{relay_policy, write_config},
};
use serde_json::json;

#[tokio::test]
async fn host_launches_portcullis_stdio_in_both_revisions() {
    let config = write_config(&format!(
        "{}{}{}",
        relay_policy(),
        demo_server_entry("alpha", ""),
        demo_server_entry("beta", "")
    ));
    let path = config.path.to_str().unwrap();
    for rev in Revision::BOTH {
        let (client, rec) = clients::stdio(&bin("portcullis"), &["stdio", "--config", path], rev).await;
        let tools = clients::tool_names(&client).await;
        assert!(tools.contains(&"alpha__echo".to_string()), "{rev:?}: {tools:?}");
        let found = call(&client, "beta__search_docs", json!({"query": "refund"}))
            .await
            .unwrap();
        assert!(text(&found).contains("handbook-001"), "{rev:?}");
        if rev == Revision::Legacy {
            let sampled = call(&client, "alpha__sample", json!({"prompt": "hi"})).await.unwrap();
            assert!(text(&sampled).contains("sampled through the gateway"));
            call(&client, "alpha__log", json!({"message": "m"})).await.unwrap();
            clients::eventually("log", || !rec.logs.lock().unwrap().is_empty()).await;
        }
        client.cancel().await.unwrap();
    }
}

#[tokio::test]
async fn server_flag_exposes_one_server_without_namespacing() {
    let config = write_config(&format!(
        "{}{}{}",
        relay_policy(),
        demo_server_entry("alpha", ""),
        demo_server_entry("beta", "")
    ));
    let path = config.path.to_str().unwrap();
    let (client, _) = clients::stdio(
        &bin("portcullis"),
        &["stdio", "--config", path, "--server", "beta"],
        Revision::Legacy,
    )
    .await;
    let tools = clients::tool_names(&client).await;
    assert!(tools.contains(&"search_docs".to_string()), "{tools:?}");
    client.cancel().await.unwrap();
}

/// Issue 21 item 5, over the stdio front: a relayed answer is written to stdout as the
/// bytes the server sent, on one line, only its id the client's (the server's `\u0041` and
/// `, ` kept); the request reached the server as the client wrote it, the gateway's id in
/// place.
#[test]
fn relayed_answers_go_to_stdout_as_the_server_wrote_them() {
    use std::{io::Read, io::Write, process::Stdio};
    let script = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("peers/verbatim_server.py");
    let config = write_config(&format!(
        "{}[audit]\nenabled = false\n[[servers]]\nname = \"verbatim\"\ncommand = [\"python3\", \"{}\"]\n",
        relay_policy(),
        script.display()
    ));
    let call = |id: &str| {
        format!(
            r#"{{"jsonrpc":"2.0","id":{id},"method":"tools/call","params":{{"name":"verbatim","arguments":{{"q":"\u0042"}}}}}}"#
        )
    };
    let input = [
        raw_initialize(),
        r#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#.to_owned(),
        call(r#""c-1""#),
    ]
    .join("\n")
        + "\n";
    let mut child = std::process::Command::new(bin("portcullis"))
        .args(["stdio", "--config", config.path.to_str().unwrap()])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(input.as_bytes()).unwrap();
    let mut out = String::new();
    child.stdout.take().unwrap().read_to_string(&mut out).unwrap();
    let _ = child.wait();
    let line = out
        .lines()
        .find(|l| l.contains(r#""id":"c-1""#))
        .unwrap_or_else(|| panic!("no answer to c-1 in:\n{out}"));
    let answer: serde_json::Value = serde_json::from_str(line).unwrap();
    let seen = answer["result"]["content"][0]["text"].as_str().unwrap_or_default();
    let upstream_id = serde_json::from_str::<serde_json::Value>(seen).unwrap()["id"].clone();
    assert!(upstream_id.is_u64(), "{seen}");
    assert_eq!(seen, call(&upstream_id.to_string()));
    let written = format!(
        r#"{{"jsonrpc":"2.0","id":"c-1","result":{{"content":[{{"type":"text","text":{}}},{{"type":"text","text":"\u0041"}}], "isError":false}}}}"#,
        json!(seen)
    );
    assert_eq!(line, written);
}

fn raw_initialize() -> String {
    json!({"jsonrpc":"2.0","id":0,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"raw","version":"1"}}}).to_string()
}
