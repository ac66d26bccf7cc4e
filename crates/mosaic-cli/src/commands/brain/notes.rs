//! `mosaic notes`. `show` prints the fields, then the Markdown body as it is.

use anyhow::Result;
use mosaic_api::{CreateNoteRequest, Note, NoteQuery, UpdateNoteRequest};

use super::{or_dash, owner_text, read_body, resolve_project_opt, resolve_team_opt, set_or_clear};
use crate::cli::NotesCommand;
use crate::commands::{paged, print_page, usage, Ctx};
use crate::output::{fields, json};

fn show(ctx: &Ctx, n: &Note) -> Result<()> {
    if ctx.json {
        return json(n);
    }
    fields(&[
        ("id", n.id.clone()),
        ("title", n.title.clone()),
        ("tags", n.tags.join(", ")),
        ("project", or_dash(&n.project_id)),
        ("owner", owner_text(&n.owner)),
        ("created", n.created_at.clone()),
        ("updated", n.updated_at.clone()),
    ]);
    if !n.body.is_empty() {
        println!("\n{}", n.body.trim_end());
    }
    Ok(())
}

pub async fn notes(ctx: &Ctx, cmd: NotesCommand) -> Result<()> {
    let client = ctx.client()?;
    match cmd {
        NotesCommand::List {
            project,
            tag,
            q,
            page,
        } => {
            let project_id = resolve_project_opt(&client, project).await?;
            let list = paged(&page, |p| {
                let query = NoteQuery {
                    project_id: project_id.clone(),
                    tag: tag.clone(),
                    q: q.clone(),
                    cursor: p.cursor,
                    limit: p.limit,
                };
                let client = client.clone();
                async move { client.list_notes(&query).await }
            })
            .await?;
            print_page(ctx, &list, &["ID", "TITLE", "TAGS", "UPDATED"], |n| {
                vec![
                    n.id.clone(),
                    n.title.clone(),
                    n.tags.join(","),
                    n.updated_at.clone(),
                ]
            })
        }
        NotesCommand::Create {
            title,
            body,
            tags,
            project,
            team,
        } => {
            let req = CreateNoteRequest {
                title,
                body: read_body(body)?.unwrap_or_default(),
                tags,
                project_id: resolve_project_opt(&client, project).await?,
                team_id: resolve_team_opt(&client, team).await?,
            };
            show(ctx, &client.create_note(&req).await?)
        }
        NotesCommand::Show { id } => show(ctx, &client.get_note(&id).await?),
        NotesCommand::Edit {
            id,
            title,
            body,
            tags,
            no_tags,
            project,
            no_project,
        } => {
            let tags = match (no_tags, tags.is_empty()) {
                (true, _) => Some(Vec::new()),
                (false, false) => Some(tags),
                (false, true) => None,
            };
            let req = UpdateNoteRequest {
                title,
                body: read_body(body)?,
                tags,
                project_id: set_or_clear(resolve_project_opt(&client, project).await?, no_project),
            };
            if req == UpdateNoteRequest::default() {
                return Err(usage(
                    "nothing to change: pass --title, --body, --file, --tag, --no-tags, --project or --no-project",
                ));
            }
            show(ctx, &client.update_note(&id, &req).await?)
        }
        NotesCommand::Delete { id } => {
            client.delete_note(&id).await?;
            eprintln!("deleted note {id}");
            Ok(())
        }
    }
}
