//! Sessions: the caller's conversations, their entry trees, branches and active leaf,
//! and JSON Lines export and import. Entries are appended by runs, not by these routes.

use crate::openapi::lazy::routes;
use crate::openapi::lazy::ApiRouter;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::State;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use mosaic_api::{
    BranchList, BranchQuery, CreateSessionRequest, EntryList, ErrorBody, ErrorCode, Page, Session,
    SessionQuery, SetLeafRequest, UpdateSessionRequest,
};

use crate::auth::Auth;
use crate::error::{ApiError, ApiResult};
use crate::extract::{Json, Path, Query};
use crate::routes::no_content;
use crate::AppState;

/// The routes of sessions: their entry trees, branches, export and import.
pub fn router() -> ApiRouter<AppState> {
    ApiRouter::new()
        .routes(routes!(list_sessions, create_session))
        .routes(routes!(import_session))
        .routes(routes!(get_session, update_session, delete_session))
        .routes(routes!(list_session_entries))
        .routes(routes!(list_session_branches))
        .routes(routes!(set_session_leaf))
        .routes(routes!(export_session))
}

/// The media type of a session export.
pub const JSONL: &str = "application/x-ndjson";

/// Your sessions, newest first: active ones, or with `archived=true` the archived ones;
/// `q` keeps those whose title or entries contain it.
#[utoipa::path(get, path = "/api/v1/sessions", tag = "sessions", operation_id = "list_sessions",
    params(SessionQuery),
    responses((status = 200, body = Page<Session>), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody)))]
pub async fn list_sessions(
    State(state): State<AppState>,
    auth: Auth,
    Query(q): Query<SessionQuery>,
) -> ApiResult<Json<Page<Session>>> {
    Ok(Json(state.store.list_sessions(&auth.principal, &q).await?))
}

/// Start a session with one of your agents (the `default` one when none is named).
#[utoipa::path(post, path = "/api/v1/sessions", tag = "sessions", operation_id = "create_session",
    request_body = CreateSessionRequest,
    responses((status = 201, body = Session), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn create_session(
    State(state): State<AppState>,
    auth: Auth,
    Json(req): Json<CreateSessionRequest>,
) -> ApiResult<Response> {
    let session = state
        .store
        .create_session(
            &auth.principal,
            req.agent_id.as_deref(),
            req.title.as_deref().unwrap_or_default(),
        )
        .await?;
    Ok((StatusCode::CREATED, Json(session)).into_response())
}

/// One of your sessions.
#[utoipa::path(get, path = "/api/v1/sessions/{id}", tag = "sessions", operation_id = "get_session",
    params(("id" = String, Path, description = "Session id")),
    responses((status = 200, body = Session), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn get_session(
    State(state): State<AppState>,
    auth: Auth,
    Path(id): Path<String>,
) -> ApiResult<Json<Session>> {
    Ok(Json(state.store.get_session(&auth.principal, &id).await?))
}

/// Rename, archive or unarchive a session.
#[utoipa::path(patch, path = "/api/v1/sessions/{id}", tag = "sessions", operation_id = "update_session",
    params(("id" = String, Path, description = "Session id")), request_body = UpdateSessionRequest,
    responses((status = 200, body = Session), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn update_session(
    State(state): State<AppState>,
    auth: Auth,
    Path(id): Path<String>,
    Json(req): Json<UpdateSessionRequest>,
) -> ApiResult<Json<Session>> {
    Ok(Json(
        state
            .store
            .update_session(&auth.principal, &id, req.title.as_deref(), req.archived)
            .await?,
    ))
}

/// Delete a session and every entry of it.
#[utoipa::path(delete, path = "/api/v1/sessions/{id}", tag = "sessions", operation_id = "delete_session",
    params(("id" = String, Path, description = "Session id")),
    responses((status = 204), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody)))]
pub async fn delete_session(
    State(state): State<AppState>,
    auth: Auth,
    Path(id): Path<String>,
) -> ApiResult<Response> {
    state.runtime.delete_session(&auth.principal, &id).await?;
    Ok(no_content())
}

/// The entries of one branch, from its root to `leaf` (the active leaf when absent).
#[utoipa::path(get, path = "/api/v1/sessions/{id}/entries", tag = "sessions",
    operation_id = "list_session_entries",
    params(("id" = String, Path, description = "Session id"), BranchQuery),
    responses((status = 200, body = EntryList), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 404, body = ErrorBody)))]
