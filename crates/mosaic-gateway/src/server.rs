//! The server's life cycle: open the store, print the bootstrap token when there is
//! no admin, serve until SIGINT or SIGTERM, then drain and close.

use std::net::SocketAddr;
use std::time::Duration;

use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::Router;
use mosaic_api::ErrorCode;
use mosaic_store::{Store, StoreOptions};
use tower_http::catch_panic::CatchPanicLayer;

use crate::error::ApiError;
use crate::listener::{ConnLimits, ListenerSpec, Transport};
use crate::{AppState, Config, ConfigError};

/// Why the server could not start or stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error("cannot create data directory {path}: {source}")]
    DataDir {
        path: std::path::PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot open the database: {0}")]
    Store(#[from] mosaic_store::StoreError),
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },
    #[error("server error: {0}")]
    Io(#[from] std::io::Error),
    #[error(transparent)]
    Secrets(#[from] crate::encryption::SecretBoxError),
    #[error(transparent)]
    Locked(#[from] crate::datalock::LockError),
    #[error("cannot build the outbound HTTP client: {0}")]
    Egress(#[from] reqwest::Error),
}

/// Open (creating when needed) the store the configuration names.
pub async fn open_store(config: &Config) -> Result<Store, ServeError> {
    let url = config.database_url()?;
    if config.database_url.is_none() {
        let dir = config.data_dir()?;
        std::fs::create_dir_all(&dir).map_err(|source| ServeError::DataDir {
            path: dir.clone(),
            source,
        })?;
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            // The data directory holds credentials' hashes and, later, keys.
            let _ = std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700));
        }
    }
    let mut options = StoreOptions::new(url);
    options.max_connections = config.max_db_connections;
    Ok(Store::open(&options).await?)
}

/// `mosaic admin bootstrap`: issue a fresh bootstrap token straight into the store, for
/// a gateway that is stopped or whose start-up output was lost.
pub async fn issue_bootstrap_offline(config: &Config) -> Result<Option<String>, ServeError> {
    let store = open_store(config).await?;
    let offline = mosaic_store::BootstrapSource::Offline;
    let token = crate::accounts::issue_bootstrap_token(&store, offline).await?;
    store.close().await;
    Ok(token)
}

/// The full HTTP application: API routes, JSON fallbacks, limits and panic safety.
pub fn app(state: AppState) -> Router {
    let api = crate::openapi::router();
    let body_limit = state.config.body_limit_bytes;
    api.merge(crate::routes::metrics::router())
        .fallback(|| async { ApiError::new(ErrorCode::NotFound, "no such route") })
        .method_not_allowed_fallback(|| async {
            ApiError::new(
                ErrorCode::MethodNotAllowed,
                "method not allowed on this route",
            )
        })
        .layer(axum::extract::DefaultBodyLimit::max(body_limit))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            crate::limits::request_limits,
        ))
        .layer(CatchPanicLayer::custom(
            |_panic: Box<dyn std::any::Any + Send>| {
                tracing::error!("a request handler panicked");
                (StatusCode::INTERNAL_SERVER_ERROR, ApiError::internal()).into_response()
            },
        ))
        // Outermost, after the fallbacks: 404s, 405s and panics are traced and counted too.
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            crate::telemetry::http::trace_request,
        ))
        .with_state(state)
}

/// How long a session nobody follows and nothing runs in keeps its live events in
/// memory. A client that reconnects later is told to resync (and given the session's
/// state) instead of replayed; a minute covers a dropped connection or a reload, and
/// keeps what thousands of idle sessions hold near nothing (`mosaic-bench soak`).
const IDLE_SESSION: Duration = Duration::from_secs(60);

/// The name of the API listener (the one `listen` configures).
pub const API_LISTENER: &str = "api";

/// A started gateway: where it listens, and how to stop it.
pub struct Server {
    /// Where the API listener listens.
    pub local_addr: SocketAddr,
    pub store: Store,
    runtime: mosaic_agent::Runtime,
    shutdown: tokio_util::sync::CancellationToken,
    listeners: Vec<Running>,
    /// Held while the gateway runs: no second gateway opens the same SQLite file.
    _lock: Option<crate::datalock::DataLock>,
}

/// A listener that is serving.
struct Running {
    name: &'static str,
    local_addr: SocketAddr,
    task: tokio::task::JoinHandle<()>,
}

impl Server {
    /// Open the store and start listening; returns once the socket is bound. When the
    /// gateway has no admin yet, prints a bootstrap token naming the bound address.
    pub async fn start(config: Config) -> Result<Server, ServeError> {
        Self::start_with(config, Vec::new()).await
    }

