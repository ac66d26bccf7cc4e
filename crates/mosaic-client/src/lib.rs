//! A typed client of the Mosaic HTTP API. The CLI and TUI reach the gateway only
//! through it: one method per API operation, errors carrying the gateway's code and
//! message. Account operations are here; providers, models, routes, usage and the
//! OpenAI-compatible endpoint are in `models.rs`, its event stream in `sse.rs`; agents,
//! sessions and the brain (projects, tasks, notes, search) in their own modules. Every
//! request carries the client's trace (`trace.rs`).

mod agents;
mod brain;
mod memories;
mod models;
mod runs;
mod sessions;
mod sse;
mod trace;

pub use brain::SearchQuery;
pub use models::{routing_of, Fallback, Routing};
pub use runs::{EventStream, LiveEvent};
pub use sse::ChatStream;

use mosaic_api::*;
use reqwest::{Method, StatusCode};
use serde::de::DeserializeOwned;
use serde::Serialize;

/// Why a call failed.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The gateway answered with an error.
    #[error("{message} ({status})")]
    Api {
        status: u16,
        code: ErrorCode,
        message: String,
    },
    /// The gateway could not be reached, or answered with something that is not the API.
    #[error("cannot reach the gateway at {url}: {source}")]
    Transport {
        url: String,
        #[source]
        source: reqwest::Error,
    },
    #[error("unexpected answer from the gateway: {0}")]
    Decode(String),
    #[error("invalid gateway URL '{0}'")]
    BadUrl(String),
    /// A streamed answer failed part-way: the model's error, or the stream broke off.
    #[error("the answer stream failed: {0}")]
    Stream(String),
}

impl ClientError {
    /// The API error code, when the gateway answered with one.
    pub fn code(&self) -> Option<ErrorCode> {
        match self {
            ClientError::Api { code, .. } => Some(*code),
            ClientError::Transport { .. }
            | ClientError::Decode(_)
            | ClientError::BadUrl(_)
            | ClientError::Stream(_) => None,
        }
    }
}

pub type Result<T> = std::result::Result<T, ClientError>;

/// A connection to one gateway, with an optional bearer token. Its requests are one
/// trace (see [`Client::trace_id`]); clones share it.
#[derive(Clone)]
pub struct Client {
    base: String,
    token: Option<String>,
    http: reqwest::Client,
    trace: trace::Trace,
}

