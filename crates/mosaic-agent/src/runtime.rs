//! Runs: one at a time per session (its lane). A message posted while a run is active
//! is kept in the store's queue: a steer reaches the run at its next tool boundary, a
//! follow-up starts the next run. Entries are committed at message and tool boundaries;
//! the answer streaming in between is checkpointed, so a crash keeps it too.

use std::collections::HashMap;
use std::panic::AssertUnwindSafe;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex as StdMutex};
use std::time::{Duration, Instant};

use futures_util::{FutureExt, StreamExt};
use mosaic_api::{
    Agent, Delivery, Entry, EntryBody, PendingApproval, PostMessageRequest, PostMessageResponse,
    Run, RunStatus, RunUsage, SessionEvent, SessionState,
};
use mosaic_llm::{
    BoxFuture, ChatRequest, EventStream, Message, StopReason, StreamEvent, ToolSpec, Usage,
};
use mosaic_store::{Parent, PartialAnswer, Principal, RunEnd, RunProgress, Store, StoreError};
use tokio::sync::{oneshot, Mutex};
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use crate::bus::{Bus, BusLimits, SessionBus};
use crate::context;
use crate::tools::{Decision, Registry, ToolContext, ToolOutput};

/// A model call under way, and who answers it.
pub struct ModelStream {
    pub stream: EventStream,
    pub provider: String,
    pub model: String,
    /// Models tried first that failed (`provider/model: why`).
    pub fallbacks: Vec<String>,
}

/// How runs reach models: the gateway resolves a route or `provider/model` for the
/// user, meters tokens and falls back along the routing matrix.
pub trait Models: Send + Sync + 'static {
    fn call<'a>(
        &'a self,
        principal: &'a Principal,
        route: &'a str,
        request: ChatRequest,
    ) -> BoxFuture<'a, std::result::Result<ModelStream, String>>;
}

/// Defaults of run limits, for agents that set none.
#[derive(Debug, Clone)]
pub struct RuntimeConfig {
    pub max_model_calls: u32,
    pub token_budget: u64,
    pub context_window: u32,
    /// How often the answer streaming now is saved.
    pub checkpoint_every: Duration,
    /// Most output tokens asked of a model per call.
    pub max_output_tokens: u32,
    pub bus: BusLimits,
}

impl Default for RuntimeConfig {
    fn default() -> Self {
        RuntimeConfig {
            max_model_calls: 50,
            token_budget: 2_000_000,
            context_window: 128_000,
            checkpoint_every: Duration::from_millis(250),
            max_output_tokens: 8192,
            bus: BusLimits::default(),
        }
    }
}

/// Errors of runtime operations, in store terms so callers map them once.
pub type Result<T> = std::result::Result<T, StoreError>;

struct Approval {
    info: PendingApproval,
    answer: oneshot::Sender<(bool, Option<String>)>,
}

/// The run active in a session.
struct Active {
    run_id: String,
    /// The user the run acts for.
    owner: String,
    cancel: CancellationToken,
    approvals: Arc<StdMutex<Vec<Approval>>>,
}

#[derive(Default)]
struct Lane {
    active: Option<Active>,
    /// The session's path as the last run left it, so the next run need not read it
    /// again; used only while its last entry is still the session's active leaf.
    path: Vec<Entry>,
}

impl Lane {
    /// Keep the cached path current with an entry appended outside a run.
    fn appended(&mut self, entry: &Entry) {
        if entry.parent_id.is_some()
            && entry.parent_id.as_deref() == self.path.last().map(|e| e.id.as_str())
        {
            self.path.push(entry.clone());
        } else {
            self.path.clear();
        }
    }
}

struct Inner {
    store: Store,
    models: Arc<dyn Models>,
    tools: Registry,
    bus: Bus,
    config: RuntimeConfig,
    lanes: StdMutex<HashMap<String, Arc<Mutex<Lane>>>>,
    shutting_down: AtomicBool,
    running: AtomicUsize,
    /// Ended when the gateway stops: live streams close.
    pub stopping: CancellationToken,
    /// Run tasks, so a stop can wait for them.
    tasks: StdMutex<Vec<tokio::task::JoinHandle<()>>>,
}

