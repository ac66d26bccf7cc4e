//! An OpenAI-compatible endpoint, so existing OpenAI clients and SDKs can use Mosaic:
//! `POST /v1/chat/completions` (streaming or not, tools passed through) and
//! `GET /v1/models`, authenticated with a Mosaic API token. `model` is a route name or
//! `provider/model`; where the call went (and what it fell back from) is in the
//! `x-mosaic-provider`, `x-mosaic-model` and `x-mosaic-fallbacks` headers, and in a
//! `mosaic` field of non-streamed answers.

use std::collections::HashMap;

use crate::openapi::lazy::routes;
use crate::openapi::lazy::ApiRouter;
use axum::body::Body;
use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue};
use axum::response::{IntoResponse, Response};
use futures_util::StreamExt;
use mosaic_api::ErrorBody;
use mosaic_llm::{ChatRequest, Message, Role, StopReason, StreamEvent, ToolCall, ToolSpec, Usage};
use serde_json::{json, Value};
use tokio_util::sync::CancellationToken;

use crate::auth::Auth;
use crate::error::{ApiError, ApiResult};
use crate::extract::Json;
use crate::models::Call;
use crate::revocation::Watch;
use crate::AppState;

/// The routes of the OpenAI-compatible endpoints.
pub fn router() -> ApiRouter<AppState> {
    ApiRouter::new()
        .routes(routes!(chat_completions))
        .routes(routes!(openai_models))
}

fn text_of(content: &Value) -> ApiResult<String> {
    match content {
        Value::Null => Ok(String::new()),
        Value::String(s) => Ok(s.clone()),
        // Content parts: only text is supported here.
        Value::Array(parts) => parts
            .iter()
            .map(|p| match (p["type"].as_str(), p["text"].as_str()) {
                (Some("text"), Some(t)) => Ok(t.to_string()),
                _ => Err(ApiError::bad_request(
                    "only text content parts are supported",
                )),
            })
            .collect::<ApiResult<Vec<_>>>()
            .map(|v| v.join("")),
        _ => Err(ApiError::bad_request(
            "message content must be a string or a list of parts",
        )),
    }
}

/// The provider-neutral request for an OpenAI Chat Completions body.
pub fn parse_request(body: &Value) -> ApiResult<(String, ChatRequest, bool, bool)> {
    let model = body["model"]
        .as_str()
        .filter(|m| !m.is_empty())
        .ok_or_else(|| {
            ApiError::bad_request("`model` is required (a route name or provider/model)")
        })?
        .to_string();
    let raw = body["messages"]
        .as_array()
        .ok_or_else(|| ApiError::bad_request("`messages` must be a list"))?;
    let mut messages = Vec::with_capacity(raw.len());
    for m in raw {
        let role = match m["role"].as_str() {
            Some("system") | Some("developer") => Role::System,
            Some("user") => Role::User,
            Some("assistant") => Role::Assistant,
            Some("tool") => Role::Tool,
            other => {
                return Err(ApiError::bad_request(format!(
                    "unknown message role {other:?}"
                )))
            }
        };
        let tool_calls = match m["tool_calls"].as_array() {
            Some(calls) => calls
                .iter()
                .map(|c| {
                    Ok(ToolCall {
                        id: c["id"].as_str().unwrap_or_default().to_string(),
                        name: c["function"]["name"]
                            .as_str()
                            .ok_or_else(|| {
                                ApiError::bad_request("a tool call needs function.name")
                            })?
                            .to_string(),
                        arguments: c["function"]["arguments"]
                            .as_str()
                            .unwrap_or("{}")
                            .to_string(),
                    })
                })
                .collect::<ApiResult<Vec<_>>>()?,
            None => Vec::new(),
        };
        messages.push(Message {
            role,
            content: text_of(&m["content"])?,
            tool_calls,
            tool_call_id: m["tool_call_id"].as_str().map(str::to_string),
            // Chat Completions has no way to carry a provider's reasoning back.
            reasoning: Vec::new(),
        });
    }
    let tools = match body["tools"].as_array() {
        Some(tools) => tools
            .iter()
            .map(|t| {
                let f = &t["function"];
                Ok(ToolSpec {
                    name: f["name"]
                        .as_str()
                        .ok_or_else(|| ApiError::bad_request("a tool needs function.name"))?
                        .to_string(),
                    description: f["description"].as_str().unwrap_or_default().to_string(),
                    parameters: f
                        .get("parameters")
                        .cloned()
                        .unwrap_or_else(|| json!({"type": "object", "properties": {}})),
                })
            })
            .collect::<ApiResult<Vec<_>>>()?,
        None => Vec::new(),
    };
    let max_tokens = body["max_completion_tokens"]
        .as_u64()
        .or_else(|| body["max_tokens"].as_u64())
        .map(|n| n.min(u32::MAX as u64) as u32);
    let request = ChatRequest {
        model: model.clone(),
        messages,
        tools,
        max_tokens,
        temperature: body["temperature"].as_f64().map(|t| t as f32),
        thinking_budget: None,
    };
    let stream = body["stream"].as_bool().unwrap_or(false);
    let include_usage = body["stream_options"]["include_usage"]
        .as_bool()
        .unwrap_or(false);
    Ok((model, request, stream, include_usage))
}

