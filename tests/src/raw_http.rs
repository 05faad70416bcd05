//! The Streamable HTTP front at the wire level: POST exact bytes with exact headers and
//! read status, content type, session id and body, for tests that must send what no
//! well-behaved client would (duplicate keys, smuggled notifications, bad headers).
use serde_json::{Value, json};

/// One HTTP answer, as received.
pub struct Reply {
    pub status: u16,
    pub content_type: String,
    pub session: Option<String>,
    pub body: String,
}

impl Reply {
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.body))
    }
    pub fn error_code(&self) -> i64 {
        self.json()["error"]["code"]
            .as_i64()
            .unwrap_or_else(|| panic!("no error code: {}", self.body))
    }
}

/// POSTs `body` to `url` as JSON, accepting JSON or SSE, with `headers` added.
pub async fn post(url: &str, body: impl Into<Vec<u8>>, headers: &[(&str, &str)]) -> Reply {
    let mut req = reqwest::Client::new()
        .post(url)
        .header("content-type", "application/json")
        .header("accept", "application/json, text/event-stream")
        .body(body.into());
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let resp = req.send().await.unwrap();
    Reply {
        status: resp.status().as_u16(),
        content_type: resp
            .headers()
            .get("content-type")
            .map(|v| v.to_str().unwrap().to_owned())
            .unwrap_or_default(),
        session: resp
            .headers()
            .get("mcp-session-id")
            .map(|v| v.to_str().unwrap().to_owned()),
        body: resp.text().await.unwrap(),
    }
}

/// A 2025-11-25 `initialize` request.
pub fn initialize() -> String {
    initialize_with("{}")
}

/// A 2025-11-25 `initialize` request declaring `capabilities` (JSON text).
pub fn initialize_with(capabilities: &str) -> String {
    let capabilities: Value = serde_json::from_str(capabilities).expect("capabilities JSON");
    json!({"jsonrpc":"2.0","id":0,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":capabilities,"clientInfo":{"name":"raw","version":"1"}}}).to_string()
}

/// Opens a legacy session and returns its `Mcp-Session-Id`.
pub async fn open_session(url: &str) -> String {
    open_session_with(url, "{}").await
}

/// Opens a legacy session declaring `capabilities` (JSON text) and returns its id.
pub async fn open_session_with(url: &str, capabilities: &str) -> String {
    let r = post(url, initialize_with(capabilities), &[]).await;
    assert_eq!(r.status, 200, "{}", r.body);
    r.session.expect("Mcp-Session-Id")
}
