//! The provider-neutral request and the unified event stream.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    System,
    User,
    Assistant,
    Tool,
}

/// A tool call the model made, arguments as JSON text.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ToolCall {
    pub id: String,
    pub name: String,
    pub arguments: String,
}

/// One message of a conversation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Message {
    pub role: Role,
    #[serde(default)]
    pub content: String,
    /// Assistant messages: the tool calls made.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tool_calls: Vec<ToolCall>,
    /// Tool messages: the call this answers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tool_call_id: Option<String>,
    /// Assistant messages: the provider's record of its reasoning, sent back with the
    /// message so the provider can continue it (each API takes only its own kinds).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub reasoning: Vec<Reasoning>,
}

/// What a provider needs back to continue an answer it reasoned its way to, kept as
/// it came: Anthropic verifies a thinking block against its signature, and the
/// Responses API (stateless here, `store: false`) knows a reasoning item only by its
/// encrypted content. Opaque to everything above the provider that made it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Reasoning {
    /// Anthropic Messages: a `thinking` block and the signature that authenticates it.
    AnthropicThinking { thinking: String, signature: String },
    /// Anthropic Messages: a `redacted_thinking` block (thinking the provider encrypted).
    AnthropicRedactedThinking { data: String },
    /// OpenAI Responses: a `reasoning` output item: its summary parts and, when asked
    /// for (`include: ["reasoning.encrypted_content"]`), its encrypted content.
    ResponsesReasoning {
        id: String,
        #[serde(default)]
        summary: Vec<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        encrypted_content: Option<String>,
    },
}

impl Message {
    pub fn system(text: impl Into<String>) -> Self {
        Message::text(Role::System, text)
    }

    pub fn user(text: impl Into<String>) -> Self {
        Message::text(Role::User, text)
    }

    pub fn assistant(text: impl Into<String>) -> Self {
        Message::text(Role::Assistant, text)
    }

    pub fn tool_result(call_id: impl Into<String>, text: impl Into<String>) -> Self {
        Message {
            role: Role::Tool,
            content: text.into(),
            tool_calls: Vec::new(),
            tool_call_id: Some(call_id.into()),
            reasoning: Vec::new(),
        }
    }

    fn text(role: Role, text: impl Into<String>) -> Self {
        Message {
            role,
            content: text.into(),
            tool_calls: Vec::new(),
            tool_call_id: None,
            reasoning: Vec::new(),
        }
    }
}

/// A tool the model may call: a name, what it does, and a JSON schema of its arguments.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ToolSpec {
    pub name: String,
    #[serde(default)]
    pub description: String,
    pub parameters: serde_json::Value,
}

/// A model call, independent of wire API.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct ChatRequest {
    /// The provider's own model name.
    pub model: String,
    pub messages: Vec<Message>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tools: Vec<ToolSpec>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_tokens: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub temperature: Option<f32>,
    /// Token budget for visible reasoning, where the API has one (Anthropic thinking).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub thinking_budget: Option<u32>,
}

/// Tokens used by one call.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Usage {
    pub input_tokens: u64,
    pub output_tokens: u64,
    /// Input tokens served from the provider's prompt cache (part of `input_tokens`).
    pub cached_tokens: u64,
}

impl Usage {
    /// Fold in another report. Providers report running totals (Anthropic repeats
    /// them as the answer grows), so the largest figure of each kind wins.
    pub fn merge(&mut self, other: Usage) {
        self.input_tokens = self.input_tokens.max(other.input_tokens);
        self.output_tokens = self.output_tokens.max(other.output_tokens);
        self.cached_tokens = self.cached_tokens.max(other.cached_tokens);
    }
}

/// Why a call ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StopReason {
    /// The model finished its answer.
    Stop,
    /// The token limit cut it off.
    Length,
    /// The model wants tool results.
    ToolUse,
    /// The call failed part-way; what came before is kept.
    Error,
    /// The caller stopped it.
    Aborted,
}

/// One event of the unified stream.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum StreamEvent {
    TextDelta {
        text: String,
    },
    ThinkingDelta {
        text: String,
    },
    /// A tool call begins; `index` tells parallel calls apart.
    ToolCallStart {
        index: usize,
        id: String,
        name: String,
    },
    ToolCallDelta {
        index: usize,
        arguments: String,
    },
    ToolCallEnd {
        index: usize,
    },
    /// A reasoning record is complete (after its thinking deltas): to be sent back with
    /// the answer ([`Message::reasoning`]).
    Reasoning {
        reasoning: Reasoning,
    },
    Usage {
        usage: Usage,
    },
    /// The last event of a successful stream.
    Done {
        stop_reason: StopReason,
    },
}

/// A whole answer: the collected stream.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct Completion {
    pub text: String,
    pub thinking: String,
    pub tool_calls: Vec<ToolCall>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub reasoning: Vec<Reasoning>,
    pub usage: Usage,
    pub stop_reason: Option<StopReason>,
}

impl Completion {
    /// Fold one event in.
    pub fn apply(&mut self, event: &StreamEvent, calls: &mut Vec<(usize, ToolCall)>) {
        match event {
            StreamEvent::TextDelta { text } => self.text.push_str(text),
            StreamEvent::ThinkingDelta { text } => self.thinking.push_str(text),
            StreamEvent::ToolCallStart { index, id, name } => calls.push((
                *index,
                ToolCall {
                    id: id.clone(),
                    name: name.clone(),
                    arguments: String::new(),
                },
            )),
            StreamEvent::ToolCallDelta { index, arguments } => {
                if let Some((_, call)) = calls.iter_mut().rev().find(|(i, _)| i == index) {
                    call.arguments.push_str(arguments);
                }
            }
            StreamEvent::ToolCallEnd { .. } => {}
            StreamEvent::Reasoning { reasoning } => self.reasoning.push(reasoning.clone()),
            StreamEvent::Usage { usage } => self.usage.merge(*usage),
            StreamEvent::Done { stop_reason } => self.stop_reason = Some(*stop_reason),
        }
    }
}
