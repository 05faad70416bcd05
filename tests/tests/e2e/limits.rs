//! Resource limits through the real binary (T17): the session cap holds under concurrent
//! `initialize` requests; one principal's sessions, requests in progress and request rate
//! are capped without touching another's (mutual TLS, one SVID each); and slow clients
//! (slowloris) neither lock others out nor keep their connections: many stalled request
//! heads from one address leave room for a second address, and a connection that stalls
//! mid-head, mid-body or idles past the keep-alive timeout is closed.
use std::{net::IpAddr, sync::Arc, time::Duration};

use portcullis_e2e::{
    demo_server_entry,
    pki::Pki,
    procs::{GatewayProc, relay_policy},
    raw_http::{initialize, post},
};
use portcullis_identity::IssuedSvid;
use rustls::pki_types::ServerName;
use serde_json::{Value, json};
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::{TcpSocket, TcpStream},
};
use tokio_rustls::{TlsConnector, client::TlsStream};

/// The JSON-RPC code of every limit refusal (`Overloaded`).
const OVERLOADED: i64 = -32012;

/// How long a test waits for something the gateway must do within a few seconds: only a
/// bound on a hang, never a measurement.
const PATIENCE: Duration = Duration::from_secs(45);

struct Answer {
    status: u16,
    retry_after: Option<String>,
    session: Option<String>,
    body: Value,
}

impl Answer {
    fn code(&self) -> Option<i64> {
        self.body["error"]["code"].as_i64()
    }
    fn message(&self) -> &str {
        self.body["error"]["message"].as_str().unwrap_or_default()
    }
}

async fn send(client: &reqwest::Client, url: &str, body: &Value, session: Option<&str>) -> Answer {
    let mut req = client
        .post(url)
        .header("content-type", "application/json")
        .header("accept", "application/json, text/event-stream")
        .body(body.to_string());
    if let Some(id) = session {
        req = req.header("mcp-session-id", id);
    }
    let resp = req.send().await.unwrap();
    let header = |name: &str| resp.headers().get(name).map(|v| v.to_str().unwrap().to_owned());
    let (status, retry_after, session) = (resp.status().as_u16(), header("retry-after"), header("mcp-session-id"));
    let text = resp.text().await.unwrap();
    let body = serde_json::from_str(&text).unwrap_or_else(|e| panic!("not JSON ({e}): {text}"));
    Answer {
        status,
        retry_after,
        session,
        body,
    }
}

fn init() -> Value {
    serde_json::from_str(&initialize()).unwrap()
}

fn call(id: u64, tool: &str) -> Value {
    json!({"jsonrpc":"2.0","id":id,"method":"tools/call","params":{"name":tool,"arguments":{"n":id}}})
}

fn ping(id: u64) -> Value {
    json!({"jsonrpc":"2.0","id":id,"method":"ping"})
}

/// A gateway over mutual TLS with the demo server (per-session children, `timeout_secs`
/// as given), every call permitted, and `limits` added to `[listen]`/`[limits]`.
fn tls_gateway(pki: &Pki, listen: &str, limits: &str, timeout_secs: u64) -> GatewayProc {
    pki.gateway(
        listen,
        &format!(
            "{}\n[limits]\n{limits}\n{}",
            relay_policy(),
            demo_server_entry("demo", &format!("timeout_secs = {timeout_secs}"))
        ),
    )
}

