//! The `mosaic` binary: `mosaic serve` runs the gateway; every other subcommand is a
//! thin adapter from the command line to the typed API client.

mod cli;
mod commands;
mod credentials;
mod output;
#[cfg(test)]
mod parity;
use std::process::ExitCode;

use clap::{CommandFactory, Parser};
use mosaic_api::ErrorCode;
use mosaic_client::ClientError;

use crate::cli::{Cli, Command};

/// Exit codes scripts can rely on (also in `mosaic --help`).
fn exit_code(err: &anyhow::Error) -> u8 {
    // A run that ended other than completed (11 failed, 12 limited, 13 interrupted).
    if let Some(ended) = err.downcast_ref::<commands::run::RunEnded>() {
        return ended.exit_code();
    }
    match err.downcast_ref::<commands::CliError>() {
        Some(commands::CliError::Usage(_)) => return 2,
        Some(commands::CliError::NotLoggedIn(_)) => return 3,
        None => {}
    }
    match err.downcast_ref::<ClientError>() {
        Some(ClientError::Api { code, .. }) => match code {
            ErrorCode::Unauthorized => 3,
            ErrorCode::Forbidden => 4,
            ErrorCode::NotFound | ErrorCode::MethodNotAllowed => 5,
            ErrorCode::Conflict => 6,
            ErrorCode::BadRequest | ErrorCode::PayloadTooLarge | ErrorCode::RequestTimeout => 7,
            ErrorCode::RateLimited => 8,
            ErrorCode::Internal
            | ErrorCode::Unavailable
            | ErrorCode::UpstreamAuthFailed
            | ErrorCode::UpstreamError => 1,
        },
        Some(ClientError::Transport { .. }) => 10,
        Some(ClientError::BadUrl(_)) => 2,
        Some(ClientError::Decode(_)) | Some(ClientError::Stream(_)) | None => 1,
    }
}

/// glibc raises its mmap threshold after a large block is freed, so the 19 MiB that
/// each argon2id hash works in would stay in the heap after the first login and keep
/// the idle gateway above 30 MB. A fixed threshold returns such blocks to the system.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn tune_allocator() {
    // SAFETY: mallopt only sets an allocator parameter; it is called before any other
    // thread exists, and an unsupported value is merely refused (returns 0).
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 128 * 1024);
    }
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn tune_allocator() {}

/// The error and its causes on one line, each said once: many errors already quote
/// their cause in their own message, and `{:#}` would repeat it after them.
fn report(err: &anyhow::Error) -> String {
    let mut out = String::new();
    for cause in err.chain() {
        let text = cause.to_string();
        if text.is_empty() || out.contains(&text) {
            continue;
        }
        if !out.is_empty() {
            out.push_str(": ");
        }
        out.push_str(&text);
    }
    out
}

fn main() -> ExitCode {
    tune_allocator();
    let cli = Cli::parse();
    let logging_in = matches!(
        cli.command,
        Command::Login(_) | Command::Admin(commands::admin::AdminCommand::Claim { .. })
    );
    if let Command::Completions { shell } = &cli.command {
        let shell = match shell {
            cli::Shell::Bash => clap_complete::Shell::Bash,
            cli::Shell::Zsh => clap_complete::Shell::Zsh,
            cli::Shell::Fish => clap_complete::Shell::Fish,
        };
        clap_complete::generate(shell, &mut Cli::command(), "mosaic", &mut std::io::stdout());
        return ExitCode::SUCCESS;
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(commands::run(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("error: {}", report(&err));
            if let (
                false,
                Some(ClientError::Api {
                    code: ErrorCode::Unauthorized,
                    ..
                }),
            ) = (logging_in, err.downcast_ref::<ClientError>())
            {
                eprintln!("hint: log in with `mosaic login --url URL`");
            }
            ExitCode::from(exit_code(&err))
        }
    }
}

#[cfg(test)]
mod report_tests {
    #[test]
    fn a_cause_quoted_by_its_error_is_said_once() {
        let err = anyhow::anyhow!("expected `=` at line 3")
            .context("config file x.toml is not valid: expected `=` at line 3")
            .context("cannot start the gateway");
        assert_eq!(
            super::report(&err),
            "cannot start the gateway: config file x.toml is not valid: expected `=` at line 3"
        );
    }
}