    /// As [`Server::start`], with more listeners beside the API one, bound before the
    /// store opens and stopped with it.
    pub async fn start_with(config: Config, more: Vec<ListenerSpec>) -> Result<Server, ServeError> {
        config.validate()?;
        let file_limit = crate::listener::raise_file_limit();
        let max_connections = config
            .max_connections
            .unwrap_or_else(|| crate::listener::auto_max_connections(file_limit));
        let api = ListenerSpec {
            name: API_LISTENER,
            addr: config.listen,
            transport: Transport::Plain,
            limits: ConnLimits {
                max_connections,
                header_timeout: Duration::from_secs(config.header_timeout_secs),
            },
            app: Box::new(|state| app(state.clone())),
        };
        // The ports first: a start that cannot listen must not create a database.
        let bound = std::iter::once(api)
            .chain(more)
            .map(|spec| {
                let addr = spec.addr;
                spec.bind()
                    .map_err(|source| ServeError::Bind { addr, source })
            })
            .collect::<Result<Vec<_>, _>>()?;
        let local_addr = bound.first().map(|l| l.local_addr).unwrap_or(config.listen);
        let lock = crate::datalock::DataLock::take(&config)?;
        let store = open_store(&config).await?;
        if let Err(e) = store.purge_expired().await {
            tracing::warn!(error = %e, "could not purge expired sessions");
        }
        let startup = mosaic_store::BootstrapSource::Startup;
        if let Some(token) = crate::accounts::issue_bootstrap_token(&store, startup).await? {
            announce_bootstrap(&token, local_addr);
        }
        let secrets = crate::encryption::SecretBox::open(&config.secret_key_file()?)?;
        let state = AppState::new(store.clone(), config, secrets)?;
        let runtime = state.runtime.clone();
        crate::routes::health::check_integrity(&state);
        // Runs a previous process left open are closed before anyone can start one.
        runtime.recover().await?;
        if let Some(embedder) = state.embedder.clone() {
            tracing::info!(
                model = embedder.model(),
                "embedding brain items in the background"
            );
            tokio::spawn(embedder.run(runtime.stopping()));
        }
        let sweeper = runtime.clone();
        tokio::spawn(async move {
            let stopping = sweeper.stopping();
            loop {
                tokio::select! {
                    _ = tokio::time::sleep(Duration::from_secs(15)) => {
                        sweeper.sweep(IDLE_SESSION);
                    }
                    _ = stopping.cancelled() => break,
                }
            }
        });
        let shutdown = tokio_util::sync::CancellationToken::new();
        let listeners = bound
            .into_iter()
            .map(|l| {
                let app = (l.app)(&state);
                tracing::info!(listener = l.name, local_addr = %l.local_addr, backend = store.backend().as_str(), "mosaic gateway listening");
                Running {
                    name: l.name,
                    local_addr: l.local_addr,
                    task: tokio::spawn(crate::listener::serve(
                        l.tcp,
                        l.transport,
                        app,
                        l.limits,
                        shutdown.clone(),
                    )),
                }
            })
            .collect();
        Ok(Server {
            local_addr,
            store,
            runtime,
            shutdown,
            listeners,
            _lock: lock,
        })
    }

    /// Where the listener named `name` listens.
    pub fn listener_addr(&self, name: &str) -> Option<SocketAddr> {
        self.listeners
            .iter()
            .find(|l| l.name == name)
            .map(|l| l.local_addr)
    }

    /// Runs running now.
    pub fn active_runs(&self) -> usize {
        self.runtime.active_runs()
    }

    /// Stop accepting on every listener, interrupt runs (they record that the gateway
    /// stopped), end live streams, let in-flight requests finish (up to `grace`), close
    /// the store.
    pub async fn stop(self, grace: Duration) -> Result<(), ServeError> {
        let started = tokio::time::Instant::now();
        // No new connections; open ones close after their request in flight.
        self.shutdown.cancel();
        // Runs record that the gateway stopped; then live streams end, each with a
        // closing event after the events already published (a run's end among them).
        self.runtime.shutdown(grace / 2).await;
        for mut listener in self.listeners {
            let left = grace.saturating_sub(started.elapsed());
            if tokio::time::timeout(left, &mut listener.task)
                .await
                .is_err()
            {
                tracing::warn!(
                    listener = listener.name,
                    "requests still running after {grace:?}; stopping anyway"
                );
                listener.task.abort();
            }
        }
        self.store.close().await;
        Ok(())
    }
}

fn announce_bootstrap(token: &str, addr: SocketAddr) {
    let host = match addr.ip() {
        ip if ip.is_unspecified() => "127.0.0.1".to_string(),
        std::net::IpAddr::V6(ip) => format!("[{ip}]"),
        std::net::IpAddr::V4(ip) => ip.to_string(),
    };
    let url = format!("http://{host}:{}", addr.port());
    eprintln!(
        "\n  Mosaic has no admin yet. Create the first one with this one-time bootstrap token\n  \
         (valid 24 hours; a restart prints a new one; `mosaic admin bootstrap` makes another):\n\n    \
         {token}\n\n  e.g.  mosaic admin claim --url {url} --username admin --token {token}\n"
    );
}

/// `mosaic serve`: run until SIGINT or SIGTERM.
pub async fn serve(config: Config) -> Result<(), ServeError> {
    // Signal handlers go in before anything else, so a signal that arrives while the
    // gateway starts still stops it gracefully rather than killing it.
    let stop = shutdown_signal()?;
    let grace = Duration::from_secs(config.shutdown_grace_secs);
    let server = Server::start(config).await?;
    stop.await;
    tracing::info!(?grace, "shutting down");
    server.stop(grace).await
}

/// A future that completes at the first SIGINT or SIGTERM; the handlers are installed
/// when this returns, not when the future is first polled.
fn shutdown_signal() -> std::io::Result<impl std::future::Future<Output = ()>> {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        let mut term = signal(SignalKind::terminate())?;
        let mut int = signal(SignalKind::interrupt())?;
        Ok(async move {
            tokio::select! {
                _ = term.recv() => {}
                _ = int.recv() => {}
            }
        })
    }
    #[cfg(not(unix))]
    {
        Ok(async {
            let _ = tokio::signal::ctrl_c().await;
        })
    }
}
