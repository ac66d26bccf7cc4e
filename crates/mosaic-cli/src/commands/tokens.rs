//! `mosaic tokens`: your API tokens (scoped, expiring, revocable; printed once).

use std::time::Duration;

use anyhow::Result;
use clap::Subcommand;
use mosaic_api::{ApiToken, CreateTokenRequest, Scope};

use crate::commands::{paged, print_page, usage, Ctx, PageArgs};
use crate::output::{fields, json};

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

fn scopes_text(scopes: &[Scope]) -> String {
    scopes
        .iter()
        .map(|s| s.as_str())
        .collect::<Vec<_>>()
        .join(",")
}

fn show_token(ctx: &Ctx, t: &ApiToken) -> Result<()> {
    if ctx.json {
        return json(t);
    }
    fields(&[
        ("id", t.id.clone()),
        ("name", t.name.clone()),
        ("prefix", format!("{}…", t.prefix)),
        ("scopes", scopes_text(&t.scopes)),
        ("created", t.created_at.clone()),
        (
            "expires",
            t.expires_at.clone().unwrap_or_else(|| "never".into()),
        ),
        (
            "last used",
            t.last_used_at.clone().unwrap_or_else(|| "never".into()),
        ),
    ]);
    Ok(())
}

pub async fn tokens(ctx: &Ctx, cmd: TokensCommand) -> Result<()> {
    let client = ctx.client()?;
    match cmd {
        TokensCommand::List(args) => {
            let page = paged(&args, |q| {
                let c = client.clone();
                async move { c.list_tokens(&q).await }
            })
            .await?;
            print_page(
                ctx,
                &page,
                &["ID", "NAME", "PREFIX", "SCOPES", "EXPIRES", "LAST USED"],
                |t| {
                    vec![
                        t.id.clone(),
                        t.name.clone(),
                        format!("{}…", t.prefix),
                        scopes_text(&t.scopes),
                        t.expires_at.clone().unwrap_or_else(|| "never".into()),
                        t.last_used_at.clone().unwrap_or_else(|| "never".into()),
                    ]
                },
            )
        }
        TokensCommand::Create {
            name,
            scopes,
            expires_in,
        } => {
            let scopes = if scopes.is_empty() {
                None
            } else {
                let parsed = scopes
                    .iter()
                    .map(|s| {
                        Scope::parse(s.trim()).ok_or_else(|| {
                            usage(format!(
                                "unknown scope '{s}' (expected read, write or admin)"
                            ))
                        })
                    })
                    .collect::<Result<Vec<_>>>()?;
                Some(parsed)
            };
            let expires_in_secs = expires_in
                .map(|s| humantime::parse_duration(&s).map(|d: Duration| d.as_secs()))
                .transpose()
                .map_err(|e| usage(format!("--expires-in: {e} (e.g. 30d, 12h)")))?;
            let created = client
                .create_token(&CreateTokenRequest {
                    name,
                    scopes,
                    expires_in_secs,
                })
                .await?;
            if ctx.json {
                return json(&created);
            }
            println!("{}", created.token);
            eprintln!(
                "token {} created; it is shown only now, store it safely",
                created.info.id
            );
            Ok(())
        }
        TokensCommand::Show { id } => show_token(ctx, &client.get_token(&id).await?),
        TokensCommand::Revoke { id } => {
            client.revoke_token(&id).await?;
            eprintln!("revoked token {id}");
            Ok(())
        }
    }
}
