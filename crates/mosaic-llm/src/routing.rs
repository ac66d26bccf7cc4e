//! The routing matrix: a route is an ordered list of `provider/model` entries, each
//! with a timeout. A call goes to the first healthy entry; a retryable failure before
//! the first event (connect error, 429, 5xx, timeout) falls through to the next entry,
//! and every fall-through is recorded. Once an entry answers, each further event must
//! come within its idle timeout, or the stream ends with [`LlmError::Stalled`]: a model
//! that falls silent mid-answer would otherwise hold its caller (a run, a session, an
//! HTTP client) for as long as the connection stays open. A failing entry cools down (longer each time it
//! fails again, or as long as the provider's `Retry-After` asks) and is tried again when
//! its cool-down ends; when every entry is cooling, the one that recovers first is
//! probed rather than failing outright.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use serde::{Deserialize, Serialize};

use crate::{ChatRequest, EventStream, LlmError, Provider};

/// One step of a route.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RouteEntry {
    pub provider: String,
    pub model: String,
    /// Time allowed until the first event arrives.
    pub timeout: Duration,
    /// Time allowed between two events once the answer has begun.
    pub idle_timeout: Duration,
}

/// A named, ordered list of entries.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Route {
    pub name: String,
    pub entries: Vec<RouteEntry>,
}

/// One entry that was tried and failed, and why.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Fallback {
    /// The entry's place in the route, from 0.
    #[serde(skip)]
    pub step: usize,
    pub provider: String,
    pub model: String,
    pub error: String,
    /// The error without the upstream's words ([`LlmError::hidden`]), for callers who
    /// may not see them.
    #[serde(skip)]
    pub hidden: String,
    /// The failure itself, for what its kind decides (a rate limit and its wait).
    #[serde(skip)]
    pub failure: Option<LlmError>,
}

/// A call under way: the events, which entry answered, and what failed before it.
pub struct Routed {
    pub stream: EventStream,
    pub provider: String,
    pub model: String,
    pub fallbacks: Vec<Fallback>,
}

/// Why no entry of a route answered.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum RouteError {
    #[error("route '{0}' has no entries")]
    Empty(String),
    #[error("unknown provider '{0}'")]
    UnknownProvider(String),
    /// A failure another model would not fix (a bad request): returned as is.
    #[error("{provider}/{model}: {error}")]
    Final {
        provider: String,
        model: String,
        error: LlmError,
        fallbacks: Vec<Fallback>,
    },
    /// Every entry failed with a retryable error.
    #[error("every model of the route failed: {}", describe(.0))]
    Exhausted(Vec<Fallback>),
}

fn describe(fallbacks: &[Fallback]) -> String {
    fallbacks
        .iter()
        .map(|f| format!("{}/{}: {}", f.provider, f.model, f.error))
        .collect::<Vec<_>>()
        .join("; ")
}

/// Cool-down after the first failure; doubles with each further failure.
const BASE_COOLDOWN: Duration = Duration::from_secs(10);
const MAX_COOLDOWN: Duration = Duration::from_secs(300);
/// The longest `Retry-After` honoured.
const MAX_RETRY_AFTER: Duration = Duration::from_secs(3600);

#[derive(Debug, Clone, Default)]
struct Health {
    consecutive_failures: u32,
    cooling_until: Option<Instant>,
    last_error: Option<LlmError>,
}

/// The health of one `provider/model`, as the API shows it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EntryHealth {
    pub provider: String,
    pub model: String,
    pub healthy: bool,
    pub consecutive_failures: u32,
    /// Seconds until it is tried again, while cooling down.
    pub cooldown_remaining_secs: Option<u64>,
    pub last_error: Option<String>,
    /// The last failure itself, for callers that show it differently to different
    /// people ([`LlmError::hidden`]).
    #[serde(skip)]
    pub last_failure: Option<LlmError>,
}

