//! `mosaic memory`: what your agents remember, and what they keep pinned in view.

use anyhow::Result;
use clap::{Subcommand, ValueEnum};
use mosaic_api::{CreateMemoryRequest, Memory, MemoryQuery, UpdateMemoryRequest};
use mosaic_client::Client;

use super::{or_dash, resolve_team_opt};
use crate::commands::{agents, paged, print_page, usage, Ctx, PageArgs};
use crate::output::{fields, json};

/// What a memory records (the same words the API uses).
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum KindArg {
    Fact,
    Preference,
    Instruction,
    Decision,
    Event,
}

impl KindArg {
    pub fn api(self) -> mosaic_api::MemoryKind {
        match self {
            KindArg::Fact => mosaic_api::MemoryKind::Fact,
            KindArg::Preference => mosaic_api::MemoryKind::Preference,
            KindArg::Instruction => mosaic_api::MemoryKind::Instruction,
            KindArg::Decision => mosaic_api::MemoryKind::Decision,
            KindArg::Event => mosaic_api::MemoryKind::Event,
        }
    }
}

#[derive(Debug, Subcommand)]
#[command(after_long_help = "\
Memories are short things worth remembering: facts about you, preferences, standing \
instructions, decisions, events. Your agents save them with the `remember` tool and find \
them with `recall`; you manage them here. Pinned memories are put into the context of \
every run (with --agent: of that agent's runs only), so pin what an agent should always \
keep in view. `mosaic search --kind memory WORDS` searches them by words and meaning.

Examples:
  mosaic memory add \"I am allergic to peanuts\" --kind fact --tag health --pin
  mosaic memory add \"Answer in British English\" --kind instruction --pin --agent writer
  mosaic memory list --pinned
  mosaic memory edit MEMORY_ID --unpin
  mosaic memory forget MEMORY_ID")]
pub enum MemoryCommand {
    /// List the memories you can see, newest first.
    List {
        /// Only memories of this kind.
        #[arg(long, value_enum)]
        kind: Option<KindArg>,
        /// Only memories with this tag.
        #[arg(long)]
        tag: Option<String>,
        /// Only pinned memories.
        #[arg(long, conflicts_with = "unpinned")]
        pinned: bool,
        /// Only memories that are not pinned.
        #[arg(long)]
        unpinned: bool,
        /// Only memories pinned for this agent (id or name).
        #[arg(long)]
        agent: Option<String>,
        /// Only memories containing all these words.
        #[arg(long, value_name = "WORDS")]
        q: Option<String>,
        #[command(flatten)]
        page: PageArgs,
    },
    /// Save a memory.
    #[command(alias = "create")]
    Add {
        /// The memory: one short, self-contained statement (up to 2,000 characters).
        text: String,
        /// What it records (default: fact).
        #[arg(long, value_enum)]
        kind: Option<KindArg>,
        /// A tag; repeatable, or comma-separated.
        #[arg(long = "tag", value_delimiter = ',')]
        tags: Vec<String>,
        /// 1 (trivia) to 5 (essential); default 3.
        #[arg(long, value_parser = clap::value_parser!(u8).range(1..=5))]
        importance: Option<u8>,
        /// Put it into the context of every run.
        #[arg(long)]
        pin: bool,
        /// Pinned for this agent's runs only (id or name).
        #[arg(long)]
        agent: Option<String>,
        /// Owned by this team (id or name) instead of you.
        #[arg(long)]
        team: Option<String>,
    },
    /// Print a memory.
    Show { id: String },
    /// Change a memory; only the fields given change.
    Edit {
        id: String,
        /// New text.
        #[arg(long)]
        text: Option<String>,
        #[arg(long, value_enum)]
        kind: Option<KindArg>,
        /// Replace every tag; repeatable, or comma-separated.
        #[arg(long = "tag", value_delimiter = ',', conflicts_with = "no_tags")]
        tags: Vec<String>,
        /// Remove every tag.
        #[arg(long)]
        no_tags: bool,
        #[arg(long, value_parser = clap::value_parser!(u8).range(1..=5))]
        importance: Option<u8>,
        /// Pin it: into the context of every run.
        #[arg(long, conflicts_with = "unpin")]
        pin: bool,
        /// Unpin it.
        #[arg(long)]
        unpin: bool,
        /// Pin it for this agent only (id or name).
        #[arg(long, conflicts_with = "all_agents")]
        agent: Option<String>,
        /// Pin it for every agent again.
        #[arg(long)]
        all_agents: bool,
    },
    /// Forget (delete) a memory.
    #[command(alias = "delete")]
    Forget { id: String },
}

fn show(ctx: &Ctx, m: &Memory) -> Result<()> {
    if ctx.json {
        return json(m);
    }
    fields(&[
        ("id", m.id.clone()),
        ("text", m.text.clone()),
        ("kind", m.kind.as_str().to_string()),
        ("tags", m.tags.join(", ")),
        ("importance", m.importance.to_string()),
        ("pinned", pinned_text(m)),
        ("learnt in", or_dash(&m.source_session_id)),
        ("owner", m.owner.describe()),
        (
            "embedded",
            if m.embedded { "yes" } else { "not yet" }.to_string(),
        ),
        ("created", m.created_at.clone()),
        ("updated", m.updated_at.clone()),
        ("last recalled", or_dash(&m.used_at)),
    ]);
    Ok(())
}

fn pinned_text(m: &Memory) -> String {
    match (m.pinned, &m.agent_id) {
        (false, _) => "no".into(),
        (true, None) => "yes, for every agent".into(),
        (true, Some(agent)) => format!("yes, for agent {agent}"),
    }
}

async fn resolve_agent_opt(client: &Client, agent: Option<String>) -> Result<Option<String>> {
    match agent {
        Some(a) => Ok(Some(agents::resolve(client, &a).await?)),
        None => Ok(None),
    }
}

pub async fn memory(ctx: &Ctx, cmd: MemoryCommand) -> Result<()> {
    let client = ctx.client()?;
    match cmd {
        MemoryCommand::List {
            kind,
            tag,
            pinned,
            unpinned,
            agent,
            q,
            page,
        } => {
            let agent_id = resolve_agent_opt(&client, agent).await?;
            let pinned = match (pinned, unpinned) {
                (true, _) => Some(true),
                (_, true) => Some(false),
                _ => None,
            };
            let list = paged(&page, |p| {
                let query = MemoryQuery {
                    kind: kind.map(|k| k.api()),
                    tag: tag.clone(),
                    pinned,
                    agent_id: agent_id.clone(),
                    q: q.clone(),
                    cursor: p.cursor,
                    limit: p.limit,
                };
                let client = client.clone();
                async move { client.list_memories(&query).await }
            })
            .await?;
            print_page(ctx, &list, &["ID", "KIND", "PIN", "TEXT"], |m| {
                vec![
                    m.id.clone(),
                    m.kind.as_str().to_string(),
                    if m.pinned { "*" } else { "" }.to_string(),
                    one_line(&m.text, 72),
                ]
            })
        }
        MemoryCommand::Add {
            text,
            kind,
            tags,
            importance,
            pin,
            agent,
            team,
        } => {
            let req = CreateMemoryRequest {
                text,
                kind: kind.map(|k| k.api()),
                tags,
                importance,
                pinned: pin,
                agent_id: resolve_agent_opt(&client, agent).await?,
                source_session_id: None,
                team_id: resolve_team_opt(&client, team).await?,
            };
            show(ctx, &client.create_memory(&req).await?)
        }
        MemoryCommand::Show { id } => show(ctx, &client.get_memory(&id).await?),
        MemoryCommand::Edit {
            id,
            text,
            kind,
            tags,
            no_tags,
            importance,
            pin,
            unpin,
            agent,
            all_agents,
        } => {
            let tags = match (no_tags, tags.is_empty()) {
                (true, _) => Some(Vec::new()),
                (false, false) => Some(tags),
                (false, true) => None,
            };
            let agent_id = match (resolve_agent_opt(&client, agent).await?, all_agents) {
                (Some(a), _) => Some(Some(a)),
                (None, true) => Some(None),
                (None, false) => None,
            };
            let req = UpdateMemoryRequest {
                text,
                kind: kind.map(|k| k.api()),
                tags,
                importance,
                pinned: match (pin, unpin) {
                    (true, _) => Some(true),
                    (_, true) => Some(false),
                    _ => None,
                },
                agent_id,
            };
            if req == UpdateMemoryRequest::default() {
                return Err(usage(
                    "nothing to change: pass --text, --kind, --tag, --no-tags, --importance, \
                     --pin, --unpin, --agent or --all-agents",
                ));
            }
            show(ctx, &client.update_memory(&id, &req).await?)
        }
        MemoryCommand::Forget { id } => {
            client.delete_memory(&id).await?;
            eprintln!("forgot memory {id}");
            Ok(())
        }
    }
}

/// The first line of `text`, cut to `max` characters.
fn one_line(text: &str, max: usize) -> String {
    let line = text.lines().next().unwrap_or_default();
    match line.char_indices().nth(max) {
        Some((cut, _)) => format!("{}…", &line[..cut]),
        None if text.lines().nth(1).is_some() => format!("{line}…"),
        None => line.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn list_rows_show_one_short_line() {
        assert_eq!(one_line("short", 10), "short");
        assert_eq!(one_line("first\nsecond", 10), "first…");
        assert_eq!(one_line("abcdefghijkl", 5), "abcde…");
    }
}
