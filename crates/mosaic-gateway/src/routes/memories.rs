//! Memories over HTTP: short things worth remembering, saved by people and agents.
//! Pinned ones are put into the context of every run of their owner (with `agent_id`:
//! of that agent's runs). Tenancy and validation are the store's, as for the rest of
//! the brain.

use crate::openapi::lazy::routes;
use crate::openapi::lazy::ApiRouter;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use mosaic_api::{CreateMemoryRequest, ErrorBody, Memory, MemoryQuery, Page, UpdateMemoryRequest};

use crate::auth::Auth;
use crate::error::ApiResult;
use crate::extract::{Json, Path, Query};
use crate::routes::no_content;
use crate::AppState;

/// The routes of memories.
pub fn router() -> ApiRouter<AppState> {
    ApiRouter::new()
        .routes(routes!(list_memories, create_memory))
        .routes(routes!(get_memory, update_memory, delete_memory))
}

/// Memories you can see, newest first.
#[utoipa::path(get, path = "/api/v1/memories", tag = "brain", operation_id = "list_memories",
    params(MemoryQuery),
    responses((status = 200, body = Page<Memory>), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody)))]
pub async fn list_memories(
    State(state): State<AppState>,
    auth: Auth,
    Query(q): Query<MemoryQuery>,
) -> ApiResult<Json<Page<Memory>>> {
    Ok(Json(state.store.list_memories(&auth.principal, &q).await?))
}

/// Save a memory, yours or (as a member) a team's.
#[utoipa::path(post, path = "/api/v1/memories", tag = "brain", operation_id = "create_memory",
    request_body = CreateMemoryRequest,
    responses((status = 201, body = Memory), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 404, body = ErrorBody)))]
pub async fn create_memory(
    State(state): State<AppState>,
    auth: Auth,
    Json(req): Json<CreateMemoryRequest>,
) -> ApiResult<Response> {
    let memory = state.store.create_memory(&auth.principal, &req).await?;
    Ok((StatusCode::CREATED, Json(memory)).into_response())
}

/// A memory you can see.
#[utoipa::path(get, path = "/api/v1/memories/{id}", tag = "brain", operation_id = "get_memory",
    params(("id" = String, Path, description = "Memory id")),
    responses((status = 200, body = Memory), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn get_memory(
    State(state): State<AppState>,
    auth: Auth,
    Path(id): Path<String>,
) -> ApiResult<Json<Memory>> {
    Ok(Json(state.store.get_memory(&auth.principal, &id).await?))
}

/// Change a memory: its text, kind, tags, importance, pin or agent.
#[utoipa::path(patch, path = "/api/v1/memories/{id}", tag = "brain", operation_id = "update_memory",
    params(("id" = String, Path, description = "Memory id")),
    request_body = UpdateMemoryRequest,
    responses((status = 200, body = Memory), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 404, body = ErrorBody)))]
pub async fn update_memory(
    State(state): State<AppState>,
    auth: Auth,
    Path(id): Path<String>,
    Json(req): Json<UpdateMemoryRequest>,
) -> ApiResult<Json<Memory>> {
    Ok(Json(
        state
            .store
            .update_memory(&auth.principal, &id, &req)
            .await?,
    ))
}

/// Forget a memory (a team's: its owners and admins only).
#[utoipa::path(delete, path = "/api/v1/memories/{id}", tag = "brain", operation_id = "delete_memory",
    params(("id" = String, Path, description = "Memory id")),
    responses((status = 204), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody)))]
pub async fn delete_memory(
    State(state): State<AppState>,
    auth: Auth,
    Path(id): Path<String>,
) -> ApiResult<Response> {
    state.store.delete_memory(&auth.principal, &id).await?;
    Ok(no_content())
}
