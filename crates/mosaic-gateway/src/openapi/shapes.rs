//! Shapes of request bodies that the derived schemas cannot state, written as JSON Schema:
//!
//! - an OpenAI Chat Completions request as `/v1/chat/completions` reads it (the handler
//!   takes free JSON, as OpenAI clients send many fields it ignores): what it requires is
//!   stated, every other field stays open.

use serde_json::{json, Value};
use utoipa::openapi::{OpenApi, Ref, RefOr, Schema};

const NAME: &str = "ChatCompletionRequest";

/// Every object with properties also takes others (`additionalProperties: true`).
fn open(mut schema: Value) -> Value {
    if let Some(map) = schema.as_object_mut() {
        if map.contains_key("properties") {
            map.insert("additionalProperties".into(), Value::Bool(true));
        }
        for value in map.values_mut() {
            *value = open(value.take());
        }
    } else if let Some(items) = schema.as_array_mut() {
        for value in items {
            *value = open(value.take());
        }
    }
    schema
}

pub fn apply(doc: &mut OpenApi) {
    chat_completions(doc);
}

fn chat_completions(doc: &mut OpenApi) {
    // Tool calls and tools alike: a list of objects whose `function` has a `name`.
    let named_functions = json!({"type": "array", "items": {
        "type": "object",
        "required": ["function"],
        "properties": {"function": {
            "type": "object",
            "required": ["name"],
            "properties": {"name": {"type": "string"}}
        }}
    }});
    let schema = json!({
        "type": "object",
        "description": "An OpenAI Chat Completions request; `model` is a route name or `provider/model`. Fields not listed are accepted and ignored.",
        "required": ["model", "messages"],
        "properties": {
            "model": {"type": "string", "minLength": 1},
            "messages": {"type": "array", "items": {
                "type": "object",
                "required": ["role"],
                "properties": {
                    "role": {"type": "string", "enum": ["system", "developer", "user", "assistant", "tool"]},
                    "content": {"oneOf": [
                        {"type": "null"},
                        {"type": "string"},
                        {"type": "array", "items": {
                            "type": "object",
                            "required": ["type", "text"],
                            "properties": {"type": {"type": "string", "enum": ["text"]}, "text": {"type": "string"}}
                        }}
                    ]},
                    "tool_calls": named_functions
                }
            }},
            "tools": named_functions
        }
    });
    let Ok(schema) = serde_json::from_value::<Schema>(open(schema)) else {
        return;
    };
    doc.components
        .get_or_insert_with(Default::default)
        .schemas
        .insert(NAME.into(), RefOr::T(schema));
    let body = doc
        .paths
        .paths
        .get_mut("/v1/chat/completions")
        .and_then(|item| item.post.as_mut())
        .and_then(|op| op.request_body.as_mut());
    if let Some(content) = body.and_then(|b| b.content.get_mut("application/json")) {
        content.schema = Some(RefOr::Ref(Ref::from_schema_name(NAME)));
    }
}
