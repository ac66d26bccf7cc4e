//! Model providers: configure (admins for everyone, users for themselves), list, test.

use crate::openapi::lazy::routes;
use crate::openapi::lazy::ApiRouter;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use mosaic_api::{
    CreateProviderRequest, ErrorBody, ProviderInfo, ProviderList, TestProviderRequest,
    TestProviderResponse, UpdateProviderRequest,
};

use crate::auth::Auth;
use crate::error::ApiResult;
use crate::extract::{Json, Path};
use crate::routes::no_content;
use crate::AppState;

pub use mosaic_agent::egress::is_internal;

/// The routes of model providers.
pub fn router() -> ApiRouter<AppState> {
    ApiRouter::new()
        .routes(routes!(list_providers, create_provider))
        .routes(routes!(get_provider, update_provider, delete_provider))
        .routes(routes!(test_provider))
}

/// The providers you can use: the gateway's and your own.
#[utoipa::path(get, path = "/api/v1/providers", tag = "models", operation_id = "list_providers",
    responses((status = 200, body = ProviderList), (status = 401, body = ErrorBody)))]
pub async fn list_providers(
    State(state): State<AppState>,
    auth: Auth,
) -> ApiResult<Json<ProviderList>> {
    Ok(Json(ProviderList {
        items: state.store.list_providers(&auth.principal).await?,
    }))
}

/// Add a provider: your own, or (admins) one for the whole gateway.
#[utoipa::path(post, path = "/api/v1/providers", tag = "models", operation_id = "create_provider",
    request_body = CreateProviderRequest,
    responses((status = 201, body = ProviderInfo), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub async fn create_provider(
    State(state): State<AppState>,
    auth: Auth,
    Json(req): Json<CreateProviderRequest>,
) -> ApiResult<Response> {
    let info = crate::catalog::create_provider(&state, &auth.principal, req).await?;
    Ok((StatusCode::CREATED, Json(info)).into_response())
}

/// One provider you can use.
#[utoipa::path(get, path = "/api/v1/providers/{id}", tag = "models", operation_id = "get_provider",
    params(("id" = String, Path, description = "Provider id")),
    responses((status = 200, body = ProviderInfo), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn get_provider(
    State(state): State<AppState>,
    auth: Auth,
    Path(id): Path<String>,
) -> ApiResult<Json<ProviderInfo>> {
    Ok(Json(state.store.get_provider(&auth.principal, &id).await?))
}

/// Change a provider's address, wire API or key.
#[utoipa::path(patch, path = "/api/v1/providers/{id}", tag = "models", operation_id = "update_provider",
    params(("id" = String, Path, description = "Provider id")), request_body = UpdateProviderRequest,
    responses((status = 200, body = ProviderInfo), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn update_provider(
    State(state): State<AppState>,
    auth: Auth,
    Path(id): Path<String>,
    Json(req): Json<UpdateProviderRequest>,
) -> ApiResult<Json<ProviderInfo>> {
    Ok(Json(
        crate::catalog::update_provider(&state, &auth.principal, &id, req).await?,
    ))
}

/// Remove a provider.
#[utoipa::path(delete, path = "/api/v1/providers/{id}", tag = "models", operation_id = "delete_provider",
    params(("id" = String, Path, description = "Provider id")),
    responses((status = 204), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn delete_provider(
    State(state): State<AppState>,
    auth: Auth,
    Path(id): Path<String>,
) -> ApiResult<Response> {
    crate::catalog::delete_provider(&state, &auth.principal, &id).await?;
    Ok(no_content())
}

/// Make one tiny call and report its latency, or the provider's exact error.
#[utoipa::path(post, path = "/api/v1/providers/{id}/test", tag = "models", operation_id = "test_provider",
    params(("id" = String, Path, description = "Provider id")), request_body = TestProviderRequest,
    responses((status = 200, body = TestProviderResponse), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn test_provider(
    State(state): State<AppState>,
    auth: Auth,
    Path(id): Path<String>,
    Json(req): Json<TestProviderRequest>,
) -> ApiResult<Json<TestProviderResponse>> {
    Ok(Json(
        crate::catalog::test_provider(&state, &auth.principal, &id, req).await?,
    ))
}
