//! Teams the caller belongs to, and their members.

use crate::openapi::lazy::routes;
use crate::openapi::lazy::ApiRouter;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use mosaic_api::{
    AddMemberRequest, CreateTeamRequest, ErrorBody, Page, PageQuery, Team, TeamMember,
    TeamMemberList, UpdateTeamRequest,
};

use crate::auth::Auth;
use crate::error::ApiResult;
use crate::extract::{Json, Path, Query};
use crate::routes::no_content;
use crate::AppState;

/// The routes of teams and their members.
pub fn router() -> ApiRouter<AppState> {
    ApiRouter::new()
        .routes(routes!(list_teams, create_team))
        .routes(routes!(get_team, update_team, delete_team))
        .routes(routes!(list_members, add_member))
        .routes(routes!(remove_member))
}

/// Your teams.
#[utoipa::path(get, path = "/api/v1/teams", tag = "teams", operation_id = "list_teams",
    params(PageQuery), responses((status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 200, body = Page<Team>)))]
pub async fn list_teams(
    State(state): State<AppState>,
    auth: Auth,
    Query(page): Query<PageQuery>,
) -> ApiResult<Json<Page<Team>>> {
    Ok(Json(state.store.list_teams(&auth.principal, &page).await?))
}

/// Create a team; you become its owner.
#[utoipa::path(post, path = "/api/v1/teams", tag = "teams", operation_id = "create_team",
    request_body = CreateTeamRequest,
    responses((status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 201, body = Team), (status = 400, body = ErrorBody)))]
pub async fn create_team(
    State(state): State<AppState>,
    auth: Auth,
    Json(req): Json<CreateTeamRequest>,
) -> ApiResult<Response> {
    let team = state.store.create_team(&auth.principal, &req.name).await?;
    Ok((StatusCode::CREATED, Json(team)).into_response())
}

/// A team you belong to.
#[utoipa::path(get, path = "/api/v1/teams/{id}", tag = "teams", operation_id = "get_team",
    params(("id" = String, Path, description = "Team id")),
    responses((status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 200, body = Team), (status = 404, body = ErrorBody)))]
pub async fn get_team(
    State(state): State<AppState>,
    auth: Auth,
    Path(id): Path<String>,
) -> ApiResult<Json<Team>> {
    Ok(Json(state.store.get_team(&auth.principal, &id).await?))
}

/// Rename a team (its owners and admins).
#[utoipa::path(patch, path = "/api/v1/teams/{id}", tag = "teams", operation_id = "update_team",
    params(("id" = String, Path, description = "Team id")), request_body = UpdateTeamRequest,
    responses((status = 401, body = ErrorBody), (status = 400, body = ErrorBody), (status = 200, body = Team), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn update_team(
    State(state): State<AppState>,
    auth: Auth,
    Path(id): Path<String>,
    Json(req): Json<UpdateTeamRequest>,
) -> ApiResult<Json<Team>> {
    Ok(Json(
        state
            .store
            .rename_team(&auth.principal, &id, &req.name)
            .await?,
    ))
}

/// Delete a team and its workspaces (its owners).
#[utoipa::path(delete, path = "/api/v1/teams/{id}", tag = "teams", operation_id = "delete_team",
    params(("id" = String, Path, description = "Team id")),
    responses((status = 401, body = ErrorBody), (status = 204), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn delete_team(
    State(state): State<AppState>,
    auth: Auth,
    Path(id): Path<String>,
) -> ApiResult<Response> {
    state.store.delete_team(&auth.principal, &id).await?;
    Ok(no_content())
}

/// The members of a team you belong to.
#[utoipa::path(get, path = "/api/v1/teams/{id}/members", tag = "teams", operation_id = "list_team_members",
    params(("id" = String, Path, description = "Team id")),
    responses((status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 200, body = TeamMemberList), (status = 404, body = ErrorBody)))]
pub async fn list_members(
    State(state): State<AppState>,
    auth: Auth,
    Path(id): Path<String>,
) -> ApiResult<Json<TeamMemberList>> {
    Ok(Json(TeamMemberList {
        items: state.store.list_team_members(&auth.principal, &id).await?,
    }))
}

/// Add a user to a team by username, or change their role.
#[utoipa::path(post, path = "/api/v1/teams/{id}/members", tag = "teams", operation_id = "add_team_member",
    params(("id" = String, Path, description = "Team id")), request_body = AddMemberRequest,
    responses((status = 401, body = ErrorBody), (status = 200, body = TeamMember), (status = 400, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn add_member(
    State(state): State<AppState>,
    auth: Auth,
    Path(id): Path<String>,
    Json(req): Json<AddMemberRequest>,
) -> ApiResult<Json<TeamMember>> {
    Ok(Json(
        state
            .store
            .put_team_member(&auth.principal, &id, &req.username, req.role)
            .await?,
    ))
}

/// Remove a member from a team (or leave it yourself).
#[utoipa::path(delete, path = "/api/v1/teams/{id}/members/{user_id}", tag = "teams",
    operation_id = "remove_team_member",
    params(("id" = String, Path, description = "Team id"), ("user_id" = String, Path, description = "User id")),
    responses((status = 401, body = ErrorBody), (status = 204), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn remove_member(
    State(state): State<AppState>,
    auth: Auth,
    Path((id, user_id)): Path<(String, String)>,
) -> ApiResult<Response> {
    state
        .store
        .remove_team_member(&auth.principal, &id, &user_id)
        .await?;
    Ok(no_content())
}
