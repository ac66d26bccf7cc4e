//! The gateway's side of model calls: builds callable providers from the store's
//! configuration (decrypting keys only in memory), resolves what a user asks for — a
//! route name or `provider/model` — into a route of the routing matrix, and meters the
//! tokens each call uses.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::StreamExt;
use mosaic_api::{ConfigScope, ErrorCode, ModelHealth, ProviderInfo, WireApi};
use mosaic_llm::routing::{Route, RouteEntry, RouteError, Router};
use mosaic_llm::{ChatRequest, EventStream, LlmError, Provider, StreamEvent, Usage};
use mosaic_store::{Principal, ProviderForCall, Store, StoreError};
use tracing::Instrument;

use mosaic_agent::egress::{self, AddressPolicy, Egress};
use mosaic_agent::{Fallback, ModelError};

use crate::encryption::SecretBox;
use crate::error::{ApiError, ApiResult};

/// What widens the policy of users' providers, as its refusals say.
pub const USER_POLICY_SETTINGS: &str =
    "allow_private_user_providers (or lists it in user_provider_allow_networks)";

/// Time to the first token when a `provider/model` is named directly.
pub const DIRECT_TIMEOUT: Duration = Duration::from_secs(60);

/// Providers built from configuration, and the routing matrix over them.
pub struct ModelHub {
    router: Router,
    /// For the gateway's providers, which admins configured: any address.
    http: reqwest::Client,
    /// For users' own providers (admins' excepted): checks the address of every
    /// connection against the gateway's policy at call time, whatever the provider's URL
    /// (a name that resolves elsewhere later, an IP literal, a provider made while the
    /// policy was wider).
    http_public: reqwest::Client,
    user_policy: AddressPolicy,
    secrets: SecretBox,
    /// Provider id → the `updated_at` it was built from and whether its client is the
    /// guarded one (rebuilt when either changes).
    built: Mutex<HashMap<String, (String, bool)>>,
    metrics: Arc<crate::telemetry::metrics::Metrics>,
    /// Time allowed between two events mid-answer, for route steps that set none and for
    /// `provider/model` named directly (`model_idle_timeout_secs`).
    idle_timeout: Duration,
}

/// A provider of a route as the caller knows it.
pub struct Named {
    pub name: String,
    pub kind: &'static str,
    /// Whether the caller may read what its upstream says ([`crate::upstream`]).
    pub detail: bool,
}

/// A call under way, with where it went.
pub struct Call {
    pub stream: EventStream,
    pub provider: String,
    pub model: String,
    /// The steps that failed first, named and with what the caller may read of each.
    pub fallbacks: Vec<Fallback>,
}

