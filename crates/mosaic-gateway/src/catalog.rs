//! The model catalogue a principal configures and sees, below the HTTP surface:
//! providers (base URLs checked against the address policy for users' providers, keys
//! sealed before they are stored, a test call straight to one), routes over them (each
//! step naming a provider the route's users can use), and the models the providers
//! list. Each operation is one call for its handler.

use std::net::IpAddr;
use std::time::Instant;

use mosaic_agent::egress;
use mosaic_api::{
    ConfigScope, CreateProviderRequest, ModelInfo, ModelList, ProviderInfo, RouteInfo,
    SetRouteRequest, TestProviderRequest, TestProviderResponse, UpdateProviderRequest,
};
use mosaic_llm::{ChatRequest, Message};
use mosaic_store::{NewProvider, Principal, ProviderChanges};

use crate::error::{ApiError, ApiResult};
use crate::models::USER_POLICY_SETTINGS;
use crate::AppState;

/// Check a base URL: http(s), and — for a user's own provider, unless they are an admin —
/// not resolving to an address the gateway's policy for users' providers refuses. The
/// same policy is applied again on every connection when the provider is called; this
/// check only says so early.
async fn check_base_url(
    state: &AppState,
    principal: &Principal,
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
        ConfigScope::User => !principal.is_admin(),
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

/// Add a provider: `principal`'s own, or (admins) one for the whole gateway.
pub async fn create_provider(
    state: &AppState,
    principal: &Principal,
    req: CreateProviderRequest,
) -> ApiResult<ProviderInfo> {
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
    check_base_url(state, principal, req.scope, &base_url).await?;
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
    Ok(state.store.create_provider(principal, new).await?)
}

/// Change a provider's address, wire API or key.
pub async fn update_provider(
    state: &AppState,
    principal: &Principal,
    id: &str,
    req: UpdateProviderRequest,
) -> ApiResult<ProviderInfo> {
    let current = state.store.get_provider(principal, id).await?;
    let base_url = req
        .base_url
        .map(|u| u.trim().trim_end_matches('/').to_string());
    if let Some(url) = &base_url {
        check_base_url(state, principal, current.scope, url).await?;
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
    Ok(state.store.update_provider(principal, id, changes).await?)
}

/// Remove a provider, and the client built for it.
pub async fn delete_provider(state: &AppState, principal: &Principal, id: &str) -> ApiResult<()> {
    state.store.delete_provider(principal, id).await?;
    state.models.forget(id);
    Ok(())
}

/// Make one tiny call straight to a provider: its latency, or its exact error.
pub async fn test_provider(
    state: &AppState,
    principal: &Principal,
    id: &str,
    req: TestProviderRequest,
) -> ApiResult<TestProviderResponse> {
    let f = state.store.provider_for_call(principal, id).await?;
    let model = match req.model {
        Some(m) => m,
        None => match state.models.list_models(principal, &f).await {
            Ok(models) if !models.is_empty() => models[0].clone(),
            Ok(_) => {
                return Err(ApiError::bad_request(
                    "the provider lists no models; name one",
                ))
            }
            Err(e) => {
                return Ok(TestProviderResponse {
                    ok: false,
                    model: String::new(),
                    latency_ms: 0.0,
                    error: Some(e.message),
                })
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
    let outcome = match state.models.built(principal, &f) {
        Ok(p) => {
            mosaic_llm::routing::first_event(p.as_ref(), request, crate::models::DIRECT_TIMEOUT)
                .await
                .map(drop)
                .map_err(|e| {
                    let detail = crate::upstream::sees_detail(principal, f.info.scope);
                    crate::upstream::shown(&e, detail).to_string()
                })
        }
        Err(e) => Err(e.message),
    };
    let latency_ms = started.elapsed().as_secs_f64() * 1000.0;
    Ok(TestProviderResponse {
        ok: outcome.is_ok(),
        model,
        latency_ms,
        error: outcome.err(),
    })
}

/// All models a principal can call; a provider that cannot list is reported, not fatal.
pub async fn models_of(state: &AppState, principal: &Principal) -> ApiResult<ModelList> {
    let providers = state.store.providers_for_calls(principal).await?;
    // A user's own provider hides the gateway's of the same name.
    let mut seen = std::collections::HashSet::new();
    let chosen: Vec<_> = providers
        .into_iter()
        .rev()
        .filter(|f| seen.insert(f.info.name.clone()))
        .collect();
    let lists = futures_util::future::join_all(
        chosen
            .iter()
            .map(|f| state.models.list_models(principal, f)),
    )
    .await;
    let mut items = Vec::new();
    let mut errors = Vec::new();
    for (f, listed) in chosen.iter().zip(lists) {
        match listed {
            Ok(models) => items.extend(models.into_iter().map(|m| ModelInfo {
                id: format!("{}/{m}", f.info.name),
                provider: f.info.name.clone(),
                model: m,
            })),
            Err(e) => errors.push(e.message),
        }
    }
    items.sort_by(|a, b| a.id.cmp(&b.id));
    Ok(ModelList { items, errors })
}

/// Create or replace a route by name: `principal`'s, or (admins) the gateway's.
pub async fn set_route(
    state: &AppState,
    principal: &Principal,
    req: SetRouteRequest,
) -> ApiResult<RouteInfo> {
    // Every step must name a provider the route's users can use, so a typo fails now:
    // a gateway-wide route may only use gateway-wide providers.
    let providers = state.store.list_providers(principal).await?;
    let gateway_route = req.scope == ConfigScope::Gateway;
    let usable = |name: &str| {
        providers
            .iter()
            .any(|p| p.name == name && (!gateway_route || p.scope == ConfigScope::Gateway))
    };
    if let Some(step) = req.steps.iter().find(|s| !usable(&s.provider)) {
        let which = if gateway_route { "gateway-wide " } else { "" };
        // Well formed, but naming nothing usable: a conflict with what exists.
        return Err(ApiError::new(
            mosaic_api::ErrorCode::Conflict,
            format!("no {which}provider named '{}'", step.provider),
        ));
    }
    Ok(state
        .store
        .set_route(principal, req.scope, &req.name, &req.steps)
        .await?)
}
