//! Server-sent events: a small decoder (the WHATWG format: `data:` lines joined, `\n`,
//! `\r\n` or `\r` line ends, comments and `retry` ignored) fed from a response body as
//! bytes arrive, so each event reaches the caller the moment the gateway sends it. Two
//! streams read through it: a streamed chat completion ([`ChatStream`]) and a session's
//! live events ([`crate::EventStream`]).

use std::collections::VecDeque;

use bytes::Bytes;
use futures_util::stream::BoxStream;
use futures_util::StreamExt;
use serde_json::Value;

use crate::models::Routing;
use crate::{ClientError, Result};

/// Longest line or event accepted; beyond it the stream is broken (or hostile).
const MAX_EVENT_BYTES: usize = 8 * 1024 * 1024;

/// One complete event.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct SseEvent {
    /// The `id:` field of this event, when it had one. (Unlike a browser, which keeps
    /// the last id seen, an event without the field has none here: the gateway's
    /// `resync` events are not numbered.)
    pub id: Option<String>,
    /// The `event:` field, when given.
    pub event: Option<String>,
    pub data: String,
}

/// Incremental decoder: push bytes, take each complete event.
#[derive(Debug, Default)]
pub(crate) struct SseDecoder {
    line: Vec<u8>,
    /// A `\r` ended the previous chunk: a `\n` starting the next one belongs to it.
    after_cr: bool,
    current: SseEvent,
    has_data: bool,
}

impl SseDecoder {
    /// Feed a chunk; the events it completed are appended to `out`.
    pub(crate) fn push(&mut self, chunk: &[u8], out: &mut VecDeque<SseEvent>) -> Result<()> {
        for &b in chunk {
            if std::mem::take(&mut self.after_cr) && b == b'\n' {
                continue;
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
                        return Err(ClientError::Decode(
                            "an event-stream line is too long".into(),
                        ));
                    }
                }
            }
        }
        Ok(())
    }

    fn end_line(&mut self, out: &mut VecDeque<SseEvent>) -> Result<()> {
        let line = std::mem::take(&mut self.line);
        if line.is_empty() {
            // An event without data is not dispatched (its fields are dropped too).
            let event = std::mem::take(&mut self.current);
            if std::mem::take(&mut self.has_data) {
                out.push_back(event);
            }
            return Ok(());
        }
        let line = String::from_utf8(line)
            .map_err(|_| ClientError::Decode("the event stream is not UTF-8".into()))?;
        let (field, value) = match line.split_once(':') {
            Some((field, value)) => (field, value.strip_prefix(' ').unwrap_or(value)),
            None => (line.as_str(), ""),
        };
        // Empty field: a comment (keep-alive). `retry`: reconnecting is the caller's.
        match field {
            "data" => {
                if self.has_data {
                    self.current.data.push('\n');
                }
                self.current.data.push_str(value);
                self.has_data = true;
                if self.current.data.len() > MAX_EVENT_BYTES {
                    return Err(ClientError::Decode("an event is too long".into()));
                }
            }
            "id" if !value.contains('\0') => self.current.id = Some(value.to_string()),
            "event" => self.current.event = Some(value.to_string()),
            _ => {}
        }
        Ok(())
    }
}

/// A streamed chat completion: its chunks (OpenAI `chat.completion.chunk` objects) in
/// order, ending at `[DONE]`.
pub struct ChatStream {
    url: String,
    routing: Routing,
    body: BoxStream<'static, reqwest::Result<Bytes>>,
    decoder: SseDecoder,
    pending: VecDeque<SseEvent>,
    done: bool,
}

impl ChatStream {
    pub(crate) fn new(url: String, routing: Routing, resp: reqwest::Response) -> ChatStream {
        ChatStream {
            url,
            routing,
            body: resp.bytes_stream().boxed(),
            decoder: SseDecoder::default(),
            pending: VecDeque::new(),
            done: false,
        }
    }

    /// Which provider and model answered, and what was tried before them.
    pub fn routing(&self) -> &Routing {
        &self.routing
    }

