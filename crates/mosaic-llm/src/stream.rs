//! The provider interface and the machinery shared by every wire API: send a request,
//! check the answer's status, decode its event stream into unified events.

use std::collections::VecDeque;
use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use futures_util::{Stream, StreamExt};

use crate::sse::{SseDecoder, SseEvent};
use crate::{ChatRequest, Completion, LlmError, StopReason, StreamEvent};

/// A stream of unified events. It ends after `Done`, or with an error (after which
/// nothing more comes). Dropping it aborts the call.
pub type EventStream = Pin<Box<dyn Stream<Item = Result<StreamEvent, LlmError>> + Send>>;

/// A boxed future, as the provider interface returns them.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// A model provider: one required streaming method, defaults around it.
pub trait Provider: Send + Sync {
    /// Start a call. Resolves once the provider has accepted the request (status
    /// checked), so connection and HTTP errors surface here, before any event.
    fn stream(&self, request: ChatRequest) -> BoxFuture<'_, Result<EventStream, LlmError>>;

    /// The models the provider offers, where its API lists them.
    fn list_models(&self) -> BoxFuture<'_, Result<Vec<String>, LlmError>> {
        Box::pin(async {
            Err(LlmError::Invalid(
                "this provider does not list its models".into(),
            ))
        })
    }
}

/// Turns one wire API's events into unified events.
pub trait WireDecoder: Send + 'static {
    /// One server-sent event in, any number of unified events out.
    fn on_event(&mut self, event: SseEvent) -> Result<Vec<StreamEvent>, LlmError>;

    /// The byte stream ended. Returns the closing events, or an error when the wire
    /// format says the stream ended too early.
    fn on_end(&mut self) -> Result<Vec<StreamEvent>, LlmError>;
}

/// Check an HTTP answer: success passes, anything else becomes [`LlmError::Http`] with
/// the provider's message and any `Retry-After`. A redirect is an error too: provider
/// clients follow none (see `mosaic_agent::egress`), so it says where it pointed.
pub async fn check_status(resp: reqwest::Response) -> Result<reqwest::Response, LlmError> {
    let status = resp.status();
    if status.is_success() {
        return Ok(resp);
    }
    if status.is_redirection() {
        let location = resp
            .headers()
            .get(reqwest::header::LOCATION)
            .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
            .unwrap_or_else(|| "nowhere".into());
        return Err(LlmError::Http {
            status: status.as_u16(),
            message: format!(
                "a redirect to {location}, which is not followed: set the provider's base URL \
                 to where it should go"
            ),
            retry_after: None,
        });
    }
    let retry_after = resp
        .headers()
        .get(reqwest::header::RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| retry_after(v, std::time::SystemTime::now()));
    let body = resp.text().await.unwrap_or_default();
    Err(LlmError::Http {
        status: status.as_u16(),
        message: error_message(&body),
        retry_after,
    })
}

/// A `Retry-After` value: seconds, or the HTTP date to wait until (as of `now`).
fn retry_after(value: &str, now: std::time::SystemTime) -> Option<Duration> {
    let value = value.trim();
    match value.parse::<u64>() {
        Ok(secs) => Some(Duration::from_secs(secs)),
        Err(_) => {
            let until = httpdate::parse_http_date(value).ok()?;
            Some(until.duration_since(now).unwrap_or_default())
        }
    }
}

/// The human part of a provider's error body (every API nests it in `error.message`).
pub fn error_message(body: &str) -> String {
    let parsed: Option<serde_json::Value> = serde_json::from_str(body).ok();
    match parsed.as_ref().and_then(said_in_error) {
        Some(m) => m,
        None if body.trim().is_empty() => "no details".into(),
        None => body.chars().take(300).collect(),
    }
}

struct Decoding<D> {
    bytes: Pin<Box<dyn Stream<Item = reqwest::Result<bytes::Bytes>> + Send>>,
    sse: SseDecoder,
    wire: D,
    pending: VecDeque<Result<StreamEvent, LlmError>>,
    /// Server-sent events decoded so far.
    events: usize,
    /// The body's first bytes, to say what came instead when no event ever does.
    head: Vec<u8>,
    /// The body ended and the decoder was told.
    ended: bool,
    /// Done or an error went out: nothing more is yielded.
    finished: bool,
}

/// How much of a body that is no event stream is read for the error it may carry.
const HEAD_BYTES: usize = 64 * 1024;
/// How much of a body without any event is quoted to say what it was.
const QUOTED_BYTES: usize = 200;

/// Decode an accepted response's body with `wire`. A body that is no event stream (an
/// HTML page, a JSON answer) fails as the first item, with what it was instead, so a
/// provider's fault never passes for a bad request; an event stream that breaks off or
/// turns malformed yields every event before the fault, then the fault.
pub fn decode_sse<D: WireDecoder>(resp: reqwest::Response, wire: D) -> EventStream {
    let content_type = resp
        .headers()
        .get(reqwest::header::CONTENT_TYPE)
        .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
        .unwrap_or_default();
    if !streams_as(&content_type) {
        return not_a_stream(resp, content_type);
    }
    let state = Decoding {
        bytes: Box::pin(resp.bytes_stream()),
        sse: SseDecoder::new(),
        wire,
        pending: VecDeque::new(),
        events: 0,
        head: Vec::new(),
        ended: false,
        finished: false,
    };
    Box::pin(futures_util::stream::unfold(state, |mut s| async move {
        loop {
            if let Some(item) = s.pending.pop_front() {
                if item.is_err() || matches!(item, Ok(StreamEvent::Done { .. })) {
                    // Nothing follows an error or the end.
                    s.pending.clear();
                    s.finished = true;
                }
                return Some((item, s));
            }
            if s.finished || s.ended {
                return None;
            }
            match s.bytes.next().await {
                Some(Ok(chunk)) => s.on_chunk(&chunk),
                Some(Err(e)) => s.pending.push_back(Err(LlmError::BrokeOff {
                    events: s.events,
                    detail: crate::error::chain(&e),
                })),
                None => s.on_end(),
            }
        }
    }))
}

