//! Agents: each user's own. Every user has an agent named `default` (made on first
//! use, and kept: it can be changed but not deleted), so a chat never lacks one.

use mosaic_api::{Agent, AgentLimits, AgentTool, ToolPolicy, DEFAULT_AGENT};
use sqlx::any::AnyRow;

use crate::db::{Acting, Tx};
use crate::principal::local_user;
use crate::providers::check_config_name;
use crate::row::{json, Columns, FromRow};
use crate::visibility::Table;
use crate::{format_time, new_id, now_ms, Principal, Result, Store, StoreError};

/// An agent to create.
#[derive(Debug, Clone)]
pub struct NewAgent {
    pub name: String,
    pub description: String,
    pub system_prompt: String,
    pub route: String,
    pub tools: Vec<AgentTool>,
    pub limits: AgentLimits,
}

/// Changes to an agent; `None` keeps a field.
#[derive(Debug, Clone, Default)]
pub struct AgentChanges {
    pub name: Option<String>,
    pub description: Option<String>,
    pub system_prompt: Option<String>,
    pub route: Option<String>,
    pub tools: Option<Vec<AgentTool>>,
    pub limits: Option<AgentLimits>,
}

const COLUMNS: &str = "id, owner_user_id, name, description, system_prompt, route, tools, \
     limits, created_at, updated_at";

/// Tools the default agent may call without asking: the clock, memory, and reading and
/// filing the owner's tasks and notes (none of them deletes anything). The other brain
/// tools (projects, missions, note edits) are one `mosaic agents edit --tool` away;
/// every schema offered costs context on every call.
const DEFAULT_FREE_TOOLS: [&str; 10] = [
    "current_time",
    "remember",
    "recall",
    "update_memory",
    "search_brain",
    "get_brain_item",
    "list_tasks",
    "create_task",
    "update_task",
    "create_note",
];

/// The default agent's configuration: the built-in tools that cannot do harm run
/// freely; the one that reaches the network asks first.
pub fn default_agent() -> NewAgent {
    NewAgent {
        name: DEFAULT_AGENT.into(),
        description: "The agent new sessions start with".into(),
        system_prompt: "You are a helpful assistant. Answer concisely and say when you are unsure."
            .into(),
        route: "default".into(),
        tools: DEFAULT_FREE_TOOLS
            .iter()
            .map(|name| AgentTool {
                name: (*name).into(),
                policy: ToolPolicy::Allowed,
            })
            .chain([AgentTool {
                name: "http_fetch".into(),
                policy: ToolPolicy::NeedsApproval,
            }])
            .collect(),
        limits: AgentLimits::default(),
    }
}

impl FromRow for Agent {
    fn from_row(row: &AnyRow) -> Result<Agent> {
        let tools: String = row.col("tools")?;
        let limits: String = row.col("limits")?;
        Ok(Agent {
            id: row.col("id")?,
            name: row.col("name")?,
            description: row.col("description")?,
            system_prompt: row.col("system_prompt")?,
            route: row.col("route")?,
            tools: json("agent tools", &tools)?,
            limits: json("agent limits", &limits)?,
            created_at: format_time(row.col("created_at")?),
            updated_at: format_time(row.col("updated_at")?),
        })
    }
}

fn check_fields(
    description: &str,
    system_prompt: &str,
    route: &str,
    tools: &[AgentTool],
) -> Result<()> {
    if description.chars().count() > 1000 {
        return Err(StoreError::Invalid(
            "description is longer than 1000 characters".into(),
        ));
    }
    if system_prompt.len() > 100_000 {
        return Err(StoreError::Invalid(
            "system prompt is longer than 100 kB".into(),
        ));
    }
    let route = route.trim();
    if route.is_empty() || route.len() > 256 {
        return Err(StoreError::Invalid(
            "route must be a route name or provider/model".into(),
        ));
    }
    let mut names = std::collections::HashSet::new();
    for tool in tools {
        check_config_name("tool", &tool.name)?;
        if !names.insert(tool.name.as_str()) {
            return Err(StoreError::Invalid(format!(
                "tool '{}' is listed twice",
                tool.name
            )));
        }
    }
    Ok(())
}

