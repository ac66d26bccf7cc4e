//! `mosaic sessions`: the caller's conversations. `show` prints a branch as a transcript
//! (one block per entry, headed by its kind); `export` and `import` pass the gateway's
//! JSON Lines through untouched, so a file round-trips byte for byte.

use std::collections::HashMap;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use clap::Subcommand;
use mosaic_api::{
    Branch, CreateSessionRequest, Entry, EntryBody, Session, SessionQuery, StopReason,
    UpdateSessionRequest,
};
use mosaic_client::Client;

use crate::commands::agents::resolve;
use crate::commands::run::SessionRunsCommand;
use crate::commands::{paged, print_list, print_page, Ctx, PageArgs};
use crate::output::{fields, json, yes_no};

/// `mosaic sessions`: the conversations themselves, then what runs in them.
#[derive(Debug, Subcommand)]
pub enum SessionsCli {
    #[command(flatten)]
    Manage(SessionsCommand),
    #[command(flatten)]
    Runs(SessionRunsCommand),
}

#[derive(Debug, Subcommand)]
pub enum SessionsCommand {
    /// List your sessions, newest first.
    List {
        /// Only sessions whose title or entries contain this text.
        #[arg(long, value_name = "TEXT")]
        q: Option<String>,
        /// List archived sessions instead of active ones.
        #[arg(long)]
        archived: bool,
        #[command(flatten)]
        page: PageArgs,
    },
    /// Start a session.
    Create {
        /// The agent (id or name; default: `default`).
        #[arg(long)]
        agent: Option<String>,
        #[arg(long)]
        title: Option<String>,
    },
    /// Print the transcript of a branch (the active one unless --leaf names another).
    Show {
        id: String,
        /// The entry the branch ends at.
        #[arg(long, value_name = "ENTRY")]
        leaf: Option<String>,
    },
    /// List a session's branches, one per leaf.
    Branches { id: String },
    /// Continue a session from another entry.
    Switch { id: String, entry: String },
    /// Rename a session.
    Rename { id: String, title: String },
    /// Archive a session (hidden from the list unless --archived).
    Archive { id: String },
    /// Bring an archived session back.
    Unarchive { id: String },
    /// Delete a session and all its entries.
    Delete { id: String },
    /// Write a session as JSON Lines.
    Export {
        id: String,
        /// Write to this file instead of standard output.
        #[arg(long, short)]
        output: Option<PathBuf>,
    },
    /// Recreate a session from an export (`-` reads standard input).
    Import { file: PathBuf },
}

fn show(ctx: &Ctx, s: &Session) -> Result<()> {
    if ctx.json {
        return json(s);
    }
    fields(&[
        ("id", s.id.clone()),
        ("title", s.title.clone()),
        ("agent", s.agent_id.clone().unwrap_or_else(|| "-".into())),
        (
            "active leaf",
            s.active_leaf_id.clone().unwrap_or_else(|| "-".into()),
        ),
        ("archived", yes_no(s.archived)),
        ("created", s.created_at.clone()),
        ("updated", s.updated_at.clone()),
    ]);
    Ok(())
}

/// The heading of an entry's block: its kind, then what else identifies it.
fn heading(e: &Entry) -> String {
    let detail = match &e.body {
        EntryBody::User { .. } => String::new(),
        EntryBody::Assistant {
            model, stop_reason, ..
        } => [
            model.as_deref(),
            stop_reason.as_ref().map(StopReason::as_str),
        ]
        .into_iter()
        .flatten()
        .collect::<Vec<_>>()
        .join(", "),
        EntryBody::ToolCall { call_id, name, .. } => format!("{name}, call {call_id}"),
        EntryBody::ToolResult {
            call_id, is_error, ..
        } => {
            if *is_error {
                format!("call {call_id}, error")
            } else {
                format!("call {call_id}")
            }
        }
        EntryBody::ModelChange { .. } | EntryBody::Unknown => String::new(),
        EntryBody::Compaction {
            through_entry_id, ..
        } => format!("through {through_entry_id}"),
    };
    let kind = if detail.is_empty() {
        e.body.kind().to_string()
    } else {
        format!("{} ({detail})", e.body.kind())
    };
    format!("── {kind} · {} · {}", e.created_at, e.id)
}

