//! The brain: projects, tasks, missions, notes and memories that people and agents share. Every item is
//! owned by one user or one team (like a workspace); a team's items are read and
//! written by its members and deleted by its owners and admins.
//!
//! Updates are partial: an absent field is left as it is. Fields that may be empty
//! (`due_at`, `project_id`, …) take `null` to clear them, which is why they are
//! `Option<Option<_>>` in the update requests.

use serde::{Deserialize, Deserializer, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::Owner;

/// Most labels of a task or tags of a note.
pub const MAX_LABELS: usize = 20;
/// Longest label or tag, in characters.
pub const MAX_LABEL_CHARS: usize = 50;
/// Longest title or project name, in characters.
pub const MAX_TITLE_CHARS: usize = 300;
/// Longest body, note or description, in bytes.
pub const MAX_BODY_BYTES: usize = 100_000;
/// Longest success criteria of a mission, in bytes.
pub const MAX_CRITERIA_BYTES: usize = 10_000;
/// A label of a task or tag of a note or memory, as the document describes it: at most
/// [`MAX_LABEL_CHARS`] characters, no commas (stored trimmed and lowercase).
#[derive(ToSchema)]
#[schema(pattern = r"^[^,]{0,50}$")]
pub struct Label(pub String);

/// Most milestones of a mission.
pub const MAX_MILESTONES: usize = 50;

/// `Some(None)` for an explicit `null`, `None` (with `#[serde(default)]`) when absent.
fn present<'de, D, T>(d: D) -> Result<Option<Option<T>>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    Option::<T>::deserialize(d).map(Some)
}

macro_rules! wire_enum {
    ($(#[$doc:meta])* $name:ident { $($variant:ident => $text:literal),+ $(,)? }) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
        #[serde(rename_all = "snake_case")]
        pub enum $name { $($variant),+ }

        impl $name {
            pub fn as_str(self) -> &'static str {
                match self { $($name::$variant => $text),+ }
            }

            pub fn parse(s: &str) -> Option<$name> {
                match s { $($text => Some($name::$variant),)+ _ => None }
            }
        }
    };
}

wire_enum!(
    /// Where a project stands.
    ProjectStatus { Active => "active", Paused => "paused", Done => "done", Archived => "archived" }
);
wire_enum!(
    /// Where a task stands.
    TaskStatus { Todo => "todo", Doing => "doing", Blocked => "blocked", Done => "done" }
);
wire_enum!(
    /// Where a mission stands.
    MissionStatus { Active => "active", Achieved => "achieved", Abandoned => "abandoned" }
);
wire_enum!(
    TaskPriority { Low => "low", Normal => "normal", High => "high", Urgent => "urgent" }
);
wire_enum!(
    /// What a search hit is.
    BrainKind { Task => "task", Note => "note", Memory => "memory" }
);

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Project {
    pub id: String,
    pub name: String,
    pub description: String,
    pub status: ProjectStatus,
    pub owner: Owner,
    /// A workspace of the same owner.
    pub workspace_id: Option<String>,
    pub created_at: String,
    pub updated_at: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Task {
    pub id: String,
    pub title: String,
    /// Markdown.
    pub body: String,
    pub status: TaskStatus,
    pub priority: TaskPriority,
    pub due_at: Option<String>,
    /// The owner, or a member of the owning team.
    pub assignee_user_id: Option<String>,
    /// Lowercase, sorted, without repeats.
    pub labels: Vec<String>,
    pub project_id: Option<String>,
    pub parent_task_id: Option<String>,
    /// A mission of the same owner that this task counts towards.
    #[serde(default)]
    pub mission_id: Option<String>,
    pub owner: Owner,
    pub created_at: String,
    pub updated_at: String,
    /// When the task last became done; absent unless it is done.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub done_at: Option<String>,
}

/// One step towards a mission's goal.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Milestone {
    #[schema(pattern = r"\S", max_length = 300)]
    pub title: String,
    #[serde(default)]
    pub done: bool,
}

/// How far a mission's linked tasks have come.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct MissionProgress {
    pub tasks_total: u64,
    pub tasks_done: u64,
}

