//! API tokens of the caller: create (shown once), list, show, revoke.

use crate::openapi::lazy::routes;
use crate::openapi::lazy::ApiRouter;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use mosaic_api::{ApiToken, CreateTokenRequest, CreateTokenResponse, ErrorBody, Page, PageQuery};

use crate::auth::Auth;
use crate::error::ApiResult;
use crate::extract::{Json, Path, Query};
use crate::routes::no_content;
use crate::AppState;

/// The routes of API tokens.
pub fn router() -> ApiRouter<AppState> {
    ApiRouter::new()
        .routes(routes!(list_tokens, create_token))
        .routes(routes!(get_token, revoke_token))
}

/// Your API tokens.
#[utoipa::path(get, path = "/api/v1/tokens", tag = "tokens", operation_id = "list_tokens",
    params(PageQuery), responses((status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 200, body = Page<ApiToken>)))]
pub async fn list_tokens(
    State(state): State<AppState>,
    auth: Auth,
    Query(page): Query<PageQuery>,
) -> ApiResult<Json<Page<ApiToken>>> {
    Ok(Json(
        state.store.list_api_tokens(&auth.principal, &page).await?,
    ))
}

/// Create an API token. The token itself is in this response only.
#[utoipa::path(post, path = "/api/v1/tokens", tag = "tokens", operation_id = "create_token",
    request_body = CreateTokenRequest,
    responses((status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 201, body = CreateTokenResponse), (status = 400, body = ErrorBody)))]
pub async fn create_token(
    State(state): State<AppState>,
    auth: Auth,
    Json(req): Json<CreateTokenRequest>,
) -> ApiResult<Response> {
    let created = crate::accounts::create_token(&state.store, &auth, req).await?;
    Ok((StatusCode::CREATED, Json(created)).into_response())
}

/// One of your API tokens.
#[utoipa::path(get, path = "/api/v1/tokens/{id}", tag = "tokens", operation_id = "get_token",
    params(("id" = String, Path, description = "Token id")),
    responses((status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 200, body = ApiToken), (status = 404, body = ErrorBody)))]
pub async fn get_token(
    State(state): State<AppState>,
    auth: Auth,
    Path(id): Path<String>,
) -> ApiResult<Json<ApiToken>> {
    Ok(Json(state.store.get_api_token(&auth.principal, &id).await?))
}

/// Revoke one of your API tokens; it stops working at once.
#[utoipa::path(delete, path = "/api/v1/tokens/{id}", tag = "tokens", operation_id = "revoke_token",
    params(("id" = String, Path, description = "Token id")),
    responses((status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 204), (status = 404, body = ErrorBody)))]
pub async fn revoke_token(
    State(state): State<AppState>,
    auth: Auth,
    Path(id): Path<String>,
) -> ApiResult<Response> {
    state.store.revoke_api_token(&auth.principal, &id).await?;
    Ok(no_content())
}
