//! A store with one user and session, and a model whose answers the test scripts and
//! can hold at a point of its choosing, so a test decides when a run is "in the middle"
//! without sleeping.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

use futures_util::StreamExt;
use mosaic_agent::bus::Received;
use mosaic_agent::{ModelError, ModelStream, Models, Runtime, RuntimeConfig};
use mosaic_api::{
    Delivery, Entry, PostMessageRequest, PostMessageResponse, Run, RunStatus, SessionEvent,
};
use mosaic_llm::{BoxFuture, ChatRequest, StopReason, StreamEvent};
use mosaic_store::{Principal, Store};
use mosaic_test_support::people::{people, sqlite_store};
use tokio::sync::{mpsc, oneshot};

pub struct World {
    pub store: Store,
    pub alice: Principal,
    pub bob: Principal,
    pub session_id: String,
    _dir: tempfile::TempDir,
}

impl World {
    /// From here on the world's session is a new one of Bob's, and "alice" in the
    /// helpers below acts as Bob.
    pub async fn switch_to_bob(&mut self) {
        std::mem::swap(&mut self.alice, &mut self.bob);
        self.session_id = self
            .store
            .create_session(&self.alice, None, "s")
            .await
            .unwrap()
            .id;
    }

    pub async fn open() -> World {
        let dir = tempfile::tempdir().unwrap();
        let store = sqlite_store(dir.path(), "rt.db").await;
        let (_, [alice, bob]) = people(&store, ["alice", "bob"]).await;
        let session_id = store.create_session(&alice, None, "s").await.unwrap().id;
        World {
            store,
            alice,
            bob,
            session_id,
            _dir: dir,
        }
    }
}

/// One scripted answer: its events, and optionally a point it holds at (before the
/// events) until the test releases it.
pub struct Reply {
    events: Vec<StreamEvent>,
    hold: Option<oneshot::Receiver<()>>,
}

impl Reply {
    pub fn text(text: &str) -> Reply {
        Reply {
            events: vec![
                StreamEvent::TextDelta { text: text.into() },
                StreamEvent::Done {
                    stop_reason: StopReason::Stop,
                },
            ],
            hold: None,
        }
    }

    pub fn tool_call(id: &str, name: &str, arguments: &str) -> Reply {
        Reply {
            events: vec![
                StreamEvent::ToolCallStart {
                    index: 0,
                    id: id.into(),
                    name: name.into(),
                },
                StreamEvent::ToolCallDelta {
                    index: 0,
                    arguments: arguments.into(),
                },
                StreamEvent::ToolCallEnd { index: 0 },
                StreamEvent::Done {
                    stop_reason: StopReason::ToolUse,
                },
            ],
            hold: None,
        }
    }

    /// This answer waits until the returned sender is used (or dropped).
    pub fn held(mut self) -> (Reply, oneshot::Sender<()>) {
        let (tx, rx) = oneshot::channel();
        self.hold = Some(rx);
        (self, tx)
    }
}

/// A model that answers from a script (then "ok" when it runs out), records every
/// request, and says when each call arrives.
pub struct ScriptedModel {
    replies: Mutex<VecDeque<Reply>>,
    pub requests: Mutex<Vec<ChatRequest>>,
    arrived: mpsc::UnboundedSender<()>,
}

impl ScriptedModel {
    /// The model, and a receiver that gets one message per call as it arrives.
    pub fn new(replies: Vec<Reply>) -> (Arc<ScriptedModel>, mpsc::UnboundedReceiver<()>) {
        let (tx, rx) = mpsc::unbounded_channel();
        let model = Arc::new(ScriptedModel {
            replies: Mutex::new(replies.into()),
            requests: Mutex::new(Vec::new()),
            arrived: tx,
        });
        (model, rx)
    }

    pub fn requests(&self) -> Vec<ChatRequest> {
        self.requests.lock().unwrap().clone()
    }
}

impl Models for ScriptedModel {
    fn call<'a>(
        &'a self,
        _principal: &'a Principal,
        _route: &'a str,
        request: ChatRequest,
    ) -> BoxFuture<'a, Result<ModelStream, ModelError>> {
        self.requests.lock().unwrap().push(request);
        let reply = self
            .replies
            .lock()
            .unwrap()
            .pop_front()
            .unwrap_or_else(|| Reply::text("ok"));
        let _ = self.arrived.send(());
        Box::pin(async move {
            let Reply { events, hold } = reply;
            let wait = futures_util::stream::once(async move {
                if let Some(hold) = hold {
                    let _ = hold.await;
                }
            })
            .filter_map(|_| async { None });
            let stream = wait.chain(futures_util::stream::iter(events.into_iter().map(Ok)));
            Ok(ModelStream {
                stream: Box::pin(stream),
                provider: "scripted".into(),
                model: "m".into(),
                fallbacks: Vec::new(),
            })
        })
    }
}

pub fn runtime(
    world: &World,
    model: Arc<ScriptedModel>,
    tools: mosaic_agent::tools::Registry,
) -> Runtime {
    Runtime::new(world.store.clone(), model, tools, RuntimeConfig::default())
}

/// A session's events, followed from before the test's first run.
pub struct Events(mosaic_agent::bus::Events);

impl Events {
    pub async fn follow(rt: &Runtime, w: &World) -> Events {
        Events(
            rt.subscribe(&w.alice, &w.session_id, None)
                .await
                .unwrap()
                .events,
        )
    }

    /// Wait for the first event that `pick` takes.
    pub async fn until<T>(&mut self, pick: impl Fn(&SessionEvent) -> Option<T>) -> T {
        loop {
            if let Received::Event(e) = self.0.next().await.unwrap() {
                if let Some(found) = pick(&e.event) {
                    return found;
                }
            }
        }
    }

    /// Wait for the end of a run.
    pub async fn finished(&mut self, run_id: &str) -> Run {
        self.until(|e| match e {
            SessionEvent::RunFinished { run } if run.id == run_id => Some(run.clone()),
            _ => None,
        })
        .await
    }

    /// Alice posts `text`; wait until its run has completed and the lane is free.
    pub async fn exchange(&mut self, rt: &Runtime, w: &World, text: &str) -> Entry {
        let (entry, run) = started(
            rt.post_message(&w.alice, &w.session_id, message(text))
                .await
                .unwrap(),
        );
        assert_eq!(self.finished(&run).await.status, RunStatus::Completed);
        idle(rt, &w.alice, &w.session_id).await;
        entry
    }
}

pub fn started(r: PostMessageResponse) -> (Entry, String) {
    match r {
        PostMessageResponse::Started { entry, run_id } => (entry, run_id),
        PostMessageResponse::Queued { message } => panic!("queued, not started: {message:?}"),
        PostMessageResponse::Unknown => panic!("an outcome of no known kind"),
    }
}

pub fn message(text: &str) -> PostMessageRequest {
    PostMessageRequest {
        text: text.into(),
        delivery: Delivery::default(),
        parent_id: None,
        new_root: false,
    }
}

/// Wait until the session's lane is free again (a run's end is published before its
/// lane lets go).
pub async fn idle(rt: &Runtime, p: &Principal, session_id: &str) {
    while rt.state(p, session_id).await.unwrap().run.is_some() {
        tokio::task::yield_now().await;
    }
}