/// A goal with success criteria and milestones; progress is derived from the tasks
/// linked to it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Mission {
    pub id: String,
    pub goal: String,
    /// Markdown.
    pub success_criteria: String,
    pub milestones: Vec<Milestone>,
    /// A project of the same owner.
    pub project_id: Option<String>,
    pub owner: Owner,
    pub status: MissionStatus,
    pub progress: MissionProgress,
    pub created_at: String,
    pub updated_at: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Note {
    pub id: String,
    pub title: String,
    /// Markdown.
    pub body: String,
    /// Lowercase, sorted, without repeats.
    pub tags: Vec<String>,
    pub project_id: Option<String>,
    pub owner: Owner,
    pub created_at: String,
    pub updated_at: String,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct CreateProjectRequest {
    #[schema(pattern = r"\S", max_length = 300)]
    pub name: String,
    #[serde(default)]
    pub description: String,
    /// `active` when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<ProjectStatus>,
    /// Owned by this team (the caller must be a member); by the caller when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub team_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub workspace_id: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct UpdateProjectRequest {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(pattern = r"\S", max_length = 300)]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<ProjectStatus>,
    /// `null` takes the project out of its workspace.
    #[serde(
        default,
        deserialize_with = "present",
        skip_serializing_if = "Option::is_none"
    )]
    pub workspace_id: Option<Option<String>>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct CreateTaskRequest {
    #[schema(pattern = r"\S", max_length = 300)]
    pub title: String,
    #[serde(default)]
    pub body: String,
    /// `todo` when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<TaskStatus>,
    /// `normal` when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub priority: Option<TaskPriority>,
    /// RFC 3339.
    #[serde(
        default,
        deserialize_with = "crate::time::timestamp",
        skip_serializing_if = "Option::is_none"
    )]
    #[schema(format = DateTime)]
    pub due_at: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub assignee_user_id: Option<String>,
    #[serde(default)]
    #[schema(max_items = 20, value_type = Vec<Label>)]
    pub labels: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub project_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parent_task_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mission_id: Option<String>,
    /// Owned by this team (the caller must be a member); by the caller when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub team_id: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct UpdateTaskRequest {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(pattern = r"\S", max_length = 300)]
    pub title: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub body: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<TaskStatus>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub priority: Option<TaskPriority>,
    #[serde(
        default,
        deserialize_with = "crate::time::present_timestamp",
        skip_serializing_if = "Option::is_none"
    )]
    #[schema(format = DateTime)]
    pub due_at: Option<Option<String>>,
    #[serde(
        default,
        deserialize_with = "present",
        skip_serializing_if = "Option::is_none"
    )]
    pub assignee_user_id: Option<Option<String>>,
    /// Replaces every label.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(max_items = 20, value_type = Option<Vec<Label>>)]
    pub labels: Option<Vec<String>>,
    #[serde(
        default,
        deserialize_with = "present",
        skip_serializing_if = "Option::is_none"
    )]
    pub project_id: Option<Option<String>>,
    #[serde(
        default,
        deserialize_with = "present",
        skip_serializing_if = "Option::is_none"
    )]
    pub parent_task_id: Option<Option<String>>,
    /// `null` unlinks the task from its mission.
    #[serde(
        default,
        deserialize_with = "present",
        skip_serializing_if = "Option::is_none"
    )]
    pub mission_id: Option<Option<String>>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct CreateMissionRequest {
    #[schema(pattern = r"\S", max_length = 300)]
    pub goal: String,
    #[serde(default)]
    pub success_criteria: String,
    #[serde(default)]
    #[schema(max_items = 50)]
    pub milestones: Vec<Milestone>,
    /// `active` when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<MissionStatus>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub project_id: Option<String>,
    /// Owned by this team (the caller must be a member); by the caller when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub team_id: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct UpdateMissionRequest {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(pattern = r"\S", max_length = 300)]
    pub goal: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub success_criteria: Option<String>,
    /// Replaces every milestone.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(max_items = 50)]
    pub milestones: Option<Vec<Milestone>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<MissionStatus>,
    /// `null` takes the mission out of its project.
    #[serde(
        default,
        deserialize_with = "present",
        skip_serializing_if = "Option::is_none"
    )]
    pub project_id: Option<Option<String>>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct CreateNoteRequest {
    #[schema(pattern = r"\S", max_length = 300)]
    pub title: String,
    #[serde(default)]
    pub body: String,
    #[serde(default)]
    #[schema(max_items = 20, value_type = Vec<Label>)]
    pub tags: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub project_id: Option<String>,
    /// Owned by this team (the caller must be a member); by the caller when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub team_id: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct UpdateNoteRequest {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(pattern = r"\S", max_length = 300)]
    pub title: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub body: Option<String>,
    /// Replaces every tag.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(max_items = 20, value_type = Option<Vec<Label>>)]
    pub tags: Option<Vec<String>>,
    #[serde(
        default,
        deserialize_with = "present",
        skip_serializing_if = "Option::is_none"
    )]
    pub project_id: Option<Option<String>>,
}