/// The agent runtime of a gateway.
#[derive(Clone)]
pub struct Runtime(Arc<Inner>);

fn lock<T>(m: &StdMutex<T>) -> std::sync::MutexGuard<'_, T> {
    match m.lock() {
        Ok(g) => g,
        Err(poisoned) => poisoned.into_inner(),
    }
}

impl Runtime {
    pub fn new(
        store: Store,
        models: Arc<dyn Models>,
        tools: Registry,
        config: RuntimeConfig,
    ) -> Runtime {
        let bus = Bus::new(store.clone(), config.bus);
        Runtime(Arc::new(Inner {
            store,
            models,
            tools,
            bus,
            config,
            lanes: StdMutex::new(HashMap::new()),
            shutting_down: AtomicBool::new(false),
            running: AtomicUsize::new(0),
            stopping: CancellationToken::new(),
            tasks: StdMutex::new(Vec::new()),
        }))
    }

    pub fn tools(&self) -> &Registry {
        &self.0.tools
    }

    /// Cancelled when the gateway stops; live event streams end with it.
    pub fn stopping(&self) -> CancellationToken {
        self.0.stopping.clone()
    }

    fn lane(&self, session_id: &str) -> Arc<Mutex<Lane>> {
        lock(&self.0.lanes)
            .entry(session_id.to_string())
            .or_default()
            .clone()
    }

    /// The bus of a session the principal may see.
    pub async fn bus(&self, p: &Principal, session_id: &str) -> Result<Arc<SessionBus>> {
        self.0.store.get_session(p, session_id).await?;
        self.0.bus.session(p, session_id).await
    }

    async fn publish(&self, p: &Principal, session_id: &str, event: SessionEvent) {
        match self.0.bus.session(p, session_id).await {
            Ok(bus) => {
                bus.publish(event).await;
            }
            Err(e) => tracing::warn!(session = %session_id, "event not published: {e}"),
        }
    }

    /// Close runs a previous process left running (keeping what had streamed), then
    /// start the runs that messages queued before the stop are waiting for.
    pub async fn recover(&self) -> Result<()> {
        for orphan in self.0.store.orphan_runs().await? {
            let (run, entry) = self
                .0
                .store
                .recover_run(&orphan.principal, &orphan.run_id)
                .await?;
            tracing::info!(
                session = %orphan.session_id,
                run = %run.id,
                kept_text = entry.is_some(),
                "closed a run interrupted by the gateway stopping"
            );
        }
        for (p, session_id) in self.0.store.sessions_with_queue().await? {
            let lane = self.lane(&session_id);
            let mut lane = lane.lock().await;
            if lane.active.is_none() {
                if let Err(e) = self.start_from_queue(&p, &session_id, &mut lane).await {
                    tracing::warn!(session = %session_id, "queued messages not started: {e}");
                }
            }
        }
        Ok(())
    }

