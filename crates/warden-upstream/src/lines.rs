//! A newline-delimited frame reader that never holds more than one frame's limit in memory.

use tokio::io::{AsyncBufRead, AsyncBufReadExt};

/// One read from a [`LineReader`].
#[derive(Debug, PartialEq, Eq)]
pub enum Line {
    /// A complete line, without its terminator.
    Frame(Vec<u8>),
    /// A line longer than the limit was skipped; carries its length so far.
    Oversized(usize),
    /// End of input.
    Eof,
}

/// Reads lines of at most `max` bytes; longer lines are skipped to their end, not buffered.
pub struct LineReader<R> {
    inner: R,
    max: usize,
}

impl<R: AsyncBufRead + Unpin> LineReader<R> {
    /// Wraps a buffered reader.
    pub fn new(inner: R, max: usize) -> Self {
        LineReader { inner, max }
    }

    /// Reads the next line.
    pub async fn next(&mut self) -> std::io::Result<Line> {
        let mut line = Vec::new();
        let mut skipped: Option<usize> = None;
        loop {
            let buf = self.inner.fill_buf().await?;
            if buf.is_empty() {
                return Ok(match (skipped, line.is_empty()) {
                    (Some(n), _) => Line::Oversized(n),
                    (None, true) => Line::Eof,
                    (None, false) => Line::Frame(line),
                });
            }
            let (chunk, done) = match buf.iter().position(|&b| b == b'\n') {
                Some(i) => (&buf[..i], Some(i + 1)),
                None => (buf, None),
            };
            match skipped.as_mut() {
                Some(n) => *n += chunk.len(),
                None if line.len() + chunk.len() > self.max => {
                    skipped = Some(line.len() + chunk.len());
                    line = Vec::new();
                }
                None => line.extend_from_slice(chunk),
            }
            let consumed = done.unwrap_or(buf.len());
            self.inner.consume(consumed);
            if done.is_some() {
                if let Some(n) = skipped {
                    return Ok(Line::Oversized(n));
                }
                if line.last() == Some(&b'\r') {
                    line.pop();
                }
                return Ok(Line::Frame(line));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::BufReader;

    #[tokio::test]
    async fn reads_and_skips() {
        let data: &[u8] = b"short\r\nthis line is far too long\nok\nlast";
        let mut r = LineReader::new(BufReader::with_capacity(4, data), 10);
        assert_eq!(r.next().await.unwrap(), Line::Frame(b"short".to_vec()));
        assert!(matches!(r.next().await.unwrap(), Line::Oversized(_)));
        assert_eq!(r.next().await.unwrap(), Line::Frame(b"ok".to_vec()));
        assert_eq!(r.next().await.unwrap(), Line::Frame(b"last".to_vec()));
        assert_eq!(r.next().await.unwrap(), Line::Eof);
    }
}
