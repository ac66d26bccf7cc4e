//! The command line: every subcommand of the `mosaic` binary and its flags.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

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
4 forbidden, 5 not found, 6 conflict, 7 invalid input, 8 rate limited, 10 gateway unreachable."
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
    /// Your conversations: read, search, switch branches, rename, archive, export, import.
    #[command(subcommand)]
    Sessions(SessionsCommand),
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
        /// Each step is provider/model[@timeout], tried in order; the timeout (time to
        /// the first token before falling back, e.g. 30s) defaults to 60s.
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
    },
    /// Delete an agent (by id or name; not `default`).
    Delete { agent: String },
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
