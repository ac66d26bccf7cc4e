//! Tools an agent may call: a registry of named tools, each with a JSON schema of its
//! arguments. Arguments are validated against the schema before a tool runs; a call
//! that fails validation goes back to the model as an error result, so it can retry.
//!
//! A registry holds every tool the gateway has; an agent's policy picks which of them
//! its model is offered. A run may have tools of its own on top (the user's MCP
//! servers, a peer's tools): a [`RunToolProvider`] names them when the run starts, and
//! the run's [`ToolSet`] puts them beside the gateway's registry without changing it. The default agent (`mosaic_store::default_agent`) lists only
//! `current_time` and `http_fetch`, so brain tools reach a model only once a person
//! puts them on an agent.

pub mod brain;
mod fetch;
mod html;
pub mod memory;
mod time;

use std::collections::HashMap;
use std::sync::Arc;

use mosaic_api::{Agent, AgentTool, ToolPolicy};
use mosaic_llm::{BoxFuture, ToolSpec};
use mosaic_store::Principal;
use tokio_util::sync::CancellationToken;

pub use brain::BrainTool;
pub use fetch::{FetchConfig, HttpFetch};
pub use time::CurrentTime;

/// Who a tool acts for, and a signal that the run was interrupted.
#[derive(Debug, Clone)]
pub struct ToolContext {
    pub principal: Principal,
    pub session_id: String,
    /// The agent of the run (memory tools pin notes for it).
    pub agent_id: Option<String>,
    pub cancel: CancellationToken,
}

/// What a tool answered. An error is still an answer: the model reads it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ToolOutput {
    pub output: String,
    pub is_error: bool,
}

impl ToolOutput {
    pub fn ok(output: impl Into<String>) -> Self {
        ToolOutput {
            output: output.into(),
            is_error: false,
        }
    }

    pub fn error(output: impl Into<String>) -> Self {
        ToolOutput {
            output: output.into(),
            is_error: true,
        }
    }
}

/// Something an agent may call.
pub trait Tool: Send + Sync {
    /// Name, description and the JSON schema of the arguments.
    fn spec(&self) -> ToolSpec;

    /// Run with arguments that passed the schema.
    fn call<'a>(
        &'a self,
        ctx: &'a ToolContext,
        args: serde_json::Value,
    ) -> BoxFuture<'a, ToolOutput>;
}

struct Registered {
    tool: Arc<dyn Tool>,
    spec: ToolSpec,
    /// Compiled at the tool's first call: most tools of a gateway are never called
    /// between two starts, and compiled schemas are the larger part of what a start
    /// would otherwise allocate for them. (`every_builtin_schema_compiles` keeps a
    /// schema that does not compile from reaching a release.)
    validator: std::sync::OnceLock<Result<jsonschema::Validator, String>>,
}

impl Registered {
    fn validator(&self) -> Result<&jsonschema::Validator, &str> {
        self.validator
            .get_or_init(|| {
                jsonschema::validator_for(&self.spec.parameters).map_err(|e| {
                    tracing::error!(tool = %self.spec.name, "tool schema does not compile: {e}");
                    e.to_string()
                })
            })
            .as_ref()
            .map_err(String::as_str)
    }
}

/// The tools this gateway has.
#[derive(Default)]
pub struct Registry {
    tools: HashMap<String, Registered>,
}

/// What to do with one call, after the policy and the schema have been consulted.
pub enum Decision {
    Run(Arc<dyn Tool>, serde_json::Value),
    Ask(Arc<dyn Tool>, serde_json::Value),
    /// Answer the model with this error without running anything.
    Refuse(String),
}

impl Registry {
    /// The built-in tools.
    pub fn builtin(fetch: FetchConfig) -> Registry {
        let mut r = Registry::default();
        r.add(Arc::new(CurrentTime));
        r.add(Arc::new(HttpFetch::new(fetch)));
        r
    }

