//! `mosaic projects`.

use anyhow::Result;
use clap::Subcommand;
use mosaic_api::{
    CreateProjectRequest, Project, ProjectQuery, ProjectStatus, UpdateProjectRequest,
};

use super::{or_dash, parse_enum, resolve_project, resolve_team_opt, set_or_clear};
use crate::commands::{paged, print_page, usage, Ctx, PageArgs};
use crate::output::{fields, json};

fn project_statuses() -> clap::builder::PossibleValuesParser {
    ["active", "paused", "done", "archived"].into()
}

#[derive(Debug, Subcommand)]
pub enum ProjectsCommand {
    /// List the projects you can see (yours and your teams'), newest first.
    List {
        #[arg(long, value_parser = project_statuses())]
        status: Option<String>,
        /// Only projects in this workspace (id).
        #[arg(long, value_name = "ID")]
        workspace: Option<String>,
        /// Only this team's projects (id or name).
        #[arg(long)]
        team: Option<String>,
        #[command(flatten)]
        page: PageArgs,
    },
    /// Create a project.
    Create {
        name: String,
        #[arg(long)]
        description: Option<String>,
        /// Default: active.
        #[arg(long, value_parser = project_statuses())]
        status: Option<String>,
        /// Owned by this team (id or name) instead of you.
        #[arg(long)]
        team: Option<String>,
        /// Put it in this workspace (id) of the same owner.
        #[arg(long, value_name = "ID")]
        workspace: Option<String>,
    },
    /// Show a project (by id or name).
    Show { project: String },
    /// Change a project (by id or name); only the fields given change.
    Edit {
        project: String,
        /// A new name.
        #[arg(long)]
        name: Option<String>,
        /// A new description.
        #[arg(long)]
        description: Option<String>,
        /// A new status.
        #[arg(long, value_parser = project_statuses())]
        status: Option<String>,
        /// Move it to this workspace (id).
        #[arg(long, value_name = "ID", conflicts_with = "no_workspace")]
        workspace: Option<String>,
        /// Take it out of its workspace.
        #[arg(long)]
        no_workspace: bool,
    },
    /// Delete a project (by id or name).
    Delete { project: String },
}

fn show(ctx: &Ctx, p: &Project) -> Result<()> {
    if ctx.json {
        return json(p);
    }
    fields(&[
        ("id", p.id.clone()),
        ("name", p.name.clone()),
        ("status", p.status.as_str().to_string()),
        ("owner", p.owner.describe()),
        ("workspace", or_dash(&p.workspace_id)),
        ("created", p.created_at.clone()),
        ("updated", p.updated_at.clone()),
    ]);
    if !p.description.is_empty() {
        println!("\n{}", p.description);
    }
    Ok(())
}

pub async fn projects(ctx: &Ctx, cmd: ProjectsCommand) -> Result<()> {
    let client = ctx.client()?;
    match cmd {
        ProjectsCommand::List {
            status,
            workspace,
            team,
            page,
        } => {
            let status = parse_enum(status, ProjectStatus::parse)?;
            let team_id = resolve_team_opt(&client, team).await?;
            let list = paged(&page, |p| {
                let query = ProjectQuery {
                    status,
                    workspace_id: workspace.clone(),
                    team_id: team_id.clone(),
                    cursor: p.cursor,
                    limit: p.limit,
                };
                let client = client.clone();
                async move { client.list_projects(&query).await }
            })
            .await?;
            print_page(ctx, &list, &["ID", "NAME", "STATUS", "OWNER"], |p| {
                vec![
                    p.id.clone(),
                    p.name.clone(),
                    p.status.as_str().to_string(),
                    p.owner.describe(),
                ]
            })
        }
        ProjectsCommand::Create {
            name,
            description,
            status,
            team,
            workspace,
        } => {
            let req = CreateProjectRequest {
                name,
                description: description.unwrap_or_default(),
                status: parse_enum(status, ProjectStatus::parse)?,
                team_id: resolve_team_opt(&client, team).await?,
                workspace_id: workspace,
            };
            show(ctx, &client.create_project(&req).await?)
        }
        ProjectsCommand::Show { project } => {
            let id = resolve_project(&client, &project).await?;
            show(ctx, &client.get_project(&id).await?)
        }
        ProjectsCommand::Edit {
            project,
            name,
            description,
            status,
            workspace,
            no_workspace,
        } => {
            let req = UpdateProjectRequest {
                name,
                description,
                status: parse_enum(status, ProjectStatus::parse)?,
                workspace_id: set_or_clear(workspace, no_workspace),
            };
            if req == UpdateProjectRequest::default() {
                return Err(usage(
                    "nothing to change: pass --name, --description, --status, --workspace or --no-workspace",
                ));
            }
            let id = resolve_project(&client, &project).await?;
            show(ctx, &client.update_project(&id, &req).await?)
        }
        ProjectsCommand::Delete { project } => {
            let id = resolve_project(&client, &project).await?;
            client.delete_project(&id).await?;
            eprintln!("deleted project {project}");
            Ok(())
        }
    }
}