/// A failed call as the HTTP API answers it: the code its kind implies (a rate limit on
/// every step is a 429 of our own, with the shortest wait asked for).
impl From<ModelError> for ApiError {
    fn from(e: ModelError) -> ApiError {
        let message = e.to_string();
        match &e {
            ModelError::Route { code, .. } => ApiError::new(*code, message),
            // Already as the caller may see it.
            ModelError::Provider {
                provider,
                model,
                error,
            } => crate::upstream::api_error(&format!("{provider}/{model}"), error, true),
            ModelError::Unfinished { .. } => ApiError::new(ErrorCode::UpstreamError, message),
            ModelError::Exhausted { .. } => match e.rate_limited() {
                Some(wait) => {
                    let error = ApiError::new(ErrorCode::RateLimited, message);
                    match wait {
                        Some(wait) => error.with_retry_after(wait),
                        None => error,
                    }
                }
                None => ApiError::new(ErrorCode::Unavailable, message),
            },
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    match m.lock() {
        Ok(g) => g,
        Err(poisoned) => poisoned.into_inner(),
    }
}

impl ModelHub {
    pub fn new(
        secrets: SecretBox,
        user_policy: AddressPolicy,
        metrics: Arc<crate::telemetry::metrics::Metrics>,
        idle_timeout: Duration,
    ) -> Result<ModelHub, reqwest::Error> {
        Ok(ModelHub {
            router: Router::new(),
            http: egress::client(Egress::trusted("the gateway's providers"))?,
            http_public: egress::client(Egress::guarded(
                "users' providers",
                user_policy.clone(),
                USER_POLICY_SETTINGS,
            ))?,
            user_policy,
            secrets,
            built: Mutex::new(HashMap::new()),
            metrics,
            idle_timeout,
        })
    }

    /// What users' own providers may reach.
    pub fn user_policy(&self) -> &AddressPolicy {
        &self.user_policy
    }

    pub fn secrets(&self) -> &SecretBox {
        &self.secrets
    }

    /// Make sure the router holds an up-to-date client for this provider.
    /// A user's own provider is held to the policy for users' providers, decided now,
    /// at call time: unless its user (the only one who calls it) is an admin, who could
    /// as well configure it for the gateway.
    fn ensure_built(&self, p: &Principal, f: &ProviderForCall) -> ApiResult<()> {
        let guarded = match f.info.scope {
            ConfigScope::Gateway => false,
            ConfigScope::User => !p.is_admin(),
        };
        let version = (f.info.updated_at.clone(), guarded);
        if lock(&self.built).get(&f.info.id) == Some(&version) {
            return Ok(());
        }
        let key = match &f.api_key_enc {
            Some(sealed) => Some(self.secrets.open_secret(sealed).map_err(|e| {
                tracing::error!(provider = %f.info.name, error = %e, "cannot decrypt a provider key");
                ApiError::new(ErrorCode::Internal, format!("the key of provider '{}' cannot be decrypted", f.info.name))
            })?),
            None => None,
        };
        let http = if guarded {
            self.http_public.clone()
        } else {
            self.http.clone()
        };
        let base = f.info.base_url.as_str();
        // Every credential of this provider is kept out of what its upstream says.
        let secrets: Vec<String> = key
            .iter()
            .cloned()
            .chain(
                reqwest::Url::parse(base)
                    .ok()
                    .and_then(|u| u.password().map(str::to_string)),
            )
            .collect();
        let provider: Arc<dyn Provider> = match f.info.wire {
            WireApi::ChatCompletions => {
                Arc::new(mosaic_llm::openai_chat::OpenAiChat::new(http, base, key))
            }
            WireApi::Responses => Arc::new(mosaic_llm::openai_responses::OpenAiResponses::new(
                http, base, key,
            )),
            WireApi::AnthropicMessages => Arc::new(mosaic_llm::anthropic::AnthropicMessages::new(
                http, base, key,
            )),
        };
        let provider = Arc::new(mosaic_llm::redact::Redacting::new(provider, secrets));
        self.router.set_provider(&f.info.id, provider);
        lock(&self.built).insert(f.info.id.clone(), version);
        Ok(())
    }

    /// The callable provider for this configuration.
    pub fn built(&self, p: &Principal, f: &ProviderForCall) -> ApiResult<Arc<dyn Provider>> {
        self.ensure_built(p, f)?;
        self.router
            .provider(&f.info.id)
            .ok_or_else(ApiError::internal)
    }

    /// Forget a deleted provider.
    pub fn forget(&self, provider_id: &str) {
        self.router.remove_provider(provider_id);
        lock(&self.built).remove(provider_id);
    }

    /// The providers a principal can use, by name: their own win over the gateway's.
    async fn by_name(
        &self,
        store: &Store,
        p: &Principal,
    ) -> ApiResult<HashMap<String, ProviderForCall>> {
        let mut map = HashMap::new();
        // Gateway-wide come first, so a user's own of the same name replaces them.
        for f in store.providers_for_calls(p).await? {
            map.insert(f.info.name.clone(), f);
        }
        Ok(map)
    }

    /// Turn what a caller asked for into a route over provider ids: `provider/model`
    /// names one model directly; anything else is a route name.
    pub async fn resolve(
        &self,
        store: &Store,
        p: &Principal,
        spec: &str,
    ) -> ApiResult<(Route, HashMap<String, Named>)> {
        let providers = self.by_name(store, p).await?;
        let mut names = HashMap::new();
        let idle_timeout = self.idle_timeout;
        let mut entry = |provider: &str,
                         model: &str,
                         timeout: Duration,
                         idle: Option<Duration>|
         -> ApiResult<RouteEntry> {
            let f = providers.get(provider).ok_or_else(|| {
                ApiError::new(
                    ErrorCode::NotFound,
                    format!("no provider named '{provider}'"),
                )
            })?;
            self.ensure_built(p, f)?;
            names.insert(
                f.info.id.clone(),
                Named {
                    name: f.info.name.clone(),
                    kind: f.info.kind.as_str(),
                    detail: crate::upstream::sees_detail(p, f.info.scope),
                },
            );
            Ok(RouteEntry {
                provider: f.info.id.clone(),
                model: model.to_string(),
                timeout,
                idle_timeout: idle.unwrap_or(idle_timeout),
            })
        };
        let route = match spec.split_once('/') {
            Some((provider, model)) if providers.contains_key(provider) => Route {
                name: spec.to_string(),
                entries: vec![entry(provider, model, DIRECT_TIMEOUT, None)?],
            },
            _ => {
                let info = match store.resolve_route(p, spec).await {
                    Ok(r) => r,
                    Err(StoreError::NotFound) => {
                        return Err(ApiError::new(
                            ErrorCode::NotFound,
                            format!("no route or provider/model named '{spec}'"),
                        ))
                    }
                    Err(e) => return Err(e.into()),
                };
                let entries = info
                    .steps
                    .iter()
                    .map(|s| {
                        entry(
                            &s.provider,
                            &s.model,
                            Duration::from_millis(s.timeout_ms),
                            s.idle_timeout_ms.map(Duration::from_millis),
                        )
                    })
                    .collect::<ApiResult<Vec<_>>>()?;
                Route {
                    name: info.name,
                    entries,
                }
            }
        };
        Ok((route, names))
    }

    /// Call a route or `provider/model` for a principal; tokens are metered to them.
    pub async fn call(
        &self,
        store: &Store,
        p: &Principal,
        spec: &str,
        request: ChatRequest,
    ) -> Result<Call, ModelError> {
        let (route, names) = self
            .resolve(store, p, spec)
            .await
            .map_err(|e| ModelError::Route {
                code: e.code,
                message: e.message,
            })?;
        let name_of = |id: &str| {
            names
                .get(id)
                .map(|n| n.name.clone())
                .unwrap_or_else(|| id.to_string())
        };
        let kind_of = |id: &str| names.get(id).map(|n| n.kind).unwrap_or("unknown");
        // Unknown ids cannot happen (every entry was named); hide when unsure.
        let detail_of = |id: &str| names.get(id).is_some_and(|n| n.detail);
        // One span for the call, from the request to the stream's end (GenAI semantic
        // conventions); the provider request is made inside it, so it carries its
        // `traceparent`.
        let first = route.entries.first();
        let span = tracing::info_span!(
            "gen_ai.chat",
            otel.name = %format!("chat {}", first.map(|e| e.model.as_str()).unwrap_or_default()),
            otel.kind = "client",
            otel.status_code = tracing::field::Empty,
            gen_ai.operation.name = "chat",
            gen_ai.system = first.map(|e| kind_of(&e.provider)).unwrap_or("unknown"),
            gen_ai.request.model = first.map(|e| e.model.as_str()).unwrap_or_default(),
            gen_ai.request.max_tokens = request.max_tokens.map(i64::from),
            mosaic.route = %route.name,
            mosaic.provider = tracing::field::Empty,
            mosaic.fallbacks = tracing::field::Empty,
            gen_ai.response.model = tracing::field::Empty,
            gen_ai.usage.input_tokens = tracing::field::Empty,
            gen_ai.usage.output_tokens = tracing::field::Empty,
            gen_ai.response.finish_reasons = tracing::field::Empty,
        );
        // Named, and with only what this caller may read of each failure.
        let named = |fallbacks: Vec<mosaic_llm::routing::Fallback>| -> Vec<Fallback> {
            fallbacks
                .into_iter()
                .map(|f| {
                    let error = match f.failure {
                        Some(failure) => crate::upstream::shown(&failure, detail_of(&f.provider)),
                        None => LlmError::Provider(if detail_of(&f.provider) {
                            f.error
                        } else {
                            f.hidden
                        }),
                    };
                    Fallback {
                        step: f.step,
                        provider: name_of(&f.provider),
                        model: f.model,
                        error,
                    }
                })
                .collect()
        };
        let routed = self
            .router
            .stream(&route, request)
            .instrument(span.clone())
            .await;
        match routed {
            Ok(routed) => {
                let provider = name_of(&routed.provider);
                for f in &routed.fallbacks {
                    self.metrics.fallback(&name_of(&f.provider), &f.model);
                }
                span.record("gen_ai.system", kind_of(&routed.provider));
                span.record("gen_ai.response.model", routed.model.as_str());
                span.record("mosaic.provider", provider.as_str());
                span.record("mosaic.fallbacks", routed.fallbacks.len());
                let stream = metered(
                    routed.stream,
                    Meter {
                        seen: Mutex::new(Usage::default()),
                        stop: Mutex::new(None),
                        recorded: std::sync::atomic::AtomicBool::new(false),
                        store: store.clone(),
                        p: p.clone(),
                        provider: provider.clone(),
                        model: routed.model.clone(),
                        metrics: self.metrics.clone(),
                        span,
                    },
                    detail_of(&routed.provider),
                );
                Ok(Call {
                    stream,
                    provider,
                    model: routed.model,
                    fallbacks: named(routed.fallbacks),
                })
            }
            Err(RouteError::Final {
                provider,
                model,
                error,
                ..
            }) => {
                span.record("otel.status_code", "ERROR");
                let name = name_of(&provider);
                self.metrics.model_call(&name, &model, "error", 0, 0);
                // Redacted already; the log is where admins find what users were not shown.
                tracing::warn!(call = %format!("{name}/{model}"), %error, "model call failed");
                Err(ModelError::Provider {
                    error: crate::upstream::shown(&error, detail_of(&provider)),
                    provider: name,
                    model,
                })
            }
            Err(RouteError::Exhausted(fallbacks)) => {
                span.record("otel.status_code", "ERROR");
                for f in &fallbacks {
                    self.metrics
                        .model_call(&name_of(&f.provider), &f.model, "error", 0, 0);
                }
                Err(ModelError::Exhausted {
                    route: route.name.clone(),
                    fallbacks: named(fallbacks),
                })
            }
            Err(e @ (RouteError::Empty(_) | RouteError::UnknownProvider(_))) => {
                Err(ModelError::Route {
                    code: ErrorCode::BadRequest,
                    message: e.to_string(),
                })
            }
        }
    }

    /// Health of the `provider/model` pairs this principal can see.
    pub async fn health(&self, store: &Store, p: &Principal) -> ApiResult<Vec<ModelHealth>> {
        let visible: HashMap<String, ProviderInfo> = store
            .list_providers(p)
            .await?
            .into_iter()
            .map(|i| (i.id.clone(), i))
            .collect();
        Ok(self
            .router
            .health()
            .into_iter()
            .filter_map(|h| {
                let info = visible.get(&h.provider)?;
                let detail = crate::upstream::sees_detail(p, info.scope);
                Some(ModelHealth {
                    provider: info.name.clone(),
                    model: h.model,
                    healthy: h.healthy,
                    consecutive_failures: h.consecutive_failures,
                    cooldown_remaining_secs: h.cooldown_remaining_secs,
                    last_error: h
                        .last_failure
                        .map(|e| crate::upstream::shown(&e, detail).to_string()),
                })
            })
            .collect())
    }

    /// The models one provider offers, or why not as `p` may read it.
    pub async fn list_models(&self, p: &Principal, f: &ProviderForCall) -> ApiResult<Vec<String>> {
        let provider = self.built(p, f)?;
        provider.list_models().await.map_err(|e| {
            tracing::warn!(provider = %f.info.name, error = %e, "listing models failed");
            crate::upstream::api_error(
                &f.info.name,
                &e,
                crate::upstream::sees_detail(p, f.info.scope),
            )
        })
    }
}

/// Count a call's tokens for the principal: recorded before `Done` is passed on (so a
/// usage report right after an answer includes it), or when the caller drops the
/// stream early.
/// Errors mid-stream are passed on as the caller may see them (`detail`).
fn metered(stream: EventStream, meter: Meter, detail: bool) -> EventStream {
    let meter = Arc::new(meter);
    let guard = MeterOnDrop(meter.clone());
    Box::pin(stream.then(move |event| {
        let meter = meter.clone();
        let _ = &guard;
        async move {
            match &event {
                Ok(StreamEvent::Usage { usage }) => lock(&meter.seen).merge(*usage),
                Ok(StreamEvent::Done { stop_reason }) => {
                    *lock(&meter.stop) = Some(*stop_reason);
                    meter.record().await
                }
                Err(e) => {
                    *lock(&meter.stop) = Some(mosaic_llm::StopReason::Error);
                    meter.span.record("otel.status_code", "ERROR");
                    tracing::warn!(provider = %meter.provider, error = %e, "model stream failed");
                    return Err(crate::upstream::shown(e, detail));
                }
                _ => {}
            }
            event
        }
    }))
}

struct Meter {
    seen: Mutex<Usage>,
    /// How the answer ended; `None` when the stream stopped early.
    stop: Mutex<Option<mosaic_llm::StopReason>>,
    recorded: std::sync::atomic::AtomicBool,
    store: Store,
    p: Principal,
    provider: String,
    model: String,
    metrics: Arc<crate::telemetry::metrics::Metrics>,
    /// The call's span: it ends when the meter is dropped with the stream.
    span: tracing::Span,
}

impl Meter {
    async fn record(&self) {
        if self
            .recorded
            .swap(true, std::sync::atomic::Ordering::SeqCst)
        {
            return;
        }
        let usage = *lock(&self.seen);
        let stop = *lock(&self.stop);
        let outcome = match stop {
            Some(mosaic_llm::StopReason::Error) => "error",
            Some(_) => "ok",
            None => "aborted",
        };
        self.metrics.model_call(
            &self.provider,
            &self.model,
            outcome,
            usage.input_tokens,
            usage.output_tokens,
        );
        self.span
            .record("gen_ai.usage.input_tokens", usage.input_tokens);
        self.span
            .record("gen_ai.usage.output_tokens", usage.output_tokens);
        if let Some(stop) = stop {
            let reason = serde_json::to_value(stop)
                .ok()
                .and_then(|v| v.as_str().map(str::to_string))
                .unwrap_or_default();
            self.span
                .record("gen_ai.response.finish_reasons", format!("[\"{reason}\"]"));
        }
        if let Err(e) = self
            .store
            .record_usage(
                &self.p,
                &self.provider,
                &self.model,
                usage.input_tokens,
                usage.output_tokens,
                usage.cached_tokens,
            )
            .await
        {
            tracing::warn!(error = %e, "could not record token usage");
        }
    }
}

/// Records what was used when a stream is dropped before its end.
struct MeterOnDrop(Arc<Meter>);

impl Drop for MeterOnDrop {
    fn drop(&mut self) {
        if self.0.recorded.load(std::sync::atomic::Ordering::SeqCst) {
            return;
        }
        let meter = self.0.clone();
        if let Ok(handle) = tokio::runtime::Handle::try_current() {
            handle.spawn(async move { meter.record().await });
        }
    }
}

/// The runtime's way to models: the hub, for the run's user.
pub struct RunModels {
    hub: Arc<ModelHub>,
    store: Store,
}

impl RunModels {
    pub fn new(hub: Arc<ModelHub>, store: Store) -> RunModels {
        RunModels { hub, store }
    }
}

impl mosaic_agent::Models for RunModels {
    fn call<'a>(
        &'a self,
        principal: &'a Principal,
        route: &'a str,
        request: ChatRequest,
    ) -> mosaic_llm::BoxFuture<'a, Result<mosaic_agent::ModelStream, ModelError>> {
        Box::pin(async move {
            let call = self
                .hub
                .call(&self.store, principal, route, request)
                .await?;
            Ok(mosaic_agent::ModelStream {
                stream: call.stream,
                provider: call.provider,
                model: call.model,
                fallbacks: call.fallbacks,
            })
        })
    }
}
