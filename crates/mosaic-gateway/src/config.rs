//! Gateway configuration: built-in defaults, then a TOML file, then `MOSAIC_*`
//! environment variables, then command-line flags (each layer overrides the last).

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use mosaic_agent::egress::{AddressPolicy, Network};
use serde::{Deserialize, Serialize};

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

/// The config file used when none is named: `$XDG_CONFIG_HOME/mosaic/gateway.toml`.
pub fn default_config_file() -> Option<PathBuf> {
    dirs::config_dir().map(|d| d.join("mosaic").join("gateway.toml"))
}

/// The data directory used when none is named: `$XDG_DATA_HOME/mosaic`.
pub fn default_data_dir() -> Option<PathBuf> {
    dirs::data_dir().map(|d| d.join("mosaic"))
}

impl Config {
    /// Defaults, overlaid with `file` (when it exists; an explicitly named file must
    /// exist) and then the environment.
    pub fn load(
        file: Option<&Path>,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<Config, ConfigError> {
        let explicit = file
            .map(Path::to_path_buf)
            .or_else(|| env("MOSAIC_CONFIG").map(PathBuf::from));
        let mut config = match (&explicit, default_config_file()) {
            (Some(path), _) => Config::from_file(path)?,
            (None, Some(path)) if path.exists() => Config::from_file(&path)?,
            (None, _) => Config::default(),
        };
        config.apply_env(env)?;
        Ok(config)
    }

    fn from_file(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        toml::from_str(&text).map_err(|source| ConfigError::Parse {
            path: path.to_path_buf(),
            source: Box::new(source),
        })
    }

    fn apply_env(&mut self, env: impl Fn(&str) -> Option<String>) -> Result<(), ConfigError> {
        fn parse<T: std::str::FromStr>(name: &'static str, value: String) -> Result<T, ConfigError>
        where
            T::Err: std::fmt::Display,
        {
            value.parse().map_err(|e: T::Err| ConfigError::Env {
                name,
                why: e.to_string(),
                value,
            })
        }
        if let Some(v) = env("MOSAIC_LISTEN") {
            self.listen = parse("MOSAIC_LISTEN", v)?;
        }
        if let Some(v) = env("MOSAIC_DATA_DIR") {
            self.data_dir = Some(PathBuf::from(v));
        }
        if let Some(v) = env("MOSAIC_DATABASE_URL") {
            self.database_url = Some(v);
        }
        if let Some(v) = env("MOSAIC_ALLOW_INSECURE_BIND") {
            self.allow_insecure_bind = parse("MOSAIC_ALLOW_INSECURE_BIND", v)?;
        }
        if let Some(v) = env("MOSAIC_BODY_LIMIT_BYTES") {
            self.body_limit_bytes = parse("MOSAIC_BODY_LIMIT_BYTES", v)?;
        }
        if let Some(v) = env("MOSAIC_SESSION_TTL_HOURS") {
            self.session_ttl_hours = parse("MOSAIC_SESSION_TTL_HOURS", v)?;
        }
        if let Some(v) = env("MOSAIC_LOGIN_TOKEN_TTL_DAYS") {
            self.login_token_ttl_days = parse("MOSAIC_LOGIN_TOKEN_TTL_DAYS", v)?;
        }
        if let Some(v) = env("MOSAIC_HEADER_TIMEOUT_SECS") {
            self.header_timeout_secs = parse("MOSAIC_HEADER_TIMEOUT_SECS", v)?;
        }
        if let Some(v) = env("MOSAIC_BODY_TIMEOUT_SECS") {
            self.body_timeout_secs = parse("MOSAIC_BODY_TIMEOUT_SECS", v)?;
        }
        if let Some(v) = env("MOSAIC_MAX_CONNECTIONS") {
            self.max_connections = Some(parse("MOSAIC_MAX_CONNECTIONS", v)?);
        }
        if let Some(v) = env("MOSAIC_SHUTDOWN_GRACE_SECS") {
            self.shutdown_grace_secs = parse("MOSAIC_SHUTDOWN_GRACE_SECS", v)?;
        }
        if let Some(v) = env("MOSAIC_MAX_DB_CONNECTIONS") {
            self.max_db_connections = parse("MOSAIC_MAX_DB_CONNECTIONS", v)?;
        }
        if let Some(v) = env("MOSAIC_SECURE_COOKIES") {
            self.secure_cookies = Some(parse("MOSAIC_SECURE_COOKIES", v)?);
        }
        if let Some(v) = env("MOSAIC_SECRET_KEY_FILE") {
            self.secret_key_file = Some(PathBuf::from(v));
        }
        if let Some(v) = env("MOSAIC_ALLOW_PRIVATE_USER_PROVIDERS") {
            self.allow_private_user_providers = parse("MOSAIC_ALLOW_PRIVATE_USER_PROVIDERS", v)?;
        }
        if let Some(v) = env("MOSAIC_USER_PROVIDER_ALLOW_NETWORKS") {
            self.user_provider_allow_networks = list(&v);
        }
        if let Some(v) = env("MOSAIC_RUN_MAX_MODEL_CALLS") {
            self.run_max_model_calls = parse("MOSAIC_RUN_MAX_MODEL_CALLS", v)?;
        }
        if let Some(v) = env("MOSAIC_RUN_TOKEN_BUDGET") {
            self.run_token_budget = parse("MOSAIC_RUN_TOKEN_BUDGET", v)?;
        }
        if let Some(v) = env("MOSAIC_CONTEXT_WINDOW") {
            self.context_window = parse("MOSAIC_CONTEXT_WINDOW", v)?;
        }
        if let Some(v) = env("MOSAIC_MODEL_IDLE_TIMEOUT_SECS") {
            self.model_idle_timeout_secs = parse("MOSAIC_MODEL_IDLE_TIMEOUT_SECS", v)?;
        }
        if let Some(v) = env("MOSAIC_FETCH_ALLOW_PRIVATE") {
            self.fetch_allow_private = parse("MOSAIC_FETCH_ALLOW_PRIVATE", v)?;
        }
        if let Some(v) = env("MOSAIC_FETCH_ALLOW_NETWORKS") {
            self.fetch_allow_networks = list(&v);
        }
        if let Some(v) = env("MOSAIC_OTLP_ENDPOINT") {
            self.otlp_endpoint = Some(v);
        }
        if let Some(v) = env("MOSAIC_METRICS_TOKEN") {
            self.metrics_token = Some(v);
        }
        if let Some(v) = env("MOSAIC_EMBEDDING_URL") {
            self.embedding_url = Some(v);
        }
        if let Some(v) = env("MOSAIC_EMBEDDING_MODEL") {
            self.embedding_model = Some(v);
        }
        if let Some(v) = env("MOSAIC_EMBEDDING_API_KEY") {
            self.embedding_api_key = Some(v);
        }
        if let Some(v) = env("MOSAIC_LOG_FORMAT") {
            self.log_format = match v.as_str() {
                "human" => LogFormat::Human,
                "json" => LogFormat::Json,
                _ => {
                    return Err(ConfigError::Env {
                        name: "MOSAIC_LOG_FORMAT",
                        value: v,
                        why: "expected human or json".into(),
                    })
                }
            };
        }
        Ok(())
    }

    /// The data directory, falling back to the XDG default.
    pub fn data_dir(&self) -> Result<PathBuf, ConfigError> {
        self.data_dir
            .clone()
            .or_else(default_data_dir)
            .ok_or(ConfigError::NoDataDir)
    }

    /// The database URL, falling back to `mosaic.db` in the data directory.
    pub fn database_url(&self) -> Result<String, ConfigError> {
        match &self.database_url {
            Some(url) => Ok(url.clone()),
            None => Ok(mosaic_store::StoreOptions::sqlite_file(
                &self.data_dir()?.join("mosaic.db"),
            )
            .url),
        }
    }

    /// Whether session cookies carry `Secure`.
    pub fn cookies_secure(&self) -> bool {
        self.secure_cookies
            .unwrap_or_else(|| !self.listen.ip().is_loopback())
    }

    /// The secret key file, falling back to `secret.key` in the data directory.
    pub fn secret_key_file(&self) -> Result<PathBuf, ConfigError> {
        match &self.secret_key_file {
            Some(p) => Ok(p.clone()),
            None => Ok(self.data_dir()?.join("secret.key")),
        }
    }

    /// What the `http_fetch` tool may reach.
    pub fn fetch_config(&self) -> Result<mosaic_agent::tools::FetchConfig, ConfigError> {
        Ok(mosaic_agent::tools::FetchConfig {
            allow_private: self.fetch_allow_private,
            allow: networks("fetch_allow_networks", &self.fetch_allow_networks)?,
            ..mosaic_agent::tools::FetchConfig::default()
        })
    }

    /// What users' own providers may reach, when they are created and on every call.
    pub fn user_provider_policy(&self) -> Result<AddressPolicy, ConfigError> {
        Ok(AddressPolicy {
            allow_private: self.allow_private_user_providers,
            allow: networks(
                "user_provider_allow_networks",
                &self.user_provider_allow_networks,
            )?,
        })
    }

    /// Refuse settings that would be unsafe or meaningless.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if !self.listen.ip().is_loopback() && !self.allow_insecure_bind {
            return Err(ConfigError::Invalid(format!(
                "refusing to listen on {} without TLS: bind to loopback, or set \
                 allow_insecure_bind = true (MOSAIC_ALLOW_INSECURE_BIND=true) when a TLS proxy \
                 fronts the gateway",
                self.listen
            )));
        }
        if self.body_limit_bytes < 1024 {
            return Err(ConfigError::Invalid(
                "body_limit_bytes must be at least 1024".into(),
            ));
        }
        if self.header_timeout_secs == 0 || self.body_timeout_secs == 0 {
            return Err(ConfigError::Invalid(
                "header_timeout_secs and body_timeout_secs must be positive".into(),
            ));
        }
        if self.max_db_connections < 2 {
            return Err(ConfigError::Invalid(
                "max_db_connections must be at least 2 (a search reads on two at once)".into(),
            ));
        }
        if self.max_connections == Some(0) {
            return Err(ConfigError::Invalid(
                "max_connections must be positive (leave it unset for the automatic limit)".into(),
            ));
        }
        if self.run_max_model_calls == 0 || self.run_token_budget == 0 {
            return Err(ConfigError::Invalid(
                "run_max_model_calls and run_token_budget must be positive".into(),
            ));
        }
        if !(1..=3600).contains(&self.model_idle_timeout_secs) {
            return Err(ConfigError::Invalid(
                "model_idle_timeout_secs must be from 1 to 3600".into(),
            ));
        }
        self.fetch_config()?;
        self.user_provider_policy()?;
        self.embedder_config()?;
        if self.context_window < 256 {
            return Err(ConfigError::Invalid(
                "context_window must be at least 256 tokens".into(),
            ));
        }
        if self.session_ttl_hours == 0 || self.login_token_ttl_days == 0 {
            return Err(ConfigError::Invalid(
                "session and token lifetimes must be positive".into(),
            ));
        }
        Ok(())
    }