/// Filters of the project list (plus `cursor` and `limit`); newest first.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, IntoParams, ToSchema)]
#[into_params(parameter_in = Query)]
pub struct ProjectQuery {
    pub status: Option<ProjectStatus>,
    pub workspace_id: Option<String>,
    /// Only this team's projects.
    pub team_id: Option<String>,
    pub cursor: Option<String>,
    /// Page size, 1 to 500; 50 when absent.
    #[serde(default, deserialize_with = "crate::page::limit")]
    #[param(minimum = 1, maximum = 500)]
    pub limit: Option<u32>,
}

/// Filters of the task list (plus `cursor` and `limit`); newest first.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, IntoParams, ToSchema)]
#[into_params(parameter_in = Query)]
pub struct TaskQuery {
    pub project_id: Option<String>,
    pub status: Option<TaskStatus>,
    /// Assigned to this user id.
    pub assignee: Option<String>,
    pub label: Option<String>,
    /// Subtasks of this task.
    pub parent_task_id: Option<String>,
    /// Tasks linked to this mission.
    pub mission_id: Option<String>,
    /// Due strictly before this time (RFC 3339); tasks without a due date never match.
    #[serde(default, deserialize_with = "crate::time::timestamp")]
    #[param(format = DateTime)]
    pub due_before: Option<String>,
    /// Words that must all occur in the title or body.
    pub q: Option<String>,
    pub cursor: Option<String>,
    /// Page size, 1 to 500; 50 when absent.
    #[serde(default, deserialize_with = "crate::page::limit")]
    #[param(minimum = 1, maximum = 500)]
    pub limit: Option<u32>,
}

/// Filters of the mission list (plus `cursor` and `limit`); newest first.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, IntoParams, ToSchema)]
#[into_params(parameter_in = Query)]
pub struct MissionQuery {
    pub status: Option<MissionStatus>,
    pub project_id: Option<String>,
    pub cursor: Option<String>,
    /// Page size, 1 to 500; 50 when absent.
    #[serde(default, deserialize_with = "crate::page::limit")]
    #[param(minimum = 1, maximum = 500)]
    pub limit: Option<u32>,
}

/// Filters of the note list (plus `cursor` and `limit`); newest first.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, IntoParams, ToSchema)]
#[into_params(parameter_in = Query)]
pub struct NoteQuery {
    pub project_id: Option<String>,
    pub tag: Option<String>,
    /// Words that must all occur in the title or body.
    pub q: Option<String>,
    pub cursor: Option<String>,
    /// Page size, 1 to 500; 50 when absent.
    #[serde(default, deserialize_with = "crate::page::limit")]
    #[param(minimum = 1, maximum = 500)]
    pub limit: Option<u32>,
}

wire_enum!(
    /// What a memory records.
    MemoryKind {
        Fact => "fact",
        Preference => "preference",
        Instruction => "instruction",
        Decision => "decision",
        Event => "event",
    }
);

/// Longest memory, in characters: memories are short; longer text belongs in a note.
pub const MAX_MEMORY_CHARS: usize = 2_000;
/// Most pinned memories of one owner.
pub const MAX_PINNED: usize = 50;
/// Importance runs from 1 (trivia) to 5 (essential); 3 when not given.
pub const DEFAULT_IMPORTANCE: u8 = 3;

