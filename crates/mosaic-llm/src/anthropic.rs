//! Anthropic Messages (`POST {base}/messages`, streamed): Claude's own API, also spoken
//! by gateways that offer an "Anthropic-compatible" endpoint.
//!
//! The request differs from Chat Completions in shape more than in meaning: the system
//! prompt is a top-level field, roles strictly alternate between `user` and
//! `assistant` (so tool results, which are user content here, are merged into one user
//! turn), tool calls and results are typed content blocks, and `max_tokens` is
//! required. The stream is a sequence of named events around indexed content blocks;
//! the decoder tracks which blocks are open so a delta for a block that was never
//! started is a protocol error rather than text silently attached to nothing.

use std::collections::BTreeMap;

use serde_json::{json, Value};

use crate::openai_chat::{clip, parse_model_list};
use crate::sse::SseEvent;
use crate::stream::{check_status, decode_sse, BoxFuture, EventStream, Provider, WireDecoder};
use crate::{ChatRequest, LlmError, Message, Reasoning, Role, StopReason, StreamEvent, Usage};

/// The `anthropic-version` header sent with every request.
pub const API_VERSION: &str = "2023-06-01";

/// `max_tokens` when the request leaves it open (the API has no default of its own).
/// With thinking on, the thinking budget is added, since it is spent out of
/// `max_tokens` and must stay below it.
pub const DEFAULT_MAX_TOKENS: u32 = 4096;

/// Pages of the model list followed at most, in case a server keeps saying `has_more`.
const MAX_MODEL_PAGES: usize = 20;

/// An Anthropic Messages endpoint.
#[derive(Clone)]
pub struct AnthropicMessages {
    http: reqwest::Client,
    /// Up to and including the version segment, e.g. `https://api.anthropic.com/v1`.
    base_url: String,
    api_key: Option<String>,
}

impl AnthropicMessages {
    pub fn new(http: reqwest::Client, base_url: &str, api_key: Option<String>) -> Self {
        AnthropicMessages {
            http,
            base_url: base_url.trim_end_matches('/').to_string(),
            api_key,
        }
    }

    fn request(&self, method: reqwest::Method, path: &str) -> reqwest::RequestBuilder {
        let req = crate::trace::traced(
            self.http
                .request(method, format!("{}{path}", self.base_url)),
        )
        .header("anthropic-version", API_VERSION);
        match &self.api_key {
            Some(key) => req.header("x-api-key", key),
            None => req,
        }
    }
}

/// The request body this API expects.
pub fn request_body(req: &ChatRequest) -> Value {
    let system: Vec<&str> = req
        .messages
        .iter()
        .filter(|m| m.role == Role::System)
        .map(|m| m.content.as_str())
        .collect();
    let mut body = json!({
        "model": req.model,
        "messages": turns(&req.messages),
        "stream": true,
    });
    if !system.is_empty() {
        body["system"] = json!(system.join("\n\n"));
    }
    if !req.tools.is_empty() {
        body["tools"] = req
            .tools
            .iter()
            .map(|t| {
                let mut tool = json!({"name": t.name, "input_schema": input_schema(&t.parameters)});
                if !t.description.is_empty() {
                    tool["description"] = json!(t.description);
                }
                tool
            })
            .collect();
    }
    let default_max = match req.thinking_budget {
        Some(budget) => DEFAULT_MAX_TOKENS.saturating_add(budget),
        None => DEFAULT_MAX_TOKENS,
    };
    body["max_tokens"] = json!(req.max_tokens.unwrap_or(default_max));
    match req.thinking_budget {
        Some(budget) => {
            // The API refuses any temperature but the default while thinking, so the
            // budget (the more specific wish) wins and the temperature is not sent.
            body["thinking"] = json!({"type": "enabled", "budget_tokens": budget});
        }
        None => {
            if let Some(t) = req.temperature {
                body["temperature"] = json!(t);
            }
        }
    }
    body
}

