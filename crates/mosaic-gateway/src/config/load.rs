//! Reading the configuration: defaults, then a TOML file, then `MOSAIC_*` variables.

use std::path::{Path, PathBuf};

use super::{Config, ConfigError, LogFormat};

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
}

/// A comma-separated list from the environment.
fn list(v: &str) -> Vec<String> {
    v.split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::super::test_env::env_of;
    use super::*;
    use pretty_assertions::assert_eq;

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
}