    /// Post a user message: it starts a run, or waits for the active one.
    pub async fn post_message(
        &self,
        p: &Principal,
        session_id: &str,
        req: PostMessageRequest,
    ) -> Result<PostMessageResponse> {
        mosaic_store::check_message(&req.text)?;
        // The store checks the session is the principal's in each branch below.
        let lane = self.lane(session_id);
        let mut lane = lane.lock().await;
        if lane.active.is_some() {
            if req.parent_id.is_some() || req.new_root {
                return Err(StoreError::Conflict(
                    "a run is active: wait for it, or interrupt it, before editing".into(),
                ));
            }
            let message = self
                .0
                .store
                .enqueue_message(p, session_id, req.delivery, &req.text)
                .await?;
            self.publish(
                p,
                session_id,
                SessionEvent::Queued {
                    message: message.clone(),
                },
            )
            .await;
            return Ok(PostMessageResponse::Queued { message });
        }
        let parent = match (&req.parent_id, req.new_root) {
            (Some(_), true) => {
                return Err(StoreError::Invalid(
                    "give parent_id or new_root, not both".into(),
                ))
            }
            (Some(id), false) => Parent::Entry(id),
            (None, true) => Parent::Root,
            (None, false) => Parent::ActiveLeaf,
        };
        let (run, entry) = self
            .0
            .store
            .start_run_with(
                p,
                session_id,
                parent,
                EntryBody::User {
                    text: req.text.clone(),
                },
            )
            .await?;
        lane.appended(&entry);
        self.publish(
            p,
            session_id,
            SessionEvent::Entry {
                run_id: Some(run.id.clone()),
                entry: entry.clone(),
            },
        )
        .await;
        let run_id = run.id.clone();
        self.spawn_run(p, session_id, run, &mut lane);
        Ok(PostMessageResponse::Started { entry, run_id })
    }

    /// Start a run without a new message (a retry from an earlier entry, or a
    /// continuation).
    pub async fn start_run(
        &self,
        p: &Principal,
        session_id: &str,
        from_entry_id: Option<&str>,
    ) -> Result<String> {
        self.0.store.get_session(p, session_id).await?;
        let lane = self.lane(session_id);
        let mut lane = lane.lock().await;
        if lane.active.is_some() {
            return Err(StoreError::Conflict(
                "a run is already active in this session".into(),
            ));
        }
        if let Some(id) = from_entry_id {
            lane.path.clear();
            self.0.store.set_active_leaf(p, session_id, id).await?;
            self.publish(
                p,
                session_id,
                SessionEvent::LeafChanged {
                    leaf_id: id.to_string(),
                },
            )
            .await;
        }
        let path = self.0.store.session_path(p, session_id, None).await?;
        if path.is_empty() {
            return Err(StoreError::Conflict(
                "the session is empty: post a message to start".into(),
            ));
        }
        let run = self.0.store.start_run(p, session_id).await?;
        let run_id = run.id.clone();
        self.spawn_run(p, session_id, run, &mut lane);
        Ok(run_id)
    }

    /// Stop the active run; what streamed is kept. `None` when no run was active.
    pub async fn interrupt(&self, p: &Principal, session_id: &str) -> Result<Option<String>> {
        self.0.store.get_session(p, session_id).await?;
        let lane = self.lane(session_id);
        let lane = lane.lock().await;
        Ok(lane.active.as_ref().map(|a| {
            a.cancel.cancel();
            a.run_id.clone()
        }))
    }

    /// Answer an approval request. `NotFound` when none waits under that call id.
    pub async fn approve(
        &self,
        p: &Principal,
        session_id: &str,
        call_id: &str,
        approve: bool,
        note: Option<String>,
    ) -> Result<()> {
        self.0.store.get_session(p, session_id).await?;
        let lane = self.lane(session_id);
        let lane = lane.lock().await;
        let waiting = lane.active.as_ref().and_then(|a| {
            let mut approvals = lock(&a.approvals);
            let at = approvals.iter().position(|x| x.info.call_id == call_id)?;
            Some(approvals.remove(at))
        });
        let approval = waiting.ok_or(StoreError::NotFound)?;
        // The run may have stopped meanwhile; then there is nobody left to tell.
        let _ = approval.answer.send((approve, note));
        Ok(())
    }

    /// What runs and waits in a session, and its latest event number.
    pub async fn state(&self, p: &Principal, session_id: &str) -> Result<SessionState> {
        let bus = self.bus(p, session_id).await?;
        let lane = self.lane(session_id);
        let (run_id, approvals) = {
            let lane = lane.lock().await;
            match &lane.active {
                Some(a) => (
                    Some(a.run_id.clone()),
                    lock(&a.approvals).iter().map(|x| x.info.clone()).collect(),
                ),
                None => (None, Vec::new()),
            }
        };
        let run = match run_id {
            Some(id) => Some(self.0.store.get_run(p, &id).await?),
            None => None,
        };
        Ok(SessionState {
            run,
            queue: self.0.store.queued_messages(p, session_id).await?,
            approvals,
            last_event_id: bus.last_event_id().await,
        })
    }