fn tools_json(tools: &[AgentTool]) -> Result<String> {
    serde_json::to_string(tools).map_err(|e| StoreError::Invalid(format!("tools: {e}")))
}

fn limits_json(limits: &AgentLimits) -> Result<String> {
    if limits.max_model_calls == Some(0) || limits.token_budget == Some(0) {
        return Err(StoreError::Invalid(
            "run limits must be at least 1 (leave a limit out for the gateway's default)".into(),
        ));
    }
    if limits.context_window.is_some_and(|w| w < 256) {
        return Err(StoreError::Invalid(
            "context_window must be at least 256 tokens".into(),
        ));
    }
    if limits.thinking_budget.is_some_and(|b| b < 1024) {
        return Err(StoreError::Invalid(
            "thinking_budget must be at least 1024 tokens".into(),
        ));
    }
    serde_json::to_string(limits).map_err(|e| StoreError::Invalid(format!("limits: {e}")))
}

async fn select(tx: &mut Tx<'_>, p: &Principal, id: &str) -> Result<Agent> {
    let visible = tx.visible(p, Table::Agents, 2);
    let sql = tx
        .sql(&format!(
            "SELECT {COLUMNS} FROM agents WHERE {visible} AND id = $1"
        ))
        .into_owned();
    let row = tx
        .fetch_optional(visible.bind(sqlx::query(&sql).bind(id)))
        .await?
        .ok_or(StoreError::NotFound)?;
    Agent::from_row(&row)
}

async fn insert(tx: &mut Tx<'_>, p: &Principal, new: NewAgent) -> Result<String> {
    let name = check_config_name("agent", &new.name)?;
    check_fields(&new.description, &new.system_prompt, &new.route, &new.tools)?;
    let id = new_id();
    let sql = tx
        .sql(&format!(
            "INSERT INTO agents ({COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $9)"
        ))
        .into_owned();
    let inserted = tx
        .execute(
            sqlx::query(&sql)
                .bind(&id)
                .bind(local_user(p)?)
                .bind(&name)
                .bind(new.description.trim())
                .bind(&new.system_prompt)
                .bind(new.route.trim())
                .bind(tools_json(&new.tools)?)
                .bind(limits_json(&new.limits)?)
                .bind(now_ms()),
        )
        .await;
    if let Err(StoreError::Conflict(_)) = inserted {
        return Err(StoreError::Conflict(format!(
            "you have an agent named '{name}' already"
        )));
    }
    inserted?;
    Ok(id)
}

