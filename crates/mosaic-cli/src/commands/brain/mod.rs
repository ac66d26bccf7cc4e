//! `mosaic projects|tasks|missions|notes|memory|search`: the brain. Items are named by
//! id; projects and teams also by name, and users by id or `me`, resolved here with one
//! extra request (the API itself takes ids only). Bodies come from a flag, standard
//! input or a file, so long Markdown never has to pass through the shell. Filters mirror
//! the API's query structs (`ProjectQuery`, `TaskQuery`, `MissionQuery`, `NoteQuery`);
//! edits are partial, and a `--no-…` flag clears a field that may be empty.

mod memory;
mod missions;
mod notes;
mod projects;
mod tasks;

pub use memory::{memory, MemoryCommand};
pub use missions::{missions, MissionsCommand};
pub use notes::{notes, NotesCommand};
pub use projects::{projects, ProjectsCommand};
pub use tasks::{tasks, TasksCommand};

use std::io::Read;
use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::Args;
use mosaic_api::{BrainKind, PageQuery, ProjectQuery, SearchMode};
use mosaic_client::{Client, SearchQuery};

use crate::commands::{print_list, usage, Ctx};

fn brain_kinds() -> clap::builder::PossibleValuesParser {
    ["task", "note", "memory"].into()
}

/// A body: text, `-` for standard input, or a file.
#[derive(Debug, Args, Clone, Default)]
pub struct BodyArgs {
    /// The body (Markdown); `-` reads it from standard input.
    #[arg(long, value_name = "TEXT", conflicts_with = "file")]
    pub body: Option<String>,
    /// Read the body from this file.
    #[arg(long, value_name = "PATH")]
    pub file: Option<PathBuf>,
}

#[derive(Debug, Args)]
#[command(after_long_help = "\
Tasks, notes and memories are searched by their words and, when the gateway has an \
embedding model (embedding_url, embedding_model), by meaning too; the two rankings are \
merged by reciprocal rank fusion. Matched words are shown between « and ». With --json \
each hit carries its fused score and its parts: lexical_rank and lexical_score (bm25 on \
SQLite, ts_rank on PostgreSQL), vector_rank and similarity (cosine); the answer's mode \
says whether meaning was used, and notice why not when the model could not answer.

Examples:
  mosaic search certificate
  mosaic search \"what does alice eat\" --kind memory
  mosaic search \"release checklist\" --kind note --limit 5 --json")]
pub struct SearchArgs {
    /// What to look for.
    pub query: String,
    /// Only this kind of item; repeatable, or comma-separated (default: all).
    #[arg(long = "kind", value_delimiter = ',', value_parser = brain_kinds())]
    pub kinds: Vec<String>,
    /// At most this many hits (1-100; default 20).
    #[arg(long, value_name = "N")]
    pub limit: Option<u32>,
    /// Go by words alone, even with an embedding model.
    #[arg(long)]
    pub words_only: bool,
}

/// The largest page the API serves; name lookups read one.
const LOOKUP_LIMIT: u32 = 500;

/// The body the flags give: `--body TEXT`, `--body -` (standard input), `--file PATH`.
fn read_body(args: BodyArgs) -> Result<Option<String>> {
    read_text(args.body, args.file)
}

/// Text from a flag (`-` for standard input) or from a file.
fn read_text(text: Option<String>, file: Option<PathBuf>) -> Result<Option<String>> {
    match (text, file) {
        (Some(text), _) if text == "-" => {
            let mut input = String::new();
            std::io::stdin()
                .read_to_string(&mut input)
                .context("reading standard input")?;
            Ok(Some(input))
        }
        (Some(text), _) => Ok(Some(text)),
        (None, Some(path)) => std::fs::read_to_string(&path)
            .with_context(|| format!("reading {}", path.display()))
            .map(Some),
        (None, None) => Ok(None),
    }
}

/// A team's id from an id or a name.
async fn resolve_team(client: &Client, team: &str) -> Result<String> {
    let page = client
        .list_teams(&PageQuery {
            cursor: None,
            limit: Some(LOOKUP_LIMIT),
        })
        .await?;
    Ok(page
        .items
        .iter()
        .find(|t| t.name == team)
        .map_or_else(|| team.to_string(), |t| t.id.clone()))
}

async fn resolve_team_opt(client: &Client, team: Option<String>) -> Result<Option<String>> {
    match team {
        Some(t) => Ok(Some(resolve_team(client, &t).await?)),
        None => Ok(None),
    }
}