impl<D: WireDecoder> Decoding<D> {
    fn on_chunk(&mut self, chunk: &[u8]) {
        if self.head.len() < QUOTED_BYTES {
            let room = QUOTED_BYTES - self.head.len();
            self.head.extend(chunk.iter().take(room));
        }
        let mut events = Vec::new();
        // The events before a decoding error are passed on before it.
        let decoded = self.sse.push(chunk, &mut events);
        self.events += events.len();
        for event in events {
            match self.wire.on_event(event) {
                Ok(out) => self.pending.extend(out.into_iter().map(Ok)),
                Err(e) => {
                    self.pending.push_back(Err(e));
                    return;
                }
            }
        }
        if let Err(e) = decoded {
            self.pending.push_back(Err(e));
        }
    }

    fn on_end(&mut self) {
        self.ended = true;
        let _ = self.sse.finish();
        let head = String::from_utf8_lossy(&self.head);
        // A body with no event, not even a field or comment to begin with: say what it was.
        let fields = ["data", "event", "id", "retry", ":"];
        let start = head.trim_start();
        if self.events == 0 && !start.is_empty() && !fields.iter().any(|f| start.starts_with(f)) {
            let words: Vec<&str> = head.split_whitespace().collect();
            self.pending.push_back(Err(LlmError::Protocol(format!(
                "the answer is not an event stream: {}",
                words.join(" ")
            ))));
            return;
        }
        match self.wire.on_end() {
            Ok(out) => self.pending.extend(out.into_iter().map(Ok)),
            Err(e) => self.pending.push_back(Err(e)),
        }
    }
}

/// Whether a body of this media type may be an event stream: `text/event-stream`, or
/// no type or a generic one, as some servers label it (the decoder then judges its
/// content). An HTML page or a JSON document is not.
fn streams_as(content_type: &str) -> bool {
    let essence = content_type.split(';').next().unwrap_or_default().trim();
    [
        "",
        "text/event-stream",
        "text/plain",
        "application/octet-stream",
    ]
    .iter()
    .any(|t| essence.eq_ignore_ascii_case(t))
}

/// The one item of a call answered with something else than an event stream: what it
/// was, and the error a JSON body carried (a server that put its error in a 200).
fn not_a_stream(resp: reqwest::Response, content_type: String) -> EventStream {
    let status = resp.status().as_u16();
    Box::pin(futures_util::stream::once(async move {
        let mut message = format!("it answered {status} with {content_type}, not an event stream");
        let mut body = Vec::new();
        let mut bytes = resp.bytes_stream();
        while let Some(Ok(chunk)) = bytes.next().await {
            body.extend_from_slice(&chunk);
            if body.len() >= HEAD_BYTES {
                break;
            }
        }
        let parsed: Option<serde_json::Value> = serde_json::from_slice(&body).ok();
        if let Some(said) = parsed.as_ref().and_then(said_in_error) {
            message.push_str(&format!(": {said}"));
        }
        Err(LlmError::Protocol(message))
    }))
}

/// The message of an error body (every API nests it in `error.message`).
fn said_in_error(v: &serde_json::Value) -> Option<String> {
    v["error"]["message"]
        .as_str()
        .or_else(|| v["error"].as_str())
        .or_else(|| v["message"].as_str())
        .map(str::to_string)
}

/// A call that failed mid-answer: why, and the part of the answer that came before.
#[derive(Debug, Clone, PartialEq)]
pub struct Partial {
    pub error: LlmError,
    pub completion: Completion,
}

/// Run a stream to its end: the whole answer. A failure mid-stream is returned as the
/// error, with what arrived before it dropped; see [`collect_partial`] to keep it.
pub async fn collect(stream: EventStream) -> Result<Completion, LlmError> {
    collect_partial(stream).await.map_err(|p| p.error)
}

/// Run a stream to its end; a failure mid-stream comes with what arrived before it.
pub async fn collect_partial(mut stream: EventStream) -> Result<Completion, Partial> {
    let mut completion = Completion::default();
    let mut calls = Vec::new();
    while let Some(event) = stream.next().await {
        match event {
            Ok(event) => completion.apply(&event, &mut calls),
            Err(error) => {
                completion.tool_calls = calls.into_iter().map(|(_, c)| c).collect();
                return Err(Partial { error, completion });
            }
        }
    }
    completion.tool_calls = calls.into_iter().map(|(_, c)| c).collect();
    if completion.stop_reason.is_none() {
        completion.stop_reason = Some(StopReason::Error);
    }
    Ok(completion)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, SystemTime};

    #[test]
    fn retry_after_is_read_in_seconds_or_as_a_date() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_445_412_480);
        let later = httpdate::fmt_http_date(now + Duration::from_secs(90));
        let earlier = httpdate::fmt_http_date(now - Duration::from_secs(90));
        assert_eq!(retry_after(" 7 ", now), Some(Duration::from_secs(7)));
        assert_eq!(retry_after(&later, now), Some(Duration::from_secs(90)));
        assert_eq!(retry_after(&earlier, now), Some(Duration::ZERO));
        assert_eq!(retry_after("soon", now), None);
    }
}
