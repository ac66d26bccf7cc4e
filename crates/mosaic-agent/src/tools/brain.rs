//! Brain tools: the agent reads and changes projects, tasks, missions and notes as the
//! session's owner, through the same store operations the HTTP API uses. Every call
//! passes `ctx.principal` to the store, so tenancy is the store's (another user's items
//! are "not found", a team's follow the team's rules) and no tool ever acts with more
//! rights than the person it runs for.
//!
//! There are no deletion tools on purpose: destructive changes stay with people. A
//! model that wants something gone can mark a task `done`, a project `archived` or a
//! mission `abandoned`.
//!
//! The tools are one type over an [`Op`] so their schemas, argument decoding and
//! output shaping stay side by side. Arguments are decoded straight into the
//! contract's request types once the registry has checked them against the schema;
//! outputs are compact JSON (empty fields left out, long texts cut in lists) because
//! every byte of them goes back into the model's context.

use std::sync::Arc;

use mosaic_api::{
    BrainKind, CreateMissionRequest, CreateNoteRequest, CreateProjectRequest, CreateTaskRequest,
    MissionQuery, NoteQuery, ProjectQuery, SearchResults, TaskQuery, UpdateMissionRequest,
    UpdateNoteRequest, UpdateProjectRequest, UpdateTaskRequest, MAX_LABELS, MAX_LABEL_CHARS,
    MAX_MILESTONES, MAX_TITLE_CHARS,
};
use mosaic_llm::{BoxFuture, ToolSpec};
use mosaic_store::{Principal, Store, StoreError};
use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::{json, Map, Value};

use super::{Tool, ToolContext, ToolOutput};
use crate::embedder::Embedder;

/// Most items a list or search tool returns at once.
const MAX_ITEMS: u32 = 50;
/// Items a list or search returns when the model names no limit.
const DEFAULT_ITEMS: u32 = 20;
/// Characters of a body kept in list results; `get_brain_item` gives the whole text.
const EXCERPT_CHARS: usize = 200;

/// One brain tool.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    SearchBrain,
    GetBrainItem,
    ListTasks,
    CreateTask,
    UpdateTask,
    ListProjects,
    CreateProject,
    UpdateProject,
    ListMissions,
    CreateMission,
    UpdateMission,
    ListNotes,
    CreateNote,
    UpdateNote,
}

impl Op {
    pub const ALL: [Op; 14] = [
        Op::SearchBrain,
        Op::GetBrainItem,
        Op::ListTasks,
        Op::CreateTask,
        Op::UpdateTask,
        Op::ListProjects,
        Op::CreateProject,
        Op::UpdateProject,
        Op::ListMissions,
        Op::CreateMission,
        Op::UpdateMission,
        Op::ListNotes,
        Op::CreateNote,
        Op::UpdateNote,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Op::SearchBrain => "search_brain",
            Op::GetBrainItem => "get_brain_item",
            Op::ListTasks => "list_tasks",
            Op::CreateTask => "create_task",
            Op::UpdateTask => "update_task",
            Op::ListProjects => "list_projects",
            Op::CreateProject => "create_project",
            Op::UpdateProject => "update_project",
            Op::ListMissions => "list_missions",
            Op::CreateMission => "create_mission",
            Op::UpdateMission => "update_mission",
            Op::ListNotes => "list_notes",
            Op::CreateNote => "create_note",
            Op::UpdateNote => "update_note",
        }
    }

    /// Whether the tool only reads (a candidate for running without approval).
    pub fn reads_only(self) -> bool {
        match self {
            Op::SearchBrain
            | Op::GetBrainItem
            | Op::ListTasks
            | Op::ListProjects
            | Op::ListMissions
            | Op::ListNotes => true,
            Op::CreateTask
            | Op::UpdateTask
            | Op::CreateProject
            | Op::UpdateProject
            | Op::CreateMission
            | Op::UpdateMission
            | Op::CreateNote
            | Op::UpdateNote => false,
        }
    }
}

/// Every brain tool, acting through `store`.
pub fn tools(store: Store, embedder: Option<Arc<Embedder>>) -> Vec<Arc<dyn Tool>> {
    Op::ALL
        .into_iter()
        .map(|op| {
            Arc::new(BrainTool {
                store: store.clone(),
                op,
                embedder: embedder.clone(),
            }) as Arc<dyn Tool>
        })
        .collect()
}

