//! The command line: every subcommand of the `mosaic` binary and its flags.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

mod brain;
mod memory;
pub use brain::{
    BodyArgs, CriteriaArgs, MissionsCommand, NotesCommand, ProjectsCommand, SearchArgs,
    TasksCommand,
};
pub use memory::MemoryCommand;

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

/// Where the gateway's configuration comes from.
#[derive(Debug, Args, Clone, Default)]
pub struct GatewayConfigArgs {
    /// Config file (default: $XDG_CONFIG_HOME/mosaic/gateway.toml when it exists).
    #[arg(long, env = "MOSAIC_CONFIG")]
    pub config: Option<PathBuf>,
    /// Data directory (default: $XDG_DATA_HOME/mosaic).
    #[arg(long)]
    pub data_dir: Option<PathBuf>,
    /// Database URL: sqlite://PATH or postgres://USER:PASS@HOST/DB (default: SQLite in the data directory).
    #[arg(long)]
    pub database_url: Option<String>,
}

#[derive(Debug, Args)]
pub struct ServeArgs {
    #[command(flatten)]
    pub gateway: GatewayConfigArgs,
    /// Address to listen on (default 127.0.0.1:8420).
    #[arg(long)]
    pub listen: Option<std::net::SocketAddr>,
    /// Log format.
    #[arg(long, value_enum)]
    pub log_format: Option<LogFormatArg>,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum LogFormatArg {
    Human,
    Json,
}

#[derive(Debug, Subcommand)]
pub enum ConfigCommand {
    /// Print the effective gateway configuration (secrets redacted).
    Show(GatewayConfigArgs),
}

#[derive(Debug, Args)]
pub struct LoginArgs {
    /// Username (asked when absent).
    #[arg(long, short)]
    pub username: Option<String>,
    /// Read the password from standard input instead of asking.
    #[arg(long)]
    pub password_stdin: bool,
}

#[derive(Debug, Args)]
pub struct PasswdArgs {
    /// Read the current and the new password, one per line, from standard input.
    #[arg(long)]
    pub password_stdin: bool,
}

#[derive(Debug, Args)]
pub struct PageArgs {
    /// Page size (1-500).
    #[arg(long)]
    pub limit: Option<u32>,
    /// Start after this cursor (from a previous page).
    #[arg(long)]
    pub cursor: Option<String>,
    /// Fetch every page.
    #[arg(long, conflicts_with = "cursor")]
    pub all: bool,
}

#[derive(Debug, Subcommand)]
pub enum UsersCommand {
    /// List users.
    List(PageArgs),
    /// Create a user.
    Create {
        username: String,
        #[arg(long)]
        display_name: Option<String>,
        /// Make the user an admin.
        #[arg(long)]
        admin: bool,
        /// Read the password from standard input instead of asking.
        #[arg(long)]
        password_stdin: bool,
    },
    /// Show a user.
    Show { id: String },
    /// Change a user.
    Update {
        id: String,
        #[arg(long)]
        display_name: Option<String>,
        /// Grant (true) or remove (false) admin rights.
        #[arg(long)]
        admin: Option<bool>,
        /// Set a new password, read from standard input.
        #[arg(long)]
        password_stdin: bool,
    },
    /// Disable a user: their sessions and tokens stop working.
    Disable { id: String },
    /// Enable a disabled user.
    Enable { id: String },
    /// Delete a user and everything they own.
    Delete { id: String },
}

#[derive(Debug, Subcommand)]
pub enum TokensCommand {
    /// List your API tokens.
    List(PageArgs),
    /// Create an API token (printed once).
    Create {
        name: String,
        /// Scopes: read, write, admin (default: read,write).
        #[arg(long, value_delimiter = ',')]
        scopes: Vec<String>,
        /// Lifetime, e.g. 30d, 12h (default 90d).
        #[arg(long)]
        expires_in: Option<String>,
    },
    /// Show one of your tokens.
    Show { id: String },
    /// Revoke one of your tokens.
    Revoke { id: String },
}

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

#[derive(Debug, Subcommand)]
pub enum PrefsCommand {
    /// List the preferences you have set.
    List,
    /// Show the preferences that exist and their types.
    Keys,
    /// Show one preference.
    Get { key: String },
    /// Set a preference. VALUE is JSON (true, 20, "x") or, failing that, text.
    Set { key: String, value: String },
    /// Unset a preference.
    Unset { key: String },
}

#[derive(Debug, Subcommand)]
pub enum AdminCommand {
    /// Print a fresh one-time bootstrap token, working on the data directory directly
    /// (no running gateway needed). Refused once an admin exists.
    Bootstrap(GatewayConfigArgs),
    /// Redeem a bootstrap token: create the first admin on a gateway and log in as them.
    Claim {
        /// The bootstrap token printed by `mosaic serve` or `mosaic admin bootstrap`.
        #[arg(long)]
        token: String,
        #[arg(long, short)]
        username: String,
        /// Read the password from standard input instead of asking.
        #[arg(long)]
        password_stdin: bool,
    },
    /// Show whether a gateway is up, ready, and still waiting for its first admin.
    Status,
}

/// The provider kinds, as `--kind` accepts them.
fn provider_kinds() -> clap::builder::PossibleValuesParser {
    mosaic_api::ProviderKind::ALL.map(|k| k.as_str()).into()
}

/// The wire APIs, as `--wire` accepts them.
fn wire_apis() -> clap::builder::PossibleValuesParser {
    ["chat_completions", "responses", "anthropic_messages"].into()
}

#[derive(Debug, Subcommand)]
pub enum ProvidersCommand {
    /// Add a provider: yours, or with --gateway (admins) one for everyone.
    ///
    /// The API key is never taken as an argument (it would land in your shell history):
    /// pipe it in with --api-key-stdin or name a variable holding it with --api-key-env.
    Add {
        /// How routes and `provider/model` names refer to it.
        name: String,
        /// What kind of endpoint it is (presets its wire API and usual address).
        #[arg(long, value_parser = provider_kinds())]
        kind: String,
        /// The endpoint, up to the version segment (default: the kind's usual address).
        #[arg(long)]
        base_url: Option<String>,
        /// Read the API key from standard input (one line).
        #[arg(long, conflicts_with = "api_key_env")]
        api_key_stdin: bool,
        /// Read the API key from this environment variable.
        #[arg(long, value_name = "VAR")]
        api_key_env: Option<String>,
        /// The wire API (default: the kind's).
        #[arg(long, value_parser = wire_apis())]
        wire: Option<String>,
        /// A provider for everyone on the gateway (admins).
        #[arg(long)]
        gateway: bool,
    },
    /// List the providers you can use: the gateway's and your own.
    List,
    /// Show a provider.
    Show {
        /// Provider id or name.
        id: String,
    },
    /// Change a provider's address, wire API or key.
    Update {
        /// Provider id or name.
        id: String,
        #[arg(long)]
        base_url: Option<String>,
        #[arg(long, value_parser = wire_apis())]
        wire: Option<String>,
        /// Read a new API key from standard input (one line).
        #[arg(long, conflicts_with = "remove_key")]
        api_key_stdin: bool,
        /// Remove the API key.
        #[arg(long)]
        remove_key: bool,
    },
    /// Remove a provider.
    Remove {
        /// Provider id or name.
        id: String,
    },
    /// Make one tiny call: print the latency, or the provider's exact error (and fail).
    Test {
        /// Provider id or name.
        id: String,
        /// The model to try (default: the first the provider lists).
        #[arg(long)]
        model: Option<String>,
    },
}

#[derive(Debug, Subcommand)]
pub enum ModelsCommand {
    /// List every model of every provider you can use, as provider/model.
    List {
        /// As the OpenAI-compatible endpoint lists them (routes included): GET /v1/models.
        #[arg(long)]
        openai: bool,
    },
}

#[derive(Debug, Subcommand)]
pub enum RoutesCommand {
    /// Create or replace a route: yours, or with --gateway (admins) everyone's.
    Set {
        /// The route's name (what `complete --model` and agents use).
        name: String,
        /// Each step is provider/model[@timeout[:idle]], tried in order. The timeout is
        /// the time to the first token before falling back (e.g. 30s; 60s by default);
        /// idle is the silence allowed between tokens once the answer has begun, after
        /// which the call is given up, keeping what streamed (e.g. openai/gpt-4o@30s:90s,
        /// or local/m@:2m for the idle one alone; the gateway's model_idle_timeout_secs,
        /// 60s unless configured, by default).
        #[arg(required = true, value_name = "STEP")]
        steps: Vec<String>,
        /// A route for everyone on the gateway (admins).
        #[arg(long)]
        gateway: bool,
    },
    /// List the routes you can use.
    List,
    /// Show a route.
    Show {
        /// Route id or name.
        id: String,
    },
    /// Remove a route.
    Remove {
        /// Route id or name.
        id: String,
    },
    /// Show the health of the models routes have called: failures, cool-downs, errors.
    Health,
}

#[derive(Debug, Args)]
pub struct UsageArgs {
    /// First day, YYYY-MM-DD (UTC; default: 29 days before --to).
    #[arg(long)]
    pub from: Option<String>,
    /// Last day, YYYY-MM-DD (UTC; default: today).
    #[arg(long)]
    pub to: Option<String>,
}

#[derive(Debug, Args)]
pub struct CompleteArgs {
    /// A route name or provider/model.
    #[arg(long, short)]
    pub model: String,
    /// A system prompt.
    #[arg(long)]
    pub system: Option<String>,
    /// Wait for the whole answer instead of streaming it.
    #[arg(long)]
    pub no_stream: bool,
    /// Say on standard error which provider answered, what it fell back from, and the
    /// tokens used.
    #[arg(long, short)]
    pub verbose: bool,
    /// The prompt; `-` reads it from standard input.
    pub prompt: String,
}

/// `--tool NAME=POLICY`, e.g. `http_fetch=needs_approval`.
#[derive(Debug, Clone)]
pub struct ToolArg(pub mosaic_api::AgentTool);

impl std::str::FromStr for ToolArg {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (name, policy) = s.split_once('=').ok_or_else(|| {
            format!("'{s}': expected NAME=POLICY (allowed, needs_approval, denied)")
        })?;
        let policy = match policy {
            "allowed" => mosaic_api::ToolPolicy::Allowed,
            "needs_approval" => mosaic_api::ToolPolicy::NeedsApproval,
            "denied" => mosaic_api::ToolPolicy::Denied,
            other => {
                return Err(format!(
                    "unknown policy '{other}' (allowed, needs_approval, denied)"
                ))
            }
        };
        Ok(ToolArg(mosaic_api::AgentTool {
            name: name.trim().to_string(),
            policy,
        }))
    }
}

