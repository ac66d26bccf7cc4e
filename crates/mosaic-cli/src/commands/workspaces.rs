//! `mosaic workspaces`: workspaces owned by you or by a team.

use anyhow::Result;
use clap::Subcommand;
use mosaic_api::{CreateWorkspaceRequest, UpdateWorkspaceRequest, Workspace};

use crate::commands::{paged, print_page, usage, Ctx, PageArgs};
use crate::output::{fields, json};

#[derive(Debug, Subcommand)]
pub enum WorkspacesCommand {
    /// List workspaces you can see.
    List(PageArgs),
    /// Create a workspace.
    Create {
        name: String,
        #[arg(long)]
        description: Option<String>,
        /// Owned by this team instead of you.
        #[arg(long)]
        team: Option<String>,
    },
    /// Show a workspace.
    Show { id: String },
    /// Rename or describe a workspace.
    Update {
        id: String,
        #[arg(long)]
        name: Option<String>,
        #[arg(long)]
        description: Option<String>,
    },
    /// Delete a workspace.
    Delete { id: String },
}

fn show_workspace(ctx: &Ctx, w: &Workspace) -> Result<()> {
    if ctx.json {
        return json(w);
    }
    fields(&[
        ("id", w.id.clone()),
        ("name", w.name.clone()),
        ("description", w.description.clone()),
        ("owner", w.owner.describe()),
        ("created", w.created_at.clone()),
        ("updated", w.updated_at.clone()),
    ]);
    Ok(())
}

pub async fn workspaces(ctx: &Ctx, cmd: WorkspacesCommand) -> Result<()> {
    let client = ctx.client()?;
    match cmd {
        WorkspacesCommand::List(args) => {
            let page = paged(&args, |q| {
                let c = client.clone();
                async move { c.list_workspaces(&q).await }
            })
            .await?;
            print_page(ctx, &page, &["ID", "NAME", "OWNER"], |w| {
                vec![w.id.clone(), w.name.clone(), w.owner.describe()]
            })
        }
        WorkspacesCommand::Create {
            name,
            description,
            team,
        } => {
            let req = CreateWorkspaceRequest {
                name,
                description,
                team_id: team,
            };
            show_workspace(ctx, &client.create_workspace(&req).await?)
        }
        WorkspacesCommand::Show { id } => show_workspace(ctx, &client.get_workspace(&id).await?),
        WorkspacesCommand::Update {
            id,
            name,
            description,
        } => {
            if name.is_none() && description.is_none() {
                return Err(usage("nothing to change: pass --name and/or --description"));
            }
            let req = UpdateWorkspaceRequest { name, description };
            show_workspace(ctx, &client.update_workspace(&id, &req).await?)
        }
        WorkspacesCommand::Delete { id } => {
            client.delete_workspace(&id).await?;
            eprintln!("deleted workspace {id}");
            Ok(())
        }
    }
}
