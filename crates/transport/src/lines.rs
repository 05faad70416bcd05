//! Newline-delimited framing with a line-length limit, for stdio transports.
use tokio::io::{AsyncBufRead, AsyncBufReadExt};

/// A line that could not be read.
#[derive(Debug, thiserror::Error)]
pub enum LineReaderError {
    #[error("line longer than {0} bytes")]
    TooLong(usize),
    #[error("read failed: {0}")]
    Io(#[from] std::io::Error),
}

/// Reads `\n`-terminated lines of at most `max` bytes; an over-long line is
/// skipped up to its end and reported, so framing is never lost.
pub struct LineReader<R> {
    inner: R,
    max: usize,
    buf: Vec<u8>,
}

impl<R: AsyncBufRead + Unpin> LineReader<R> {
    pub fn new(inner: R, max: usize) -> Self {
        Self {
            inner,
            max,
            buf: Vec::new(),
        }
    }

    /// The next line without its terminator (`\r\n` or `\n`); `None` at end of input.
    pub async fn next_line(&mut self) -> Result<Option<Vec<u8>>, LineReaderError> {
        self.buf.clear();
        let mut too_long = false;
        loop {
            let available = self.inner.fill_buf().await?;
            if available.is_empty() {
                if self.buf.is_empty() && !too_long {
                    return Ok(None);
                }
                break;
            }
            let (chunk, done) = match available.iter().position(|b| *b == b'\n') {
                Some(i) => (&available[..i], Some(i + 1)),
                None => (available, None),
            };
            if !too_long {
                if self.buf.len() + chunk.len() > self.max {
                    too_long = true;
                    self.buf.clear();
                } else {
                    self.buf.extend_from_slice(chunk);
                }
            }
            let consumed = done.unwrap_or(available.len());
            self.inner.consume(consumed);
            if done.is_some() {
                break;
            }
        }
        if too_long {
            return Err(LineReaderError::TooLong(self.max));
        }
        if self.buf.last() == Some(&b'\r') {
            self.buf.pop();
        }
        Ok(Some(std::mem::take(&mut self.buf)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn splits_limits_and_recovers() {
        let input: &[u8] = b"one\r\ntwo\nthis-is-too-long\nthree";
        let mut r = LineReader::new(input, 8);
        assert_eq!(r.next_line().await.unwrap(), Some(b"one".to_vec()));
        assert_eq!(r.next_line().await.unwrap(), Some(b"two".to_vec()));
        assert!(matches!(r.next_line().await, Err(LineReaderError::TooLong(8))));
        assert_eq!(r.next_line().await.unwrap(), Some(b"three".to_vec()));
        assert_eq!(r.next_line().await.unwrap(), None);
    }
}
