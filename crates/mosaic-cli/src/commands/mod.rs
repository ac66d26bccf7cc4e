//! One module per command group. Each declares its arguments (the clap types `cli.rs`
//! names in the top-level command), turns them into client calls and prints the result
//! as a table or, with `--json`, as JSON.

pub mod admin;
pub mod agents;
pub mod auth;
pub mod brain;
pub mod complete;
pub mod models;
pub mod prefs;
pub mod routes;
pub mod run;
pub mod serve;
pub mod sessions;
pub mod teams;
pub mod tokens;
pub mod users;
pub mod workspaces;

use anyhow::{bail, Context, Result};
use clap::Args;
use mosaic_api::{Page, PageQuery};
use mosaic_client::Client;

use crate::cli::{Cli, Command};
use crate::credentials;
use sessions::SessionsCli;

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

/// Failures of the command line itself, with their own exit codes.
#[derive(Debug)]
pub enum CliError {
    /// The arguments make no sense (exit 2, like clap's own usage errors).
    Usage(String),
    /// No gateway or credential to talk to (exit 3).
    NotLoggedIn(String),
}

impl std::fmt::Display for CliError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            CliError::Usage(m) | CliError::NotLoggedIn(m) => f.write_str(m),
        }
    }
}

impl std::error::Error for CliError {}

/// Fail with a usage error.
pub fn usage(message: impl Into<String>) -> anyhow::Error {
    CliError::Usage(message.into()).into()
}

/// What a command needs: a way to reach the gateway and how to print.
pub struct Ctx {
    pub url: Option<String>,
    pub token: Option<String>,
    /// The token `mosaic login` saved, to tell it from one given on the command line.
    pub saved_token: Option<String>,
    pub json: bool,
}

impl Ctx {
    /// A client of the configured gateway, with the saved or given token.
    pub fn client(&self) -> Result<Client> {
        let Some(url) = &self.url else {
            return Err(CliError::NotLoggedIn(
                "no gateway URL: pass --url, set MOSAIC_URL, or run `mosaic login --url URL`"
                    .into(),
            )
            .into());
        };
        Ok(Client::new(url, self.token.clone())?)
    }
}

/// Commands that never talk to a gateway, and so do not need saved credentials (a
/// damaged credentials file must not keep the gateway from starting).
fn is_local(command: &Command) -> bool {
    use admin::AdminCommand;
    match command {
        Command::Serve(_) | Command::Config(_) | Command::Openapi | Command::Completions { .. } => {
            true
        }
        Command::Admin(admin) => match admin {
            AdminCommand::Bootstrap(_) => true,
            AdminCommand::Claim { .. } | AdminCommand::Status => false,
        },
        Command::Login(_)
        | Command::Logout
        | Command::Whoami
        | Command::Passwd(_)
        | Command::Users(_)
        | Command::Tokens(_)
        | Command::Teams(_)
        | Command::Workspaces(_)
        | Command::Prefs(_)
        | Command::Agents(_)
        | Command::Run(_)
        | Command::Chat(_)
        | Command::Sessions(_)
        | Command::Projects(_)
        | Command::Tasks(_)
        | Command::Missions(_)
        | Command::Notes(_)
        | Command::Memory(_)
        | Command::Search(_)
        | Command::Providers(_)
        | Command::Models(_)
        | Command::Routes(_)
        | Command::Usage(_)
        | Command::Complete(_) => false,
    }
}

pub async fn run(cli: Cli) -> Result<()> {
    dispatch(cli).await
}

