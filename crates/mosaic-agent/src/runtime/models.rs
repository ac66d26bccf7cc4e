//! The runtime's boundary with models: what a call returns, and why one failed, as
//! data. The gateway resolves routes, meters tokens and falls back along the routing
//! matrix; the runtime decides from these types what a run records and tells its
//! subscribers, and only renders them as text where they leave it (an event, a run's
//! error).

use std::fmt;
use std::time::Duration;

use mosaic_api::ErrorCode;
use mosaic_llm::{BoxFuture, ChatRequest, EventStream, LlmError};
use mosaic_store::Principal;

/// A model call under way, and who answers it.
pub struct ModelStream {
    pub stream: EventStream,
    pub provider: String,
    pub model: String,
    /// Route steps tried first that failed, in the order they were tried.
    pub fallbacks: Vec<Fallback>,
}

/// One step of a route that failed before the first token, so the next was tried.
#[derive(Debug, Clone, PartialEq)]
pub struct Fallback {
    /// Its place in the route, from 0.
    pub step: usize,
    /// The provider's name, as the run's user knows it.
    pub provider: String,
    pub model: String,
    /// The failure as the run's user may see it (without the upstream's words when the
    /// provider is an admin's and the user is not).
    pub error: LlmError,
}

/// As events and errors show it: `provider/model: why`.
impl fmt::Display for Fallback {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}: {}", self.provider, self.model, self.error)
    }
}

/// Why a run got no answer (or no whole answer) from a model.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ModelError {
    /// What the run names resolves to no model it may call: no route or provider of
    /// that name, a route without steps, a provider that cannot be built.
    #[error("{message}")]
    Route { code: ErrorCode, message: String },
    /// The model called failed: before its first token with a failure another model
    /// would not fix (a bad request, a refused key), or mid-answer. The provider's
    /// error as the run's user may see it.
    #[error("{provider}/{model}: {error}")]
    Provider {
        provider: String,
        model: String,
        error: LlmError,
    },
    /// The model's stream ended without saying the answer was complete.
    #[error("{provider}/{model}: the answer ended without finishing")]
    Unfinished { provider: String, model: String },
    /// No step of the route answered: each one failed with a failure worth trying
    /// elsewhere, or was cooling down from one.
    #[error("{}", exhausted(.route, .fallbacks))]
    Exhausted {
        route: String,
        fallbacks: Vec<Fallback>,
    },
}

impl ModelError {
    /// When every step of an exhausted route refused for its rate limit: `Some`, with
    /// the shortest wait any of them asked for (`None` inside when none said).
    pub fn rate_limited(&self) -> Option<Option<Duration>> {
        let fallbacks = match self {
            ModelError::Exhausted { fallbacks, .. } => fallbacks,
            ModelError::Provider { error, .. } if error.is_rate_limit() => {
                return Some(error.retry_after())
            }
            ModelError::Route { .. }
            | ModelError::Provider { .. }
            | ModelError::Unfinished { .. } => return None,
        };
        let limited = !fallbacks.is_empty() && fallbacks.iter().all(|f| f.error.is_rate_limit());
        limited.then(|| fallbacks.iter().filter_map(|f| f.error.retry_after()).min())
    }
}

fn exhausted(route: &str, fallbacks: &[Fallback]) -> String {
    let why = fallbacks
        .iter()
        .map(Fallback::to_string)
        .collect::<Vec<_>>()
        .join("; ");
    let limited = !fallbacks.is_empty() && fallbacks.iter().all(|f| f.error.is_rate_limit());
    if limited {
        format!("every model of '{route}' is rate-limited: {why}")
    } else {
        format!("no model of '{route}' answered: {why}")
    }
}

/// How runs reach models: the gateway resolves a route or `provider/model` for the
/// user, meters tokens and falls back along the routing matrix.
pub trait Models: Send + Sync + 'static {
    fn call<'a>(
        &'a self,
        principal: &'a Principal,
        route: &'a str,
        request: ChatRequest,
    ) -> BoxFuture<'a, Result<ModelStream, ModelError>>;
}

#[cfg(test)]
mod tests {
    use super::*;
    use pretty_assertions::assert_eq;

    fn step(step: usize, status: u16, retry_after: Option<u64>) -> Fallback {
        Fallback {
            step,
            provider: format!("p{step}"),
            model: "m".into(),
            error: LlmError::Http {
                status,
                message: "no".into(),
                retry_after: retry_after.map(Duration::from_secs),
            },
        }
    }

    #[test]
    fn a_route_of_rate_limits_is_told_from_one_with_a_refused_key() {
        let limited = ModelError::Exhausted {
            route: "fast".into(),
            fallbacks: vec![step(0, 429, Some(30)), step(1, 429, Some(7))],
        };
        assert_eq!(limited.rate_limited(), Some(Some(Duration::from_secs(7))));
        assert_eq!(
            limited.to_string(),
            "every model of 'fast' is rate-limited: p0/m: the provider answered 429: no; \
             p1/m: the provider answered 429: no"
        );
        let mixed = ModelError::Exhausted {
            route: "fast".into(),
            fallbacks: vec![step(0, 429, None), step(1, 503, None)],
        };
        assert_eq!(mixed.rate_limited(), None);
        assert!(mixed
            .to_string()
            .starts_with("no model of 'fast' answered: "));
        let refused = ModelError::Provider {
            provider: "p0".into(),
            model: "m".into(),
            error: step(0, 401, None).error,
        };
        assert_eq!(refused.rate_limited(), None);
        assert_eq!(refused.to_string(), "p0/m: the provider answered 401: no");
    }
}