/// A brain tool: one operation on the store, always as the caller.
pub struct BrainTool {
    store: Store,
    op: Op,
    /// Embeds search queries, when an embedding model is configured.
    embedder: Option<Arc<Embedder>>,
}

impl BrainTool {
    pub fn new(store: Store, op: Op, embedder: Option<Arc<Embedder>>) -> BrainTool {
        BrainTool {
            store,
            op,
            embedder,
        }
    }
}

impl Tool for BrainTool {
    fn spec(&self) -> ToolSpec {
        let (description, parameters) = schema(self.op);
        ToolSpec {
            name: self.op.name().into(),
            description: description.into(),
            parameters,
        }
    }

    fn call<'a>(&'a self, ctx: &'a ToolContext, args: Value) -> BoxFuture<'a, ToolOutput> {
        Box::pin(async move {
            match run(self, &ctx.principal, args).await {
                Ok(value) => ToolOutput::ok(value.to_string()),
                Err(message) => ToolOutput::error(message),
            }
        })
    }
}

// ---- schemas ----------------------------------------------------------------------

// Wire names of the statuses; a unit test checks each against the contract's parser.
const TASK_STATUSES: [&str; 4] = ["todo", "doing", "blocked", "done"];
const TASK_PRIORITIES: [&str; 4] = ["low", "normal", "high", "urgent"];
const PROJECT_STATUSES: [&str; 4] = ["active", "paused", "done", "archived"];
const MISSION_STATUSES: [&str; 3] = ["active", "achieved", "abandoned"];

fn id() -> Value {
    json!({"type": "string", "minLength": 1, "maxLength": 100})
}

/// An id that `null` clears.
fn id_or_null(what: &str) -> Value {
    json!({"type": ["string", "null"], "minLength": 1, "maxLength": 100,
        "description": format!("{what}; null clears it")})
}

fn title(what: &str) -> Value {
    json!({"type": "string", "minLength": 1, "maxLength": MAX_TITLE_CHARS, "description": what})
}

fn text(what: &str) -> Value {
    json!({"type": "string", "description": what})
}

fn labels(what: &str) -> Value {
    json!({"type": "array", "maxItems": MAX_LABELS,
        "items": {"type": "string", "minLength": 1, "maxLength": MAX_LABEL_CHARS},
        "description": what})
}

fn status(values: &[&str]) -> Value {
    json!({"type": "string", "enum": values})
}

fn team_id() -> Value {
    json!({"type": "string", "minLength": 1, "maxLength": 100,
        "description": "Create it for this team (you must be a member); yours alone when absent"})
}

fn milestones() -> Value {
    json!({"type": "array", "maxItems": MAX_MILESTONES, "items": {
        "type": "object",
        "properties": {"title": title("The step"), "done": {"type": "boolean"}},
        "required": ["title"],
        "additionalProperties": false
    }})
}

fn limit() -> Value {
    json!({"type": "integer", "minimum": 1, "maximum": MAX_ITEMS,
        "description": format!("Most items to return (default {DEFAULT_ITEMS})")})
}

fn cursor() -> Value {
    json!({"type": "string", "description": "next_cursor of the previous page"})
}

/// An object schema: these properties, these required, nothing else.
fn object(properties: Value, required: &[&str]) -> Value {
    json!({"type": "object", "properties": properties, "required": required,
        "additionalProperties": false})
}

/// An update: `id` plus at least one change.
fn update(mut properties: Value, what: &str) -> Value {
    properties["id"] = json!({"type": "string", "minLength": 1, "maxLength": 100,
        "description": format!("The {what} to change")});
    let mut schema = object(properties, &["id"]);
    schema["minProperties"] = json!(2);
    schema
}

