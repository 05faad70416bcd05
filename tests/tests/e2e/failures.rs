//! Upstream failures end in clean JSON-RPC errors, never a hang: a crashed
//! child, a child that never answers, a child that writes garbage. Sessions are
//! isolated: one session's crashed child does not affect another's (T3).
use std::time::{Duration, Instant};

use portcullis_e2e::{
    clients::{self, Revision, call},
    demo_server_entry,
    procs::GatewayProc,
};
use serde_json::json;

fn error_text(e: rmcp::ServiceError) -> String {
    e.to_string()
}

#[tokio::test]
async fn crashed_child_gives_a_clean_error_and_other_sessions_carry_on() {
    let gw = GatewayProc::start(&demo_server_entry("demo", ""));
    let (a, _) = clients::http(&gw.url, Revision::Legacy).await;
    let (b, _) = clients::http(&gw.url, Revision::Legacy).await;
    let started = Instant::now();
    let err = call(&a, "crash", json!({})).await.expect_err("crash must fail");
    assert!(started.elapsed() < Duration::from_secs(10), "no hang");
    let text = error_text(err);
    assert!(text.contains("unavailable") && text.contains("exited"), "{text}");
    let again = call(&a, "search_docs", json!({"query": "refund"}))
        .await
        .expect_err("dead session");
    assert!(error_text(again).contains("unavailable"));
    let ok = call(&b, "search_docs", json!({"query": "refund"})).await;
    assert!(ok.is_ok(), "session b has its own child: {ok:?}");
}

#[tokio::test]
async fn hung_child_times_out_cleanly() {
    let gw = GatewayProc::start(&demo_server_entry("demo", "timeout_secs = 2"));
    let (client, _) = clients::http(&gw.url, Revision::Legacy).await;
    let started = Instant::now();
    let err = call(&client, "hang", json!({})).await.expect_err("hang must time out");
    assert!(started.elapsed() < Duration::from_secs(15));
    assert!(error_text(err).contains("did not answer within"), "timeout error");
    // The server was told to stop, and the session still works.
    let ok = call(&client, "search_docs", json!({"query": "refund"})).await;
    assert!(ok.is_ok(), "{ok:?}");
}

#[tokio::test]
async fn malformed_output_from_child_fails_closed() {
    let gw = GatewayProc::start(&demo_server_entry("demo", ""));
    let (client, _) = clients::http(&gw.url, Revision::Legacy).await;
    let err = call(&client, "garbage", json!({}))
        .await
        .expect_err("garbage must fail the call");
    assert!(error_text(err).contains("malformed output"), "error names the cause");
    assert!(
        gw.logs_with("malformed output from upstream")
            .contains("malformed output from upstream")
    );
}

#[tokio::test]
async fn modern_client_gets_a_fresh_child_after_a_crash() {
    let gw = GatewayProc::start(&demo_server_entry("demo", ""));
    let (client, _) = clients::http(&gw.url, Revision::Modern).await;
    assert!(call(&client, "crash", json!({})).await.is_err());
    let ok = call(&client, "search_docs", json!({"query": "refund"})).await;
    assert!(ok.is_ok(), "stateless clients reconnect: {ok:?}");
}

#[tokio::test]
async fn sigterm_lets_in_flight_calls_answer_and_closes_streams() {
    let mut gw = GatewayProc::start(&demo_server_entry("demo", "timeout_secs = 3"));
    let (client, _) = clients::http(&gw.url, Revision::Legacy).await;
    // rmcp's legacy client holds a GET stream open: shutdown must not wait on it forever.
    let pending = tokio::spawn(async move { call(&client, "hang", json!({})).await.map_err(|e| e.to_string()) });
    tokio::time::sleep(Duration::from_millis(300)).await;
    let status = tokio::task::spawn_blocking(move || {
        let status = gw.terminate();
        (status, gw.logs())
    })
    .await
    .unwrap();
    assert!(status.0.success(), "exit status {:?}; logs:\n{}", status.0, status.1);
    let answer = pending.await.unwrap();
    let text = answer.expect_err("the hung call ends in its timeout error");
    assert!(
        text.contains("did not answer within"),
        "in-flight call got its answer, not a reset: {text}"
    );
}

#[tokio::test]
async fn shared_mode_serves_every_session_from_one_child() {
    let gw = GatewayProc::start(&demo_server_entry("demo", "shared = true"));
    let (a, _) = clients::http(&gw.url, Revision::Legacy).await;
    let (b, _) = clients::http(&gw.url, Revision::Legacy).await;
    assert!(call(&b, "search_docs", json!({"query": "refund"})).await.is_ok());
    // One child for both sessions: when it dies, both see it (contrast with the per-session test above).
    assert!(call(&a, "crash", json!({})).await.is_err());
    let err = call(&b, "search_docs", json!({"query": "refund"}))
        .await
        .expect_err("b shared the crashed child");
    assert!(err.to_string().contains("unavailable"), "{err}");
    let started = gw.logs().matches("started stdio server").count();
    assert_eq!(started, 1, "exactly one child was started for two sessions");
}

/// T23: a server that closes its stdout but keeps running fails the pending call at once
/// with a message that says so (not after `timeout_secs`), and is stopped.
#[tokio::test]
async fn t23_a_server_that_closes_its_stdout_fails_its_calls_at_once() {
    let script = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("peers/stdout_closing_server.py");
    let gw = GatewayProc::start(&format!(
        "[[servers]]\nname = \"closing\"\ncommand = [\"python3\", \"{}\"]\ntimeout_secs = 120\n",
        script.display()
    ));
    let (client, _) = clients::http(&gw.url, Revision::Legacy).await;
    let err = call(&client, "echo", json!({}))
        .await
        .expect_err("the call cannot be answered");
    let text = error_text(err);
    assert!(text.contains("closed its stdout"), "{text}");
    assert!(!text.contains("did not answer within"), "not the timeout: {text}");
}