#[derive(Debug, Subcommand)]
pub enum AgentsCommand {
    /// List your agents.
    List,
    /// Create an agent.
    Create {
        name: String,
        #[arg(long)]
        description: Option<String>,
        /// The system prompt (`-` reads it from standard input).
        #[arg(long)]
        system_prompt: Option<String>,
        /// A route name or provider/model (default: the `default` route).
        #[arg(long)]
        route: Option<String>,
        /// A tool and its policy, NAME=allowed|needs_approval|denied; repeatable.
        #[arg(long = "tool")]
        tools: Vec<ToolArg>,
        #[command(flatten)]
        limits: LimitArgs,
    },
    /// Show an agent (by id or name).
    Show { agent: String },
    /// Change an agent (by id or name).
    Update {
        agent: String,
        #[arg(long)]
        name: Option<String>,
        #[arg(long)]
        description: Option<String>,
        /// The system prompt (`-` reads it from standard input).
        #[arg(long)]
        system_prompt: Option<String>,
        #[arg(long)]
        route: Option<String>,
        /// Replace the tool list: NAME=POLICY, repeatable.
        #[arg(long = "tool")]
        tools: Vec<ToolArg>,
        /// Remove every tool.
        #[arg(long, conflicts_with = "tools")]
        no_tools: bool,
        #[command(flatten)]
        limits: LimitArgs,
    },
    /// Delete an agent (by id or name; not `default`).
    Delete { agent: String },
}

