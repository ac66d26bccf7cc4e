//! Runs: one at a time per session (its lane). A message posted while a run is active
//! is kept in the store's queue: a steer reaches the run at its next tool boundary, a
//! follow-up starts the next run. Entries are committed at message and tool boundaries;
//! the answer streaming in between is checkpointed, so a crash keeps it too.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex as StdMutex};
use std::time::Duration;

use mosaic_api::{
    Delivery, EntryBody, PostMessageRequest, PostMessageResponse, Session, SessionEvent,
    SessionState,
};
use mosaic_store::{Parent, Principal, Store, StoreError};
use tokio::sync::Mutex;
use tokio_util::sync::CancellationToken;

use crate::bus::{Bus, BusLimits, EventBus, Subscribed};
use crate::context::{self, EntrySource};
use crate::control::{LocalControl, RunControl};
use crate::tools::{Registry, RunToolProvider};

mod compaction;
mod lane;
mod models;
mod stream;
mod tool_calls;
mod turn;

use lane::Lane;
pub use models::{Fallback, ModelError, ModelStream, Models};

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

struct Inner {
    store: Store,
    models: Arc<dyn Models>,
    /// The gateway's tools, shared by every run.
    tools: Arc<Registry>,
    run_tools: Option<Arc<dyn RunToolProvider>>,
    entries: Arc<dyn EntrySource>,
    control: Arc<dyn RunControl>,
    bus: Arc<dyn EventBus>,
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

/// A runtime with its seams set: the event bus, run control, per-run tools, and where
/// referenced entries come from. [`Runtime::new`] is a builder built at once, with the
/// in-process bus and run control, no per-run tools and no references.
pub struct RuntimeBuilder {
    store: Store,
    models: Arc<dyn Models>,
    tools: Registry,
    config: RuntimeConfig,
    run_tools: Option<Arc<dyn RunToolProvider>>,
    entries: Arc<dyn EntrySource>,
    bus: Option<Arc<dyn EventBus>>,
    control: Arc<dyn RunControl>,
}

impl RuntimeBuilder {
    /// How runs are reached (interrupts, approvals, steers); in-process by default.
    pub fn control(mut self, control: Arc<dyn RunControl>) -> Self {
        self.control = control;
        self
    }

    /// Where live events go; the in-process [`Bus`] (sized by the config) by default.
    pub fn bus(mut self, bus: Arc<dyn EventBus>) -> Self {
        self.bus = Some(bus);
        self
    }

    /// Tools each run has beyond the gateway's registry, asked for when it starts.
    pub fn run_tools(mut self, provider: Arc<dyn RunToolProvider>) -> Self {
        self.run_tools = Some(provider);
        self
    }

    /// Where the content of referenced entries is fetched for a model call.
    pub fn entries(mut self, source: Arc<dyn EntrySource>) -> Self {
        self.entries = source;
        self
    }

    pub fn build(self) -> Runtime {
        let bus = match self.bus {
            Some(bus) => bus,
            None => Arc::new(Bus::new(self.store.clone(), self.config.bus)),
        };
        Runtime(Arc::new(Inner {
            store: self.store,
            models: self.models,
            tools: Arc::new(self.tools),
            run_tools: self.run_tools,
            entries: self.entries,
            control: self.control,
            bus,
            config: self.config,
            lanes: StdMutex::new(HashMap::new()),
            shutting_down: AtomicBool::new(false),
            running: AtomicUsize::new(0),
            stopping: CancellationToken::new(),
            tasks: StdMutex::new(Vec::new()),
        }))
    }
}

impl Runtime {
    pub fn new(
        store: Store,
        models: Arc<dyn Models>,
        tools: Registry,
        config: RuntimeConfig,
    ) -> Runtime {
        Runtime::builder(store, models, tools, config).build()
    }

    pub fn builder(
        store: Store,
        models: Arc<dyn Models>,
        tools: Registry,
        config: RuntimeConfig,
    ) -> RuntimeBuilder {
        RuntimeBuilder {
            store,
            models,
            tools,
            config,
            run_tools: None,
            entries: Arc::new(context::Stored),
            bus: None,
            control: Arc::new(LocalControl::default()),
        }
    }

    pub fn tools(&self) -> &Registry {
        &self.0.tools
    }

    /// Cancelled when the gateway stops; live event streams end with it.
    pub fn stopping(&self) -> CancellationToken {
        self.0.stopping.clone()
    }

    /// Follow the live events of a session the principal may see, resuming after event
    /// `after` when given.
    pub async fn subscribe(
        &self,
        p: &Principal,
        session_id: &str,
        after: Option<u64>,
    ) -> Result<Subscribed> {
        self.0.store.get_session(p, session_id).await?;
        Ok(self.0.bus.subscribe(p, session_id, after).await?)
    }