    /// The embeddings API, when one is configured.
    pub fn embedder_config(
        &self,
    ) -> Result<Option<mosaic_agent::embedder::EmbedderConfig>, ConfigError> {
        fn blank(v: &Option<String>) -> Option<&str> {
            v.as_deref().map(str::trim).filter(|s| !s.is_empty())
        }
        match (blank(&self.embedding_url), blank(&self.embedding_model)) {
            (None, None) => Ok(None),
            (Some(url), Some(model)) => {
                if !(url.starts_with("http://") || url.starts_with("https://")) {
                    return Err(ConfigError::Invalid(format!(
                        "embedding_url must be an http:// or https:// URL, not '{}'",
                        mosaic_store::redact_url(url)
                    )));
                }
                Ok(Some(mosaic_agent::embedder::EmbedderConfig {
                    url: url.to_string(),
                    model: model.to_string(),
                    api_key: blank(&self.embedding_api_key).map(str::to_string),
                }))
            }
            (Some(_), None) => Err(ConfigError::Invalid(
                "embedding_url is set but embedding_model is not: name the model to ask for".into(),
            )),
            (None, Some(_)) => Err(ConfigError::Invalid(
                "embedding_model is set but embedding_url is not: give the base URL of an \
                 OpenAI-compatible embeddings API (e.g. http://127.0.0.1:11434/v1)"
                    .into(),
            )),
        }
    }

