//! `portcullis connect`: a desktop host launches the stdio bridge, which relays to a
//! gateway's Streamable HTTP front (plain HTTP here; the mTLS variant needs the TLS front).
use std::{
    io::{Read, Write},
    process::{Command, Stdio},
    time::Duration,
};

use portcullis_e2e::{
    bin,
    clients::{self, Revision, call, eventually, text},
    demo_server_entry,
    procs::{GatewayProc, free_port, wait_exit},
};
use serde_json::{Value, json};

#[tokio::test]
async fn host_reaches_the_gateway_through_the_bridge_in_both_revisions() {
    let gateway = GatewayProc::start(&demo_server_entry("demo", ""));
    for rev in Revision::BOTH {
        let (client, rec) = clients::connect_bridge(&gateway.url, &[], rev).await;
        let tools = clients::tool_names(&client).await;
        assert!(tools.contains(&"echo".to_string()), "{rev:?}: {tools:?}");
        let echoed = call(&client, "echo", json!({"text": "bridged"})).await.unwrap();
        assert!(text(&echoed).contains("bridged"), "{rev:?}: {}", text(&echoed));
        if rev == Revision::Legacy {
            // Server-to-client requests and notifications travel back over the bridge.
            let sampled = call(&client, "sample", json!({"prompt": "hi"})).await.unwrap();
            assert!(text(&sampled).contains("sampled through the gateway"));
            call(&client, "log", json!({"message": "m"})).await.unwrap();
            eventually("log", || !rec.logs.lock().unwrap().is_empty()).await;
        }
        client.cancel().await.unwrap();
    }
}

#[test]
fn unreachable_gateway_answers_with_an_error_and_eof_exits_zero() {
    let url = format!("http://127.0.0.1:{}/mcp", free_port());
    let mut child = Command::new(bin("portcullis"))
        .args(["connect", &url])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    stdin
        .write_all(b"{\"jsonrpc\":\"2.0\",\"id\":7,\"method\":\"ping\"}\nnot json\n")
        .unwrap();
    drop(stdin);
    let status = wait_exit(&mut child, Duration::from_secs(30));
    let mut out = String::new();
    child.stdout.take().unwrap().read_to_string(&mut out).unwrap();
    let mut err = String::new();
    child.stderr.take().unwrap().read_to_string(&mut err).unwrap();
    assert!(status.success(), "{status:?}\n{err}");
    let answers: Vec<Value> = out.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    let ping = answers.iter().find(|a| a["id"] == 7).expect("an answer to the ping");
    assert!(
        ping["error"]["message"]
            .as_str()
            .unwrap()
            .contains("Connection refused"),
        "{ping}"
    );
    assert!(answers.iter().any(|a| a["error"]["code"] == -32700), "{out}");
    assert!(err.contains("could not be reached"), "{err}");
    assert!(err.contains("plain HTTP"), "{err}");
}
