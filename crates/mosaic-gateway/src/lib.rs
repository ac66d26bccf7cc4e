//! The Mosaic gateway: the axum server that turns HTTP requests into principal-scoped
//! operations of the core. It owns authentication, the routes (each described for the
//! OpenAPI document, from which the router itself is built), error shaping and the
//! server's life cycle.

pub mod accounts;
pub mod auth;
pub mod catalog;
pub mod config;
pub mod credentials;
pub mod datalock;
pub mod encryption;
pub mod error;
pub mod extract;
pub mod limits;
pub mod listener;
pub mod models;
pub mod openapi;
pub mod ratelimit;
pub mod revocation;
pub mod routes;
pub mod server;
pub mod telemetry;
pub mod upstream;

use std::ops::Deref;
use std::sync::Arc;
use std::time::Duration;

pub use config::{Config, ConfigError, LogFormat};
pub use server::{issue_bootstrap_offline, open_store, serve, ServeError, Server};

/// How long a bootstrap token stays valid.
pub const BOOTSTRAP_TTL: Duration = Duration::from_secs(24 * 3600);

/// What every handler can reach.
#[derive(Clone)]
pub struct AppState(Arc<StateInner>);

pub struct StateInner {
    pub store: mosaic_store::Store,
    pub config: Config,
    pub models: Arc<models::ModelHub>,
    pub metrics: Arc<telemetry::metrics::Metrics>,
    pub runtime: mosaic_agent::Runtime,
    /// Computes embeddings for vector search, when an embedding model is configured.
    pub embedder: Option<Arc<mosaic_agent::embedder::Embedder>>,
    pub login_ip_limiter: ratelimit::RateLimiter,
    pub login_user_limiter: ratelimit::RateLimiter,
    pub bootstrap_limiter: ratelimit::RateLimiter,
    /// Open streams by credential, ended when it is revoked.
    pub revocations: Arc<revocation::Revocations>,
    /// What the start-up check found of the database (readiness reflects it).
    pub integrity: std::sync::Mutex<routes::health::Integrity>,
}

/// A std mutex's guard, poisoned or not.
pub(crate) fn lock<T>(m: &std::sync::Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    match m.lock() {
        Ok(g) => g,
        Err(poisoned) => poisoned.into_inner(),
    }
}

impl Deref for AppState {
    type Target = StateInner;
    fn deref(&self) -> &StateInner {
        &self.0
    }
}

impl AppState {
    /// The state of a gateway; fails when the configuration does not validate or no
    /// outbound HTTP client can be built (there is no unguarded fallback).
    pub fn new(
        store: mosaic_store::Store,
        config: Config,
        secrets: encryption::SecretBox,
    ) -> Result<Self, server::ServeError> {
        let minute = Duration::from_secs(60);
        let metrics = Arc::new(telemetry::metrics::Metrics::default());
        let models = Arc::new(models::ModelHub::new(
            secrets,
            config.user_provider_policy()?,
            metrics.clone(),
            Duration::from_secs(config.model_idle_timeout_secs),
        )?);
        let embedder = config
            .embedder_config()
            .ok()
            .flatten()
            .map(|c| mosaic_agent::embedder::Embedder::new(store.clone(), &c).map(Arc::new))
            .transpose()?;
        let runtime = mosaic_agent::Runtime::new(
            store.clone(),
            Arc::new(models::RunModels::new(models.clone(), store.clone())),
            mosaic_agent::tools::Registry::builtin(config.fetch_config().unwrap_or_default())
                .with_brain(store.clone(), embedder.clone()),
            mosaic_agent::RuntimeConfig {
                max_model_calls: config.run_max_model_calls,
                token_budget: config.run_token_budget,
                context_window: config.context_window,
                ..mosaic_agent::RuntimeConfig::default()
            },
        );
        let revocations = Arc::new(revocation::Revocations::default());
        {
            // Revocations end open streams, and a disabled or deleted user's runs.
            let revocations = revocations.clone();
            let runtime = runtime.clone();
            store.on_revoke(Arc::new(move |what| {
                revocations.revoke(what);
                if let mosaic_store::Revoked::User { user_id } = what {
                    runtime.interrupt_user(user_id);
                }
            }));
        }
        Ok(AppState(Arc::new(StateInner {
            store,
            config,
            models,
            metrics,
            runtime,
            embedder,
            login_ip_limiter: ratelimit::RateLimiter::new(60, minute),
            login_user_limiter: ratelimit::RateLimiter::new(10, minute),
            bootstrap_limiter: ratelimit::RateLimiter::new(10, minute),
            revocations,
            integrity: std::sync::Mutex::new(routes::health::Integrity::Checking),
        })))
    }
}
