//! Method smuggling (T21): a request method sent as a notification, and request methods
//! that used to skip the authorise stage (`completion/complete`, `logging/setLevel`),
//! against the real binary and a real upstream that records every notification it gets.
use std::{
    process::Stdio,
    time::{Duration, Instant},
};

use portcullis_e2e::{
    bin, demo_server_entry, portcullis,
    procs::{GatewayProc, relay_policy, write_config},
    raw_http::{open_session, post},
};
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};

/// JSON-RPC code of a gateway refusal.
const DENIED: i64 = -32013;

/// Notifications a hostile client sends hoping a server acts on them.
fn smuggled() -> Vec<Value> {
    vec![
        json!({"jsonrpc":"2.0","method":"tools/call","params":{"name":"delete_record","arguments":{"record_id":"r-1"}}}),
        json!({"jsonrpc":"2.0","method":"resources/read","params":{"uri":"demo://customers/index"}}),
        json!({"jsonrpc":"2.0","method":"completion/complete","params":{"ref":{"type":"ref/prompt","name":"summarize"},"argument":{"name":"topic","value":"a"}}}),
        json!({"jsonrpc":"2.0","method":"vendor/act-now","params":{}}),
    ]
}

/// The notifications the demo server saw, from its `notifications_seen` tool.
fn seen(answer: &Value) -> Vec<String> {
    let list = &answer["result"]["structuredContent"]["notifications"];
    serde_json::from_value(list.clone()).unwrap_or_else(|_| panic!("no notification list in {answer}"))
}

fn seen_request(id: u64) -> String {
    json!({"jsonrpc":"2.0","id":id,"method":"tools/call","params":{"name":"notifications_seen","arguments":{}}})
        .to_string()
}

/// The decision records of the gateway's audit log.
fn decisions(config: &std::path::Path) -> Vec<Value> {
    let (code, out) = portcullis(&[
        "audit",
        "show",
        "--config",
        config.to_str().unwrap(),
        "--kind",
        "decision",
    ]);
    assert_eq!(code, 0, "{out}");
    out.lines().filter_map(|l| serde_json::from_str(l).ok()).collect()
}

fn assert_refusals_recorded(records: &[Value]) {
    for method in ["tools/call", "resources/read", "completion/complete", "vendor/act-now"] {
        let refused = records
            .iter()
            .find(|r| r["method"] == method && r["decision"] == "deny" && r["ext"]["message"] == "notification");
        assert!(
            refused.is_some_and(|r| r["principal"]["workload"].is_string()),
            "no deny record for the `{method}` notification: {records:?}"
        );
    }
}

