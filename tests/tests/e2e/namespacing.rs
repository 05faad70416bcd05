//! Several servers behind one endpoint (T9): names are namespaced, routing
//! strips the prefix, and an un-namespaced or foreign name is refused.
use portcullis_e2e::{
    clients::{self, Revision, call, text},
    demo_server_entry,
    procs::GatewayProc,
};
use serde_json::json;

#[tokio::test]
async fn t09_two_servers_are_namespaced_and_routed() {
    let config = format!("{}{}", demo_server_entry("alpha", ""), demo_server_entry("beta", ""));
    let gw = GatewayProc::start(&config);
    for rev in Revision::BOTH {
        let (client, _) = clients::http(&gw.url, rev).await;
        let tools = clients::tool_names(&client).await;
        assert!(tools.contains(&"alpha__search_docs".to_string()), "{tools:?}");
        assert!(tools.contains(&"beta__search_docs".to_string()), "{tools:?}");
        assert!(
            !tools.contains(&"search_docs".to_string()),
            "no un-namespaced names: {tools:?}"
        );
        let found = call(&client, "beta__search_docs", json!({"query": "refund"}))
            .await
            .unwrap();
        assert!(text(&found).contains("handbook-001"));
        let err = call(&client, "search_docs", json!({"query": "refund"}))
            .await
            .expect_err("un-namespaced");
        assert!(err.to_string().contains("names no server"), "{err}");
        let err = call(&client, "gamma__search_docs", json!({"query": "refund"}))
            .await
            .expect_err("unknown server");
        assert!(err.to_string().contains("names no server"), "{err}");
        let resources = client.list_all_resources().await.unwrap();
        assert!(
            resources
                .iter()
                .all(|r| r.uri.starts_with("alpha+") || r.uri.starts_with("beta+"))
        );
        let uri = resources[0].uri.clone();
        let read = client
            .read_resource(rmcp::model::ReadResourceRequestParams::new(uri.clone()))
            .await
            .unwrap();
        let json = serde_json::to_value(&read.contents[0]).unwrap();
        assert_eq!(json["uri"], uri.as_str(), "read result carries the namespaced URI");
        client.cancel().await.unwrap();
    }
}
