//! Upstream TCP connections that acknowledge what they have read before they wait for more.
//!
//! Forward step, plain-HTTP upstreams (`http1_conns`). On a connection that is reused, Linux
//! delays the ACK of received data (up to 40 ms) in the hope of piggybacking it on the next
//! write. An upstream that does not disable Nagle's algorithm — rmcp's and other SDK servers
//! through `axum::serve` by default — then holds back its next small write (the SSE event
//! after the response head, the chunk that ends the stream) until that ACK comes: 40 ms per
//! call. A fresh connection starts in quick-ACK mode, which is why this only shows once
//! connections are reused. So whenever a read is about to wait after data arrived, the
//! pending ACK is sent at once (`TCP_QUICKACK`): one `setsockopt` per wait, none while data
//! keeps coming.
use std::{
    io,
    pin::Pin,
    task::{Context, Poll},
};

use tokio::{
    io::{AsyncRead, AsyncWrite, ReadBuf},
    net::TcpStream,
};

/// A [`TcpStream`] that sends the ACK for what it read whenever a read has to wait.
pub(crate) struct AckingStream {
    inner: TcpStream,
    /// Data was read since the last forced ACK.
    unacked: bool,
}

impl AckingStream {
    pub(crate) fn new(inner: TcpStream) -> Self {
        Self { inner, unacked: false }
    }

    /// Sends the ACK the kernel may be delaying. Best effort: a socket that refuses the
    /// option just keeps the kernel's default.
    fn ack_now(&mut self) {
        self.unacked = false;
        #[cfg(any(target_os = "linux", target_os = "android"))]
        if let Err(e) = self.inner.set_quickack(true) {
            tracing::trace!("TCP_QUICKACK on an upstream connection: {e}");
        }
    }
}

impl AsyncRead for AckingStream {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        match Pin::new(&mut self.inner).poll_read(cx, buf) {
            Poll::Ready(Ok(())) => {
                if buf.filled().len() > before {
                    self.unacked = true;
                }
                Poll::Ready(Ok(()))
            }
            Poll::Pending => {
                if self.unacked {
                    self.ack_now();
                }
                Poll::Pending
            }
            ready => ready,
        }
    }
}

impl AsyncWrite for AckingStream {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}