fn schema(op: Op) -> (&'static str, Value) {
    match op {
        Op::SearchBrain => (
            "Search your and your teams' tasks and notes by words; best matches first. \
             Returns kind, id, title and a snippet with matches between « and ».",
            object(
                json!({
                    "q": {"type": "string", "minLength": 1, "maxLength": 500,
                        "description": "Words that must all occur"},
                    "kinds": {"type": "array", "uniqueItems": true, "minItems": 1,
                        "items": {"type": "string", "enum": ["task", "note"]},
                        "description": "Only these kinds (both when absent)"},
                    "limit": limit(),
                }),
                &["q"],
            ),
        ),
        Op::GetBrainItem => (
            "Read one task, note, project or mission in full, by id.",
            object(
                json!({
                    "kind": {"type": "string", "enum": ["task", "note", "project", "mission"]},
                    "id": id(),
                }),
                &["kind", "id"],
            ),
        ),
        Op::ListTasks => (
            "List your and your teams' tasks, newest first, filtered; bodies are cut short.",
            object(
                json!({
                    "status": status(&TASK_STATUSES),
                    "project_id": id(),
                    "mission_id": id(),
                    "label": {"type": "string", "minLength": 1, "maxLength": MAX_LABEL_CHARS},
                    "q": {"type": "string", "minLength": 1, "maxLength": 500,
                        "description": "Words that must all occur in the title or body"},
                    "due_before": {"type": "string", "description": "RFC 3339 time"},
                    "limit": limit(),
                    "cursor": cursor(),
                }),
                &[],
            ),
        ),
        Op::CreateTask => (
            "Create a task (status todo unless given).",
            object(
                json!({
                    "title": title("Short and actionable"),
                    "body": text("Details, Markdown"),
                    "status": status(&TASK_STATUSES),
                    "priority": status(&TASK_PRIORITIES),
                    "due_at": {"type": "string", "description": "RFC 3339 time"},
                    "labels": labels("Lowercased and deduplicated"),
                    "project_id": id(),
                    "mission_id": id(),
                    "parent_task_id": id(),
                    "assignee_user_id": id(),
                    "team_id": team_id(),
                }),
                &["title"],
            ),
        ),
        Op::UpdateTask => (
            "Change a task: only the fields given change. Set status done to complete it.",
            update(
                json!({
                    "title": title("Short and actionable"),
                    "body": text("Replaces the body, Markdown"),
                    "status": status(&TASK_STATUSES),
                    "priority": status(&TASK_PRIORITIES),
                    "due_at": {"type": ["string", "null"],
                        "description": "RFC 3339 time; null clears it"},
                    "labels": labels("Replaces every label"),
                    "project_id": id_or_null("Project"),
                    "mission_id": id_or_null("Mission the task counts towards"),
                    "parent_task_id": id_or_null("Parent task"),
                    "assignee_user_id": id_or_null("Assignee"),
                }),
                "task",
            ),
        ),
        Op::ListProjects => (
            "List your and your teams' projects, newest first.",
            object(
                json!({
                    "status": status(&PROJECT_STATUSES),
                    "team_id": {"type": "string", "minLength": 1, "maxLength": 100,
                        "description": "Only this team's"},
                    "limit": limit(),
                    "cursor": cursor(),
                }),
                &[],
            ),
        ),
        Op::CreateProject => (
            "Create a project (status active unless given).",
            object(
                json!({
                    "name": title("The project's name"),
                    "description": text("Markdown"),
                    "status": status(&PROJECT_STATUSES),
                    "team_id": team_id(),
                }),
                &["name"],
            ),
        ),
        Op::UpdateProject => (
            "Change a project: only the fields given change.",
            update(
                json!({
                    "name": title("The project's name"),
                    "description": text("Replaces the description, Markdown"),
                    "status": status(&PROJECT_STATUSES),
                }),
                "project",
            ),
        ),
        Op::ListMissions => (
            "List your and your teams' missions (goals with milestones and task progress), \
             newest first.",
            object(
                json!({
                    "status": status(&MISSION_STATUSES),
                    "project_id": id(),
                    "limit": limit(),
                    "cursor": cursor(),
                }),
                &[],
            ),
        ),
        Op::CreateMission => (
            "Create a mission: a goal with success criteria and milestones. Link tasks to it \
             with their mission_id; its progress counts them.",
            object(
                json!({
                    "goal": title("What is to be achieved"),
                    "success_criteria": text("How to tell it is achieved, Markdown"),
                    "milestones": milestones(),
                    "status": status(&MISSION_STATUSES),
                    "project_id": id(),
                    "team_id": team_id(),
                }),
                &["goal"],
            ),
        ),
        Op::UpdateMission => (
            "Change a mission: only the fields given change. milestones replaces the whole \
             list, so send every milestone (mark reached ones done: true).",
            update(
                json!({
                    "goal": title("What is to be achieved"),
                    "success_criteria": text("Replaces the criteria, Markdown"),
                    "milestones": milestones(),
                    "status": status(&MISSION_STATUSES),
                    "project_id": id_or_null("Project"),
                }),
                "mission",
            ),
        ),
        Op::ListNotes => (
            "List your and your teams' notes, newest first, filtered; bodies are cut short.",
            object(
                json!({
                    "project_id": id(),
                    "tag": {"type": "string", "minLength": 1, "maxLength": MAX_LABEL_CHARS},
                    "q": {"type": "string", "minLength": 1, "maxLength": 500,
                        "description": "Words that must all occur in the title or body"},
                    "limit": limit(),
                    "cursor": cursor(),
                }),
                &[],
            ),
        ),
        Op::CreateNote => (
            "Create a note.",
            object(
                json!({
                    "title": title("The note's title"),
                    "body": text("Markdown"),
                    "tags": labels("Lowercased and deduplicated"),
                    "project_id": id(),
                    "team_id": team_id(),
                }),
                &["title"],
            ),
        ),
        Op::UpdateNote => (
            "Change a note: only the fields given change; body replaces the whole text.",
            update(
                json!({
                    "title": title("The note's title"),
                    "body": text("Replaces the body, Markdown"),
                    "tags": labels("Replaces every tag"),
                    "project_id": id_or_null("Project"),
                }),
                "note",
            ),
        ),
    }
}