fn finish_reason(reason: StopReason) -> &'static str {
    match reason {
        StopReason::Stop | StopReason::Error | StopReason::Aborted => "stop",
        StopReason::Length => "length",
        StopReason::ToolUse => "tool_calls",
    }
}

fn usage_json(u: &Usage) -> Value {
    json!({
        "prompt_tokens": u.input_tokens,
        "completion_tokens": u.output_tokens,
        "total_tokens": u.input_tokens + u.output_tokens,
        "prompt_tokens_details": {"cached_tokens": u.cached_tokens},
    })
}

/// The steps that failed first, as the headers and `mosaic` metadata show them.
fn fallbacks(call: &Call) -> Value {
    call.fallbacks
        .iter()
        .map(|f| json!({"provider": f.provider, "model": f.model, "error": f.error.to_string()}))
        .collect()
}

fn route_headers(call: &Call) -> HeaderMap {
    let mut h = HeaderMap::new();
    for (name, value) in [
        ("x-mosaic-provider", call.provider.clone()),
        ("x-mosaic-model", call.model.clone()),
        ("x-mosaic-fallbacks", fallbacks(call).to_string()),
    ] {
        if let Ok(v) = HeaderValue::from_str(&value) {
            h.insert(name, v);
        }
    }
    h
}

fn now_secs() -> u64 {
    (mosaic_store::now_ms() / 1000) as u64
}

/// OpenAI Chat Completions, through the routing matrix.
#[utoipa::path(post, path = "/v1/chat/completions", tag = "openai", operation_id = "chat_completions",
    request_body(content = Value, description = "An OpenAI Chat Completions request; `model` is a route name or provider/model"),
    responses((status = 200, description = "A chat completion, or its chunks as server-sent events", body = Value),
        (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 429, description = "Every model is rate-limited; `Retry-After` says when to come back", body = ErrorBody),
        (status = 502, description = "The provider failed: its key refused, an answer not in its wire format, a stream that stalled or broke off (with `partial_content`)", body = ErrorBody),
        (status = 503, body = ErrorBody)))]
pub async fn chat_completions(
    State(state): State<AppState>,
    auth: Auth,
    Json(body): Json<Value>,
) -> ApiResult<Response> {
    let (model, request, stream, include_usage) = parse_request(&body)?;
    let call = state
        .models
        .call(&state.store, &auth.principal, &model, request)
        .await?;
    let id = format!("chatcmpl-{}", mosaic_store::new_id().replace('-', ""));
    if stream {
        let guard = Guard {
            watch: state.revocations.watch(&auth),
            stopping: state.runtime.stopping(),
        };
        Ok(stream_answer(call, id, model, include_usage, guard))
    } else {
        whole_answer(call, id, model).await
    }
}

async fn whole_answer(call: Call, id: String, model: String) -> ApiResult<Response> {
    let headers = route_headers(&call);
    let meta =
        json!({"provider": call.provider, "model": call.model, "fallbacks": fallbacks(&call)});
    let label = format!("{}/{}", call.provider, call.model);
    let done = match mosaic_llm::collect_partial(call.stream).await {
        Ok(done) => done,
        Err(partial) => return Ok(failed_mid_answer(&label, &partial)),
    };
    let mut message = json!({"role": "assistant", "content": done.text});
    if !done.tool_calls.is_empty() {
        message["tool_calls"] = done
            .tool_calls
            .iter()
            .map(|c| json!({"id": c.id, "type": "function", "function": {"name": c.name, "arguments": c.arguments}}))
            .collect();
    }
    if !done.thinking.is_empty() {
        message["reasoning_content"] = json!(done.thinking);
    }
    let body = json!({
        "id": id,
        "object": "chat.completion",
        "created": now_secs(),
        "model": model,
        "choices": [{"index": 0, "message": message,
            "finish_reason": finish_reason(done.stop_reason.unwrap_or(StopReason::Stop))}],
        "usage": usage_json(&done.usage),
        "mosaic": meta,
    });
    Ok((headers, axum::Json(body)).into_response())
}