/// Providers by name, and the health of every `provider/model` they served.
#[derive(Clone)]
pub struct Router {
    providers: Arc<Mutex<HashMap<String, Arc<dyn Provider>>>>,
    health: Arc<Mutex<HashMap<(String, String), Health>>>,
    base_cooldown: Duration,
    max_cooldown: Duration,
}

impl Default for Router {
    fn default() -> Self {
        Router::with_cooldown(BASE_COOLDOWN, MAX_COOLDOWN)
    }
}

impl Router {
    pub fn new() -> Self {
        Router::default()
    }

    /// A router whose failing entries cool down for `base`, doubling per further
    /// failure up to `max`.
    pub fn with_cooldown(base: Duration, max: Duration) -> Self {
        Router {
            providers: Arc::default(),
            health: Arc::default(),
            base_cooldown: base,
            max_cooldown: max,
        }
    }

    /// Add or replace a provider.
    pub fn set_provider(&self, name: &str, provider: Arc<dyn Provider>) {
        lock(&self.providers).insert(name.to_string(), provider);
    }

    pub fn remove_provider(&self, name: &str) {
        lock(&self.providers).remove(name);
        lock(&self.health).retain(|(p, _), _| p != name);
    }

    pub fn provider(&self, name: &str) -> Option<Arc<dyn Provider>> {
        lock(&self.providers).get(name).cloned()
    }

    /// Health of every `provider/model` that has been called.
    pub fn health(&self) -> Vec<EntryHealth> {
        let now = Instant::now();
        let mut out: Vec<EntryHealth> = lock(&self.health)
            .iter()
            .map(|((provider, model), h)| {
                let remaining = h.cooling_until.and_then(|t| t.checked_duration_since(now));
                EntryHealth {
                    provider: provider.clone(),
                    model: model.clone(),
                    healthy: remaining.is_none(),
                    consecutive_failures: h.consecutive_failures,
                    cooldown_remaining_secs: remaining.map(|d| d.as_secs().max(1)),
                    last_error: h.last_error.as_ref().map(LlmError::to_string),
                    last_failure: h.last_error.clone(),
                }
            })
            .collect();
        out.sort_by(|a, b| (&a.provider, &a.model).cmp(&(&b.provider, &b.model)));
        out
    }

    fn cooling_until(&self, entry: &RouteEntry) -> Option<Instant> {
        let key = (entry.provider.clone(), entry.model.clone());
        lock(&self.health)
            .get(&key)
            .and_then(|h| h.cooling_until)
            .filter(|t| *t > Instant::now())
    }

    fn record_failure(&self, entry: &RouteEntry, error: &LlmError) {
        let mut health = lock(&self.health);
        let h = health
            .entry((entry.provider.clone(), entry.model.clone()))
            .or_default();
        h.consecutive_failures += 1;
        let doubling = self
            .base_cooldown
            .saturating_mul(1 << (h.consecutive_failures - 1).min(5));
        let asked = match error {
            LlmError::Http { retry_after, .. } => retry_after.unwrap_or_default(),
            _ => Duration::ZERO,
        };
        // A provider's own Retry-After wins over our schedule (within reason).
        let cooldown = doubling
            .min(self.max_cooldown)
            .max(asked.min(MAX_RETRY_AFTER));
        h.cooling_until = Some(Instant::now() + cooldown);
        h.last_error = Some(error.clone());
    }

    fn record_success(&self, entry: &RouteEntry) {
        let mut health = lock(&self.health);
        let h = health
            .entry((entry.provider.clone(), entry.model.clone()))
            .or_default();
        h.consecutive_failures = 0;
        h.cooling_until = None;
    }

