//! Durability end to end: `mosaic serve` killed with SIGKILL while a model streams an
//! answer, restarted on the same data directory, round after round in one session.
//! Every entry committed before a kill must come back byte for byte; the lost run must
//! be closed as interrupted (`gateway_stopped`) with the text that had streamed kept as
//! an `interrupted` answer; a follow-up queued before the kill must still be delivered;
//! and the session must go on, the model seeing the kept text as context. Text that
//! streamed right before the model fell silent must be kept too: its checkpoint falls
//! due on a timer, not only when the next piece arrives.
//!
//! The model is the scripted Chat Completions server of `mosaic-test-support`, which
//! outlives every gateway. It notes when it sent each word of the slow answer, which
//! lets the test know, without guessing at timings, which words a checkpoint must hold.
//! The test speaks to the gateway through `mosaic-client`.

#![cfg(unix)]
#![allow(clippy::unwrap_used, clippy::expect_used)]

// The harness is shared with the other test binaries; not all of it is used here.
#[allow(dead_code)]
mod support;

use std::os::unix::process::ExitStatusExt;
use std::path::Path;
use std::time::{Duration, Instant};

use mosaic_api::{
    BootstrapRequest, ConfigScope, CreateProviderRequest, CreateSessionRequest, Delivery, Entry,
    EntryBody, LoginMode, LoginRequest, PageQuery, PostMessageRequest, PostMessageResponse,
    ProviderKind, Run, RunStatus, SessionEvent, UpdateAgentRequest,
};
use mosaic_client::{Client, EventStream, LiveEvent};
use mosaic_test_support::chat::{ChatModel, Exchange, Reply, Turn};
use pretty_assertions::assert_eq;
use serde_json::Value;

use crate::support::{Gateway, Sandbox, ADMIN_PASSWORD};

/// Kill-and-restart rounds, and those that queue a follow-up before the kill.
const ROUNDS: usize = 4;
const FOLLOW_UP_ROUNDS: [usize; 2] = [2, 4];
/// The whole scenario must end within this.
const SCENARIO_LIMIT: Duration = Duration::from_secs(240);
/// Longest any wait for an event or a state may take.
const WAIT: Duration = Duration::from_secs(30);
/// Words of the slow answer, and the pause before each: 12 s in all, far longer than
/// any round needs before its kill.
const SLOW_WORDS: usize = 300;
const PACE: Duration = Duration::from_millis(40);
/// How often the runtime saves the answer streaming (its default).
const CHECKPOINT_EVERY: Duration = Duration::from_millis(250);
/// The kill comes once at least this many words must be in a checkpoint, and at least
/// this long after the first word was seen (longer each round, so the kills land at
/// different points of the checkpoint cycle).
const MIN_SAVED_WORDS: usize = 4;
const MIN_STREAMED: Duration = Duration::from_millis(400);
const MIN_STREAMED_STEP: Duration = Duration::from_millis(110);
/// The message that makes the model send [`SILENT_WORDS`] at once and then say nothing
/// for [`SILENCE`]; the gateway dies [`KILL_IN_SILENCE`] after the words reached a
/// subscriber, long after a checkpoint was due and long before the model speaks again.
const FALL_SILENT: &str = "think it over";
const SILENT_WORDS: [&str; 3] = ["Let me ", "think ", "about that"];
const SILENCE: Duration = Duration::from_secs(30);
const KILL_IN_SILENCE: Duration = Duration::from_millis(1500);
const MODEL_ROUTE: &str = "mock/test-model";

/// Round `round`'s slow answer, word by word.
fn slow_words(round: usize) -> Vec<String> {
    (0..SLOW_WORDS).map(|i| format!("r{round}w{i} ")).collect()
}

fn slow_answer(round: usize) -> String {
    slow_words(round).concat()
}

fn quick_answer(to: &str) -> String {
    format!("Noted: {to}")
}

// ---------------------------------------------------------------------------------------
// The scripted model

fn round_of(text: &str) -> Option<usize> {
    text.strip_prefix("round ")?.split(':').next()?.parse().ok()
}

/// The id of round `round`'s `current_time` call.
fn call_id(round: usize) -> String {
    format!("call_r{round}")
}