/// The conversation as alternating `user`/`assistant` turns of content blocks.
/// Consecutive messages that land on the same side (tool results, a user message
/// after them) are merged into one turn; a turn that is a single text block is sent
/// as a plain string.
fn turns(messages: &[Message]) -> Vec<Value> {
    let mut turns: Vec<(&'static str, Vec<Value>)> = Vec::new();
    for m in messages {
        let (role, blocks) = match m.role {
            Role::System => continue,
            Role::User => ("user", text_block(&m.content)),
            Role::Assistant => {
                // Thinking comes first in the turn, as it came: the API checks each block
                // against its signature, and refuses a tool-use turn of a thinking model
                // that does not begin with one.
                let mut blocks: Vec<Value> =
                    m.reasoning.iter().filter_map(thinking_block).collect();
                blocks.extend(text_block(&m.content));
                blocks.extend(m.tool_calls.iter().map(|c| {
                    json!({
                        "type": "tool_use",
                        "id": c.id,
                        "name": c.name,
                        "input": tool_input(&c.arguments),
                    })
                }));
                ("assistant", blocks)
            }
            Role::Tool => (
                "user",
                vec![json!({
                    "type": "tool_result",
                    "tool_use_id": m.tool_call_id.clone().unwrap_or_default(),
                    "content": m.content,
                })],
            ),
        };
        match turns.last_mut() {
            Some((last, merged)) if *last == role => merged.extend(blocks),
            _ => turns.push((role, blocks)),
        }
    }
    turns
        .into_iter()
        .map(|(role, mut blocks)| {
            // The API wants a turn's tool results before any text in it (stable sort).
            blocks.sort_by_key(|b| b["type"] != "tool_result");
            let content = match blocks.as_slice() {
                [] => json!(""),
                [only] if only["type"] == "text" => only["text"].clone(),
                _ => Value::Array(blocks),
            };
            json!({"role": role, "content": content})
        })
        .collect()
}

/// The block a reasoning record of this API came as; `None` for other APIs' records.
fn thinking_block(r: &Reasoning) -> Option<Value> {
    match r {
        Reasoning::AnthropicThinking {
            thinking,
            signature,
        } => Some(json!({"type": "thinking", "thinking": thinking, "signature": signature})),
        Reasoning::AnthropicRedactedThinking { data } => {
            Some(json!({"type": "redacted_thinking", "data": data}))
        }
        Reasoning::ResponsesReasoning { .. } => None,
    }
}

/// A text block, or none for empty text (the API rejects empty text blocks).
fn text_block(text: &str) -> Vec<Value> {
    if text.is_empty() {
        Vec::new()
    } else {
        vec![json!({"type": "text", "text": text})]
    }
}

/// Tool arguments as the object the API wants. Arguments that are not a JSON object
/// (a model's broken output, an empty string) are sent as `{}`: the call still has to
/// appear, or its result would answer nothing.
fn tool_input(arguments: &str) -> Value {
    match serde_json::from_str::<Value>(arguments) {
        Ok(object @ Value::Object(_)) => object,
        _ => json!({}),
    }
}

/// The API requires an object schema; a tool without parameters gets an empty one.
fn input_schema(parameters: &Value) -> Value {
    if parameters.is_object() {
        parameters.clone()
    } else {
        json!({"type": "object", "properties": {}})
    }
}

impl Provider for AnthropicMessages {
    fn stream(&self, request: ChatRequest) -> BoxFuture<'_, Result<EventStream, LlmError>> {
        Box::pin(async move {
            let resp = self
                .request(reqwest::Method::POST, "/messages")
                .json(&request_body(&request))
                .send()
                .await
                .map_err(LlmError::from_reqwest)?;
            let resp = check_status(resp).await?;
            Ok(decode_sse(resp, MessagesDecoder::default()))
        })
    }

    /// The list is paged (`has_more`, `last_id`, `after_id`); pages are followed.
    fn list_models(&self) -> BoxFuture<'_, Result<Vec<String>, LlmError>> {
        Box::pin(async move {
            let mut models = Vec::new();
            let mut after: Option<String> = None;
            for _ in 0..MAX_MODEL_PAGES {
                let mut req = self
                    .request(reqwest::Method::GET, "/models")
                    .query(&[("limit", "1000")]);
                if let Some(id) = &after {
                    req = req.query(&[("after_id", id)]);
                }
                let resp = check_status(req.send().await.map_err(LlmError::from_reqwest)?).await?;
                let page: Value = resp
                    .json()
                    .await
                    .map_err(|e| LlmError::Protocol(format!("model list: {e}")))?;
                models.extend(parse_model_list(&page)?);
                match page["last_id"].as_str() {
                    Some(last) if page["has_more"] == true && after.as_deref() != Some(last) => {
                        after = Some(last.to_string());
                    }
                    _ => break,
                }
            }
            Ok(models)
        })
    }
}

/// What kind of content block an index holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Block {
    Text,
    Thinking,
    ToolUse,
    /// Blocks with nothing for the unified stream: redacted thinking, server-side tool
    /// calls and their results, kinds added after this was written.
    Opaque,
}

/// Decoder state: the blocks open, the usage and stop reason reported so far.
#[derive(Debug, Default)]
pub struct MessagesDecoder {
    started: bool,
    open: BTreeMap<usize, Block>,
    /// Open thinking blocks: their text and signature so far, to be sent back whole.
    thinking: BTreeMap<usize, (String, String)>,
    usage: Option<Usage>,
    stop: Option<StopReason>,
    done: bool,
}

