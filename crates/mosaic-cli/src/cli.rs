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
