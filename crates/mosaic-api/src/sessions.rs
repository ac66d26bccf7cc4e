//! Sessions: conversations of a user with an agent, stored as an append-only tree of
//! entries. Each entry names its parent; editing a message or retrying a turn appends a
//! sibling, so nothing is ever overwritten, and the session remembers which leaf is
//! active.

use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

/// What an entry holds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum EntryBody {
    /// A message from the user.
    User { text: String },
    /// An answer of the model.
    Assistant {
        text: String,
        #[serde(default, skip_serializing_if = "String::is_empty")]
        thinking: String,
        /// `provider/model` that answered.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        model: Option<String>,
        /// `stop`, `length`, `tool_use`, `error`, `aborted` or `interrupted`.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        stop_reason: Option<crate::runs::StopReason>,
        /// What the provider that answered needs to continue the answer (its signed
        /// thinking, its encrypted reasoning), sent back to it with the answer. Opaque:
        /// kept as the gateway wrote it, not meant to be read.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        #[schema(value_type = Vec<Object>)]
        reasoning: Vec<serde_json::Value>,
    },
    /// The model called a tool.
    ToolCall {
        call_id: String,
        name: String,
        /// JSON text, as the model produced it.
        arguments: String,
    },
    /// What the tool answered.
    ToolResult {
        call_id: String,
        output: String,
        #[serde(default)]
        is_error: bool,
    },
    /// The session switched to another route or model.
    ModelChange { route: String },
    /// A summary standing in for the entries before it in the model's context (they stay
    /// stored and visible).
    Compaction {
        summary: String,
        /// The last entry the summary covers.
        through_entry_id: String,
    },
    /// An entry of a kind this build does not know (a newer gateway's): a client shows
    /// that something is there and goes on. Never sent, never stored.
    #[serde(other, skip_serializing)]
    Unknown,
}

impl EntryBody {
    /// The text a search looks in.
    pub fn searchable_text(&self) -> String {
        match self {
            EntryBody::User { text } => text.clone(),
            EntryBody::Assistant { text, .. } => text.clone(),
            EntryBody::ToolCall {
                name, arguments, ..
            } => format!("{name} {arguments}"),
            EntryBody::ToolResult { output, .. } => output.clone(),
            EntryBody::ModelChange { route } => route.clone(),
            EntryBody::Compaction { summary, .. } => summary.clone(),
            EntryBody::Unknown => String::new(),
        }
    }

    pub fn kind(&self) -> &'static str {
        match self {
            EntryBody::User { .. } => "user",
            EntryBody::Assistant { .. } => "assistant",
            EntryBody::ToolCall { .. } => "tool_call",
            EntryBody::ToolResult { .. } => "tool_result",
            EntryBody::ModelChange { .. } => "model_change",
            EntryBody::Compaction { .. } => "compaction",
            EntryBody::Unknown => "unknown",
        }
    }
}

/// One node of a session's tree.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Entry {
    /// Unique within its session.
    pub id: String,
    /// `None` for a first entry (a session may have several roots after edits of its
    /// first message).
    pub parent_id: Option<String>,
    pub created_at: String,
    pub body: EntryBody,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Session {
    pub id: String,
    pub agent_id: Option<String>,
    pub title: String,
    /// The entry the conversation continues from.
    pub active_leaf_id: Option<String>,
    pub archived: bool,
    pub created_at: String,
    pub updated_at: String,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct CreateSessionRequest {
    /// Agent id; the `default` agent when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agent_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(max_length = 200)]
    pub title: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct UpdateSessionRequest {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(max_length = 200)]
    pub title: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub archived: Option<bool>,
}

/// Filters of the session list (plus `cursor` and `limit`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, IntoParams, ToSchema)]
#[into_params(parameter_in = Query)]
pub struct SessionQuery {
    /// Words to find in titles and entries (case-insensitive).
    pub q: Option<String>,
    /// `true`: archived sessions only; absent or `false`: active ones.
    pub archived: Option<bool>,
    pub cursor: Option<String>,
    /// Page size, 1 to 500; 50 when absent.
    #[serde(default, deserialize_with = "crate::page::limit")]
    #[param(minimum = 1, maximum = 500)]
    pub limit: Option<u32>,
}

/// The entries from a root to one leaf, in order.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct EntryList {
    pub items: Vec<Entry>,
}

/// Which branch to read: the active leaf when absent.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, IntoParams, ToSchema)]
#[into_params(parameter_in = Query)]
pub struct BranchQuery {
    pub leaf: Option<String>,
}

/// One branch of a session: its leaf, and how long it is.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Branch {
    pub leaf: Entry,
    /// Entries from the root to the leaf.
    pub length: u32,
    pub active: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct BranchList {
    pub items: Vec<Branch>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct SetLeafRequest {
    pub entry_id: String,
}

/// The first line of a session export (JSON Lines: this, then one [`Entry`] a line,
/// parents before children).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ExportHeader {
    /// Always `mosaic.session`.
    pub format: String,
    pub version: u32,
    pub title: String,
    /// The agent's name when exported (matched by name on import).
    pub agent: Option<String>,
    pub active_leaf_id: Option<String>,
    pub archived: bool,
    pub created_at: String,
}