fn stop_reason(reason: &str) -> StopReason {
    match reason {
        "max_tokens" | "model_context_window_exceeded" => StopReason::Length,
        "tool_use" => StopReason::ToolUse,
        "refusal" => StopReason::Error,
        // `end_turn`, `stop_sequence`, and `pause_turn` (a server-side tool paused a
        // long turn: the answer so far is complete as it stands).
        _ => StopReason::Stop,
    }
}

/// Usage as the unified stream counts it. Anthropic's `input_tokens` leaves out the
/// tokens read from and written to the prompt cache; both were input to this call,
/// so both are added in, and the cache reads are also `cached_tokens` (which is part
/// of `input_tokens` in the unified shape). Absent figures count as zero, which the
/// max-merge of running totals treats as "not reported".
fn usage_of(u: &Value) -> Option<Usage> {
    if !u.is_object() {
        return None;
    }
    let n = |key: &str| u[key].as_u64().unwrap_or(0);
    let cached = n("cache_read_input_tokens");
    Some(Usage {
        input_tokens: n("input_tokens")
            .saturating_add(cached)
            .saturating_add(n("cache_creation_input_tokens")),
        output_tokens: n("output_tokens"),
        cached_tokens: cached,
    })
}

fn protocol(message: impl Into<String>) -> LlmError {
    LlmError::Protocol(message.into())
}

fn index_of(data: &Value) -> Result<usize, LlmError> {
    data["index"]
        .as_u64()
        .and_then(|i| usize::try_from(i).ok())
        .ok_or_else(|| {
            protocol(format!(
                "content block event without an index: {}",
                clip(&data.to_string())
            ))
        })
}

/// A required string field of a delta or block.
fn text_field<'a>(v: &'a Value, key: &str, what: &str) -> Result<&'a str, LlmError> {
    v[key]
        .as_str()
        .ok_or_else(|| protocol(format!("{what} without `{key}`")))
}

impl MessagesDecoder {
    fn add_usage(&mut self, u: &Value) {
        if let Some(usage) = usage_of(u) {
            self.usage.get_or_insert_with(Usage::default).merge(usage);
        }
    }

    fn block_start(&mut self, data: &Value) -> Result<Vec<StreamEvent>, LlmError> {
        let index = index_of(data)?;
        if self.open.contains_key(&index) {
            return Err(protocol(format!("content block {index} started twice")));
        }
        let block = &data["content_block"];
        let mut out = Vec::new();
        let kind = match block["type"].as_str() {
            Some("text") => {
                if let Some(text) = block["text"].as_str().filter(|t| !t.is_empty()) {
                    out.push(StreamEvent::TextDelta { text: text.into() });
                }
                Block::Text
            }
            Some("thinking") => {
                let text = block["thinking"].as_str().unwrap_or_default();
                if !text.is_empty() {
                    out.push(StreamEvent::ThinkingDelta { text: text.into() });
                }
                let signature = block["signature"].as_str().unwrap_or_default();
                self.thinking
                    .insert(index, (text.to_string(), signature.to_string()));
                Block::Thinking
            }
            Some("redacted_thinking") => {
                let data = text_field(block, "data", "a redacted_thinking block")?;
                out.push(StreamEvent::Reasoning {
                    reasoning: Reasoning::AnthropicRedactedThinking { data: data.into() },
                });
                Block::Opaque
            }
            Some("tool_use") => {
                let id = text_field(block, "id", "a tool_use block")?;
                let name = text_field(block, "name", "a tool_use block")?;
                if name.is_empty() {
                    return Err(protocol("a tool call starts without a name"));
                }
                // `input` is `{}` here; the arguments follow as `input_json_delta`.
                out.push(StreamEvent::ToolCallStart {
                    index,
                    id: id.into(),
                    name: name.into(),
                });
                Block::ToolUse
            }
            Some(_) => Block::Opaque,
            None => return Err(protocol("a content block without a type")),
        };
        self.open.insert(index, kind);
        Ok(out)
    }

