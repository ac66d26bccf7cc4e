//! `mosaic routes`: named, ordered lists of `provider/model` steps, each falling back
//! to the next when it fails before its first token, and the health of what they call.

use std::time::Duration;

use anyhow::Result;
use clap::Subcommand;
use mosaic_api::{RouteInfo, RouteStep, SetRouteRequest};
use mosaic_client::Client;

use crate::commands::models::{pick_id, scope_of, scope_text};
use crate::commands::{print_list, usage as usage_error, Ctx};
use crate::output::{fields, json, yes_no};

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

/// Time to the first token a route step gets when its `@timeout` is left out.
const DEFAULT_STEP_TIMEOUT: Duration = Duration::from_secs(60);

async fn route_id(client: &Client, key: &str) -> Result<String> {
    let list = client.list_routes().await?;
    Ok(pick_id(
        key,
        list.items
            .iter()
            .map(|r| (r.id.as_str(), r.name.as_str(), r.scope)),
    ))
}

/// A route step from `provider/model[@timeout[:idle]]`. The model is everything after
/// the first `/` (model names may hold more, and `:` as in `llama3:8b`); an `@` suffix
/// is read as timeouts only when it reads as them, because some model names carry `@`
/// too (`claude-3-5-sonnet@20240620`). `timeout` is the time to the first token,
/// `idle` the silence allowed between tokens after it (`@:90s` sets only the idle one).
pub fn parse_step(step: &str) -> Result<RouteStep> {
    let bad = |why: &str| {
        usage_error(format!(
            "route step '{step}': {why} (expected provider/model[@timeout[:idle]], e.g. \
             openai/gpt-4o@30s or openai/gpt-4o@30s:90s)"
        ))
    };
    let (spec, timeout, idle) = match step.rsplit_once('@') {
        Some((spec, suffix)) => match timeouts(suffix) {
            Some((timeout, idle)) => (spec, timeout, idle),
            // A number with a unit that is not one: a typo, not a model name.
            None if suffix.starts_with(|c: char| c.is_ascii_digit() || c == ':')
                && suffix.ends_with(|c: char| c.is_ascii_alphabetic()) =>
            {
                return Err(bad(&format!("'{suffix}' is not a duration")));
            }
            None => (step, None, None),
        },
        None => (step, None, None),
    };
    let Some((provider, model)) = spec.split_once('/') else {
        return Err(bad("no provider"));
    };
    if provider.is_empty() || model.is_empty() {
        return Err(bad("empty provider or model"));
    }
    let timeout = timeout.unwrap_or(DEFAULT_STEP_TIMEOUT);
    if timeout.is_zero() || idle.is_some_and(|d| d.is_zero()) {
        return Err(bad("a timeout must be more than zero"));
    }
    let ms = |d: Duration| u64::try_from(d.as_millis()).unwrap_or(u64::MAX);
    Ok(RouteStep {
        provider: provider.into(),
        model: model.into(),
        timeout_ms: ms(timeout),
        idle_timeout_ms: idle.map(ms),
    })
}

/// `timeout`, `timeout:idle` or `:idle`, when every part given is a duration.
fn timeouts(suffix: &str) -> Option<(Option<Duration>, Option<Duration>)> {
    let (first, idle) = match suffix.split_once(':') {
        Some((first, idle)) => (first, Some(humantime::parse_duration(idle).ok()?)),
        None => (suffix, None),
    };
    let first = match first {
        "" if idle.is_some() => None,
        _ => Some(humantime::parse_duration(first).ok()?),
    };
    Some((first, idle))
}

/// Steps as `set` takes them, so they can be copied back.
fn steps_text(steps: &[RouteStep]) -> String {
    let text = |ms: u64| {
        humantime::format_duration(Duration::from_millis(ms))
            .to_string()
            .replace(' ', "")
    };
    steps
        .iter()
        .map(|s| {
            let idle = s
                .idle_timeout_ms
                .map(|ms| format!(":{}", text(ms)))
                .unwrap_or_default();
            format!("{}/{}@{}{idle}", s.provider, s.model, text(s.timeout_ms))
        })
        .collect::<Vec<_>>()
        .join(" ")
}

fn show_route(ctx: &Ctx, r: &RouteInfo) -> Result<()> {
    if ctx.json {
        return json(r);
    }
    fields(&[
        ("id", r.id.clone()),
        ("name", r.name.clone()),
        ("scope", scope_text(r.scope)),
        ("steps", steps_text(&r.steps)),
        ("created", r.created_at.clone()),
        ("updated", r.updated_at.clone()),
    ]);
    Ok(())
}

