//! The turn loop: a run's working state, and the loop of model calls and tool calls
//! until the answer is complete, a limit is reached or the run is interrupted.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use mosaic_api::{
    Agent, Delivery, Entry, EntryBody, RunStatus, RunUsage, SessionEvent, StopReason as RunStop,
};
use mosaic_llm::{ChatRequest, StopReason, Usage};
use mosaic_store::{Parent, Principal, RunEnd, RunProgress, Store, StoreError};
use tokio_util::sync::CancellationToken;

use crate::context;
use crate::tools::{ToolOutput, ToolSet};

use super::lane::Answers;
use super::{ModelError, Result, Runtime};

/// One run's working state.
pub(super) struct RunCtx {
    pub(super) rt: Runtime,
    pub(super) p: Principal,
    pub(super) session_id: String,
    pub(super) run_id: String,
    pub(super) cancel: CancellationToken,
    /// Where the answers to this run's approvals arrive.
    pub(super) answers: Answers,
    /// Set when a steer waits in the queue.
    pub(super) steers: Arc<AtomicBool>,
    pub(super) progress: RunProgress,
    /// The run's tools: the gateway's and its own (set when the run knows its agent).
    pub(super) tools: ToolSet,
    /// The session's path from its root to the active leaf. Only this run appends to
    /// the session while it runs (edits and branch switches wait for it), so the path is
    /// read once and kept up to date here.
    pub(super) path: Vec<Entry>,
}

/// What one model call produced.
pub(super) struct Answer {
    pub(super) text: String,
    pub(super) thinking: String,
    pub(super) calls: Vec<mosaic_llm::ToolCall>,
    /// What the provider needs back to continue the answer.
    pub(super) reasoning: Vec<mosaic_llm::Reasoning>,
    pub(super) stop: Option<StopReason>,
    pub(super) model: String,
    /// Why the answer broke off, when it did.
    pub(super) error: Option<ModelError>,
}

pub(super) fn add_usage(total: &mut RunUsage, u: Usage) {
    total.input_tokens += u.input_tokens;
    total.output_tokens += u.output_tokens;
    total.cached_tokens += u.cached_tokens;
}

/// How the contract names why a model call ended.
fn run_stop(s: StopReason) -> RunStop {
    match s {
        StopReason::Stop => RunStop::Stop,
        StopReason::Length => RunStop::Length,
        StopReason::ToolUse => RunStop::ToolUse,
        StopReason::Error => RunStop::Error,
        StopReason::Aborted => RunStop::Aborted,
    }
}

impl RunCtx {
    pub(super) fn store(&self) -> &Store {
        &self.rt.0.store
    }

    pub(super) async fn emit(&self, event: SessionEvent) {
        self.rt.publish(&self.p, &self.session_id, event).await;
    }

    pub(super) async fn commit(&mut self, body: EntryBody) -> Result<Entry> {
        let entry = self
            .store()
            .append_run_entry(
                &self.p,
                &self.session_id,
                &self.run_id,
                Parent::ActiveLeaf,
                body,
                &self.progress,
            )
            .await?;
        self.path.push(entry.clone());
        self.emit(SessionEvent::Entry {
            run_id: Some(self.run_id.clone()),
            entry: entry.clone(),
        })
        .await;
        Ok(entry)
    }

    pub(super) fn interrupted(&self) -> RunEnd {
        let reason = if self.rt.0.shutting_down.load(Ordering::SeqCst) {
            RunStop::GatewayStopped
        } else {
            RunStop::Interrupted
        };
        RunEnd {
            status: RunStatus::Interrupted,
            stop_reason: Some(reason),
            error: None,
        }
    }

    pub(super) fn failed(message: String) -> RunEnd {
        RunEnd {
            status: RunStatus::Failed,
            stop_reason: Some(RunStop::Error),
            error: Some(message),
        }
    }

    pub(super) async fn finish(&mut self, end: RunEnd) {
        if let Some(message) = &end.error {
            self.emit(SessionEvent::Error {
                run_id: Some(self.run_id.clone()),
                message: message.clone(),
            })
            .await;
        }
        let run = match self
            .store()
            .finish_run(&self.p, &self.run_id, &end, &self.progress)
            .await
        {
            Ok(run) => run,
            // The session was deleted under the run.
            Err(StoreError::NotFound) => return,
            Err(e) => {
                tracing::error!(run = %self.run_id, "run end not recorded: {e}");
                return;
            }
        };
        self.emit(SessionEvent::RunFinished { run }).await;
    }