/// The text of an entry's block.
fn text(e: &Entry) -> String {
    match &e.body {
        EntryBody::User { text } => text.clone(),
        EntryBody::Assistant { text, thinking, .. } => {
            if thinking.is_empty() {
                text.clone()
            } else {
                let quoted: Vec<String> = thinking.lines().map(|l| format!("> {l}")).collect();
                format!("{}\n\n{text}", quoted.join("\n"))
            }
        }
        EntryBody::ToolCall { arguments, .. } => arguments.clone(),
        EntryBody::ToolResult { output, .. } => output.clone(),
        EntryBody::ModelChange { route } => format!("route: {route}"),
        EntryBody::Compaction { summary, .. } => summary.clone(),
        EntryBody::Unknown => "(an entry of a kind this mosaic does not know)".into(),
    }
}

/// A branch as people read it: one block per entry, blank lines between.
fn transcript(entries: &[Entry]) -> String {
    entries
        .iter()
        .map(|e| format!("{}\n{}\n", heading(e), text(e).trim_end()))
        .collect::<Vec<_>>()
        .join("\n")
}

/// The first line of an entry, shortened, to tell branches apart.
fn preview(e: &Entry) -> String {
    let body = text(e);
    let line = body.lines().find(|l| !l.trim().is_empty()).unwrap_or("");
    let mut out: String = line.chars().take(60).collect();
    if line.chars().count() > 60 {
        out.push('…');
    }
    out
}

fn read_input(file: &Path) -> Result<String> {
    let mut text = String::new();
    if file.as_os_str() == "-" {
        std::io::stdin()
            .read_to_string(&mut text)
            .context("reading the export from standard input")?;
    } else {
        text =
            std::fs::read_to_string(file).with_context(|| format!("reading {}", file.display()))?;
    }
    Ok(text)
}

async fn set_archived(ctx: &Ctx, client: &Client, id: &str, archived: bool) -> Result<()> {
    let req = UpdateSessionRequest {
        title: None,
        archived: Some(archived),
    };
    show(ctx, &client.update_session(id, &req).await?)
}