fn svid(pki: &Pki, name: &str) -> IssuedSvid {
    pki.client(&format!("spiffe://example.org/agent/{name}"), Duration::from_secs(600))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn t17_max_sessions_holds_under_concurrent_initializes() {
    let gw = GatewayProc::start_with(&format!(
        "[listen]\nhttp = \"127.0.0.1:0\"\nmax_sessions = 5\n{}\n{}",
        relay_policy(),
        demo_server_entry("demo", "")
    ));
    let tasks: Vec<_> = (0..60)
        .map(|_| {
            let url = gw.url.clone();
            tokio::spawn(async move { post(&url, initialize(), &[]).await })
        })
        .collect();
    let mut opened = 0;
    for task in tasks {
        let reply = task.await.unwrap();
        match reply.status {
            200 => opened += 1,
            503 => {
                assert_eq!(reply.error_code(), OVERLOADED, "{}", reply.body);
                let message = reply.json()["error"]["message"].as_str().unwrap().to_owned();
                assert!(
                    message.contains("limit of 5 sessions") && message.contains("listen.max_sessions"),
                    "says what to do: {message}"
                );
            }
            other => panic!("initialize answered {other}: {}", reply.body),
        }
    }
    assert_eq!(opened, 5, "exactly max_sessions sessions are opened");
    let spawned = gw.logs().matches("started stdio server").count();
    assert!(spawned <= 5, "{spawned} children were started for 5 sessions");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn t17_one_principal_cannot_hold_every_session() {
    let pki = Pki::new();
    let gw = tls_gateway(&pki, "", "max_sessions_per_principal = 2", 30);
    let (a, b) = (
        pki.http_client(Some(&svid(&pki, "a"))),
        pki.http_client(Some(&svid(&pki, "b"))),
    );
    let first = send(&a, &gw.url, &init(), None).await;
    assert_eq!(first.status, 200, "{}", first.body);
    assert_eq!(send(&a, &gw.url, &init(), None).await.status, 200);
    let refused = send(&a, &gw.url, &init(), None).await;
    assert_eq!(
        (refused.status, refused.code()),
        (429, Some(OVERLOADED)),
        "{}",
        refused.body
    );
    assert!(
        refused.message().contains("limits.max_sessions_per_principal"),
        "{}",
        refused.message()
    );
    assert_eq!(
        send(&b, &gw.url, &init(), None).await.status,
        200,
        "another principal still opens sessions"
    );
    // Closing a session gives its place back.
    let closed = a
        .delete(&gw.url)
        .header("mcp-session-id", first.session.unwrap())
        .send()
        .await
        .unwrap();
    assert!(closed.status().is_success(), "{}", closed.status());
    assert_eq!(send(&a, &gw.url, &init(), None).await.status, 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn t17_requests_in_progress_are_capped_per_principal() {
    let pki = Pki::new();
    // `hang` never answers: each call holds its place until the 10 s upstream timeout.
    let gw = tls_gateway(&pki, "", "max_concurrent_calls_per_principal = 2", 10);
    let (a, b) = (
        pki.http_client(Some(&svid(&pki, "a"))),
        pki.http_client(Some(&svid(&pki, "b"))),
    );
    let session_a = send(&a, &gw.url, &init(), None).await.session.unwrap();
    let session_b = send(&b, &gw.url, &init(), None).await.session.unwrap();
    // Four calls at once; their answers are read in the order they come.
    let (tx, mut rx) = tokio::sync::mpsc::channel(4);
    for n in 1..=4 {
        let (a, url, session, tx) = (a.clone(), gw.url.clone(), session_a.clone(), tx.clone());
        tokio::spawn(async move { tx.send(send(&a, &url, &call(n, "hang"), Some(&session)).await).await });
    }
    for _ in 0..2 {
        let answer = rx.recv().await.unwrap();
        assert_eq!(
            (answer.status, answer.code()),
            (429, Some(OVERLOADED)),
            "{}",
            answer.body
        );
        assert!(
            answer.message().contains("limits.max_concurrent_calls_per_principal"),
            "{}",
            answer.message()
        );
    }
    // Two of a's calls are in progress: a's next one is refused too, b's is answered.
    let more = send(&a, &gw.url, &call(5, "echo"), Some(&session_a)).await;
    assert_eq!(more.code(), Some(OVERLOADED), "{}", more.body);
    let echo = send(&b, &gw.url, &call(9, "echo"), Some(&session_b)).await;
    assert!(echo.body.get("result").is_some(), "b's call: {}", echo.body);
    for _ in 0..2 {
        let ended = rx.recv().await.unwrap();
        assert_ne!(
            ended.code(),
            Some(OVERLOADED),
            "admitted calls end by the upstream timeout"
        );
    }
    // Their places come back with their answers.
    let echo = send(&a, &gw.url, &call(10, "echo"), Some(&session_a)).await;
    assert!(echo.body.get("result").is_some(), "{}", echo.body);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn t17_request_rate_is_limited_per_principal() {
    let pki = Pki::new();
    let limits = "calls_per_second_per_principal = 1\ncall_burst_per_principal = 2";
    let gw = tls_gateway(&pki, "", limits, 30);
    let (a, b) = (
        pki.http_client(Some(&svid(&pki, "a"))),
        pki.http_client(Some(&svid(&pki, "b"))),
    );
    // `initialize` takes a's first token.
    let session_a = send(&a, &gw.url, &init(), None).await.session.unwrap();
    let mut refusal = None;
    for n in 1..=6 {
        let answer = send(&a, &gw.url, &ping(n), Some(&session_a)).await;
        if answer.code() == Some(OVERLOADED) {
            refusal = Some(answer);
            break;
        }
        assert!(answer.body.get("result").is_some(), "{}", answer.body);
    }
    let refusal = refusal.expect("6 pings at once exceed 1 a second with a burst of 2");
    assert_eq!(refusal.status, 429);
    assert!(
        refusal.message().contains("limits.calls_per_second_per_principal"),
        "{}",
        refusal.message()
    );
    let retry: u64 = refusal.retry_after.expect("Retry-After").parse().unwrap();
    assert!(retry >= 1, "{retry}");
    let session_b = send(&b, &gw.url, &init(), None).await.session.unwrap();
    let pong = send(&b, &gw.url, &ping(1), Some(&session_b)).await;
    assert!(pong.body.get("result").is_some(), "b has its own bucket: {}", pong.body);
}

/// A TLS connection to the gateway from `local` (any port), presenting `svid`.
async fn tls_connect(
    pki: &Pki,
    svid: &IssuedSvid,
    gw: &GatewayProc,
    local: IpAddr,
) -> std::io::Result<TlsStream<TcpStream>> {
    let socket = TcpSocket::new_v4()?;
    socket.bind((local, 0).into())?;
    let tcp = socket.connect(gw.addr).await?;
    let connector = TlsConnector::from(Arc::new(pki.client_config(Some(svid))));
    connector.connect(ServerName::from(gw.addr.ip()), tcp).await
}

/// Reads until the server closes the connection (or `PATIENCE` runs out: `None`);
/// what it sent before closing.
async fn until_closed(stream: &mut TlsStream<TcpStream>) -> Option<String> {
    let mut seen = Vec::new();
    let read = tokio::time::timeout(PATIENCE, async {
        let mut buf = [0u8; 4096];
        loop {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => seen.extend_from_slice(&buf[..n]),
            }
        }
    })
    .await;
    read.ok().map(|()| String::from_utf8_lossy(&seen).into_owned())
}

const PARTIAL_HEAD: &str = "POST /mcp HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn t17_slow_heads_from_one_address_do_not_lock_out_another() {
    // A gateway with 256 open files (its connection cap is fitted to them); the defaults
    // otherwise, so the request-head timeout (10 s) is not what frees the slots here.
    let pki = Pki::new();
    let config = format!(
        "[listen]\nhttp = \"127.0.0.1:0\"\n{}\n{}\n{}",
        pki.listen_tls(),
        relay_policy(),
        demo_server_entry("demo", "")
    );
    let gw = GatewayProc::start_with_open_files(&config, 256);
    let attacker = svid(&pki, "slow");
    // 300 authenticated connections from 127.0.0.1, each sending half a request head.
    let slow: Vec<_> = (0..300)
        .map(|_| {
            let (pki_config, gw_addr) = (Arc::new(pki.client_config(Some(&attacker))), gw.addr);
            tokio::spawn(async move {
                let held = tokio::time::timeout(Duration::from_secs(5), async {
                    let tcp = TcpStream::connect(gw_addr).await?;
                    let connector = TlsConnector::from(pki_config);
                    let mut tls = connector.connect(ServerName::from(gw_addr.ip()), tcp).await?;
                    tls.write_all(PARTIAL_HEAD.as_bytes()).await?;
                    tls.flush().await?;
                    Ok::<_, std::io::Error>(tls)
                })
                .await;
                held.ok().and_then(Result::ok)
            })
        })
        .collect();
    let mut held = Vec::new();
    for task in slow {
        held.extend(task.await.unwrap());
    }
    // Another client, from another address, while they hold on.
    let victim = reqwest::Client::builder()
        .use_preconfigured_tls(pki.client_config(Some(&svid(&pki, "victim"))))
        .local_address("127.0.0.2".parse::<IpAddr>().unwrap())
        .timeout(Duration::from_secs(20))
        .build()
        .unwrap();
    let answer = victim
        .post(&gw.url)
        .header("content-type", "application/json")
        .header("accept", "application/json, text/event-stream")
        .body(initialize())
        .send()
        .await;
    let status = answer.as_ref().map(reqwest::Response::status);
    assert!(
        status.as_ref().is_ok_and(|s| s.as_u16() == 200),
        "a second address is served while {} slow connections are held: {answer:?}",
        held.len()
    );
    drop(held);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn t17_stalled_heads_bodies_and_idle_connections_are_closed() {
    let pki = Pki::new();
    let listen = "header_timeout_secs = 1\nbody_timeout_secs = 1\nkeepalive_timeout_secs = 1\n";
    let gw = tls_gateway(&pki, listen, "", 30);
    let client = svid(&pki, "a");
    let local: IpAddr = "127.0.0.1".parse().unwrap();

    // Half a request head, then nothing.
    let mut head = tls_connect(&pki, &client, &gw, local).await.unwrap();
    head.write_all(PARTIAL_HEAD.as_bytes()).await.unwrap();
    head.flush().await.unwrap();
    assert!(until_closed(&mut head).await.is_some(), "a stalled head is closed");

    // A whole head, then half the body it announced.
    let mut body = tls_connect(&pki, &client, &gw, local).await.unwrap();
    let start = format!(
        "{PARTIAL_HEAD}Accept: application/json, text/event-stream\r\nContent-Length: 200\r\n\r\n{{\"jsonrpc\":"
    );
    body.write_all(start.as_bytes()).await.unwrap();
    body.flush().await.unwrap();
    let said = until_closed(&mut body).await.expect("a stalled body is closed");
    assert!(said.starts_with("HTTP/1.1 408"), "{said}");
    assert!(said.contains("listen.body_timeout_secs"), "says which setting: {said}");

    // One whole request, then silence on the kept-alive connection.
    let mut idle = tls_connect(&pki, &client, &gw, local).await.unwrap();
    idle.write_all(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        .await
        .unwrap();
    idle.flush().await.unwrap();
    let said = until_closed(&mut idle).await.expect("an idle connection is closed");
    assert!(said.starts_with("HTTP/1.1 200"), "{said}");

    // None of that stopped the front.
    let ok = send(&pki.http_client(Some(&client)), &gw.url, &init(), None).await;
    assert_eq!(ok.status, 200, "{}", ok.body);
}
