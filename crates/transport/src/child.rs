//! stdio upstreams: spawn a child from an argv (never a shell) with only the
//! configured environment, and frame its stdin/stdout as JSON-RPC lines.
//!
//! The child's stderr goes to the gateway's log, one line per event. When the
//! child exits, the link reports `Closed` with the exit status, so pending
//! calls fail cleanly instead of hanging.
use std::{collections::BTreeMap, path::PathBuf, process::Stdio, sync::Arc};

use portcullis_core::Secret;
use portcullis_mcp::{Limits, Message};
use tokio::{
    io::BufReader,
    process::{Child, Command},
    sync::{mpsc, oneshot},
};

use crate::{
    LineReader, Link, LinkEvent,
    link::{Direct, DirectRequests, EventSink, HandlerSlot, LINK_CAPACITY, LinkGuard},
    stdin_writer::StdinWriter,
};

/// How to start one stdio server.
#[derive(Debug, Clone)]
pub struct ChildSpec {
    /// Server name, for logs.
    pub name: String,
    /// Program and arguments; the program is run directly, never through a shell.
    pub argv: Vec<String>,
    /// The only environment variables the child sees.
    pub env: BTreeMap<String, Secret<String>>,
    pub cwd: Option<PathBuf>,
    pub limits: Limits,
}

/// The child could not be started.
#[derive(Debug, thiserror::Error)]
pub enum SpawnError {
    #[error("server `{0}` has an empty command")]
    EmptyCommand(String),
    #[error("could not start server `{name}` (`{program}`): {source}; check the `command` path")]
    Spawn {
        name: String,
        program: String,
        source: std::io::Error,
    },
    #[error("server `{0}`: the child's stdio pipes were not available")]
    Pipes(String),
}

/// Starts the child and returns its link.
pub fn spawn_child(spec: &ChildSpec) -> Result<Link, SpawnError> {
    let (program, args) = spec
        .argv
        .split_first()
        .ok_or_else(|| SpawnError::EmptyCommand(spec.name.clone()))?;
    #[expect(
        clippy::disallowed_methods,
        reason = "the one place the gateway spawns: the child's environment is cleared just below"
    )]
    let mut cmd = Command::new(program);
    cmd.args(args)
        .env_clear()
        .envs(spec.env.iter().map(|(k, v)| (k, v.expose())))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    if let Some(dir) = &spec.cwd {
        cmd.current_dir(dir);
    }
    let mut child = cmd.spawn().map_err(|source| SpawnError::Spawn {
        name: spec.name.clone(),
        program: program.clone(),
        source,
    })?;
    let (Some(stdin), Some(stdout), Some(stderr)) = (child.stdin.take(), child.stdout.take(), child.stderr.take())
    else {
        return Err(SpawnError::Pipes(spec.name.clone()));
    };
    tracing::info!(server = %spec.name, pid = child.id(), "started stdio server");

    let (to_child, mut outbox) = mpsc::channel::<Message>(LINK_CAPACITY);
    let (events, rx) = mpsc::channel::<LinkEvent>(LINK_CAPACITY);
    let (stop_tx, stop_rx) = oneshot::channel::<()>();

    // Writer: one message per line, flushed, until the gateway drops its sender.
    let stdin = StdinWriter::new(stdin);
    let writer = stdin.clone();
    tokio::spawn(async move {
        while let Some(msg) = outbox.recv().await {
            if !writer.write(&msg).await {
                break;
            }
        }
    });

    let name = spec.name.clone();
    tokio::spawn(async move {
        let mut lines = LineReader::new(BufReader::new(stderr), 64 * 1024);
        while let Ok(Some(line)) = lines.next_line().await {
            tracing::info!(server = %name, "stderr: {}", String::from_utf8_lossy(&line));
        }
    });

    let handler = HandlerSlot::default();
    let sink = EventSink {
        handler: Arc::clone(&handler),
        events,
    };
    let reader_sink = sink.clone();
    let limits = spec.limits;
    let reader = tokio::spawn(async move {
        let mut lines = LineReader::new(BufReader::new(stdout), limits.max_bytes);
        loop {
            let event = match lines.next_line().await {
                Ok(None) => break,
                Ok(Some(line)) if line.iter().all(u8::is_ascii_whitespace) => continue,
                Ok(Some(line)) => match Message::parse_forwardable(bytes::Bytes::from(line), limits) {
                    Ok(msg) => LinkEvent::Message { msg, related: None },
                    Err(e) => LinkEvent::Malformed { reason: e.to_string() },
                },
                Err(e) => LinkEvent::Malformed { reason: e.to_string() },
            };
            if !reader_sink.send(event).await {
                break;
            }
        }
    });

    tokio::spawn(supervise(spec.name.clone(), child, reader, sink, stop_rx));
    Ok(Link {
        tx: to_child,
        rx,
        guard: LinkGuard { _stop: stop_tx },
        direct: Some(DirectRequests(Direct::Stdio(stdin))),
        handler: Some(handler),
    })
}

