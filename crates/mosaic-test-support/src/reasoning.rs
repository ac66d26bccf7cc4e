//! Reasoning models on the two APIs that want their reasoning back: scripted answers
//! that think before they call a tool (Anthropic's signed thinking blocks, a Responses
//! reasoning item with encrypted content), and [`Check`]s that refuse, as the real APIs
//! do, a continuation after the tool call that does not carry that reasoning back as it
//! came.
//!
//! - Anthropic Messages, with `thinking` enabled: the last assistant turn, when tool
//!   results follow it, must begin with a `thinking` (or `redacted_thinking`) block, and
//!   every thinking block must carry a signature the server issued, unmodified (400
//!   `invalid_request_error`).
//! - OpenAI Responses, with `reasoning` asked for and `store: false`: a reasoning item
//!   sent back by id is not found (404: nothing was stored), its encrypted content must
//!   be what the server issued (400 `invalid_encrypted_content`), and a function call
//!   sent back without the reasoning item before it is refused (400).

use std::sync::Arc;

use serde_json::{json, Value};

use crate::scripted::{Answer, Check};

/// The signature the scripted Anthropic server signs its thinking with.
pub const SIGNATURE: &str = "EqQBCgIYAhIM1gbcDa9GJwZA2b3hGgxsig-of-the-scripted-server";
/// The encrypted content of the scripted Responses server's reasoning items.
pub const ENCRYPTED: &str = "gAAAAABencrypted-reasoning-of-the-scripted-server==";

/// Anthropic: think (signed with `signature`), then call a tool.
pub fn anthropic_thinking_tool_call(
    thinking: &str,
    signature: &str,
    call_id: &str,
    name: &str,
    arguments: &str,
) -> Answer {
    Answer::sse_events(&[
        anthropic_start(),
        (
            "content_block_start",
            json!({"type": "content_block_start", "index": 0,
                "content_block": {"type": "thinking", "thinking": "", "signature": ""}}),
        ),
        (
            "content_block_delta",
            json!({"type": "content_block_delta", "index": 0,
                "delta": {"type": "thinking_delta", "thinking": thinking}}),
        ),
        (
            "content_block_delta",
            json!({"type": "content_block_delta", "index": 0,
                "delta": {"type": "signature_delta", "signature": signature}}),
        ),
        (
            "content_block_stop",
            json!({"type": "content_block_stop", "index": 0}),
        ),
        (
            "content_block_start",
            json!({"type": "content_block_start", "index": 1,
                "content_block": {"type": "tool_use", "id": call_id, "name": name, "input": {}}}),
        ),
        (
            "content_block_delta",
            json!({"type": "content_block_delta", "index": 1,
                "delta": {"type": "input_json_delta", "partial_json": arguments}}),
        ),
        (
            "content_block_stop",
            json!({"type": "content_block_stop", "index": 1}),
        ),
        anthropic_end("tool_use"),
        ("message_stop", json!({"type": "message_stop"})),
    ])
}

/// Anthropic: a plain text answer.
pub fn anthropic_text(text: &str) -> Answer {
    Answer::sse_events(&[
        anthropic_start(),
        (
            "content_block_start",
            json!({"type": "content_block_start", "index": 0,
                "content_block": {"type": "text", "text": ""}}),
        ),
        (
            "content_block_delta",
            json!({"type": "content_block_delta", "index": 0,
                "delta": {"type": "text_delta", "text": text}}),
        ),
        (
            "content_block_stop",
            json!({"type": "content_block_stop", "index": 0}),
        ),
        anthropic_end("end_turn"),
        ("message_stop", json!({"type": "message_stop"})),
    ])
}

fn anthropic_start() -> (&'static str, Value) {
    (
        "message_start",
        json!({"type": "message_start", "message": {"id": "msg_1", "type": "message",
            "role": "assistant", "content": [], "model": "claude-test", "stop_reason": null,
            "usage": {"input_tokens": 30, "output_tokens": 1}}}),
    )
}

