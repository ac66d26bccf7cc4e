//! Model providers: configure (admins for everyone, users for themselves), list, test.

use std::net::IpAddr;
use std::time::Instant;

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use mosaic_api::{
    ConfigScope, CreateProviderRequest, ErrorBody, ProviderInfo, ProviderList, TestProviderRequest,
    TestProviderResponse, UpdateProviderRequest,
};
use mosaic_llm::{ChatRequest, Message};
use mosaic_store::{NewProvider, ProviderChanges};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::auth::Auth;
use crate::error::{ApiError, ApiResult};
use crate::extract::{Json, Path};
use crate::models::USER_POLICY_SETTINGS;
use crate::routes::no_content;
use crate::AppState;

use mosaic_agent::egress;

pub use mosaic_agent::egress::is_internal;

/// The routes of model providers.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_providers, create_provider))
        .routes(routes!(get_provider, update_provider, delete_provider))
        .routes(routes!(test_provider))
}

/// Check a base URL: http(s), and — for a user's own provider, unless they are an admin —
/// not resolving to an address the gateway's policy for users' providers refuses. The
/// same policy is applied again on every connection when the provider is called; this
/// check only says so early.
async fn check_base_url(
    state: &AppState,
    auth: &Auth,
    scope: ConfigScope,
    url: &str,
) -> ApiResult<()> {
    let parsed =
        reqwest::Url::parse(url).map_err(|e| ApiError::bad_request(format!("base_url: {e}")))?;
    if !matches!(parsed.scheme(), "http" | "https") {
        return Err(ApiError::bad_request("base_url must be http or https"));
    }
    let host = parsed
        .host_str()
        .ok_or_else(|| ApiError::bad_request("base_url has no host"))?;
    let gated = match scope {
        ConfigScope::Gateway => false,
        ConfigScope::User => !auth.principal.is_admin(),
    };
    if !gated {
        return Ok(());
    }
    let port = parsed.port_or_known_default().unwrap_or(443);
    let host = host.trim_start_matches('[').trim_end_matches(']');
    let addrs: Vec<IpAddr> = tokio::net::lookup_host((host, port))
        .await
        .map_err(|e| ApiError::bad_request(format!("base_url: cannot resolve {host}: {e}")))?
        .map(|a| a.ip())
        .collect();
    let policy = state.models.user_policy();
    let refused = addrs
        .iter()
        .find_map(|ip| policy.refuses(*ip).map(|kind| (*ip, kind)));
    if let Some((ip, kind)) = refused {
        return Err(ApiError::forbidden(format!(
            "base_url reaches {}, a {kind} address; your own providers may not use loopback \
             or private addresses unless the gateway sets {}; an admin can add it for the \
             gateway instead",
            egress::Shown(ip),
            USER_POLICY_SETTINGS
        )));
    }
    if addrs.is_empty() {
        return Err(ApiError::bad_request(format!(
            "base_url: {host} resolves to no address"
        )));
    }
    Ok(())
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
    let base_url = match (&req.base_url, req.kind.default_base_url()) {
        (Some(url), _) => url.trim().trim_end_matches('/').to_string(),
        (None, Some(default)) => default.to_string(),
        (None, None) => {
            return Err(ApiError::bad_request(format!(
                "a {} provider needs a base_url",
                req.kind.as_str()
            )))
        }
    };
    check_base_url(&state, &auth, req.scope, &base_url).await?;
    let new = NewProvider {
        scope: req.scope,
        name: req.name,
        kind: req.kind,
        wire: req.wire.unwrap_or(req.kind.default_wire()),
        base_url,
        api_key_enc: req
            .api_key
            .filter(|k| !k.is_empty())
            .map(|k| state.models.secrets().seal(&k)),
    };
    let info = state.store.create_provider(&auth.principal, new).await?;
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
    let current = state.store.get_provider(&auth.principal, &id).await?;
    let base_url = req
        .base_url
        .map(|u| u.trim().trim_end_matches('/').to_string());
    if let Some(url) = &base_url {
        check_base_url(&state, &auth, current.scope, url).await?;
    }
    let changes = ProviderChanges {
        base_url,
        wire: req.wire,
        api_key_enc: req.api_key.map(|k| {
            if k.is_empty() {
                None
            } else {
                Some(state.models.secrets().seal(&k))
            }
        }),
    };
    Ok(Json(
        state
            .store
            .update_provider(&auth.principal, &id, changes)
            .await?,
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
    state.store.delete_provider(&auth.principal, &id).await?;
    state.models.forget(&id);
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
    let f = state.store.provider_for_call(&auth.principal, &id).await?;
    let model = match req.model {
        Some(m) => m,
        None => match state.models.list_models(&auth.principal, &f).await {
            Ok(models) if !models.is_empty() => models[0].clone(),
            Ok(_) => {
                return Err(ApiError::bad_request(
                    "the provider lists no models; name one",
                ))
            }
            Err(e) => {
                return Ok(Json(TestProviderResponse {
                    ok: false,
                    model: String::new(),
                    latency_ms: 0.0,
                    error: Some(e.message),
                }))
            }
        },
    };
    let request = ChatRequest {
        model: model.clone(),
        messages: vec![Message::user("Reply with the word: ok")],
        max_tokens: Some(8),
        ..ChatRequest::default()
    };
    let started = Instant::now();
    // Straight to this provider (by id), not through a route or a name lookup.
    let outcome = match state.models.built(&auth.principal, &f) {
        Ok(p) => {
            mosaic_llm::routing::first_event(p.as_ref(), request, crate::models::DIRECT_TIMEOUT)
                .await
                .map(drop)
                .map_err(|e| {
                    let detail = crate::upstream::sees_detail(&auth.principal, f.info.scope);
                    crate::upstream::shown(&e, detail).to_string()
                })
        }
        Err(e) => Err(e.message),
    };
    let latency_ms = started.elapsed().as_secs_f64() * 1000.0;
    Ok(Json(TestProviderResponse {
        ok: outcome.is_ok(),
        model,
        latency_ms,
        error: outcome.err(),
    }))
}