/// A short thing worth remembering, told by a person or saved by an agent. Pinned
/// memories are put into the context of every run of their owner (or, with
/// `agent_id`, of that agent's runs).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Memory {
    pub id: String,
    pub text: String,
    pub kind: MemoryKind,
    /// Lowercase, sorted, without repeats.
    pub tags: Vec<String>,
    /// 1 (trivia) to 5 (essential).
    pub importance: u8,
    pub pinned: bool,
    /// Pinned for this agent's runs only; for every run of the owner when absent.
    pub agent_id: Option<String>,
    /// The session it was learnt in.
    pub source_session_id: Option<String>,
    pub owner: Owner,
    /// Whether its embedding is computed (vector search finds it).
    pub embedded: bool,
    pub created_at: String,
    pub updated_at: String,
    /// When a recall last returned it.
    pub used_at: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct CreateMemoryRequest {
    #[schema(pattern = r"\S", max_length = 2000)]
    pub text: String,
    /// `fact` when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<MemoryKind>,
    #[serde(default)]
    #[schema(max_items = 20, value_type = Vec<Label>)]
    pub tags: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(minimum = 1, maximum = 5)]
    pub importance: Option<u8>,
    #[serde(default)]
    pub pinned: bool,
    /// One of the caller's agents.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agent_id: Option<String>,
    /// One of the caller's sessions.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source_session_id: Option<String>,
    /// Owned by this team (the caller must be a member); by the caller when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub team_id: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct UpdateMemoryRequest {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(pattern = r"\S", max_length = 2000)]
    pub text: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<MemoryKind>,
    /// Replaces every tag.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(max_items = 20, value_type = Option<Vec<Label>>)]
    pub tags: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(minimum = 1, maximum = 5)]
    pub importance: Option<u8>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pinned: Option<bool>,
    #[serde(
        default,
        deserialize_with = "present",
        skip_serializing_if = "Option::is_none"
    )]
    pub agent_id: Option<Option<String>>,
}

/// Filters of the memory list (plus `cursor` and `limit`); newest first.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, IntoParams, ToSchema)]
#[into_params(parameter_in = Query)]
pub struct MemoryQuery {
    pub kind: Option<MemoryKind>,
    pub tag: Option<String>,
    pub pinned: Option<bool>,
    pub agent_id: Option<String>,
    /// Words that must all occur in the text.
    pub q: Option<String>,
    pub cursor: Option<String>,
    /// Page size, 1 to 500; 50 when absent.
    #[serde(default, deserialize_with = "crate::page::limit")]
    #[param(minimum = 1, maximum = 500)]
    pub limit: Option<u32>,
}

/// How a search ranked its hits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum SearchMode {
    /// Words only: no embedding model is configured, or it could not embed the query.
    Lexical,
    /// Words and meaning, merged by reciprocal rank fusion.
    Hybrid,
}

/// Where a hit stood in each ranked list that found it, and what that list scored.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct ScoreParts {
    /// 1-based rank among the lexical hits of its kind; absent when words did not find it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lexical_rank: Option<u32>,
    /// The engine's relevance (bm25 on SQLite, ts_rank on PostgreSQL), higher is better;
    /// comparable only within one kind.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lexical_score: Option<f64>,
    /// 1-based rank among the nearest embeddings (every kind together).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vector_rank: Option<u32>,
    /// Cosine similarity of the query's and the item's embeddings (-1 to 1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub similarity: Option<f64>,
}

/// One result of a search.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct SearchHit {
    pub kind: BrainKind,
    pub id: String,
    /// A task's or note's title; a memory's text (shortened).
    pub title: String,
    /// A short excerpt, matched words between `«` and `»`.
    pub snippet: String,
    /// The fused score, higher is better: the sum of `1 / (60 + rank)` over the ranked
    /// lists that found the hit (reciprocal rank fusion).
    pub score: f64,
    pub scores: ScoreParts,
}

/// The hits of a search, best first, and how they were ranked.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct SearchResults {
    pub items: Vec<SearchHit>,
    pub mode: SearchMode,
    /// Why the search fell back to words only, when it did although an embedding model
    /// is configured.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub notice: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn update_requests_tell_null_from_absent() {
        let clear: UpdateTaskRequest =
            serde_json::from_str(r#"{"due_at": null, "project_id": "p1"}"#).unwrap_or_default();
        assert_eq!(clear.due_at, Some(None));
        assert_eq!(clear.project_id, Some(Some("p1".into())));
        assert_eq!(clear.parent_task_id, None);
        let text = serde_json::to_string(&clear).unwrap_or_default();
        assert_eq!(text, r#"{"due_at":null,"project_id":"p1"}"#);
    }
}
