//! `mosaic providers|models|usage`: model providers (with their keys never on the
//! command line), the models they offer, and token usage. Routes over them are in
//! `routes.rs`, one-shot completions in `complete.rs`.

use anyhow::{bail, Result};
use clap::{Args, Subcommand};
use mosaic_api::{
    ConfigScope, CreateProviderRequest, ProviderInfo, ProviderKind, TestProviderRequest,
    UpdateProviderRequest, UsageQuery, WireApi,
};
use mosaic_client::Client;

use crate::commands::{print_list, read_stdin_line, usage as usage_error, Ctx};
use crate::output::{fields, json, table, yes_no};

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

#[derive(Debug, Args)]
pub struct UsageArgs {
    /// First day, YYYY-MM-DD (UTC; default: 29 days before --to).
    #[arg(long)]
    pub from: Option<String>,
    /// Last day, YYYY-MM-DD (UTC; default: today).
    #[arg(long)]
    pub to: Option<String>,
}

pub(super) fn scope_text(scope: ConfigScope) -> String {
    match scope {
        ConfigScope::Gateway => "gateway",
        ConfigScope::User => "user",
    }
    .into()
}

pub(super) fn scope_of(gateway: bool) -> ConfigScope {
    if gateway {
        ConfigScope::Gateway
    } else {
        ConfigScope::User
    }
}

fn parse_wire(wire: Option<String>) -> Result<Option<WireApi>> {
    wire.map(|w| {
        WireApi::parse(&w).ok_or_else(|| {
            usage_error(format!(
                "unknown wire API '{w}' (chat_completions, responses or anthropic_messages)"
            ))
        })
    })
    .transpose()
}

/// The id of the provider or route called `key`, when `key` is not an id already; a
/// name that matches none is passed on as it is, for the gateway to answer 404. Your
/// own win over the gateway's of the same name, as they do when a route is called.
pub(super) fn pick_id<'a>(
    key: &str,
    entries: impl Iterator<Item = (&'a str, &'a str, ConfigScope)>,
) -> String {
    let entries: Vec<_> = entries.collect();
    if entries.iter().any(|(id, _, _)| *id == key) {
        return key.to_string();
    }
    let mut named: Vec<_> = entries.iter().filter(|(_, name, _)| *name == key).collect();
    named.sort_by_key(|(_, _, scope)| *scope != ConfigScope::User);
    named
        .first()
        .map_or_else(|| key.to_string(), |(id, _, _)| id.to_string())
}

async fn provider_id(client: &Client, key: &str) -> Result<String> {
    let list = client.list_providers().await?;
    Ok(pick_id(
        key,
        list.items
            .iter()
            .map(|p| (p.id.as_str(), p.name.as_str(), p.scope)),
    ))
}

fn show_provider(ctx: &Ctx, p: &ProviderInfo) -> Result<()> {
    if ctx.json {
        return json(p);
    }
    fields(&[
        ("id", p.id.clone()),
        ("name", p.name.clone()),
        ("kind", p.kind.as_str().into()),
        ("wire", p.wire.as_str().into()),
        ("base url", p.base_url.clone()),
        ("scope", scope_text(p.scope)),
        ("api key", if p.has_api_key { "set" } else { "none" }.into()),
        ("created", p.created_at.clone()),
        ("updated", p.updated_at.clone()),
    ]);
    Ok(())
}

/// The API key of `providers add`: never an argument, which shell history would keep.
fn api_key(stdin: bool, env: Option<String>) -> Result<Option<String>> {
    match (stdin, env) {
        (true, _) => Ok(Some(read_stdin_line("API key")?)),
        (false, Some(var)) => match std::env::var(&var) {
            Ok(key) if !key.is_empty() => Ok(Some(key)),
            _ => Err(usage_error(format!(
                "--api-key-env: ${var} is not set (or empty)"
            ))),
        },
        (false, None) => Ok(None),
    }
}

pub async fn providers(ctx: &Ctx, cmd: ProvidersCommand) -> Result<()> {
    let client = ctx.client()?;
    match cmd {
        ProvidersCommand::Add {
            name,
            kind,
            base_url,
            api_key_stdin,
            api_key_env,
            wire,
            gateway,
        } => {
            let kind = ProviderKind::parse(&kind)
                .ok_or_else(|| usage_error(format!("unknown provider kind '{kind}'")))?;
            if base_url.is_none() && kind.default_base_url().is_none() {
                return Err(usage_error(format!(
                    "--kind {} needs --base-url",
                    kind.as_str()
                )));
            }
            let req = CreateProviderRequest {
                name,
                kind,
                base_url,
                api_key: api_key(api_key_stdin, api_key_env)?,
                wire: parse_wire(wire)?,
                scope: scope_of(gateway),
            };
            show_provider(ctx, &client.create_provider(&req).await?)
        }
        ProvidersCommand::List => {
            let list = client.list_providers().await?;
            print_list(
                ctx,
                &list,
                &list.items,
                &["ID", "NAME", "KIND", "WIRE", "BASE URL", "SCOPE", "KEY"],
                |p| {
                    vec![
                        p.id.clone(),
                        p.name.clone(),
                        p.kind.as_str().into(),
                        p.wire.as_str().into(),
                        p.base_url.clone(),
                        scope_text(p.scope),
                        yes_no(p.has_api_key),
                    ]
                },
            )
        }
        ProvidersCommand::Show { id } => {
            let id = provider_id(&client, &id).await?;
            show_provider(ctx, &client.get_provider(&id).await?)
        }
        ProvidersCommand::Update {
            id,
            base_url,
            wire,
            api_key_stdin,
            remove_key,
        } => {
            if base_url.is_none() && wire.is_none() && !api_key_stdin && !remove_key {
                return Err(usage_error(
                    "nothing to change: pass --base-url, --wire, --api-key-stdin or --remove-key",
                ));
            }
            let api_key = match (api_key_stdin, remove_key) {
                (true, _) => Some(read_stdin_line("API key")?),
                // An empty key removes it.
                (false, true) => Some(String::new()),
                (false, false) => None,
            };
            let req = UpdateProviderRequest {
                base_url,
                api_key,
                wire: parse_wire(wire)?,
            };
            let id = provider_id(&client, &id).await?;
            show_provider(ctx, &client.update_provider(&id, &req).await?)
        }
        ProvidersCommand::Remove { id } => {
            let resolved = provider_id(&client, &id).await?;
            client.delete_provider(&resolved).await?;
            eprintln!("removed provider {id}");
            Ok(())
        }
        ProvidersCommand::Test { id, model } => {
            let resolved = provider_id(&client, &id).await?;
            let result = client
                .test_provider(&resolved, &TestProviderRequest { model })
                .await?;
            if ctx.json {
                json(&result)?;
            } else if result.ok {
                println!(
                    "ok: {} answered in {:.0} ms",
                    result.model, result.latency_ms
                );
            }
            if !result.ok {
                let error = result.error.as_deref().unwrap_or("the provider failed");
                match result.model.as_str() {
                    "" => bail!("provider {id}: {error}"),
                    model => bail!("provider {id}, model {model}: {error}"),
                }
            }
            Ok(())
        }
    }
}

