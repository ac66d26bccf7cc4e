//! Model providers, the models they offer, routes over them, and token usage.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// What kind of endpoint a provider is; each preconfigures a wire API and address.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "kebab-case")]
pub enum ProviderKind {
    Anthropic,
    Openai,
    Zai,
    Ollama,
    Lmstudio,
    Llamacpp,
    /// Any server speaking an OpenAI wire API; needs a base URL.
    OpenaiCompatible,
}

impl ProviderKind {
    pub const ALL: [ProviderKind; 7] = [
        ProviderKind::Anthropic,
        ProviderKind::Openai,
        ProviderKind::Zai,
        ProviderKind::Ollama,
        ProviderKind::Lmstudio,
        ProviderKind::Llamacpp,
        ProviderKind::OpenaiCompatible,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            ProviderKind::Anthropic => "anthropic",
            ProviderKind::Openai => "openai",
            ProviderKind::Zai => "zai",
            ProviderKind::Ollama => "ollama",
            ProviderKind::Lmstudio => "lmstudio",
            ProviderKind::Llamacpp => "llamacpp",
            ProviderKind::OpenaiCompatible => "openai-compatible",
        }
    }

    pub fn parse(s: &str) -> Option<ProviderKind> {
        ProviderKind::ALL.into_iter().find(|k| k.as_str() == s)
    }

    /// The address used when none is configured.
    pub fn default_base_url(self) -> Option<&'static str> {
        match self {
            ProviderKind::Anthropic => Some("https://api.anthropic.com/v1"),
            ProviderKind::Openai => Some("https://api.openai.com/v1"),
            ProviderKind::Zai => Some("https://api.z.ai/api/paas/v4"),
            ProviderKind::Ollama => Some("http://127.0.0.1:11434/v1"),
            ProviderKind::Lmstudio => Some("http://127.0.0.1:1234/v1"),
            ProviderKind::Llamacpp => Some("http://127.0.0.1:8080/v1"),
            ProviderKind::OpenaiCompatible => None,
        }
    }

    /// The wire API used when none is configured.
    pub fn default_wire(self) -> WireApi {
        match self {
            ProviderKind::Anthropic => WireApi::AnthropicMessages,
            ProviderKind::Openai
            | ProviderKind::Zai
            | ProviderKind::Ollama
            | ProviderKind::Lmstudio
            | ProviderKind::Llamacpp
            | ProviderKind::OpenaiCompatible => WireApi::ChatCompletions,
        }
    }
}

/// The wire API a provider is spoken to in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum WireApi {
    /// OpenAI Chat Completions.
    ChatCompletions,
    /// OpenAI Responses (Codex models).
    Responses,
    /// Anthropic Messages.
    AnthropicMessages,
}

impl WireApi {
    pub fn as_str(self) -> &'static str {
        match self {
            WireApi::ChatCompletions => "chat_completions",
            WireApi::Responses => "responses",
            WireApi::AnthropicMessages => "anthropic_messages",
        }
    }

    pub fn parse(s: &str) -> Option<WireApi> {
        [
            WireApi::ChatCompletions,
            WireApi::Responses,
            WireApi::AnthropicMessages,
        ]
        .into_iter()
        .find(|w| w.as_str() == s)
    }
}

/// Who a provider or route is for: everyone on the gateway (admins manage those), or
/// only the user who made it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ConfigScope {
    Gateway,
    #[default]
    User,
}

/// A configured provider. Its API key is never shown, only whether it has one.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ProviderInfo {
    pub id: String,
    pub name: String,
    pub kind: ProviderKind,
    pub wire: WireApi,
    pub base_url: String,
    pub scope: ConfigScope,
    pub has_api_key: bool,
    pub created_at: String,
    pub updated_at: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct CreateProviderRequest {
    /// How routes and `provider/model` names refer to it: letters, digits, `-`, `_`, `.`.
    pub name: String,
    pub kind: ProviderKind,
    /// Defaults to the kind's usual address (required for `openai-compatible`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub base_url: Option<String>,
    /// Stored encrypted; never returned.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api_key: Option<String>,
    /// Defaults to the kind's wire API.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub wire: Option<WireApi>,
    /// `gateway` (admins) or `user` (default).
    #[serde(default)]
    pub scope: ConfigScope,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct UpdateProviderRequest {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub base_url: Option<String>,
    /// A new key; an empty string removes it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api_key: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub wire: Option<WireApi>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ProviderList {
    pub items: Vec<ProviderInfo>,
}

/// Ask for one tiny completion, to check a provider works.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct TestProviderRequest {
    /// The model to try; the first one the provider lists when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct TestProviderResponse {
    pub ok: bool,
    pub model: String,
    /// Time to the first streamed event.
    pub latency_ms: f64,
    /// The provider's own words when it failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// A model a provider offers, as `provider/model`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ModelInfo {
    /// `provider/model`: what routes and the OpenAI-compatible endpoint accept.
    pub id: String,
    pub provider: String,
    pub model: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ModelList {
    pub items: Vec<ModelInfo>,
    /// Providers whose model list could not be read, and why.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<String>,
}

/// One step of a route.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct RouteStep {
    #[schema(pattern = r"^\s*[A-Za-z0-9._-]{1,64}\s*$")]
    pub provider: String,
    #[schema(pattern = r"\S", max_length = 256)]
    pub model: String,
    /// Time allowed to the first token before falling back; 60 s when absent.
    #[serde(default = "default_timeout_ms")]
    #[schema(minimum = 100, maximum = 600000)]
    pub timeout_ms: u64,
    /// Time allowed between two tokens once the answer has begun; a model silent for
    /// longer is given up, keeping what it sent. The gateway's `model_idle_timeout_secs`
    /// (60 s unless configured) when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub idle_timeout_ms: Option<u64>,
}

fn default_timeout_ms() -> u64 {
    60_000
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct RouteInfo {
    pub id: String,
    pub name: String,
    pub scope: ConfigScope,
    pub steps: Vec<RouteStep>,
    pub created_at: String,
    pub updated_at: String,
}

/// Create or replace the route of this name (in this scope).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct SetRouteRequest {
    #[schema(pattern = r"^\s*[A-Za-z0-9._-]{1,64}\s*$")]
    pub name: String,
    #[schema(min_items = 1, max_items = 16)]
    pub steps: Vec<RouteStep>,
    #[serde(default)]
    pub scope: ConfigScope,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct RouteList {
    pub items: Vec<RouteInfo>,
}

/// The health of one `provider/model` the routing matrix has called.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ModelHealth {
    pub provider: String,
    pub model: String,
    pub healthy: bool,
    pub consecutive_failures: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cooldown_remaining_secs: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_error: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct HealthList {
    pub items: Vec<ModelHealth>,
}

/// Tokens one user spent with one `provider/model` on one day (UTC).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct UsageRow {
    /// `YYYY-MM-DD`, UTC.
    pub day: String,
    pub provider: String,
    pub model: String,
    pub requests: u64,
    pub input_tokens: u64,
    pub output_tokens: u64,
    pub cached_tokens: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct UsageReport {
    pub items: Vec<UsageRow>,
}

/// Which days a usage report covers (inclusive, `YYYY-MM-DD`); the last 30 when absent.
#[derive(
    Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::IntoParams, ToSchema,
)]
#[into_params(parameter_in = Query)]
pub struct UsageQuery {
    #[serde(default, deserialize_with = "crate::time::day")]
    #[param(format = Date)]
    pub from: Option<String>,
    #[serde(default, deserialize_with = "crate::time::day")]
    #[param(format = Date)]
    pub to: Option<String>,
}
