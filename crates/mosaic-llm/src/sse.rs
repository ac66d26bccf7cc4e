//! A server-sent events decoder (the WHATWG event-stream format), fed with byte chunks
//! as they arrive. Every provider streams with it; it is strict where the format is
//! and bounded where a broken or hostile server could make it grow.

use crate::LlmError;

/// One dispatched event.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SseEvent {
    /// The `event:` field; empty means the default type, `message`.
    pub event: String,
    /// The `data:` lines, joined with `\n`.
    pub data: String,
}

/// Largest event accepted (data of one event); beyond it the stream is malformed.
const MAX_EVENT_BYTES: usize = 8 * 1024 * 1024;

/// Incremental decoder: push bytes, take complete events.
#[derive(Debug, Default)]
pub struct SseDecoder {
    line: Vec<u8>,
    /// A `\r` ended the previous chunk: a `\n` starting the next one belongs to it.
    after_cr: bool,
    event: String,
    data: String,
    has_data: bool,
}

impl SseDecoder {
    pub fn new() -> Self {
        SseDecoder::default()
    }

    /// Feed a chunk; the events it completed are added to `out`. On an error (bytes that
    /// are not UTF-8, an event too large), `out` still has every event completed before
    /// it, so what a provider sent before its bad bytes is kept.
    pub fn push(&mut self, chunk: &[u8], out: &mut Vec<SseEvent>) -> Result<(), LlmError> {
        for &b in chunk {
            if self.after_cr {
                self.after_cr = false;
                if b == b'\n' {
                    continue;
                }
            }
            match b {
                b'\n' => self.end_line(out)?,
                b'\r' => {
                    self.after_cr = true;
                    self.end_line(out)?;
                }
                _ => {
                    self.line.push(b);
                    if self.line.len() > MAX_EVENT_BYTES {
                        return Err(LlmError::Protocol(
                            "an event-stream line is too long".into(),
                        ));
                    }
                }
            }
        }
        Ok(())
    }

    /// The stream ended: an event without its closing blank line is dropped, as the
    /// format says; the caller decides whether ending here was allowed.
    pub fn finish(&mut self) -> Vec<SseEvent> {
        Vec::new()
    }

    fn end_line(&mut self, out: &mut Vec<SseEvent>) -> Result<(), LlmError> {
        let line = std::mem::take(&mut self.line);
        let line = String::from_utf8(line)
            .map_err(|_| LlmError::Protocol("the event stream is not UTF-8".into()))?;
        if line.is_empty() {
            if self.has_data {
                out.push(SseEvent {
                    event: std::mem::take(&mut self.event),
                    data: std::mem::take(&mut self.data),
                });
            }
            self.event.clear();
            self.has_data = false;
            return Ok(());
        }
        if line.starts_with(':') {
            return Ok(()); // comment (keep-alive)
        }
        let (field, value) = match line.split_once(':') {
            Some((f, v)) => (f, v.strip_prefix(' ').unwrap_or(v)),
            None => (line.as_str(), ""),
        };
        match field {
            "event" => self.event = value.to_string(),
            "data" => {
                if self.has_data {
                    self.data.push('\n');
                }
                self.data.push_str(value);
                self.has_data = true;
                if self.data.len() > MAX_EVENT_BYTES {
                    return Err(LlmError::Protocol("an event is too large".into()));
                }
            }
            // `id` and `retry` matter to reconnecting browsers, not to one model call.
            _ => {}
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use pretty_assertions::assert_eq;

    fn ev(event: &str, data: &str) -> SseEvent {
        SseEvent {
            event: event.into(),
            data: data.into(),
        }
    }

    /// The events of `chunks` fed in turn, and the error that stopped them, if any.
    fn decode(chunks: &[&[u8]]) -> (Vec<SseEvent>, Option<LlmError>) {
        let mut d = SseDecoder::new();
        let mut got = Vec::new();
        for chunk in chunks {
            if let Err(e) = d.push(chunk, &mut got) {
                return (got, Some(e));
            }
        }
        got.extend(d.finish());
        (got, None)
    }

    #[test]
    fn events_split_across_chunks_and_line_endings_are_reassembled() {
        let (got, error) = decode(&[
            b"event: a\r",
            b"\ndata: 1\r\n\r\nda",
            b"ta: x\ndata:y\n\n: keep-alive\n\ndata: z\r\r",
        ]);
        assert_eq!(
            (got, error),
            (vec![ev("a", "1"), ev("", "x\ny"), ev("", "z")], None)
        );
    }

    #[test]
    fn an_unterminated_event_is_not_dispatched() {
        assert_eq!(decode(&[b"data: partial"]), (vec![], None));
    }

    #[test]
    fn invalid_utf8_is_a_protocol_error_after_the_events_before_it() {
        let (got, error) = decode(&[b"data: a\n\ndata: b\n\ndata: \xff\xfe\n\ndata: c\n\n"]);
        assert_eq!(got, vec![ev("", "a"), ev("", "b")]);
        assert_eq!(
            error,
            Some(LlmError::Protocol("the event stream is not UTF-8".into()))
        );
    }
}