/// What the model answers, by the request's last message: `round N: …` from the user
/// gets a `current_time` call, that call's result the slow answer of round N,
/// [`FALL_SILENT`] a few words and silence, anything else a quick two-piece answer.
fn reply(last: &Turn) -> Reply {
    let called = |id: &str| id.strip_prefix("call_r")?.parse::<usize>().ok();
    let called = last.tool_call_id.as_deref().and_then(called);
    match (last.role.as_str(), called, round_of(&last.text)) {
        ("tool", Some(round), _) => Reply::text(&slow_words(round)).paced(PACE),
        ("user", _, Some(round)) => Reply::tool_call(&call_id(round), "current_time", "{}"),
        ("user", _, None) if last.text == FALL_SILENT => {
            Reply::text(&SILENT_WORDS).then_pause(SILENCE)
        }
        _ => {
            let answer = quick_answer(&last.text);
            let (head, tail) = answer.split_at(answer.len() / 2);
            Reply::text(&[head, tail])
        }
    }
}

/// What became of the one request whose last message `which` accepts, if it came.
fn exchange(model: &ChatModel, which: impl Fn(&Turn) -> bool) -> Option<Exchange> {
    let mut found = model.exchanges().into_iter().filter(|e| which(&e.last));
    let (first, second) = (found.next(), found.next());
    assert!(
        second.is_none(),
        "one such request, not {first:#?} and {second:#?}"
    );
    first
}

/// The request that got the quick answer to the user's `text`.
fn quick_request(model: &ChatModel, text: &str) -> Value {
    let request = exchange(model, |last| last.role == "user" && last.text == text);
    request
        .unwrap_or_else(|| panic!("no request ends with {text:?}"))
        .request
}

// ---------------------------------------------------------------------------------------
// The gateway

/// One event of the session, and when the test read it.
struct Ev {
    id: Option<u64>,
    event: SessionEvent,
    at: Instant,
}

impl Ev {
    /// The text, when this is a piece of run `run_id`'s answer.
    fn text_of(&self, run_id: &str) -> Option<&str> {
        match &self.event {
            SessionEvent::TextDelta { run_id: of, text } if of == run_id => Some(text),
            _ => None,
        }
    }

    /// The run, when this is its end.
    fn finished(&self) -> Option<&Run> {
        match &self.event {
            SessionEvent::RunFinished { run } => Some(run),
            _ => None,
        }
    }
}

/// A subscriber of the session's events; they end when the gateway dies.
struct Events(EventStream);

impl Events {
    /// The next event, stamped as the test reads it: no earlier than it arrived.
    async fn next(&mut self) -> Ev {
        let next = tokio::time::timeout(WAIT, self.0.next()).await;
        let next = next.expect("an event within the wait");
        let LiveEvent { id, event } = next.expect("the event stream is open").unwrap();
        let at = Instant::now();
        Ev { id, event, at }
    }

    /// Events up to and including the first one `stop` accepts.
    async fn until(&mut self, stop: impl Fn(&Ev) -> bool) -> Vec<Ev> {
        let mut out = Vec::new();
        loop {
            let e = self.next().await;
            let done = stop(&e);
            out.push(e);
            if done {
                return out;
            }
        }
    }
}

/// The admin's view of the session, through the client (whose gateway's address changes
/// with every restart).
impl World {
    async fn entries(&self) -> Vec<Entry> {
        let list = self.client.list_session_entries(&self.session, None).await;
        list.unwrap().items
    }

    /// The session's runs, oldest first.
    async fn runs(&self) -> Vec<Run> {
        let all = PageQuery::default();
        let page = self.client.list_runs(&self.session, &all).await.unwrap();
        assert_eq!(page.next_cursor, None, "one page holds them all");
        page.items.into_iter().rev().collect()
    }

