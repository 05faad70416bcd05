//! The HTTP front at the wire level: guards (T6), limits (T17), strict parsing
//! (T13, T22), sessions (T3), SSE answers, and the 2026-07-28 header rules.
use portcullis_e2e::{
    demo_server_entry,
    procs::GatewayProc,
    raw_http::{open_session, post},
};
use serde_json::{Value, json};

fn gateway() -> GatewayProc {
    GatewayProc::start_with(&format!(
        "[listen]\nhttp = \"127.0.0.1:0\"\nallowed_origins = [\"https://app.example\"]\n[limits]\nmax_message_bytes = 65536\nmax_json_depth = 16\n[policy]\ncedar = [\"{}\"]\n{}",
        portcullis_e2e::procs::allow_all_policy().display(),
        demo_server_entry("demo", "")
    ))
}

#[tokio::test]
async fn t06_foreign_host_and_origin_are_refused_with_403() {
    let gw = gateway();
    let list = json!({"jsonrpc":"2.0","id":1,"method":"tools/list"}).to_string();
    let cases = [
        (vec![("host", "evil.example")], 403),
        (vec![("host", "127.0.0.1.evil.example")], 403),
        (vec![("origin", "http://evil.example")], 403),
        (vec![("origin", "null")], 403),
        (vec![("origin", "https://app.example")], 400), // allowed; then fails for lack of a session
    ];
    for (headers, want) in cases {
        let r = post(&gw.url, list.clone(), &headers).await;
        assert_eq!(r.status, want, "{headers:?}: {}", r.body);
    }
    assert!(
        gw.logs_with("evil.example").contains("evil.example"),
        "refusals are logged"
    );
}

#[tokio::test]
async fn t17_t13_malformed_and_oversized_messages_get_clear_errors() {
    let gw = gateway();
    let sid = open_session(&gw.url).await;
    let h = [("mcp-session-id", sid.as_str())];
    let huge = format!(
        r#"{{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{{"name":"echo","arguments":{{"x":"{}"}}}}}}"#,
        "a".repeat(70_000)
    );
    let deep = format!(
        r#"{{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{{"name":"echo","arguments":{}{}}}}}"#,
        "[".repeat(40),
        "]".repeat(40)
    );
    let cases: Vec<(String, u16, i64, &str)> = vec![
        (huge, 413, -32600, "over the limit"),
        (deep, 400, -32700, "nests deeper than 16"),
        (
            r#"{"jsonrpc":"2.0","id":1,"id":2,"method":"tools/list"}"#.into(),
            400,
            -32700,
            "duplicate key `id`",
        ),
        (
            r#"[{"jsonrpc":"2.0","id":1,"method":"tools/list"}]"#.into(),
            400,
            -32600,
            "batches",
        ),
        (
            r#"{"jsonrpc":"2.0","id":1,"method":"tools/list""#.into(),
            400,
            -32700,
            "not valid JSON",
        ),
        (
            r#"{"jsonrpc":"1.0","id":1,"method":"tools/list"}"#.into(),
            400,
            -32600,
            "jsonrpc",
        ),
    ];
    for (body, status, code, text) in cases {
        let r = post(&gw.url, body, &h).await;
        assert_eq!((r.status, r.error_code()), (status, code), "{}", r.body);
        assert!(
            r.json()["error"]["message"].as_str().unwrap().contains(text),
            "{}",
            r.body
        );
    }
    let r = reqwest::Client::new()
        .post(&gw.url)
        .header("content-type", "text/plain")
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 415);
}

