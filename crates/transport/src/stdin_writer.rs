//! A stdio server's stdin, written by whichever caller gets there first: the forward step of
//! every call to a stdio upstream ends here.
//!
//! Each message is one line. A caller appends its line to a shared queue; if nobody is
//! writing, it becomes the writer and writes everything queued — its own line and any that
//! other callers queued meanwhile — until the queue is empty. Callers that find a writer at
//! work return at once: their line goes out with its next batch. (Measured under load, this
//! rarely batches: a pipe write completes within one poll, so there are still ~1.04 writes
//! per call. Its point is what follows.)
//!
//! Lines never interleave and keep the order they were queued in (so one task's messages
//! stay in order). The queue is bounded ([`MAX_QUEUED_BYTES`]): when a child stops reading
//! without exiting, callers past the bound wait for the writer (or for their own timeout)
//! instead of piling lines up in memory. If the writing caller is cancelled while the pipe is full (its call timed
//! out, its client went away), the bytes not yet written go back to the head of the queue
//! and a spawned task finishes the job: nothing queued is lost or cut, where a cancelled
//! `write_all` would leave half a line in the pipe for the next message to run into.
use std::sync::{Arc, Mutex, MutexGuard};

use portcullis_mcp::Message;
use tokio::{io::AsyncWriteExt, process::ChildStdin, sync::Notify};

/// Most bytes queued for a child's stdin before further callers wait: a child that stopped
/// reading cannot make the gateway hold an unbounded backlog.
pub(crate) const MAX_QUEUED_BYTES: usize = 8 * 1024 * 1024;

/// A child's stdin, shared by the link's writer task and callers writing directly.
#[derive(Clone)]
pub(crate) struct StdinWriter(Arc<Shared>);

struct Shared {
    queue: Mutex<Queue>,
    /// Only the current writer (the one that set `Queue::writing`) locks this.
    stdin: tokio::sync::Mutex<ChildStdin>,
    /// Signalled whenever the writer takes the queue (it is then empty) or stops.
    progress: Notify,
    /// A line is queued only while fewer bytes than this wait.
    max_queued: usize,
}

#[derive(Default)]
struct Queue {
    /// Lines waiting to be written, each ending in `\n`.
    lines: Vec<u8>,
    /// Someone is writing; whatever is queued will be written by it.
    writing: bool,
    /// The child stopped reading: nothing more is accepted.
    closed: bool,
}

impl StdinWriter {
    pub(crate) fn new(stdin: ChildStdin) -> Self {
        Self::with_limit(stdin, MAX_QUEUED_BYTES)
    }

    fn with_limit(stdin: ChildStdin, max_queued: usize) -> Self {
        Self(Arc::new(Shared {
            queue: Mutex::new(Queue::default()),
            stdin: tokio::sync::Mutex::new(stdin),
            progress: Notify::new(),
            max_queued,
        }))
    }

    /// Queues `msg` as one line, written by this caller or by the caller already writing.
    /// False if the child is known to no longer read (a later failure is reported on the
    /// link as the child's exit).
    pub(crate) async fn write(&self, msg: &Message) -> bool {
        let mut line = msg.to_bytes();
        line.push(b'\n');
        loop {
            let queued = match self.try_queue(&line) {
                Some(queued) => queued,
                None => {
                    // Full: the writer is stuck behind a child that does not read. Wait for it,
                    // registered before looking again so that no signal in between is missed.
                    let progress = self.0.progress.notified();
                    tokio::pin!(progress);
                    progress.as_mut().enable();
                    match self.try_queue(&line) {
                        Some(queued) => queued,
                        None => {
                            progress.await;
                            continue;
                        }
                    }
                }
            };
            match queued {
                Queued::Closed => return false,
                Queued::Behind => return true,
                Queued::Writer => break,
            }
        }
        // From here this caller is the writer; if it is dropped, `Flush` hands the job on.
        Flush::new(self.0.clone(), true).drain().await
    }
}

/// What became of a line offered to the queue.
enum Queued {
    /// The child no longer reads; the line was dropped.
    Closed,
    /// Queued behind the caller that is writing.
    Behind,
    /// Queued, and this caller is now the writer.
    Writer,
}