    /// The session's agent, and the session's active leaf.
    pub(super) async fn agent(&self) -> Result<(Agent, Option<String>)> {
        let session = self.store().get_session(&self.p, &self.session_id).await?;
        let agent = match &session.agent_id {
            Some(id) => match self.store().get_agent(&self.p, id).await {
                Ok(a) => Ok(a),
                Err(StoreError::NotFound) => {
                    self.store()
                        .agent_by_name(&self.p, mosaic_api::DEFAULT_AGENT)
                        .await
                }
                Err(e) => Err(e),
            },
            None => {
                self.store()
                    .agent_by_name(&self.p, mosaic_api::DEFAULT_AGENT)
                    .await
            }
        }?;
        Ok((agent, session.active_leaf_id))
    }

    pub(super) async fn run(&mut self) -> RunEnd {
        match self.turns().await {
            Ok(end) => end,
            Err(e) => Self::failed(e.to_string()),
        }
    }

    pub(super) async fn turns(&mut self) -> Result<RunEnd> {
        let (agent, leaf) = self.agent().await?;
        let config = self.rt.0.config.clone();
        let max_calls = agent
            .limits
            .max_model_calls
            .unwrap_or(config.max_model_calls);
        let budget = agent.limits.token_budget.unwrap_or(config.token_budget);
        let window = u64::from(agent.limits.context_window.unwrap_or(config.context_window));
        self.tools = self.tool_set(&agent).await;
        let tools = self.tools.offered();
        if leaf.is_none() || self.path.last().map(|e| &e.id) != leaf.as_ref() {
            self.path = self
                .store()
                .session_path(&self.p, &self.session_id, None)
                .await?;
        }
        self.emit(SessionEvent::RunStarted {
            run_id: self.run_id.clone(),
            route: agent.route.clone(),
        })
        .await;
        loop {
            if self.cancel.is_cancelled() {
                return Ok(self.interrupted());
            }
            if self.progress.model_calls >= max_calls {
                return Ok(limited(RunStop::MaxModelCalls));
            }
            if self.progress.usage.total() >= budget {
                return Ok(limited(RunStop::TokenBudget));
            }
            // Pinned memory is read for every call: a tool may just have changed it.
            let system = self.system_prompt(&agent).await;
            let mut messages = self.context(&system).await;
            let reserve = (window / 4).min(16_384);
            let mut max_tokens = config.max_output_tokens;
            if context::estimate_tokens(&messages, &tools) > window.saturating_sub(reserve) {
                if let Some(end) = self.compact(&agent, window, max_calls, budget).await? {
                    return Ok(end);
                }
                messages = self.context(&system).await;
            }
            // Never ask for more than the window leaves.
            let room = window.saturating_sub(context::estimate_tokens(&messages, &tools));
            max_tokens = max_tokens.min(room.max(256) as u32);
            let request = ChatRequest {
                model: String::new(),
                messages,
                tools: tools.clone(),
                max_tokens: Some(max_tokens),
                thinking_budget: agent.limits.thinking_budget,
                ..ChatRequest::default()
            };
            let answer = self.call_model(&agent.route, request).await;
            let answer = match answer {
                Ok(a) => a,
                Err(error) => return Ok(Self::failed(error.to_string())),
            };
            self.note_model_change(&answer).await?;
            let interrupted = self.cancel.is_cancelled();
            let stop = match (&answer.error, interrupted) {
                (Some(_), _) => RunStop::Error,
                (None, true) => RunStop::Interrupted,
                (None, false) => answer.stop.map(run_stop).unwrap_or(RunStop::Error),
            };
            // Tool calls cut off mid-stream are not run.
            let calls = if answer.error.is_none() && !interrupted {
                answer.calls.clone()
            } else {
                Vec::new()
            };
            // An answer cut off before any text leaves no entry (the run records why).
            let cut_off = answer.error.is_some() || interrupted;
            // Reasoning without text (redacted, or unsummarised) still needs its entry:
            // the provider wants it back with the tool calls that follow.
            if !answer.text.is_empty()
                || !answer.thinking.is_empty()
                || (!answer.reasoning.is_empty() && !cut_off)
                || (calls.is_empty() && !cut_off)
            {
                self.commit(EntryBody::Assistant {
                    text: answer.text.clone(),
                    thinking: answer.thinking.clone(),
                    model: Some(answer.model.clone()),
                    stop_reason: Some(stop),
                    reasoning: context::stored_reasoning(&answer.reasoning),
                })
                .await?;
            }
            if let Some(error) = answer.error {
                return Ok(Self::failed(error.to_string()));
            }
            if interrupted {
                return Ok(self.interrupted());
            }
            for call in &calls {
                self.commit(EntryBody::ToolCall {
                    call_id: call.id.clone(),
                    name: call.name.clone(),
                    arguments: call.arguments.clone(),
                })
                .await?;
            }
            for call in &calls {
                let output = if self.cancel.is_cancelled() {
                    ToolOutput::error("not run: the run was interrupted")
                } else {
                    self.run_tool(&agent, call).await
                };
                self.commit(EntryBody::ToolResult {
                    call_id: call.id.clone(),
                    output: output.output,
                    is_error: output.is_error,
                })
                .await?;
            }
            if self.cancel.is_cancelled() {
                return Ok(self.interrupted());
            }
            let steered = self.deliver_steers().await?;
            if calls.is_empty() && !steered {
                let reason = answer.stop.map(run_stop).unwrap_or(RunStop::Stop);
                return Ok(RunEnd {
                    status: RunStatus::Completed,
                    stop_reason: Some(reason),
                    error: None,
                });
            }
        }
    }