    fn block_delta(&mut self, data: &Value) -> Result<Vec<StreamEvent>, LlmError> {
        let index = index_of(data)?;
        let Some(&kind) = self.open.get(&index) else {
            return Err(protocol(format!(
                "a delta for content block {index}, which is not open"
            )));
        };
        let delta = &data["delta"];
        let event = match (kind, delta["type"].as_str()) {
            (Block::Text, Some("text_delta")) => {
                let text = text_field(delta, "text", "a text_delta")?;
                StreamEvent::TextDelta { text: text.into() }
            }
            (Block::Thinking, Some("thinking_delta")) => {
                let text = text_field(delta, "thinking", "a thinking_delta")?;
                if let Some((kept, _)) = self.thinking.get_mut(&index) {
                    kept.push_str(text);
                }
                StreamEvent::ThinkingDelta { text: text.into() }
            }
            (Block::Thinking, Some("signature_delta")) => {
                let signature = text_field(delta, "signature", "a signature_delta")?;
                if let Some((_, kept)) = self.thinking.get_mut(&index) {
                    kept.push_str(signature);
                }
                return Ok(Vec::new());
            }
            (Block::ToolUse, Some("input_json_delta")) => {
                let json = text_field(delta, "partial_json", "an input_json_delta")?;
                StreamEvent::ToolCallDelta {
                    index,
                    arguments: json.into(),
                }
            }
            (
                Block::Text | Block::Thinking | Block::ToolUse,
                Some(t @ ("text_delta" | "thinking_delta" | "input_json_delta")),
            ) => {
                return Err(protocol(format!(
                    "`{t}` for content block {index}, which is a {kind:?} block"
                )))
            }
            // Citations, opaque blocks, unknown kinds.
            _ => return Ok(Vec::new()),
        };
        let empty = match &event {
            StreamEvent::TextDelta { text } | StreamEvent::ThinkingDelta { text } => {
                text.is_empty()
            }
            StreamEvent::ToolCallDelta { arguments, .. } => arguments.is_empty(),
            _ => false,
        };
        Ok(if empty { Vec::new() } else { vec![event] })
    }

    fn block_stop(&mut self, data: &Value) -> Result<Vec<StreamEvent>, LlmError> {
        let index = index_of(data)?;
        match self.open.remove(&index) {
            Some(Block::ToolUse) => Ok(vec![StreamEvent::ToolCallEnd { index }]),
            Some(Block::Thinking) => Ok(self.thinking_done(index).into_iter().collect()),
            Some(Block::Text | Block::Opaque) => Ok(Vec::new()),
            None => Err(protocol(format!(
                "content block {index} stopped, but it is not open"
            ))),
        }
    }

    /// A thinking block ended: its record, when it is signed (a compatible server that
    /// signs nothing has nothing to be sent back).
    fn thinking_done(&mut self, index: usize) -> Option<StreamEvent> {
        let (thinking, signature) = self.thinking.remove(&index)?;
        (!signature.is_empty()).then_some(StreamEvent::Reasoning {
            reasoning: Reasoning::AnthropicThinking {
                thinking,
                signature,
            },
        })
    }

    fn finish(&mut self) -> Vec<StreamEvent> {
        // A block left open at `message_stop` is complete as far as the server is
        // concerned; tool calls are closed so the caller sees them end.
        let mut out = Vec::new();
        for (index, kind) in std::mem::take(&mut self.open) {
            match kind {
                Block::ToolUse => out.push(StreamEvent::ToolCallEnd { index }),
                Block::Thinking => out.extend(self.thinking_done(index)),
                Block::Text | Block::Opaque => {}
            }
        }
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

impl WireDecoder for MessagesDecoder {
    fn on_event(&mut self, event: SseEvent) -> Result<Vec<StreamEvent>, LlmError> {
        if self.done {
            return Ok(Vec::new());
        }
        let data: Value = serde_json::from_str(&event.data).map_err(|e| {
            protocol(format!(
                "event data is not JSON ({e}): {}",
                clip(&event.data)
            ))
        })?;
        // The payload names its type too; it is trusted over the event name, which
        // some compatible servers leave out.
        let kind = data["type"].as_str().unwrap_or(event.event.as_str());
        if !self.started
            && matches!(
                kind,
                "content_block_start"
                    | "content_block_delta"
                    | "content_block_stop"
                    | "message_delta"
                    | "message_stop"
            )
        {
            return Err(protocol(format!("`{kind}` before `message_start`")));
        }
        match kind {
            "message_start" => {
                self.started = true;
                self.add_usage(&data["message"]["usage"]);
                Ok(Vec::new())
            }
            "content_block_start" => self.block_start(&data),
            "content_block_delta" => self.block_delta(&data),
            "content_block_stop" => self.block_stop(&data),
            "message_delta" => {
                if let Some(reason) = data["delta"]["stop_reason"].as_str() {
                    self.stop = Some(stop_reason(reason));
                }
                // Running totals; compatible gateways may report input only here.
                self.add_usage(&data["usage"]);
                Ok(Vec::new())
            }
            "message_stop" => Ok(self.finish()),
            "error" => {
                let message = data["error"]["message"]
                    .as_str()
                    .or_else(|| data["error"]["type"].as_str())
                    .unwrap_or("unknown error");
                Err(LlmError::Provider(message.to_string()))
            }
            // `ping`, and event types added after this was written.
            _ => Ok(Vec::new()),
        }
    }

    fn on_end(&mut self) -> Result<Vec<StreamEvent>, LlmError> {
        if self.done {
            return Ok(Vec::new());
        }
        Err(protocol("the stream ended before `message_stop`"))
    }
}