impl StdinWriter {
    /// Queues `line` unless the queue is full (`None`).
    fn try_queue(&self, line: &[u8]) -> Option<Queued> {
        let mut queue = self.0.lock();
        if queue.closed {
            return Some(Queued::Closed);
        }
        if !queue.writing {
            queue.lines.extend_from_slice(line);
            queue.writing = true;
            return Some(Queued::Writer);
        }
        if queue.lines.len() < self.0.max_queued {
            queue.lines.extend_from_slice(line);
            return Some(Queued::Behind);
        }
        None
    }
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, Queue> {
        self.queue.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// The writer's turn: holds the batch being written, so that a cancelled writer can hand
/// the rest on (see the module docs).
struct Flush {
    shared: Arc<Shared>,
    batch: Vec<u8>,
    /// Bytes of `batch` already written.
    done: usize,
    finished: bool,
    /// Dropped unfinished, a caller's turn is handed on to a task; the task's own turn (only
    /// dropped when the runtime shuts down) is not.
    hand_on: bool,
}

impl Flush {
    fn new(shared: Arc<Shared>, hand_on: bool) -> Self {
        Self {
            shared,
            batch: Vec::new(),
            done: 0,
            finished: false,
            hand_on,
        }
    }

    /// Writes batches until the queue is empty, then stops being the writer (and marks this
    /// turn finished). False if the child no longer reads (the queue is then closed and emptied).
    async fn drain(&mut self) -> bool {
        let shared = self.shared.clone();
        let mut stdin = shared.stdin.lock().await;
        loop {
            {
                let mut queue = shared.lock();
                if queue.lines.is_empty() {
                    queue.writing = false;
                    self.finished = true;
                    drop(queue);
                    shared.progress.notify_waiters();
                    return true;
                }
                // Swap buffers: the written batch's allocation is reused for the next queue.
                self.batch.clear();
                std::mem::swap(&mut self.batch, &mut queue.lines);
                self.done = 0;
            }
            shared.progress.notify_waiters();
            let mut written = true;
            while written && self.done < self.batch.len() {
                match stdin.write(&self.batch[self.done..]).await {
                    Ok(0) | Err(_) => written = false,
                    Ok(n) => self.done += n,
                }
            }
            if !(written && stdin.flush().await.is_ok()) {
                tracing::debug!("a stdio server's stdin is closed; its exit is reported on the link");
                let mut queue = shared.lock();
                queue.closed = true;
                queue.writing = false;
                queue.lines.clear();
                self.finished = true;
                drop(queue);
                shared.progress.notify_waiters();
                return false;
            }
        }
    }
}

impl Drop for Flush {
    /// A writer dropped before it finished (cancelled): the unwritten bytes go back to the
    /// head of the queue and a task takes over as the writer.
    fn drop(&mut self) {
        if self.finished {
            return;
        }
        let rest = self.batch.get(self.done..).unwrap_or_default();
        let mut queue = self.shared.lock();
        if !rest.is_empty() {
            let mut lines = Vec::with_capacity(rest.len() + queue.lines.len());
            lines.extend_from_slice(rest);
            lines.extend_from_slice(&queue.lines);
            queue.lines = lines;
        }
        match tokio::runtime::Handle::try_current() {
            Ok(runtime) if self.hand_on => {
                drop(queue);
                let mut takeover = Flush::new(self.shared.clone(), false);
                runtime.spawn(async move { takeover.drain().await });
            }
            // Shutting down: nobody will write again.
            _ => {
                queue.writing = false;
                drop(queue);
                self.shared.progress.notify_waiters();
            }
        }
    }
}

#[cfg(test)]
#[expect(
    clippy::disallowed_methods,
    reason = "tests drive the writer against real children (sh, sleep, true)"
)]
mod tests {
    use std::{collections::HashMap, process::Stdio, time::Duration};

    use serde_json::{Value, json};
    use tokio::{
        io::{AsyncBufReadExt, BufReader},
        process::{Child, ChildStdout, Command},
    };

    use super::*;

    /// A real `cat`: every line written to its stdin comes back on its stdout.
    fn cat(delay_before_reading: &str) -> (Child, StdinWriter, ChildStdout) {
        let mut child = Command::new("sh")
            .args(["-c", &format!("sleep {delay_before_reading}; exec cat")])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .expect("sh and cat are on every test machine");
        let stdin = child.stdin.take().expect("piped stdin");
        let stdout = child.stdout.take().expect("piped stdout");
        (child, StdinWriter::new(stdin), stdout)
    }

