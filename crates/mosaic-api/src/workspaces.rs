//! Workspaces group projects; each is owned by one user or one team.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// Who owns a workspace.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Owner {
    User {
        id: String,
    },
    Team {
        id: String,
    },
    /// An owner of a kind this build does not know (a newer gateway's): shown as such,
    /// never sent.
    #[serde(other, skip_serializing)]
    Unknown,
}

impl Owner {
    /// `user ID`, `team ID`, or `unknown`, for people.
    pub fn describe(&self) -> String {
        match self {
            Owner::User { id } => format!("user {id}"),
            Owner::Team { id } => format!("team {id}"),
            Owner::Unknown => "unknown".into(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Workspace {
    pub id: String,
    pub name: String,
    pub description: String,
    pub owner: Owner,
    pub created_at: String,
    pub updated_at: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct CreateWorkspaceRequest {
    #[schema(pattern = r"\S", max_length = 128)]
    pub name: String,
    #[serde(default)]
    #[schema(max_length = 4000)]
    pub description: Option<String>,
    /// Create the workspace for this team (caller must be its owner or admin);
    /// owned by the caller when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub team_id: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct UpdateWorkspaceRequest {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(pattern = r"\S", max_length = 128)]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(max_length = 4000)]
    pub description: Option<String>,
}