/// Limits of the agent's runs; unset ones take the gateway's defaults.
#[derive(Debug, Clone, Copy, Default, clap::Args)]
pub struct LimitArgs {
    /// Model calls a run may make before it stops (`max_model_calls`).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
    pub max_model_calls: Option<u32>,
    /// Input plus output tokens a run may use before it stops (`token_budget`).
    #[arg(long, value_name = "TOKENS", value_parser = clap::value_parser!(u64).range(1..))]
    pub token_budget: Option<u64>,
    /// The model's context window; older entries are compacted before a call exceeds it.
    #[arg(long, value_name = "TOKENS", value_parser = clap::value_parser!(u32).range(256..))]
    pub context_window: Option<u32>,
}

impl LimitArgs {
    pub fn is_empty(&self) -> bool {
        self.max_model_calls.is_none()
            && self.token_budget.is_none()
            && self.context_window.is_none()
    }

    /// These limits over `base`.
    pub fn over(&self, base: mosaic_api::AgentLimits) -> mosaic_api::AgentLimits {
        mosaic_api::AgentLimits {
            max_model_calls: self.max_model_calls.or(base.max_model_calls),
            token_budget: self.token_budget.or(base.token_budget),
            context_window: self.context_window.or(base.context_window),
            ..base
        }
    }
}

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