/// The error answer of a call that failed mid-answer: its code by the failure's kind,
/// and the text that had arrived, as `partial_content`, so a client can still show it.
fn failed_mid_answer(label: &str, partial: &mosaic_llm::Partial) -> Response {
    // The stream's errors are already as this caller may see them (`models::metered`).
    let error = crate::upstream::api_error(label, &partial.error, true);
    let status = axum::http::StatusCode::from_u16(error.code.status())
        .unwrap_or(axum::http::StatusCode::BAD_GATEWAY);
    let mut body = json!(ErrorBody::new(error.code, error.message));
    if !partial.completion.text.is_empty() {
        body["error"]["partial_content"] = json!(partial.completion.text);
    }
    (status, axum::Json(body)).into_response()
}

fn stream_answer(
    call: Call,
    id: String,
    model: String,
    include_usage: bool,
    guard: Guard,
) -> Response {
    let mut headers = route_headers(&call);
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/event-stream"),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    let created = now_secs();
    let text_chunk = TextChunks::new(&id, &model, created);
    let envelope = move |choices: Value| -> Value {
        json!({"id": id, "object": "chat.completion.chunk", "created": created, "model": model,
            "choices": choices})
    };
    let chunk = {
        let envelope = envelope.clone();
        move |delta: Value, finish: Option<&str>| -> String {
            let c = envelope(json!([{"index": 0, "delta": delta, "finish_reason": finish}]));
            format!("data: {c}\n\n")
        }
    };
    // The usage chunk has the same envelope, no choices, and the usage: as OpenAI sends it.
    let usage_chunk = move |u: &Usage| -> String {
        let mut c = envelope(json!([]));
        c["usage"] = usage_json(u);
        format!("data: {c}\n\n")
    };
    let mut tool_index: HashMap<usize, usize> = HashMap::new();
    let mut usage = Usage::default();
    let first = chunk(json!({"role": "assistant", "content": ""}), None);
    let events = call.stream.flat_map(move |event| {
        let out: Vec<String> = match event {
            Ok(StreamEvent::TextDelta { text }) => vec![text_chunk.delta("content", &text)],
            Ok(StreamEvent::ThinkingDelta { text }) => {
                vec![text_chunk.delta("reasoning_content", &text)]
            }
            Ok(StreamEvent::ToolCallStart { index, id, name }) => {
                let n = tool_index.len();
                let i = *tool_index.entry(index).or_insert(n);
                vec![chunk(
                    json!({"tool_calls": [{"index": i, "id": id, "type": "function",
                        "function": {"name": name, "arguments": ""}}]}),
                    None,
                )]
            }
            Ok(StreamEvent::ToolCallDelta { index, arguments }) => {
                let i = tool_index.get(&index).copied().unwrap_or(0);
                vec![chunk(
                    json!({"tool_calls": [{"index": i, "function": {"arguments": arguments}}]}),
                    None,
                )]
            }
            // Nothing in Chat Completions carries it.
            Ok(StreamEvent::ToolCallEnd { .. } | StreamEvent::Reasoning { .. }) => Vec::new(),
            Ok(StreamEvent::Usage { usage: u }) => {
                usage.merge(u);
                Vec::new()
            }
            Ok(StreamEvent::Done { stop_reason }) => {
                let mut v = vec![chunk(json!({}), Some(finish_reason(stop_reason)))];
                if include_usage {
                    v.push(usage_chunk(&usage));
                }
                v.push("data: [DONE]\n\n".to_string());
                v
            }
            // The stream ends here (nothing follows an error): `[DONE]` closes it as
            // OpenAI clients expect, after an error they report as one.
            Err(e) => {
                let code = serde_json::to_value(crate::upstream::code(&e)).unwrap_or_default();
                vec![
                    format!(
                        "data: {}\n\n",
                        json!({"error": {"message": e.to_string(), "type": code, "code": code}})
                    ),
                    "data: [DONE]\n\n".to_string(),
                ]
            }
        };
        futures_util::stream::iter(out)
    });
    let body = guard
        .wrap(futures_util::stream::iter([first]).chain(events))
        .map(|s| Ok::<_, std::convert::Infallible>(bytes::Bytes::from(s)));
    (headers, Body::from_stream(body)).into_response()
}

/// The chunks of text and thinking deltas (nearly all of a stream), written straight
/// out instead of through a `Value`: the same bytes `serde_json` prints for the
/// envelope (its keys in order), for a fraction of the allocations.
struct TextChunks {
    /// What follows the delta: the finish reason, the index and the envelope's fields.
    tail: String,
}

impl TextChunks {
    fn new(id: &str, model: &str, created: u64) -> TextChunks {
        let quoted = |s: &str| serde_json::to_string(s).unwrap_or_default();
        TextChunks {
            tail: format!(
                ",\"finish_reason\":null,\"index\":0}}],\"created\":{created},\"id\":{},\"model\":{},\
                 \"object\":\"chat.completion.chunk\"}}\n\n",
                quoted(id),
                quoted(model)
            ),
        }
    }

