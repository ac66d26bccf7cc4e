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
        .and_then(|v| v.trim().parse::<u64>().ok())
        .map(Duration::from_secs);
    let body = resp.text().await.unwrap_or_default();
    Err(LlmError::Http {
        status: status.as_u16(),
        message: error_message(&body),
        retry_after,
    })
}

/// The human part of a provider's error body (every API nests it in `error.message`).
pub fn error_message(body: &str) -> String {
    let parsed: Option<serde_json::Value> = serde_json::from_str(body).ok();
    let message = parsed.as_ref().and_then(|v| {
        v["error"]["message"]
            .as_str()
            .or_else(|| v["error"].as_str())
            .or_else(|| v["message"].as_str())
            .map(str::to_string)
    });
    match message {
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
    /// The body ended and the decoder was told.
    ended: bool,
    /// Done or an error went out: nothing more is yielded.
    finished: bool,
}

/// Decode an accepted response's body with `wire`.
pub fn decode_sse<D: WireDecoder>(resp: reqwest::Response, wire: D) -> EventStream {
    let state = Decoding {
        bytes: Box::pin(resp.bytes_stream()),
        sse: SseDecoder::new(),
        wire,
        pending: VecDeque::new(),
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
                Some(Ok(chunk)) => match s.sse.push(&chunk) {
                    Ok(events) => {
                        for event in events {
                            match s.wire.on_event(event) {
                                Ok(out) => s.pending.extend(out.into_iter().map(Ok)),
                                Err(e) => {
                                    s.pending.push_back(Err(e));
                                    break;
                                }
                            }
                        }
                    }
                    Err(e) => s.pending.push_back(Err(e)),
                },
                Some(Err(e)) => s
                    .pending
                    .push_back(Err(LlmError::Connect(format!("the stream broke off: {e}")))),
                None => {
                    s.ended = true;
                    let _ = s.sse.finish();
                    match s.wire.on_end() {
                        Ok(out) => s.pending.extend(out.into_iter().map(Ok)),
                        Err(e) => s.pending.push_back(Err(e)),
                    }
                }
            }
        }
    }))
}

/// Run a stream to its end: the whole answer. A failure mid-stream is returned as the
/// error, with what arrived before it dropped; use the stream to keep partial output.
pub async fn collect(mut stream: EventStream) -> Result<Completion, LlmError> {
    let mut completion = Completion::default();
    let mut calls = Vec::new();
    while let Some(event) = stream.next().await {
        completion.apply(&event?, &mut calls);
    }
    completion.tool_calls = calls.into_iter().map(|(_, c)| c).collect();
    if completion.stop_reason.is_none() {
        completion.stop_reason = Some(StopReason::Error);
    }
    Ok(completion)
}
