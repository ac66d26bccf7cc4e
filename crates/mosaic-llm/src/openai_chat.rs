//! OpenAI Chat Completions (`POST {base}/chat/completions`, streamed): the API of
//! OpenAI and of most servers that call themselves OpenAI-compatible (Ollama, LM
//! Studio, llama.cpp, Z.ai, vLLM). Reasoning text some of them stream as
//! `reasoning_content` (or `reasoning`) becomes thinking.

use serde_json::{json, Value};

use crate::sse::SseEvent;
use crate::stream::{check_status, decode_sse, BoxFuture, EventStream, Provider, WireDecoder};
use crate::{ChatRequest, LlmError, Role, StopReason, StreamEvent, Usage};

/// A Chat Completions endpoint.
#[derive(Clone)]
pub struct OpenAiChat {
    http: reqwest::Client,
    /// Up to and including the version segment, e.g. `https://api.openai.com/v1`.
    base_url: String,
    api_key: Option<String>,
}

impl OpenAiChat {
    pub fn new(http: reqwest::Client, base_url: &str, api_key: Option<String>) -> Self {
        OpenAiChat {
            http,
            base_url: base_url.trim_end_matches('/').to_string(),
            api_key,
        }
    }

    fn post(&self, path: &str) -> reqwest::RequestBuilder {
        let req = crate::trace::traced(self.http.post(format!("{}{path}", self.base_url)));
        match &self.api_key {
            Some(key) => req.bearer_auth(key),
            None => req,
        }
    }
}

/// The request body this API expects.
pub fn request_body(req: &ChatRequest) -> Value {
    let messages: Vec<Value> = req
        .messages
        .iter()
        .map(|m| match m.role {
            Role::System => json!({"role": "system", "content": m.content}),
            Role::User => json!({"role": "user", "content": m.content}),
            Role::Assistant if m.tool_calls.is_empty() => {
                json!({"role": "assistant", "content": m.content})
            }
            Role::Assistant => json!({
                "role": "assistant",
                "content": if m.content.is_empty() { Value::Null } else { json!(m.content) },
                "tool_calls": m.tool_calls.iter().map(|c| json!({
                    "id": c.id,
                    "type": "function",
                    "function": {"name": c.name, "arguments": c.arguments},
                })).collect::<Vec<_>>(),
            }),
            Role::Tool => json!({
                "role": "tool",
                "tool_call_id": m.tool_call_id.clone().unwrap_or_default(),
                "content": m.content,
            }),
        })
        .collect();
    let mut body = json!({
        "model": req.model,
        "messages": messages,
        "stream": true,
        "stream_options": {"include_usage": true},
    });
    if !req.tools.is_empty() {
        body["tools"] = req
            .tools
            .iter()
            .map(|t| {
                json!({"type": "function", "function": {
                    "name": t.name, "description": t.description, "parameters": t.parameters,
                }})
            })
            .collect();
    }
    if let Some(n) = req.max_tokens {
        body["max_tokens"] = json!(n);
    }
    if let Some(t) = req.temperature {
        body["temperature"] = json!(t);
    }
    body
}

impl Provider for OpenAiChat {
    fn stream(&self, request: ChatRequest) -> BoxFuture<'_, Result<EventStream, LlmError>> {
        Box::pin(async move {
            let resp = self
                .post("/chat/completions")
                .json(&request_body(&request))
                .send()
                .await
                .map_err(LlmError::from_reqwest)?;
            let resp = check_status(resp).await?;
            Ok(decode_sse(resp, ChatDecoder::default()))
        })
    }

    fn list_models(&self) -> BoxFuture<'_, Result<Vec<String>, LlmError>> {
        Box::pin(async move {
            let mut req = crate::trace::traced(self.http.get(format!("{}/models", self.base_url)));
            if let Some(key) = &self.api_key {
                req = req.bearer_auth(key);
            }
            let resp = check_status(req.send().await.map_err(LlmError::from_reqwest)?).await?;
            let body: Value = resp
                .json()
                .await
                .map_err(|e| LlmError::Protocol(format!("model list: {e}")))?;
            parse_model_list(&body)
        })
    }
}

/// `{"data": [{"id": …}, …]}`, as OpenAI-style and Anthropic model lists have it.
pub fn parse_model_list(body: &Value) -> Result<Vec<String>, LlmError> {
    let data = body["data"]
        .as_array()
        .ok_or_else(|| LlmError::Protocol("model list without `data`".into()))?;
    Ok(data
        .iter()
        .filter_map(|m| m["id"].as_str().map(str::to_string))
        .collect())
}

/// Decoder state: the tool calls seen, where the answer stopped.
#[derive(Debug, Default)]
pub struct ChatDecoder {
    open_calls: Vec<usize>,
    stop: Option<StopReason>,
    usage: Option<Usage>,
    done: bool,
}