    /// Tell subscribers the active leaf moved.
    pub async fn leaf_changed(&self, p: &Principal, session_id: &str, leaf_id: &str) {
        self.publish(
            p,
            session_id,
            SessionEvent::LeafChanged {
                leaf_id: leaf_id.to_string(),
            },
        )
        .await;
    }

    /// Whether a run is active in the session.
    pub async fn is_running(&self, session_id: &str) -> bool {
        let lane = lock(&self.0.lanes).get(session_id).cloned();
        match lane {
            Some(l) => l.lock().await.active.is_some(),
            None => false,
        }
    }

    /// Stop the run of a session about to be deleted.
    pub async fn forget_session(&self, session_id: &str) {
        let lane = lock(&self.0.lanes).remove(session_id);
        if let Some(lane) = lane {
            if let Some(a) = &lane.lock().await.active {
                a.cancel.cancel();
            }
        }
        self.0.bus.forget(session_id);
    }

    /// Interrupt every run acting for this user (disabled or deleted): what streamed
    /// is kept, and the store starts no new run for them. Returns at once; the runs
    /// are told from a task, since lanes are locked asynchronously.
    pub fn interrupt_user(&self, user_id: &str) {
        let lanes: Vec<Arc<Mutex<Lane>>> = lock(&self.0.lanes).values().cloned().collect();
        let user_id = user_id.to_string();
        tokio::spawn(async move {
            for lane in lanes {
                let lane = lane.lock().await;
                if let Some(a) = lane.active.as_ref().filter(|a| a.owner == user_id) {
                    tracing::info!(run = %a.run_id, "interrupting the run of a revoked user");
                    a.cancel.cancel();
                }
            }
        });
    }

    /// Runs running now, over all sessions.
    pub fn active_runs(&self) -> usize {
        self.0.running.load(Ordering::SeqCst)
    }

    /// Live subscribers over all sessions.
    pub fn subscriber_count(&self) -> usize {
        self.0.bus.subscriber_count()
    }

    /// Forget idle lanes and buses (call now and then).
    pub fn sweep(&self, idle: Duration) {
        let busy: Vec<String> = lock(&self.0.lanes)
            .iter()
            .filter(|(_, l)| l.try_lock().map(|l| l.active.is_some()).unwrap_or(true))
            .map(|(id, _)| id.clone())
            .collect();
        self.0.bus.sweep(idle, |id| busy.iter().any(|b| b == id));
        // A lane someone holds (about to post into it) stays: dropping it would let a
        // second lane, and a second run, start beside it.
        lock(&self.0.lanes).retain(|_, l| {
            Arc::strong_count(l) > 1 || l.try_lock().map(|l| l.active.is_some()).unwrap_or(true)
        });
    }

    /// The gateway is stopping: interrupt every run (marked `gateway_stopped`), wait for
    /// them to record it (at most `grace`), and end live streams.
    pub async fn shutdown(&self, grace: Duration) {
        self.0.shutting_down.store(true, Ordering::SeqCst);
        let lanes: Vec<Arc<Mutex<Lane>>> = lock(&self.0.lanes).values().cloned().collect();
        for lane in lanes {
            if let Some(a) = &lane.lock().await.active {
                a.cancel.cancel();
            }
        }
        let tasks: Vec<_> = lock(&self.0.tasks).drain(..).collect();
        let _ = tokio::time::timeout(grace, futures_util::future::join_all(tasks)).await;
        self.0.stopping.cancel();
    }