pub(crate) fn path_segment(s: &str) -> String {
    // Ids and keys are URL-safe by construction; escape anything else defensively.
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

fn page_query(page: &PageQuery) -> Vec<(&'static str, String)> {
    let mut q = Vec::new();
    if let Some(c) = &page.cursor {
        q.push(("cursor", c.clone()));
    }
    if let Some(l) = page.limit {
        q.push(("limit", l.to_string()));
    }
    q
}

impl Client {
    /// A client of the gateway at `base_url` (for example `http://127.0.0.1:8420`).
    pub fn new(base_url: &str, token: Option<String>) -> Result<Client> {
        let base = base_url.trim_end_matches('/').to_string();
        if !(base.starts_with("http://") || base.starts_with("https://")) {
            return Err(ClientError::BadUrl(base_url.to_string()));
        }
        let http = reqwest::Client::builder()
            .user_agent(concat!("mosaic-client/", env!("CARGO_PKG_VERSION")))
            .connect_timeout(std::time::Duration::from_secs(10))
            // A gateway that stops answering mid-request must not hang the CLI; live
            // streams (later) send keep-alives well within this.
            .read_timeout(std::time::Duration::from_secs(120))
            .build()
            .map_err(|source| ClientError::Transport {
                url: base.clone(),
                source,
            })?;
        Ok(Client {
            base,
            token,
            http,
            trace: trace::Trace::new(),
        })
    }

    pub fn base_url(&self) -> &str {
        &self.base
    }

    /// The W3C trace id (32 hex digits) every request of this client carries in its
    /// `traceparent`, each with a span id of its own.
    pub fn trace_id(&self) -> String {
        self.trace.to_string()
    }

    pub fn with_token(mut self, token: Option<String>) -> Client {
        self.token = token;
        self
    }

    /// A request to `path`, carrying the token and the trace. Every request is made
    /// here, streams included.
    pub(crate) fn request(
        &self,
        method: Method,
        path: &str,
        query: &[(&str, String)],
    ) -> reqwest::RequestBuilder {
        let url = format!("{}{}", self.base, path);
        let req = self
            .http
            .request(method, &url)
            .query(query)
            .header(trace::TRACEPARENT, self.trace.traceparent());
        match &self.token {
            Some(token) => req.bearer_auth(token),
            None => req,
        }
    }

    pub(crate) async fn send<B: Serialize + ?Sized>(
        &self,
        method: Method,
        path: &str,
        query: &[(&str, String)],
        body: Option<&B>,
    ) -> Result<reqwest::Response> {
        let mut req = self.request(method, path, query);
        if let Some(body) = body {
            req = req.json(body);
        }
        self.execute(req).await
    }

    /// Send a request; a non-success answer becomes [`ClientError::Api`].
    pub(crate) async fn execute(&self, req: reqwest::RequestBuilder) -> Result<reqwest::Response> {
        let resp = req.send().await.map_err(|source| ClientError::Transport {
            url: self.base.clone(),
            source,
        })?;
        if resp.status().is_success() {
            return Ok(resp);
        }
        let status = resp.status().as_u16();
        let text = resp.text().await.unwrap_or_default();
        Err(match serde_json::from_str::<ErrorBody>(&text) {
            Ok(body) => ClientError::Api {
                status,
                code: body.error.code,
                message: body.error.message,
            },
            Err(_) => ClientError::Api {
                status,
                code: ErrorCode::from_status(status),
                message: if text.is_empty() {
                    StatusCode::from_u16(status)
                        .ok()
                        .and_then(|s| s.canonical_reason())
                        .unwrap_or("error")
                        .to_string()
                } else {
                    text.chars().take(500).collect()
                },
            },
        })
    }

    /// Read a whole answer as text.
    pub(crate) async fn text(&self, resp: reqwest::Response) -> Result<String> {
        resp.text().await.map_err(|source| ClientError::Transport {
            url: self.base.clone(),
            source,
        })
    }

    pub(crate) async fn json<T: DeserializeOwned, B: Serialize + ?Sized>(
        &self,
        method: Method,
        path: &str,
        query: &[(&str, String)],
        body: Option<&B>,
    ) -> Result<T> {
        let resp = self.send(method, path, query, body).await?;
        let bytes = resp
            .bytes()
            .await
            .map_err(|source| ClientError::Transport {
                url: self.base.clone(),
                source,
            })?;
        serde_json::from_slice(&bytes).map_err(|e| ClientError::Decode(e.to_string()))
    }

    pub(crate) async fn get<T: DeserializeOwned>(
        &self,
        path: &str,
        query: &[(&str, String)],
    ) -> Result<T> {
        self.json::<T, ()>(Method::GET, path, query, None).await
    }

    pub(crate) async fn empty<B: Serialize + ?Sized>(
        &self,
        method: Method,
        path: &str,
        body: Option<&B>,
    ) -> Result<()> {
        self.send(method, path, &[], body).await.map(|_| ())
    }

    // --- health ---

    pub async fn healthz(&self) -> Result<serde_json::Value> {
        self.get("/healthz", &[]).await
    }

    pub async fn readyz(&self) -> Result<serde_json::Value> {
        self.get("/readyz", &[]).await
    }

    // --- auth ---

    pub async fn bootstrap_status(&self) -> Result<BootstrapStatus> {
        self.get("/api/v1/auth/bootstrap", &[]).await
    }

    pub async fn bootstrap(&self, req: &BootstrapRequest) -> Result<User> {
        self.json(Method::POST, "/api/v1/auth/bootstrap", &[], Some(req))
            .await
    }

    pub async fn login(&self, req: &LoginRequest) -> Result<LoginResponse> {
        self.json(Method::POST, "/api/v1/auth/login", &[], Some(req))
            .await
    }

    pub async fn logout(&self) -> Result<()> {
        self.empty::<()>(Method::POST, "/api/v1/auth/logout", None)
            .await
    }

    pub async fn whoami(&self) -> Result<WhoAmI> {
        self.get("/api/v1/auth/me", &[]).await
    }

    pub async fn change_password(&self, req: &ChangePasswordRequest) -> Result<()> {
        self.empty(Method::PUT, "/api/v1/auth/password", Some(req))
            .await
    }

    // --- users ---

    pub async fn list_users(&self, page: &PageQuery) -> Result<Page<User>> {
        self.get("/api/v1/users", &page_query(page)).await
    }

    pub async fn create_user(&self, req: &CreateUserRequest) -> Result<User> {
        self.json(Method::POST, "/api/v1/users", &[], Some(req))
            .await
    }

    pub async fn get_user(&self, id: &str) -> Result<User> {
        self.get(&format!("/api/v1/users/{}", path_segment(id)), &[])
            .await
    }

    pub async fn update_user(&self, id: &str, req: &UpdateUserRequest) -> Result<User> {
        self.json(
            Method::PATCH,
            &format!("/api/v1/users/{}", path_segment(id)),
            &[],
            Some(req),
        )
        .await
    }

    pub async fn delete_user(&self, id: &str) -> Result<()> {
        self.empty::<()>(
            Method::DELETE,
            &format!("/api/v1/users/{}", path_segment(id)),
            None,
        )
        .await
    }

    // --- tokens ---

    pub async fn list_tokens(&self, page: &PageQuery) -> Result<Page<ApiToken>> {
        self.get("/api/v1/tokens", &page_query(page)).await
    }

    pub async fn create_token(&self, req: &CreateTokenRequest) -> Result<CreateTokenResponse> {
        self.json(Method::POST, "/api/v1/tokens", &[], Some(req))
            .await
    }

    pub async fn get_token(&self, id: &str) -> Result<ApiToken> {
        self.get(&format!("/api/v1/tokens/{}", path_segment(id)), &[])
            .await
    }

    pub async fn revoke_token(&self, id: &str) -> Result<()> {
        self.empty::<()>(
            Method::DELETE,
            &format!("/api/v1/tokens/{}", path_segment(id)),
            None,
        )
        .await
    }

    // --- teams ---

    pub async fn list_teams(&self, page: &PageQuery) -> Result<Page<Team>> {
        self.get("/api/v1/teams", &page_query(page)).await
    }

    pub async fn create_team(&self, req: &CreateTeamRequest) -> Result<Team> {
        self.json(Method::POST, "/api/v1/teams", &[], Some(req))
            .await
    }

    pub async fn get_team(&self, id: &str) -> Result<Team> {
        self.get(&format!("/api/v1/teams/{}", path_segment(id)), &[])
            .await
    }

    pub async fn update_team(&self, id: &str, req: &UpdateTeamRequest) -> Result<Team> {
        self.json(
            Method::PATCH,
            &format!("/api/v1/teams/{}", path_segment(id)),
            &[],
            Some(req),
        )
        .await
    }

    pub async fn delete_team(&self, id: &str) -> Result<()> {
        self.empty::<()>(
            Method::DELETE,
            &format!("/api/v1/teams/{}", path_segment(id)),
            None,
        )
        .await
    }

    pub async fn list_team_members(&self, id: &str) -> Result<TeamMemberList> {
        self.get(&format!("/api/v1/teams/{}/members", path_segment(id)), &[])
            .await
    }

    pub async fn add_team_member(&self, id: &str, req: &AddMemberRequest) -> Result<TeamMember> {
        let path = format!("/api/v1/teams/{}/members", path_segment(id));
        self.json(Method::POST, &path, &[], Some(req)).await
    }

    pub async fn remove_team_member(&self, id: &str, user_id: &str) -> Result<()> {
        let path = format!(
            "/api/v1/teams/{}/members/{}",
            path_segment(id),
            path_segment(user_id)
        );
        self.empty::<()>(Method::DELETE, &path, None).await
    }

    // --- workspaces ---

    pub async fn list_workspaces(&self, page: &PageQuery) -> Result<Page<Workspace>> {
        self.get("/api/v1/workspaces", &page_query(page)).await
    }

    pub async fn create_workspace(&self, req: &CreateWorkspaceRequest) -> Result<Workspace> {
        self.json(Method::POST, "/api/v1/workspaces", &[], Some(req))
            .await
    }

    pub async fn get_workspace(&self, id: &str) -> Result<Workspace> {
        self.get(&format!("/api/v1/workspaces/{}", path_segment(id)), &[])
            .await
    }

    pub async fn update_workspace(
        &self,
        id: &str,
        req: &UpdateWorkspaceRequest,
    ) -> Result<Workspace> {
        let path = format!("/api/v1/workspaces/{}", path_segment(id));
        self.json(Method::PATCH, &path, &[], Some(req)).await
    }

    pub async fn delete_workspace(&self, id: &str) -> Result<()> {
        self.empty::<()>(
            Method::DELETE,
            &format!("/api/v1/workspaces/{}", path_segment(id)),
            None,
        )
        .await
    }

    // --- preferences ---

    pub async fn list_preferences(&self) -> Result<PreferenceList> {
        self.get("/api/v1/preferences", &[]).await
    }

    pub async fn get_preference(&self, key: &str) -> Result<Preference> {
        self.get(&format!("/api/v1/preferences/{}", path_segment(key)), &[])
            .await
    }

    pub async fn set_preference(
        &self,
        key: &str,
        req: &SetPreferenceRequest,
    ) -> Result<Preference> {
        let path = format!("/api/v1/preferences/{}", path_segment(key));
        self.json(Method::PUT, &path, &[], Some(req)).await
    }

    pub async fn delete_preference(&self, key: &str) -> Result<()> {
        let path = format!("/api/v1/preferences/{}", path_segment(key));
        self.empty::<()>(Method::DELETE, &path, None).await
    }
}
