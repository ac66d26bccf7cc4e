//! Compaction: the older part of a long context summarised into an entry, after the
//! memory flush gave the model a chance to save what should outlive it.

use mosaic_api::{Agent, EntryBody};
use mosaic_llm::{ChatRequest, Message, ToolSpec};
use mosaic_store::RunEnd;

use crate::context;

use super::turn::{add_usage, limited, RunCtx};
use super::Result;

impl RunCtx {
    /// Before compaction drops the older turns from the context, give the model one
    /// chance to save what the user told it with `remember` (when the agent may use
    /// it). The calls and their results are entries of the session, so the user sees
    /// what was kept, marked so that the model's context leaves them out. Returns an
    /// end when the run was interrupted meanwhile.
    pub(super) async fn flush_memory(
        &mut self,
        agent: &Agent,
        transcript: &str,
        max_calls: u32,
        budget: u64,
    ) -> Result<Option<RunEnd>> {
        let tools: Vec<ToolSpec> = self
            .tools
            .offered()
            .into_iter()
            .filter(|t| t.name == FLUSH_TOOL)
            .collect();
        // The flush must leave the summary a call, or the run would end uncompacted.
        if tools.is_empty()
            || self.progress.model_calls + 2 > max_calls
            || self.progress.usage.total() >= budget
        {
            return Ok(None);
        }
        let request = ChatRequest {
            model: String::new(),
            messages: vec![
                Message::system(FLUSH_PROMPT),
                Message::user(transcript.to_string()),
            ],
            tools,
            max_tokens: Some(1024),
            ..ChatRequest::default()
        };
        let models = self.rt.0.models.clone();
        let call = match models.call(&self.p, &agent.route, request).await {
            Ok(c) => c,
            Err(message) => {
                tracing::warn!(session = %self.session_id, "memory flush skipped: {message}");
                return Ok(None);
            }
        };
        self.progress.model_calls += 1;
        let completion = tokio::select! {
            c = mosaic_llm::collect(call.stream) => c,
            _ = self.cancel.cancelled() => return Ok(Some(self.interrupted())),
        };
        let completion = match completion {
            Ok(c) => c,
            Err(e) => {
                tracing::warn!(session = %self.session_id, "memory flush failed: {e}");
                return Ok(None);
            }
        };
        add_usage(&mut self.progress.usage, completion.usage);
        let calls: Vec<_> = completion
            .tool_calls
            .into_iter()
            .filter(|c| c.name == FLUSH_TOOL)
            .map(|c| mosaic_llm::ToolCall {
                id: format!("{}{}", context::FLUSH_CALL_PREFIX, c.id),
                ..c
            })
            .collect();
        for call in &calls {
            self.commit(EntryBody::ToolCall {
                call_id: call.id.clone(),
                name: call.name.clone(),
                arguments: call.arguments.clone(),
            })
            .await?;
            let output = self.run_tool(agent, call).await;
            self.commit(EntryBody::ToolResult {
                call_id: call.id.clone(),
                output: output.output,
                is_error: output.is_error,
            })
            .await?;
        }
        Ok(None)
    }

    /// Summarise the older part of the context into a compaction entry. Returns an end
    /// when a limit stops the run first.
    pub(super) async fn compact(
        &mut self,
        agent: &Agent,
        window: u64,
        max_calls: u32,
        budget: u64,
    ) -> Result<Option<RunEnd>> {
        if self.progress.model_calls >= max_calls {
            return Ok(Some(limited(mosaic_api::StopReason::MaxModelCalls)));
        }
        if self.progress.usage.total() >= budget {
            return Ok(Some(limited(mosaic_api::StopReason::TokenBudget)));
        }
        let (summary, visible) = context::visible(&self.path);
        let Some(cut) = context::compaction_cut(&visible, window / 4) else {
            return Ok(None);
        };
        let through = visible[cut - 1].id.clone();
        let mut text = String::new();
        if let Some(previous) = summary {
            text.push_str("Summary so far:\n");
            text.push_str(previous);
            text.push_str("\n\nWhat happened next:\n");
        }
        let dropped = context::transcript(&visible[..cut]);
        text.push_str(&dropped);
        if let Some(end) = self
            .flush_memory(agent, &dropped, max_calls, budget)
            .await?
        {
            return Ok(Some(end));
        }
        if self.progress.model_calls >= max_calls {
            return Ok(Some(limited(mosaic_api::StopReason::MaxModelCalls)));
        }
        let request = ChatRequest {
            model: String::new(),
            messages: vec![
                Message::system(
                    "Summarise the conversation below for the assistant that will continue it. \
                     Keep every fact, decision, name, number, file, open question and promise; \
                     drop small talk. Write plain prose, at most a few paragraphs.",
                ),
                Message::user(text),
            ],
            max_tokens: Some((window / 4).clamp(256, 4096) as u32),
            ..ChatRequest::default()
        };
        let models = self.rt.0.models.clone();
        let call = match models.call(&self.p, &agent.route, request).await {
            Ok(c) => c,
            Err(message) => return Ok(Some(Self::failed(format!("compaction: {message}")))),
        };
        self.progress.model_calls += 1;
        let completion = tokio::select! {
            c = mosaic_llm::collect(call.stream) => c,
            _ = self.cancel.cancelled() => return Ok(Some(self.interrupted())),
        };
        let completion = match completion {
            Ok(c) => c,
            Err(e) => return Ok(Some(Self::failed(format!("compaction: {e}")))),
        };
        add_usage(&mut self.progress.usage, completion.usage);
        if completion.text.trim().is_empty() {
            return Ok(Some(Self::failed(
                "compaction: the model returned an empty summary".into(),
            )));
        }
        self.commit(EntryBody::Compaction {
            summary: completion.text.trim().to_string(),
            through_entry_id: through,
        })
        .await?;
        Ok(None)
    }
}

/// The tool the memory flush before a compaction may call.
const FLUSH_TOOL: &str = "remember";

const FLUSH_PROMPT: &str = "The conversation below is about to be summarised, and its \
    details will leave your context. Save with the remember tool anything in it that should \
    outlive this conversation: facts the user told you about themselves or their work, \
    preferences, standing instructions, decisions. One short self-contained memory each; \
    skip small talk and anything already saved or pinned. If nothing needs saving, answer \
    'nothing to save' without calling a tool.";
