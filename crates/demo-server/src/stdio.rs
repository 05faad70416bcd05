//! MCP over stdin/stdout. rmcp writes its messages into an in-process pipe and one pump task
//! copies them, line by line, to the real stdout; the `garbage` test tool hands the pump a raw
//! line to write between two messages. One writer means a raw line can never split a message.

use anyhow::Context as _;
use rmcp::ServiceExt as _;
use tokio::{
    io::{AsyncBufReadExt as _, AsyncRead, AsyncWriteExt as _, BufReader},
    sync::mpsc::{self, UnboundedReceiver},
};

use crate::{
    DemoOptions,
    server::{Channel, DemoServer},
};

/// Buffer between rmcp and the stdout pump; messages larger than this just take two writes.
const PIPE_BYTES: usize = 64 * 1024;

pub async fn serve(opts: DemoOptions) -> anyhow::Result<()> {
    let (raw_lines, raw_rx) = mpsc::unbounded_channel();
    // rmcp only writes to its end; when it drops that end at the end of the session, the
    // pump reads EOF. (Keep both ends whole: a split half would keep the pipe open.)
    let (rmcp_write, pump_read) = tokio::io::duplex(PIPE_BYTES);
    let pump = tokio::spawn(pump_stdout(pump_read, raw_rx));

    let server = DemoServer::new(&opts, Channel::Stdio { raw_lines });
    let running = server
        .serve((tokio::io::stdin(), rmcp_write))
        .await
        .context("the MCP session over stdio did not start")?;
    let quit = running.waiting().await.context("the stdio server task failed")?;
    tracing::debug!(?quit, "stdio session ended");
    pump.await.context("the stdout pump panicked")?
}

/// Copy rmcp's newline-delimited messages and any raw lines to stdout, one whole line at a time.
async fn pump_stdout(messages: impl AsyncRead + Unpin, mut raw_lines: UnboundedReceiver<String>) -> anyhow::Result<()> {
    let mut messages = BufReader::new(messages).lines();
    let mut stdout = tokio::io::stdout();
    loop {
        let line = tokio::select! {
            // Prefer raw lines so `garbage` lands before the reply that follows it.
            biased;
            Some(raw) = raw_lines.recv() => raw,
            message = messages.next_line() => match message.context("reading rmcp output")? {
                Some(message) => message,
                None => return Ok(()),
            },
        };
        stdout.write_all(line.as_bytes()).await?;
        stdout.write_all(b"\n").await?;
        stdout.flush().await?;
    }
}
