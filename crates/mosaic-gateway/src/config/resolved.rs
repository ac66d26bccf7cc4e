//! What follows from the settings: the data directory and what lives in it, the
//! database URL, cookie security, the address policies of outbound calls, the
//! embeddings API, and the configuration as shown to an operator (secrets redacted).

use std::path::PathBuf;

use mosaic_agent::egress::{AddressPolicy, Network};

use super::{default_data_dir, Config, ConfigError};

impl Config {
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
    use super::super::test_env::env_of;
    use super::*;
    use pretty_assertions::assert_eq;

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
