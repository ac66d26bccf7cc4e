//! `mosaic teams`: teams and their members' roles.

use anyhow::Result;
use clap::Subcommand;
use mosaic_api::{AddMemberRequest, CreateTeamRequest, Team, TeamRole, UpdateTeamRequest};

use crate::commands::{paged, print_page, usage, Ctx, PageArgs};
use crate::output::{fields, json, table};

#[derive(Debug, Subcommand)]
pub enum TeamsCommand {
    /// List your teams.
    List(PageArgs),
    /// Create a team (you become its owner).
    Create { name: String },
    /// Show a team.
    Show { id: String },
    /// Rename a team.
    Rename { id: String, name: String },
    /// Delete a team and its workspaces.
    Delete { id: String },
    /// List a team's members.
    Members { id: String },
    /// Add a member, or change their role.
    AddMember {
        id: String,
        username: String,
        /// owner, admin or member.
        #[arg(long, default_value = "member")]
        role: String,
    },
    /// Remove a member (or yourself).
    RemoveMember { id: String, user_id: String },
}

fn show_team(ctx: &Ctx, t: &Team) -> Result<()> {
    if ctx.json {
        return json(t);
    }
    fields(&[
        ("id", t.id.clone()),
        ("name", t.name.clone()),
        ("your role", t.role.as_str().into()),
        ("created", t.created_at.clone()),
    ]);
    Ok(())
}

fn parse_role(s: &str) -> Result<TeamRole> {
    TeamRole::parse(s).ok_or_else(|| {
        usage(format!(
            "unknown role '{s}' (expected owner, admin or member)"
        ))
    })
}

pub async fn teams(ctx: &Ctx, cmd: TeamsCommand) -> Result<()> {
    let client = ctx.client()?;
    match cmd {
        TeamsCommand::List(args) => {
            let page = paged(&args, |q| {
                let c = client.clone();
                async move { c.list_teams(&q).await }
            })
            .await?;
            print_page(ctx, &page, &["ID", "NAME", "YOUR ROLE"], |t| {
                vec![t.id.clone(), t.name.clone(), t.role.as_str().into()]
            })
        }
        TeamsCommand::Create { name } => {
            show_team(ctx, &client.create_team(&CreateTeamRequest { name }).await?)
        }
        TeamsCommand::Show { id } => show_team(ctx, &client.get_team(&id).await?),
        TeamsCommand::Rename { id, name } => show_team(
            ctx,
            &client.update_team(&id, &UpdateTeamRequest { name }).await?,
        ),
        TeamsCommand::Delete { id } => {
            client.delete_team(&id).await?;
            eprintln!("deleted team {id}");
            Ok(())
        }
        TeamsCommand::Members { id } => {
            let members = client.list_team_members(&id).await?;
            if ctx.json {
                return json(&members);
            }
            let rows: Vec<Vec<String>> = members
                .items
                .iter()
                .map(|m| {
                    vec![
                        m.user_id.clone(),
                        m.username.clone(),
                        m.role.as_str().into(),
                        m.added_at.clone(),
                    ]
                })
                .collect();
            table(&["USER ID", "USERNAME", "ROLE", "ADDED"], &rows);
            Ok(())
        }
        TeamsCommand::AddMember { id, username, role } => {
            let member = client
                .add_team_member(
                    &id,
                    &AddMemberRequest {
                        username,
                        role: parse_role(&role)?,
                    },
                )
                .await?;
            if ctx.json {
                return json(&member);
            }
            eprintln!(
                "{} is now {} of team {id}",
                member.username,
                member.role.as_str()
            );
            Ok(())
        }
        TeamsCommand::RemoveMember { id, user_id } => {
            client.remove_team_member(&id, &user_id).await?;
            eprintln!("removed {user_id} from team {id}");
            Ok(())
        }
    }
}
