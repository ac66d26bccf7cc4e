//! `mosaic notes`. `show` prints the fields, then the Markdown body as it is.

use anyhow::Result;
use clap::Subcommand;
use mosaic_api::{CreateNoteRequest, Note, NoteQuery, UpdateNoteRequest};

use super::{or_dash, read_body, resolve_project_opt, resolve_team_opt, set_or_clear, BodyArgs};
use crate::commands::{paged, print_page, usage, Ctx, PageArgs};
use crate::output::{fields, json};

#[derive(Debug, Subcommand)]
#[command(after_long_help = "\
Examples:
  mosaic notes create \"Release checklist\" --file checklist.md --tag release
  git log --oneline | mosaic notes create \"Changes\" --body -
  mosaic notes list --tag release
  mosaic notes show NOTE_ID --json")]
pub enum NotesCommand {
    /// List the notes you can see, newest first.
    List {
        /// Only notes of this project (id or name).
        #[arg(long)]
        project: Option<String>,
        /// Only notes with this tag.
        #[arg(long)]
        tag: Option<String>,
        /// Only notes whose title or body contains all these words.
        #[arg(long, value_name = "WORDS")]
        q: Option<String>,
        #[command(flatten)]
        page: PageArgs,
    },
    /// Create a note.
    Create {
        title: String,
        #[command(flatten)]
        body: BodyArgs,
        /// A tag; repeatable, or comma-separated.
        #[arg(long = "tag", value_delimiter = ',')]
        tags: Vec<String>,
        /// The project (id or name).
        #[arg(long)]
        project: Option<String>,
        /// Owned by this team (id or name) instead of you.
        #[arg(long)]
        team: Option<String>,
    },
    /// Print a note: its fields, then its body.
    Show { id: String },
    /// Change a note; only the fields given change.
    Edit {
        id: String,
        /// A new title.
        #[arg(long)]
        title: Option<String>,
        #[command(flatten)]
        body: BodyArgs,
        /// Replace every tag; repeatable, or comma-separated.
        #[arg(long = "tag", value_delimiter = ',', conflicts_with = "no_tags")]
        tags: Vec<String>,
        /// Remove every tag.
        #[arg(long)]
        no_tags: bool,
        /// Move it to this project (id or name).
        #[arg(long, conflicts_with = "no_project")]
        project: Option<String>,
        /// Take it out of its project.
        #[arg(long)]
        no_project: bool,
    },
    /// Delete a note.
    Delete { id: String },
}

fn show(ctx: &Ctx, n: &Note) -> Result<()> {
    if ctx.json {
        return json(n);
    }
    fields(&[
        ("id", n.id.clone()),
        ("title", n.title.clone()),
        ("tags", n.tags.join(", ")),
        ("project", or_dash(&n.project_id)),
        ("owner", n.owner.describe()),
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
