//! Agents: named configurations of a system prompt, a model route and the tools the
//! agent may use, each with a policy.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// Name of the agent every user has, created on first use.
pub const DEFAULT_AGENT: &str = "default";

/// What an agent may do with a tool.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ToolPolicy {
    /// Runs when the model calls it.
    Allowed,
    /// Waits for a person to approve each call.
    NeedsApproval,
    /// Never offered to the model.
    Denied,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct AgentTool {
    #[schema(pattern = r"^\s*[A-Za-z0-9._-]{1,64}\s*$")]
    pub name: String,
    pub policy: ToolPolicy,
}

/// Limits of one run. Unset fields take the gateway's defaults (`run_max_model_calls`,
/// `run_token_budget`, `context_window` in the configuration).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct AgentLimits {
    /// Model calls a run may make before it stops with `max_model_calls`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(minimum = 1, maximum = 4_294_967_295_u64, format = Int64)]
    pub max_model_calls: Option<u32>,
    /// Input plus output tokens a run may use before it stops with `token_budget`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(minimum = 1)]
    pub token_budget: Option<u64>,
    /// The model's context window in tokens; older entries are compacted into a
    /// summary when a call would exceed it minus a reserve (a quarter, at most 16,384).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(minimum = 256, maximum = 4_294_967_295_u64, format = Int64)]
    pub context_window: Option<u32>,
    /// Tokens the model may spend thinking before each answer: Anthropic's thinking
    /// budget, or the Responses API's effort (under 4,096 low, under 16,384 medium,
    /// else high). The model is not asked to think when unset; models that cannot
    /// refuse the call.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(minimum = 1024, maximum = 4_294_967_295_u64, format = Int64)]
    pub thinking_budget: Option<u32>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Agent {
    pub id: String,
    pub name: String,
    pub description: String,
    pub system_prompt: String,
    /// A route name or `provider/model`.
    pub route: String,
    pub tools: Vec<AgentTool>,
    /// Limits of this agent's runs; unset ones take the gateway's defaults.
    #[serde(default)]
    pub limits: AgentLimits,
    pub created_at: String,
    pub updated_at: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct CreateAgentRequest {
    #[schema(pattern = r"^\s*[A-Za-z0-9._-]{1,64}\s*$")]
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(max_length = 1000)]
    pub description: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub system_prompt: Option<String>,
    /// `default` when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(pattern = r"\S", max_length = 256)]
    pub route: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tools: Option<Vec<AgentTool>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limits: Option<AgentLimits>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct UpdateAgentRequest {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(pattern = r"^\s*[A-Za-z0-9._-]{1,64}\s*$")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(max_length = 1000)]
    pub description: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub system_prompt: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(pattern = r"\S", max_length = 256)]
    pub route: Option<String>,
    /// Replaces the whole tool list.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tools: Option<Vec<AgentTool>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limits: Option<AgentLimits>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct AgentList {
    pub items: Vec<Agent>,
}