fn anthropic_end(reason: &str) -> (&'static str, Value) {
    (
        "message_delta",
        json!({"type": "message_delta", "delta": {"stop_reason": reason},
            "usage": {"output_tokens": 20}}),
    )
}

fn anthropic_refusal(message: String) -> Answer {
    Answer::json(
        400,
        json!({"type": "error", "error": {"type": "invalid_request_error", "message": message}}),
    )
}

/// The content blocks of a message (a string content is one text block).
fn blocks(message: &Value) -> Vec<Value> {
    match &message["content"] {
        Value::Array(blocks) => blocks.clone(),
        Value::String(text) => vec![json!({"type": "text", "text": text})],
        _ => Vec::new(),
    }
}

/// Anthropic's rules for thinking with tools (see the module), for thinking signed with
/// one of `signatures`.
pub fn anthropic_requires_thinking(signatures: &[&str]) -> Check {
    let signatures: Vec<String> = signatures.iter().map(|s| s.to_string()).collect();
    Arc::new(move |body: &Value| {
        if body["thinking"]["type"] != "enabled" {
            return None;
        }
        let messages = body["messages"].as_array().cloned().unwrap_or_default();
        for (i, m) in messages.iter().enumerate() {
            for (j, b) in blocks(m).iter().enumerate() {
                let signed = b["signature"]
                    .as_str()
                    .is_some_and(|s| signatures.iter().any(|k| k == s));
                if b["type"] == "thinking" && !signed {
                    return Some(anthropic_refusal(format!(
                        "messages.{i}.content.{j}: Invalid `signature` in `thinking` block"
                    )));
                }
            }
        }
        let last_assistant = messages.iter().rposition(|m| m["role"] == "assistant")?;
        let answered = messages[last_assistant + 1..]
            .iter()
            .flat_map(blocks)
            .any(|b| b["type"] == "tool_result");
        let first = blocks(&messages[last_assistant]).first().cloned()?;
        let kind = first["type"].as_str().unwrap_or_default();
        if answered && kind != "thinking" && kind != "redacted_thinking" {
            return Some(anthropic_refusal(format!(
                "messages.{last_assistant}.content.0.type: Expected `thinking` or \
                 `redacted_thinking`, but found `{kind}`. When `thinking` is enabled, a final \
                 `assistant` message must start with a thinking block (preceeding the lastmost \
                 set of `tool_use` and `tool_result` blocks). We recommend you include thinking \
                 blocks from previous turns. To avoid this requirement, disable `thinking`. \
                 Please consult our documentation at \
                 https://docs.claude.com/en/docs/build-with-claude/extended-thinking"
            )));
        }
        None
    })
}

/// Responses: reason (a summary, and `encrypted` content), then call a function.
pub fn responses_reasoning_tool_call(
    summary: &str,
    encrypted: &str,
    call_id: &str,
    name: &str,
    arguments: &str,
) -> Answer {
    let reasoning = json!({"type": "reasoning", "id": "rs_1",
        "summary": [{"type": "summary_text", "text": summary}], "encrypted_content": encrypted});
    let call = json!({"type": "function_call", "id": "fc_1", "call_id": call_id, "name": name,
        "arguments": arguments, "status": "completed"});
    Answer::sse_events(&[
        responses_created(),
        (
            "response.output_item.added",
            json!({"type": "response.output_item.added", "output_index": 0,
                "item": {"type": "reasoning", "id": "rs_1", "summary": []}}),
        ),
        (
            "response.reasoning_summary_part.added",
            json!({"type": "response.reasoning_summary_part.added", "item_id": "rs_1",
                "output_index": 0, "summary_index": 0,
                "part": {"type": "summary_text", "text": ""}}),
        ),
        (
            "response.reasoning_summary_text.delta",
            json!({"type": "response.reasoning_summary_text.delta", "item_id": "rs_1",
                "output_index": 0, "summary_index": 0, "delta": summary}),
        ),
        (
            "response.output_item.done",
            json!({"type": "response.output_item.done", "output_index": 0, "item": reasoning}),
        ),
        (
            "response.output_item.added",
            json!({"type": "response.output_item.added", "output_index": 1,
                "item": {"type": "function_call", "id": "fc_1", "call_id": call_id,
                    "name": name, "arguments": ""}}),
        ),
        (
            "response.function_call_arguments.delta",
            json!({"type": "response.function_call_arguments.delta", "item_id": "fc_1",
                "output_index": 1, "delta": arguments}),
        ),
        (
            "response.output_item.done",
            json!({"type": "response.output_item.done", "output_index": 1, "item": call}),
        ),
        responses_completed(),
    ])
}

