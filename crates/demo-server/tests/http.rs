//! End-to-end tests of the demo server binary over Streamable HTTP at `/mcp`, driven by a real
//! rmcp client under both lifecycles, plus the loopback-only `Host` check.
#![allow(
    clippy::unwrap_used,
    clippy::panic,
    reason = "test helpers outside #[test] functions fail the test by panicking"
)]
#![expect(
    clippy::disallowed_methods,
    reason = "these tests start the demo server binary as a child process"
)]

use std::{
    net::TcpListener,
    process::{Child, Command, Stdio},
    time::Duration,
};

use rmcp::{
    ClientLifecycleMode, ClientServiceExt,
    model::{CallToolRequestParams, ClientCapabilities, ClientConfig, Implementation, ProtocolVersion},
    transport::StreamableHttpClientTransport,
};
use serde_json::json;

const BIN: &str = env!("CARGO_BIN_EXE_portcullis-demo-server");

/// The demo server on a free loopback port; killed when dropped.
struct HttpServer {
    child: Child,
    port: u16,
}

impl HttpServer {
    fn start() -> Self {
        let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let child = Command::new(BIN)
            .args(["--http", &format!("127.0.0.1:{port}"), "--test-tools"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let server = Self { child, port };
        for _ in 0..100 {
            if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
                return server;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        panic!("demo server did not listen on port {port}");
    }

    fn url(&self, host: &str) -> String {
        format!("http://{host}:{}/mcp", self.port)
    }
}

impl Drop for HttpServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[tokio::test]
async fn both_lifecycles_work_over_http_with_either_loopback_host() {
    let server = HttpServer::start();
    let modes = [
        ("127.0.0.1", ClientLifecycleMode::Initialize),
        (
            "localhost",
            ClientLifecycleMode::Discover {
                preferred_versions: vec![ProtocolVersion::V_2026_07_28],
            },
        ),
    ];
    for (host, mode) in modes {
        let transport = StreamableHttpClientTransport::from_uri(server.url(host));
        let config = ClientConfig::new(
            ClientCapabilities::default(),
            Implementation::new("demo-http-test", "0.0.0"),
        );
        let client = config.serve_with_lifecycle(transport, mode).await.unwrap();
        let tools = client.list_all_tools().await.unwrap();
        assert_eq!(tools.len(), 19, "{host}");
        let headers = client
            .call_tool(CallToolRequestParams::new("http_headers"))
            .await
            .unwrap();
        let headers = headers.structured_content.unwrap();
        assert!(
            headers["host"].as_str().unwrap_or_default().starts_with(host),
            "{headers}"
        );
        let args = json!({ "customer_id": "C-1002" }).as_object().unwrap().clone();
        let customer = client
            .call_tool(CallToolRequestParams::new("lookup_customer").with_arguments(args))
            .await
            .unwrap();
        assert_eq!(customer.structured_content.unwrap()["name"], "Grace Hopper");
        let garbage = client.call_tool(CallToolRequestParams::new("garbage")).await.unwrap();
        assert_eq!(garbage.is_error, Some(true), "garbage is stdio-only");
        client.cancel().await.unwrap();
    }
}

#[tokio::test]
async fn foreign_host_headers_are_rejected() {
    let server = HttpServer::start();
    let response = tokio::task::spawn_blocking(move || {
        let mut stream = std::net::TcpStream::connect(("127.0.0.1", server.port)).unwrap();
        let body = r#"{"jsonrpc":"2.0","id":1,"method":"ping"}"#;
        let request = format!(
            "POST /mcp HTTP/1.1\r\nHost: evil.example.com\r\nContent-Type: application/json\r\n\
             Accept: application/json, text/event-stream\r\nContent-Length: {}\r\n\
             Connection: close\r\n\r\n{body}",
            body.len()
        );
        std::io::Write::write_all(&mut stream, request.as_bytes()).unwrap();
        let mut response = String::new();
        std::io::Read::read_to_string(&mut stream, &mut response).unwrap();
        drop(server);
        response
    })
    .await
    .unwrap();
    assert!(response.starts_with("HTTP/1.1 403"), "{response}");
}