pub async fn sessions(ctx: &Ctx, cmd: SessionsCommand) -> Result<()> {
    let client = ctx.client()?;
    match cmd {
        SessionsCommand::List { q, archived, page } => {
            let list = paged(&page, |p| {
                let query = SessionQuery {
                    q: q.clone(),
                    archived: archived.then_some(true),
                    cursor: p.cursor,
                    limit: p.limit,
                };
                let client = client.clone();
                async move { client.list_sessions(&query).await }
            })
            .await?;
            let agents: HashMap<String, String> = if ctx.json {
                HashMap::new()
            } else {
                let list = client.list_agents().await?;
                list.items.into_iter().map(|a| (a.id, a.name)).collect()
            };
            print_page(ctx, &list, &["ID", "TITLE", "AGENT", "UPDATED"], |s| {
                let agent = s.agent_id.as_deref().unwrap_or("-");
                vec![
                    s.id.clone(),
                    s.title.clone(),
                    agents.get(agent).cloned().unwrap_or_else(|| agent.into()),
                    s.updated_at.clone(),
                ]
            })
        }
        SessionsCommand::Create { agent, title } => {
            let agent_id = match agent {
                Some(a) => Some(resolve(&client, &a).await?),
                None => None,
            };
            let req = CreateSessionRequest { agent_id, title };
            show(ctx, &client.create_session(&req).await?)
        }
        SessionsCommand::Show { id, leaf } => {
            let entries = client.list_session_entries(&id, leaf.as_deref()).await?;
            if ctx.json {
                return json(&entries);
            }
            let session = client.get_session(&id).await?;
            let branch = match &leaf {
                Some(leaf) if session.active_leaf_id.as_deref() != Some(leaf.as_str()) => {
                    format!("ending at {leaf}")
                }
                Some(_) | None => "active".into(),
            };
            fields(&[
                ("session", format!("{} ({})", session.title, session.id)),
                (
                    "branch",
                    format!("{branch}, {} entries", entries.items.len()),
                ),
            ]);
            if !entries.items.is_empty() {
                print!("\n{}", transcript(&entries.items));
            }
            Ok(())
        }
        SessionsCommand::Branches { id } => {
            let list = client.list_session_branches(&id).await?;
            print_list(
                ctx,
                &list,
                &list.items,
                &["LEAF", "ACTIVE", "LENGTH", "KIND", "CREATED", "PREVIEW"],
                |b: &Branch| {
                    vec![
                        b.leaf.id.clone(),
                        if b.active { "*".into() } else { String::new() },
                        b.length.to_string(),
                        b.leaf.body.kind().to_string(),
                        b.leaf.created_at.clone(),
                        preview(&b.leaf),
                    ]
                },
            )
        }
        SessionsCommand::Switch { id, entry } => {
            show(ctx, &client.set_session_leaf(&id, &entry).await?)
        }
        SessionsCommand::Rename { id, title } => {
            let req = UpdateSessionRequest {
                title: Some(title),
                archived: None,
            };
            show(ctx, &client.update_session(&id, &req).await?)
        }
        SessionsCommand::Archive { id } => set_archived(ctx, &client, &id, true).await,
        SessionsCommand::Unarchive { id } => set_archived(ctx, &client, &id, false).await,
        SessionsCommand::Delete { id } => {
            client.delete_session(&id).await?;
            eprintln!("deleted session {id}");
            Ok(())
        }
        SessionsCommand::Export { id, output } => {
            let text = client.export_session(&id).await?;
            match output {
                Some(path) => std::fs::write(&path, text)
                    .with_context(|| format!("writing {}", path.display()))?,
                None => {
                    let mut out = std::io::stdout().lock();
                    out.write_all(text.as_bytes())?;
                    out.flush()?;
                }
            }
            Ok(())
        }
        SessionsCommand::Import { file } => {
            let text = read_input(&file)?;
            show(ctx, &client.import_session(text).await?)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use pretty_assertions::assert_eq;

    fn entry(id: &str, body: EntryBody) -> Entry {
        Entry {
            id: id.into(),
            parent_id: None,
            created_at: "2025-01-02T03:04:05.000Z".into(),
            body,
        }
    }

    #[test]
    fn a_transcript_has_one_block_per_entry_headed_by_its_kind() {
        let entries = [
            entry(
                "e1",
                EntryBody::User {
                    text: "What time is it?".into(),
                },
            ),
            entry(
                "e2",
                EntryBody::ToolCall {
                    call_id: "c1".into(),
                    name: "time_now".into(),
                    arguments: "{}".into(),
                },
            ),
            entry(
                "e3",
                EntryBody::ToolResult {
                    call_id: "c1".into(),
                    output: "timeout".into(),
                    is_error: true,
                },
            ),
            entry(
                "e4",
                EntryBody::Assistant {
                    text: "I could not tell.\n".into(),
                    thinking: "The tool failed.\nSay so.".into(),
                    model: Some("local/qwen".into()),
                    stop_reason: Some("stop".into()),
                    reasoning: Vec::new(),
                },
            ),
        ];
        let expected = "\
── user · 2025-01-02T03:04:05.000Z · e1
What time is it?

── tool_call (time_now, call c1) · 2025-01-02T03:04:05.000Z · e2
{}

── tool_result (call c1, error) · 2025-01-02T03:04:05.000Z · e3
timeout

── assistant (local/qwen, stop) · 2025-01-02T03:04:05.000Z · e4
> The tool failed.
> Say so.

I could not tell.
";
        assert_eq!(transcript(&entries), expected);
    }

    #[test]
    fn a_preview_is_the_first_line_shortened() {
        let e = entry(
            "e1",
            EntryBody::User {
                text: format!("\n{}\nsecond line", "x".repeat(70)),
            },
        );
        assert_eq!(preview(&e), format!("{}…", "x".repeat(60)));
    }
}
