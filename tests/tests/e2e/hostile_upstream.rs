//! A hostile upstream exhausting the gateway (T23), against the real binary: a server that
//! floods a client with requests nobody answers, or with large notifications the client
//! never reads, leaves the gateway's memory bounded; the bundled demo server's `flood` test
//! tool plays the hostile server.
use std::time::{Duration, Instant};

use portcullis_e2e::{
    demo_server_entry,
    procs::GatewayProc,
    raw_http::{open_session_with, post},
};
use serde_json::{Value, json};

/// The `result` of the answer in an SSE or JSON body.
fn answer_of(body: &str) -> Value {
    let messages: Vec<Value> = body
        .lines()
        .filter_map(|l| l.strip_prefix("data:"))
        .filter_map(|d| serde_json::from_str(d.trim()).ok())
        .chain(serde_json::from_str(body).ok())
        .collect();
    messages
        .into_iter()
        .find(|m| m.get("id") == Some(&json!(1)) && (m.get("result").is_some() || m.get("error").is_some()))
        .unwrap_or_else(|| panic!("no answer in {body:.2000}"))
}

fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .unwrap()
}

const CAPABLE: &str = r#"{"roots":{},"sampling":{}}"#;

#[tokio::test]
async fn t23_requests_to_a_client_that_never_answers_are_bounded() {
    let gw = GatewayProc::start(&demo_server_entry("demo", ""));
    let sid = open_session_with(&gw.url, CAPABLE).await;
    let call = json!({"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"flood","arguments":{"requests":200,"wait_ms":5000}}});
    let r = post(&gw.url, call.to_string(), &[("mcp-session-id", &sid)]).await;
    let report = &answer_of(&r.body)["result"]["structuredContent"];
    let (refused, pending) = (report["refused"].as_u64().unwrap(), report["pending"].as_u64().unwrap());
    assert!(
        refused >= 200 - 64 && pending <= 64,
        "at most 64 requests wait for the client; the rest are refused at once: {report}"
    );
}

#[tokio::test]
async fn t23_large_notifications_for_a_client_that_never_reads_stay_bounded() {
    let mut gw = GatewayProc::start(&demo_server_entry("demo", ""));
    let sid = open_session_with(&gw.url, CAPABLE).await;
    let pid = gw.child.id();
    let before = rss_kib(pid);
    // 300 notifications of 1 MB each, related to no call, for a client with no stream open.
    let call = json!({"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"flood","arguments":{"notifications":300,"notification_bytes":1000000,"after_ms":200}}});
    let r = post(&gw.url, call.to_string(), &[("mcp-session-id", &sid)]).await;
    assert!(answer_of(&r.body).get("result").is_some(), "{}", r.body);
    let deadline = Instant::now() + Duration::from_secs(60);
    while Instant::now() < deadline && gw.logs().matches("server message dropped").count() < 250 {
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    let grown_mib = rss_kib(pid).saturating_sub(before) / 1024;
    assert!(
        grown_mib < 120,
        "the gateway holds {grown_mib} MiB more after 300 MB of unread notifications (a client's queue is bounded to 16 MiB)"
    );
    let alive = post(
        &gw.url,
        json!({"jsonrpc":"2.0","id":1,"method":"ping"}).to_string(),
        &[("mcp-session-id", &sid)],
    )
    .await;
    assert_eq!(alive.status, 200, "{}", alive.body);
    gw.terminate();
}
