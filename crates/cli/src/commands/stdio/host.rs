//! The desktop host's side of `portcullis stdio`: its stdin lines go to a connection (this
//! process's own gateway, or the socket of the `stdio` process that holds the audit log) and
//! that connection's lines come back to its stdout. It remembers what a new connection needs
//! to go on after the old one is lost: the requests still owed an answer (each gets an
//! error, never a hang), and the host's `initialize` (repeated on the new connection, its
//! answer kept from the host, who already has one).
use std::{
    collections::{HashMap, HashSet},
    time::Duration,
};

use portcullis_mcp::{ErrorCode, error_response};
use portcullis_transport::LineReader;
use serde_json::Value;
use tokio::{
    io::{AsyncBufReadExt, AsyncRead, AsyncWrite, AsyncWriteExt, BufReader},
    sync::{mpsc, watch},
};

/// After the host's stdin ends, answers still owed are awaited this long.
const DRAIN_LIMIT: Duration = Duration::from_secs(30);

/// A two-way line connection to a gateway.
pub struct Conn {
    pub reader: Box<dyn AsyncRead + Unpin + Send>,
    pub writer: Box<dyn AsyncWrite + Unpin + Send>,
}

/// How [`HostSide::pump`] ended.
#[derive(Debug, PartialEq, Eq)]
pub enum Ended {
    /// The host closed stdin (or a signal asked to stop) and the connection was drained.
    Finished,
    /// The connection ended while the host was still there.
    BackendLost,
}

/// A line from the host, or the reason one could not be read.
enum HostLine {
    Line(Vec<u8>),
    Unreadable(String),
}

pub struct HostSide {
    lines: mpsc::Receiver<HostLine>,
    output: Box<dyn AsyncWrite + Unpin + Send>,
    stop: watch::Receiver<bool>,
    /// Requests sent and not answered, by the id's JSON text.
    pending: HashMap<String, Value>,
    /// The host's `initialize` request and `notifications/initialized`, as sent.
    initialize: Option<Value>,
    initialized: Option<Vec<u8>>,
    /// Ids of repeated `initialize` requests whose answers the host must not see.
    swallow: HashSet<String>,
    replays: u64,
    host_closed: bool,
}

impl HostSide {
    /// Starts reading `input` (lines of at most `max_bytes`) in a task of its own.
    pub fn new(
        input: impl AsyncRead + Unpin + Send + 'static,
        output: impl AsyncWrite + Unpin + Send + 'static,
        max_bytes: usize,
        stop: watch::Receiver<bool>,
    ) -> Self {
        let (tx, lines) = mpsc::channel(64);
        tokio::spawn(async move {
            let mut reader = LineReader::new(BufReader::new(input), max_bytes);
            loop {
                let line = match reader.next_line().await {
                    Ok(Some(bytes)) if bytes.iter().all(u8::is_ascii_whitespace) => continue,
                    Ok(Some(bytes)) => HostLine::Line(bytes),
                    Ok(None) => break,
                    Err(portcullis_transport::LineReaderError::Io(e)) => {
                        tracing::warn!("cannot read stdin: {e}");
                        break;
                    }
                    Err(e) => HostLine::Unreadable(e.to_string()),
                };
                if tx.send(line).await.is_err() {
                    break;
                }
            }
        });
        Self {
            lines,
            output: Box::new(output),
            stop,
            pending: HashMap::new(),
            initialize: None,
            initialized: None,
            swallow: HashSet::new(),
            replays: 0,
            host_closed: false,
        }
    }

    /// Relays between the host and `conn` until the host is done (then `conn` is drained)
    /// or `conn` ends. On a connection after the first, the host's handshake is repeated.
    pub async fn pump(&mut self, conn: Conn) -> std::io::Result<Ended> {
        let Conn { reader, mut writer } = conn;
        let (tx, mut from_gateway) = mpsc::channel::<Vec<u8>>(64);
        let reading = tokio::spawn(async move {
            let mut reader = BufReader::new(reader);
            loop {
                let mut line = Vec::new();
                match reader.read_until(b'\n', &mut line).await {
                    Ok(0) | Err(_) => break,
                    Ok(_) => {
                        if line.last() == Some(&b'\n') {
                            line.pop();
                        }
                        if tx.send(line).await.is_err() {
                            break;
                        }
                    }
                }
            }
        });
        let ended = self.relay(&mut writer, &mut from_gateway).await;
        reading.abort();
        ended
    }

