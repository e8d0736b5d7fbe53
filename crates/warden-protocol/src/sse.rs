//! Server-Sent Events framing for Streamable HTTP: an encoder and a bounded incremental decoder.

use bytes::{Bytes, BytesMut};

/// Encodes one JSON-RPC message as an SSE `message` event.
pub fn encode_event(json: &[u8]) -> Bytes {
    let mut out = BytesMut::with_capacity(json.len() + 24);
    out.extend_from_slice(b"event: message\ndata: ");
    // Compact JSON never contains a raw newline; guard anyway so a frame cannot split an event.
    for &b in json {
        if b == b'\n' || b == b'\r' {
            out.extend_from_slice(b"\ndata: ");
        } else {
            out.extend_from_slice(&[b]);
        }
    }
    out.extend_from_slice(b"\n\n");
    out.freeze()
}

/// An SSE comment line, used as a keep-alive.
pub fn keep_alive() -> Bytes {
    Bytes::from_static(b":\n\n")
}

/// One decoded event.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Event {
    /// The `event:` field, if any.
    pub event: Option<String>,
    /// The joined `data:` lines.
    pub data: String,
    /// The `id:` field, if any.
    pub id: Option<String>,
    /// The `retry:` field in milliseconds, if any.
    pub retry: Option<u64>,
}

/// Why a stream could not be decoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SseError {
    /// An event grew past the decoder's limit.
    #[error("event larger than {0} bytes")]
    TooLarge(usize),
}

/// An incremental SSE decoder that never buffers more than `max_event_bytes`.
#[derive(Debug)]
pub struct Decoder {
    buf: BytesMut,
    current: Event,
    has_data: bool,
    data_len: usize,
    max_event_bytes: usize,
}

impl Decoder {
    /// A decoder that refuses events larger than `max_event_bytes`.
    pub fn new(max_event_bytes: usize) -> Self {
        Decoder { buf: BytesMut::new(), current: Event::default(), has_data: false, data_len: 0, max_event_bytes }
    }

    /// Feeds bytes and returns the events they complete.
    pub fn feed(&mut self, chunk: &[u8]) -> Result<Vec<Event>, SseError> {
        self.buf.extend_from_slice(chunk);
        let mut out = Vec::new();
        loop {
            let Some(pos) = self.buf.iter().position(|&b| b == b'\n' || b == b'\r') else {
                if self.buf.len() + self.data_len > self.max_event_bytes {
                    return Err(SseError::TooLarge(self.max_event_bytes));
                }
                return Ok(out);
            };
            // A lone '\r' at the end of the buffer may be the first half of "\r\n".
            let mut end = pos + 1;
            if self.buf[pos] == b'\r' {
                if pos + 1 == self.buf.len() {
                    return Ok(out);
                }
                if self.buf[pos + 1] == b'\n' {
                    end += 1;
                }
            }
            let line = self.buf.split_to(end);
            let line = &line[..pos];
            if let Some(ev) = self.line(line)? {
                out.push(ev);
            }
        }
    }

    fn line(&mut self, line: &[u8]) -> Result<Option<Event>, SseError> {
        if line.is_empty() {
            if !self.has_data {
                self.current = Event::default();
                return Ok(None);
            }
            self.has_data = false;
            self.data_len = 0;
            return Ok(Some(std::mem::take(&mut self.current)));
        }
        if line[0] == b':' {
            return Ok(None);
        }
        let (field, value) = match line.iter().position(|&b| b == b':') {
            Some(i) => {
                let v = &line[i + 1..];
                (&line[..i], v.strip_prefix(b" ").unwrap_or(v))
            }
            None => (line, &b""[..]),
        };
        let value = String::from_utf8_lossy(value);
        match field {
            b"data" => {
                self.data_len += value.len() + 1;
                if self.data_len > self.max_event_bytes {
                    return Err(SseError::TooLarge(self.max_event_bytes));
                }
                if self.has_data {
                    self.current.data.push('\n');
                }
                self.current.data.push_str(&value);
                self.has_data = true;
            }
            b"event" => self.current.event = Some(value.into_owned()),
            b"id" => self.current.id = Some(value.into_owned()),
            b"retry" => self.current.retry = value.parse().ok(),
            _ => {}
        }
        Ok(None)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_split_events() {
        let mut d = Decoder::new(1024);
        let mut evs = d.feed(b"event: message\nda").unwrap();
        assert!(evs.is_empty());
        evs.extend(d.feed(b"ta: {\"a\":1}\n\n: keepalive\n\nid: 7\r\ndata: x\r\ndata: y\r\n\r\n").unwrap());
        assert_eq!(evs.len(), 2);
        assert_eq!(evs[0].data, "{\"a\":1}");
        assert_eq!(evs[0].event.as_deref(), Some("message"));
        assert_eq!(evs[1].data, "x\ny");
        assert_eq!(evs[1].id.as_deref(), Some("7"));
    }

    #[test]
    fn bounds_event_size() {
        let mut d = Decoder::new(16);
        assert!(d.feed(b"data: 0123456789012345678901234\n").is_err());
        let mut d = Decoder::new(16);
        assert!(d.feed(&[b'a'; 64]).is_err(), "an endless line is refused too");
    }

    #[test]
    fn encodes_round_trip() {
        let mut d = Decoder::new(1024);
        let evs = d.feed(&encode_event(br#"{"x":"y"}"#)).unwrap();
        assert_eq!(evs[0].data, r#"{"x":"y"}"#);
    }
}
