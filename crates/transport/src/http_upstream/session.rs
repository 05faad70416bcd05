//! The legacy session's life: after a successful `initialize` the negotiated
//! protocol version goes on later requests and a GET stream is opened for the
//! server's own messages; `tools/list` answers teach the 2026-07-28 parameter
//! headers; when the link closes the session is DELETEd (`Mcp-Session-Id`).
use portcullis_mcp::Message;
use serde_json::Value;

use super::{Conn, sse_body::SseBody, stream::Answer};
use crate::LinkEvent;

impl Conn {
    fn open_get_stream(&self) {
        let this = self.clone();
        tokio::spawn(async move {
            let sid = this.state.lock().await.session_id.clone();
            let Some(sid) = sid else { return };
            let mut req = this
                .client
                .reqwest()
                .get(&this.spec.url)
                .header(http::header::ACCEPT, "text/event-stream")
                .header("mcp-session-id", sid);
            if let Some(v) = this.state.lock().await.protocol_version.clone() {
                req = req.header("mcp-protocol-version", v);
            }
            let Ok(configured) = this.configured.as_ref().clone() else {
                return;
            };
            match req.headers(configured).send().await {
                Ok(resp) if resp.status().is_success() => {
                    this.read_stream(SseBody::Reqwest(resp), None, Answer::Plain).await;
                }
                Ok(resp) => {
                    tracing::debug!(server = %this.spec.name, status = %resp.status(), "no GET stream")
                }
                Err(e) => tracing::debug!(server = %this.spec.name, "GET stream failed: {e}"),
            }
        });
    }

    pub(super) async fn learn_tools(&self, msg: &Message) {
        if let Some(result) = msg.result() {
            self.state.lock().await.param_headers.learn(result);
        }
    }

    /// After a successful `initialize`: use the negotiated version on later
    /// requests and open the session's GET stream for server-initiated messages.
    pub(super) async fn initialized(&self, msg: &Message) {
        let Some(result) = msg.result() else { return };
        if let Some(v) = result.get("protocolVersion").and_then(Value::as_str) {
            self.state.lock().await.protocol_version = Some(v.to_owned());
        }
        self.open_get_stream();
    }

    pub(super) async fn close(&self) {
        let sid = self.state.lock().await.session_id.take();
        if let (Some(sid), Ok(configured)) = (sid, self.configured.as_ref()) {
            let req = self.client.reqwest().delete(&self.spec.url);
            let _ = req
                .header("mcp-session-id", sid)
                .headers(configured.clone())
                .send()
                .await;
        }
        let reason = format!("connection to upstream `{}` closed", self.spec.name);
        let _ = self.events.send(LinkEvent::Closed { reason }).await;
    }
}
