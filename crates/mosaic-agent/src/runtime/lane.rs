//! Lanes: one run at a time per session. A lane holds the session's active run and the
//! path the last run left; every operation that starts a run, or changes what a run
//! reads, holds it. A run hears interrupts, approvals and steers through run control
//! (`crate::control`), which it joins when it starts and leaves when it ends.

use std::collections::HashMap;
use std::panic::AssertUnwindSafe;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex as StdMutex};

use futures_util::{FutureExt, StreamExt};
use mosaic_api::{Entry, Run, RunStatus, SessionEvent};
use mosaic_store::{Principal, RunEnd, RunProgress, StoreError};
use tokio::sync::{oneshot, Mutex};
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use super::turn::RunCtx;
use super::{lock, Result, Runtime};
use crate::control::{ControlError, Signal, Signals};
use crate::tools::ToolSet;

/// What a run waiting for an approval is told, by the call's id.
pub(super) type Answers = Arc<StdMutex<HashMap<String, oneshot::Sender<(bool, Option<String>)>>>>;

/// The run active in a session.
pub(super) struct Active {
    /// Stops the run; this process's own stop uses it directly, everything else goes
    /// through run control.
    pub(super) cancel: CancellationToken,
}

#[derive(Default)]
pub(super) struct Lane {
    pub(super) active: Option<Active>,
    /// The session's path as the last run left it, so the next run need not read it
    /// again; used only while its last entry is still the session's active leaf.
    pub(super) path: Vec<Entry>,
}

impl Lane {
    /// Keep the cached path current with an entry appended outside a run.
    pub(super) fn appended(&mut self, entry: &Entry) {
        if entry.parent_id.is_some()
            && entry.parent_id.as_deref() == self.path.last().map(|e| e.id.as_str())
        {
            self.path.push(entry.clone());
        } else {
            self.path.clear();
        }
    }
}

impl Runtime {
    pub(super) fn lane(&self, session_id: &str) -> Arc<Mutex<Lane>> {
        lock(&self.0.lanes)
            .entry(session_id.to_string())
            .or_default()
            .clone()
    }

    /// Start a run the store has opened. `signals` are the run's from run control,
    /// joined while the lane is held, so that an interrupt right after reaches it.
    pub(super) fn spawn_run(
        &self,
        p: &Principal,
        session_id: &str,
        run: Run,
        signals: std::result::Result<Signals, ControlError>,
        lane: &mut Lane,
    ) {
        let cancel = CancellationToken::new();
        lane.active = Some(Active {
            cancel: cancel.clone(),
        });
        let this = self.clone();
        let p = p.clone();
        let session_id = session_id.to_string();
        let path = std::mem::take(&mut lane.path);
        self.0.running.fetch_add(1, Ordering::SeqCst);
        // The run's span continues the trace of the request that started it.
        let span = tracing::info_span!(
            "agent.run",
            otel.name = "invoke_agent",
            gen_ai.operation.name = "invoke_agent",
            mosaic.run_id = %run.id,
            mosaic.session_id = %session_id,
            mosaic.run.status = tracing::field::Empty,
            mosaic.run.stop_reason = tracing::field::Empty,
        );
        let run_span = span.clone();
        let handle = tokio::spawn(
            async move {
                let answers: Answers = Arc::default();
                let steers = Arc::new(AtomicBool::new(false));
                let mut ctx = RunCtx {
                    rt: this.clone(),
                    p: p.clone(),
                    session_id: session_id.clone(),
                    run_id: run.id.clone(),
                    cancel: cancel.clone(),
                    answers: answers.clone(),
                    steers: steers.clone(),
                    progress: RunProgress::default(),
                    // Replaced by the agent's as soon as the run has read it.
                    tools: ToolSet::new(this.0.tools.clone(), &[], Vec::new()),
                    path,
                };
                let end = match signals {
                    Ok(signals) => {
                        let heard = hear(signals, cancel, answers, steers);
                        let outcome = tokio::select! {
                            // Signals first, so the run acts on what it was told.
                            biased;
                            never = heard => match never {},
                            outcome = AssertUnwindSafe(ctx.run()).catch_unwind() => outcome,
                        };
                        match outcome {
                            Ok(end) => end,
                            Err(_) => RunEnd {
                                status: RunStatus::Failed,
                                stop_reason: Some(mosaic_api::StopReason::Error),
                                error: Some("the run failed inside the gateway".into()),
                            },
                        }
                    }
                    Err(e) => RunCtx::failed(format!("the run could not join run control: {e}")),
                };
                run_span.record("mosaic.run.status", end.status.as_str());
                if let Some(reason) = &end.stop_reason {
                    run_span.record("mosaic.run.stop_reason", reason.as_str());
                }
                ctx.finish(end).await;
                this.0.running.fetch_sub(1, Ordering::SeqCst);
                this.after_run(&p, &session_id, &ctx.run_id, ctx.path).await;
            }
            .instrument(span),
        );
        let mut tasks = lock(&self.0.tasks);
        tasks.retain(|t| !t.is_finished());
        tasks.push(handle);
    }

    /// A run ended: start the next one if messages wait, else free the lane.
    pub(super) async fn after_run(
        &self,
        p: &Principal,
        session_id: &str,
        run_id: &str,
        path: Vec<Entry>,
    ) {
        let lane = self.lane(session_id);
        let mut lane = lane.lock().await;
        // (Also when the session was deleted meanwhile, and its lane is a new one.)
        self.0.control.ended(session_id, run_id).await;
        lane.active = None;
        lane.path = path;
        if self.0.shutting_down.load(Ordering::SeqCst) {
            return;
        }
        if let Err(e) = self.start_from_queue(p, session_id, &mut lane).await {
            tracing::warn!(session = %session_id, "queued messages not started: {e}");
        }
    }

    /// Start a run with every waiting message, when there are any.
    pub(super) async fn start_from_queue(
        &self,
        p: &Principal,
        session_id: &str,
        lane: &mut Lane,
    ) -> Result<()> {
        let queue = self.0.store.queued_messages(p, session_id).await?;
        if queue.is_empty() {
            return Ok(());
        }
        let run = self.0.store.start_run(p, session_id).await?;
        for m in &queue {
            match self
                .0
                .store
                .deliver_queued(p, session_id, &m.id, None)
                .await
            {
                Ok(entry) => {
                    lane.appended(&entry);
                    self.publish(
                        p,
                        session_id,
                        SessionEvent::Entry {
                            run_id: Some(run.id.clone()),
                            entry,
                        },
                    )
                    .await
                }
                Err(StoreError::NotFound) => {}
                Err(e) => return Err(e),
            }
        }
        let signals = self
            .0
            .control
            .started(session_id, &run.id, p.local_user().unwrap_or_default())
            .await;
        self.spawn_run(p, session_id, run, signals, lane);
        Ok(())
    }
}

/// Act on a run's signals for as long as it runs (the run's end drops this).
async fn hear(
    mut signals: Signals,
    cancel: CancellationToken,
    answers: Answers,
    steers: Arc<AtomicBool>,
) -> std::convert::Infallible {
    while let Some(signal) = signals.next().await {
        match signal {
            Signal::Interrupt => cancel.cancel(),
            Signal::Approval {
                call_id,
                approved,
                note,
            } => {
                if let Some(waiting) = lock(&answers).remove(&call_id) {
                    // The run may have stopped waiting meanwhile.
                    let _ = waiting.send((approved, note));
                }
            }
            Signal::Steer => steers.store(true, Ordering::SeqCst),
        }
    }
    // Run control let go of the run (it can no longer be told anything): run on.
    std::future::pending().await
}