pub async fn routes(ctx: &Ctx, cmd: RoutesCommand) -> Result<()> {
    let client = ctx.client()?;
    match cmd {
        RoutesCommand::Set {
            name,
            steps,
            gateway,
        } => {
            let req = SetRouteRequest {
                name,
                steps: steps.iter().map(|s| parse_step(s)).collect::<Result<_>>()?,
                scope: scope_of(gateway),
            };
            show_route(ctx, &client.set_route(&req).await?)
        }
        RoutesCommand::List => {
            let list = client.list_routes().await?;
            print_list(
                ctx,
                &list,
                &list.items,
                &["ID", "NAME", "SCOPE", "STEPS"],
                |r| {
                    vec![
                        r.id.clone(),
                        r.name.clone(),
                        scope_text(r.scope),
                        steps_text(&r.steps),
                    ]
                },
            )
        }
        RoutesCommand::Show { id } => {
            let id = route_id(&client, &id).await?;
            show_route(ctx, &client.get_route(&id).await?)
        }
        RoutesCommand::Remove { id } => {
            let resolved = route_id(&client, &id).await?;
            client.delete_route(&resolved).await?;
            eprintln!("removed route {id}");
            Ok(())
        }
        RoutesCommand::Health => {
            let list = client.model_health().await?;
            print_list(
                ctx,
                &list,
                &list.items,
                &["MODEL", "HEALTHY", "FAILURES", "COOL-DOWN", "LAST ERROR"],
                |h| {
                    vec![
                        format!("{}/{}", h.provider, h.model),
                        yes_no(h.healthy),
                        h.consecutive_failures.to_string(),
                        h.cooldown_remaining_secs
                            .map_or_else(|| "-".into(), |s| format!("{s}s")),
                        h.last_error.clone().unwrap_or_else(|| "-".into()),
                    ]
                },
            )
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use pretty_assertions::assert_eq;

    fn step(provider: &str, model: &str, timeout_ms: u64) -> RouteStep {
        RouteStep {
            provider: provider.into(),
            model: model.into(),
            timeout_ms,
            idle_timeout_ms: None,
        }
    }

    fn idle(step: RouteStep, idle_timeout_ms: u64) -> RouteStep {
        RouteStep {
            idle_timeout_ms: Some(idle_timeout_ms),
            ..step
        }
    }

    #[test]
    fn route_steps_may_set_an_idle_timeout_after_the_first_token_timeout() {
        for (text, want, why) in [
            (
                "openai/gpt-4o@30s:90s",
                idle(step("openai", "gpt-4o", 30_000), 90_000),
                "both",
            ),
            (
                "local/m@:2m",
                idle(step("local", "m", 60_000), 120_000),
                "the first-token timeout may be left to its default",
            ),
            (
                "ollama/llama3:8b@10s:45s",
                idle(step("ollama", "llama3:8b", 10_000), 45_000),
                "a ':' in the model name stays with it",
            ),
            (
                "ollama/llama3:8b",
                step("ollama", "llama3:8b", 60_000),
                "a ':' without '@' is the model's",
            ),
            (
                "vertex/claude@2024:06",
                step("vertex", "claude@2024:06", 60_000),
                "an @ that is no pair of durations belongs to the model",
            ),
        ] {
            assert_eq!(parse_step(text).unwrap(), want, "{why}");
        }
        for bad in ["a/b@30s:9x", "a/b@30s:0s", "a/b@:0s"] {
            assert!(parse_step(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn route_steps_read_provider_model_and_an_optional_timeout() {
        assert_eq!(
            parse_step("openai/gpt-4o@30s").unwrap(),
            step("openai", "gpt-4o", 30_000)
        );
        assert_eq!(
            parse_step("local/m").unwrap(),
            step("local", "m", 60_000),
            "60 s by default"
        );
        assert_eq!(
            parse_step("router/meta-llama/llama-3@1m30s").unwrap(),
            step("router", "meta-llama/llama-3", 90_000),
            "the model is everything after the first slash"
        );
        assert_eq!(
            parse_step("vertex/claude-3-5-sonnet@20240620").unwrap(),
            step("vertex", "claude-3-5-sonnet@20240620", 60_000),
            "an @ that is no duration belongs to the model"
        );
        assert_eq!(
            parse_step("vertex/claude@20240620@5s").unwrap(),
            step("vertex", "claude@20240620", 5_000)
        );
    }

    #[test]
    fn malformed_route_steps_are_usage_errors() {
        for bad in [
            "gpt-4o",
            "/gpt-4o",
            "openai/",
            "openai/gpt-4o@30x",
            "a/b@0s",
        ] {
            let err = parse_step(bad).unwrap_err();
            assert!(
                matches!(
                    err.downcast_ref::<crate::commands::CliError>(),
                    Some(crate::commands::CliError::Usage(_))
                ),
                "{bad}: {err}"
            );
        }
    }

    #[test]
    fn steps_print_as_set_takes_them() {
        let steps = vec![
            step("openai", "gpt-4o", 30_000),
            step("local", "m", 90_500),
            idle(step("ollama", "llama3:8b", 10_000), 45_000),
        ];
        let text = steps_text(&steps);
        assert_eq!(
            text,
            "openai/gpt-4o@30s local/m@1m30s500ms ollama/llama3:8b@10s:45s"
        );
        let parsed: Vec<RouteStep> = text.split(' ').map(|s| parse_step(s).unwrap()).collect();
        assert_eq!(parsed, steps);
    }
}
