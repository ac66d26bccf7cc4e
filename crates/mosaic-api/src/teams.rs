//! Teams group users; a member has one role in a team.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum TeamRole {
    Owner,
    Admin,
    Member,
}

impl TeamRole {
    pub fn as_str(self) -> &'static str {
        match self {
            TeamRole::Owner => "owner",
            TeamRole::Admin => "admin",
            TeamRole::Member => "member",
        }
    }

    pub fn parse(s: &str) -> Option<TeamRole> {
        match s {
            "owner" => Some(TeamRole::Owner),
            "admin" => Some(TeamRole::Admin),
            "member" => Some(TeamRole::Member),
            _ => None,
        }
    }

    /// Owners and admins manage members and team-owned workspaces.
    pub fn can_manage(self) -> bool {
        match self {
            TeamRole::Owner | TeamRole::Admin => true,
            TeamRole::Member => false,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Team {
    pub id: String,
    pub name: String,
    /// The caller's role in this team.
    pub role: TeamRole,
    pub created_at: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct CreateTeamRequest {
    #[schema(pattern = r"\S", max_length = 128)]
    pub name: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct UpdateTeamRequest {
    #[schema(pattern = r"\S", max_length = 128)]
    pub name: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct TeamMember {
    pub user_id: String,
    pub username: String,
    pub role: TeamRole,
    pub added_at: String,
}

/// The members of a team (never long enough to need pages).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct TeamMemberList {
    pub items: Vec<TeamMember>,
}

/// Add a user (by username) to a team, or change their role if already a member.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct AddMemberRequest {
    #[schema(pattern = r"^\s*[A-Za-z0-9][A-Za-z0-9._-]{0,63}\s*$")]
    pub username: String,
    #[serde(default = "default_role")]
    pub role: TeamRole,
}

fn default_role() -> TeamRole {
    TeamRole::Member
}