    /// The configuration as TOML, with secrets (database passwords) redacted.
    pub fn to_redacted_toml(&self) -> String {
        let mut shown = self.clone();
        shown.database_url = self.database_url.as_deref().map(mosaic_store::redact_url);
        shown.metrics_token = self
            .metrics_token
            .as_ref()
            .map(|_| "[redacted]".to_string());
        shown.otlp_endpoint = self.otlp_endpoint.as_deref().map(mosaic_store::redact_url);
        shown.embedding_url = self.embedding_url.as_deref().map(mosaic_store::redact_url);
        shown.embedding_api_key = self
            .embedding_api_key
            .as_ref()
            .map(|_| "[redacted]".to_string());
        if shown.data_dir.is_none() {
            shown.data_dir = self.data_dir().ok();
        }
        toml::to_string_pretty(&shown).unwrap_or_else(|e| format!("# cannot render config: {e}\n"))
    }
}

/// A comma-separated list from the environment.
fn list(v: &str) -> Vec<String> {
    v.split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .collect()
}

/// The CIDR blocks of a setting, or which one does not parse.
fn networks(key: &str, blocks: &[String]) -> Result<Vec<Network>, ConfigError> {
    blocks
        .iter()
        .map(|n| {
            n.parse()
                .map_err(|e| ConfigError::Invalid(format!("{key}: '{n}': {e}")))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use pretty_assertions::assert_eq;
    use std::collections::HashMap;

    fn env_of(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let map: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        move |k| map.get(k).cloned()
    }

    #[test]
    fn file_then_environment_override_defaults() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("gateway.toml");
        std::fs::write(
            &file,
            "listen = \"127.0.0.1:9000\"\nbody_limit_bytes = 4096\n",
        )
        .unwrap();
        let config =
            Config::load(Some(&file), env_of(&[("MOSAIC_BODY_LIMIT_BYTES", "8192")])).unwrap();
        assert_eq!(config.listen, "127.0.0.1:9000".parse().unwrap());
        assert_eq!(config.body_limit_bytes, 8192);
        assert_eq!(
            config.session_ttl_hours,
            Config::default().session_ttl_hours
        );
    }

    #[test]
    fn unknown_keys_and_bad_values_are_errors() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("gateway.toml");
        std::fs::write(&file, "lisen = \"127.0.0.1:9000\"\n").unwrap();
        assert!(matches!(
            Config::load(Some(&file), env_of(&[])),
            Err(ConfigError::Parse { .. })
        ));
        let err = Config::load(Some(&dir.path().join("missing.toml")), env_of(&[]));
        assert!(matches!(err, Err(ConfigError::Read { .. })));
        std::fs::write(&file, "").unwrap();
        let err = Config::load(Some(&file), env_of(&[("MOSAIC_LISTEN", "nowhere")]));
        assert!(matches!(
            err,
            Err(ConfigError::Env {
                name: "MOSAIC_LISTEN",
                ..
            })
        ));
    }

    #[test]
    fn the_model_idle_timeout_is_read_and_must_be_sensible() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("gateway.toml");
        std::fs::write(&file, "model_idle_timeout_secs = 90\n").unwrap();
        assert_eq!(Config::default().model_idle_timeout_secs, 60);
        let from_file = Config::load(Some(&file), env_of(&[])).unwrap();
        assert_eq!(from_file.model_idle_timeout_secs, 90);
        let from_env = env_of(&[("MOSAIC_MODEL_IDLE_TIMEOUT_SECS", "5")]);
        let config = Config::load(Some(&file), from_env).unwrap();
        assert_eq!(config.model_idle_timeout_secs, 5);
        for bad in [0, 3601] {
            let config = Config {
                model_idle_timeout_secs: bad,
                ..Config::default()
            };
            assert!(
                matches!(config.validate(), Err(ConfigError::Invalid(_))),
                "{bad}"
            );
        }
    }

    #[test]
    fn non_loopback_bind_needs_an_explicit_flag() {
        let mut config = Config {
            listen: "0.0.0.0:8420".parse().unwrap(),
            ..Config::default()
        };
        assert!(config.validate().is_err());
        config.allow_insecure_bind = true;
        assert!(config.validate().is_ok());
    }

    #[test]
    fn shown_config_hides_database_passwords() {
        let config = Config {
            database_url: Some("postgres://mosaic:hunter2@db:5432/mosaic".into()),
            data_dir: Some("/srv/mosaic".into()),
            ..Config::default()
        };
        let shown = config.to_redacted_toml();
        assert!(!shown.contains("hunter2"), "{shown}");
        assert!(
            shown.contains("postgres://mosaic:***@db:5432/mosaic"),
            "{shown}"
        );
    }

    #[test]
    fn an_embedding_model_needs_both_url_and_model_and_its_key_is_hidden() {
        let config = Config::load(
            None,
            env_of(&[
                ("MOSAIC_EMBEDDING_URL", "http://127.0.0.1:11434/v1"),
                ("MOSAIC_EMBEDDING_MODEL", "nomic-embed-text"),
                ("MOSAIC_EMBEDDING_API_KEY", "sk-secret"),
            ]),
        )
        .unwrap();
        let embedder = config.embedder_config().unwrap().unwrap();
        assert_eq!(embedder.model, "nomic-embed-text");
        assert_eq!(embedder.api_key.as_deref(), Some("sk-secret"));
        let shown = config.to_redacted_toml();
        assert!(!shown.contains("sk-secret"), "{shown}");
        assert_eq!(Config::default().embedder_config().unwrap(), None);
        for (url, model) in [
            (Some("http://127.0.0.1:11434/v1"), None),
            (None, Some("nomic-embed-text")),
            (Some("127.0.0.1:11434"), Some("nomic-embed-text")),
        ] {
            let config = Config {
                embedding_url: url.map(str::to_string),
                embedding_model: model.map(str::to_string),
                ..Config::default()
            };
            assert!(config.validate().is_err(), "{url:?} {model:?}");
        }
    }
}
