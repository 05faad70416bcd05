//! Reading a server's tools outside any client session, for `portcullis manifest pin`,
//! `verify` and `approve`: the server is started exactly as the gateway starts it (same
//! command, environment, TLS), introduced with the gateway's own hello, listed page by page,
//! and stopped again when the connection is dropped.
use std::sync::Arc;

use portcullis_core::ServerName;
use portcullis_mcp::{Limits, Message, message::request};
use serde_json::{Map, Value, json};

use crate::{
    config::ServerConfig, error::UpstreamError, relay::connect::connect, relay::hello::ClientHello,
    relay::http_clients::HttpClients, relay::upstream::ServerMessageRoute,
};

/// Most pages read from one server.
const MAX_PAGES: usize = 100;

/// Every tool `server` lists, as it lists them.
pub async fn list_server_tools(server: &ServerConfig, limits: Limits) -> Result<Vec<Value>, UpstreamError> {
    // Started exactly as the gateway starts it: a changed pinned file refuses the start.
    server.check_pinned_files().map_err(|e| UpstreamError::Start {
        server: server.name.to_string(),
        reason: e.to_string(),
    })?;
    let http = HttpClients::new(std::slice::from_ref(server));
    let hello = ClientHello::gateway();
    let route: Arc<dyn ServerMessageRoute> = Arc::new(Ignore);
    let (peer, era) = connect(server, &hello, limits, &http, Arc::downgrade(&route)).await?;
    let failed = |reason: String| UpstreamError::Closed {
        server: server.name.to_string(),
        reason,
    };
    let mut tools = Vec::new();
    let mut cursor: Option<Value> = None;
    for page in 0..MAX_PAGES {
        let mut params = Map::new();
        if era.is_modern() {
            params.insert("_meta".into(), hello.modern_meta_object());
        }
        if let Some(c) = cursor.take() {
            params.insert("cursor".into(), c);
        }
        let msg: Message = request(json!(page), "tools/list", Value::Object(params));
        let answer = peer.call(msg, Arc::downgrade(&route)).await?;
        let result = answer.result().ok_or_else(|| {
            failed(format!(
                "tools/list failed: {}",
                answer.error().cloned().unwrap_or_default()
            ))
        })?;
        if let Some(list) = result.get("tools").and_then(Value::as_array) {
            tools.extend(list.iter().cloned());
        }
        match result.get("nextCursor") {
            Some(next) if !next.is_null() => cursor = Some(next.clone()),
            _ => return Ok(tools),
        }
    }
    Err(failed(format!("more than {MAX_PAGES} pages of tools")))
}

/// Messages the server starts on its own have no client to go to here.
struct Ignore;

impl ServerMessageRoute for Ignore {
    fn deliver(&self, server: &ServerName, msg: Message, _related: Option<Value>) {
        tracing::debug!(server = %server, method = ?msg.method(), "server message during a probe ignored");
    }
}