    fn note(task: u64, seq: u64, pad: usize) -> Message {
        let msg =
            json!({"jsonrpc": "2.0", "method": "n", "params": {"task": task, "seq": seq, "pad": "x".repeat(pad)}});
        Message::from_value(msg).expect("a valid notification")
    }

    /// Reads `count` lines back and checks each is whole and each task's lines are in order.
    async fn read_back(stdout: ChildStdout, count: usize) {
        let mut lines = BufReader::new(stdout).lines();
        let mut next: HashMap<u64, u64> = HashMap::new();
        for _ in 0..count {
            let line = tokio::time::timeout(Duration::from_secs(20), lines.next_line())
                .await
                .expect("every queued line arrives")
                .expect("stdout reads")
                .expect("cat is still running");
            let v: Value = serde_json::from_str(&line).expect("each line is one whole message");
            let (task, seq) = (
                v["params"]["task"].as_u64().unwrap(),
                v["params"]["seq"].as_u64().unwrap(),
            );
            let want = next.entry(task).or_default();
            assert_eq!(seq, *want, "task {task}'s lines keep their order");
            *want += 1;
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn concurrent_writers_lines_arrive_whole_and_in_order() {
        let (_child, writer, stdout) = cat("0");
        let (tasks, per_task) = (16u64, 200u64);
        let mut joins = Vec::new();
        for task in 0..tasks {
            let writer = writer.clone();
            joins.push(tokio::spawn(async move {
                for seq in 0..per_task {
                    assert!(writer.write(&note(task, seq, 300)).await, "cat reads its stdin");
                }
            }));
        }
        let reading = tokio::spawn(read_back(stdout, (tasks * per_task) as usize));
        for j in joins {
            j.await.unwrap();
        }
        reading.await.unwrap();
    }

    /// The child does not read for a while, so the pipe fills and the writer waits; the
    /// writer is then cancelled. What it had not written yet must still arrive, whole.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_cancelled_writer_hands_the_rest_on() {
        let (_child, writer, stdout) = cat("1");
        // ~200 KiB queued: far more than a pipe holds, so writing must wait for the reader.
        let lines = 40u64;
        for seq in 0..lines {
            let line = note(0, seq, 5000);
            let queued = writer.write(&line);
            // Each write either finishes at once (the pipe has room) or is cancelled here; then
            // only the task that took over can write the rest.
            let _ = tokio::time::timeout(Duration::from_millis(5), queued).await;
        }
        read_back(stdout, lines as usize).await;
    }

    /// A child that never reads and never exits: the pipe fills, the writer waits, and the
    /// queue stops growing at its bound — later callers wait (here: until their timeout).
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_queue_is_bounded_when_the_child_stops_reading() {
        let mut child = Command::new("sleep")
            .arg("30")
            .stdin(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .expect("`sleep` exists");
        let limit = 64 * 1024;
        let writer = StdinWriter::with_limit(child.stdin.take().expect("piped stdin"), limit);
        let line_len = note(0, 0, 10_000).to_bytes().len() + 1;
        let mut waited = 0;
        for seq in 0..40 {
            let line = note(0, seq, 10_000);
            if tokio::time::timeout(Duration::from_millis(20), writer.write(&line))
                .await
                .is_err()
            {
                waited += 1;
            }
        }
        let queued = writer.0.lock().lines.len();
        assert!(queued < limit + line_len, "queued {queued} bytes, bound {limit}");
        // 40 lines of ~10 KB: the pipe takes ~64 KiB, the queue ~64 KiB more; the rest waited.
        assert!(waited >= 20, "only {waited} callers waited");
    }

    #[tokio::test]
    async fn a_child_that_stopped_reading_is_reported() {
        let mut child = Command::new("true")
            .stdin(Stdio::piped())
            .spawn()
            .expect("`true` exists");
        let writer = StdinWriter::new(child.stdin.take().expect("piped stdin"));
        child.wait().await.expect("true exits");
        // The first write may land before the pipe reports its reader gone; soon it must fail.
        let mut refused = false;
        for seq in 0..50 {
            if !writer.write(&note(0, seq, 100_000)).await {
                refused = true;
                break;
            }
        }
        assert!(refused, "writes to a closed pipe report the child gone");
        assert!(!writer.write(&note(0, 99, 1)).await, "and stay refused");
    }
}
