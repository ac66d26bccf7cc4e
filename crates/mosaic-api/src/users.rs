//! Users: the accounts of one gateway.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct User {
    pub id: String,
    pub username: String,
    pub display_name: String,
    pub is_admin: bool,
    pub disabled: bool,
    pub created_at: String,
    pub updated_at: String,
}

/// Admin-only: create a user.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct CreateUserRequest {
    #[schema(pattern = r"^\s*[A-Za-z0-9][A-Za-z0-9._-]{0,63}\s*$")]
    pub username: String,
    #[schema(min_length = 8, max_length = 1024)]
    pub password: String,
    #[serde(default)]
    #[schema(max_length = 128)]
    pub display_name: Option<String>,
    #[serde(default)]
    pub is_admin: bool,
}

/// Change a user. A user may change their own `display_name`; only admins change the rest.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct UpdateUserRequest {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(max_length = 128)]
    pub display_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub disabled: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub is_admin: Option<bool>,
    /// Admin-only: set a new password without knowing the old one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(min_length = 8, max_length = 1024)]
    pub password: Option<String>,
}
