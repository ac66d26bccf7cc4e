//! OpenAI Responses (`POST {base}/responses`, streamed): the API of OpenAI's reasoning
//! and Codex models. Unlike Chat Completions it streams named, typed events about
//! *output items* (a message, a reasoning item, a function call), each at its own
//! `output_index`, and ends with an explicit `response.completed`, `.incomplete` or
//! `.failed` event instead of a `[DONE]` sentinel.
//!
//! Mosaic keeps its own history, so every request is stateless: `store: false` and the
//! whole conversation goes in `input`. The leading system messages become the
//! top-level `instructions` (where the API, and the Codex backend, expect the system
//! prompt); a system message later in the conversation stays in its place as a
//! `system` message, so its position keeps its meaning.
//!
//! Being stateless, a reasoning model's reasoning items cannot be referred to by id: they
//! are asked for with their encrypted content (`include: ["reasoning.encrypted_content"]`)
//! and sent back whole, without the id, before the output they led to.

use serde_json::{json, Value};

use crate::openai_chat::{clip, parse_model_list};
use crate::sse::SseEvent;
use crate::stream::{check_status, decode_sse, BoxFuture, EventStream, Provider, WireDecoder};
use crate::{ChatRequest, LlmError, Reasoning, Role, StopReason, StreamEvent, Usage};

/// A Responses endpoint.
#[derive(Clone)]
pub struct OpenAiResponses {
    http: reqwest::Client,
    /// Up to and including the version segment, e.g. `https://api.openai.com/v1`.
    base_url: String,
    api_key: Option<String>,
}

impl OpenAiResponses {
    pub fn new(http: reqwest::Client, base_url: &str, api_key: Option<String>) -> Self {
        OpenAiResponses {
            http,
            base_url: base_url.trim_end_matches('/').to_string(),
            api_key,
        }
    }

    fn authorized(&self, req: reqwest::RequestBuilder) -> reqwest::RequestBuilder {
        let req = crate::trace::traced(req);
        match &self.api_key {
            Some(key) => req.bearer_auth(key),
            None => req,
        }
    }
}

/// The request body this API expects.
pub fn request_body(req: &ChatRequest) -> Value {
    let leading_system = req
        .messages
        .iter()
        .take_while(|m| m.role == Role::System)
        .count();
    let instructions: Vec<&str> = req.messages[..leading_system]
        .iter()
        .map(|m| m.content.as_str())
        .collect();
    let mut input = Vec::new();
    for m in &req.messages[leading_system..] {
        match m.role {
            Role::System => input.push(message("system", &m.content)),
            Role::User => input.push(message("user", &m.content)),
            Role::Assistant => {
                input.extend(m.reasoning.iter().filter_map(reasoning_item));
                // An assistant turn that only called tools has no text worth a message.
                if !m.content.is_empty() || m.tool_calls.is_empty() {
                    input.push(message("assistant", &m.content));
                }
                input.extend(m.tool_calls.iter().map(|c| {
                    json!({
                        "type": "function_call",
                        "call_id": c.id,
                        "name": c.name,
                        "arguments": c.arguments,
                    })
                }));
            }
            Role::Tool => input.push(json!({
                "type": "function_call_output",
                "call_id": m.tool_call_id.clone().unwrap_or_default(),
                "output": m.content,
            })),
        }
    }
    let mut body = json!({
        "model": req.model,
        "input": input,
        "stream": true,
        "store": false,
    });
    if !instructions.is_empty() {
        body["instructions"] = json!(instructions.join("\n\n"));
    }
    if !req.tools.is_empty() {
        body["tools"] = req
            .tools
            .iter()
            .map(|t| {
                json!({
                    "type": "function",
                    "name": t.name,
                    "description": t.description,
                    "parameters": t.parameters,
                })
            })
            .collect();
    }
    if let Some(n) = req.max_tokens {
        body["max_output_tokens"] = json!(n);
    }
    if let Some(t) = req.temperature {
        body["temperature"] = json!(t);
    }
    if let Some(budget) = req.thinking_budget {
        // The API takes an effort level, not a budget; a summary must be asked for, or
        // no reasoning text is streamed at all. Only sent when asked: models without
        // reasoning reject the parameter.
        body["reasoning"] = json!({"effort": effort(budget), "summary": "auto"});
    }
    // Reasoning is kept to be sent back only where the model reasons (asked to, or did
    // before): models without reasoning refuse to include encrypted content.
    let reasons = req.thinking_budget.is_some()
        || req
            .messages
            .iter()
            .any(|m| m.reasoning.iter().any(|r| reasoning_item(r).is_some()));
    if reasons {
        body["include"] = json!(["reasoning.encrypted_content"]);
    }
    body
}

