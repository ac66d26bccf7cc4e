//! Workspaces the caller can see: their own and their teams'.

use crate::openapi::lazy::routes;
use crate::openapi::lazy::ApiRouter;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use mosaic_api::{
    CreateWorkspaceRequest, ErrorBody, Page, PageQuery, UpdateWorkspaceRequest, Workspace,
};

use crate::auth::Auth;
use crate::error::ApiResult;
use crate::extract::{Json, Path, Query};
use crate::routes::no_content;
use crate::AppState;

/// The routes of workspaces of users and teams.
pub fn router() -> ApiRouter<AppState> {
    ApiRouter::new()
        .routes(routes!(list_workspaces, create_workspace))
        .routes(routes!(get_workspace, update_workspace, delete_workspace))
}

/// Workspaces you can see.
#[utoipa::path(get, path = "/api/v1/workspaces", tag = "workspaces", operation_id = "list_workspaces",
    params(PageQuery), responses((status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 200, body = Page<Workspace>)))]
pub async fn list_workspaces(
    State(state): State<AppState>,
    auth: Auth,
    Query(page): Query<PageQuery>,
) -> ApiResult<Json<Page<Workspace>>> {
    Ok(Json(
        state.store.list_workspaces(&auth.principal, &page).await?,
    ))
}

/// Create a workspace, yours or (as its owner or admin) a team's.
#[utoipa::path(post, path = "/api/v1/workspaces", tag = "workspaces", operation_id = "create_workspace",
    request_body = CreateWorkspaceRequest,
    responses((status = 401, body = ErrorBody), (status = 400, body = ErrorBody), (status = 201, body = Workspace), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn create_workspace(
    State(state): State<AppState>,
    auth: Auth,
    Json(req): Json<CreateWorkspaceRequest>,
) -> ApiResult<Response> {
    let ws = state
        .store
        .create_workspace(
            &auth.principal,
            &req.name,
            req.description.as_deref().unwrap_or(""),
            req.team_id.as_deref(),
        )
        .await?;
    Ok((StatusCode::CREATED, Json(ws)).into_response())
}

/// A workspace you can see.
#[utoipa::path(get, path = "/api/v1/workspaces/{id}", tag = "workspaces", operation_id = "get_workspace",
    params(("id" = String, Path, description = "Workspace id")),
    responses((status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 200, body = Workspace), (status = 404, body = ErrorBody)))]
pub async fn get_workspace(
    State(state): State<AppState>,
    auth: Auth,
    Path(id): Path<String>,
) -> ApiResult<Json<Workspace>> {
    Ok(Json(state.store.get_workspace(&auth.principal, &id).await?))
}

/// Rename or describe a workspace.
#[utoipa::path(patch, path = "/api/v1/workspaces/{id}", tag = "workspaces", operation_id = "update_workspace",
    params(("id" = String, Path, description = "Workspace id")), request_body = UpdateWorkspaceRequest,
    responses((status = 401, body = ErrorBody), (status = 400, body = ErrorBody), (status = 200, body = Workspace), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn update_workspace(
    State(state): State<AppState>,
    auth: Auth,
    Path(id): Path<String>,
    Json(req): Json<UpdateWorkspaceRequest>,
) -> ApiResult<Json<Workspace>> {
    Ok(Json(
        state
            .store
            .update_workspace(
                &auth.principal,
                &id,
                req.name.as_deref(),
                req.description.as_deref(),
            )
            .await?,
    ))
}

/// Delete a workspace.
#[utoipa::path(delete, path = "/api/v1/workspaces/{id}", tag = "workspaces", operation_id = "delete_workspace",
    params(("id" = String, Path, description = "Workspace id")),
    responses((status = 401, body = ErrorBody), (status = 204), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn delete_workspace(
    State(state): State<AppState>,
    auth: Auth,
    Path(id): Path<String>,
) -> ApiResult<Response> {
    state.store.delete_workspace(&auth.principal, &id).await?;
    Ok(no_content())
}