/// What `run` and `chat` talk to: a new session (with --agent, --title) or --session.
#[derive(Debug, Args)]
pub struct SessionChoice {
    /// The agent of the new session (id or name; default: `default`).
    #[arg(long, conflicts_with = "session")]
    pub agent: Option<String>,
    /// The title of the new session.
    #[arg(long, conflicts_with = "session")]
    pub title: Option<String>,
    /// Continue this session instead of starting one.
    #[arg(long, short, value_name = "ID")]
    pub session: Option<String>,
}

#[derive(Debug, Args)]
#[command(after_long_help = "\
Output: the answer's text goes to standard output as it streams (thinking is not shown); \
tool calls and their results are summarised on standard error (`→ current_time {}`, \
`← ok`). With --json, standard output carries every event of the session, one JSON \
object a line ({\"id\": N, \"event\": {...}}; a `resync`, which says events were missed, \
has no id), ending with the run's `run_finished`.

Tool calls that need approval are declined (the model is told so) unless --approve is \
given. Ctrl-C interrupts the run; a second Ctrl-C leaves without waiting for it.

Exit codes: 0 the run completed, 11 it failed (the model or the gateway), 12 it stopped \
at a limit (model calls, token budget), 13 it was interrupted; the others as in \
`mosaic --help`.

Examples:
  mosaic run \"What is the time in Tokyo?\"
  mosaic run --agent researcher --title Notes - < question.txt
  mosaic run --session SESSION_ID \"And in Lima?\"
  mosaic run --trace \"Why so slow?\"")]
pub struct RunArgs {
    /// The message; `-` reads it from standard input.
    pub prompt: String,
    #[command(flatten)]
    pub session: SessionChoice,
    /// Approve every tool call of this run that asks for approval.
    #[arg(long)]
    pub approve: bool,
    /// Say on standard error which model answered, what it fell back from, the session
    /// and the tokens used.
    #[arg(long, short)]
    pub verbose: bool,
    /// Print the trace id of this run on standard error (`trace: ID`, before the answer),
    /// to find its trace in your tracing backend: all the command's requests, and what
    /// the gateway does for them, are that one trace.
    #[arg(long)]
    pub trace: bool,
}

#[derive(Debug, Args)]
#[command(after_long_help = "\
Type a message and press Enter: it is sent and the answer streams. A message typed while \
an answer streams is sent as a follow-up: it runs when that answer ends. Lines starting \
with / are commands:

  /steer TEXT      hand TEXT to the running answer (after its current tool call)
  /interrupt       stop the running answer (Ctrl-C does too; Ctrl-C when idle leaves)
  /approve [CALL]  run the tool call that waits for approval
  /deny [NOTE]     decline it, telling the model NOTE
  /branches        list the session's branches
  /help            list the commands
  /quit            leave (an answer still running goes on; Ctrl-D waits for it)

A line starting with // is sent with one slash. At the end of input (Ctrl-D, or the end \
of a pipe), chat waits for the running answer and the follow-ups, then exits; approval \
requests arriving then are declined.")]
pub struct ChatArgs {
    #[command(flatten)]
    pub session: SessionChoice,
}

/// What runs in a session (`mosaic sessions ...`, beside the session commands).
#[derive(Debug, Subcommand)]
pub enum SessionRunsCommand {
    /// List a session's runs, newest first.
    Runs {
        id: String,
        #[command(flatten)]
        page: PageArgs,
    },
    /// Show what runs and waits in a session: the active run, queued messages, tool
    /// calls waiting for approval, the latest event number.
    State { id: String },
    /// Print a session's events as they happen, until Ctrl-C (`--json`: one JSON
    /// object a line, as `mosaic run --json`).
    Follow {
        id: String,
        /// Replay the events after this number first (those the gateway still holds).
        #[arg(long, value_name = "N")]
        after: Option<u64>,
    },
    /// Stop a session's active run; what it streamed so far is kept.
    Interrupt { id: String },
    /// Run the agent again and print the answer as `mosaic run` does: from ENTRY (a
    /// retry: pass the user message before the answer to replace; the new answer is a
    /// branch), or from the active leaf.
    Retry {
        id: String,
        /// The entry to continue from.
        #[arg(long, value_name = "ENTRY")]
        from: Option<String>,
        /// Approve every tool call of this run that asks for approval.
        #[arg(long)]
        approve: bool,
        /// Say on standard error which model answered and the tokens used.
        #[arg(long, short)]
        verbose: bool,
    },
    /// Approve a tool call waiting for approval (see `sessions state`), or decline it.
    Approve {
        id: String,
        /// The tool call's id.
        call: String,
        /// Decline instead.
        #[arg(long)]
        deny: bool,
        /// Why, passed to the model with a refusal.
        #[arg(long, requires = "deny")]
        note: Option<String>,
    },
}