/// A reasoning item to send back: only one of this API with its encrypted content (the
/// id alone names an item a stateless request cannot find), and without the id.
fn reasoning_item(r: &Reasoning) -> Option<Value> {
    match r {
        Reasoning::ResponsesReasoning {
            summary,
            encrypted_content: Some(encrypted),
            ..
        } => Some(json!({
            "type": "reasoning",
            "summary": summary
                .iter()
                .map(|text| json!({"type": "summary_text", "text": text}))
                .collect::<Vec<_>>(),
            "encrypted_content": encrypted,
        })),
        Reasoning::ResponsesReasoning { .. }
        | Reasoning::AnthropicThinking { .. }
        | Reasoning::AnthropicRedactedThinking { .. } => None,
    }
}

fn message(role: &str, text: &str) -> Value {
    json!({"type": "message", "role": role, "content": text})
}

/// A thinking budget in tokens as the API's effort level.
fn effort(budget: u32) -> &'static str {
    match budget {
        0..4096 => "low",
        4096..16384 => "medium",
        _ => "high",
    }
}

impl Provider for OpenAiResponses {
    fn stream(&self, request: ChatRequest) -> BoxFuture<'_, Result<EventStream, LlmError>> {
        Box::pin(async move {
            let resp = self
                .authorized(self.http.post(format!("{}/responses", self.base_url)))
                .json(&request_body(&request))
                .send()
                .await
                .map_err(LlmError::from_reqwest)?;
            let resp = check_status(resp).await?;
            Ok(decode_sse(resp, ResponsesDecoder::default()))
        })
    }

    fn list_models(&self) -> BoxFuture<'_, Result<Vec<String>, LlmError>> {
        Box::pin(async move {
            let req = self.authorized(self.http.get(format!("{}/models", self.base_url)));
            let resp = check_status(req.send().await.map_err(LlmError::from_reqwest)?).await?;
            let body: Value = resp
                .json()
                .await
                .map_err(|e| LlmError::Protocol(format!("model list: {e}")))?;
            parse_model_list(&body)
        })
    }
}

/// A function call output item, known from its `output_item.added` event.
#[derive(Debug)]
struct Call {
    output_index: usize,
    item_id: Option<String>,
    /// Some argument text went out for it.
    streamed: bool,
    ended: bool,
}

/// Decoder state: the function calls seen, whether thinking has begun.
#[derive(Debug, Default)]
pub struct ResponsesDecoder {
    calls: Vec<Call>,
    thinking: bool,
    done: bool,
}

impl ResponsesDecoder {
    /// The call an event is about: by `output_index`, or by `item_id` where a server
    /// leaves the index out. A call never announced is a broken stream.
    fn call(&mut self, data: &Value, kind: &str) -> Result<&mut Call, LlmError> {
        let index = data["output_index"].as_u64().map(|i| i as usize);
        let item_id = data["item_id"].as_str();
        self.calls
            .iter_mut()
            .find(|c| match index {
                Some(i) => c.output_index == i,
                None => item_id.is_some() && c.item_id.as_deref() == item_id,
            })
            .ok_or_else(|| {
                LlmError::Protocol(format!("`{kind}` for a function call never announced"))
            })
    }