// ---- calls ------------------------------------------------------------------------

/// What a store error tells the model, for a call about `subject`.
fn refusal(e: StoreError, subject: &str) -> String {
    match e {
        StoreError::NotFound => format!("no {subject} visible to you"),
        StoreError::Forbidden(m) => format!("not allowed: {m}"),
        StoreError::Conflict(m) | StoreError::Invalid(m) => m,
        e @ (StoreError::Corrupt(_) | StoreError::Db(_) | StoreError::Migration { .. }) => {
            tracing::error!("brain tool: {e}");
            "the brain is unavailable right now; try again later".into()
        }
    }
}

/// The subject of a create: the team it is for, when there is one.
fn owner_subject(args: &Value) -> String {
    match args.get("team_id").and_then(Value::as_str) {
        Some(team) => format!("team {team}"),
        None => "item referred to".into(),
    }
}

fn decode<T: DeserializeOwned>(args: Value) -> Result<T, String> {
    serde_json::from_value(args).map_err(|e| format!("the arguments do not fit: {e}"))
}

/// The `id` of an update and the changes without it.
fn split_id<T: DeserializeOwned>(mut args: Value) -> Result<(String, T), String> {
    let id = match args.as_object_mut().and_then(|o| o.remove("id")) {
        Some(Value::String(id)) => id,
        _ => return Err("the arguments need an \"id\"".into()),
    };
    Ok((id, decode(args)?))
}

fn limit_of(args: &Value) -> u32 {
    args.get("limit")
        .and_then(Value::as_u64)
        .and_then(|n| u32::try_from(n).ok())
        .unwrap_or(DEFAULT_ITEMS)
        .clamp(1, MAX_ITEMS)
}

/// By words, and by meaning when an embedding model is configured and answers.
async fn search(
    tool: &BrainTool,
    p: &Principal,
    q: &str,
    kinds: &[BrainKind],
    limit: u32,
) -> Result<SearchResults, StoreError> {
    crate::search::search(
        &tool.store,
        tool.embedder.as_deref(),
        p,
        q,
        kinds,
        limit,
        None,
    )
    .await
}