    async fn relay(
        &mut self,
        writer: &mut Box<dyn AsyncWrite + Unpin + Send>,
        from_gateway: &mut mpsc::Receiver<Vec<u8>>,
    ) -> std::io::Result<Ended> {
        if self.replay(writer).await.is_err() {
            return Ok(Ended::BackendLost);
        }
        if !self.host_closed {
            loop {
                let mut stop = self.stop.clone();
                tokio::select! {
                    line = self.lines.recv() => match line {
                        Some(HostLine::Line(bytes)) => {
                            self.note_outgoing(&bytes);
                            if send_line(writer, &bytes).await.is_err() {
                                return Ok(Ended::BackendLost);
                            }
                        }
                        Some(HostLine::Unreadable(why)) => {
                            let answer = error_response(None, ErrorCode::InvalidRequest, &why, None);
                            self.write_host(&serde_json::to_vec(&answer).unwrap_or_default()).await?;
                        }
                        None => {
                            self.host_closed = true;
                            break;
                        }
                    },
                    line = from_gateway.recv() => match line {
                        Some(bytes) => self.deliver(bytes).await?,
                        None => return Ok(Ended::BackendLost),
                    },
                    () = super::holder::stop_requested(&mut stop) => {
                        self.host_closed = true;
                        break;
                    }
                }
            }
        }
        // The host is done: end the connection's input, let owed answers arrive.
        let _ = writer.shutdown().await;
        let drained = tokio::time::timeout(DRAIN_LIMIT, async {
            while let Some(bytes) = from_gateway.recv().await {
                self.deliver(bytes).await?;
            }
            std::io::Result::Ok(())
        })
        .await;
        match drained {
            Ok(result) => result?,
            Err(_) => tracing::warn!(
                "{} request(s) still unanswered after {DRAIN_LIMIT:?}; closing",
                self.pending.len()
            ),
        }
        // The host may still read its stdout: what is still owed gets an answer.
        self.fail_pending("the gateway did not answer before this session ended")
            .await;
        Ok(Ended::Finished)
    }

    /// Repeats the host's handshake on a new connection (nothing on the first).
    async fn replay(&mut self, writer: &mut Box<dyn AsyncWrite + Unpin + Send>) -> std::io::Result<()> {
        let Some(mut initialize) = self.initialize.clone() else {
            return Ok(());
        };
        self.replays += 1;
        let id = Value::String(format!("portcullis-stdio-reinitialize-{}", self.replays));
        self.swallow.insert(id.to_string());
        if let Some(obj) = initialize.as_object_mut() {
            obj.insert("id".into(), id);
        }
        send_line(writer, &serde_json::to_vec(&initialize).unwrap_or_default()).await?;
        if let Some(initialized) = self.initialized.clone() {
            send_line(writer, &initialized).await?;
        }
        Ok(())
    }

    /// Notes what a host line means for a later connection: an owed answer, the handshake.
    fn note_outgoing(&mut self, bytes: &[u8]) {
        let Ok(value) = serde_json::from_slice::<Value>(bytes) else {
            return;
        };
        let method = value.get("method").and_then(Value::as_str);
        match (method, value.get("id")) {
            (Some(method), Some(id)) => {
                self.pending.insert(id.to_string(), id.clone());
                if method == "initialize" {
                    self.initialize = Some(value.clone());
                }
            }
            (Some("notifications/initialized"), None) => self.initialized = Some(bytes.to_vec()),
            _ => {}
        }
    }

    /// A gateway line to the host, unless it answers a repeated handshake.
    async fn deliver(&mut self, bytes: Vec<u8>) -> std::io::Result<()> {
        if let Ok(value) = serde_json::from_slice::<Value>(&bytes)
            && value.get("method").is_none()
            && let Some(id) = value.get("id")
        {
            let key = id.to_string();
            if self.swallow.remove(&key) {
                if let Some(error) = value.get("error") {
                    tracing::error!("repeating this host's initialize on the new gateway process failed: {error}");
                }
                return Ok(());
            }
            self.pending.remove(&key);
        }
        self.write_host(&bytes).await
    }

    async fn write_host(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        send_line(&mut self.output, bytes).await
    }

    /// Answers every request still owed with an error saying `why`.
    pub async fn fail_pending(&mut self, why: &str) {
        let owed: Vec<Value> = self.pending.drain().map(|(_, id)| id).collect();
        for id in owed {
            let answer = error_response(Some(&id), ErrorCode::UpstreamFailed, why, None);
            if self
                .write_host(&serde_json::to_vec(&answer).unwrap_or_default())
                .await
                .is_err()
            {
                return;
            }
        }
    }
}

