//! Memory tools: `remember` saves a memory for the session's owner, `recall` finds
//! memories by words and meaning, `update_memory` corrects, re-tags or (un)pins one.
//! Like every brain tool they act as `ctx.principal` through the store, so a memory
//! is never read or written past its owner's rights.
//!
//! Pinned memories are put into every run's context (see the runtime), so pinning is
//! how an agent keeps a standing instruction or its own working notes in view;
//! `agent_only` pins one for this agent's runs alone.

use std::sync::Arc;

use mosaic_api::{
    BrainKind, CreateMemoryRequest, Memory, MemoryKind, UpdateMemoryRequest, MAX_LABELS,
    MAX_LABEL_CHARS, MAX_MEMORY_CHARS,
};
use mosaic_llm::{BoxFuture, ToolSpec};
use mosaic_store::{Store, StoreError};
use serde::Deserialize;
use serde_json::{json, Value};

use super::{Tool, ToolContext, ToolOutput};
use crate::embedder::Embedder;

/// Most memories one recall returns.
const MAX_RECALL: u32 = 20;
const DEFAULT_RECALL: u32 = 8;

/// The kinds, for schemas.
fn kinds() -> Value {
    json!(["fact", "preference", "instruction", "decision", "event"])
}

fn tags_schema() -> Value {
    json!({
        "type": "array",
        "maxItems": MAX_LABELS,
        "items": {"type": "string", "minLength": 1, "maxLength": MAX_LABEL_CHARS},
        "description": "Short lowercase topics, e.g. [\"food\", \"family\"]."
    })
}

/// A memory as the model reads it: compact, no timestamps it cannot use.
fn shown(m: &Memory) -> Value {
    let mut v = json!({
        "id": m.id,
        "text": m.text,
        "kind": m.kind.as_str(),
        "importance": m.importance,
    });
    if !m.tags.is_empty() {
        v["tags"] = json!(m.tags);
    }
    if m.pinned {
        v["pinned"] = json!(true);
    }
    if m.agent_id.is_some() {
        v["agent_only"] = json!(true);
    }
    v
}

fn store_error(e: StoreError, id: Option<&str>) -> ToolOutput {
    match (e, id) {
        (StoreError::NotFound, Some(id)) => {
            ToolOutput::error(format!("no memory {id} visible to you"))
        }
        (StoreError::NotFound, None) => ToolOutput::error("not found"),
        (StoreError::Forbidden(m) | StoreError::Invalid(m) | StoreError::Conflict(m), _) => {
            ToolOutput::error(m)
        }
        (e, _) => {
            tracing::warn!("memory tool failed: {e}");
            ToolOutput::error("the memory store failed; try again later")
        }
    }
}

fn decode<T: for<'de> Deserialize<'de>>(args: Value) -> Result<T, ToolOutput> {
    serde_json::from_value(args).map_err(|e| ToolOutput::error(format!("bad arguments: {e}")))
}

/// `remember`: save a memory.
pub struct Remember {
    store: Store,
}

impl Remember {
    pub fn new(store: Store) -> Self {
        Remember { store }
    }
}

#[derive(Deserialize)]
struct RememberArgs {
    text: String,
    kind: Option<MemoryKind>,
    #[serde(default)]
    tags: Vec<String>,
    importance: Option<u8>,
    #[serde(default)]
    pinned: bool,
    #[serde(default)]
    agent_only: bool,
}

impl Tool for Remember {
    fn spec(&self) -> ToolSpec {
        ToolSpec {
            name: "remember".into(),
            description: "Save something worth remembering beyond this conversation: a fact \
                about the user, a preference, a standing instruction, a decision or an event. \
                One short self-contained statement per memory (it is read without this \
                conversation). Pin only what should be in view in every future run."
                .into(),
            parameters: json!({
                "type": "object",
                "properties": {
                    "text": {"type": "string", "minLength": 1, "maxLength": MAX_MEMORY_CHARS},
                    "kind": {"type": "string", "enum": kinds()},
                    "tags": tags_schema(),
                    "importance": {"type": "integer", "minimum": 1, "maximum": 5,
                        "description": "1 trivia … 5 essential; 3 when unsure."},
                    "pinned": {"type": "boolean"},
                    "agent_only": {"type": "boolean",
                        "description": "Pinned for this agent's runs only (its own notes)."}
                },
                "required": ["text"],
                "additionalProperties": false
            }),
        }
    }

