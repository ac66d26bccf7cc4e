//! `mosaic login`, `logout`, `whoami`, `passwd`.

use anyhow::{bail, Result};
use clap::Args;
use mosaic_api::{ChangePasswordRequest, LoginMode, LoginRequest};
use mosaic_client::Client;

use crate::commands::{read_password, Ctx};
use crate::credentials::{self, Credentials};
use crate::output;

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

fn ask(prompt: &str) -> Result<String> {
    use std::io::Write;
    eprint!("{prompt}");
    std::io::stderr().flush()?;
    let mut line = String::new();
    std::io::stdin().read_line(&mut line)?;
    let answer = line.trim().to_string();
    if answer.is_empty() {
        bail!("no answer given");
    }
    Ok(answer)
}

fn host_name() -> String {
    std::fs::read_to_string("/etc/hostname")
        .map(|s| s.trim().to_string())
        .ok()
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "this machine".into())
}

/// Log in with a password and save the resulting token.
pub async fn login_and_save(
    url: &str,
    username: &str,
    password: String,
) -> Result<mosaic_api::LoginResponse> {
    let client = Client::new(url, None)?;
    let resp = client
        .login(&LoginRequest {
            username: username.to_string(),
            password,
            mode: LoginMode::Token,
            token_name: Some(format!("mosaic login on {}", host_name())),
        })
        .await?;
    let Some(token) = resp.token.clone() else {
        bail!("the gateway answered without a token");
    };
    let path = credentials::save(&Credentials {
        url: Some(client.base_url().to_string()),
        token: Some(token),
    })?;
    eprintln!(
        "logged in as {}; token saved in {}",
        resp.user.username,
        path.display()
    );
    Ok(resp)
}

pub async fn login(ctx: &Ctx, args: LoginArgs) -> Result<()> {
    let Some(url) = &ctx.url else {
        return Err(crate::commands::usage(
            "which gateway? pass --url URL (e.g. --url http://127.0.0.1:8420)",
        ));
    };
    let username = match args.username {
        Some(u) => u,
        None => ask("username: ")?,
    };
    let password = read_password("password: ", args.password_stdin)?;
    let resp = login_and_save(url, &username, password).await?;
    if ctx.json {
        output::json(&resp.user)?;
    }
    Ok(())
}

pub async fn logout(ctx: &Ctx) -> Result<()> {
    if ctx.token.is_some() && ctx.url.is_some() {
        match ctx.client()?.logout().await {
            Ok(()) => {}
            // Already revoked or expired: forgetting it is all that is left to do.
            Err(mosaic_client::ClientError::Api { status: 401, .. }) => {}
            // A read-only token cannot revoke itself; say so rather than pretend.
            Err(mosaic_client::ClientError::Api { status: 403, .. }) => eprintln!(
                "warning: this token may not revoke itself (no write scope); it stays valid \
                 until it expires or is revoked with `mosaic tokens revoke`"
            ),
            Err(e) => return Err(e.into()),
        }
    }
    // Forget the saved token only if it is the one just logged out (not when a token
    // given with --token or MOSAIC_TOKEN was).
    if ctx.saved_token.is_some() && ctx.saved_token == ctx.token {
        credentials::clear_token()?;
    }
    eprintln!("logged out");
    Ok(())
}

pub async fn whoami(ctx: &Ctx) -> Result<()> {
    let me = ctx.client()?.whoami().await?;
    if ctx.json {
        return output::json(&me);
    }
    output::fields(&[
        ("user", me.user.username.clone()),
        ("id", me.user.id.clone()),
        ("name", me.user.display_name.clone()),
        ("admin", output::yes_no(me.user.is_admin)),
        ("credential", me.credential.clone()),
        (
            "scopes",
            me.scopes
                .iter()
                .map(|s| s.as_str())
                .collect::<Vec<_>>()
                .join(","),
        ),
        ("gateway", ctx.url.clone().unwrap_or_default()),
    ]);
    Ok(())
}

pub async fn passwd(ctx: &Ctx, args: PasswdArgs) -> Result<()> {
    let client = ctx.client()?;
    let current_password = read_password("current password: ", args.password_stdin)?;
    let new_password = read_password("new password: ", args.password_stdin)?;
    if !args.password_stdin && read_password("new password again: ", false)? != new_password {
        bail!("the new passwords differ");
    }
    client
        .change_password(&ChangePasswordRequest {
            current_password,
            new_password,
        })
        .await?;
    eprintln!("password changed");
    Ok(())
}
