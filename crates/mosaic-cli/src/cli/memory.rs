//! `mosaic memory …`: flags and help.

use clap::{Subcommand, ValueEnum};

use super::PageArgs;

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
