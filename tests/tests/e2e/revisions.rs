//! Revision bridging: 2026-07-28 (stateless) and 2025-11-25 (session) clients
//! against upstreams pinned to either era, over stdio and HTTP.
use portcullis_e2e::{
    clients::{self, Revision, call, text},
    demo_server_entry,
    procs::{GatewayProc, demo_http_upstream},
};
use serde_json::{Value, json};

const PROTOCOL_KEY: &str = "io.modelcontextprotocol/protocolVersion";

/// Calls `echo` and returns the `_meta` the upstream received.
async fn echoed_meta(client: &clients::Client) -> Value {
    let echoed = call(client, "echo", json!({"k": "v"})).await.unwrap();
    let got: Value = echoed
        .structured_content
        .clone()
        .unwrap_or_else(|| serde_json::from_str(&text(&echoed)).unwrap());
    assert_eq!(got["arguments"], json!({"k": "v"}));
    got.get("meta")
        .or_else(|| got.get("_meta"))
        .cloned()
        .unwrap_or(Value::Null)
}

async fn check(url: &str, client_rev: Revision, upstream_modern: bool) {
    let (client, _) = clients::http(url, client_rev).await;
    let tools = clients::tool_names(&client).await;
    assert!(tools.contains(&"search_docs".to_string()), "{client_rev:?}: {tools:?}");
    let found = call(&client, "search_docs", json!({"query": "refund"})).await.unwrap();
    assert!(
        text(&found).contains("handbook-001"),
        "{client_rev:?} upstream_modern={upstream_modern}"
    );
    let meta = echoed_meta(&client).await;
    let upstream_saw = meta.get(PROTOCOL_KEY).and_then(Value::as_str);
    let want = if upstream_modern { Some("2026-07-28") } else { None };
    assert_eq!(
        upstream_saw, want,
        "{client_rev:?} → modern={upstream_modern}: upstream _meta {meta}"
    );
    client.cancel().await.unwrap();
}

#[tokio::test]
async fn every_client_revision_against_every_stdio_upstream_revision() {
    for (protocol, modern) in [("legacy", false), ("modern", true)] {
        let gw = GatewayProc::start(&demo_server_entry("demo", &format!("protocol = \"{protocol}\"")));
        for rev in Revision::BOTH {
            check(&gw.url, rev, modern).await;
        }
    }
}

#[tokio::test]
async fn every_client_revision_against_every_http_upstream_revision() {
    let upstream = demo_http_upstream();
    for (protocol, modern) in [("legacy", false), ("modern", true)] {
        let entry = format!(
            "[[servers]]\nname = \"demo\"\nurl = \"{}\"\nprotocol = \"{protocol}\"\n",
            upstream.url
        );
        let gw = GatewayProc::start(&entry);
        for rev in Revision::BOTH {
            check(&gw.url, rev, modern).await;
        }
    }
}

#[tokio::test]
async fn auto_detection_speaks_the_clients_era_when_the_server_can() {
    let gw = GatewayProc::start(&demo_server_entry("demo", ""));
    check(&gw.url, Revision::Legacy, false).await;
    check(&gw.url, Revision::Modern, true).await;
}

/// `protocol = "auto"` with a 2026-07-28-only server that answers `server/discover` only after
/// the 5 s probe window (a cold start) and refuses `initialize`: the probe stays pending while
/// `initialize` is tried, and the late discover answer makes the upstream modern.
#[tokio::test]
async fn auto_detection_waits_for_a_slow_modern_only_server() {
    let script = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("peers/slow_modern_server.py");
    // The child's environment is cleared: name the interpreter by its full path.
    let python = std::env::var("PATH")
        .unwrap_or_default()
        .split(':')
        .map(|dir| std::path::Path::new(dir).join("python3"))
        .find(|p| p.is_file())
        .expect("python3 on PATH");
    let entry = format!(
        "[[servers]]\nname = \"slow\"\ncommand = [{:?}, {:?}, \"6\"]\n",
        python.display().to_string(),
        script.display().to_string()
    );
    let gw = GatewayProc::start(&entry);
    for rev in Revision::BOTH {
        let (client, _) = clients::http(&gw.url, rev).await;
        let tools = clients::tool_names(&client).await;
        assert_eq!(tools, vec!["echo".to_string()], "{rev:?}");
        let meta = echoed_meta(&client).await;
        assert_eq!(
            meta.get(PROTOCOL_KEY).and_then(Value::as_str),
            Some("2026-07-28"),
            "{rev:?}: the upstream is spoken to in 2026-07-28; it saw _meta {meta}"
        );
        client.cancel().await.unwrap();
    }
}