    fn call<'a>(&'a self, ctx: &'a ToolContext, args: Value) -> BoxFuture<'a, ToolOutput> {
        Box::pin(async move {
            let args: RememberArgs = match decode(args) {
                Ok(a) => a,
                Err(out) => return out,
            };
            let req = CreateMemoryRequest {
                text: args.text,
                kind: args.kind,
                tags: args.tags,
                importance: args.importance,
                pinned: args.pinned,
                agent_id: if args.agent_only {
                    ctx.agent_id.clone()
                } else {
                    None
                },
                source_session_id: Some(ctx.session_id.clone()),
                team_id: None,
            };
            match self.store.create_memory(&ctx.principal, &req).await {
                Ok(m) => ToolOutput::ok(json!({"saved": shown(&m)}).to_string()),
                Err(e) => store_error(e, None),
            }
        })
    }
}

/// `recall`: find memories by words and meaning.
pub struct Recall {
    store: Store,
    embedder: Option<Arc<Embedder>>,
}

impl Recall {
    pub fn new(store: Store, embedder: Option<Arc<Embedder>>) -> Self {
        Recall { store, embedder }
    }
}

#[derive(Deserialize)]
struct RecallArgs {
    query: String,
    limit: Option<u32>,
}

impl Tool for Recall {
    fn spec(&self) -> ToolSpec {
        ToolSpec {
            name: "recall".into(),
            description: "Search the user's memories (facts, preferences, instructions, \
                decisions, events saved earlier) by words and meaning, best first."
                .into(),
            parameters: json!({
                "type": "object",
                "properties": {
                    "query": {"type": "string", "minLength": 1, "maxLength": 500},
                    "limit": {"type": "integer", "minimum": 1, "maximum": MAX_RECALL}
                },
                "required": ["query"],
                "additionalProperties": false
            }),
        }
    }

    fn call<'a>(&'a self, ctx: &'a ToolContext, args: Value) -> BoxFuture<'a, ToolOutput> {
        Box::pin(async move {
            let args: RecallArgs = match decode(args) {
                Ok(a) => a,
                Err(out) => return out,
            };
            let limit = args.limit.unwrap_or(DEFAULT_RECALL).clamp(1, MAX_RECALL);
            let found = match crate::search::search(
                &self.store,
                self.embedder.as_deref(),
                &ctx.principal,
                &args.query,
                &[BrainKind::Memory],
                limit,
                None,
            )
            .await
            {
                Ok(found) => found,
                Err(e) => return store_error(e, None),
            };
            let hits = found.items;
            let mut memories = Vec::new();
            let mut ids = Vec::new();
            for hit in hits {
                if let Ok(m) = self.store.get_memory(&ctx.principal, &hit.id).await {
                    ids.push(m.id.clone());
                    memories.push(shown(&m));
                }
            }
            if let Err(e) = self.store.touch_memories(&ctx.principal, &ids).await {
                tracing::warn!("cannot mark recalled memories as used: {e}");
            }
            let mut answer = if memories.is_empty() {
                json!({"memories": [], "note": "nothing found"})
            } else {
                json!({ "memories": memories })
            };
            if let Some(notice) = found.notice {
                answer["notice"] = json!(notice);
            }
            ToolOutput::ok(answer.to_string())
        })
    }
}

/// `update_memory`: correct, re-tag, re-weigh or (un)pin a memory.
pub struct UpdateMemory {
    store: Store,
}

