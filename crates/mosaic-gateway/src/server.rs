//! The server's life cycle: open the store, print the bootstrap token when there is
//! no admin, serve until SIGINT or SIGTERM, then drain and close.

use std::net::SocketAddr;
use std::time::Duration;

use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::Router;
use mosaic_api::ErrorCode;
use mosaic_store::{Store, StoreOptions};
use tokio::net::TcpListener;
use tower_http::catch_panic::CatchPanicLayer;

use crate::error::ApiError;
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
    let token = crate::routes::auth::issue_bootstrap_token(&store).await?;
    store.close().await;
    Ok(token)
}

/// The full HTTP application: API routes, JSON fallbacks, limits and panic safety.
pub fn app(state: AppState) -> Router {
    let (api, _doc) = crate::openapi::api();
    let body_limit = state.config.body_limit_bytes;
    api.fallback(|| async { ApiError::new(ErrorCode::NotFound, "no such route") })
        .method_not_allowed_fallback(|| async {
            ApiError::new(
                ErrorCode::MethodNotAllowed,
                "method not allowed on this route",
            )
        })
        .with_state(state)
        .layer(axum::extract::DefaultBodyLimit::max(body_limit))
        .layer(CatchPanicLayer::custom(
            |_panic: Box<dyn std::any::Any + Send>| {
                tracing::error!("a request handler panicked");
                (StatusCode::INTERNAL_SERVER_ERROR, ApiError::internal()).into_response()
            },
        ))
}

/// A started gateway: where it listens, and how to stop it.
pub struct Server {
    pub local_addr: SocketAddr,
    pub store: Store,
    shutdown: tokio::sync::watch::Sender<bool>,
    task: tokio::task::JoinHandle<std::io::Result<()>>,
}

impl Server {
    /// Open the store and start listening; returns once the socket is bound.
    pub async fn start(config: Config) -> Result<Server, ServeError> {
        config.validate()?;
        let store = open_store(&config).await?;
        if let Err(e) = store.purge_expired().await {
            tracing::warn!(error = %e, "could not purge expired sessions");
        }
        if let Some(token) = crate::routes::auth::issue_bootstrap_token(&store).await? {
            announce_bootstrap(&token, &config);
        }
        let listener =
            TcpListener::bind(config.listen)
                .await
                .map_err(|source| ServeError::Bind {
                    addr: config.listen,
                    source,
                })?;
        let local_addr = listener.local_addr()?;
        let app = app(AppState::new(store.clone(), config));
        let (shutdown, mut rx) = tokio::sync::watch::channel(false);
        let task = tokio::spawn(async move {
            axum::serve(
                listener,
                app.into_make_service_with_connect_info::<SocketAddr>(),
            )
            .with_graceful_shutdown(async move {
                let _ = rx.wait_for(|stop| *stop).await;
            })
            .await
        });
        tracing::info!(%local_addr, backend = store.backend().as_str(), "mosaic gateway listening");
        Ok(Server {
            local_addr,
            store,
            shutdown,
            task,
        })
    }

    /// Stop accepting, let in-flight requests finish (up to `grace`), close the store.
    pub async fn stop(self, grace: Duration) -> Result<(), ServeError> {
        let _ = self.shutdown.send(true);
        let mut task = self.task;
        let result = match tokio::time::timeout(grace, &mut task).await {
            Ok(joined) => joined.map_err(|e| ServeError::Io(std::io::Error::other(e)))?,
            Err(_) => {
                tracing::warn!("requests still running after {grace:?}; stopping anyway");
                task.abort();
                Ok(())
            }
        };
        self.store.close().await;
        Ok(result?)
    }
}

fn announce_bootstrap(token: &str, config: &Config) {
    let url = format!("http://{}", config.listen);
    eprintln!(
        "\n  Mosaic has no admin yet. Create the first one with this one-time bootstrap token\n  \
         (valid 24 hours, replaced at every start until used):\n\n    {token}\n\n  \
         e.g.  mosaic admin claim --url {url} --username admin --token {token}\n"
    );
}

/// `mosaic serve`: run until SIGINT or SIGTERM.
pub async fn serve(config: Config) -> Result<(), ServeError> {
    let server = Server::start(config).await?;
    shutdown_signal().await;
    tracing::info!("shutting down");
    server.stop(Duration::from_secs(10)).await
}

async fn shutdown_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = term.recv() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}