    /// `{"<key>": text}` as the delta of a chunk.
    fn delta(&self, key: &str, text: &str) -> String {
        let text = serde_json::to_string(text).unwrap_or_default();
        let mut out = String::with_capacity(40 + key.len() + text.len() + self.tail.len());
        out.push_str("data: {\"choices\":[{\"delta\":{\"");
        out.push_str(key);
        out.push_str("\":");
        out.push_str(&text);
        out.push('}');
        out.push_str(&self.tail);
        out
    }
}

/// A comment line sent while the model is silent, so proxies keep the stream open.
const KEEPALIVE: std::time::Duration = std::time::Duration::from_secs(15);

/// What may end a streamed completion before the model does: its credential revoked,
/// or the gateway stopping. Either ends it with an error chunk and `[DONE]`, which
/// OpenAI clients report as an error instead of a silently truncated answer.
struct Guard {
    watch: Watch,
    stopping: CancellationToken,
}

type Pieces = std::pin::Pin<Box<dyn futures_util::Stream<Item = String> + Send>>;

impl Guard {
    fn wrap(
        self,
        pieces: impl futures_util::Stream<Item = String> + Send + 'static,
    ) -> impl futures_util::Stream<Item = String> {
        let pieces: Pieces = Box::pin(pieces);
        // One timer for the whole stream, pushed back at each piece (cheap: a later
        // deadline does not touch the timer wheel), rather than one per piece.
        let keepalive = Box::pin(tokio::time::sleep(KEEPALIVE));
        futures_util::stream::unfold(Some((pieces, self, keepalive)), |state| async move {
            let (mut pieces, guard, mut keepalive) = state?;
            let cut = |code: &str, message: &str| {
                let error = json!({"error": {"message": message, "type": code, "code": code}});
                format!("data: {error}\n\ndata: [DONE]\n\n")
            };
            let piece = tokio::select! {
                biased;
                _ = guard.watch.revoked() => {
                    return Some((cut("revoked", "the credential of this request was revoked"), None))
                }
                _ = guard.stopping.cancelled() => return Some((
                    cut("shutting_down", "the gateway is stopping; the answer was cut off"),
                    None,
                )),
                next = pieces.next() => next?,
                _ = keepalive.as_mut() => ": keepalive\n\n".to_string(),
            };
            keepalive
                .as_mut()
                .reset(tokio::time::Instant::now() + KEEPALIVE);
            Some((piece, Some((pieces, guard, keepalive))))
        })
    }
}

/// The models you can call, as OpenAI lists them: routes, then `provider/model`s.
#[utoipa::path(get, path = "/v1/models", tag = "openai", operation_id = "openai_models",
    responses((status = 200, description = "An OpenAI model list", body = Value), (status = 401, body = ErrorBody)))]
pub async fn openai_models(State(state): State<AppState>, auth: Auth) -> ApiResult<Json<Value>> {
    let routes = state.store.list_routes(&auth.principal).await?;
    let models = crate::catalog::models_of(&state, &auth.principal).await?;
    let mut seen = std::collections::HashSet::new();
    let data: Vec<Value> = routes
        .iter()
        .map(|r| (r.name.clone(), "mosaic-route".to_string()))
        .chain(
            models
                .items
                .iter()
                .map(|m| (m.id.clone(), m.provider.clone())),
        )
        .filter(|(id, _)| seen.insert(id.clone()))
        .map(|(id, owner)| json!({"id": id, "object": "model", "created": 0, "owned_by": owner}))
        .collect();
    Ok(Json(json!({"object": "list", "data": data})))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What a delta chunk was before `TextChunks`: through a `Value`.
    fn through_value(id: &str, model: &str, created: u64, key: &str, text: &str) -> String {
        let mut delta = serde_json::Map::new();
        delta.insert(key.to_string(), json!(text));
        let c = json!({"id": id, "object": "chat.completion.chunk", "created": created,
            "model": model, "choices": [{"index": 0, "delta": delta, "finish_reason": null}]});
        format!("data: {c}\n\n")
    }

    #[test]
    fn text_chunks_are_the_bytes_serde_json_writes() {
        let texts = [
            "",
            "Hello",
            " world, \"quoted\" and \\ back",
            "line\nbreak\ttab\r\u{1}\u{1f}",
            "ünïcödé ✓ 🎉 \u{2028}",
            "</script>",
        ];
        for (id, model) in [("chatcmpl-abc", "fast"), ("x\"y", "provider/model \"q\"")] {
            let chunks = TextChunks::new(id, model, 1_733_000_000);
            for key in ["content", "reasoning_content"] {
                for text in texts {
                    assert_eq!(
                        chunks.delta(key, text),
                        through_value(id, model, 1_733_000_000, key, text),
                        "{key}: {text:?}"
                    );
                }
            }
        }
    }
}