    fn on_item_added(&mut self, data: &Value) -> Result<Vec<StreamEvent>, LlmError> {
        let item = &data["item"];
        if item["type"].as_str() != Some("function_call") {
            return Ok(Vec::new()); // messages and reasoning need no set-up
        }
        let output_index = data["output_index"]
            .as_u64()
            .ok_or_else(|| LlmError::Protocol("a function call without an output_index".into()))?
            as usize;
        let name = item["name"].as_str().unwrap_or_default();
        let id = item["call_id"].as_str().unwrap_or_default();
        if name.is_empty() || id.is_empty() {
            return Err(LlmError::Protocol(
                "a function call starts without a name or call_id".into(),
            ));
        }
        if self.calls.iter().any(|c| c.output_index == output_index) {
            return Err(LlmError::Protocol(format!(
                "output item {output_index} was added twice"
            )));
        }
        self.calls.push(Call {
            output_index,
            item_id: item["id"].as_str().map(str::to_string),
            streamed: false,
            ended: false,
        });
        Ok(vec![StreamEvent::ToolCallStart {
            index: output_index,
            id: id.into(),
            name: name.into(),
        }])
    }

    fn on_arguments_delta(&mut self, data: &Value) -> Result<Vec<StreamEvent>, LlmError> {
        let delta = text_field(data, "delta", "a function call delta")?;
        let call = self.call(data, "response.function_call_arguments.delta")?;
        if call.ended {
            return Err(LlmError::Protocol(
                "arguments for a function call that already ended".into(),
            ));
        }
        if delta.is_empty() {
            return Ok(Vec::new());
        }
        call.streamed = true;
        Ok(vec![StreamEvent::ToolCallDelta {
            index: call.output_index,
            arguments: delta.into(),
        }])
    }

    /// The whole arguments, as `function_call_arguments.done` and `output_item.done`
    /// carry them: sent only when no delta did, so a server that does not stream
    /// arguments still gets its call through, and one that does is not doubled.
    fn whole_arguments(call: &mut Call, arguments: Option<&str>) -> Option<StreamEvent> {
        let arguments = arguments.filter(|a| !a.is_empty() && !call.streamed)?;
        call.streamed = true;
        Some(StreamEvent::ToolCallDelta {
            index: call.output_index,
            arguments: arguments.into(),
        })
    }

    fn on_item_done(&mut self, data: &Value) -> Result<Vec<StreamEvent>, LlmError> {
        let item = &data["item"];
        match item["type"].as_str() {
            Some("function_call") => {}
            Some("reasoning") => return Ok(reasoning_of(item).into_iter().collect()),
            _ => return Ok(Vec::new()),
        }
        let call = self.call(data, "response.output_item.done")?;
        let mut out = Vec::new();
        if call.ended {
            return Ok(out);
        }
        out.extend(Self::whole_arguments(call, item["arguments"].as_str()));
        call.ended = true;
        out.push(StreamEvent::ToolCallEnd {
            index: call.output_index,
        });
        Ok(out)
    }

    fn thinking(&mut self, text: &str) -> Vec<StreamEvent> {
        if text.is_empty() {
            return Vec::new();
        }
        self.thinking = true;
        vec![StreamEvent::ThinkingDelta { text: text.into() }]
    }

    /// The end of the response: open calls close, usage, then `Done`.
    fn finish(&mut self, response: &Value, stop: StopReason) -> Vec<StreamEvent> {
        let mut out = Vec::new();
        for call in self.calls.iter_mut().filter(|c| !c.ended) {
            call.ended = true;
            out.push(StreamEvent::ToolCallEnd {
                index: call.output_index,
            });
        }
        let u = &response["usage"];
        if u.is_object() {
            out.push(StreamEvent::Usage {
                usage: Usage {
                    input_tokens: u["input_tokens"].as_u64().unwrap_or(0),
                    output_tokens: u["output_tokens"].as_u64().unwrap_or(0),
                    cached_tokens: u["input_tokens_details"]["cached_tokens"]
                        .as_u64()
                        .unwrap_or(0),
                },
            });
        }
        out.push(StreamEvent::Done { stop_reason: stop });
        self.done = true;
        out
    }
}

/// A finished reasoning item, to be sent back with the answer.
fn reasoning_of(item: &Value) -> Option<StreamEvent> {
    let id = item["id"].as_str()?;
    let summary = item["summary"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|part| part["text"].as_str().map(str::to_string))
        .collect();
    Some(StreamEvent::Reasoning {
        reasoning: Reasoning::ResponsesReasoning {
            id: id.to_string(),
            summary,
            encrypted_content: item["encrypted_content"].as_str().map(str::to_string),
        },
    })
}