/// A project's id from an id or a name; a name two projects share is refused.
async fn resolve_project(client: &Client, project: &str) -> Result<String> {
    let page = client
        .list_projects(&ProjectQuery {
            limit: Some(LOOKUP_LIMIT),
            ..ProjectQuery::default()
        })
        .await?;
    if page.items.iter().any(|p| p.id == project) {
        return Ok(project.to_string());
    }
    let named: Vec<_> = page.items.iter().filter(|p| p.name == project).collect();
    match named.as_slice() {
        [one] => Ok(one.id.clone()),
        [] => Ok(project.to_string()),
        [..] => Err(usage(format!(
            "{} projects are named '{project}'; name one by its id",
            named.len()
        ))),
    }
}

async fn resolve_project_opt(client: &Client, project: Option<String>) -> Result<Option<String>> {
    match project {
        Some(p) => Ok(Some(resolve_project(client, &p).await?)),
        None => Ok(None),
    }
}

/// A user's id from an id or `me`.
async fn resolve_user(client: &Client, user: Option<String>) -> Result<Option<String>> {
    match user.as_deref() {
        Some("me") => Ok(Some(client.whoami().await?.user.id)),
        Some(_) | None => Ok(user),
    }
}

/// A date for the API: `YYYY-MM-DD` becomes midnight UTC; anything else goes as it is
/// (RFC 3339, which the gateway checks).
fn date_arg(date: Option<String>) -> Option<String> {
    date.map(|d| {
        let b = d.as_bytes();
        let is_day = b.len() == 10
            && b.iter().enumerate().all(|(i, c)| match i {
                4 | 7 => *c == b'-',
                _ => c.is_ascii_digit(),
            });
        if is_day {
            format!("{d}T00:00:00Z")
        } else {
            d
        }
    })
}

/// `Some(None)` to clear, `Some(Some(v))` to set, `None` to leave as it is.
fn set_or_clear<T>(value: Option<T>, clear: bool) -> Option<Option<T>> {
    if clear {
        Some(None)
    } else {
        value.map(Some)
    }
}

fn or_dash(v: &Option<String>) -> String {
    v.clone().unwrap_or_else(|| "-".into())
}

/// Parse a value clap has already checked against the same list.
fn parse_enum<T>(value: Option<String>, parse: fn(&str) -> Option<T>) -> Result<Option<T>> {
    value
        .map(|v| parse(&v).ok_or_else(|| usage(format!("unknown value '{v}'"))))
        .transpose()
}

pub async fn search(ctx: &Ctx, args: SearchArgs) -> Result<()> {
    let client = ctx.client()?;
    let kinds = args
        .kinds
        .iter()
        .map(|k| BrainKind::parse(k).ok_or_else(|| usage(format!("unknown kind '{k}'"))))
        .collect::<Result<Vec<_>>>()?;
    let query = SearchQuery {
        q: args.query,
        kinds,
        limit: args.limit,
        mode: args.words_only.then_some(SearchMode::Lexical),
    };
    let hits = client.search_brain(&query).await?;
    if let Some(notice) = &hits.notice {
        if !ctx.json {
            eprintln!("note: {notice}");
        }
    }
    print_list(
        ctx,
        &hits,
        &hits.items,
        &["KIND", "ID", "TITLE", "MATCH"],
        |h| {
            vec![
                h.kind.as_str().to_string(),
                h.id.clone(),
                h.title.clone(),
                h.snippet.replace('\n', " "),
            ]
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use pretty_assertions::assert_eq;

    #[test]
    fn a_bare_day_is_midnight_utc_and_anything_else_goes_as_given() {
        assert_eq!(
            date_arg(Some("2026-12-01".into())),
            Some("2026-12-01T00:00:00Z".into())
        );
        assert_eq!(
            date_arg(Some("2026-12-01T09:30:00+02:00".into())),
            Some("2026-12-01T09:30:00+02:00".into())
        );
        assert_eq!(date_arg(Some("tomorrow".into())), Some("tomorrow".into()));
        assert_eq!(date_arg(None), None);
    }

    #[test]
    fn a_no_flag_clears_and_a_value_sets() {
        assert_eq!(set_or_clear(Some("x"), false), Some(Some("x")));
        assert_eq!(set_or_clear::<&str>(None, true), Some(None));
        assert_eq!(set_or_clear::<&str>(None, false), None);
    }
}
