//! Gateway configuration: built-in defaults, then a TOML file, then `MOSAIC_*`
//! environment variables, then command-line flags (each layer overrides the last).
//!
//! The settings and their defaults are here; reading them from a file and the
//! environment is `load.rs`, refusing unsafe or meaningless ones is `validate.rs`, and
//! what follows from them (paths, address policies, the embeddings API, the redacted
//! view) is `resolved.rs`.

mod load;
mod resolved;
mod validate;

#[cfg(test)]
mod test_env;

use std::net::SocketAddr;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

pub use load::{default_config_file, default_data_dir};

/// Default address: loopback only. Anything else is a deliberate choice.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:8420";

/// Why a configuration could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {path}: {source}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("config file {path} is not valid: {source}")]
    Parse {
        path: PathBuf,
        #[source]
        source: Box<toml::de::Error>,
    },
    #[error("{name}={value}: {why}")]
    Env {
        name: &'static str,
        value: String,
        why: String,
    },
    #[error("{0}")]
    Invalid(String),
    #[error(
        "no data directory: set --data-dir or MOSAIC_DATA_DIR (no XDG data directory is known)"
    )]
    NoDataDir,
}

/// Log line format.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LogFormat {
    #[default]
    Human,
    Json,
}

/// The effective gateway configuration.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// Address of the user-facing listener.
    pub listen: SocketAddr,
    /// Where the SQLite file and the gateway's keys live.
    pub data_dir: Option<PathBuf>,
    /// `sqlite://…` or `postgres://…`; the SQLite file in the data directory when unset.
    pub database_url: Option<String>,
    /// Permit a non-loopback listen address without TLS (for a reverse proxy that
    /// terminates TLS on the same host or a trusted network).
    pub allow_insecure_bind: bool,
    /// Largest request body accepted, in bytes.
    pub body_limit_bytes: usize,
    /// Lifetime of a web (cookie) session, in hours.
    pub session_ttl_hours: u64,
    /// Lifetime of a token created by `mosaic login`, in days.
    pub login_token_ttl_days: u64,
    /// Largest number of pooled database connections.
    pub max_db_connections: u32,
    /// Seconds a client has to send a request's headers, counted from when its
    /// connection is ready for a request: it also closes idle keep-alive connections.
    pub header_timeout_secs: u64,
    /// Seconds a client has to send a whole request body.
    pub body_timeout_secs: u64,
    /// Client connections served at once; more are answered 503 and closed. Unset:
    /// the open-file limit (raised to its hard limit at start) less a reserve.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_connections: Option<usize>,
    /// Seconds a stop (SIGTERM, SIGINT) waits for runs and requests to finish; streams
    /// still open then end with an error their client can recognise.
    pub shutdown_grace_secs: u64,
    pub log_format: LogFormat,
    /// The key that encrypts provider API keys at rest; `secret.key` in the data
    /// directory when unset. Replicas of a scaled gateway must share one.
    pub secret_key_file: Option<PathBuf>,
    /// Let users (not only admins) point their own providers at loopback or private
    /// addresses. Off: a user's provider could otherwise reach internal services. Checked
    /// on every connection, so turning it off also stops providers made while it was on.
    pub allow_private_user_providers: bool,
    /// Networks (CIDR) users' own providers may reach although they are private: a
    /// model server on the LAN that every user may call.
    pub user_provider_allow_networks: Vec<String>,
    /// Mark session cookies `Secure`. Unset: yes unless the gateway listens on loopback
    /// (a non-loopback listener is fronted by TLS). Set false only for plain HTTP on a
    /// trusted network, where browsers would otherwise drop the cookie.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub secure_cookies: Option<bool>,
    /// Model calls a run may make, for agents that set no limit.
    pub run_max_model_calls: u32,
    /// Input plus output tokens a run may use, for agents that set no limit.
    pub run_token_budget: u64,
    /// The context window assumed for agents that set none, in tokens.
    pub context_window: u32,
    /// Seconds a model may stay silent mid-answer before the call is given up (keeping
    /// what it sent), for route steps that set no idle timeout and for `provider/model`
    /// named directly.
    pub model_idle_timeout_secs: u64,
    /// Let the `http_fetch` tool reach loopback, private and link-local addresses.
    pub fetch_allow_private: bool,
    /// Networks (CIDR, e.g. `10.1.2.0/24`) `http_fetch` may reach although they are
    /// private: an intranet wiki, a local documentation server.
    pub fetch_allow_networks: Vec<String>,
    /// Export traces over OTLP/HTTP to this endpoint (e.g. `http://127.0.0.1:4318`);
    /// `OTEL_EXPORTER_OTLP_ENDPOINT` and the other standard variables win over it.
    /// Nothing is exported when neither is set.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub otlp_endpoint: Option<String>,
    /// The service name of exported spans (`OTEL_SERVICE_NAME` wins over it).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub service_name: Option<String>,
    /// A bearer token that `GET /metrics` requires. Unset: `/metrics` answers only
    /// clients connecting from loopback.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub metrics_token: Option<String>,
    /// An OpenAI-compatible embeddings API (its base URL, e.g.
    /// `http://127.0.0.1:11434/v1` for Ollama) for vector search over tasks, notes and
    /// memories. Unset: search goes by words alone.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub embedding_url: Option<String>,
    /// The embedding model to ask for (required with `embedding_url`). Changing it
    /// embeds every item again.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub embedding_model: Option<String>,
    /// The API key of the embeddings API, if it needs one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub embedding_api_key: Option<String>,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            listen: DEFAULT_LISTEN
                .parse()
                .unwrap_or_else(|_| SocketAddr::from(([127, 0, 0, 1], 8420))),
            data_dir: None,
            database_url: None,
            allow_insecure_bind: false,
            body_limit_bytes: 1024 * 1024,
            session_ttl_hours: 24 * 14,
            login_token_ttl_days: 90,
            max_db_connections: 8,
            header_timeout_secs: 10,
            body_timeout_secs: 30,
            max_connections: None,
            shutdown_grace_secs: 10,
            log_format: LogFormat::Human,
            secret_key_file: None,
            allow_private_user_providers: false,
            user_provider_allow_networks: Vec::new(),
            secure_cookies: None,
            run_max_model_calls: 50,
            run_token_budget: 2_000_000,
            context_window: 128_000,
            model_idle_timeout_secs: 60,
            fetch_allow_private: false,
            fetch_allow_networks: Vec::new(),
            otlp_endpoint: None,
            embedding_url: None,
            embedding_model: None,
            embedding_api_key: None,
            service_name: None,
            metrics_token: None,
        }
    }
}