fn stop_reason(reason: &str) -> StopReason {
    match reason {
        "length" => StopReason::Length,
        "tool_calls" | "function_call" => StopReason::ToolUse,
        "content_filter" => StopReason::Error,
        _ => StopReason::Stop,
    }
}

impl ChatDecoder {
    fn close_calls(&mut self, out: &mut Vec<StreamEvent>) {
        for index in self.open_calls.drain(..) {
            out.push(StreamEvent::ToolCallEnd { index });
        }
    }

    fn finish(&mut self) -> Vec<StreamEvent> {
        let mut out = Vec::new();
        self.close_calls(&mut out);
        if let Some(usage) = self.usage.take() {
            out.push(StreamEvent::Usage { usage });
        }
        out.push(StreamEvent::Done {
            stop_reason: self.stop.unwrap_or(StopReason::Stop),
        });
        self.done = true;
        out
    }
}

impl WireDecoder for ChatDecoder {
    fn on_event(&mut self, event: SseEvent) -> Result<Vec<StreamEvent>, LlmError> {
        if self.done {
            return Ok(Vec::new());
        }
        if event.data.trim() == "[DONE]" {
            return Ok(self.finish());
        }
        let chunk: Value = serde_json::from_str(&event.data).map_err(|e| {
            LlmError::Protocol(format!("chunk is not JSON ({e}): {}", clip(&event.data)))
        })?;
        if let Some(err) = chunk.get("error") {
            let message = err["message"].as_str().unwrap_or("unknown error");
            return Err(LlmError::Provider(message.to_string()));
        }
        let mut out = Vec::new();
        if let Some(u) = chunk.get("usage").filter(|u| !u.is_null()) {
            self.usage = Some(Usage {
                input_tokens: u["prompt_tokens"].as_u64().unwrap_or(0),
                output_tokens: u["completion_tokens"].as_u64().unwrap_or(0),
                cached_tokens: u["prompt_tokens_details"]["cached_tokens"]
                    .as_u64()
                    .unwrap_or(0),
            });
        }
        let choices = match chunk.get("choices") {
            Some(Value::Array(c)) => c.as_slice(),
            Some(Value::Null) | None => &[],
            Some(_) => return Err(LlmError::Protocol("`choices` is not a list".into())),
        };
        // One answer is asked for; other choices (n > 1) are not ours.
        for choice in choices
            .iter()
            .filter(|c| c["index"].as_u64().unwrap_or(0) == 0)
        {
            let delta = &choice["delta"];
            for key in ["reasoning_content", "reasoning"] {
                if let Some(text) = delta[key].as_str().filter(|t| !t.is_empty()) {
                    out.push(StreamEvent::ThinkingDelta { text: text.into() });
                }
            }
            if let Some(text) = delta["content"].as_str().filter(|t| !t.is_empty()) {
                out.push(StreamEvent::TextDelta { text: text.into() });
            }
            if let Some(calls) = delta["tool_calls"].as_array() {
                for call in calls {
                    let index = call["index"]
                        .as_u64()
                        .ok_or_else(|| LlmError::Protocol("tool call without an index".into()))?
                        as usize;
                    if !self.open_calls.contains(&index) {
                        let name = call["function"]["name"].as_str().unwrap_or_default();
                        if name.is_empty() {
                            return Err(LlmError::Protocol(
                                "a tool call starts without a name".into(),
                            ));
                        }
                        self.open_calls.push(index);
                        out.push(StreamEvent::ToolCallStart {
                            index,
                            id: call["id"]
                                .as_str()
                                .map(str::to_string)
                                .unwrap_or_else(|| format!("call_{index}")),
                            name: name.into(),
                        });
                    }
                    if let Some(args) = call["function"]["arguments"]
                        .as_str()
                        .filter(|a| !a.is_empty())
                    {
                        out.push(StreamEvent::ToolCallDelta {
                            index,
                            arguments: args.into(),
                        });
                    }
                }
            }
            if let Some(reason) = choice["finish_reason"].as_str() {
                self.stop = Some(stop_reason(reason));
                self.close_calls(&mut out);
            }
        }
        Ok(out)
    }

    fn on_end(&mut self) -> Result<Vec<StreamEvent>, LlmError> {
        if self.done {
            return Ok(Vec::new());
        }
        // Some servers close without `[DONE]` once they sent a finish reason.
        if self.stop.is_some() {
            return Ok(self.finish());
        }
        Err(LlmError::Protocol(
            "the stream ended before the answer was complete".into(),
        ))
    }
}

pub(crate) fn clip(s: &str) -> String {
    s.chars().take(200).collect()
}
