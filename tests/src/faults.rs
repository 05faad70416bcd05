//! Test kit for the fault matrix (`tests/e2e/fault_matrix.rs`): raw MCP sessions that
//! drive a load of concurrent calls and keep every answer, the upstream's call log (what
//! reached the server), the audit records a call left, a TCP proxy whose connections the
//! test can cut (PostgreSQL "down"), and a hand-written Streamable HTTP upstream that
//! crashes, hangs or answers garbage on `tools/call`.
use std::{
    path::{Path, PathBuf},
    sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
    },
    time::{Duration, Instant},
};

use serde_json::{Value, json};
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::{TcpListener, TcpStream},
    task::JoinSet,
};

/// One HTTP answer from the gateway, with the JSON-RPC message it carried (`Null` if none).
#[derive(Debug, Clone)]
pub struct Answer {
    pub status: u16,
    pub body: String,
    pub message: Value,
}

impl Answer {
    fn of(status: u16, body: String, id: Option<&Value>) -> Self {
        let messages: Vec<Value> = serde_json::from_str::<Value>(&body)
            .ok()
            .into_iter()
            .chain(
                body.lines()
                    .filter_map(|l| l.strip_prefix("data:"))
                    .filter_map(|d| serde_json::from_str(d.trim()).ok()),
            )
            .collect();
        let answers = || {
            messages
                .iter()
                .filter(|m| m.get("result").is_some() || m.get("error").is_some())
        };
        let message = answers()
            .find(|m| id.is_some() && m.get("id") == id)
            .or_else(|| answers().next())
            .cloned()
            .unwrap_or(Value::Null);
        Self { status, body, message }
    }

    /// The JSON-RPC result, if the call succeeded.
    pub fn result(&self) -> Option<&Value> {
        self.message.get("result")
    }

    /// What the caller was told went wrong: the JSON-RPC error message, or for an HTTP
    /// refusal without one, the status and body. `None` when the call succeeded.
    pub fn error_text(&self) -> Option<String> {
        if self.result().is_some() {
            return None;
        }
        Some(match self.message["error"]["message"].as_str() {
            Some(text) => text.to_owned(),
            None => format!("HTTP {}: {}", self.status, self.body),
        })
    }

    /// The decision id a refusal quotes (`error.data.decisionId`).
    pub fn decision_id(&self) -> Option<String> {
        self.message["error"]["data"]["decisionId"].as_str().map(str::to_owned)
    }
}

/// A client session over raw HTTP: every request with `headers` (e.g. a bearer token).
pub struct RawSession {
    pub http: reqwest::Client,
    pub url: String,
    pub session: Option<String>,
    pub headers: Vec<(String, String)>,
}

impl RawSession {
    /// A session that has not been opened: requests carry only `headers`.
    pub fn unopened(url: &str, headers: &[(&str, &str)]) -> Self {
        Self {
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(60))
                .build()
                .expect("http client"),
            url: url.to_owned(),
            session: None,
            headers: headers
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
        }
    }

    /// Opens a 2025-11-25 session (initialize, then `notifications/initialized`).
    pub async fn open(url: &str, headers: &[(&str, &str)]) -> Self {
        let mut s = Self::unopened(url, headers);
        let init = json!({"jsonrpc":"2.0","id":0,"method":"initialize","params":{"protocolVersion":"2025-11-25",
            "capabilities":{},"clientInfo":{"name":"fault-matrix","version":"1"}}});
        let (status, session, body) = s.post(&init).await;
        assert_eq!(status, 200, "initialize: {body}");
        s.session = Some(session.expect("Mcp-Session-Id"));
        let (status, _, body) = s
            .post(&json!({"jsonrpc":"2.0","method":"notifications/initialized"}))
            .await;
        assert_eq!(status, 202, "initialized: {body}");
        s
    }

    async fn post(&self, body: &Value) -> (u16, Option<String>, String) {
        let mut req = self
            .http
            .post(&self.url)
            .header("content-type", "application/json")
            .header("accept", "application/json, text/event-stream")
            .body(body.to_string());
        if let Some(id) = &self.session {
            req = req.header("mcp-session-id", id);
        }
        for (k, v) in &self.headers {
            req = req.header(k, v);
        }
        match req.send().await {
            Ok(resp) => {
                let status = resp.status().as_u16();
                let session = resp
                    .headers()
                    .get("mcp-session-id")
                    .and_then(|v| v.to_str().ok())
                    .map(str::to_owned);
                let text = resp.text().await.unwrap_or_else(|e| format!("<body lost: {e}>"));
                (status, session, text)
            }
            Err(e) => (0, None, format!("<no answer: {e}>")),
        }
    }

    /// Sends one JSON-RPC request and returns the answer to it.
    pub async fn request(&self, request: &Value) -> Answer {
        let (status, _, body) = self.post(request).await;
        Answer::of(status, body, request.get("id"))
    }

    /// `tools/call` of `tool` with `arguments`.
    pub async fn call(&self, id: u64, tool: &str, arguments: &Value) -> Answer {
        self.request(&tools_call(id, tool, arguments)).await
    }
}

