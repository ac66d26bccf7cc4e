//! `mosaic agents`: the caller's agents.

use anyhow::Result;
use clap::Subcommand;
use mosaic_api::{Agent, AgentTool, CreateAgentRequest, ToolPolicy, UpdateAgentRequest};
use mosaic_client::Client;

use crate::commands::{print_list, usage, Ctx};
use crate::output::{fields, json};

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
    /// Tokens the model may spend thinking before each answer (`thinking_budget`;
    /// unset: it is not asked to think).
    #[arg(long, value_name = "TOKENS", value_parser = clap::value_parser!(u32).range(1024..))]
    pub thinking_budget: Option<u32>,
}

impl LimitArgs {
    pub fn is_empty(&self) -> bool {
        self.max_model_calls.is_none()
            && self.token_budget.is_none()
            && self.context_window.is_none()
            && self.thinking_budget.is_none()
    }

    /// These limits over `base`.
    pub fn over(&self, base: mosaic_api::AgentLimits) -> mosaic_api::AgentLimits {
        mosaic_api::AgentLimits {
            max_model_calls: self.max_model_calls.or(base.max_model_calls),
            token_budget: self.token_budget.or(base.token_budget),
            context_window: self.context_window.or(base.context_window),
            thinking_budget: self.thinking_budget.or(base.thinking_budget),
        }
    }
}

fn policy_text(p: ToolPolicy) -> &'static str {
    match p {
        ToolPolicy::Allowed => "allowed",
        ToolPolicy::NeedsApproval => "needs_approval",
        ToolPolicy::Denied => "denied",
    }
}

fn tools_text(tools: &[AgentTool]) -> String {
    tools
        .iter()
        .map(|t| format!("{}={}", t.name, policy_text(t.policy)))
        .collect::<Vec<_>>()
        .join(", ")
}

fn show(ctx: &Ctx, a: &Agent) -> Result<()> {
    if ctx.json {
        return json(a);
    }
    fields(&[
        ("id", a.id.clone()),
        ("name", a.name.clone()),
        ("description", a.description.clone()),
        ("route", a.route.clone()),
        ("tools", tools_text(&a.tools)),
        ("limits", limits_text(&a.limits)),
        ("created", a.created_at.clone()),
        ("updated", a.updated_at.clone()),
    ]);
    println!("\n{}", a.system_prompt);
    Ok(())
}

fn limits_text(l: &mosaic_api::AgentLimits) -> String {
    let or_default = |v: Option<String>| v.unwrap_or_else(|| "gateway default".into());
    format!(
        "model calls {}, token budget {}, context window {}, thinking {}",
        or_default(l.max_model_calls.map(|n| n.to_string())),
        or_default(l.token_budget.map(|n| n.to_string())),
        or_default(l.context_window.map(|n| n.to_string())),
        l.thinking_budget
            .map(|n| format!("{n} tokens"))
            .unwrap_or_else(|| "off".into()),
    )
}

/// An agent's id from an id or a name.
pub(crate) async fn resolve(client: &Client, agent: &str) -> Result<String> {
    let list = client.list_agents().await?;
    Ok(list
        .items
        .iter()
        .find(|a| a.name == agent)
        .map(|a| a.id.clone())
        .unwrap_or_else(|| agent.to_string()))
}

fn prompt_arg(p: Option<String>) -> Result<Option<String>> {
    match p.as_deref() {
        Some("-") => {
            let mut text = String::new();
            std::io::Read::read_to_string(&mut std::io::stdin(), &mut text)?;
            Ok(Some(text))
        }
        _ => Ok(p),
    }
}

pub async fn agents(ctx: &Ctx, cmd: AgentsCommand) -> Result<()> {
    let client = ctx.client()?;
    match cmd {
        AgentsCommand::List => {
            let list = client.list_agents().await?;
            print_list(
                ctx,
                &list,
                &list.items,
                &["ID", "NAME", "ROUTE", "TOOLS"],
                |a| {
                    vec![
                        a.id.clone(),
                        a.name.clone(),
                        a.route.clone(),
                        tools_text(&a.tools),
                    ]
                },
            )
        }
        AgentsCommand::Create {
            name,
            description,
            system_prompt,
            route,
            tools,
            limits,
        } => {
            let req = CreateAgentRequest {
                name,
                description,
                system_prompt: prompt_arg(system_prompt)?,
                route,
                tools: (!tools.is_empty()).then(|| tools.into_iter().map(|ToolArg(t)| t).collect()),
                limits: (!limits.is_empty()).then(|| limits.over(Default::default())),
            };
            show(ctx, &client.create_agent(&req).await?)
        }
        AgentsCommand::Show { agent } => {
            let id = resolve(&client, &agent).await?;
            show(ctx, &client.get_agent(&id).await?)
        }
        AgentsCommand::Update {
            agent,
            name,
            description,
            system_prompt,
            route,
            tools,
            no_tools,
            limits,
        } => {
            let tools = match (no_tools, tools.is_empty()) {
                (true, _) => Some(Vec::new()),
                (false, false) => Some(tools.into_iter().map(|ToolArg(t)| t).collect()),
                (false, true) => None,
            };
            let mut req = UpdateAgentRequest {
                name,
                description,
                system_prompt: prompt_arg(system_prompt)?,
                route,
                tools,
                limits: None,
            };
            if req == UpdateAgentRequest::default() && limits.is_empty() {
                return Err(usage("nothing to change: pass --name, --description, --system-prompt, --route, --tool or a limit"));
            }
            let id = resolve(&client, &agent).await?;
            if !limits.is_empty() {
                // The API replaces the limits whole; keep the ones not named here.
                req.limits = Some(limits.over(client.get_agent(&id).await?.limits));
            }
            show(ctx, &client.update_agent(&id, &req).await?)
        }
        AgentsCommand::Delete { agent } => {
            let id = resolve(&client, &agent).await?;
            client.delete_agent(&id).await?;
            eprintln!("deleted agent {agent}");
            Ok(())
        }
    }
}