impl Store {
    #[tracing::instrument(name = "store.create_agent", skip_all,
        fields(otel.kind = "internal", db.system = self.backend().otel_name()))]
    pub async fn create_agent(&self, p: &Principal, new: NewAgent) -> Result<Agent> {
        self.ensure_default_agent(p).await?;
        let mut tx = self.begin(Acting::As(p), true).await?;
        let id = insert(&mut tx, p, new).await?;
        let agent = select(&mut tx, p, &id).await?;
        tx.commit().await?;
        Ok(agent)
    }

    /// Make the principal's `default` agent when they have none yet.
    #[tracing::instrument(name = "store.ensure_default_agent", skip_all,
        fields(otel.kind = "internal", db.system = self.backend().otel_name()))]
    pub async fn ensure_default_agent(&self, p: &Principal) -> Result<()> {
        let mut tx = self.begin(Acting::As(p), true).await?;
        // Two first requests at once must not both try to make it.
        tx.lock(&format!("default-agent:{}", local_user(p)?))
            .await?;
        let visible = tx.visible(p, Table::Agents, 2);
        let sql = tx
            .sql(&format!(
                "SELECT id FROM agents WHERE {visible} AND name = $1"
            ))
            .into_owned();
        let exists = tx
            .fetch_optional(visible.bind(sqlx::query(&sql).bind(DEFAULT_AGENT)))
            .await?
            .is_some();
        if !exists {
            insert(&mut tx, p, default_agent()).await?;
        }
        tx.commit().await
    }

    /// The principal's agents by name (`default` among them).
    #[tracing::instrument(name = "store.list_agents", skip_all,
        fields(otel.kind = "internal", db.system = self.backend().otel_name()))]
    pub async fn list_agents(&self, p: &Principal) -> Result<Vec<Agent>> {
        self.ensure_default_agent(p).await?;
        let mut tx = self.begin(Acting::As(p), false).await?;
        let visible = tx.visible(p, Table::Agents, 1);
        let sql = tx
            .sql(&format!(
                "SELECT {COLUMNS} FROM agents WHERE {visible} ORDER BY name"
            ))
            .into_owned();
        let rows = tx.fetch_all(visible.bind(sqlx::query(&sql))).await?;
        tx.commit().await?;
        rows.iter().map(Agent::from_row).collect()
    }

    #[tracing::instrument(name = "store.get_agent", skip_all,
        fields(otel.kind = "internal", db.system = self.backend().otel_name()))]
    pub async fn get_agent(&self, p: &Principal, id: &str) -> Result<Agent> {
        let mut tx = self.begin(Acting::As(p), false).await?;
        let agent = select(&mut tx, p, id).await?;
        tx.commit().await?;
        Ok(agent)
    }

    /// One of the principal's agents by name.
    #[tracing::instrument(name = "store.agent_by_name", skip_all,
        fields(otel.kind = "internal", db.system = self.backend().otel_name()))]
    pub async fn agent_by_name(&self, p: &Principal, name: &str) -> Result<Agent> {
        self.list_agents(p)
            .await?
            .into_iter()
            .find(|a| a.name == name.trim())
            .ok_or(StoreError::NotFound)
    }

    #[tracing::instrument(name = "store.update_agent", skip_all,
        fields(otel.kind = "internal", db.system = self.backend().otel_name()))]
    pub async fn update_agent(
        &self,
        p: &Principal,
        id: &str,
        changes: AgentChanges,
    ) -> Result<Agent> {
        let mut tx = self.begin(Acting::As(p), true).await?;
        let current = select(&mut tx, p, id).await?;
        let name = match &changes.name {
            Some(n) => check_config_name("agent", n)?,
            None => current.name.clone(),
        };
        if current.name == DEFAULT_AGENT && name != DEFAULT_AGENT {
            return Err(StoreError::Conflict(
                "the default agent keeps its name".into(),
            ));
        }
        let description = changes.description.unwrap_or(current.description);
        let system_prompt = changes.system_prompt.unwrap_or(current.system_prompt);
        let route = changes.route.unwrap_or(current.route);
        let tools = changes.tools.unwrap_or(current.tools);
        let limits = changes.limits.unwrap_or(current.limits);
        check_fields(&description, &system_prompt, &route, &tools)?;
        let sql = tx
            .sql(
                "UPDATE agents SET name = $2, description = $3, system_prompt = $4, route = $5, \
                 tools = $6, limits = $8, updated_at = $7 WHERE id = $1",
            )
            .into_owned();
        let updated = tx
            .execute(
                sqlx::query(&sql)
                    .bind(id)
                    .bind(&name)
                    .bind(description.trim())
                    .bind(&system_prompt)
                    .bind(route.trim())
                    .bind(tools_json(&tools)?)
                    .bind(now_ms())
                    .bind(limits_json(&limits)?),
            )
            .await;
        if let Err(StoreError::Conflict(_)) = updated {
            return Err(StoreError::Conflict(format!(
                "you have an agent named '{name}' already"
            )));
        }
        updated?;
        let agent = select(&mut tx, p, id).await?;
        tx.commit().await?;
        Ok(agent)
    }

    #[tracing::instrument(name = "store.delete_agent", skip_all,
        fields(otel.kind = "internal", db.system = self.backend().otel_name()))]
    pub async fn delete_agent(&self, p: &Principal, id: &str) -> Result<()> {
        let mut tx = self.begin(Acting::As(p), true).await?;
        let current = select(&mut tx, p, id).await?;
        if current.name == DEFAULT_AGENT {
            // The request is well formed; the agent's role refuses it.
            return Err(StoreError::Conflict(
                "the default agent cannot be deleted".into(),
            ));
        }
        let sql = tx.sql("DELETE FROM agents WHERE id = $1").into_owned();
        tx.execute(sqlx::query(&sql).bind(id)).await?;
        tx.commit().await
    }
}