/// A `tools/call` request.
pub fn tools_call(id: u64, tool: &str, arguments: &Value) -> Value {
    json!({"jsonrpc":"2.0","id":id,"method":"tools/call","params":{"name":tool,"arguments":arguments}})
}

/// One call of a load: who made it, with which arguments, and what came back how fast.
#[derive(Debug, Clone)]
pub struct Called {
    pub session: usize,
    pub n: usize,
    pub arguments: Value,
    pub answer: Answer,
    pub took: Duration,
}

/// Runs `calls` calls in each session, all at once (every session's calls concurrently):
/// `make(session, n)` gives the tool and the request (already built, e.g. signed).
pub async fn load<F>(sessions: &[Arc<RawSession>], calls: usize, make: F) -> Vec<Called>
where
    F: Fn(usize, usize) -> (Value, Value) + Send + Sync + 'static,
{
    let make = Arc::new(make);
    let mut set = JoinSet::new();
    for (s, session) in sessions.iter().enumerate() {
        for n in 0..calls {
            let (session, make) = (session.clone(), make.clone());
            set.spawn(async move {
                let (request, arguments) = make(s, n);
                let started = Instant::now();
                let answer = session.request(&request).await;
                Called {
                    session: s,
                    n,
                    arguments,
                    answer,
                    took: started.elapsed(),
                }
            });
        }
    }
    let mut done = Vec::new();
    while let Some(called) = set.join_next().await {
        done.push(called.expect("a caller task panicked"));
    }
    done.sort_by_key(|c| (c.session, c.n));
    done
}

/// Unique arguments for call `n` of session `s` (their digest finds the call's records).
pub fn args(tag: &str, s: usize, n: usize) -> Value {
    json!({ "call": format!("{tag}-s{s}-n{n}") })
}

/// Asserts that every call failed, each with an error text containing every one of
/// `words` (what tells the caller what went wrong), and returns the texts.
pub fn assert_all_failed(calls: &[Called], words: &[&str]) -> Vec<String> {
    assert!(!calls.is_empty(), "no calls were made");
    let mut texts = Vec::new();
    for c in calls {
        let text = c
            .answer
            .error_text()
            .unwrap_or_else(|| panic!("call s{} n{} was answered: {}", c.session, c.n, c.answer.body));
        for word in words {
            assert!(
                text.contains(word),
                "call s{} n{}: the error does not say `{word}`: {text}",
                c.session,
                c.n
            );
        }
        texts.push(text);
    }
    texts
}

/// The lowercase hex SHA-256 of the RFC 8785 form of `arguments`: a record's `args_sha256`.
pub fn digest(arguments: &Value) -> String {
    hex::encode(portcullis_mcp::canonical::canonical_sha256(arguments))
}

/// A file the demo server appends one line to per `tools/call` it receives (`--call-log`).
pub struct CallLog {
    pub path: PathBuf,
}

impl CallLog {
    pub fn in_dir(dir: &Path) -> Self {
        Self {
            path: dir.join("calls.log"),
        }
    }

    /// Tool names received so far, one per call.
    pub fn calls(&self) -> Vec<String> {
        std::fs::read_to_string(&self.path)
            .unwrap_or_default()
            .lines()
            .map(str::to_owned)
            .collect()
    }

    pub fn count(&self) -> usize {
        self.calls().len()
    }

    /// A `[[servers]]` entry running the demo server (test tools) over stdio, noting every
    /// call in this log; `extra` adds keys to the entry.
    pub fn demo_server(&self, name: &str, extra: &str) -> String {
        format!(
            "[[servers]]\nname = \"{name}\"\ncommand = [\"{}\", \"demo-server\", \"--test-tools\", \"--call-log\", \"{}\"]\n{extra}\n",
            crate::bin("portcullis").display(),
            self.path.display()
        )
    }
}

/// The audit records `portcullis audit show` prints for `config` (a running gateway's log
/// may be read).
pub fn audit_records(config: &Path) -> Vec<Value> {
    let (code, out) = crate::portcullis(&["audit", "show", "--config", config.to_str().unwrap()]);
    assert_eq!(code, 0, "audit show: {out}");
    out.lines().filter_map(|l| serde_json::from_str(l).ok()).collect()
}