/// Waits for the child to exit (or for the gateway to stop it) and reports `Closed`
/// after every line it wrote has been delivered.
async fn supervise(
    name: String,
    mut child: Child,
    mut reader: tokio::task::JoinHandle<()>,
    events: EventSink,
    stop: oneshot::Receiver<()>,
) {
    let mut read_all = false;
    let status = tokio::select! {
        status = child.wait() => status,
        _ = &mut reader => {
            read_all = true;
            // stdout closed. A child that is exiting does so at once; one that lives on
            // with its stdout closed can never answer again (T23): fail every pending call
            // now instead of at each call's timeout, and stop it.
            match tokio::time::timeout(STDOUT_CLOSED_GRACE, child.wait()).await {
                Ok(status) => status,
                Err(_) => {
                    let reason = format!("server `{name}` closed its stdout but kept running; it can no longer answer and was stopped");
                    tracing::warn!(server = %name, "{reason}");
                    let _ = events.send(LinkEvent::Closed { reason }).await;
                    let _ = stop_child(&mut child).await;
                    return;
                }
            }
        }
        _ = stop => stop_child(&mut child).await,
    };
    if !read_all {
        // A grandchild may hold stdout open; do not wait for it forever.
        let _ = tokio::time::timeout(std::time::Duration::from_secs(1), reader).await;
    }
    let reason = match status {
        Ok(s) => format!("server `{name}` exited ({s})"),
        Err(e) => format!("server `{name}` could not be waited for: {e}"),
    };
    tracing::info!(server = %name, "{reason}");
    let _ = events.send(LinkEvent::Closed { reason }).await;
}

/// How long a child whose stdout closed may take to exit before it counts as hung.
const STDOUT_CLOSED_GRACE: std::time::Duration = std::time::Duration::from_millis(500);

/// The gateway is done with this child: EOF on its stdin, a moment to exit, then a kill.
async fn stop_child(child: &mut Child) -> std::io::Result<std::process::ExitStatus> {
    drop(child.stdin.take());
    match tokio::time::timeout(std::time::Duration::from_secs(2), child.wait()).await {
        Ok(status) => status,
        Err(_) => {
            let _ = child.start_kill();
            child.wait().await
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use portcullis_mcp::message;

    use crate::EventHandler;
    use serde_json::json;

    use super::*;

    /// A child that answers each line it reads with two notifications, `first` and `second`.
    fn two_lines_per_request() -> ChildSpec {
        let script = r#"while read -r line; do
            printf '%s\n' '{"jsonrpc":"2.0","method":"notifications/first"}'
            printf '%s\n' '{"jsonrpc":"2.0","method":"notifications/second"}'
        done"#;
        ChildSpec {
            name: "lines".into(),
            argv: vec!["/bin/sh".into(), "-c".into(), script.into()],
            env: BTreeMap::new(),
            cwd: None,
            limits: Limits::default(),
        }
    }

    fn method(event: &LinkEvent) -> String {
        match event {
            LinkEvent::Message { msg, .. } => msg.method().unwrap_or_default().to_owned(),
            LinkEvent::Malformed { reason } => format!("malformed: {reason}"),
            LinkEvent::Closed { .. } => "closed".into(),
        }
    }

    /// The child, with a handler that records what it gets and answers `keep`, asked for
    /// its two lines.
    async fn started_with_handler(keep: bool) -> (Link, Arc<Mutex<Vec<String>>>) {
        let link = spawn_child(&two_lines_per_request()).unwrap();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let log = Arc::clone(&seen);
        let handler: EventHandler = Arc::new(move |event| {
            log.lock().unwrap().push(method(&event));
            keep
        });
        assert!(link.handler.as_ref().unwrap().set(handler).is_ok());
        link.tx.send(message::notification("go", json!({}))).await.unwrap();
        (link, seen)
    }

    async fn until(what: &str, mut done: impl FnMut() -> bool) {
        for _ in 0..6000 {
            if done() {
                return;
            }
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
        panic!("still not true after a minute: {what}");
    }

    #[tokio::test]
    async fn with_a_handler_set_events_go_to_it_in_order_and_not_to_the_channel() {
        let (mut link, seen) = started_with_handler(true).await;
        until("both lines handled", || seen.lock().unwrap().len() >= 2).await;
        // Every holder of the child's stdin gone: it reads EOF and exits.
        drop((link.tx, link.direct));
        until("the exit handled", || seen.lock().unwrap().len() >= 3).await;
        assert_eq!(
            *seen.lock().unwrap(),
            ["notifications/first", "notifications/second", "closed"]
        );
        assert!(link.rx.try_recv().is_err(), "nothing came on the channel");
    }

    #[tokio::test]
    async fn without_a_handler_events_come_on_the_channel() {
        let mut link = spawn_child(&two_lines_per_request()).unwrap();
        link.tx.send(message::notification("go", json!({}))).await.unwrap();
        let first = link.rx.recv().await.unwrap();
        let second = link.rx.recv().await.unwrap();
        assert_eq!(
            [method(&first), method(&second)],
            ["notifications/first", "notifications/second"]
        );
    }

    #[tokio::test]
    async fn a_handler_that_gives_up_stops_the_reading() {
        let (mut link, seen) = started_with_handler(false).await;
        until("the first line handled", || !seen.lock().unwrap().is_empty()).await;
        drop((link.tx, link.direct));
        // The child exits on EOF; its exit is reported (to the handler) after the reader ended.
        until("the exit handled", || seen.lock().unwrap().len() >= 2).await;
        assert_eq!(*seen.lock().unwrap(), ["notifications/first", "closed"]);
        assert!(
            link.rx.try_recv().is_err(),
            "the rest was not sent on the channel either"
        );
    }
}
