//! SSE streams from the server: the answer stream of one POST, and the session's GET
//! stream of server-initiated messages. Each event is strictly parsed and delivered on
//! the link; a broken answer stream is resumed with `Last-Event-ID` when the server
//! gave event ids.
use futures::StreamExt;
use portcullis_mcp::MessageKind;
use serde_json::Value;

use super::Conn;
use crate::{LinkEvent, sse};

/// How often a broken answer stream is resumed before the call fails.
const MAX_RESUMES: usize = 3;

/// How reading one SSE connection ended.
enum Read {
    Answered,
    Ended,
    ReceiverGone,
}

/// What to do when a request's answer arrives on its stream.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum Answer {
    Plain,
    Initialize,
    /// A `tools/list` answer: learn the tools' `x-mcp-header` annotations.
    ToolsList,
}

impl Conn {
    /// Reads an SSE answer stream. When it breaks before the answer arrived and the
    /// server gave event ids, it resumes with a GET carrying `Last-Event-ID`
    /// (2025-11-25 resumability), at most `MAX_RESUMES` times.
    pub(super) async fn read_stream(&self, response: reqwest::Response, related: Option<Value>, on_answer: Answer) {
        let mut parser = sse::Parser::new(self.spec.limits.max_bytes);
        let mut answered = false;
        let mut response = Some(response);
        for attempt in 0..=MAX_RESUMES {
            if attempt > 0 {
                let Some(next) = self.resume(&parser).await else { break };
                response = Some(next);
                parser.reset();
            }
            let Some(current) = response.take() else { break };
            match self
                .read_events(current, &mut parser, related.as_ref(), on_answer)
                .await
            {
                Read::Answered => answered = true,
                Read::ReceiverGone => return,
                Read::Ended => {}
            }
            if answered || related.is_none() {
                break;
            }
        }
        if !answered && related.is_some() {
            let text = format!("upstream `{}` closed the stream without answering", self.spec.name);
            self.fail(related.as_ref(), true, &text).await;
        }
    }

    async fn read_events(
        &self,
        response: reqwest::Response,
        parser: &mut sse::Parser,
        related: Option<&Value>,
        on_answer: Answer,
    ) -> Read {
        let mut body = response.bytes_stream();
        let mut answered = false;
        while let Some(chunk) = body.next().await {
            let Ok(chunk) = chunk else { break };
            let events = match parser.push(&chunk) {
                Ok(events) => events,
                Err(e) => {
                    let _ = self.events.send(LinkEvent::Malformed { reason: e.to_string() }).await;
                    break;
                }
            };
            for event in events {
                match self.parse(event.data.as_bytes()) {
                    Ok(msg) => {
                        let is_answer = msg.kind() == MessageKind::Response && msg.id() == related;
                        if is_answer && on_answer == Answer::Initialize {
                            self.initialized(&msg).await;
                        }
                        if is_answer && on_answer == Answer::ToolsList {
                            self.learn_tools(&msg).await;
                        }
                        answered |= is_answer;
                        let ev = LinkEvent::Message {
                            msg,
                            related: related.cloned(),
                        };
                        if self.events.send(ev).await.is_err() {
                            return Read::ReceiverGone;
                        }
                    }
                    Err(reason) => {
                        let _ = self.events.send(LinkEvent::Malformed { reason }).await;
                    }
                }
            }
        }
        if answered { Read::Answered } else { Read::Ended }
    }

    /// Reopens a broken legacy stream from its last event id, after the server's `retry:` delay.
    async fn resume(&self, parser: &sse::Parser) -> Option<reqwest::Response> {
        let last_id = parser.last_event_id()?.to_owned();
        let (sid, version) = {
            let state = self.state.lock().await;
            (state.session_id.clone(), state.protocol_version.clone())
        };
        let delay = parser.retry_ms().unwrap_or(1000).min(5000);
        tokio::time::sleep(std::time::Duration::from_millis(delay)).await;
        let mut req = self
            .client
            .reqwest()
            .get(&self.spec.url)
            .header(http::header::ACCEPT, "text/event-stream")
            .header("last-event-id", last_id);
        if let Some(sid) = sid {
            req = req.header("mcp-session-id", sid);
        }
        if let Some(v) = version {
            req = req.header("mcp-protocol-version", v);
        }
        match req.headers(self.configured.as_ref().clone().ok()?).send().await {
            Ok(resp) if resp.status().is_success() => Some(resp),
            Ok(resp) => {
                tracing::debug!(server = %self.spec.name, status = %resp.status(), "stream resumption refused");
                None
            }
            Err(e) => {
                tracing::debug!(server = %self.spec.name, "stream resumption failed: {e}");
                None
            }
        }
    }
}