/// Asserts that each call has a record of `kind` whose `field` equals `value` (matched by
/// the call's argument digest) and returns them.
pub fn assert_each_recorded(records: &[Value], calls: &[Called], kind: &str, field: &str, value: &str) -> Vec<Value> {
    calls
        .iter()
        .map(|c| {
            let want = digest(&c.arguments);
            records
                .iter()
                .find(|r| r["kind"] == kind && r["args_sha256"] == want.as_str() && r[field] == value)
                .cloned()
                .unwrap_or_else(|| {
                    let same_call: Vec<&Value> = records.iter().filter(|r| r["args_sha256"] == want.as_str()).collect();
                    panic!(
                        "call s{} n{} ({}) has no `{kind}` record with {field} = {value}; its records: {same_call:?}; \
                         the log holds {} records, the last: {:?}; the answer was {}",
                        c.session,
                        c.n,
                        c.arguments,
                        records.len(),
                        records.last(),
                        c.answer.body
                    )
                })
        })
        .collect()
}

/// A TCP proxy in front of `target` that the test can take down: `cut` closes its
/// listening socket (new connections are refused, as when the database process is gone)
/// and drops every open connection mid-stream; `restore` listens on the same address again.
/// It counts the connections it accepted (`accepted`).
pub struct CuttableProxy {
    pub addr: std::net::SocketAddr,
    target: std::net::SocketAddr,
    accepted: Arc<AtomicUsize>,
    /// Bumped on every cut: connection tasks of an older generation end.
    generation: Arc<AtomicUsize>,
    accept: std::sync::Mutex<Option<tokio::task::JoinHandle<()>>>,
}

impl CuttableProxy {
    pub async fn start(target: std::net::SocketAddr) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let proxy = Self {
            addr: listener.local_addr().unwrap(),
            target,
            accepted: Arc::new(AtomicUsize::new(0)),
            generation: Arc::new(AtomicUsize::new(0)),
            accept: std::sync::Mutex::new(None),
        };
        proxy.serve(listener);
        proxy
    }

    fn serve(&self, listener: TcpListener) {
        let (target, generation, accepted) = (self.target, self.generation.clone(), self.accepted.clone());
        let task = tokio::spawn(async move {
            loop {
                let Ok((mut client, _)) = listener.accept().await else {
                    return;
                };
                accepted.fetch_add(1, Ordering::SeqCst);
                let generation = generation.clone();
                let born = generation.load(Ordering::SeqCst);
                tokio::spawn(async move {
                    let Ok(mut server) = TcpStream::connect(target).await else {
                        return;
                    };
                    let cut = async {
                        while generation.load(Ordering::SeqCst) == born {
                            tokio::time::sleep(Duration::from_millis(10)).await;
                        }
                    };
                    tokio::select! {
                        _ = tokio::io::copy_bidirectional(&mut client, &mut server) => {}
                        _ = cut => {}
                    }
                    // Both sockets drop here: the connection is lost mid-whatever.
                });
            }
        });
        *self.accept.lock().unwrap() = Some(task);
    }

    /// How many connections it accepted so far.
    pub fn accepted(&self) -> usize {
        self.accepted.load(Ordering::SeqCst)
    }

    /// Stops listening (connections are refused) and drops every open connection.
    pub fn cut(&self) {
        if let Some(task) = self.accept.lock().unwrap().take() {
            task.abort();
        }
        self.generation.fetch_add(1, Ordering::SeqCst);
    }

    /// Listens on the same address again.
    pub async fn restore(&self) {
        let listener = TcpListener::bind(self.addr).await.unwrap();
        self.serve(listener);
    }
}

impl Drop for CuttableProxy {
    fn drop(&mut self) {
        self.cut();
    }
}

/// How the hand-written HTTP upstream misbehaves once a `tools/call` arrives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HttpFault {
    /// The server process dies: the listener and every open connection close, and later
    /// connections are refused.
    Crash,
    /// The request is read and never answered (the connection stays open).
    Hang,
    /// The answer is garbage: alternately a 200 `application/json` body that is not JSON,
    /// and bytes that are not HTTP at all.
    Garbage,
}

/// A Streamable HTTP MCP server (2025-11-25, JSON answers) written by hand for the fault
/// matrix: it answers the handshake and `tools/list` (one tool, `work`) properly and
/// misbehaves as its [`HttpFault`] says on every `tools/call`, counting them.
pub struct FaultyHttpUpstream {
    pub url: String,
    pub calls: Arc<AtomicUsize>,
    task: tokio::task::JoinHandle<()>,
}