pub async fn list_session_entries(
    State(state): State<AppState>,
    auth: Auth,
    Path(id): Path<String>,
    Query(q): Query<BranchQuery>,
) -> ApiResult<Json<EntryList>> {
    let items = state
        .store
        .session_path(&auth.principal, &id, q.leaf.as_deref())
        .await?;
    Ok(Json(EntryList { items }))
}

/// Every branch of a session (one per leaf), oldest first, the active one marked.
#[utoipa::path(get, path = "/api/v1/sessions/{id}/branches", tag = "sessions",
    operation_id = "list_session_branches",
    params(("id" = String, Path, description = "Session id")),
    responses((status = 200, body = BranchList), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn list_session_branches(
    State(state): State<AppState>,
    auth: Auth,
    Path(id): Path<String>,
) -> ApiResult<Json<BranchList>> {
    let items = state.store.session_branches(&auth.principal, &id).await?;
    Ok(Json(BranchList { items }))
}

/// Continue the session from another entry (switch branches). Not while a run is
/// active (409).
#[utoipa::path(put, path = "/api/v1/sessions/{id}/leaf", tag = "sessions", operation_id = "set_session_leaf",
    params(("id" = String, Path, description = "Session id")), request_body = SetLeafRequest,
    responses((status = 200, body = Session), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub async fn set_session_leaf(
    State(state): State<AppState>,
    auth: Auth,
    Path(id): Path<String>,
    Json(req): Json<SetLeafRequest>,
) -> ApiResult<Json<Session>> {
    Ok(Json(
        state
            .runtime
            .set_leaf(&auth.principal, &id, &req.entry_id)
            .await?,
    ))
}

/// The session as JSON Lines: an `ExportHeader`, then every `Entry`, parents first.
/// Importing it gives the same session under a new id.
#[utoipa::path(get, path = "/api/v1/sessions/{id}/export", tag = "sessions", operation_id = "export_session",
    params(("id" = String, Path, description = "Session id")),
    responses((status = 200, description = "JSON Lines: the header, then one entry a line",
            body = String, content_type = "application/x-ndjson"),
        (status = 401, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn export_session(
    State(state): State<AppState>,
    auth: Auth,
    Path(id): Path<String>,
) -> ApiResult<Response> {
    let text = state.store.export_session(&auth.principal, &id).await?;
    Ok(([(header::CONTENT_TYPE, JSONL)], text).into_response())
}

/// Recreate an exported session from its JSON Lines (sent as the raw body). Nothing is
/// written unless every line is valid.
#[utoipa::path(post, path = "/api/v1/sessions/import", tag = "sessions", operation_id = "import_session",
    request_body(description = "A session export: JSON Lines, as `GET /api/v1/sessions/{id}/export` gives",
        content((String = "application/x-ndjson"), (String = "text/plain"))),
    responses((status = 201, body = Session), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 413, body = ErrorBody)))]
pub async fn import_session(
    State(state): State<AppState>,
    auth: Auth,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> ApiResult<Response> {
    check_jsonl_content_type(&headers)?;
    let body = body.map_err(|r| {
        if r.status() == StatusCode::PAYLOAD_TOO_LARGE {
            ApiError::new(
                ErrorCode::PayloadTooLarge,
                "request body is larger than the gateway accepts",
            )
        } else {
            ApiError::bad_request(r.body_text())
        }
    })?;
    let text = std::str::from_utf8(&body)
        .map_err(|e| ApiError::bad_request(format!("the export is not UTF-8 text: {e}")))?;
    let session = state.store.import_session(&auth.principal, text).await?;
    Ok((StatusCode::CREATED, Json(session)).into_response())
}

/// An import must say it is JSON Lines (or plain text); a JSON body is most likely a
/// mistake of the caller, and saying so beats a puzzling parse error.
fn check_jsonl_content_type(headers: &HeaderMap) -> ApiResult<()> {
    let media_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .map(|v| v.trim().to_ascii_lowercase())
        .unwrap_or_default();
    match media_type.as_str() {
        JSONL | "text/plain" => Ok(()),
        _ => Err(ApiError::bad_request(format!(
            "expected a session export with Content-Type: {JSONL} (or text/plain)"
        ))),
    }
}