/// Responses: a plain text answer.
pub fn responses_text(text: &str) -> Answer {
    Answer::sse_events(&[
        responses_created(),
        (
            "response.output_item.added",
            json!({"type": "response.output_item.added", "output_index": 0,
                "item": {"type": "message", "id": "msg_1", "role": "assistant", "content": []}}),
        ),
        (
            "response.output_text.delta",
            json!({"type": "response.output_text.delta", "item_id": "msg_1",
                "output_index": 0, "content_index": 0, "delta": text}),
        ),
        responses_completed(),
    ])
}

fn responses_created() -> (&'static str, Value) {
    (
        "response.created",
        json!({"type": "response.created",
            "response": {"id": "resp_1", "status": "in_progress"}}),
    )
}

fn responses_completed() -> (&'static str, Value) {
    (
        "response.completed",
        json!({"type": "response.completed", "response": {"id": "resp_1",
            "status": "completed", "usage": {"input_tokens": 30, "output_tokens": 20}}}),
    )
}

fn responses_refusal(status: u16, message: String, code: Option<&str>) -> Answer {
    Answer::json(
        status,
        json!({"error": {"message": message, "type": "invalid_request_error",
            "param": "input", "code": code}}),
    )
}

/// The Responses API's rules for reasoning items (see the module), for reasoning whose
/// encrypted content is one of `issued`.
pub fn responses_requires_reasoning(issued: &[&str]) -> Check {
    let issued: Vec<String> = issued.iter().map(|s| s.to_string()).collect();
    Arc::new(move |body: &Value| {
        if body["reasoning"].is_null() {
            return None;
        }
        let input = body["input"].as_array().cloned().unwrap_or_default();
        for (i, item) in input.iter().enumerate() {
            if item["type"] != "reasoning" {
                continue;
            }
            if let (Some(id), false) = (item["id"].as_str(), body["store"] == true) {
                return Some(responses_refusal(
                    404,
                    format!(
                        "Item with id '{id}' not found. Items are not persisted when `store` is \
                         set to false. Try again with `store` set to true, or remove this item \
                         from your input."
                    ),
                    None,
                ));
            }
            let verified = item["encrypted_content"]
                .as_str()
                .is_some_and(|e| issued.iter().any(|k| k == e));
            if !verified {
                return Some(responses_refusal(
                    400,
                    format!(
                        "The encrypted content for item input[{i}] could not be verified. \
                         Reason: Encrypted content could not be decrypted or parsed."
                    ),
                    Some("invalid_encrypted_content"),
                ));
            }
        }
        for (i, item) in input.iter().enumerate() {
            if item["type"] != "function_call" {
                continue;
            }
            // Back over the rest of the same answer (its other calls, its text) to what
            // came before it: the reasoning that led to it.
            let before = input[..i]
                .iter()
                .rev()
                .find(|x| x["type"] != "function_call" && x["role"] != "assistant");
            if before.is_none_or(|x| x["type"] != "reasoning") {
                return Some(responses_refusal(
                    400,
                    format!(
                        "Item 'input[{i}]' of type 'function_call' was provided without the \
                         'reasoning' item that preceded it: send a reasoning model's output \
                         items back together."
                    ),
                    None,
                ));
            }
        }
        None
    })
}
