//! SSE answers end to end, against a real HTTP server on loopback (`test_server`): each
//! answer reaches the caller (straight back or on the link, in order), the connection is
//! reused once the stream ends, a broken stream resumes, and a stream that does not end is
//! neither waited for nor kept.
use std::{sync::atomic::Ordering, time::Duration};

use portcullis_mcp::{Limits, Message, message};
use serde_json::{Value, json};

use crate::{
    DirectRequests, HttpClient, Link, LinkEvent,
    http_upstream::{HttpSpec, connect_http},
    test_server::{SseAnswer, SseServer, sse_server},
};

/// Guards against a hang only; nothing here is timed.
const HANG: Duration = Duration::from_secs(30);

fn link(url: &str, limits: Limits) -> (Link, DirectRequests) {
    let spec = HttpSpec {
        name: "up".into(),
        url: url.to_owned(),
        headers: Vec::new(),
        limits,
    };
    let link = connect_http(spec, HttpClient::default());
    let direct = link.direct.clone().unwrap();
    (link, direct)
}

fn call(id: u64) -> Message {
    message::request(json!(id), "tools/call", json!({"name": "echo", "arguments": {"n": id}}))
}

async fn next_message(link: &mut Link) -> (Message, Option<Value>) {
    match tokio::time::timeout(HANG, link.rx.recv()).await {
        Ok(Some(LinkEvent::Message { msg, related })) => (msg, related),
        other => panic!("expected a message on the link, got {other:?}"),
    }
}

/// Call `id` returns its answer straight back while the stream is still open.
async fn answered_at_once(direct: &DirectRequests, id: u64) {
    let answer = tokio::time::timeout(HANG, direct.request(call(id))).await;
    let answer = answer.expect("the call returns once its answer is there");
    assert_eq!(answer.unwrap().id(), Some(&json!(id)));
}

/// Waits until `n` of the server's connections were closed by the client.
async fn closed_by_the_client(server: &SseServer, n: usize) {
    let mut ended = server.ended.clone();
    let closed = tokio::time::timeout(HANG, ended.wait_for(|ended| *ended == n)).await;
    assert!(closed.is_ok(), "{n} open stream(s) closed by the client");
}

/// Issue 21 item 0: servers built on the official SDKs answer `tools/call` as an SSE
/// stream that ends after the answer. Its connection is used again (it was closed, and
/// every call dialled a new one).
#[tokio::test]
async fn sse_answers_leave_their_connection_to_the_next_call() {
    let server = sse_server(SseAnswer::Ends { notes: 0 }).await;
    let (mut link, direct) = link(server.url.as_str(), Limits::default());
    for id in 1..=5 {
        let answer = match direct.request(call(id)).await {
            Some(answer) => answer,
            None => next_message(&mut link).await.0,
        };
        assert_eq!(answer.id(), Some(&json!(id)));
        assert_eq!(answer.result().unwrap()["echo"]["arguments"]["n"], id);
    }
    assert_eq!(
        server.connections.load(Ordering::SeqCst),
        1,
        "one connection carried all five calls"
    );
    // The answer was the first message on its stream: it came straight back each time.
    assert!(link.rx.try_recv().is_err(), "nothing went through the link");
}

/// Notifications before the answer still come first, in order, then the answer; the
/// connection is still reused.
#[tokio::test]
async fn messages_before_the_answer_come_first_and_the_connection_is_reused() {
    let server = sse_server(SseAnswer::Ends { notes: 2 }).await;
    let (mut link, direct) = link(server.url.as_str(), Limits::default());
    for id in 1..=3 {
        assert!(
            direct.request(call(id)).await.is_none(),
            "the answer follows them on the link"
        );
        let mut seen = Vec::new();
        for _ in 0..3 {
            let (msg, related) = next_message(&mut link).await;
            assert_eq!(related, Some(json!(id)));
            seen.push(match msg.method() {
                Some(method) => format!("{method} {}", msg.params().unwrap()["progress"]),
                None => format!("answer {}", msg.id().unwrap()),
            });
        }
        let expected = [
            "notifications/progress 1".to_owned(),
            "notifications/progress 2".to_owned(),
            format!("answer {id}"),
        ];
        assert_eq!(seen, expected);
    }
    assert_eq!(server.connections.load(Ordering::SeqCst), 1);
}

/// Over reqwest (here: a URL with user info; `https://` in use) the stream is read to its
/// end as well and reqwest's pool keeps the connection. Its pool does not wait for a
/// connection whose stream end is being read: a call right behind may dial one more.
#[tokio::test]
async fn sse_answers_over_reqwest_reuse_its_pooled_connections() {
    let server = sse_server(SseAnswer::Ends { notes: 1 }).await;
    let url = server.url.as_str().replace("http://", "http://user:pw@");
    let (mut link, direct) = link(&url, Limits::default());
    for id in 1..=6 {
        assert!(direct.request(call(id)).await.is_none());
        assert!(next_message(&mut link).await.0.method().is_some());
        assert_eq!(next_message(&mut link).await.0.id(), Some(&json!(id)));
    }
    let connections = server.connections.load(Ordering::SeqCst);
    assert!(connections <= 2, "six calls over {connections} connections");
}

/// A stream the server keeps open after the answer holds up neither the call nor, for
/// long, its connection: the call returns with the answer, the next call gets a
/// connection of its own, and each open stream is closed after `DRAIN_TIME`.
#[tokio::test]
async fn a_stream_left_open_after_the_answer_holds_neither_the_call_nor_its_connection() {
    let server = sse_server(SseAnswer::StaysOpen).await;
    let (_link, direct) = link(server.url.as_str(), Limits::default());
    for id in 1..=2 {
        answered_at_once(&direct, id).await;
    }
    assert_eq!(server.connections.load(Ordering::SeqCst), 2);
    closed_by_the_client(&server, 2).await;
}

/// A stream that keeps sending after the answer is read up to the size limit, then
/// dropped with its connection.
#[tokio::test]
async fn a_stream_chattering_after_the_answer_is_cut_at_the_size_limit() {
    let server = sse_server(SseAnswer::Chatters).await;
    let limits = Limits {
        max_bytes: 16 * 1024,
        ..Limits::default()
    };
    let (_link, direct) = link(server.url.as_str(), limits);
    answered_at_once(&direct, 1).await;
    closed_by_the_client(&server, 1).await;
}

/// A stream that breaks before the answer is resumed from its last event id; what came
/// before the break and the answer on the resumed stream arrive in order.
#[tokio::test]
async fn a_stream_broken_before_the_answer_resumes_from_its_last_event_id() {
    let server = sse_server(SseAnswer::Breaks).await;
    let (mut link, direct) = link(server.url.as_str(), Limits::default());
    assert!(direct.request(call(7)).await.is_none());
    let (note, related) = next_message(&mut link).await;
    assert_eq!(
        (note.method(), related),
        (Some("notifications/progress"), Some(json!(7)))
    );
    let (answer, _) = next_message(&mut link).await;
    assert_eq!(answer.id(), Some(&json!(7)));
    assert_eq!(answer.result().unwrap()["resumed"], true);
    let heads = server.heads.lock().unwrap().clone();
    let resumed = heads
        .iter()
        .find(|h| h.starts_with("GET "))
        .expect("a GET resumed the stream");
    assert!(
        resumed.to_ascii_lowercase().contains("last-event-id: ev-1\r\n"),
        "{resumed}"
    );
}