async fn dispatch(cli: Cli) -> Result<()> {
    let saved = if is_local(&cli.command) {
        credentials::Credentials::default()
    } else {
        credentials::load().context("loading saved credentials")?
    };
    let ctx = Ctx {
        url: cli.global.url.or(saved.url),
        token: cli.global.token.or(saved.token.clone()),
        saved_token: saved.token,
        json: cli.global.json,
    };
    match cli.command {
        Command::Serve(args) => serve::serve(args).await,
        Command::Config(cmd) => serve::config(&ctx, cmd),
        Command::Openapi => {
            print!("{}", mosaic_gateway::openapi::document_json());
            Ok(())
        }
        Command::Completions { .. } => Ok(()),
        Command::Login(args) => auth::login(&ctx, args).await,
        Command::Logout => auth::logout(&ctx).await,
        Command::Whoami => auth::whoami(&ctx).await,
        Command::Passwd(args) => auth::passwd(&ctx, args).await,
        Command::Users(cmd) => users::users(&ctx, cmd).await,
        Command::Tokens(cmd) => tokens::tokens(&ctx, cmd).await,
        Command::Teams(cmd) => teams::teams(&ctx, cmd).await,
        Command::Workspaces(cmd) => workspaces::workspaces(&ctx, cmd).await,
        Command::Prefs(cmd) => prefs::prefs(&ctx, cmd).await,
        Command::Agents(cmd) => agents::agents(&ctx, cmd).await,
        Command::Run(args) => run::run(&ctx, args).await,
        Command::Chat(args) => run::chat(&ctx, args).await,
        Command::Sessions(SessionsCli::Manage(cmd)) => sessions::sessions(&ctx, cmd).await,
        Command::Sessions(SessionsCli::Runs(cmd)) => run::sessions(&ctx, cmd).await,
        Command::Projects(cmd) => brain::projects(&ctx, cmd).await,
        Command::Tasks(cmd) => brain::tasks(&ctx, cmd).await,
        Command::Missions(cmd) => brain::missions(&ctx, cmd).await,
        Command::Notes(cmd) => brain::notes(&ctx, cmd).await,
        Command::Memory(cmd) => brain::memory(&ctx, cmd).await,
        Command::Search(args) => brain::search(&ctx, args).await,
        Command::Providers(cmd) => models::providers(&ctx, cmd).await,
        Command::Models(cmd) => models::models(&ctx, cmd).await,
        Command::Routes(cmd) => routes::routes(&ctx, cmd).await,
        Command::Usage(args) => models::usage(&ctx, args).await,
        Command::Complete(args) => complete::complete(&ctx, args).await,
        Command::Admin(cmd) => admin::admin(&ctx, cmd).await,
    }
}

/// Fetch one page, or every page with `--all`.
pub async fn paged<T, F, Fut>(args: &PageArgs, fetch: F) -> Result<Page<T>>
where
    F: Fn(PageQuery) -> Fut,
    Fut: std::future::Future<Output = mosaic_client::Result<Page<T>>>,
{
    let mut query = PageQuery {
        cursor: args.cursor.clone(),
        limit: args.limit,
    };
    let mut page = fetch(query.clone()).await?;
    if args.all {
        while let Some(next) = page.next_cursor.take() {
            query.cursor = Some(next);
            let more = fetch(query.clone()).await?;
            page.items.extend(more.items);
            page.next_cursor = more.next_cursor;
        }
    }
    Ok(page)
}

/// Print a page: as JSON, or as a table with a hint about further pages.
pub fn print_page<T: serde::Serialize>(
    ctx: &Ctx,
    page: &Page<T>,
    headers: &[&str],
    row: impl Fn(&T) -> Vec<String>,
) -> Result<()> {
    if ctx.json {
        return crate::output::json(page);
    }
    let rows: Vec<Vec<String>> = page.items.iter().map(row).collect();
    crate::output::table(headers, &rows);
    if let Some(c) = &page.next_cursor {
        eprintln!("(more: --cursor {c}, or --all)");
    }
    Ok(())
}

/// Print a list that comes whole (no pages): as JSON, or as a table of its items.
pub fn print_list<L: serde::Serialize, T>(
    ctx: &Ctx,
    list: &L,
    items: &[T],
    headers: &[&str],
    row: impl Fn(&T) -> Vec<String>,
) -> Result<()> {
    if ctx.json {
        return crate::output::json(list);
    }
    let rows: Vec<Vec<String>> = items.iter().map(row).collect();
    crate::output::table(headers, &rows);
    Ok(())
}

/// Read one line of standard input (a password, a key), without its line end.
pub fn read_stdin_line(what: &str) -> Result<String> {
    let mut line = String::new();
    std::io::stdin().read_line(&mut line)?;
    let value = line.trim_end_matches(['\r', '\n']).to_string();
    if value.is_empty() {
        bail!("no {what} on standard input");
    }
    Ok(value)
}

/// Read a password: from standard input (one line) or by asking on the terminal.
pub fn read_password(prompt: &str, from_stdin: bool) -> Result<String> {
    if from_stdin {
        return read_stdin_line("password");
    }
    rpassword::prompt_password(prompt)
        .context("cannot ask for a password (no terminal?); use --password-stdin")
}
