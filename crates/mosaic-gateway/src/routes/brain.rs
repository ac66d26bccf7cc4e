//! The brain over HTTP: projects, tasks, missions and notes with filtered, cursor-paginated lists,
//! and lexical search over tasks and notes. Tenancy and validation are the store's
//! (see `mosaic_store::brain`): a team's items are read and written by its members and
//! deleted by its owners and admins; anything the caller may not see is 404.

use crate::openapi::lazy::routes;
use crate::openapi::lazy::ApiRouter;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use mosaic_api::{
    BrainKind, CreateMissionRequest, CreateNoteRequest, CreateProjectRequest, CreateTaskRequest,
    ErrorBody, Mission, MissionQuery, Note, NoteQuery, Page, Project, ProjectQuery, SearchMode,
    SearchResults, Task, TaskQuery, UpdateMissionRequest, UpdateNoteRequest, UpdateProjectRequest,
    UpdateTaskRequest,
};
use serde::Deserialize;
use utoipa::IntoParams;

use crate::auth::Auth;
use crate::error::{ApiError, ApiResult};
use crate::extract::{Json, Path, Query};
use crate::routes::no_content;
use crate::AppState;

/// The routes of projects, tasks, missions, notes, and the search over the brain.
pub fn router() -> ApiRouter<AppState> {
    ApiRouter::new()
        .routes(routes!(list_projects, create_project))
        .routes(routes!(get_project, update_project, delete_project))
        .routes(routes!(list_tasks, create_task))
        .routes(routes!(get_task, update_task, delete_task))
        .routes(routes!(list_missions, create_mission))
        .routes(routes!(get_mission, update_mission, delete_mission))
        .routes(routes!(list_notes, create_note))
        .routes(routes!(get_note, update_note, delete_note))
        .routes(routes!(search_brain))
}

/// Projects you can see, newest first.
#[utoipa::path(get, path = "/api/v1/projects", tag = "brain", operation_id = "list_projects",
    params(ProjectQuery),
    responses((status = 200, body = Page<Project>), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody)))]
pub async fn list_projects(
    State(state): State<AppState>,
    auth: Auth,
    Query(q): Query<ProjectQuery>,
) -> ApiResult<Json<Page<Project>>> {
    Ok(Json(state.store.list_projects(&auth.principal, &q).await?))
}

