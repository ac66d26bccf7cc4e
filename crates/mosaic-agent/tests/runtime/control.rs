//! Run control through the runtime: an interrupt reaches the running run, an approval's
//! answer reaches the call waiting for it (once), a steer joins the run at its next
//! tool boundary.

use std::sync::Arc;

use mosaic_agent::tools::{Registry, Tool, ToolContext, ToolOutput};
use mosaic_api::{Delivery, PostMessageResponse, RunStatus, SessionEvent, StopReason};
use mosaic_llm::{BoxFuture, Role, ToolSpec};
use mosaic_store::StoreError;
use pretty_assertions::assert_eq;
use serde_json::{json, Value};

use crate::support::{message, runtime, started, Events, Reply, ScriptedModel, World};

/// A stand-in under the name the default agent must ask approval for.
struct Fetch;

impl Tool for Fetch {
    fn spec(&self) -> ToolSpec {
        ToolSpec {
            name: "http_fetch".into(),
            description: "stand-in".into(),
            parameters: json!({"type": "object"}),
        }
    }

    fn call<'a>(&'a self, _ctx: &'a ToolContext, _args: Value) -> BoxFuture<'a, ToolOutput> {
        Box::pin(async { ToolOutput::ok("fetched") })
    }
}

#[tokio::test]
async fn an_interrupt_reaches_the_running_run() {
    let w = World::open().await;
    let (held, _release) = Reply::text("never").held();
    let (model, mut arrived) = ScriptedModel::new(vec![held]);
    let rt = runtime(&w, model, Registry::default());
    let mut events = Events::follow(&rt, &w).await;
    let (_, run) = started(
        rt.post_message(&w.alice, &w.session_id, message("go"))
            .await
            .unwrap(),
    );
    arrived.recv().await.unwrap();
    assert_eq!(
        rt.interrupt(&w.alice, &w.session_id)
            .await
            .unwrap()
            .as_deref(),
        Some(run.as_str())
    );
    let end = events.finished(&run).await;
    assert_eq!(end.status, RunStatus::Interrupted);
    assert_eq!(end.stop_reason, Some(StopReason::Interrupted));
}

#[tokio::test]
async fn an_approval_is_answered_once_and_the_call_then_runs() {
    let w = World::open().await;
    let (model, _arrived) = ScriptedModel::new(vec![
        Reply::tool_call("c1", "http_fetch", "{}"),
        Reply::text("done"),
    ]);
    let mut tools = Registry::default();
    tools.add(Arc::new(Fetch));
    let rt = runtime(&w, model, tools);
    let mut events = Events::follow(&rt, &w).await;
    let (_, run) = started(
        rt.post_message(&w.alice, &w.session_id, message("go"))
            .await
            .unwrap(),
    );
    let asked = events
        .until(|e| match e {
            SessionEvent::ApprovalNeeded { approval } => Some(approval.clone()),
            _ => None,
        })
        .await;
    assert_eq!(
        (asked.run_id.as_str(), asked.call_id.as_str()),
        (run.as_str(), "c1")
    );
    let state = rt.state(&w.alice, &w.session_id).await.unwrap();
    assert_eq!(state.approvals, vec![asked]);

    // Another user cannot answer it; the owner can, once.
    assert!(matches!(
        rt.approve(&w.bob, &w.session_id, "c1", true, None).await,
        Err(StoreError::NotFound)
    ));
    rt.approve(&w.alice, &w.session_id, "c1", true, None)
        .await
        .unwrap();
    assert!(matches!(
        rt.approve(&w.alice, &w.session_id, "c1", true, None).await,
        Err(StoreError::NotFound)
    ));
    assert_eq!(events.finished(&run).await.status, RunStatus::Completed);
    let path = w
        .store
        .session_path(&w.alice, &w.session_id, None)
        .await
        .unwrap();
    assert!(path.iter().any(|e| matches!(&e.body,
        mosaic_api::EntryBody::ToolResult { call_id, output, is_error: false } if call_id == "c1" && output == "fetched")));
}

#[tokio::test]
async fn a_steer_joins_the_run_at_its_next_tool_boundary() {
    let w = World::open().await;
    let (held, release) = Reply::tool_call("c1", "current_time", "{}").held();
    let (model, mut arrived) = ScriptedModel::new(vec![held, Reply::text("noon, and yes")]);
    let rt = runtime(&w, model.clone(), Registry::builtin(Default::default()));
    let mut events = Events::follow(&rt, &w).await;
    let (_, run) = started(
        rt.post_message(&w.alice, &w.session_id, message("time?"))
            .await
            .unwrap(),
    );
    arrived.recv().await.unwrap();
    let mut steer = message("and the date too");
    steer.delivery = Delivery::Steer;
    let queued = rt
        .post_message(&w.alice, &w.session_id, steer)
        .await
        .unwrap();
    assert!(
        matches!(queued, PostMessageResponse::Queued { .. }),
        "{queued:?}"
    );
    release.send(()).unwrap();
    assert_eq!(events.finished(&run).await.status, RunStatus::Completed);

    // The second model call, in the same run, read the steer after the tool's result.
    let requests = model.requests();
    assert_eq!(requests.len(), 2);
    let last = requests[1].messages.last().unwrap();
    assert_eq!(
        (last.role, last.content.as_str()),
        (Role::User, "and the date too")
    );
    let state = rt.state(&w.alice, &w.session_id).await.unwrap();
    assert_eq!(state.queue, vec![]);
}
