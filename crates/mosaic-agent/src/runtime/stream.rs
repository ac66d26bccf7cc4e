//! Streaming a model call: deltas published as they come, the partial answer
//! checkpointed so a crash keeps it.

use std::time::Instant;

use futures_util::StreamExt;
use mosaic_api::SessionEvent;
use mosaic_llm::{ChatRequest, StopReason, StreamEvent, Usage};
use mosaic_store::PartialAnswer;

use super::turn::{add_usage, Answer, RunCtx};
use super::ModelError;

impl RunCtx {
    /// Stream one model call, publishing deltas and checkpointing the partial answer.
    /// `Err` when no model could be reached.
    pub(super) async fn call_model(
        &mut self,
        route: &str,
        request: ChatRequest,
    ) -> std::result::Result<Answer, ModelError> {
        let models = self.rt.0.models.clone();
        let call = tokio::select! {
            call = models.call(&self.p, route, request) => call?,
            _ = self.cancel.cancelled() => {
                return Ok(Answer {
                    text: String::new(),
                    thinking: String::new(),
                    calls: Vec::new(),
                    reasoning: Vec::new(),
                    stop: Some(StopReason::Aborted),
                    model: route.to_string(),
                    error: None,
                })
            }
        };
        self.progress.model_calls += 1;
        let model = format!("{}/{}", call.provider, call.model);
        self.emit(SessionEvent::ModelCall {
            run_id: self.run_id.clone(),
            provider: call.provider.clone(),
            model: call.model.clone(),
            fallbacks: call.fallbacks.iter().map(ToString::to_string).collect(),
        })
        .await;
        let parent = self.path.last().map(|e| e.id.clone());
        let mut answer = Answer {
            text: String::new(),
            thinking: String::new(),
            calls: Vec::new(),
            reasoning: Vec::new(),
            stop: None,
            model: model.clone(),
            error: None,
        };
        let mut indexed: Vec<(usize, mosaic_llm::ToolCall)> = Vec::new();
        let mut usage = Usage::default();
        let mut stream = call.stream;
        let every = self.rt.0.config.checkpoint_every;
        let mut saved_at = Instant::now();
        let mut saved_len = 0usize;
        loop {
            // Text not yet saved is saved when due even if the model falls silent.
            let unsaved = answer.text.len() + answer.thinking.len() != saved_len;
            let due = tokio::time::Instant::from_std(saved_at + every);
            let next = tokio::select! {
                next = stream.next() => Some(next),
                _ = self.cancel.cancelled() => break,
                _ = tokio::time::sleep_until(due), if unsaved => None,
            };
            let event = match next {
                None => None,
                Some(None) => break,
                Some(Some(Ok(e))) => Some(e),
                Some(Some(Err(error))) => {
                    answer.error = Some(ModelError::Provider {
                        provider: call.provider.clone(),
                        model: call.model.clone(),
                        error,
                    });
                    break;
                }
            };
            if let Some(event) = &event {
                self.fold(event, &mut answer, &mut indexed, &mut usage)
                    .await;
            }
            let streamed = answer.text.len() + answer.thinking.len();
            if streamed != saved_len && saved_at.elapsed() >= every {
                saved_len = streamed;
                saved_at = Instant::now();
                let partial = PartialAnswer {
                    text: answer.text.clone(),
                    thinking: answer.thinking.clone(),
                    parent_id: parent.clone(),
                    model: Some(model.clone()),
                };
                if let Err(e) = self
                    .store()
                    .checkpoint_run(&self.p, &self.run_id, &partial)
                    .await
                {
                    tracing::warn!(run = %self.run_id, "partial answer not saved: {e}");
                }
            }
        }
        add_usage(&mut self.progress.usage, usage);
        if answer.stop.is_none() && answer.error.is_none() && !self.cancel.is_cancelled() {
            answer.error = Some(ModelError::Unfinished {
                provider: call.provider.clone(),
                model: call.model.clone(),
            });
        }
        answer.calls = indexed.into_iter().map(|(_, c)| c).collect();
        Ok(answer)
    }

    /// Fold one event of the stream into the answer, publishing deltas.
    pub(super) async fn fold(
        &self,
        event: &StreamEvent,
        answer: &mut Answer,
        indexed: &mut Vec<(usize, mosaic_llm::ToolCall)>,
        usage: &mut Usage,
    ) {
        match event {
            StreamEvent::TextDelta { text } => {
                answer.text.push_str(text);
                self.emit(SessionEvent::TextDelta {
                    run_id: self.run_id.clone(),
                    text: text.clone(),
                })
                .await;
            }
            StreamEvent::ThinkingDelta { text } => {
                answer.thinking.push_str(text);
                self.emit(SessionEvent::ThinkingDelta {
                    run_id: self.run_id.clone(),
                    text: text.clone(),
                })
                .await;
            }
            StreamEvent::ToolCallStart { index, id, name } => indexed.push((
                *index,
                mosaic_llm::ToolCall {
                    id: id.clone(),
                    name: name.clone(),
                    arguments: String::new(),
                },
            )),
            StreamEvent::ToolCallDelta { index, arguments } => {
                if let Some((_, c)) = indexed.iter_mut().rev().find(|(i, _)| i == index) {
                    c.arguments.push_str(arguments);
                }
            }
            StreamEvent::ToolCallEnd { .. } => {}
            StreamEvent::Reasoning { reasoning } => answer.reasoning.push(reasoning.clone()),
            StreamEvent::Usage { usage: u } => usage.merge(*u),
            StreamEvent::Done { stop_reason } => answer.stop = Some(*stop_reason),
        }
    }
}