    /// These tools plus the brain tools (projects, tasks, missions, notes, search) and
    /// the memory tools (`remember`, `recall`, `update_memory`), which act through
    /// `store` as the session's owner. With an `embedder`, searches go by meaning too.
    pub fn with_brain(
        mut self,
        store: mosaic_store::Store,
        embedder: Option<Arc<crate::embedder::Embedder>>,
    ) -> Registry {
        for tool in brain::tools(store.clone(), embedder.clone()) {
            self.add(tool);
        }
        self.add(Arc::new(memory::Remember::new(store.clone())));
        self.add(Arc::new(memory::Recall::new(store.clone(), embedder)));
        self.add(Arc::new(memory::UpdateMemory::new(store)));
        self
    }

    /// Register a tool. Its schema is compiled at its first call; one that does not
    /// compile is a programming error in the tool: logged, and every call refused.
    pub fn add(&mut self, tool: Arc<dyn Tool>) {
        let spec = tool.spec();
        self.tools.insert(
            spec.name.clone(),
            Registered {
                tool,
                spec,
                validator: std::sync::OnceLock::new(),
            },
        );
    }

    /// The tools whose schema does not compile, with why (compiling every schema now).
    pub fn broken_schemas(&self) -> Vec<(String, String)> {
        let mut broken: Vec<(String, String)> = self
            .tools
            .iter()
            .filter_map(|(name, r)| r.validator().err().map(|e| (name.clone(), e.to_string())))
            .collect();
        broken.sort();
        broken
    }

    pub fn contains(&self, name: &str) -> bool {
        self.tools.contains_key(name)
    }

    pub fn names(&self) -> Vec<String> {
        let mut names: Vec<String> = self.tools.keys().cloned().collect();
        names.sort();
        names
    }

    /// The tools an agent's policy offers to the model (allowed or needing approval).
    pub fn offered(&self, policy: &[AgentTool]) -> Vec<ToolSpec> {
        policy
            .iter()
            .filter(|t| t.policy != ToolPolicy::Denied)
            .filter_map(|t| self.tools.get(&t.name).map(|r| r.spec.clone()))
            .collect()
    }

    /// Decide about one call the model made.
    pub fn decide(&self, policy: &[AgentTool], name: &str, arguments: &str) -> Decision {
        let Some(registered) = self.tools.get(name) else {
            return Decision::Refuse(format!("there is no tool named '{name}'"));
        };
        let rule = policy.iter().find(|t| t.name == name).map(|t| t.policy);
        let rule = match rule {
            None | Some(ToolPolicy::Denied) => {
                return Decision::Refuse(format!(
                    "the tool '{name}' is not available to this agent"
                ))
            }
            Some(rule) => rule,
        };
        let text = if arguments.trim().is_empty() {
            "{}"
        } else {
            arguments
        };
        let args: serde_json::Value = match serde_json::from_str(text) {
            Ok(v) => v,
            Err(e) => return Decision::Refuse(format!("the arguments are not valid JSON: {e}")),
        };
        let validator = match registered.validator() {
            Ok(v) => v,
            Err(e) => {
                return Decision::Refuse(format!("the tool '{name}' is broken: its schema {e}"))
            }
        };
        let problems: Vec<String> = validator
            .iter_errors(&args)
            .take(5)
            .map(|e| {
                let at = e.instance_path().to_string();
                if at.is_empty() {
                    e.to_string()
                } else {
                    format!("{at}: {e}")
                }
            })
            .collect();
        if !problems.is_empty() {
            return Decision::Refuse(format!(
                "the arguments do not match the schema of '{name}': {}",
                problems.join("; ")
            ));
        }
        match rule {
            ToolPolicy::NeedsApproval => Decision::Ask(registered.tool.clone(), args),
            _ => Decision::Run(registered.tool.clone(), args),
        }
    }
}

/// A tool only one run has, and its policy unless the agent's names the tool.
pub struct RunTool {
    pub tool: Arc<dyn Tool>,
    pub policy: ToolPolicy,
}

/// Names the tools a run has beyond the gateway's, when it starts: the user's MCP
/// servers, a peer's tools. Asked once per run.
pub trait RunToolProvider: Send + Sync {
    fn tools_for<'a>(
        &'a self,
        principal: &'a Principal,
        session_id: &'a str,
        agent: &'a Agent,
    ) -> BoxFuture<'a, Vec<RunTool>>;
}