#[tokio::test]
async fn t21_acting_notifications_over_http_are_refused_recorded_and_never_delivered() {
    // Every call permitted, the caller anonymous: the refusal does not depend on policy.
    let gw = GatewayProc::start(&demo_server_entry("demo", ""));
    let sid = open_session(&gw.url).await;
    let h = [("mcp-session-id", sid.as_str())];
    let initialized = json!({"jsonrpc":"2.0","method":"notifications/initialized"}).to_string();
    assert_eq!(post(&gw.url, initialized, &h).await.status, 202);
    // A first call connects the upstream, so a relayed notification has somewhere to go.
    let first = post(&gw.url, seen_request(1), &h).await;
    assert_eq!(seen(&first.json()), Vec::<String>::new(), "{}", first.body);

    for notification in smuggled() {
        let r = post(&gw.url, notification.to_string(), &h).await;
        assert_eq!(r.status, 403, "{notification}: {}", r.body);
        assert_eq!(r.error_code(), DENIED, "{}", r.body);
        assert!(
            r.json()["error"]["message"].as_str().unwrap().contains("refused"),
            "{}",
            r.body
        );
    }
    // A notification a client may send is relayed: the probe sees what passes.
    let roots = json!({"jsonrpc":"2.0","method":"notifications/roots/list_changed"}).to_string();
    assert_eq!(post(&gw.url, roots, &h).await.status, 202);
    let deadline = Instant::now() + Duration::from_secs(10);
    let got = loop {
        let got = seen(&post(&gw.url, seen_request(2), &h).await.json());
        if !got.is_empty() || Instant::now() > deadline {
            break got;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(
        got,
        ["notifications/roots/list_changed"],
        "only the defined notification arrived"
    );
    assert_refusals_recorded(&decisions(&gw.config.path));
}

#[tokio::test]
async fn t21_acting_notifications_on_the_stdio_front_are_refused_recorded_and_never_delivered() {
    let config = write_config(&format!("{}{}", relay_policy(), demo_server_entry("demo", "")));
    let mut child = tokio::process::Command::new(bin("portcullis"))
        .args(["stdio", "--config"])
        .arg(&config.path)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut send = async |v: String| {
        stdin.write_all(format!("{v}\n").as_bytes()).await.unwrap();
    };
    send(portcullis_e2e::raw_http::initialize()).await;
    send(json!({"jsonrpc":"2.0","method":"notifications/initialized"}).to_string()).await;
    send(seen_request(1)).await;
    for notification in smuggled() {
        send(notification.to_string()).await;
    }
    send(json!({"jsonrpc":"2.0","method":"notifications/roots/list_changed"}).to_string()).await;
    let mut got = Vec::new();
    for id in 2..200u64 {
        send(seen_request(id)).await;
        let answer = loop {
            let line = tokio::time::timeout(Duration::from_secs(20), lines.next_line())
                .await
                .expect("an answer within 20 s")
                .unwrap()
                .expect("stdout open");
            let v: Value = serde_json::from_str(&line).unwrap();
            assert!(v.get("id").is_some(), "a notification was answered: {v}");
            if v["id"] == id {
                break v;
            }
        };
        got = seen(&answer);
        if !got.is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(
        got,
        ["notifications/roots/list_changed"],
        "only the defined notification arrived"
    );
    drop(stdin);
    tokio::time::timeout(Duration::from_secs(20), child.wait())
        .await
        .expect("portcullis stdio exits when its stdin closes")
        .unwrap();
    assert_refusals_recorded(&decisions(&config.path));
}

/// Under the default tier policies an anonymous caller is denied everything: completion and
/// the log level too, each with a decision id and a record.
#[tokio::test]
async fn t21_completion_and_set_level_are_decided_and_recorded() {
    let gw = GatewayProc::start(&format!(
        "[policy]\nrequire_reason = false\n{}",
        demo_server_entry("demo", "")
    ));
    let sid = open_session(&gw.url).await;
    let h = [("mcp-session-id", sid.as_str())];
    let complete = json!({"jsonrpc":"2.0","id":1,"method":"completion/complete","params":{"ref":{"type":"ref/prompt","name":"summarize"},"argument":{"name":"topic","value":"a"}}});
    let set_level = json!({"jsonrpc":"2.0","id":2,"method":"logging/setLevel","params":{"level":"debug"}});
    for request in [complete, set_level] {
        let r = post(&gw.url, request.to_string(), &h).await;
        assert_eq!(r.error_code(), DENIED, "{request}: {}", r.body);
        assert!(r.json()["error"]["data"]["decisionId"].is_string(), "{}", r.body);
    }
    let records = decisions(&gw.config.path);
    for method in ["completion/complete", "logging/setLevel"] {
        assert!(
            records
                .iter()
                .any(|r| r["method"] == method && r["decision"] == "deny" && r["server"] == "demo"),
            "no deny record for {method}: {records:?}"
        );
    }
}

/// With a policy that permits them, both methods are forwarded and both records written.
#[tokio::test]
async fn t21_permitted_completion_and_set_level_are_forwarded_and_recorded() {
    let gw = GatewayProc::start(&demo_server_entry("demo", ""));
    let sid = open_session(&gw.url).await;
    let h = [("mcp-session-id", sid.as_str())];
    let set_level = json!({"jsonrpc":"2.0","id":2,"method":"logging/setLevel","params":{"level":"debug"}});
    let r = post(&gw.url, set_level.to_string(), &h).await;
    assert_eq!(r.json()["result"], json!({}), "{}", r.body);
    let complete = json!({"jsonrpc":"2.0","id":3,"method":"completion/complete","params":{"ref":{"type":"ref/prompt","name":"summarize"},"argument":{"name":"topic","value":"a"}}});
    let r = post(&gw.url, complete.to_string(), &h).await;
    assert_ne!(r.json()["error"]["code"], DENIED, "{}", r.body);
    let (code, out) = portcullis(&[
        "audit",
        "show",
        "--config",
        gw.config.path.to_str().unwrap(),
        "--kind",
        "call",
    ]);
    assert_eq!(code, 0, "{out}");
    for method in ["completion/complete", "logging/setLevel"] {
        assert!(
            out.contains(&format!("\"method\":\"{method}\"")),
            "no call record for {method}: {out}"
        );
    }
}