async fn run(tool: &BrainTool, p: &Principal, args: Value) -> Result<Value, String> {
    let (store, op) = (&tool.store, tool.op);
    match op {
        Op::SearchBrain => {
            let q = args.get("q").and_then(Value::as_str).unwrap_or_default();
            let kinds: Vec<BrainKind> = match args.get("kinds") {
                Some(kinds) => decode(kinds.clone())?,
                // Tasks and notes only, as the tool says; memories have tools of their own.
                None => vec![BrainKind::Task, BrainKind::Note],
            };
            let found = search(tool, p, q, &kinds, limit_of(&args))
                .await
                .map_err(|e| refusal(e, "search"))?;
            let items: Vec<Value> = found
                .items
                .into_iter()
                .map(
                    |h| json!({"kind": h.kind, "id": h.id, "title": h.title, "snippet": h.snippet}),
                )
                .collect();
            Ok(match found.notice {
                Some(notice) => json!({ "items": items, "notice": notice }),
                None => json!({ "items": items }),
            })
        }
        Op::GetBrainItem => {
            let kind = args.get("kind").and_then(Value::as_str).unwrap_or_default();
            let id = args.get("id").and_then(Value::as_str).unwrap_or_default();
            let subject = format!("{kind} {id}");
            let item = match kind {
                "task" => store.get_task(p, id).await.map(|t| full(&t)),
                "note" => store.get_note(p, id).await.map(|n| full(&n)),
                "project" => store.get_project(p, id).await.map(|x| full(&x)),
                "mission" => store.get_mission(p, id).await.map(|m| full(&m)),
                other => return Err(format!("there is no kind '{other}'")),
            };
            item.map_err(|e| refusal(e, &subject))
        }
        Op::ListTasks => {
            let q = TaskQuery {
                limit: Some(limit_of(&args)),
                ..decode(args)?
            };
            let page = store
                .list_tasks(p, &q)
                .await
                .map_err(|e| refusal(e, "task"))?;
            Ok(listing(&page.items, page.next_cursor))
        }
        Op::CreateTask => {
            let subject = owner_subject(&args);
            let req: CreateTaskRequest = decode(args)?;
            let task = store.create_task(p, &req).await;
            task.map(|t| full(&t)).map_err(|e| refusal(e, &subject))
        }
        Op::UpdateTask => {
            let (id, req): (String, UpdateTaskRequest) = split_id(args)?;
            let task = store.update_task(p, &id, &req).await;
            task.map(|t| full(&t))
                .map_err(|e| refusal(e, &format!("task {id}")))
        }
        Op::ListProjects => {
            let q = ProjectQuery {
                limit: Some(limit_of(&args)),
                ..decode(args)?
            };
            let subject = format!("team {}", q.team_id.as_deref().unwrap_or_default());
            let page = store.list_projects(p, &q).await;
            let page = page.map_err(|e| refusal(e, &subject))?;
            Ok(listing(&page.items, page.next_cursor))
        }
        Op::CreateProject => {
            let subject = owner_subject(&args);
            let req: CreateProjectRequest = decode(args)?;
            let project = store.create_project(p, &req).await;
            project.map(|x| full(&x)).map_err(|e| refusal(e, &subject))
        }
        Op::UpdateProject => {
            let (id, req): (String, UpdateProjectRequest) = split_id(args)?;
            let project = store.update_project(p, &id, &req).await;
            project
                .map(|x| full(&x))
                .map_err(|e| refusal(e, &format!("project {id}")))
        }
        Op::ListMissions => {
            let q = MissionQuery {
                limit: Some(limit_of(&args)),
                ..decode(args)?
            };
            let page = store.list_missions(p, &q).await;
            let page = page.map_err(|e| refusal(e, "mission"))?;
            Ok(listing(&page.items, page.next_cursor))
        }
        Op::CreateMission => {
            let subject = owner_subject(&args);
            let req: CreateMissionRequest = decode(args)?;
            let mission = store.create_mission(p, &req).await;
            mission.map(|m| full(&m)).map_err(|e| refusal(e, &subject))
        }
        Op::UpdateMission => {
            let (id, req): (String, UpdateMissionRequest) = split_id(args)?;
            let mission = store.update_mission(p, &id, &req).await;
            mission
                .map(|m| full(&m))
                .map_err(|e| refusal(e, &format!("mission {id}")))
        }
        Op::ListNotes => {
            let q = NoteQuery {
                limit: Some(limit_of(&args)),
                ..decode(args)?
            };
            let page = store
                .list_notes(p, &q)
                .await
                .map_err(|e| refusal(e, "note"))?;
            Ok(listing(&page.items, page.next_cursor))
        }
        Op::CreateNote => {
            let subject = owner_subject(&args);
            let req: CreateNoteRequest = decode(args)?;
            let note = store.create_note(p, &req).await;
            note.map(|n| full(&n)).map_err(|e| refusal(e, &subject))
        }
        Op::UpdateNote => {
            let (id, req): (String, UpdateNoteRequest) = split_id(args)?;
            let note = store.update_note(p, &id, &req).await;
            note.map(|n| full(&n))
                .map_err(|e| refusal(e, &format!("note {id}")))
        }
    }
}