    /// The gateway's tools and the ones the provider gives this run.
    async fn tool_set(&self, agent: &Agent) -> ToolSet {
        let own = match &self.rt.0.run_tools {
            Some(provider) => provider.tools_for(&self.p, &self.session_id, agent).await,
            None => Vec::new(),
        };
        ToolSet::new(self.rt.0.tools.clone(), &agent.tools, own)
    }

    /// The messages of the next model call, built from the path.
    async fn context(&self, system: &str) -> Vec<mosaic_llm::Message> {
        context::build(system, &self.path, &self.p, self.rt.0.entries.as_ref()).await
    }

    /// The agent's system prompt, followed by the owner's pinned memories for it.
    pub(super) async fn system_prompt(&self, agent: &Agent) -> String {
        let pinned = match self.store().pinned_memories(&self.p, &agent.id).await {
            Ok(pinned) => pinned,
            Err(e) => {
                tracing::warn!(session = %self.session_id, "cannot read pinned memory: {e}");
                Vec::new()
            }
        };
        match crate::tools::memory::pinned_section(&pinned, PINNED_BUDGET_CHARS) {
            Some(section) if agent.system_prompt.trim().is_empty() => section,
            Some(section) => format!("{}\n\n{section}", agent.system_prompt.trim_end()),
            None => agent.system_prompt.clone(),
        }
    }

    /// When another model answers than the one that answered last (the route's choice
    /// changed, or a fallback answered), say so with an entry before its answer.
    pub(super) async fn note_model_change(&mut self, answer: &Answer) -> Result<()> {
        if answer.text.is_empty() && answer.thinking.is_empty() && answer.calls.is_empty() {
            return Ok(());
        }
        let previous = self.path.iter().rev().find_map(|e| match &e.body {
            EntryBody::Assistant { model: Some(m), .. } => Some(m.as_str()),
            EntryBody::ModelChange { route } => Some(route.as_str()),
            _ => None,
        });
        if previous.is_some_and(|m| m != answer.model) {
            self.commit(EntryBody::ModelChange {
                route: answer.model.clone(),
            })
            .await?;
        }
        Ok(())
    }

    /// Messages sent as steers join the run now. Whether any did.
    pub(super) async fn deliver_steers(&mut self) -> Result<bool> {
        // Run control says when one waits; the queue is read only then.
        if !self.steers.swap(false, Ordering::SeqCst) {
            return Ok(false);
        }
        let queue = self
            .store()
            .queued_messages(&self.p, &self.session_id)
            .await?;
        let mut any = false;
        for m in queue.iter().filter(|m| m.delivery == Delivery::Steer) {
            match self
                .store()
                .deliver_queued(
                    &self.p,
                    &self.session_id,
                    &m.id,
                    Some((&self.run_id, &self.progress)),
                )
                .await
            {
                Ok(entry) => {
                    any = true;
                    self.path.push(entry.clone());
                    self.emit(SessionEvent::Entry {
                        run_id: Some(self.run_id.clone()),
                        entry,
                    })
                    .await;
                }
                Err(StoreError::NotFound) => {}
                Err(e) => return Err(e),
            }
        }
        Ok(any)
    }
}

/// Characters of pinned memory a run's system prompt carries at most.
const PINNED_BUDGET_CHARS: usize = 4_000;

pub(super) fn limited(reason: RunStop) -> RunEnd {
    RunEnd {
        status: RunStatus::Limited,
        stop_reason: Some(reason),
        error: None,
    }
}
