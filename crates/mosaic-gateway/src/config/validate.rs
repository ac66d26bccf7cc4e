//! Refusing settings that would be unsafe or meaningless, before anything starts.

use super::{Config, ConfigError};

impl Config {
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
}

#[cfg(test)]
mod tests {
    use super::super::test_env::env_of;
    use super::*;
    use pretty_assertions::assert_eq;

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
}
