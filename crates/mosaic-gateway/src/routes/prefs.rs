//! The caller's preferences: typed values under known keys.

use crate::openapi::lazy::routes;
use crate::openapi::lazy::ApiRouter;
use axum::extract::State;
use axum::response::Response;
use mosaic_api::{ErrorBody, Preference, PreferenceList, SetPreferenceRequest};

use crate::auth::Auth;
use crate::error::ApiResult;
use crate::extract::{Json, Path};
use crate::routes::no_content;
use crate::AppState;

/// The routes of preferences.
pub fn router() -> ApiRouter<AppState> {
    ApiRouter::new()
        .routes(routes!(list_preferences))
        .routes(routes!(get_preference, set_preference, delete_preference))
}

/// Every preference you have set.
#[utoipa::path(get, path = "/api/v1/preferences", tag = "preferences", operation_id = "list_preferences",
    responses((status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 200, body = PreferenceList)))]
pub async fn list_preferences(
    State(state): State<AppState>,
    auth: Auth,
) -> ApiResult<Json<PreferenceList>> {
    Ok(Json(PreferenceList {
        items: state.store.list_preferences(&auth.principal).await?,
    }))
}

/// One preference; 404 when unset.
#[utoipa::path(get, path = "/api/v1/preferences/{key}", tag = "preferences", operation_id = "get_preference",
    params(("key" = String, Path, description = "Preference key")),
    responses((status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 200, body = Preference), (status = 404, body = ErrorBody)))]
pub async fn get_preference(
    State(state): State<AppState>,
    auth: Auth,
    Path(key): Path<String>,
) -> ApiResult<Json<Preference>> {
    Ok(Json(
        state.store.get_preference(&auth.principal, &key).await?,
    ))
}

/// Set a preference; the value must fit the key's type.
#[utoipa::path(put, path = "/api/v1/preferences/{key}", tag = "preferences", operation_id = "set_preference",
    params(("key" = String, Path, description = "Preference key")), request_body = SetPreferenceRequest,
    responses((status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 200, body = Preference), (status = 400, body = ErrorBody)))]
pub async fn set_preference(
    State(state): State<AppState>,
    auth: Auth,
    Path(key): Path<String>,
    Json(req): Json<SetPreferenceRequest>,
) -> ApiResult<Json<Preference>> {
    Ok(Json(
        state
            .store
            .set_preference(&auth.principal, &key, &req.value)
            .await?,
    ))
}

/// Unset a preference.
#[utoipa::path(delete, path = "/api/v1/preferences/{key}", tag = "preferences", operation_id = "delete_preference",
    params(("key" = String, Path, description = "Preference key")),
    responses((status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 204), (status = 404, body = ErrorBody)))]
pub async fn delete_preference(
    State(state): State<AppState>,
    auth: Auth,
    Path(key): Path<String>,
) -> ApiResult<Response> {
    state.store.delete_preference(&auth.principal, &key).await?;
    Ok(no_content())
}
