//! `mosaic admin`: the first admin (offline token, online claim) and gateway status.

use anyhow::Result;
use clap::Subcommand;
use mosaic_api::BootstrapRequest;

use crate::commands::serve::GatewayConfigArgs;
use crate::commands::{read_password, Ctx};
use crate::output;

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

pub async fn admin(ctx: &Ctx, cmd: AdminCommand) -> Result<()> {
    match cmd {
        AdminCommand::Bootstrap(args) => {
            let config = crate::commands::serve::load_config(&args)?;
            match mosaic_gateway::issue_bootstrap_offline(&config).await? {
                Some(token) => {
                    if ctx.json {
                        output::json(&serde_json::json!({ "token": token }))?;
                    } else {
                        println!("{token}");
                        eprintln!(
                            "one-time bootstrap token (valid 24 hours); redeem it with\n  \
                             mosaic admin claim --url URL --username NAME --token {token}"
                        );
                    }
                    Ok(())
                }
                None => anyhow::bail!("the gateway already has an admin; bootstrap is closed"),
            }
        }
        AdminCommand::Claim {
            token,
            username,
            password_stdin,
        } => {
            let Some(url) = &ctx.url else {
                return Err(crate::commands::usage("which gateway? pass --url URL"));
            };
            let password = read_password("password for the new admin: ", password_stdin)?;
            if !password_stdin && read_password("again: ", false)? != password {
                anyhow::bail!("the passwords differ");
            }
            let client = mosaic_client::Client::new(url, None)?;
            let user = client
                .bootstrap(&BootstrapRequest {
                    token,
                    username: username.clone(),
                    password: password.clone(),
                    display_name: None,
                })
                .await?;
            eprintln!("created admin {}", user.username);
            crate::commands::auth::login_and_save(url, &username, password).await?;
            if ctx.json {
                output::json(&user)?;
            }
            Ok(())
        }
        AdminCommand::Status => {
            let client = ctx.client()?;
            let health = client.healthz().await?;
            let ready = client.readyz().await;
            let bootstrap = client.bootstrap_status().await?;
            let ready_text = match &ready {
                Ok(_) => "ready".to_string(),
                Err(e) => format!("not ready: {e}"),
            };
            if ctx.json {
                return output::json(&serde_json::json!({
                    "url": client.base_url(),
                    "health": health,
                    "ready": ready.is_ok(),
                    "needs_bootstrap": bootstrap.needs_bootstrap,
                }));
            }
            output::fields(&[
                ("gateway", client.base_url().to_string()),
                (
                    "health",
                    health["status"].as_str().unwrap_or("?").to_string(),
                ),
                ("readiness", ready_text),
                ("needs bootstrap", output::yes_no(bootstrap.needs_bootstrap)),
            ]);
            Ok(())
        }
    }
}
