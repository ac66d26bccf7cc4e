//! Logging in and out, the first admin's bootstrap, and password changes.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::{ApiToken, User};

/// How a login wants its credential: a browser cookie session, or a bearer token.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum LoginMode {
    /// An HttpOnly cookie session plus a CSRF token (the web UI).
    #[default]
    Cookie,
    /// A bearer API token with every scope, returned once in the body (the CLI and TUI).
    Token,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct LoginRequest {
    pub username: String,
    pub password: String,
    #[serde(default)]
    pub mode: LoginMode,
    /// Name of the token created in `token` mode (for example the host name).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token_name: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct LoginResponse {
    pub user: User,
    /// `cookie` mode: echo this in the `X-CSRF-Token` header on unsafe requests.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub csrf_token: Option<String>,
    /// `token` mode: the bearer token. Shown only this once.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token: Option<String>,
    /// `token` mode: the stored record of that token.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token_info: Option<ApiToken>,
}

/// Redeem the one-shot bootstrap token printed at first start: creates the first admin.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct BootstrapRequest {
    pub token: String,
    #[schema(pattern = r"^\s*[A-Za-z0-9][A-Za-z0-9._-]{0,63}\s*$")]
    pub username: String,
    #[schema(min_length = 8, max_length = 1024)]
    pub password: String,
    #[serde(default)]
    #[schema(max_length = 128)]
    pub display_name: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ChangePasswordRequest {
    pub current_password: String,
    #[schema(min_length = 8, max_length = 1024)]
    pub new_password: String,
}

/// Who the caller is, and through what credential.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct WhoAmI {
    pub user: User,
    /// `cookie` or `token`.
    pub credential: String,
    pub scopes: Vec<crate::Scope>,
}

/// Whether the gateway still waits for its first admin.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct BootstrapStatus {
    pub needs_bootstrap: bool,
}