    async fn publish(&self, p: &Principal, session_id: &str, event: SessionEvent) {
        if let Err(e) = self.0.bus.publish(p, session_id, event).await {
            tracing::warn!(session = %session_id, "event not published: {e}");
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
            if message.delivery == Delivery::Steer {
                // Untold, the run leaves the steer queued, and it starts the next run.
                if let Err(e) = self.0.control.steer(session_id).await {
                    tracing::warn!(session = %session_id, "the run was not told of a steer: {e}");
                }
            }
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
        let signals = self
            .0
            .control
            .started(session_id, &run.id, p.local_user().unwrap_or_default())
            .await;
        self.spawn_run(p, session_id, run, signals, &mut lane);
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
        let signals = self
            .0
            .control
            .started(session_id, &run.id, p.local_user().unwrap_or_default())
            .await;
        self.spawn_run(p, session_id, run, signals, &mut lane);
        Ok(run_id)
    }

    /// Stop the active run; what streamed is kept. `None` when no run was active.
    pub async fn interrupt(&self, p: &Principal, session_id: &str) -> Result<Option<String>> {
        self.0.store.get_session(p, session_id).await?;
        let lane = self.lane(session_id);
        // Behind a run being started now, so that it is the one interrupted.
        let _lane = lane.lock().await;
        Ok(self.0.control.interrupt(session_id).await?)
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
        let _lane = lane.lock().await;
        Ok(self
            .0
            .control
            .answer(session_id, call_id, approve, note)
            .await?)
    }

    /// What runs and waits in a session, and its latest event number.
    pub async fn state(&self, p: &Principal, session_id: &str) -> Result<SessionState> {
        self.0.store.get_session(p, session_id).await?;
        let last_event_id = self.0.bus.last_event_id(p, session_id).await?;
        let lane = self.lane(session_id);
        let active = {
            let _lane = lane.lock().await;
            self.0.control.active(session_id).await?
        };
        let (run_id, approvals) = match active {
            Some(a) => (Some(a.run_id), a.approvals),
            None => (None, Vec::new()),
        };
        let run = match run_id {
            Some(id) => Some(self.0.store.get_run(p, &id).await?),
            None => None,
        };
        Ok(SessionState {
            run,
            queue: self.0.store.queued_messages(p, session_id).await?,
            approvals,
            last_event_id,
        })
    }

    /// Continue the session from another entry (switch branches). Refused while a run
    /// is active: a run appends at the active leaf, so the leaf may not move under it.
    /// The lane is held from the check to the move, so no run starts in between.
    pub async fn set_leaf(
        &self,
        p: &Principal,
        session_id: &str,
        entry_id: &str,
    ) -> Result<Session> {
        let lane = self.lane(session_id);
        let mut lane = lane.lock().await;
        self.0.store.get_session(p, session_id).await?;
        if lane.active.is_some() {
            return Err(StoreError::Conflict(
                "a run is active in this session: wait for it or interrupt it first".into(),
            ));
        }
        let session = self
            .0
            .store
            .set_active_leaf(p, session_id, entry_id)
            .await?;
        lane.path.clear();
        self.publish(
            p,
            session_id,
            SessionEvent::LeafChanged {
                leaf_id: entry_id.to_string(),
            },
        )
        .await;
        Ok(session)
    }

    /// Delete a session and every entry of it. A run still going there stops; its last
    /// writes find the session gone. The lane is held throughout, so no run starts in
    /// the session while it goes.
    pub async fn delete_session(&self, p: &Principal, session_id: &str) -> Result<()> {
        let lane = self.lane(session_id);
        let lane = lane.lock().await;
        self.0.store.get_session(p, session_id).await?;
        if lane.active.is_some() {
            self.0.control.interrupt(session_id).await?;
        }
        let deleted = self.0.store.delete_session(p, session_id).await;
        lock(&self.0.lanes).remove(session_id);
        self.0.bus.forget(session_id).await;
        deleted
    }

    /// Interrupt every run acting for this user (disabled or deleted): what streamed
    /// is kept, and the store starts no new run for them. Returns at once; the runs
    /// are told from a task, since run control is asynchronous.
    pub fn interrupt_user(&self, user_id: &str) {
        let control = self.0.control.clone();
        let user_id = user_id.to_string();
        tokio::spawn(async move {
            match control.interrupt_user(&user_id).await {
                Ok(runs) => {
                    for run in runs {
                        tracing::info!(run = %run, "interrupting the run of a revoked user");
                    }
                }
                Err(e) => tracing::warn!("the runs of a revoked user not interrupted: {e}"),
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
        self.0.bus.sweep(idle, &|id| busy.iter().any(|b| b == id));
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
}
