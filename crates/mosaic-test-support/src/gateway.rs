//! A gateway started in-process on an ephemeral loopback port (on SQLite or a scratch
//! PostgreSQL database), a small HTTP helper, a reader of a session's live events, and
//! the few steps most tests of runs share: a gateway-wide provider on a scripted model
//! server, the default agent routed through it, a session, a message and its run.
//! Behind the `gateway` feature, for the gateway's own test binaries.

use std::time::Duration;

use mosaic_gateway::{Config, Server};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

pub use crate::{Engine, OnEngine};

pub struct TestGateway {
    pub url: String,
    pub http: reqwest::Client,
    server: Option<Server>,
    _dir: tempfile::TempDir,
    // Dropped after the server has been asked to stop.
    _postgres: Option<crate::ScratchPostgres>,
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
                let pg = crate::ScratchPostgres::create().await;
                let url = pg.url.clone();
                let mut gw = Self::start_with(|c| c.database_url = Some(url)).await;
                gw._postgres = Some(pg);
                gw
            }
        }
    }

    pub async fn start_with(tweak: impl FnOnce(&mut Config)) -> TestGateway {
        Self::start_in(tempfile::tempdir().unwrap(), tweak).await
    }

    /// Stop this gateway and start another on the same data directory (the same
    /// database and secret key), configured afresh with `tweak`.
    pub async fn restart_with(mut self, tweak: impl FnOnce(&mut Config)) -> TestGateway {
        if let Some(server) = self.server.take() {
            server.stop(Duration::from_secs(5)).await.unwrap();
        }
        let dir = tempfile::tempdir().unwrap();
        let old = std::mem::replace(&mut self._dir, dir);
        Self::start_in(old, tweak).await
    }

    async fn start_in(dir: tempfile::TempDir, tweak: impl FnOnce(&mut Config)) -> TestGateway {
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

    /// Stop the gateway as SIGTERM would, allowing `grace`.
    pub async fn stop(mut self, grace: Duration) {
        if let Some(server) = self.server.take() {
            server.stop(grace).await.unwrap();
        }
    }

    /// The address the gateway listens on.
    pub fn addr(&self) -> std::net::SocketAddr {
        self.url.trim_start_matches("http://").parse().unwrap()
    }

    /// Runs running now in the gateway.
    pub fn active_runs(&self) -> usize {
        self.server.as_ref().unwrap().active_runs()
    }

    pub fn store(&self) -> &mosaic_store::Store {
        &self.server.as_ref().unwrap().store
    }

    /// A fresh bootstrap token (replacing the one printed at start).
    pub async fn bootstrap_token(&self) -> String {
        mosaic_gateway::accounts::issue_bootstrap_token(
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

    /// Send a request that must answer `want`; returns the JSON body.
    pub async fn expect(
        &self,
        want: StatusCode,
        method: Method,
        path: &str,
        token: &str,
        body: Value,
    ) -> Value {
        let (status, answer) = self.call(method, path, Some(token), Some(body)).await;
        assert_eq!(status, want, "{path}: {answer}");
        answer
    }

    /// As `token`, add an OpenAI-compatible provider of `scope` ("user" or "gateway").
    pub async fn provider(
        &self,
        token: &str,
        scope: &str,
        name: &str,
        base_url: &str,
        key: &str,
    ) -> Value {
        self.expect(
            StatusCode::CREATED,
            Method::POST,
            "/api/v1/providers",
            token,
            json!({"name": name, "kind": "openai-compatible", "base_url": base_url,
                "api_key": key, "scope": scope}),
        )
        .await
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

/// A gateway on a fresh database of either engine, for [`engines!`](crate::engines).
impl OnEngine for TestGateway {
    async fn open(engine: Engine) -> TestGateway {
        TestGateway::start_on(engine).await
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

/// One chunk of an OpenAI Chat Completions stream.
pub fn chunk(delta: Value, finish: Option<&str>) -> String {
    json!({"id": "u", "object": "chat.completion.chunk", "choices": [
        {"index": 0, "delta": delta, "finish_reason": finish}]})
    .to_string()
}

/// One event of a session's SSE stream.
#[derive(Debug, Clone, PartialEq)]
pub struct Ev {
    pub id: Option<u64>,
    pub kind: String,
    pub data: Value,
}

/// A subscriber of `GET /api/v1/sessions/{id}/events`, read in the background.
pub struct Events {
    rx: tokio::sync::mpsc::UnboundedReceiver<Ev>,
    task: tokio::task::JoinHandle<()>,
}

impl Events {
    /// Subscribe (resuming after `last` when given); returns once the gateway has
    /// registered the subscription.
    pub async fn open(gw: &TestGateway, token: &str, session: &str, last: Option<u64>) -> Events {
        let mut req = Self::request(gw, session).bearer_auth(token);
        if let Some(n) = last {
            req = req.header("Last-Event-ID", n.to_string());
        }
        Self::subscribe(req).await
    }

    /// Subscribe with a web session's cookie (`mosaic_session=…`).
    pub async fn open_with_cookie(gw: &TestGateway, cookie: &str, session: &str) -> Events {
        Self::subscribe(Self::request(gw, session).header(reqwest::header::COOKIE, cookie)).await
    }

    fn request(gw: &TestGateway, session: &str) -> reqwest::RequestBuilder {
        gw.http
            .get(format!("{}/api/v1/sessions/{session}/events", gw.url))
            .timeout(Duration::from_secs(600))
    }

    async fn subscribe(req: reqwest::RequestBuilder) -> Events {
        let resp = req.send().await.unwrap();
        assert_eq!(resp.status(), StatusCode::OK);
        assert_eq!(
            resp.headers()["content-type"].to_str().unwrap(),
            "text/event-stream"
        );
        let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
        let (ready_tx, ready_rx) = tokio::sync::oneshot::channel();
        let task = tokio::spawn(async move {
            use futures_util::StreamExt;
            let mut ready = Some(ready_tx);
            let mut body = resp.bytes_stream();
            let mut buf = String::new();
            while let Some(Ok(chunk)) = body.next().await {
                buf.push_str(&String::from_utf8_lossy(&chunk));
                while let Some(end) = buf.find("\n\n") {
                    let frame: String = buf.drain(..end + 2).collect();
                    let (mut id, mut kind, mut data) = (None, String::new(), String::new());
                    for line in frame.lines() {
                        if let Some(v) = line.strip_prefix("id: ") {
                            id = Some(v.parse().unwrap());
                        } else if let Some(v) = line.strip_prefix("event: ") {
                            kind = v.to_string();
                        } else if let Some(v) = line.strip_prefix("data: ") {
                            data.push_str(v);
                        } else if line.starts_with(':') {
                            if let Some(r) = ready.take() {
                                let _ = r.send(());
                            }
                        }
                    }
                    if !kind.is_empty() {
                        let data: Value = serde_json::from_str(&data).unwrap();
                        assert_eq!(data["type"], json!(kind), "the event: field names the type");
                        if tx.send(Ev { id, kind, data }).is_err() {
                            return;
                        }
                    }
                }
            }
        });
        tokio::time::timeout(Duration::from_secs(10), ready_rx)
            .await
            .expect("subscribed within 10 s")
            .unwrap();
        Events { rx, task }
    }

    /// The next event (fails the test after 20 s).
    pub async fn next(&mut self) -> Ev {
        tokio::time::timeout(Duration::from_secs(20), self.rx.recv())
            .await
            .expect("an event within 20 s")
            .expect("the stream is open")
    }

    /// Events up to and including the first one `stop` accepts.
    pub async fn until(&mut self, stop: impl Fn(&Ev) -> bool) -> Vec<Ev> {
        let mut out = Vec::new();
        loop {
            let e = self.next().await;
            let done = stop(&e);
            out.push(e);
            if done {
                return out;
            }
        }
    }

    /// Events up to the end of a run.
    pub async fn until_finished(&mut self) -> Vec<Ev> {
        self.until(|e| e.kind == "run_finished").await
    }

    /// Every event until the gateway ends the stream, or `None` when it is still open
    /// after `wait`.
    pub async fn until_closed(&mut self, wait: Duration) -> Option<Vec<Ev>> {
        let mut out = Vec::new();
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            match tokio::time::timeout_at(deadline, self.rx.recv()).await {
                Ok(Some(e)) => out.push(e),
                Ok(None) => return Some(out),
                Err(_) => return None,
            }
        }
    }

    /// An event arriving within `wait`, if any.
    pub async fn try_next(&mut self, wait: Duration) -> Option<Ev> {
        tokio::time::timeout(wait, self.rx.recv())
            .await
            .ok()
            .flatten()
    }
}

impl Drop for Events {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// As an admin, add a gateway-wide OpenAI-compatible provider named `name` at
/// `base_url` (a scripted server's `…/v1`).
pub async fn gateway_provider(gw: &TestGateway, admin: &str, name: &str, base_url: &str) {
    let (status, body) = gw
        .call(
            Method::POST,
            "/api/v1/providers",
            Some(admin),
            Some(json!({"name": name, "kind": "openai-compatible",
                "base_url": base_url, "scope": "gateway"})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
}

/// The id of `token`'s default agent.
pub async fn default_agent_id(gw: &TestGateway, token: &str) -> String {
    let (status, agents) = gw
        .call(Method::GET, "/api/v1/agents", Some(token), None)
        .await;
    assert_eq!(status, StatusCode::OK, "{agents}");
    agents["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["name"] == "default")
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string()
}

/// Point `token`'s default agent at `route` (with any other agent fields in `extra`);
/// the agent's id.
pub async fn route_default_agent(
    gw: &TestGateway,
    token: &str,
    route: &str,
    extra: Value,
) -> String {
    let id = default_agent_id(gw, token).await;
    let mut patch = json!({"route": route});
    for (k, v) in extra.as_object().unwrap() {
        patch[k] = v.clone();
    }
    let (status, body) = gw
        .call(
            Method::PATCH,
            &format!("/api/v1/agents/{id}"),
            Some(token),
            Some(patch),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    id
}

/// The route of the scripted provider [`scripted_model`] adds.
pub const SCRIPTED_ROUTE: &str = "mock/test-model";

/// As `admin`, add the gateway-wide provider `mock` on a scripted model server
/// (`base_url`, its `…/v1`) and point the admin's default agent at [`SCRIPTED_ROUTE`],
/// with any other agent fields in `agent`; the agent's id.
pub async fn scripted_model(gw: &TestGateway, admin: &str, base_url: &str, agent: Value) -> String {
    gateway_provider(gw, admin, "mock", base_url).await;
    route_default_agent(gw, admin, SCRIPTED_ROUTE, agent).await
}

/// A new session of `token`'s.
pub async fn new_session(gw: &TestGateway, token: &str) -> String {
    let (status, session) = gw
        .call(
            Method::POST,
            "/api/v1/sessions",
            Some(token),
            Some(json!({})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{session}");
    session["id"].as_str().unwrap().to_string()
}

/// Say `text` in `session` and wait for the run to complete; the session's entries.
pub async fn say(gw: &TestGateway, token: &str, session: &str, text: &str) -> Vec<Value> {
    let mut events = Events::open(gw, token, session, None).await;
    let (status, body) = gw
        .call(
            Method::POST,
            &format!("/api/v1/sessions/{session}/messages"),
            Some(token),
            Some(json!({"text": text})),
        )
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    let finished = events.until_finished().await;
    let run = &finished.last().unwrap().data["run"];
    assert_eq!(run["status"], "completed", "{run}");
    entries(gw, token, session).await
}

/// The entries of `session`'s active path.
pub async fn entries(gw: &TestGateway, token: &str, session: &str) -> Vec<Value> {
    let (status, entries) = gw
        .call(
            Method::GET,
            &format!("/api/v1/sessions/{session}/entries"),
            Some(token),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{entries}");
    entries["items"].as_array().unwrap().clone()
}

/// Say `text` in a new session; the session and its entries.
pub async fn chat(gw: &TestGateway, token: &str, text: &str) -> (String, Vec<Value>) {
    let session = new_session(gw, token).await;
    let entries = say(gw, token, &session, text).await;
    (session, entries)
}

/// The tasks `token` sees.
pub async fn tasks(gw: &TestGateway, token: &str) -> Vec<Value> {
    let (status, body) = gw
        .call(Method::GET, "/api/v1/tasks", Some(token), None)
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body["items"].as_array().unwrap().clone()
}