    /// The next chunk; `None` after `[DONE]`. A chunk carrying an `error` (the model
    /// failed mid-answer) and a stream that breaks off before `[DONE]` are errors.
    pub async fn next(&mut self) -> Option<Result<Value>> {
        loop {
            if let Some(event) = self.pending.pop_front() {
                return self.chunk(event.data);
            }
            if self.done {
                return None;
            }
            match self.body.next().await {
                Some(Ok(bytes)) => {
                    if let Err(e) = self.decoder.push(&bytes, &mut self.pending) {
                        return self.fail(e);
                    }
                }
                Some(Err(source)) => {
                    let url = self.url.clone();
                    return self.fail(ClientError::Transport { url, source });
                }
                None => {
                    return self.fail(ClientError::Stream(
                        "the gateway closed the stream before [DONE]".into(),
                    ))
                }
            }
        }
    }

    fn chunk(&mut self, payload: String) -> Option<Result<Value>> {
        if payload.trim() == "[DONE]" {
            self.finish();
            return None;
        }
        let chunk: Value = match serde_json::from_str(&payload) {
            Ok(v) => v,
            Err(e) => return self.fail(ClientError::Decode(format!("chunk is not JSON: {e}"))),
        };
        if let Some(error) = chunk.get("error") {
            let message = error["message"]
                .as_str()
                .map(str::to_string)
                .unwrap_or_else(|| error.to_string());
            return self.fail(ClientError::Stream(message));
        }
        Some(Ok(chunk))
    }

    fn finish(&mut self) {
        self.done = true;
        self.pending.clear();
    }

    fn fail(&mut self, error: ClientError) -> Option<Result<Value>> {
        self.finish();
        Some(Err(error))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use pretty_assertions::assert_eq;

    fn events(pieces: &[&[u8]]) -> Vec<SseEvent> {
        let mut decoder = SseDecoder::default();
        let mut out = VecDeque::new();
        for piece in pieces {
            decoder.push(piece, &mut out).unwrap();
        }
        out.into()
    }

    fn decode(pieces: &[&[u8]]) -> Vec<String> {
        events(pieces).into_iter().map(|e| e.data).collect()
    }

    #[test]
    fn events_are_split_on_blank_lines_whatever_the_line_ends() {
        assert_eq!(
            decode(&[b"data: {\"a\":1}\n\ndata: two\r\n\r\ndata:three\r\rdata: [DONE]\n\n"]),
            vec!["{\"a\":1}", "two", "three", "[DONE]"]
        );
    }

    #[test]
    fn an_event_split_across_chunks_arrives_whole_and_only_once_complete() {
        let mut decoder = SseDecoder::default();
        let mut out = VecDeque::new();
        decoder.push(b"da", &mut out).unwrap();
        decoder.push(b"ta: hel", &mut out).unwrap();
        decoder.push(b"lo\r", &mut out).unwrap();
        assert!(out.is_empty());
        decoder.push(b"\n\r\n", &mut out).unwrap();
        assert_eq!(out.pop_front().unwrap().data, "hello");
    }

    #[test]
    fn data_lines_join_and_comments_and_other_fields_are_ignored() {
        assert_eq!(
            decode(&[b": keep-alive\n\nevent: chunk\nid: 7\ndata: a\ndata:  b\nretry: 5\n\n"]),
            vec!["a\n b"]
        );
        assert_eq!(decode(&[b"event: ping\n\n"]), Vec::<String>::new());
    }

    #[test]
    fn each_event_carries_its_own_id_and_name() {
        assert_eq!(
            events(&[b"id: 7\nevent: text_delta\ndata: {}\n\nevent: resync\ndata: r\n\n"]),
            vec![
                SseEvent {
                    id: Some("7".into()),
                    event: Some("text_delta".into()),
                    data: "{}".into(),
                },
                SseEvent {
                    id: None,
                    event: Some("resync".into()),
                    data: "r".into(),
                },
            ]
        );
        // Fields of an event without data do not leak into the next one.
        assert_eq!(
            events(&[b"id: 3\n\ndata: x\n\n"]),
            vec![SseEvent {
                data: "x".into(),
                ..SseEvent::default()
            }]
        );
    }

    #[test]
    fn an_endless_line_is_refused() {
        let mut decoder = SseDecoder::default();
        let mut out = VecDeque::new();
        let big = vec![b'x'; MAX_EVENT_BYTES + 1];
        assert!(decoder.push(&big, &mut out).is_err());
    }
}