    /// The order to try a route's entries in: healthy ones as listed; if none is
    /// healthy, the one whose cool-down ends first (a probe).
    /// Each with its place in the route.
    fn plan<'r>(&self, route: &'r Route) -> Vec<(usize, &'r RouteEntry)> {
        let healthy: Vec<(usize, &RouteEntry)> = route
            .entries
            .iter()
            .enumerate()
            .filter(|(_, e)| self.cooling_until(e).is_none())
            .collect();
        if !healthy.is_empty() {
            return healthy;
        }
        route
            .entries
            .iter()
            .enumerate()
            .min_by_key(|(_, e)| self.cooling_until(e))
            .into_iter()
            .collect()
    }

    /// Call the route: the first entry that starts answering wins.
    pub async fn stream(&self, route: &Route, request: ChatRequest) -> Result<Routed, RouteError> {
        if route.entries.is_empty() {
            return Err(RouteError::Empty(route.name.clone()));
        }
        let mut fallbacks = Vec::new();
        for (step, entry) in self.plan(route) {
            let provider = self
                .provider(&entry.provider)
                .ok_or_else(|| RouteError::UnknownProvider(entry.provider.clone()))?;
            let request = ChatRequest {
                model: entry.model.clone(),
                ..request.clone()
            };
            match first_event(provider.as_ref(), request, entry.timeout).await {
                Ok(stream) => {
                    self.record_success(entry);
                    let stream = idle_limited(stream, entry.idle_timeout);
                    if !fallbacks.is_empty() {
                        tracing::info!(route = %route.name, provider = %entry.provider,
                            model = %entry.model, fell_back = fallbacks.len(), "route fell back");
                    }
                    return Ok(Routed {
                        stream,
                        provider: entry.provider.clone(),
                        model: entry.model.clone(),
                        fallbacks,
                    });
                }
                Err(error) if error.is_retryable() => {
                    tracing::warn!(route = %route.name, provider = %entry.provider,
                        model = %entry.model, %error, "model failed before its first token; falling back");
                    self.record_failure(entry, &error);
                    fallbacks.push(Fallback {
                        step,
                        provider: entry.provider.clone(),
                        model: entry.model.clone(),
                        error: error.to_string(),
                        hidden: error.hidden().to_string(),
                        failure: Some(error),
                    });
                }
                Err(error) => {
                    return Err(RouteError::Final {
                        provider: entry.provider.clone(),
                        model: entry.model.clone(),
                        error,
                        fallbacks,
                    })
                }
            }
        }
        Err(RouteError::Exhausted(fallbacks))
    }
}

/// Start a call and wait for its first event, all within `timeout`. A stream whose
/// first item is an error fails here, where falling back is still possible.
pub async fn first_event(
    provider: &dyn Provider,
    request: ChatRequest,
    timeout: Duration,
) -> Result<EventStream, LlmError> {
    let started = async {
        let mut stream = provider.stream(request).await?;
        match stream.next().await {
            Some(Ok(first)) => {
                let head = futures_util::stream::iter([Ok(first)]);
                Ok(Box::pin(head.chain(stream)) as EventStream)
            }
            Some(Err(e)) => Err(e),
            None => Err(LlmError::Protocol(
                "the provider sent an empty stream".into(),
            )),
        }
    };
    match tokio::time::timeout(timeout, started).await {
        Ok(result) => result,
        Err(_) => Err(LlmError::Timeout(timeout)),
    }
}

/// `stream`, ended with [`LlmError::Stalled`] when its next event takes longer than
/// `idle`. The clock runs only while the caller waits for an event, so a slow reader is
/// never taken for a silent model; dropping the inner stream on a stall aborts the call.
pub fn idle_limited(stream: EventStream, idle: Duration) -> EventStream {
    Box::pin(futures_util::stream::unfold(
        Some(stream),
        move |state| async move {
            let mut stream = state?;
            match tokio::time::timeout(idle, stream.next()).await {
                Ok(Some(item)) => Some((item, Some(stream))),
                Ok(None) => None,
                Err(_) => Some((Err(LlmError::Stalled(idle)), None)),
            }
        },
    ))
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    match m.lock() {
        Ok(g) => g,
        Err(poisoned) => poisoned.into_inner(),
    }
}