#[tokio::test]
async fn t22_keys_that_differ_only_in_case_are_refused_before_any_stage() {
    let gw = gateway();
    let sid = open_session(&gw.url).await;
    let h = [("mcp-session-id", sid.as_str())];
    // Each names `crash` where the gateway reads the tool name: had one been forwarded, the
    // session's demo server (serde, case-sensitive) would have run it and exited.
    let call = |params: &str| format!(r#"{{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{params}}}"#);
    let cases = [
        (call(r#"{"name":"crash","Name":"echo"}"#), "`name` and `Name`"),
        (
            call(r#"{"Name":"echo","name":"crash"}"#),
            "`Name` is not the protocol field `name`",
        ),
        (
            call(r#"{"name":"crash","arguments":{},"Arguments":{"text":"x"}}"#),
            "`arguments` and `Arguments`",
        ),
        (call(r#"{"name":"crash","argumentſ":{}}"#), "`argumentſ`"),
        (
            call(r#"{"name":"crash","arguments":{"key":1,"\u212aey":2}}"#),
            "`key` and `\u{212a}ey`",
        ),
        (
            r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","METHOD":"tools/list","params":{"name":"crash"}}"#.into(),
            "`METHOD`",
        ),
    ];
    for (body, text) in cases {
        let r = post(&gw.url, body, &h).await;
        assert_eq!((r.status, r.error_code()), (400, -32700), "{}", r.body);
        let message = r.json()["error"]["message"].as_str().unwrap().to_owned();
        assert!(message.contains(text), "{message} names {text}");
    }
    let echo = call(r#"{"name":"echo","arguments":{"Name":"still here"}}"#);
    let r = post(&gw.url, echo, &h).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(
        r.body.contains("still here") && !r.body.contains("\"error\""),
        "{}",
        r.body
    );
}

#[tokio::test]
async fn t03_sessions_are_random_bound_and_closed() {
    let gw = gateway();
    let a = open_session(&gw.url).await;
    let b = open_session(&gw.url).await;
    assert_ne!(a, b);
    for sid in [&a, &b] {
        assert_eq!(sid.len(), 32, "128-bit ids");
        assert!(sid.chars().all(|c| c.is_ascii_hexdigit()));
    }
    let list = json!({"jsonrpc":"2.0","id":1,"method":"tools/list"}).to_string();
    let r = post(&gw.url, list.clone(), &[]).await;
    assert_eq!(r.status, 400, "no session: {}", r.body);
    let r = post(
        &gw.url,
        list.clone(),
        &[("mcp-session-id", "00000000000000000000000000000000")],
    )
    .await;
    assert_eq!(r.status, 404, "unknown session: {}", r.body);
    let r = post(&gw.url, list.clone(), &[("mcp-session-id", &a)]).await;
    assert_eq!(r.status, 200);
    let del = reqwest::Client::new()
        .delete(&gw.url)
        .header("mcp-session-id", &a)
        .send()
        .await
        .unwrap();
    assert_eq!(del.status().as_u16(), 200);
    let r = post(&gw.url, list.clone(), &[("mcp-session-id", &a)]).await;
    assert_eq!(r.status, 404, "closed session: {}", r.body);
    let r = post(&gw.url, list, &[("mcp-session-id", &b)]).await;
    assert_eq!(r.status, 200, "other session unaffected");
    let get = reqwest::Client::new()
        .get(&gw.url)
        .header("accept", "text/event-stream")
        .send()
        .await
        .unwrap();
    assert_eq!(get.status().as_u16(), 405, "GET without a session");
}

#[tokio::test]
async fn sse_answer_carries_progress_before_the_result() {
    let gw = gateway();
    let sid = open_session(&gw.url).await;
    let call = json!({"jsonrpc":"2.0","id":"p1","method":"tools/call","params":{"name":"progress","arguments":{"steps":2},"_meta":{"progressToken":"tok"}}});
    let r = post(&gw.url, call.to_string(), &[("mcp-session-id", &sid)]).await;
    assert_eq!(r.status, 200);
    assert!(r.content_type.starts_with("text/event-stream"), "{}", r.content_type);
    let events: Vec<Value> = r
        .body
        .lines()
        .filter_map(|l| l.strip_prefix("data: "))
        .map(|d| serde_json::from_str(d).unwrap())
        .collect();
    let methods: Vec<&str> = events
        .iter()
        .map(|e| e["method"].as_str().unwrap_or("<result>"))
        .collect();
    assert_eq!(
        methods,
        ["notifications/progress", "notifications/progress", "<result>"],
        "{}",
        r.body
    );
    assert_eq!(events[2]["id"], "p1", "the client's id comes back");
}

fn modern_call(name: &str) -> String {
    json!({"jsonrpc":"2.0","id":9,"method":"tools/call","params":{"name":name,"arguments":{"query":"x"},
        "_meta":{"io.modelcontextprotocol/protocolVersion":"2026-07-28","io.modelcontextprotocol/clientCapabilities":{}}}}).to_string()
}

#[tokio::test]
async fn stateless_requests_must_agree_with_their_headers() {
    let gw = gateway();
    let body = modern_call("search_docs");
    let ok = [
        ("mcp-protocol-version", "2026-07-28"),
        ("mcp-method", "tools/call"),
        ("mcp-name", "search_docs"),
    ];
    let r = post(&gw.url, body.clone(), &ok).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(r.session.is_none(), "2026-07-28 has no sessions");
    let b64 = "=?base64?c2VhcmNoX2RvY3M=?="; // "search_docs"
    let r = post(&gw.url, body.clone(), &[ok[0], ok[1], ("mcp-name", b64)]).await;
    assert_eq!(r.status, 200, "base64 sentinel decoded: {}", r.body);
    let cases: Vec<(Vec<(&str, &str)>, &str)> = vec![
        (vec![ok[0], ("mcp-method", "tools/list"), ok[2]], "Mcp-Method"),
        (vec![ok[0], ok[1], ("mcp-name", "delete_record")], "Mcp-Name"),
        (vec![ok[0], ok[2]], "Mcp-Method"),
        (vec![ok[0], ok[1]], "Mcp-Name"),
        (vec![ok[1], ok[2]], "MCP-Protocol-Version"),
    ];
    for (headers, named) in cases {
        let r = post(&gw.url, body.clone(), &headers).await;
        assert_eq!((r.status, r.error_code()), (400, -32020), "{headers:?}: {}", r.body);
        assert!(r.body.contains(named), "{named}: {}", r.body);
    }
    let future = body.replace("2026-07-28", "2027-01-01");
    let r = post(&gw.url, future, &[("mcp-protocol-version", "2027-01-01"), ok[1], ok[2]]).await;
    assert_eq!((r.status, r.error_code()), (400, -32022), "{}", r.body);
    assert_eq!(r.json()["error"]["data"]["supported"], json!(["2026-07-28"]));
}