    fn spawn_run(&self, p: &Principal, session_id: &str, run: Run, lane: &mut Lane) {
        let cancel = CancellationToken::new();
        let approvals = Arc::new(StdMutex::new(Vec::new()));
        lane.active = Some(Active {
            run_id: run.id.clone(),
            owner: p.local_user().unwrap_or_default().to_string(),
            cancel: cancel.clone(),
            approvals: approvals.clone(),
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
                let mut ctx = RunCtx {
                    rt: this.clone(),
                    p: p.clone(),
                    session_id: session_id.clone(),
                    run_id: run.id.clone(),
                    cancel,
                    approvals,
                    progress: RunProgress::default(),
                    path,
                };
                let outcome = AssertUnwindSafe(ctx.run()).catch_unwind().await;
                let end = match outcome {
                    Ok(end) => end,
                    Err(_) => RunEnd {
                        status: RunStatus::Failed,
                        stop_reason: Some("error".into()),
                        error: Some("the run failed inside the gateway".into()),
                    },
                };
                run_span.record("mosaic.run.status", end.status.as_str());
                if let Some(reason) = &end.stop_reason {
                    run_span.record("mosaic.run.stop_reason", reason.as_str());
                }
                ctx.finish(end).await;
                this.0.running.fetch_sub(1, Ordering::SeqCst);
                this.after_run(&p, &session_id, ctx.path).await;
            }
            .instrument(span),
        );
        let mut tasks = lock(&self.0.tasks);
        tasks.retain(|t| !t.is_finished());
        tasks.push(handle);
    }

    /// A run ended: start the next one if messages wait, else free the lane.
    async fn after_run(&self, p: &Principal, session_id: &str, path: Vec<Entry>) {
        let lane = self.lane(session_id);
        let mut lane = lane.lock().await;
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
    async fn start_from_queue(
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
        self.spawn_run(p, session_id, run, lane);
        Ok(())
    }
}

/// One run's working state.
struct RunCtx {
    rt: Runtime,
    p: Principal,
    session_id: String,
    run_id: String,
    cancel: CancellationToken,
    approvals: Arc<StdMutex<Vec<Approval>>>,
    progress: RunProgress,
    /// The session's path from its root to the active leaf. Only this run appends to
    /// the session while it runs (edits and branch switches wait for it), so the path is
    /// read once and kept up to date here.
    path: Vec<Entry>,
}

/// What one model call produced.
struct Answer {
    text: String,
    thinking: String,
    calls: Vec<mosaic_llm::ToolCall>,
    stop: Option<StopReason>,
    model: String,
    error: Option<String>,
}

fn add_usage(total: &mut RunUsage, u: Usage) {
    total.input_tokens += u.input_tokens;
    total.output_tokens += u.output_tokens;
    total.cached_tokens += u.cached_tokens;
}

fn stop_str(s: StopReason) -> &'static str {
    match s {
        StopReason::Stop => "stop",
        StopReason::Length => "length",
        StopReason::ToolUse => "tool_use",
        StopReason::Error => "error",
        StopReason::Aborted => "aborted",
    }
}

impl RunCtx {
    fn store(&self) -> &Store {
        &self.rt.0.store
    }

    async fn emit(&self, event: SessionEvent) {
        self.rt.publish(&self.p, &self.session_id, event).await;
    }