pub async fn models(ctx: &Ctx, cmd: ModelsCommand) -> Result<()> {
    let client = ctx.client()?;
    match cmd {
        ModelsCommand::List { openai: true } => {
            let list = client.openai_models().await?;
            let data = list["data"].as_array().cloned().unwrap_or_default();
            print_list(ctx, &list, &data, &["ID", "OWNED BY"], |m| {
                vec![
                    m["id"].as_str().unwrap_or_default().into(),
                    m["owned_by"].as_str().unwrap_or_default().into(),
                ]
            })
        }
        ModelsCommand::List { openai: false } => {
            let list = client.list_models().await?;
            print_list(ctx, &list, &list.items, &["ID", "PROVIDER"], |m| {
                vec![m.id.clone(), m.provider.clone()]
            })?;
            if !ctx.json {
                for error in &list.errors {
                    eprintln!("warning: {error}");
                }
            }
            Ok(())
        }
    }
}

/// `YYYY-MM-DD`, checked here so a typo is a usage error rather than a gateway's 400.
fn check_day(flag: &str, day: &Option<String>) -> Result<()> {
    let Some(day) = day else { return Ok(()) };
    let parts: Vec<&str> = day.split('-').collect();
    let valid = matches!(parts.as_slice(), [y, m, d]
        if y.len() == 4 && m.len() == 2 && d.len() == 2
            && [y, m, d].iter().all(|p| p.bytes().all(|b| b.is_ascii_digit()))
            && (1..=12).contains(&m.parse::<u32>().unwrap_or(0))
            && (1..=31).contains(&d.parse::<u32>().unwrap_or(0)));
    if !valid {
        return Err(usage_error(format!(
            "{flag}: '{day}' is not a day (YYYY-MM-DD)"
        )));
    }
    Ok(())
}

pub async fn usage(ctx: &Ctx, args: UsageArgs) -> Result<()> {
    check_day("--from", &args.from)?;
    check_day("--to", &args.to)?;
    let client = ctx.client()?;
    let report = client
        .get_usage(&UsageQuery {
            from: args.from,
            to: args.to,
        })
        .await?;
    if ctx.json {
        return json(&report);
    }
    let mut rows: Vec<Vec<String>> = report
        .items
        .iter()
        .map(|u| {
            vec![
                u.day.clone(),
                format!("{}/{}", u.provider, u.model),
                u.requests.to_string(),
                u.input_tokens.to_string(),
                u.output_tokens.to_string(),
                u.cached_tokens.to_string(),
            ]
        })
        .collect();
    if report.items.len() > 1 {
        let sum = |f: fn(&mosaic_api::UsageRow) -> u64| -> String {
            report.items.iter().map(f).sum::<u64>().to_string()
        };
        rows.push(vec![
            "total".into(),
            String::new(),
            sum(|u| u.requests),
            sum(|u| u.input_tokens),
            sum(|u| u.output_tokens),
            sum(|u| u.cached_tokens),
        ]);
    }
    table(
        &["DAY", "MODEL", "REQUESTS", "INPUT", "OUTPUT", "CACHED"],
        &rows,
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use pretty_assertions::assert_eq;

    #[test]
    fn names_resolve_to_ids_preferring_your_own() {
        let entries = [
            ("id-g", "default", ConfigScope::Gateway),
            ("id-u", "default", ConfigScope::User),
            ("id-x", "other", ConfigScope::Gateway),
        ];
        let pick = |key: &str| pick_id(key, entries.iter().copied());
        assert_eq!(pick("default"), "id-u");
        assert_eq!(pick("other"), "id-x");
        assert_eq!(pick("id-g"), "id-g");
        assert_eq!(pick("nothing"), "nothing");
    }

    #[test]
    fn days_must_be_yyyy_mm_dd() {
        assert!(check_day("--from", &Some("2025-01-31".into())).is_ok());
        assert!(check_day("--from", &None).is_ok());
        for bad in [
            "2025-1-31",
            "2025-13-01",
            "yesterday",
            "2025-01-32",
            "20250131",
        ] {
            assert!(check_day("--from", &Some(bad.into())).is_err(), "{bad}");
        }
    }
}
