//! Server-Sent Events: an incremental parser for upstream response streams and
//! an encoder for the gateway's own streams.

/// One SSE event (only the fields MCP uses).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Event {
    pub event: Option<String>,
    pub data: String,
    pub id: Option<String>,
}

/// Feeds bytes in, gets whole events out. Bounded by `max_event` bytes.
#[derive(Debug)]
pub struct Parser {
    buf: Vec<u8>,
    current: Event,
    has_data: bool,
    max_event: usize,
    last_id: Option<String>,
    retry_ms: Option<u64>,
}

/// An event exceeded the size limit.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("SSE event larger than {0} bytes")]
pub struct EventTooLarge(pub usize);

impl Parser {
    pub fn new(max_event: usize) -> Self {
        Self {
            buf: Vec::new(),
            current: Event::default(),
            has_data: false,
            max_event,
            last_id: None,
            retry_ms: None,
        }
    }

    /// The last event id seen (even on events without data), for `Last-Event-ID`.
    pub fn last_event_id(&self) -> Option<&str> {
        self.last_id.as_deref()
    }

    /// The reconnection delay the server asked for with `retry:`.
    pub fn retry_ms(&self) -> Option<u64> {
        self.retry_ms
    }

    /// Drops a partial event (the connection broke mid-event); keeps id and retry.
    pub fn reset(&mut self) {
        self.buf.clear();
        self.current = Event::default();
        self.has_data = false;
    }

    /// Adds `chunk` and returns every event it completes.
    pub fn push(&mut self, chunk: &[u8]) -> Result<Vec<Event>, EventTooLarge> {
        self.buf.extend_from_slice(chunk);
        let mut out = Vec::new();
        while let Some(pos) = self.buf.iter().position(|b| *b == b'\n') {
            let mut line: Vec<u8> = self.buf.drain(..=pos).collect();
            line.pop();
            if line.last() == Some(&b'\r') {
                line.pop();
            }
            let line = String::from_utf8_lossy(&line).into_owned();
            if line.is_empty() {
                // An empty data buffer dispatches nothing (a priming event that only
                // carries an id or a retry delay).
                if self.has_data && !self.current.data.is_empty() {
                    out.push(std::mem::take(&mut self.current));
                }
                self.current = Event::default();
                self.has_data = false;
                continue;
            }
            if line.starts_with(':') {
                continue;
            }
            let (field, value) = match line.split_once(':') {
                Some((f, v)) => (f.to_owned(), v.strip_prefix(' ').unwrap_or(v).to_owned()),
                None => (line.clone(), String::new()),
            };
            match field.as_str() {
                "data" => {
                    if self.has_data {
                        self.current.data.push('\n');
                    }
                    self.current.data.push_str(&value);
                    self.has_data = true;
                }
                "event" => self.current.event = Some(value),
                "id" => {
                    self.last_id = Some(value.clone());
                    self.current.id = Some(value);
                }
                "retry" => self.retry_ms = value.parse().ok(),
                _ => {}
            }
            if self.current.data.len() > self.max_event {
                return Err(EventTooLarge(self.max_event));
            }
        }
        if self.buf.len() > self.max_event {
            return Err(EventTooLarge(self.max_event));
        }
        Ok(out)
    }
}

/// Encodes one JSON message as an SSE `message` event.
pub fn encode(data: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(data.len() + 24);
    out.extend_from_slice(b"event: message\ndata: ");
    // JSON produced by serde_json never contains raw newlines.
    out.extend_from_slice(data);
    out.extend_from_slice(b"\n\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_split_chunks_comments_and_multiline_data() {
        let mut p = Parser::new(1024);
        assert_eq!(p.push(b": keepalive\n\nevent: mess").unwrap(), vec![]);
        let evs = p.push(b"age\r\nid: 7\ndata: {\"a\":\ndata: 1}\n\ndata:x\n\n").unwrap();
        assert_eq!(
            evs,
            vec![
                Event {
                    event: Some("message".into()),
                    data: "{\"a\":\n1}".into(),
                    id: Some("7".into())
                },
                Event {
                    event: None,
                    data: "x".into(),
                    id: None
                },
            ]
        );
    }

    #[test]
    fn bounds_event_size_and_round_trips_encoding() {
        let mut p = Parser::new(8);
        assert_eq!(p.push(b"data: 0123456789\n"), Err(EventTooLarge(8)));
        let mut p = Parser::new(1024);
        assert_eq!(p.push(&encode(b"{\"x\":1}")).unwrap()[0].data, "{\"x\":1}");
    }

    #[test]
    fn remembers_ids_and_retry_of_events_without_data() {
        let mut p = Parser::new(1024);
        assert_eq!(p.push(b"id: ev-1\nretry: 250\ndata:\n\n").unwrap().len(), 0);
        assert_eq!((p.last_event_id(), p.retry_ms()), (Some("ev-1"), Some(250)));
    }
}