impl UpdateMemory {
    pub fn new(store: Store) -> Self {
        UpdateMemory { store }
    }
}

#[derive(Deserialize)]
struct UpdateArgs {
    id: String,
    text: Option<String>,
    kind: Option<MemoryKind>,
    tags: Option<Vec<String>>,
    importance: Option<u8>,
    pinned: Option<bool>,
    agent_only: Option<bool>,
}

impl Tool for UpdateMemory {
    fn spec(&self) -> ToolSpec {
        ToolSpec {
            name: "update_memory".into(),
            description: "Change a memory (by the id `recall` or the pinned list shows): \
                correct its text, kind, tags or importance, or pin / unpin it."
                .into(),
            parameters: json!({
                "type": "object",
                "properties": {
                    "id": {"type": "string", "minLength": 1},
                    "text": {"type": "string", "minLength": 1, "maxLength": MAX_MEMORY_CHARS},
                    "kind": {"type": "string", "enum": kinds()},
                    "tags": tags_schema(),
                    "importance": {"type": "integer", "minimum": 1, "maximum": 5},
                    "pinned": {"type": "boolean"},
                    "agent_only": {"type": "boolean"}
                },
                "required": ["id"],
                "additionalProperties": false
            }),
        }
    }

    fn call<'a>(&'a self, ctx: &'a ToolContext, args: Value) -> BoxFuture<'a, ToolOutput> {
        Box::pin(async move {
            let args: UpdateArgs = match decode(args) {
                Ok(a) => a,
                Err(out) => return out,
            };
            let req = UpdateMemoryRequest {
                text: args.text,
                kind: args.kind,
                tags: args.tags,
                importance: args.importance,
                pinned: args.pinned,
                agent_id: args
                    .agent_only
                    .map(|only| if only { ctx.agent_id.clone() } else { None }),
            };
            match self
                .store
                .update_memory(&ctx.principal, &args.id, &req)
                .await
            {
                Ok(m) => ToolOutput::ok(json!({"updated": shown(&m)}).to_string()),
                Err(e) => store_error(e, Some(&args.id)),
            }
        })
    }
}

/// The pinned memories of a run, as a section of its system prompt: at most
/// `budget` characters, most important first (the store's order).
pub fn pinned_section(pinned: &[Memory], budget: usize) -> Option<String> {
    if pinned.is_empty() {
        return None;
    }
    let mut out = String::from(
        "## Pinned memory\nWhat the user (or you, earlier) pinned to keep in view. Change it \
         with update_memory when it is wrong or no longer wanted.\n",
    );
    let mut left = budget;
    let mut omitted = 0;
    for m in pinned {
        let line = format!(
            "- {} (id {}, {})\n",
            m.text.replace('\n', " "),
            m.id,
            m.kind.as_str()
        );
        if line.chars().count() > left {
            omitted += 1;
            continue;
        }
        left -= line.chars().count();
        out.push_str(&line);
    }
    if omitted > 0 {
        out.push_str(&format!(
            "({omitted} more pinned memories did not fit; recall finds them.)\n"
        ));
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use mosaic_api::Owner;

    fn memory(text: &str) -> Memory {
        Memory {
            id: "m1".into(),
            text: text.into(),
            kind: MemoryKind::Instruction,
            tags: vec![],
            importance: 5,
            pinned: true,
            agent_id: None,
            source_session_id: None,
            owner: Owner::User { id: "u".into() },
            embedded: false,
            created_at: String::new(),
            updated_at: String::new(),
            used_at: None,
        }
    }

    #[test]
    fn pinned_section_lists_what_fits_and_counts_the_rest() {
        assert_eq!(pinned_section(&[], 100), None);
        let text = pinned_section(&[memory("answer in French"), memory(&"x".repeat(500))], 200)
            .unwrap_or_default();
        assert!(
            text.contains("- answer in French (id m1, instruction)"),
            "{text}"
        );
        assert!(
            text.contains("1 more pinned memories did not fit"),
            "{text}"
        );
    }
}
