//! The command line: the `mosaic` command, its global flags and its subcommands. Each
//! subcommand's own arguments live beside its handler in `commands/`.

use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::commands::admin::AdminCommand;
use crate::commands::agents::AgentsCommand;
use crate::commands::auth::{LoginArgs, PasswdArgs};
use crate::commands::brain::{
    MemoryCommand, MissionsCommand, NotesCommand, ProjectsCommand, SearchArgs, TasksCommand,
};
use crate::commands::complete::CompleteArgs;
use crate::commands::models::{ModelsCommand, ProvidersCommand, UsageArgs};
use crate::commands::prefs::PrefsCommand;
use crate::commands::routes::RoutesCommand;
use crate::commands::run::{ChatArgs, RunArgs};
use crate::commands::serve::{ConfigCommand, ServeArgs};
use crate::commands::sessions::SessionsCli;
use crate::commands::teams::TeamsCommand;
use crate::commands::tokens::TokensCommand;
use crate::commands::users::UsersCommand;
use crate::commands::workspaces::WorkspacesCommand;

/// Mosaic: a self-hosted, multi-user AI agent platform.
///
/// `mosaic serve` runs the gateway; every other command talks to a gateway over its
/// HTTP API (log in first with `mosaic login --url URL`).
#[derive(Debug, Parser)]
#[command(
    name = "mosaic",
    version,
    propagate_version = true,
    max_term_width = 100
)]
#[command(
    after_help = "Exit codes: 0 ok, 1 error, 2 usage, 3 not logged in or credential refused, \
4 forbidden, 5 not found, 6 conflict, 7 invalid input, 8 rate limited, 10 gateway unreachable; \
`run` and `sessions retry` add 11 the run failed, 12 the run stopped at a limit, \
13 the run was interrupted."
)]
pub struct Cli {
    #[command(flatten)]
    pub global: Global,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Args)]
pub struct Global {
    /// Gateway URL (default: the one `mosaic login` saved).
    #[arg(long, global = true, env = "MOSAIC_URL")]
    pub url: Option<String>,
    /// Bearer token (default: the one `mosaic login` saved).
    #[arg(long, global = true, env = "MOSAIC_TOKEN", hide_env_values = true)]
    pub token: Option<String>,
    /// Print machine-readable JSON instead of tables.
    #[arg(long, global = true)]
    pub json: bool,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the gateway.
    Serve(ServeArgs),
    /// Show the gateway configuration.
    #[command(subcommand)]
    Config(ConfigCommand),
    /// Log in to a gateway and save a token (mode 0600) in the config directory.
    Login(LoginArgs),
    /// Revoke the saved token and forget it.
    Logout,
    /// Show who you are logged in as.
    Whoami,
    /// Change your password.
    Passwd(PasswdArgs),
    /// Manage users (admins).
    #[command(subcommand)]
    Users(UsersCommand),
    /// Manage your API tokens.
    #[command(subcommand)]
    Tokens(TokensCommand),
    /// Manage teams and their members.
    #[command(subcommand)]
    Teams(TeamsCommand),
    /// Manage workspaces.
    #[command(subcommand)]
    Workspaces(WorkspacesCommand),
    /// Read and set your preferences.
    #[command(subcommand)]
    Prefs(PrefsCommand),
    /// Manage your agents (prompt, model route, tools).
    #[command(subcommand)]
    Agents(AgentsCommand),
    /// Send one message to an agent and print the answer as it streams (headless).
    Run(RunArgs),
    /// Talk with an agent, line by line, in this terminal.
    Chat(ChatArgs),
    /// Your conversations: read, search, switch branches, rename, archive, export,
    /// import; their runs: follow, interrupt, retry, approve tool calls.
    #[command(subcommand)]
    Sessions(SessionsCli),
    /// Projects: the brain's containers for tasks and notes.
    #[command(subcommand)]
    Projects(ProjectsCommand),
    /// Tasks: status, priority, due date, assignee, labels, project, mission, subtasks.
    #[command(subcommand)]
    Tasks(TasksCommand),
    /// Missions: goals with success criteria and milestones; progress from linked tasks.
    #[command(subcommand)]
    Missions(MissionsCommand),
    /// Notes: Markdown with tags, optionally in a project.
    #[command(subcommand)]
    Notes(NotesCommand),
    /// Memories: what your agents remember, and what they keep pinned in view.
    #[command(subcommand)]
    Memory(MemoryCommand),
    /// Search your tasks, notes and memories (words and meaning, best match first).
    Search(SearchArgs),
    /// Manage model providers: endpoints, their keys and wire APIs.
    #[command(subcommand)]
    Providers(ProvidersCommand),
    /// List the models your providers offer.
    #[command(subcommand)]
    Models(ModelsCommand),
    /// Manage routes: ordered lists of models, each falling back to the next.
    #[command(subcommand)]
    Routes(RoutesCommand),
    /// Show your token usage per day and model.
    Usage(UsageArgs),
    /// Ask a model (a route name or provider/model) and print its answer as it streams.
    Complete(CompleteArgs),
    /// Gateway administration: the first admin, health.
    #[command(subcommand)]
    Admin(AdminCommand),
    /// Print shell completions.
    Completions {
        #[arg(value_enum)]
        shell: Shell,
    },
    /// Print the OpenAPI document of the API this binary serves.
    Openapi,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum Shell {
    Bash,
    Zsh,
    Fish,
}
