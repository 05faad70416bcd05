//! SSE streams from the server: the answer stream of one POST, and the session's GET
//! stream of server-initiated messages. Each event is strictly parsed and delivered on
//! the link; a broken answer stream is resumed with `Last-Event-ID` when the server
//! gave event ids.
//!
//! An answer stream is read in the caller's task up to the request's answer, which is then
//! handed straight back (as a JSON answer is) when nothing of the stream went on the link
//! before it, else delivered on the link after what preceded it. The rest of the stream is
//! read in the background ([`super::rest`]) so that its connection can be reused.
use portcullis_mcp::{Message, MessageKind};
use serde_json::Value;

use super::{Conn, sse_body::SseBody};
use crate::{LinkEvent, sse};

/// How often a broken answer stream is resumed before the call fails.
const MAX_RESUMES: usize = 3;

/// How reading one SSE connection ended.
enum Read {
    /// The request's answer arrived: `Some` to hand back, `None` if it went on the link.
    Answered(Option<Message>),
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
    /// Reads an SSE stream up to the request's answer (the GET stream, `related = None`, to
    /// its end) and returns the answer if it is to be handed back (see the module docs).
    /// When the stream breaks before the answer arrived and the server gave event ids, it
    /// resumes with a GET carrying `Last-Event-ID` (2025-11-25 resumability), at most
    /// `MAX_RESUMES` times.
    pub(super) async fn read_stream(
        &self,
        body: SseBody,
        related: Option<Value>,
        on_answer: Answer,
    ) -> Option<Message> {
        let mut parser = sse::Parser::new(self.spec.limits.max_bytes);
        // Whether anything of this stream went on the link: then the answer goes there too.
        let mut delivered = false;
        let mut body = Some(body);
        for attempt in 0..=MAX_RESUMES {
            if attempt > 0 {
                let Some(next) = self.resume(&parser).await else { break };
                body = Some(SseBody::Reqwest(next));
                parser.reset();
            }
            let Some(mut current) = body.take() else { break };
            let read = self
                .read_events(&mut current, &mut parser, related.as_ref(), on_answer, &mut delivered)
                .await;
            match read {
                Read::Answered(answer) => {
                    self.read_rest(current, parser, related);
                    return answer;
                }
                Read::ReceiverGone => return None,
                Read::Ended => {}
            }
            if related.is_none() {
                break;
            }
        }
        if related.is_some() {
            let text = format!("upstream `{}` closed the stream without answering", self.spec.name);
            self.fail(related.as_ref(), true, &text).await;
        }
        None
    }

    async fn read_events(
        &self,
        body: &mut SseBody,
        parser: &mut sse::Parser,
        related: Option<&Value>,
        on_answer: Answer,
        delivered: &mut bool,
    ) -> Read {
        while let Some(chunk) = body.chunk().await {
            let Ok(chunk) = chunk else { break };
            let events = match parser.push(&chunk) {
                Ok(events) => events,
                Err(e) => {
                    let _ = self.events.send(LinkEvent::Malformed { reason: e.to_string() }).await;
                    break;
                }
            };
            let last = events.len().saturating_sub(1);
            let mut answered = false;
            for (i, event) in events.into_iter().enumerate() {
                let msg = match self.parse(bytes::Bytes::from(event.data)) {
                    Ok(msg) => msg,
                    Err(reason) => {
                        let _ = self.events.send(LinkEvent::Malformed { reason }).await;
                        *delivered = true;
                        continue;
                    }
                };
                if !answered && msg.kind() == MessageKind::Response && msg.id() == related {
                    answered = true;
                    match on_answer {
                        Answer::Initialize => self.initialized(&msg).await,
                        Answer::ToolsList => self.learn_tools(&msg).await,
                        Answer::Plain => {}
                    }
                    // Nothing of the stream before it on the link, nothing after it in this
                    // chunk: the caller takes it without the hop through the link.
                    if !*delivered && i == last {
                        return Read::Answered(Some(msg));
                    }
                }
                let ev = LinkEvent::Message {
                    msg,
                    related: related.cloned(),
                };
                if self.events.send(ev).await.is_err() {
                    return Read::ReceiverGone;
                }
                *delivered = true;
            }
            if answered {
                return Read::Answered(None);
            }
        }
        Read::Ended
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
