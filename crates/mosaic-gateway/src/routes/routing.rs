//! Model routing: the models providers offer, routes over them, their health, and token
//! usage.

use crate::openapi::lazy::routes;
use crate::openapi::lazy::ApiRouter;
use axum::extract::State;
use axum::response::Response;
use mosaic_api::{
    ErrorBody, HealthList, ModelList, RouteInfo, RouteList, SetRouteRequest, UsageQuery,
    UsageReport,
};

use crate::auth::Auth;
use crate::error::ApiResult;
use crate::extract::{Json, Path, Query};
use crate::routes::no_content;
use crate::AppState;

/// The routes of models, routes over them, their health, and token usage.
pub fn router() -> ApiRouter<AppState> {
    ApiRouter::new()
        .routes(routes!(list_models))
        .routes(routes!(model_health))
        .routes(routes!(list_routes, set_route))
        .routes(routes!(get_route, delete_route))
        .routes(routes!(get_usage))
}

/// Every model of every provider you can use, as `provider/model`.
#[utoipa::path(get, path = "/api/v1/models", tag = "models", operation_id = "list_models",
    responses((status = 200, body = ModelList), (status = 401, body = ErrorBody)))]
pub async fn list_models(State(state): State<AppState>, auth: Auth) -> ApiResult<Json<ModelList>> {
    Ok(Json(
        crate::catalog::models_of(&state, &auth.principal).await?,
    ))
}

/// The routes you can use: the gateway's and your own (yours win by name).
#[utoipa::path(get, path = "/api/v1/routes", tag = "models", operation_id = "list_routes",
    responses((status = 200, body = RouteList), (status = 401, body = ErrorBody)))]
pub async fn list_routes(State(state): State<AppState>, auth: Auth) -> ApiResult<Json<RouteList>> {
    Ok(Json(RouteList {
        items: state.store.list_routes(&auth.principal).await?,
    }))
}

/// Create or replace a route by name: yours, or (admins) the gateway's.
#[utoipa::path(post, path = "/api/v1/routes", tag = "models", operation_id = "set_route",
    request_body = SetRouteRequest,
    responses((status = 200, body = RouteInfo), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody)))]
pub async fn set_route(
    State(state): State<AppState>,
    auth: Auth,
    Json(req): Json<SetRouteRequest>,
) -> ApiResult<Json<RouteInfo>> {
    Ok(Json(
        crate::catalog::set_route(&state, &auth.principal, req).await?,
    ))
}

/// One route you can use.
#[utoipa::path(get, path = "/api/v1/routes/{id}", tag = "models", operation_id = "get_route",
    params(("id" = String, Path, description = "Route id")),
    responses((status = 200, body = RouteInfo), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn get_route(
    State(state): State<AppState>,
    auth: Auth,
    Path(id): Path<String>,
) -> ApiResult<Json<RouteInfo>> {
    Ok(Json(state.store.get_route(&auth.principal, &id).await?))
}

/// Remove a route.
#[utoipa::path(delete, path = "/api/v1/routes/{id}", tag = "models", operation_id = "delete_route",
    params(("id" = String, Path, description = "Route id")),
    responses((status = 204), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn delete_route(
    State(state): State<AppState>,
    auth: Auth,
    Path(id): Path<String>,
) -> ApiResult<Response> {
    state.store.delete_route(&auth.principal, &id).await?;
    Ok(no_content())
}

/// Health of the models the routing matrix has called: failures, cool-downs, last error.
#[utoipa::path(get, path = "/api/v1/models/health", tag = "models", operation_id = "model_health",
    responses((status = 200, body = HealthList), (status = 401, body = ErrorBody)))]
pub async fn model_health(
    State(state): State<AppState>,
    auth: Auth,
) -> ApiResult<Json<HealthList>> {
    Ok(Json(HealthList {
        items: state.models.health(&state.store, &auth.principal).await?,
    }))
}

/// Your token usage per day and `provider/model` (the last 30 days by default).
#[utoipa::path(get, path = "/api/v1/usage", tag = "models", operation_id = "get_usage",
    params(UsageQuery),
    responses((status = 200, body = UsageReport), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody)))]
pub async fn get_usage(
    State(state): State<AppState>,
    auth: Auth,
    Query(q): Query<UsageQuery>,
) -> ApiResult<Json<UsageReport>> {
    let now = mosaic_store::now_ms();
    let to = q.to.unwrap_or_else(|| mosaic_store::day_of(now));
    let from = q
        .from
        .unwrap_or_else(|| mosaic_store::day_of(now - 29 * 86_400_000));
    Ok(Json(UsageReport {
        items: state
            .store
            .usage_report(&auth.principal, &from, &to)
            .await?,
    }))
}