/// Create a project, yours or (as a member) a team's.
#[utoipa::path(post, path = "/api/v1/projects", tag = "brain", operation_id = "create_project",
    request_body = CreateProjectRequest,
    responses((status = 201, body = Project), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn create_project(
    State(state): State<AppState>,
    auth: Auth,
    Json(req): Json<CreateProjectRequest>,
) -> ApiResult<Response> {
    let project = state.store.create_project(&auth.principal, &req).await?;
    Ok((StatusCode::CREATED, Json(project)).into_response())
}

/// A project you can see.
#[utoipa::path(get, path = "/api/v1/projects/{id}", tag = "brain", operation_id = "get_project",
    params(("id" = String, Path, description = "Project id")),
    responses((status = 200, body = Project), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn get_project(
    State(state): State<AppState>,
    auth: Auth,
    Path(id): Path<String>,
) -> ApiResult<Json<Project>> {
    Ok(Json(state.store.get_project(&auth.principal, &id).await?))
}

/// Change a project; an absent field is left as it is.
#[utoipa::path(patch, path = "/api/v1/projects/{id}", tag = "brain", operation_id = "update_project",
    params(("id" = String, Path, description = "Project id")), request_body = UpdateProjectRequest,
    responses((status = 200, body = Project), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn update_project(
    State(state): State<AppState>,
    auth: Auth,
    Path(id): Path<String>,
    Json(req): Json<UpdateProjectRequest>,
) -> ApiResult<Json<Project>> {
    Ok(Json(
        state
            .store
            .update_project(&auth.principal, &id, &req)
            .await?,
    ))
}

/// Delete a project (a team's: its owners and admins only); its tasks and notes stay.
#[utoipa::path(delete, path = "/api/v1/projects/{id}", tag = "brain", operation_id = "delete_project",
    params(("id" = String, Path, description = "Project id")),
    responses((status = 204), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn delete_project(
    State(state): State<AppState>,
    auth: Auth,
    Path(id): Path<String>,
) -> ApiResult<Response> {
    state.store.delete_project(&auth.principal, &id).await?;
    Ok(no_content())
}

/// Tasks you can see, newest first.
#[utoipa::path(get, path = "/api/v1/tasks", tag = "brain", operation_id = "list_tasks",
    params(TaskQuery),
    responses((status = 200, body = Page<Task>), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody)))]
pub async fn list_tasks(
    State(state): State<AppState>,
    auth: Auth,
    Query(q): Query<TaskQuery>,
) -> ApiResult<Json<Page<Task>>> {
    Ok(Json(state.store.list_tasks(&auth.principal, &q).await?))
}

/// Create a task, yours or (as a member) a team's.
#[utoipa::path(post, path = "/api/v1/tasks", tag = "brain", operation_id = "create_task",
    request_body = CreateTaskRequest,
    responses((status = 201, body = Task), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn create_task(
    State(state): State<AppState>,
    auth: Auth,
    Json(req): Json<CreateTaskRequest>,
) -> ApiResult<Response> {
    let task = state.store.create_task(&auth.principal, &req).await?;
    Ok((StatusCode::CREATED, Json(task)).into_response())
}

/// A task you can see.
#[utoipa::path(get, path = "/api/v1/tasks/{id}", tag = "brain", operation_id = "get_task",
    params(("id" = String, Path, description = "Task id")),
    responses((status = 200, body = Task), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn get_task(
    State(state): State<AppState>,
    auth: Auth,
    Path(id): Path<String>,
) -> ApiResult<Json<Task>> {
    Ok(Json(state.store.get_task(&auth.principal, &id).await?))
}

/// Change a task; an absent field is left as it is, `null` clears it.
#[utoipa::path(patch, path = "/api/v1/tasks/{id}", tag = "brain", operation_id = "update_task",
    params(("id" = String, Path, description = "Task id")), request_body = UpdateTaskRequest,
    responses((status = 200, body = Task), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn update_task(
    State(state): State<AppState>,
    auth: Auth,
    Path(id): Path<String>,
    Json(req): Json<UpdateTaskRequest>,
) -> ApiResult<Json<Task>> {
    Ok(Json(
        state.store.update_task(&auth.principal, &id, &req).await?,
    ))
}

/// Delete a task (a team's: its owners and admins only).
#[utoipa::path(delete, path = "/api/v1/tasks/{id}", tag = "brain", operation_id = "delete_task",
    params(("id" = String, Path, description = "Task id")),
    responses((status = 204), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn delete_task(
    State(state): State<AppState>,
    auth: Auth,
    Path(id): Path<String>,
) -> ApiResult<Response> {
    state.store.delete_task(&auth.principal, &id).await?;
    Ok(no_content())
}

/// Missions you can see, newest first, each with its progress over its linked tasks.
#[utoipa::path(get, path = "/api/v1/missions", tag = "brain", operation_id = "list_missions",
    params(MissionQuery),
    responses((status = 200, body = Page<Mission>), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody)))]
pub async fn list_missions(
    State(state): State<AppState>,
    auth: Auth,
    Query(q): Query<MissionQuery>,
) -> ApiResult<Json<Page<Mission>>> {
    Ok(Json(state.store.list_missions(&auth.principal, &q).await?))
}

/// Create a mission, yours or (as a member) a team's.
#[utoipa::path(post, path = "/api/v1/missions", tag = "brain", operation_id = "create_mission",
    request_body = CreateMissionRequest,
    responses((status = 201, body = Mission), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn create_mission(
    State(state): State<AppState>,
    auth: Auth,
    Json(req): Json<CreateMissionRequest>,
) -> ApiResult<Response> {
    let mission = state.store.create_mission(&auth.principal, &req).await?;
    Ok((StatusCode::CREATED, Json(mission)).into_response())
}

/// A mission you can see, with its progress over its linked tasks.
#[utoipa::path(get, path = "/api/v1/missions/{id}", tag = "brain", operation_id = "get_mission",
    params(("id" = String, Path, description = "Mission id")),
    responses((status = 200, body = Mission), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn get_mission(
    State(state): State<AppState>,
    auth: Auth,
    Path(id): Path<String>,
) -> ApiResult<Json<Mission>> {
    Ok(Json(state.store.get_mission(&auth.principal, &id).await?))
}

/// Change a mission; an absent field is left as it is, `null` clears it, `milestones`
/// replaces them all.
#[utoipa::path(patch, path = "/api/v1/missions/{id}", tag = "brain", operation_id = "update_mission",
    params(("id" = String, Path, description = "Mission id")), request_body = UpdateMissionRequest,
    responses((status = 200, body = Mission), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn update_mission(
    State(state): State<AppState>,
    auth: Auth,
    Path(id): Path<String>,
    Json(req): Json<UpdateMissionRequest>,
) -> ApiResult<Json<Mission>> {
    Ok(Json(
        state
            .store
            .update_mission(&auth.principal, &id, &req)
            .await?,
    ))
}

/// Delete a mission (a team's: its owners and admins only); its tasks stay, linked to
/// no mission.
#[utoipa::path(delete, path = "/api/v1/missions/{id}", tag = "brain", operation_id = "delete_mission",
    params(("id" = String, Path, description = "Mission id")),
    responses((status = 204), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn delete_mission(
    State(state): State<AppState>,
    auth: Auth,
    Path(id): Path<String>,
) -> ApiResult<Response> {
    state.store.delete_mission(&auth.principal, &id).await?;
    Ok(no_content())
}

/// Notes you can see, newest first.
#[utoipa::path(get, path = "/api/v1/notes", tag = "brain", operation_id = "list_notes",
    params(NoteQuery),
    responses((status = 200, body = Page<Note>), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody)))]
pub async fn list_notes(
    State(state): State<AppState>,
    auth: Auth,
    Query(q): Query<NoteQuery>,
) -> ApiResult<Json<Page<Note>>> {
    Ok(Json(state.store.list_notes(&auth.principal, &q).await?))
}

/// Create a note, yours or (as a member) a team's.
#[utoipa::path(post, path = "/api/v1/notes", tag = "brain", operation_id = "create_note",
    request_body = CreateNoteRequest,
    responses((status = 201, body = Note), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn create_note(
    State(state): State<AppState>,
    auth: Auth,
    Json(req): Json<CreateNoteRequest>,
) -> ApiResult<Response> {
    let note = state.store.create_note(&auth.principal, &req).await?;
    Ok((StatusCode::CREATED, Json(note)).into_response())
}

/// A note you can see.
#[utoipa::path(get, path = "/api/v1/notes/{id}", tag = "brain", operation_id = "get_note",
    params(("id" = String, Path, description = "Note id")),
    responses((status = 200, body = Note), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn get_note(
    State(state): State<AppState>,
    auth: Auth,
    Path(id): Path<String>,
) -> ApiResult<Json<Note>> {
    Ok(Json(state.store.get_note(&auth.principal, &id).await?))
}

/// Change a note; an absent field is left as it is, `null` clears it.
#[utoipa::path(patch, path = "/api/v1/notes/{id}", tag = "brain", operation_id = "update_note",
    params(("id" = String, Path, description = "Note id")), request_body = UpdateNoteRequest,
    responses((status = 200, body = Note), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn update_note(
    State(state): State<AppState>,
    auth: Auth,
    Path(id): Path<String>,
    Json(req): Json<UpdateNoteRequest>,
) -> ApiResult<Json<Note>> {
    Ok(Json(
        state.store.update_note(&auth.principal, &id, &req).await?,
    ))
}

/// Delete a note (a team's: its owners and admins only).
#[utoipa::path(delete, path = "/api/v1/notes/{id}", tag = "brain", operation_id = "delete_note",
    params(("id" = String, Path, description = "Note id")),
    responses((status = 204), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn delete_note(
    State(state): State<AppState>,
    auth: Auth,
    Path(id): Path<String>,
) -> ApiResult<Response> {
    state.store.delete_note(&auth.principal, &id).await?;
    Ok(no_content())
}

/// What to search for.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct SearchQuery {
    /// What to look for: words (all must occur for a lexical match) and, with an
    /// embedding model configured, their meaning.
    pub q: String,
    /// Comma-separated kinds to search (`task`, `note`, `memory`); all when absent.
    #[param(pattern = r"^ *(task|note|memory)? *(, *(task|note|memory)? *)*$")]
    pub kinds: Option<String>,
    /// Most hits (1 to 100; 20 when absent).
    #[serde(default, deserialize_with = "mosaic_api::page::bounded::<_, 1, 100>")]
    #[param(minimum = 1, maximum = 100)]
    pub limit: Option<u32>,
    /// `lexical` to go by words alone; `hybrid` (the default) adds meaning when an
    /// embedding model is configured.
    pub mode: Option<SearchMode>,
}

/// Hits when `limit` is absent.
const DEFAULT_HITS: u32 = 20;

/// The kinds of a comma-separated list (spaces and empty items allowed, as the
/// parameter's pattern says); empty (every kind) when absent or blank.
fn parse_kinds(text: Option<&str>) -> ApiResult<Vec<BrainKind>> {
    text.unwrap_or_default()
        .split(',')
        .map(|k| k.trim_matches(' '))
        .filter(|k| !k.is_empty())
        .map(|k| {
            BrainKind::parse(k).ok_or_else(|| {
                ApiError::bad_request(format!("unknown kind '{k}'; expected task, note or memory"))
            })
        })
        .collect()
}

/// Tasks, notes and memories you can see that match `q`, best first, each with a
/// snippet (matched words between `«` and `»`) and its score parts. Words and (with an
/// embedding model configured) meaning are ranked separately and fused by reciprocal
/// rank; when the model cannot embed the query the search goes by words alone and says
/// why in `notice`. A `q` without words finds nothing.
#[utoipa::path(get, path = "/api/v1/brain/search", tag = "brain", operation_id = "search_brain",
    params(SearchQuery),
    responses((status = 200, body = SearchResults), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody)))]
pub async fn search_brain(
    State(state): State<AppState>,
    auth: Auth,
    Query(q): Query<SearchQuery>,
) -> ApiResult<Json<SearchResults>> {
    let kinds = parse_kinds(q.kinds.as_deref())?;
    let results = mosaic_agent::search::search(
        &state.store,
        state.embedder.as_deref(),
        &auth.principal,
        &q.q,
        &kinds,
        q.limit.unwrap_or(DEFAULT_HITS),
        q.mode,
    )
    .await?;
    Ok(Json(results))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_are_a_comma_separated_list_and_unknown_ones_are_refused() {
        assert_eq!(parse_kinds(None), Ok(vec![]));
        assert_eq!(
            parse_kinds(Some("task, note,")),
            Ok(vec![BrainKind::Task, BrainKind::Note])
        );
        assert_eq!(
            parse_kinds(Some("memory,task")),
            Ok(vec![BrainKind::Memory, BrainKind::Task])
        );
        assert_eq!(
            parse_kinds(Some("task,memo")).map_err(|e| e.message),
            Err("unknown kind 'memo'; expected task, note or memory".to_string())
        );
    }
}
