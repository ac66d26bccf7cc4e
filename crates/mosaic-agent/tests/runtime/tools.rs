//! Tools per run: a provider gives one user's runs a tool of their own (as a user's MCP
//! server would); the gateway's registry stays as it was and other users' runs never
//! see the tool.

use std::sync::Arc;

use mosaic_agent::tools::{Registry, RunTool, RunToolProvider, Tool, ToolContext, ToolOutput};
use mosaic_agent::RuntimeConfig;
use mosaic_api::{Agent, EntryBody, ToolPolicy};
use mosaic_llm::{BoxFuture, ToolSpec};
use mosaic_store::Principal;
use pretty_assertions::assert_eq;
use serde_json::{json, Value};

use crate::support::{Events, Reply, ScriptedModel, World};

/// Tells who called it.
struct Whoami;

impl Tool for Whoami {
    fn spec(&self) -> ToolSpec {
        ToolSpec {
            name: "whoami".into(),
            description: "Who the run acts for".into(),
            parameters: json!({"type": "object", "additionalProperties": false}),
        }
    }

    fn call<'a>(&'a self, ctx: &'a ToolContext, _args: Value) -> BoxFuture<'a, ToolOutput> {
        Box::pin(async move {
            ToolOutput::ok(format!(
                "you are {}",
                ctx.principal.local_user().unwrap_or_default()
            ))
        })
    }
}

/// Alice's runs have `whoami`; nobody else's do.
struct AliceOnly(String);

impl RunToolProvider for AliceOnly {
    fn tools_for<'a>(
        &'a self,
        principal: &'a Principal,
        _session_id: &'a str,
        _agent: &'a Agent,
    ) -> BoxFuture<'a, Vec<RunTool>> {
        Box::pin(async move {
            if principal.local_user() == Some(self.0.as_str()) {
                vec![RunTool {
                    tool: Arc::new(Whoami),
                    policy: ToolPolicy::Allowed,
                }]
            } else {
                Vec::new()
            }
        })
    }
}

/// The output of a call in the world's session, and whether it is an error.
async fn tool_result(w: &World, p: &Principal, id: &str) -> Option<(String, bool)> {
    let path = w.store.session_path(p, &w.session_id, None).await.unwrap();
    path.into_iter().find_map(|e| match e.body {
        EntryBody::ToolResult {
            call_id,
            output,
            is_error,
        } if call_id == id => Some((output, is_error)),
        _ => None,
    })
}

fn offered(request: &mosaic_llm::ChatRequest) -> Vec<String> {
    request.tools.iter().map(|t| t.name.clone()).collect()
}

#[tokio::test]
async fn a_runs_own_tool_is_offered_and_called_in_that_run_only() {
    let mut w = World::open().await;
    let (model, _arrived) = ScriptedModel::new(vec![
        Reply::tool_call("c1", "whoami", "{}"),
        Reply::text("you are alice"),
        // Bob's model tries the tool it was not offered.
        Reply::tool_call("c2", "whoami", "{}"),
        Reply::text("no such tool"),
    ]);
    let rt = mosaic_agent::Runtime::builder(
        w.store.clone(),
        model.clone(),
        Registry::builtin(Default::default()),
        RuntimeConfig::default(),
    )
    .run_tools(Arc::new(AliceOnly(
        w.alice.local_user().unwrap_or_default().to_string(),
    )))
    .build();

    let mut events = Events::follow(&rt, &w).await;
    events.exchange(&rt, &w, "who am I?").await;
    let result = tool_result(&w, &w.alice, "c1").await;
    assert_eq!(
        result,
        Some((
            format!("you are {}", w.alice.local_user().unwrap_or_default()),
            false
        ))
    );

    // Bob's session, on the same runtime (from here on `w.alice` is Bob).
    let bob = w.bob.clone();
    w.switch_to_bob().await;
    let mut events = Events::follow(&rt, &w).await;
    events.exchange(&rt, &w, "who am I?").await;
    let refused = tool_result(&w, &bob, "c2").await;
    assert_eq!(
        refused,
        Some(("there is no tool named 'whoami'".to_string(), true))
    );

    let requests = model.requests();
    assert!(offered(&requests[0]).contains(&"whoami".to_string()));
    assert!(offered(&requests[0]).contains(&"current_time".to_string()));
    assert!(!offered(&requests[2]).contains(&"whoami".to_string()));
    assert!(offered(&requests[2]).contains(&"current_time".to_string()));
    // The gateway's registry never had it.
    assert!(!rt.tools().names().contains(&"whoami".to_string()));
}
