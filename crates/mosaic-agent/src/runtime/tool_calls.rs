//! Tool calls: the registry's decision, approvals asked of the user, and the call.

use mosaic_api::{Agent, PendingApproval, SessionEvent};
use tokio::sync::oneshot;
use tracing::Instrument;

use crate::tools::{Decision, ToolContext, ToolOutput};

use super::lock;
use super::turn::RunCtx;

impl RunCtx {
    pub(super) async fn run_tool(&self, agent: &Agent, call: &mosaic_llm::ToolCall) -> ToolOutput {
        let ctx = ToolContext {
            principal: self.p.clone(),
            session_id: self.session_id.clone(),
            agent_id: Some(agent.id.clone()),
            cancel: self.cancel.clone(),
        };
        let (tool, args) = match self.tools.decide(&call.name, &call.arguments) {
            Decision::Refuse(why) => return ToolOutput::error(why),
            Decision::Run(tool, args) => (tool, args),
            Decision::Ask(tool, args) => {
                let (tx, rx) = oneshot::channel();
                let info = PendingApproval {
                    run_id: self.run_id.clone(),
                    call_id: call.id.clone(),
                    name: call.name.clone(),
                    arguments: call.arguments.clone(),
                };
                lock(&self.answers).insert(call.id.clone(), tx);
                let control = &self.rt.0.control;
                if let Err(e) = control.ask(&self.session_id, info.clone()).await {
                    lock(&self.answers).remove(&call.id);
                    return ToolOutput::error(format!("not run: approval could not be asked: {e}"));
                }
                self.emit(SessionEvent::ApprovalNeeded { approval: info })
                    .await;
                let answer = tokio::select! {
                    a = rx => a.ok(),
                    _ = self.cancel.cancelled() => None,
                };
                control.withdraw(&self.session_id, &call.id).await;
                lock(&self.answers).remove(&call.id);
                let Some((approved, note)) = answer else {
                    return ToolOutput::error("not run: the run was interrupted");
                };
                self.emit(SessionEvent::ApprovalResolved {
                    run_id: self.run_id.clone(),
                    call_id: call.id.clone(),
                    approved,
                })
                .await;
                if !approved {
                    let mut why = "the user declined this tool call".to_string();
                    if let Some(note) = note.filter(|n| !n.trim().is_empty()) {
                        why.push_str(": ");
                        why.push_str(note.trim());
                    }
                    return ToolOutput::error(why);
                }
                (tool, args)
            }
        };
        let span = tracing::info_span!(
            "gen_ai.execute_tool",
            otel.name = %format!("execute_tool {}", call.name),
            gen_ai.operation.name = "execute_tool",
            gen_ai.tool.name = %call.name,
            gen_ai.tool.call.id = %call.id,
            otel.status_code = tracing::field::Empty,
        );
        let out = tokio::select! {
            out = tool.call(&ctx, args).instrument(span.clone()) => out,
            _ = self.cancel.cancelled() => ToolOutput::error("stopped: the run was interrupted"),
        };
        if out.is_error {
            span.record("otel.status_code", "ERROR");
        }
        out
    }
}