/// The tools of one run: the gateway's registry (shared, never changed by a run) and the
/// run's own. The gateway's win a clash of names, so a run's tool cannot stand in for a
/// built-in one.
pub struct ToolSet {
    shared: Arc<Registry>,
    own: Registry,
    /// The agent's policy, then the run's own tools' policies for the names it lacks.
    policy: Vec<AgentTool>,
}

impl ToolSet {
    pub fn new(shared: Arc<Registry>, agent: &[AgentTool], run_tools: Vec<RunTool>) -> ToolSet {
        let mut own = Registry::default();
        let mut policy = agent.to_vec();
        for RunTool { tool, policy: rule } in run_tools {
            let name = tool.spec().name;
            if shared.contains(&name) {
                tracing::warn!(tool = %name, "a run's tool has the name of a gateway tool; left out");
                continue;
            }
            if !policy.iter().any(|t| t.name == name) {
                policy.push(AgentTool {
                    name: name.clone(),
                    policy: rule,
                });
            }
            own.add(tool);
        }
        ToolSet {
            shared,
            own,
            policy,
        }
    }

    /// The tools offered to the model.
    pub fn offered(&self) -> Vec<ToolSpec> {
        let mut specs = self.shared.offered(&self.policy);
        specs.extend(self.own.offered(&self.policy));
        specs
    }

    /// Decide about one call the model made.
    pub fn decide(&self, name: &str, arguments: &str) -> Decision {
        let registry = if self.own.contains(name) {
            &self.own
        } else {
            &self.shared
        };
        registry.decide(&self.policy, name, arguments)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A tool of a run, under any name.
    struct Named(&'static str);

    impl Tool for Named {
        fn spec(&self) -> ToolSpec {
            ToolSpec {
                name: self.0.into(),
                description: "a run's own".into(),
                parameters: serde_json::json!({"type": "object"}),
            }
        }

        fn call<'a>(
            &'a self,
            _ctx: &'a ToolContext,
            _args: serde_json::Value,
        ) -> BoxFuture<'a, ToolOutput> {
            Box::pin(async { ToolOutput::ok("the run's") })
        }
    }

    fn run_tool(name: &'static str, policy: ToolPolicy) -> RunTool {
        RunTool {
            tool: Arc::new(Named(name)),
            policy,
        }
    }

    fn kind(d: Decision) -> &'static str {
        match d {
            Decision::Run(..) => "run",
            Decision::Ask(..) => "ask",
            Decision::Refuse(_) => "refuse",
        }
    }

    #[test]
    fn a_runs_tools_sit_beside_the_gateways_which_win_a_clash_and_the_agent_has_the_last_word() {
        let mut shared = Registry::default();
        shared.add(Arc::new(CurrentTime));
        let shared = Arc::new(shared);
        let agent = [
            AgentTool {
                name: "current_time".into(),
                policy: ToolPolicy::Allowed,
            },
            AgentTool {
                name: "mcp_search".into(),
                policy: ToolPolicy::NeedsApproval,
            },
        ];
        let set = ToolSet::new(
            shared.clone(),
            &agent,
            vec![
                // Named like a gateway tool: left out, the gateway's stays.
                run_tool("current_time", ToolPolicy::Allowed),
                // The agent says to ask, whatever the provider says.
                run_tool("mcp_search", ToolPolicy::Allowed),
                run_tool("mcp_read", ToolPolicy::Allowed),
                run_tool("mcp_write", ToolPolicy::Denied),
            ],
        );
        let names: Vec<String> = set.offered().into_iter().map(|t| t.name).collect();
        assert_eq!(names, vec!["current_time", "mcp_search", "mcp_read"]);
        assert_eq!(
            shared.offered(&agent).len(),
            1,
            "the shared registry is unchanged"
        );
        assert_eq!(kind(set.decide("current_time", "{}")), "run");
        assert_eq!(kind(set.decide("mcp_search", "{}")), "ask");
        assert_eq!(kind(set.decide("mcp_read", "{}")), "run");
        assert_eq!(kind(set.decide("mcp_write", "{}")), "refuse");
        let Decision::Run(clock, _) = set.decide("current_time", "{}") else {
            panic!("current_time is not run");
        };
        assert_eq!(clock.spec().description, CurrentTime.spec().description);
    }
}