/// A required string field of an event.
fn text_field<'a>(data: &'a Value, key: &str, what: &str) -> Result<&'a str, LlmError> {
    data[key]
        .as_str()
        .ok_or_else(|| LlmError::Protocol(format!("{what} without `{key}`")))
}

/// Why a response stopped short, from `incomplete_details.reason`.
fn incomplete_reason(response: &Value) -> StopReason {
    match response["incomplete_details"]["reason"].as_str() {
        Some("content_filter") => StopReason::Error,
        // `max_output_tokens`, and whatever else cut the answer off.
        _ => StopReason::Length,
    }
}

impl WireDecoder for ResponsesDecoder {
    fn on_event(&mut self, event: SseEvent) -> Result<Vec<StreamEvent>, LlmError> {
        if self.done {
            return Ok(Vec::new());
        }
        let data: Value = serde_json::from_str(&event.data).map_err(|e| {
            LlmError::Protocol(format!("event is not JSON ({e}): {}", clip(&event.data)))
        })?;
        if !data.is_object() {
            return Err(LlmError::Protocol(format!(
                "event is not an object: {}",
                clip(&event.data)
            )));
        }
        // The data names its type; the SSE event name repeats it, and stands in for it
        // where a server leaves it out.
        let kind = match data["type"].as_str() {
            Some(t) => t.to_string(),
            None if !event.event.is_empty() => event.event.clone(),
            None => return Err(LlmError::Protocol("an event without a type".into())),
        };
        match kind.as_str() {
            "response.output_item.added" => self.on_item_added(&data),
            "response.output_text.delta" | "response.refusal.delta" => {
                let text = text_field(&data, "delta", "a text delta")?;
                Ok(if text.is_empty() {
                    Vec::new()
                } else {
                    vec![StreamEvent::TextDelta { text: text.into() }]
                })
            }
            "response.reasoning_summary_text.delta" | "response.reasoning_text.delta" => {
                let text = text_field(&data, "delta", "a reasoning delta")?;
                Ok(self.thinking(text))
            }
            // Summary parts are paragraphs; without a break they would run together.
            "response.reasoning_summary_part.added" if self.thinking => {
                Ok(vec![StreamEvent::ThinkingDelta {
                    text: "\n\n".into(),
                }])
            }
            "response.function_call_arguments.delta" => self.on_arguments_delta(&data),
            "response.function_call_arguments.done" => {
                let call = self.call(&data, "response.function_call_arguments.done")?;
                Ok(Self::whole_arguments(call, data["arguments"].as_str())
                    .into_iter()
                    .collect())
            }
            "response.output_item.done" => self.on_item_done(&data),
            "response.completed" => {
                let stop = if self.calls.is_empty() {
                    StopReason::Stop
                } else {
                    StopReason::ToolUse
                };
                Ok(self.finish(&data["response"], stop))
            }
            "response.incomplete" => {
                let response = &data["response"];
                Ok(self.finish(response, incomplete_reason(response)))
            }
            "response.failed" => {
                let error = &data["response"]["error"];
                let message = error["message"]
                    .as_str()
                    .or_else(|| error["code"].as_str())
                    .unwrap_or("the response failed");
                Err(LlmError::Provider(message.to_string()))
            }
            "error" => {
                let message = data["message"]
                    .as_str()
                    .or_else(|| data["error"]["message"].as_str())
                    .or_else(|| data["code"].as_str())
                    .unwrap_or("unknown error");
                Err(LlmError::Provider(message.to_string()))
            }
            // `response.created`, `.in_progress`, content parts, `*.done` of text, and
            // whatever the API adds later: nothing Mosaic needs.
            _ => Ok(Vec::new()),
        }
    }

    fn on_end(&mut self) -> Result<Vec<StreamEvent>, LlmError> {
        if self.done {
            return Ok(Vec::new());
        }
        Err(LlmError::Protocol(
            "the stream ended before the response completed".into(),
        ))
    }
}
