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
