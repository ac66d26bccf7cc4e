//! A gateway started in-process on an ephemeral loopback port, and a small HTTP helper.

use std::time::Duration;

use mosaic_gateway::{Config, Server};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

pub struct TestGateway {
    pub url: String,
    pub http: reqwest::Client,
    server: Option<Server>,
    _dir: tempfile::TempDir,
    // Dropped after the server has been asked to stop.
    _postgres: Option<mosaic_test_support::ScratchPostgres>,
}

/// The database engine a gateway under test runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Engine {
    Sqlite,
    Postgres,
}

pub const PASSWORD: &str = "correct horse battery";

impl TestGateway {
    pub async fn start() -> TestGateway {
        Self::start_with(|_| {}).await
    }

    pub async fn start_on(engine: Engine) -> TestGateway {
        match engine {
            Engine::Sqlite => Self::start().await,
            Engine::Postgres => {
                let pg = mosaic_test_support::ScratchPostgres::create().await;
                let url = pg.url.clone();
                let mut gw = Self::start_with(|c| c.database_url = Some(url)).await;
                gw._postgres = Some(pg);
                gw
            }
        }
    }

    pub async fn start_with(tweak: impl FnOnce(&mut Config)) -> TestGateway {
        let dir = tempfile::tempdir().unwrap();
        let mut config = Config {
            listen: "127.0.0.1:0".parse().unwrap(),
            data_dir: Some(dir.path().to_path_buf()),
            ..Config::default()
        };
        tweak(&mut config);
        let server = Server::start(config).await.unwrap();
        TestGateway {
            url: format!("http://{}", server.local_addr),
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(30))
                .build()
                .unwrap(),
            server: Some(server),
            _dir: dir,
            _postgres: None,
        }
    }

    pub fn data_dir(&self) -> std::path::PathBuf {
        self._dir.path().to_path_buf()
    }

    pub fn store(&self) -> &mosaic_store::Store {
        &self.server.as_ref().unwrap().store
    }

    /// A fresh bootstrap token (replacing the one printed at start).
    pub async fn bootstrap_token(&self) -> String {
        mosaic_gateway::routes::auth::issue_bootstrap_token(
            self.store(),
            mosaic_store::BootstrapSource::Startup,
        )
        .await
        .unwrap()
        .expect("gateway has no admin yet")
    }

    /// Send a request; returns status and JSON body (Null when empty or not JSON).
    pub async fn call(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        let mut req = self.http.request(method, format!("{}{}", self.url, path));
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        if let Some(b) = body {
            req = req.json(&b);
        }
        let resp = req.send().await.unwrap();
        let status = resp.status();
        let text = resp.text().await.unwrap();
        (status, serde_json::from_str(&text).unwrap_or(Value::Null))
    }

    /// Bootstrap the first admin and return a bearer token for them.
    pub async fn admin(&self, username: &str) -> String {
        let token = self.bootstrap_token().await;
        let (status, body) = self
            .call(
                Method::POST,
                "/api/v1/auth/bootstrap",
                None,
                Some(json!({"token": token, "username": username, "password": PASSWORD})),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        self.login(username).await
    }

    /// Log in with the test password; returns a bearer token.
    pub async fn login(&self, username: &str) -> String {
        let (status, body) = self
            .call(
                Method::POST,
                "/api/v1/auth/login",
                None,
                Some(json!({"username": username, "password": PASSWORD, "mode": "token"})),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        body["token"].as_str().unwrap().to_string()
    }

    /// As `admin_token`, create a plain user and return (user id, their token).
    pub async fn user(&self, admin_token: &str, username: &str) -> (String, String) {
        let (status, body) = self
            .call(
                Method::POST,
                "/api/v1/users",
                Some(admin_token),
                Some(json!({"username": username, "password": PASSWORD})),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        (
            body["id"].as_str().unwrap().to_string(),
            self.login(username).await,
        )
    }
}

impl Drop for TestGateway {
    fn drop(&mut self) {
        if let Some(server) = self.server.take() {
            // Best effort: the runtime may already be shutting down.
            if let Ok(handle) = tokio::runtime::Handle::try_current() {
                handle.spawn(server.stop(Duration::from_secs(1)));
            }
        }
    }
}