impl FaultyHttpUpstream {
    pub async fn start(fault: HttpFault) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/mcp", listener.local_addr().unwrap());
        let calls = Arc::new(AtomicUsize::new(0));
        let counted = calls.clone();
        let task = tokio::spawn(async move {
            let crashed = Arc::new(tokio::sync::Notify::new());
            let mut conns = JoinSet::new();
            loop {
                tokio::select! {
                    accepted = listener.accept() => {
                        let Ok((stream, _)) = accepted else { return };
                        conns.spawn(serve_conn(stream, fault, counted.clone(), crashed.clone()));
                    }
                    _ = crashed.notified() => {
                        // The "process" is gone: no listener, no connections.
                        conns.abort_all();
                        return;
                    }
                }
            }
        });
        Self { url, calls, task }
    }

    pub fn calls(&self) -> usize {
        self.calls.load(Ordering::SeqCst)
    }
}

impl Drop for FaultyHttpUpstream {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn serve_conn(
    mut stream: TcpStream,
    fault: HttpFault,
    calls: Arc<AtomicUsize>,
    crashed: Arc<tokio::sync::Notify>,
) {
    let mut buf = Vec::new();
    loop {
        let Some((method, body)) = read_request(&mut stream, &mut buf).await else {
            return;
        };
        if method == "GET" {
            // No server-to-client stream.
            let _ = stream
                .write_all(b"HTTP/1.1 405 Method Not Allowed\r\ncontent-length: 0\r\n\r\n")
                .await;
            continue;
        }
        if method == "DELETE" {
            let _ = stream.write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n").await;
            continue;
        }
        let msg: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
        let id = msg.get("id").cloned();
        let answer = match msg["method"].as_str().unwrap_or_default() {
            "initialize" => json!({"jsonrpc":"2.0","id":id,"result":{"protocolVersion":"2025-11-25",
                "capabilities":{"tools":{}},"serverInfo":{"name":"faulty-http","version":"1"}}}),
            "tools/list" => json!({"jsonrpc":"2.0","id":id,"result":{"tools":[{"name":"work",
                "description":"Does some work.","inputSchema":{"type":"object"}}]}}),
            "tools/call" => {
                let seen = calls.fetch_add(1, Ordering::SeqCst);
                match fault {
                    HttpFault::Crash => {
                        crashed.notify_one();
                        std::future::pending::<()>().await;
                        return;
                    }
                    HttpFault::Hang => {
                        std::future::pending::<()>().await;
                        return;
                    }
                    HttpFault::Garbage if seen.is_multiple_of(2) => {
                        let body = b"{\"jsonrpc\":\"2.0\",\"id\": <<garbage>>";
                        let head = format!(
                            "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n",
                            body.len()
                        );
                        let _ = stream.write_all(head.as_bytes()).await;
                        let _ = stream.write_all(body).await;
                        continue;
                    }
                    HttpFault::Garbage => {
                        let _ = stream
                            .write_all(b"\x00\x01GARBAGE \xff\xfe not http at all\r\n\r\n")
                            .await;
                        return;
                    }
                }
            }
            _ if id.is_none() => {
                let _ = stream
                    .write_all(b"HTTP/1.1 202 Accepted\r\ncontent-length: 0\r\n\r\n")
                    .await;
                continue;
            }
            other => json!({"jsonrpc":"2.0","id":id,"error":{"code":-32601,"message":format!("no method {other}")}}),
        };
        let body = answer.to_string();
        let head = format!(
            "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\nmcp-session-id: faulty-1\r\ncontent-length: {}\r\n\r\n",
            body.len()
        );
        if stream.write_all(head.as_bytes()).await.is_err() || stream.write_all(body.as_bytes()).await.is_err() {
            return;
        }
    }
}

/// Reads one HTTP/1.1 request (head and a `content-length` body) from `stream`, keeping
/// what follows in `buf`: its method and body.
async fn read_request(stream: &mut TcpStream, buf: &mut Vec<u8>) -> Option<(String, Vec<u8>)> {
    let head_end = loop {
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
        let mut chunk = [0u8; 8192];
        let n = stream.read(&mut chunk).await.ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&chunk[..n]);
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).into_owned();
    let method = head.split_whitespace().next().unwrap_or_default().to_owned();
    let len: usize = head
        .lines()
        .find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.eq_ignore_ascii_case("content-length")
                .then(|| v.trim().parse().ok())?
        })
        .unwrap_or(0);
    while buf.len() < head_end + len {
        let mut chunk = [0u8; 8192];
        let n = stream.read(&mut chunk).await.ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&chunk[..n]);
    }
    let body = buf[head_end..head_end + len].to_vec();
    buf.drain(..head_end + len);
    Some((method, body))
}

/// Waits until `cond` holds, up to `limit`.
pub async fn wait_until(limit: Duration, what: &str, cond: impl Fn() -> bool) {
    let start = Instant::now();
    while !cond() {
        assert!(start.elapsed() < limit, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
