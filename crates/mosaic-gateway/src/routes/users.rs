//! Users: admins create, list, change and delete them; everyone reads and renames
//! themselves.

use crate::openapi::lazy::routes;
use crate::openapi::lazy::ApiRouter;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use mosaic_api::{CreateUserRequest, ErrorBody, Page, PageQuery, UpdateUserRequest, User};

use crate::auth::Auth;
use crate::error::ApiResult;
use crate::extract::{Json, Path, Query};
use crate::routes::no_content;
use crate::AppState;

/// The routes of the accounts of this gateway.
pub fn router() -> ApiRouter<AppState> {
    ApiRouter::new()
        .routes(routes!(list_users, create_user))
        .routes(routes!(get_user, update_user, delete_user))
}

/// Admin: list users.
#[utoipa::path(get, path = "/api/v1/users", tag = "users", operation_id = "list_users",
    params(PageQuery),
    responses((status = 401, body = ErrorBody), (status = 200, body = Page<User>), (status = 403, body = ErrorBody)))]
pub async fn list_users(
    State(state): State<AppState>,
    auth: Auth,
    Query(page): Query<PageQuery>,
) -> ApiResult<Json<Page<User>>> {
    auth.require_admin()?;
    Ok(Json(state.store.list_users(&auth.principal, &page).await?))
}

/// Admin: create a user.
#[utoipa::path(post, path = "/api/v1/users", tag = "users", operation_id = "create_user",
    request_body = CreateUserRequest,
    responses((status = 401, body = ErrorBody), (status = 400, body = ErrorBody), (status = 201, body = User), (status = 403, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub async fn create_user(
    State(state): State<AppState>,
    auth: Auth,
    Json(req): Json<CreateUserRequest>,
) -> ApiResult<Response> {
    let user = crate::accounts::create_user(&state.store, &auth, req).await?;
    Ok((StatusCode::CREATED, Json(user)).into_response())
}

/// A user: yourself, or anyone for an admin.
#[utoipa::path(get, path = "/api/v1/users/{id}", tag = "users", operation_id = "get_user",
    params(("id" = String, Path, description = "User id")),
    responses((status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 200, body = User), (status = 404, body = ErrorBody)))]
pub async fn get_user(
    State(state): State<AppState>,
    auth: Auth,
    Path(id): Path<String>,
) -> ApiResult<Json<User>> {
    Ok(Json(state.store.get_user(&auth.principal, &id).await?))
}

/// Change a user: your own display name, or (admins) anything.
#[utoipa::path(patch, path = "/api/v1/users/{id}", tag = "users", operation_id = "update_user",
    params(("id" = String, Path, description = "User id")), request_body = UpdateUserRequest,
    responses((status = 401, body = ErrorBody), (status = 400, body = ErrorBody), (status = 400, body = ErrorBody), (status = 200, body = User), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn update_user(
    State(state): State<AppState>,
    auth: Auth,
    Path(id): Path<String>,
    Json(req): Json<UpdateUserRequest>,
) -> ApiResult<Json<User>> {
    Ok(Json(
        crate::accounts::update_user(&state.store, &auth, &id, req).await?,
    ))
}

/// Admin: delete a user and everything they own.
#[utoipa::path(delete, path = "/api/v1/users/{id}", tag = "users", operation_id = "delete_user",
    params(("id" = String, Path, description = "User id")),
    responses((status = 401, body = ErrorBody), (status = 400, body = ErrorBody), (status = 204), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn delete_user(
    State(state): State<AppState>,
    auth: Auth,
    Path(id): Path<String>,
) -> ApiResult<Response> {
    state.store.delete_user(&auth.principal, &id).await?;
    Ok(no_content())
}