async fn send_line(writer: &mut (impl AsyncWrite + Unpin + ?Sized), bytes: &[u8]) -> std::io::Result<()> {
    writer.write_all(bytes).await?;
    writer.write_all(b"\n").await?;
    writer.flush().await
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use tokio::io::duplex;

    fn line(v: &Value) -> Vec<u8> {
        let mut b = serde_json::to_vec(v).unwrap_or_default();
        b.push(b'\n');
        b
    }

    /// A lost connection answers what it owed with an error; the next connection gets the
    /// host's handshake again and the host never sees that second answer.
    #[tokio::test]
    async fn a_lost_connection_fails_owed_calls_and_the_next_repeats_the_handshake() {
        let (mut host_in, input) = duplex(1 << 16);
        let (output, host_out) = duplex(1 << 16);
        let (_stop_tx, stop) = watch::channel(false);
        let mut side = HostSide::new(input, output, 1 << 20, stop);
        let mut host_out = BufReader::new(host_out).lines();

        let (gw_end, our_end) = duplex(1 << 16);
        let (r, w) = tokio::io::split(our_end);
        let first = Conn {
            reader: Box::new(r),
            writer: Box::new(w),
        };
        let init =
            json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {"protocolVersion": "2025-11-25"}});
        let initialized = json!({"jsonrpc": "2.0", "method": "notifications/initialized"});
        let call = json!({"jsonrpc": "2.0", "id": 2, "method": "tools/call", "params": {"name": "x"}});
        host_in.write_all(&line(&init)).await.unwrap_or_default();
        host_in.write_all(&line(&initialized)).await.unwrap_or_default();
        host_in.write_all(&line(&call)).await.unwrap_or_default();
        let gateway = tokio::spawn(async move {
            let (gr, mut gw) = tokio::io::split(gw_end);
            let mut lines = BufReader::new(gr).lines();
            let first = lines.next_line().await.ok().flatten().unwrap_or_default();
            let answer = json!({"jsonrpc": "2.0", "id": 1, "result": {}});
            gw.write_all(&line(&answer)).await.unwrap_or_default();
            let _ = lines.next_line().await;
            let _ = lines.next_line().await;
            // Lost without answering the call.
            first
        });
        let ended = side.pump(first).await.unwrap_or(Ended::Finished);
        assert_eq!(ended, Ended::BackendLost);
        assert!(gateway.await.unwrap_or_default().contains("initialize"));
        side.fail_pending("gone").await;
        let first_answer = host_out.next_line().await.ok().flatten().unwrap_or_default();
        assert!(first_answer.contains("\"id\":1"), "{first_answer}");
        let failed = host_out.next_line().await.ok().flatten().unwrap_or_default();
        assert!(
            failed.contains("\"id\":2") && failed.contains("gone") && failed.contains("-32010"),
            "{failed}"
        );

        let (gw_end, our_end) = duplex(1 << 16);
        let (r, w) = tokio::io::split(our_end);
        let second = Conn {
            reader: Box::new(r),
            writer: Box::new(w),
        };
        let gateway = tokio::spawn(async move {
            let (gr, mut gw) = tokio::io::split(gw_end);
            let mut lines = BufReader::new(gr).lines();
            let repeated = lines.next_line().await.ok().flatten().unwrap_or_default();
            let v: Value = serde_json::from_str(&repeated).unwrap_or_default();
            gw.write_all(&line(&json!({"jsonrpc": "2.0", "id": v["id"], "result": {}})))
                .await
                .unwrap_or_default();
            let again = lines.next_line().await.ok().flatten().unwrap_or_default();
            let call = lines.next_line().await.ok().flatten().unwrap_or_default();
            gw.write_all(&line(&json!({"jsonrpc": "2.0", "id": 3, "result": {"ok": true}})))
                .await
                .unwrap_or_default();
            (repeated, again, call)
        });
        let next = json!({"jsonrpc": "2.0", "id": 3, "method": "tools/call", "params": {"name": "y"}});
        host_in.write_all(&line(&next)).await.unwrap_or_default();
        drop(host_in);
        let ended = side.pump(second).await.unwrap_or(Ended::BackendLost);
        assert_eq!(ended, Ended::Finished);
        let (repeated, again, call) = gateway.await.unwrap_or_default();
        assert!(
            repeated.contains("initialize") && repeated.contains("portcullis-stdio-reinitialize-1"),
            "{repeated}"
        );
        assert!(again.contains("notifications/initialized"), "{again}");
        assert!(call.contains("\"id\":3"), "{call}");
        let answer = host_out.next_line().await.ok().flatten().unwrap_or_default();
        assert!(
            answer.contains("\"id\":3") && answer.contains("ok"),
            "the repeated handshake's answer is kept from the host: {answer}"
        );
    }
}