    async fn commit(&mut self, body: EntryBody) -> Result<Entry> {
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

    fn interrupted(&self) -> RunEnd {
        let reason = if self.rt.0.shutting_down.load(Ordering::SeqCst) {
            "gateway_stopped"
        } else {
            "interrupted"
        };
        RunEnd {
            status: RunStatus::Interrupted,
            stop_reason: Some(reason.into()),
            error: None,
        }
    }

    fn failed(message: String) -> RunEnd {
        RunEnd {
            status: RunStatus::Failed,
            stop_reason: Some("error".into()),
            error: Some(message),
        }
    }

    async fn finish(&mut self, end: RunEnd) {
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
    async fn agent(&self) -> Result<(Agent, Option<String>)> {
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

    async fn run(&mut self) -> RunEnd {
        match self.turns().await {
            Ok(end) => end,
            Err(e) => Self::failed(e.to_string()),
        }
    }

    async fn turns(&mut self) -> Result<RunEnd> {
        let (agent, leaf) = self.agent().await?;
        let config = self.rt.0.config.clone();
        let max_calls = agent
            .limits
            .max_model_calls
            .unwrap_or(config.max_model_calls);
        let budget = agent.limits.token_budget.unwrap_or(config.token_budget);
        let window = u64::from(agent.limits.context_window.unwrap_or(config.context_window));
        let tools = self.rt.0.tools.offered(&agent.tools);
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
                return Ok(limited("max_model_calls"));
            }
            if self.progress.usage.total() >= budget {
                return Ok(limited("token_budget"));
            }
            // Pinned memory is read for every call: a tool may just have changed it.
            let system = self.system_prompt(&agent).await;
            let mut messages = context::messages(&system, &self.path);
            let reserve = (window / 4).min(16_384);
            let mut max_tokens = config.max_output_tokens;
            if context::estimate_tokens(&messages, &tools) > window.saturating_sub(reserve) {
                if let Some(end) = self.compact(&agent, window, max_calls, budget).await? {
                    return Ok(end);
                }
                messages = context::messages(&system, &self.path);
            }
            // Never ask for more than the window leaves.
            let room = window.saturating_sub(context::estimate_tokens(&messages, &tools));
            max_tokens = max_tokens.min(room.max(256) as u32);
            let request = ChatRequest {
                model: String::new(),
                messages,
                tools: tools.clone(),
                max_tokens: Some(max_tokens),
                ..ChatRequest::default()
            };
            let answer = self.call_model(&agent.route, request).await;
            let answer = match answer {
                Ok(a) => a,
                Err(message) => return Ok(Self::failed(message)),
            };
            self.note_model_change(&answer).await?;
            let interrupted = self.cancel.is_cancelled();
            let stop = match (&answer.error, interrupted) {
                (Some(_), _) => "error".to_string(),
                (None, true) => "interrupted".to_string(),
                (None, false) => answer.stop.map(stop_str).unwrap_or("error").to_string(),
            };
            // Tool calls cut off mid-stream are not run.
            let calls = if answer.error.is_none() && !interrupted {
                answer.calls.clone()
            } else {
                Vec::new()
            };
            // An answer cut off before any text leaves no entry (the run records why).
            let cut_off = answer.error.is_some() || interrupted;
            if !answer.text.is_empty()
                || !answer.thinking.is_empty()
                || (calls.is_empty() && !cut_off)
            {
                self.commit(EntryBody::Assistant {
                    text: answer.text.clone(),
                    thinking: answer.thinking.clone(),
                    model: Some(answer.model.clone()),
                    stop_reason: Some(stop),
                })
                .await?;
            }
            if let Some(message) = answer.error {
                return Ok(Self::failed(message));
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
                let reason = answer.stop.map(stop_str).unwrap_or("stop");
                return Ok(RunEnd {
                    status: RunStatus::Completed,
                    stop_reason: Some(reason.into()),
                    error: None,
                });
            }
        }
    }

    /// The agent's system prompt, followed by the owner's pinned memories for it.
    async fn system_prompt(&self, agent: &Agent) -> String {
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

    /// Before compaction drops the older turns from the context, give the model one
    /// chance to save what the user told it with `remember` (when the agent may use
    /// it). The calls and their results are entries of the session, so the user sees
    /// what was kept, marked so that the model's context leaves them out. Returns an
    /// end when the run was interrupted meanwhile.
    async fn flush_memory(
        &mut self,
        agent: &Agent,
        transcript: &str,
        max_calls: u32,
        budget: u64,
    ) -> Result<Option<RunEnd>> {
        let tools: Vec<ToolSpec> = self
            .rt
            .0
            .tools
            .offered(&agent.tools)
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

    /// When another model answers than the one that answered last (the route's choice
    /// changed, or a fallback answered), say so with an entry before its answer.
    async fn note_model_change(&mut self, answer: &Answer) -> Result<()> {
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
    async fn deliver_steers(&mut self) -> Result<bool> {
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

    /// Stream one model call, publishing deltas and checkpointing the partial answer.
    /// `Err` when no model could be reached.
    async fn call_model(
        &mut self,
        route: &str,
        request: ChatRequest,
    ) -> std::result::Result<Answer, String> {
        let models = self.rt.0.models.clone();
        let call = tokio::select! {
            call = models.call(&self.p, route, request) => call?,
            _ = self.cancel.cancelled() => {
                return Ok(Answer {
                    text: String::new(),
                    thinking: String::new(),
                    calls: Vec::new(),
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
            fallbacks: call.fallbacks.clone(),
        })
        .await;
        let parent = self.path.last().map(|e| e.id.clone());
        let mut answer = Answer {
            text: String::new(),
            thinking: String::new(),
            calls: Vec::new(),
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
                Some(Some(Err(e))) => {
                    answer.error = Some(format!("{model}: {e}"));
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
            answer.error = Some(format!("{model}: the answer ended without finishing"));
        }
        answer.calls = indexed.into_iter().map(|(_, c)| c).collect();
        Ok(answer)
    }

    /// Fold one event of the stream into the answer, publishing deltas.
    async fn fold(
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
            StreamEvent::Usage { usage: u } => usage.merge(*u),
            StreamEvent::Done { stop_reason } => answer.stop = Some(*stop_reason),
        }
    }

    async fn run_tool(&self, agent: &Agent, call: &mosaic_llm::ToolCall) -> ToolOutput {
        let ctx = ToolContext {
            principal: self.p.clone(),
            session_id: self.session_id.clone(),
            agent_id: Some(agent.id.clone()),
            cancel: self.cancel.clone(),
        };
        let (tool, args) = match self
            .rt
            .0
            .tools
            .decide(&agent.tools, &call.name, &call.arguments)
        {
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
                lock(&self.approvals).push(Approval {
                    info: info.clone(),
                    answer: tx,
                });
                self.emit(SessionEvent::ApprovalNeeded { approval: info })
                    .await;
                let answer = tokio::select! {
                    a = rx => a.ok(),
                    _ = self.cancel.cancelled() => None,
                };
                lock(&self.approvals).retain(|a| a.info.call_id != call.id);
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

    /// Summarise the older part of the context into a compaction entry. Returns an end
    /// when a limit stops the run first.
    async fn compact(
        &mut self,
        agent: &Agent,
        window: u64,
        max_calls: u32,
        budget: u64,
    ) -> Result<Option<RunEnd>> {
        if self.progress.model_calls >= max_calls {
            return Ok(Some(limited("max_model_calls")));
        }
        if self.progress.usage.total() >= budget {
            return Ok(Some(limited("token_budget")));
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
            return Ok(Some(limited("max_model_calls")));
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

/// Characters of pinned memory a run's system prompt carries at most.
const PINNED_BUDGET_CHARS: usize = 4_000;

/// The tool the memory flush before a compaction may call.
const FLUSH_TOOL: &str = "remember";

const FLUSH_PROMPT: &str = "The conversation below is about to be summarised, and its \
    details will leave your context. Save with the remember tool anything in it that should \
    outlive this conversation: facts the user told you about themselves or their work, \
    preferences, standing instructions, decisions. One short self-contained memory each; \
    skip small talk and anything already saved or pinned. If nothing needs saving, answer \
    'nothing to save' without calling a tool.";

fn limited(reason: &str) -> RunEnd {
    RunEnd {
        status: RunStatus::Limited,
        stop_reason: Some(reason.into()),
        error: None,
    }
}