    /// Poll the session's runs until they number `count`, none running (or the wait
    /// runs out).
    async fn settled_runs(&self, count: usize) -> Vec<Run> {
        let deadline = Instant::now() + WAIT;
        loop {
            let runs = self.runs().await;
            if runs.len() == count && runs.iter().all(|r| r.status != RunStatus::Running) {
                return runs;
            }
            assert!(Instant::now() < deadline, "runs never settled: {runs:#?}");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    async fn say(&self, text: &str) -> PostMessageResponse {
        let message = PostMessageRequest {
            text: text.into(),
            ..PostMessageRequest::default()
        };
        let posted = self.client.post_message(&self.session, &message).await;
        posted.unwrap()
    }

    /// Post `text`, which must start a run; the run's id.
    async fn start_run(&self, text: &str) -> String {
        match self.say(text).await {
            PostMessageResponse::Started { run_id, .. } => run_id,
            other => panic!("{text:?} did not start a run: {other:?}"),
        }
    }

    /// Subscribe; returns once the gateway has registered the subscription.
    async fn events(&self) -> Events {
        let events = self.client.session_events(&self.session, None).await;
        Events(events.unwrap())
    }
}

/// `mosaic serve` on `data`, waited for off the async workers (the harness blocks).
fn start_gateway(sandbox: &Sandbox, data: &Path) -> Gateway {
    tokio::task::block_in_place(|| Gateway::start(sandbox, data))
}

/// SIGKILL: no shutdown hook runs, nothing is flushed but what was committed.
fn kill_hard(gateway: &mut Gateway) {
    gateway.child.kill().unwrap();
    let status = tokio::task::block_in_place(|| gateway.child.wait()).unwrap();
    assert_eq!(status.signal(), Some(9), "killed by SIGKILL");
}

// ---------------------------------------------------------------------------------------
// Reading what came back

/// An entry as (type, main text, stop reason): enough to compare whole paths.
type Shape = (&'static str, String, Option<String>);

fn shape(entry: &Entry) -> Shape {
    let kind = entry.body.kind();
    match &entry.body {
        EntryBody::User { text } => (kind, text.clone(), None),
        EntryBody::Assistant {
            text, stop_reason, ..
        } => (
            kind,
            text.clone(),
            stop_reason.as_ref().map(ToString::to_string),
        ),
        EntryBody::ToolCall { call_id, name, .. } => (kind, format!("{name}({call_id})"), None),
        EntryBody::ToolResult {
            call_id, is_error, ..
        } => (kind, format!("{call_id} error={is_error}"), None),
        EntryBody::ModelChange { .. } | EntryBody::Compaction { .. } | EntryBody::Unknown => {
            (kind, String::new(), None)
        }
    }
}

fn shaped(kind: &'static str, text: &str, stop: Option<&str>) -> Shape {
    (kind, text.into(), stop.map(str::to_string))
}

fn shapes(entries: &[Entry]) -> Vec<Shape> {
    entries.iter().map(shape).collect()
}

/// How a run ended: (status, stop reason).
type Outcome = (RunStatus, Option<String>);

fn outcome(run: &Run) -> Outcome {
    (
        run.status,
        run.stop_reason.as_ref().map(ToString::to_string),
    )
}

fn completed() -> Outcome {
    (RunStatus::Completed, Some("stop".into()))
}

fn stopped() -> Outcome {
    (RunStatus::Interrupted, Some("gateway_stopped".into()))
}

/// The run `id` was closed as the gateway stopping.
fn assert_closed_by_the_stop(runs: &[Run], id: &str) {
    let run = runs.iter().find(|r| r.id == id);
    let run = run.unwrap_or_else(|| panic!("no run {id} in {runs:#?}"));
    assert_eq!(outcome(run), stopped(), "{run:?}");
    assert!(run.finished_at.is_some(), "{run:?}");
}

/// Whether the model was given `text` as an assistant message right before the user
/// message `next`.
fn answer_precedes(request: &Value, text: &str, next: &str) -> bool {
    let messages = request["messages"].as_array().unwrap();
    messages.windows(2).any(|w| {
        w[0]["role"] == "assistant"
            && w[0]["content"] == text
            && w[1]["role"] == "user"
            && w[1]["content"] == next
    })
}

// ---------------------------------------------------------------------------------------
// The scenarios

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_mid_run_keeps_committed_entries_and_the_partial_answer_and_the_session_goes_on() {
    tokio::time::timeout(SCENARIO_LIMIT, async {
        let mut world = World::new().await;
        for round in 1..=ROUNDS {
            let lost = world.stream_and_kill(round).await;
            world.restart();
            let kept = world.check_recovery(round, &lost).await;
            world.go_on(round, &lost, &kept).await;
        }
        // Every model call was one the script expected, each answered once.
        let expected = ROUNDS * 3 + FOLLOW_UP_ROUNDS.len();
        assert_eq!(world.model.requests().len(), expected);
    })
    .await
    .expect("the scenario ends within its limit");
}

/// The model sends a few words at once, then nothing: no stream event comes to trigger a
/// checkpoint, so it must come when due all the same, and a SIGKILL in the silence must
/// lose none of the words.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_while_the_model_is_silent_keeps_the_words_streamed_before_the_silence() {
    tokio::time::timeout(SCENARIO_LIMIT, async {
        let mut world = World::new().await;
        let mut events = world.events().await;
        let run_id = world.start_run(FALL_SILENT).await;
        let words = SILENT_WORDS.concat();
        let (mut seen, mut arrived) = (String::new(), Instant::now());
        while seen != words {
            let e = events.next().await;
            assert_eq!(e.finished(), None, "the run ended before the kill");
            if let Some(text) = e.text_of(&run_id) {
                seen.push_str(text);
                assert!(words.starts_with(&seen), "streamed {seen:?}");
                arrived = e.at;
            }
        }
        tokio::time::sleep_until((arrived + KILL_IN_SILENCE).into()).await;
        kill_hard(&mut world.gateway);
        assert!(arrived.elapsed() < SILENCE / 2, "killed in the silence");
        world.restart();

        assert_closed_by_the_stop(&world.settled_runs(1).await, &run_id);
        assert_eq!(
            shapes(&world.entries().await),
            [
                shaped("user", FALL_SILENT, None),
                shaped("assistant", &words, Some("interrupted")),
            ],
            "the interrupted answer holds exactly the words sent before the silence"
        );
    })
    .await
    .expect("the scenario ends within its limit");
}

/// One scripted model, one data directory, one session, across every restart; and
/// what the session's path and runs must be, built up round by round.
struct World {
    // Field order is drop order: the gateway dies before its directory is removed.
    gateway: Gateway,
    /// The admin's client, and the session they talk in.
    client: Client,
    token: String,
    session: String,
    model: ChatModel,
    sandbox: Sandbox,
    path: Vec<Shape>,
    outcomes: Vec<Outcome>,
    last_event_id: u64,
}

/// A run the gateway lost, and what the test knew before the kill.
struct Lost {
    run_id: String,
    /// The session's entries read while the answer streamed.
    committed: Vec<Entry>,
    /// Queued before the kill (in [`FOLLOW_UP_ROUNDS`]).
    follow_up: Option<String>,
    /// All the text the test read, and the words a checkpoint must have saved.
    seen: String,
    saved: String,
}

impl World {
    /// A fresh gateway, claimed by the admin `root`, with the scripted model as the
    /// gateway-wide provider `mock`, the default agent sent to `mock/test-model`, and a
    /// new session.
    async fn new() -> World {
        let model = ChatModel::start(reply);
        let sandbox = Sandbox::new();
        let gateway = start_gateway(&sandbox, &sandbox.path("data"));
        let anonymous = Client::new(&gateway.url, None).unwrap();
        let (username, password) = ("root".to_string(), ADMIN_PASSWORD.to_string());
        let token = gateway
            .bootstrap_token()
            .expect("a fresh gateway prints a bootstrap token");
        let claim = BootstrapRequest {
            token,
            username: username.clone(),
            password: password.clone(),
            display_name: None,
        };
        anonymous.bootstrap(&claim).await.unwrap();
        let login = LoginRequest {
            username,
            password,
            mode: LoginMode::Token,
            token_name: None,
        };
        let token = anonymous.login(&login).await.unwrap().token.unwrap();
        let client = anonymous.with_token(Some(token.clone()));
        let provider = CreateProviderRequest {
            name: "mock".into(),
            kind: ProviderKind::OpenaiCompatible,
            base_url: Some(model.base_url.clone()),
            api_key: None,
            wire: None,
            scope: ConfigScope::Gateway,
        };
        client.create_provider(&provider).await.unwrap();
        let agents = client.list_agents().await.unwrap().items;
        let default = agents.iter().find(|a| a.name == "default");
        let route = UpdateAgentRequest {
            route: Some(MODEL_ROUTE.into()),
            ..UpdateAgentRequest::default()
        };
        let id = &default.expect("a default agent").id;
        client.update_agent(id, &route).await.unwrap();
        let new = CreateSessionRequest::default();
        let session = client.create_session(&new).await.unwrap().id;
        World {
            gateway,
            client,
            token,
            session,
            model,
            sandbox,
            path: Vec::new(),
            outcomes: Vec::new(),
            last_event_id: 0,
        }
    }

    fn see_event_numbers(&mut self, events: &[Ev]) {
        let numbers: Vec<u64> = events.iter().filter_map(|e| e.id).collect();
        assert!(
            numbers.iter().all(|&n| n > self.last_event_id),
            "event numbers never repeat, across restarts too: {numbers:?} after {}",
            self.last_event_id
        );
        self.last_event_id = numbers.into_iter().max().unwrap_or(self.last_event_id);
    }

    /// Ask round `round`'s question: the model calls `current_time`, the call and its
    /// result are committed, then the slow answer streams (a follow-up may be queued
    /// meanwhile) until a checkpoint provably holds some of it; then SIGKILL.
    async fn stream_and_kill(&mut self, round: usize) -> Lost {
        let mut events = self.events().await;
        let question = format!("round {round}: what time is it?");
        let run_id = self.start_run(&question).await;

        let before_text = events.until(|e| e.text_of(&run_id).is_some()).await;
        self.see_event_numbers(&before_text);
        let committed = self.entries().await;
        let call = call_id(round);
        self.path.extend([
            shaped("user", &question, None),
            shaped("tool_call", &format!("current_time({call})"), None),
            shaped("tool_result", &format!("{call} error=false"), None),
        ]);
        assert_eq!(shapes(&committed), self.path);

        let follow_up = FOLLOW_UP_ROUNDS
            .contains(&round)
            .then(|| format!("and after round {round}?"));
        if let Some(text) = &follow_up {
            match self.say(text).await {
                PostMessageResponse::Queued { message } => {
                    assert_eq!(message.delivery, Delivery::FollowUp, "{message:?}")
                }
                other => panic!("{text:?} was not queued: {other:?}"),
            }
        }

        let (seen, saved) = self
            .stream_until_saved(&mut events, before_text, round, &run_id)
            .await;
        kill_hard(&mut self.gateway);
        Lost {
            run_id,
            committed,
            follow_up,
            seen,
            saved,
        }
    }

    /// Read the slow answer of `round` (from the events `already` read on) until a
    /// checkpoint provably holds at least [`MIN_SAVED_WORDS`] words and, since the first,
    /// [`MIN_STREAMED`] has passed (plus [`MIN_STREAMED_STEP`] a round). Returns the text
    /// read and the words that a checkpoint must have saved.
    ///
    /// The proof: the runtime saves unsaved text once [`CHECKPOINT_EVERY`] has passed
    /// since its last save (on handling a stream event, or on a timer when none comes),
    /// and handles the next event only after the save. Word `k` was read by the test at
    /// `read[k]`, so the runtime had it by then. If word `j` left the model server at or
    /// after `read[k] + CHECKPOINT_EVERY`, the runtime handled `j` at least that long
    /// after `k`, so by the end of handling `j` a save holding `k` was done; reading word
    /// `j + 1` shows that handling had ended.
    async fn stream_until_saved(
        &mut self,
        events: &mut Events,
        already: Vec<Ev>,
        round: usize,
        run_id: &str,
    ) -> (String, String) {
        let full = slow_answer(round);
        let (mut seen, mut read) = (String::new(), Vec::<Instant>::new());
        let mut already = already.into_iter();
        loop {
            let e = match already.next() {
                Some(e) => e,
                None => {
                    let e = events.next().await;
                    self.see_event_numbers(std::slice::from_ref(&e));
                    e
                }
            };
            assert_eq!(e.finished(), None, "the run ended before the kill");
            let Some(text) = e.text_of(run_id) else {
                continue;
            };
            seen.push_str(text);
            assert!(full.starts_with(&seen), "streamed {seen:?}");
            while read.len() < seen.matches(' ').count() {
                read.push(e.at);
            }
            // Word `j + 1` has been read in full.
            let Some(j) = read.len().checked_sub(2) else {
                continue;
            };
            let slow = exchange(&self.model, |last| {
                last.tool_call_id == Some(call_id(round))
            });
            let left_server = slow.unwrap().sent[j];
            let saved_words = read
                .iter()
                .take_while(|&&at| at + CHECKPOINT_EVERY <= left_server)
                .count();
            let min_streamed = MIN_STREAMED + MIN_STREAMED_STEP * (round as u32 - 1);
            if saved_words >= MIN_SAVED_WORDS && read[0].elapsed() >= min_streamed {
                let saved = slow_words(round)[..saved_words].concat();
                return (seen, saved);
            }
        }
    }

    /// `mosaic serve` again, on the same data directory.
    fn restart(&mut self) {
        self.gateway = start_gateway(&self.sandbox, &self.sandbox.path("data"));
        self.client = Client::new(&self.gateway.url, Some(self.token.clone())).unwrap();
        let log = self.gateway.log();
        let said = log.contains("closed a run interrupted by the gateway stopping");
        assert!(said, "recovery says what it did:\n{log}");
    }

    /// The lost run is closed as the gateway stopping, every entry committed before the
    /// kill is there byte for byte, the text that had streamed is an answer marked
    /// interrupted, and a queued follow-up got its run. Returns the kept text.
    async fn check_recovery(&mut self, round: usize, lost: &Lost) -> String {
        self.outcomes.push(stopped());
        if lost.follow_up.is_some() {
            self.outcomes.push(completed());
        }
        let listed = self.settled_runs(self.outcomes.len()).await;
        assert_closed_by_the_stop(&listed, &lost.run_id);

        let entries = self.entries().await;
        let committed = &lost.committed;
        assert!(entries.len() > committed.len(), "{entries:#?}");
        assert_eq!(entries[..committed.len()], committed[..]);
        let partial = &entries[committed.len()];
        assert_eq!(partial.parent_id, committed.last().map(|e| e.id.clone()));
        let kept = match &partial.body {
            EntryBody::Assistant { text, model, .. } if model.as_deref() == Some(MODEL_ROUTE) => {
                text.clone()
            }
            _ => panic!("the kept text is an answer of {MODEL_ROUTE}: {partial:#?}"),
        };
        assert!(
            slow_answer(round).starts_with(&kept),
            "the kept text is what streamed: {kept:?}"
        );
        assert!(
            kept.starts_with(&lost.saved),
            "the kept text holds every word a checkpoint had saved\n  kept:  {kept:?}\n  \
             saved: {:?}\n  seen:  {:?}",
            lost.saved,
            lost.seen
        );
        eprintln!(
            "round {round}: killed after {} words read, {} provably saved; {} kept",
            lost.seen.matches(' ').count(),
            lost.saved.matches(' ').count(),
            kept.matches(' ').count()
        );
        self.path
            .push(shaped("assistant", &kept, Some("interrupted")));

        if let Some(follow_up) = &lost.follow_up {
            self.path.extend([
                shaped("user", follow_up, None),
                shaped("assistant", &quick_answer(follow_up), Some("stop")),
            ]);
            let request = quick_request(&self.model, follow_up);
            assert!(
                answer_precedes(&request, &kept, follow_up),
                "the follow-up's model call has the kept text as context: {request:#}"
            );
            let state = self.client.get_session_state(&self.session);
            assert_eq!(state.await.unwrap().queue, [], "nothing waits any more");
        }
        assert_eq!(
            shapes(&entries),
            self.path,
            "the session's path after restart {round}"
        );
        kept
    }

    /// The session goes on: a new message gets a whole answer, the model seeing the
    /// kept text (and the follow-up's answer after it) as context.
    async fn go_on(&mut self, round: usize, lost: &Lost, kept: &str) {
        let mut events = self.events().await;
        let next = format!("go on after round {round}");
        let run_id = self.start_run(&next).await;
        let seen = events
            .until(|e| e.finished().is_some_and(|run| run.id == run_id))
            .await;
        self.see_event_numbers(&seen);
        let finished = seen.last().unwrap().finished().unwrap();
        assert_eq!(outcome(finished), completed(), "{finished:?}");
        self.outcomes.push(completed());
        self.path.extend([
            shaped("user", &next, None),
            shaped("assistant", &quick_answer(&next), Some("stop")),
        ]);

        let request = quick_request(&self.model, &next);
        let before_next = match &lost.follow_up {
            Some(follow_up) => quick_answer(follow_up),
            None => kept.to_string(),
        };
        assert!(
            answer_precedes(&request, &before_next, &next),
            "the next model call continues the session: {request:#}"
        );
        let messages = request["messages"].as_array().unwrap();
        assert!(
            messages
                .iter()
                .any(|m| m["role"] == "assistant" && m["content"] == kept),
            "the kept text is in the model's context: {request:#}"
        );

        assert_eq!(shapes(&self.entries().await), self.path);
        let listed: Vec<Outcome> = self.runs().await.iter().map(outcome).collect();
        assert_eq!(
            listed, self.outcomes,
            "the session's runs after round {round}"
        );
    }
}