// ---- outputs ----------------------------------------------------------------------

/// Fields whose text is cut short in lists.
const LONG_FIELDS: [&str; 3] = ["body", "description", "success_criteria"];

/// An item as the model sees it: without empty fields or creation time, and with the
/// owner reduced to a `team_id` for a team's item (an item without one is the caller's
/// own, since nobody sees another user's personal items).
fn compact<T: Serialize>(item: &T, excerpt: bool) -> Value {
    let Ok(Value::Object(fields)) = serde_json::to_value(item) else {
        return Value::Null;
    };
    let mut out = Map::new();
    for (key, value) in fields {
        match (key.as_str(), value) {
            ("created_at", _) | (_, Value::Null) => {}
            (_, Value::String(s)) if s.is_empty() => {}
            (_, Value::Array(a)) if a.is_empty() => {}
            ("owner", owner) => {
                if owner["type"] == "team" {
                    out.insert("team_id".into(), owner["id"].clone());
                }
            }
            (k, Value::String(s)) if excerpt && LONG_FIELDS.contains(&k) => {
                out.insert(key, Value::String(cut(&s)));
            }
            (_, value) => {
                out.insert(key, value);
            }
        }
    }
    Value::Object(out)
}

fn full<T: Serialize>(item: &T) -> Value {
    compact(item, false)
}

fn cut(text: &str) -> String {
    match text.char_indices().nth(EXCERPT_CHARS) {
        Some((at, _)) => format!("{}…", &text[..at]),
        None => text.to_string(),
    }
}

fn listing<T: Serialize>(items: &[T], next_cursor: Option<String>) -> Value {
    let items: Vec<Value> = items.iter().map(|i| compact(i, true)).collect();
    match next_cursor {
        Some(cursor) => json!({ "items": items, "next_cursor": cursor }),
        None => json!({ "items": items }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use mosaic_api::{MissionStatus, ProjectStatus, TaskPriority, TaskStatus};

    #[test]
    fn every_schema_compiles_and_forbids_unknown_fields() {
        for op in Op::ALL {
            let (_, schema) = schema(op);
            assert!(jsonschema::validator_for(&schema).is_ok(), "{}", op.name());
            assert_eq!(schema["additionalProperties"], false, "{}", op.name());
        }
    }

    #[test]
    fn schema_enums_are_the_contracts_wire_names() {
        assert!(TASK_STATUSES.iter().all(|s| TaskStatus::parse(s).is_some()));
        assert!(TASK_PRIORITIES
            .iter()
            .all(|s| TaskPriority::parse(s).is_some()));
        assert!(PROJECT_STATUSES
            .iter()
            .all(|s| ProjectStatus::parse(s).is_some()));
        assert!(MISSION_STATUSES
            .iter()
            .all(|s| MissionStatus::parse(s).is_some()));
    }

    #[test]
    fn compact_items_drop_noise_and_cut_long_text_in_lists() {
        let item = json!({
            "id": "t1", "title": "x", "body": "a".repeat(300), "labels": [],
            "due_at": null, "created_at": "then", "owner": {"type": "user", "id": "u"}
        });
        let listed = compact(&item, true);
        assert_eq!(
            listed["body"].as_str().map(|b| b.chars().count()),
            Some(201)
        );
        assert_eq!(
            listed
                .as_object()
                .map(|o| o.keys().cloned().collect::<Vec<_>>()),
            Some(vec!["body".to_string(), "id".into(), "title".into()])
        );
        let team = json!({"id": "t2", "owner": {"type": "team", "id": "crew"}});
        assert_eq!(
            compact(&team, false),
            json!({"id": "t2", "team_id": "crew"})
        );
    }
}
