//! Durability end to end: `mosaic serve` killed with SIGKILL while a model streams an
//! answer, restarted on the same data directory, round after round in one session.
//! Every entry committed before a kill must come back byte for byte; the lost run must
//! be closed as interrupted (`gateway_stopped`) with the text that had streamed kept as
//! an `interrupted` answer; a follow-up queued before the kill must still be delivered;
//! and the session must go on, the model seeing the kept text as context.
//!
//! The model is a scripted OpenAI Chat Completions server in this process, so it
//! outlives every gateway. It notes when it sent each word of the slow answer, which
//! lets the test know, without guessing at timings, which words a checkpoint must hold.

#![cfg(unix)]
#![allow(clippy::unwrap_used, clippy::expect_used)]

// The harness is shared with the other test binaries; not all of it is used here.
#[allow(dead_code)]
mod support;

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::os::unix::process::ExitStatusExt;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use pretty_assertions::assert_eq;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

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
const MODEL_ROUTE: &str = "mock/test-model";

/// Word `i` of round `round`'s slow answer; the answer is the words joined.
fn slow_word(round: usize, i: usize) -> String {
    format!("r{round}w{i} ")
}

fn slow_answer(round: usize) -> String {
    (0..SLOW_WORDS).map(|i| slow_word(round, i)).collect()
}

fn quick_answer(to: &str) -> String {
    format!("Noted: {to}")
}

// ---------------------------------------------------------------------------------------
// The scripted model

/// What the scripted model answers a request with, decided by its last message:
/// `round N: …` from the user gets a `current_time` call, the tool's result gets the
/// slow answer of round N, anything else a quick two-piece answer.
#[derive(Debug, Clone, PartialEq)]
enum Reply {
    ToolCall { round: usize },
    Slow { round: usize },
    Quick { to: String },
}

fn round_of(text: &str) -> Option<usize> {
    text.strip_prefix("round ")?.split(':').next()?.parse().ok()
}

fn reply_for(body: &Value) -> Reply {
    let messages = body["messages"].as_array().cloned().unwrap_or_default();
    let last_user = messages
        .iter()
        .rev()
        .find(|m| m["role"] == "user")
        .and_then(|m| m["content"].as_str())
        .unwrap_or_default()
        .to_string();
    let last = messages.last().cloned().unwrap_or(Value::Null);
    match (last["role"].as_str(), round_of(&last_user)) {
        (Some("tool"), Some(round)) => Reply::Slow { round },
        (Some("user"), Some(round)) => Reply::ToolCall { round },
        _ => Reply::Quick { to: last_user },
    }
}

/// A scripted OpenAI-compatible server on loopback (`POST /v1/chat/completions`
/// streams; anything else is 404). Runs on its own threads, so it outlives gateways and
/// owes nothing to the test's async runtime.
struct Upstream {
    addr: SocketAddr,
    /// Chat request bodies, in arrival order.
    requests: Arc<Mutex<Vec<Value>>>,
    /// Per round, when each word of its slow answer was handed to the socket.
    sent: Arc<Mutex<HashMap<usize, Vec<Instant>>>>,
}

impl Upstream {
    fn start() -> Upstream {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let upstream = Upstream {
            addr: listener.local_addr().unwrap(),
            requests: Arc::default(),
            sent: Arc::default(),
        };
        let (requests, sent) = (upstream.requests.clone(), upstream.sent.clone());
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let (requests, sent) = (requests.clone(), sent.clone());
                std::thread::spawn(move || serve(stream, &requests, &sent));
            }
        });
        upstream
    }

    fn base_url(&self) -> String {
        format!("http://{}/v1", self.addr)
    }

    fn requests(&self) -> Vec<Value> {
        self.requests.lock().unwrap().clone()
    }

    /// The chat request that got `reply`.
    fn request_for(&self, reply: &Reply) -> Value {
        let found: Vec<Value> = self
            .requests()
            .into_iter()
            .filter(|r| reply_for(r) == *reply)
            .collect();
        assert_eq!(found.len(), 1, "one request answered with {reply:?}");
        found.into_iter().next().unwrap()
    }

    /// When word `i` of `round`'s slow answer was sent, if it was.
    fn sent_at(&self, round: usize, i: usize) -> Option<Instant> {
        self.sent.lock().unwrap().get(&round)?.get(i).copied()
    }
}

/// One OpenAI Chat Completions stream chunk.
fn chunk(delta: Value, finish: Option<&str>) -> String {
    let chunk = json!({"id": "chatcmpl-1", "object": "chat.completion.chunk",
        "model": "test-model", "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]});
    format!("data: {chunk}\n\n")
}

fn serve(
    stream: TcpStream,
    requests: &Mutex<Vec<Value>>,
    sent: &Mutex<HashMap<usize, Vec<Instant>>>,
) {
    let _ = stream.set_nodelay(true);
    let _ = stream.set_read_timeout(Some(Duration::from_secs(10)));
    let Ok(read_half) = stream.try_clone() else {
        return;
    };
    let mut reader = BufReader::new(read_half);
    let mut request_line = String::new();
    if reader.read_line(&mut request_line).is_err() || request_line.is_empty() {
        return;
    }
    let mut parts = request_line.split_whitespace();
    let method = parts.next().unwrap_or_default().to_string();
    let path = parts.next().unwrap_or_default().to_string();
    let mut length = 0;
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).is_err() {
            return;
        }
        let line = line.trim_end();
        if line.is_empty() {
            break;
        }
        if let Some((name, value)) = line.split_once(':') {
            if name.eq_ignore_ascii_case("content-length") {
                length = value.trim().parse().unwrap_or(0);
            }
        }
    }
    let mut body = vec![0; length];
    if reader.read_exact(&mut body).is_err() {
        return;
    }
    let body: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    let mut out = stream;
    match (method.as_str(), path.as_str()) {
        ("POST", "/v1/chat/completions") => {
            let reply = reply_for(&body);
            requests.lock().unwrap().push(body);
            if write!(
                out,
                "HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ncache-control: no-cache\r\n\
                 connection: close\r\n\r\n"
            )
            .is_err()
            {
                return;
            }
            stream_reply(&mut out, &reply, sent);
        }
        _ => {
            let _ = write!(
                out,
                "HTTP/1.1 404 Not Found\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"
            );
        }
    }
}

/// Write `reply` as a Chat Completions stream; stops quietly when the gateway is gone.
fn stream_reply(out: &mut TcpStream, reply: &Reply, sent: &Mutex<HashMap<usize, Vec<Instant>>>) {
    let mut send = |piece: String| out.write_all(piece.as_bytes()).and_then(|()| out.flush());
    let usage = |input: u64, output: u64| {
        let usage = json!({"id": "chatcmpl-1", "object": "chat.completion.chunk",
            "model": "test-model", "choices": [],
            "usage": {"prompt_tokens": input, "completion_tokens": output}});
        format!("data: {usage}\n\n")
    };
    let finish = match reply {
        Reply::ToolCall { round } => {
            let call = json!({"tool_calls": [{"index": 0, "id": format!("call_r{round}"),
                "type": "function", "function": {"name": "current_time", "arguments": ""}}]});
            let args = json!({"tool_calls": [{"index": 0, "function": {"arguments": "{}"}}]});
            if send(chunk(call, None)).is_err() || send(chunk(args, None)).is_err() {
                return;
            }
            "tool_calls"
        }
        Reply::Slow { round } => {
            if send(chunk(json!({"role": "assistant", "content": ""}), None)).is_err() {
                return;
            }
            sent.lock().unwrap().insert(*round, Vec::new());
            for i in 0..SLOW_WORDS {
                std::thread::sleep(PACE);
                // Noted before the write: the gateway cannot have the word any earlier.
                sent.lock()
                    .unwrap()
                    .get_mut(round)
                    .unwrap()
                    .push(Instant::now());
                if send(chunk(json!({"content": slow_word(*round, i)}), None)).is_err() {
                    return;
                }
            }
            "stop"
        }
        Reply::Quick { to } => {
            let answer = quick_answer(to);
            let (head, tail) = answer.split_at(answer.len() / 2);
            for piece in [head, tail] {
                if send(chunk(json!({"content": piece}), None)).is_err() {
                    return;
                }
            }
            "stop"
        }
    };
    let _ = send(chunk(json!({}), Some(finish)));
    let _ = send(usage(20, 10));
    let _ = send("data: [DONE]\n\n".to_string());
}

// ---------------------------------------------------------------------------------------
// The gateway's HTTP API

/// One event of a session's SSE stream, and when the test read it.
#[derive(Debug, Clone)]
struct Ev {
    id: Option<u64>,
    kind: String,
    data: Value,
    at: Instant,
}

/// A subscriber of `GET /api/v1/sessions/{id}/events`, read in the background; the
/// stream ends when the gateway dies.
struct Events {
    rx: tokio::sync::mpsc::UnboundedReceiver<Ev>,
    task: tokio::task::JoinHandle<()>,
}

impl Events {
    async fn next(&mut self) -> Ev {
        tokio::time::timeout(WAIT, self.rx.recv())
            .await
            .expect("an event within the wait")
            .expect("the event stream is open")
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

impl Drop for Events {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// The admin's view of one gateway (its address changes with every restart).
struct Api {
    http: reqwest::Client,
    url: String,
    token: String,
}

impl Api {
    async fn call(&self, method: Method, path: &str, body: Option<Value>) -> (StatusCode, Value) {
        send(&self.http, method, &self.url, path, Some(&self.token), body).await
    }

    async fn get(&self, path: &str) -> Value {
        let (status, body) = self.call(Method::GET, path, None).await;
        assert_eq!(status, StatusCode::OK, "GET {path}: {body}");
        body
    }

    async fn entries(&self, session: &str) -> Vec<Value> {
        let page = self
            .get(&format!("/api/v1/sessions/{session}/entries"))
            .await;
        page["items"].as_array().unwrap().clone()
    }

    /// The session's runs, oldest first.
    async fn runs(&self, session: &str) -> Vec<Value> {
        let page = self
            .get(&format!("/api/v1/sessions/{session}/runs?limit=100"))
            .await;
        assert_eq!(page["next_cursor"], Value::Null, "one page holds them all");
        let mut runs = page["items"].as_array().unwrap().clone();
        runs.reverse();
        runs
    }

    async fn say(&self, session: &str, text: &str) -> Value {
        let (status, answer) = self
            .call(
                Method::POST,
                &format!("/api/v1/sessions/{session}/messages"),
                Some(json!({"text": text})),
            )
            .await;
        assert_eq!(status, StatusCode::ACCEPTED, "{answer}");
        answer
    }

    /// Subscribe; returns once the gateway has registered the subscription.
    async fn events(&self, session: &str) -> Events {
        let mut resp = self
            .http
            .get(format!("{}/api/v1/sessions/{session}/events", self.url))
            .bearer_auth(&self.token)
            .timeout(SCENARIO_LIMIT)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), StatusCode::OK);
        let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
        let (ready_tx, ready_rx) = tokio::sync::oneshot::channel();
        let task = tokio::spawn(async move {
            let mut ready = Some(ready_tx);
            let mut buf = String::new();
            while let Ok(Some(bytes)) = resp.chunk().await {
                let at = Instant::now();
                buf.push_str(&String::from_utf8_lossy(&bytes));
                while let Some(end) = buf.find("\n\n") {
                    let frame: String = buf.drain(..end + 2).collect();
                    let (mut id, mut kind, mut data) = (None, String::new(), String::new());
                    for line in frame.lines() {
                        if let Some(v) = line.strip_prefix("id: ") {
                            id = Some(v.parse().unwrap());
                        } else if let Some(v) = line.strip_prefix("event: ") {
                            kind = v.to_string();
                        } else if let Some(v) = line.strip_prefix("data: ") {
                            data.push_str(v);
                        } else if line.starts_with(':') {
                            if let Some(r) = ready.take() {
                                let _ = r.send(());
                            }
                        }
                    }
                    if kind.is_empty() {
                        continue;
                    }
                    let data = serde_json::from_str(&data).unwrap();
                    if tx.send(Ev { id, kind, data, at }).is_err() {
                        return;
                    }
                }
            }
        });
        tokio::time::timeout(WAIT, ready_rx)
            .await
            .expect("subscribed within the wait")
            .unwrap();
        Events { rx, task }
    }

    /// Poll the session's runs until `done` holds (or the wait runs out).
    async fn runs_until(&self, session: &str, done: impl Fn(&[Value]) -> bool) -> Vec<Value> {
        let deadline = Instant::now() + WAIT;
        loop {
            let runs = self.runs(session).await;
            if done(&runs) {
                return runs;
            }
            assert!(Instant::now() < deadline, "runs never settled: {runs:#?}");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

async fn send(
    http: &reqwest::Client,
    method: Method,
    url: &str,
    path: &str,
    token: Option<&str>,
    body: Option<Value>,
) -> (StatusCode, Value) {
    let mut req = http.request(method, format!("{url}{path}"));
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    if let Some(b) = body {
        req = req.json(&b);
    }
    let resp = req.send().await.unwrap();
    let status = resp.status();
    let text = resp.text().await.unwrap();
    (status, serde_json::from_str(&text).unwrap_or(Value::Null))
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

/// Claim the fresh gateway as `root`, add the scripted model as the gateway-wide
/// provider `mock`, and send the default agent to `mock/test-model`.
async fn set_up(gateway: &Gateway, upstream: &Upstream) -> Api {
    let http = reqwest::Client::builder().timeout(WAIT).build().unwrap();
    let url = gateway.url.clone();
    let bootstrap = gateway
        .bootstrap_token()
        .expect("a fresh gateway prints a bootstrap token");
    let (status, body) = send(
        &http,
        Method::POST,
        &url,
        "/api/v1/auth/bootstrap",
        None,
        Some(json!({"token": bootstrap, "username": "root", "password": ADMIN_PASSWORD})),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let (status, body) = send(
        &http,
        Method::POST,
        &url,
        "/api/v1/auth/login",
        None,
        Some(json!({"username": "root", "password": ADMIN_PASSWORD, "mode": "token"})),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let api = Api {
        http,
        url,
        token: body["token"].as_str().unwrap().to_string(),
    };
    let (status, body) = api
        .call(
            Method::POST,
            "/api/v1/providers",
            Some(json!({"name": "mock", "kind": "openai-compatible",
                "base_url": upstream.base_url(), "scope": "gateway"})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let agents = api.get("/api/v1/agents").await;
    let default = agents["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["name"] == "default")
        .expect("a default agent")["id"]
        .as_str()
        .unwrap()
        .to_string();
    let (status, body) = api
        .call(
            Method::PATCH,
            &format!("/api/v1/agents/{default}"),
            Some(json!({"route": MODEL_ROUTE})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    api
}

// ---------------------------------------------------------------------------------------
// Reading what came back

/// An entry as (type, main text, stop reason) — enough to compare whole paths.
fn shape(entry: &Value) -> (String, String, Option<String>) {
    let b = &entry["body"];
    let kind = b["type"].as_str().unwrap().to_string();
    let text = match kind.as_str() {
        "user" | "assistant" => b["text"].as_str().unwrap().to_string(),
        "tool_call" => format!("{}({})", b["name"].as_str().unwrap(), b["call_id"]),
        "tool_result" => format!("{} error={}", b["call_id"], b["is_error"]),
        _ => String::new(),
    };
    (kind, text, b["stop_reason"].as_str().map(str::to_string))
}

fn shaped(kind: &str, text: &str, stop: Option<&str>) -> (String, String, Option<String>) {
    (kind.into(), text.into(), stop.map(str::to_string))
}

fn run_with_id<'a>(runs: &'a [Value], id: &str) -> &'a Value {
    runs.iter()
        .find(|r| r["id"] == id)
        .unwrap_or_else(|| panic!("no run {id} in {runs:#?}"))
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

/// What the test saw stream before it killed the gateway.
struct Streamed {
    /// All the text the test read.
    seen: String,
    /// The words that a checkpoint must have saved before the kill.
    saved: String,
    /// The highest event number read.
    last_event_id: u64,
}

/// Read the slow answer of `round` until a checkpoint provably holds at least
/// [`MIN_SAVED_WORDS`] words and, since the first, [`MIN_STREAMED`] has passed (plus
/// [`MIN_STREAMED_STEP`] a round).
///
/// The proof: the runtime saves the text when it handles a stream event at least
/// [`CHECKPOINT_EVERY`] after its last save, and handles the next event only after the
/// save. Word `k` was read by the test at `read[k]`, so the runtime had it by then. If
/// word `j` left the model server at or after `read[k] + CHECKPOINT_EVERY`, the runtime
/// handled `j` at least that long after `k`, so by the end of handling `j` a save
/// holding `k` was done; reading word `j + 1` shows that handling had ended.
async fn stream_until_saved(
    events: &mut Events,
    already: Vec<Ev>,
    upstream: &Upstream,
    round: usize,
    run_id: &str,
    mut last_event_id: u64,
) -> Streamed {
    let full = slow_answer(round);
    let mut seen = String::new();
    let mut read: Vec<Instant> = Vec::new();
    let mut already = already.into_iter();
    loop {
        let e = match already.next() {
            Some(e) => e,
            None => events.next().await,
        };
        last_event_id = last_event_id.max(e.id.unwrap_or(0));
        assert!(
            e.kind != "run_finished",
            "the run ended before the kill: {:?}",
            e.data
        );
        if e.kind != "text_delta" || e.data["run_id"] != run_id {
            continue;
        }
        seen.push_str(e.data["text"].as_str().unwrap());
        assert!(full.starts_with(&seen), "streamed {seen:?}");
        while read.len() < seen.matches(' ').count() {
            read.push(e.at);
        }
        // Word `j + 1` has been read in full.
        let Some(j) = read.len().checked_sub(2) else {
            continue;
        };
        let left_server = upstream.sent_at(round, j).unwrap();
        let saved_words = read
            .iter()
            .take_while(|&&at| at + CHECKPOINT_EVERY <= left_server)
            .count();
        let min_streamed = MIN_STREAMED + MIN_STREAMED_STEP * (round as u32 - 1);
        if saved_words >= MIN_SAVED_WORDS && read[0].elapsed() >= min_streamed {
            let saved = (0..saved_words).map(|i| slow_word(round, i)).collect();
            return Streamed {
                seen,
                saved,
                last_event_id,
            };
        }
    }
}

// ---------------------------------------------------------------------------------------
// The scenario

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
        assert_eq!(world.upstream.requests().len(), expected);
    })
    .await
    .expect("the scenario ends within its limit");
}

/// One scripted model, one data directory, one session, across every restart; and
/// what the session's path and runs must be, built up round by round.
struct World {
    // Field order is drop order: the gateway dies before its directory is removed.
    gateway: Gateway,
    api: Api,
    session: String,
    upstream: Upstream,
    sandbox: Sandbox,
    path: Vec<(String, String, Option<String>)>,
    runs: Vec<(String, Option<String>)>,
    last_event_id: u64,
}

/// A run the gateway lost, and what the test knew before the kill.
struct Lost {
    run_id: String,
    /// The session's entries read while the answer streamed.
    committed: Vec<Value>,
    /// Queued before the kill (in [`FOLLOW_UP_ROUNDS`]).
    follow_up: Option<String>,
    streamed: Streamed,
}

impl World {
    async fn new() -> World {
        let upstream = Upstream::start();
        let sandbox = Sandbox::new();
        let gateway = start_gateway(&sandbox, &sandbox.path("data"));
        let api = set_up(&gateway, &upstream).await;
        let (status, session) = api
            .call(Method::POST, "/api/v1/sessions", Some(json!({})))
            .await;
        assert_eq!(status, StatusCode::CREATED, "{session}");
        World {
            gateway,
            api,
            session: session["id"].as_str().unwrap().to_string(),
            upstream,
            sandbox,
            path: Vec::new(),
            runs: Vec::new(),
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
        let session = self.session.clone();
        let mut events = self.api.events(&session).await;
        let question = format!("round {round}: what time is it?");
        let posted = self.api.say(&session, &question).await;
        assert_eq!(posted["status"], "started", "{posted}");
        let run_id = posted["run_id"].as_str().unwrap().to_string();

        let before_text = events
            .until(|e| e.kind == "text_delta" && e.data["run_id"] == run_id)
            .await;
        self.see_event_numbers(&before_text);
        let committed = self.api.entries(&session).await;
        self.path.extend([
            shaped("user", &question, None),
            shaped(
                "tool_call",
                &format!("current_time(\"call_r{round}\")"),
                None,
            ),
            shaped(
                "tool_result",
                &format!("\"call_r{round}\" error=false"),
                None,
            ),
        ]);
        assert_eq!(committed.iter().map(shape).collect::<Vec<_>>(), self.path);

        let follow_up = FOLLOW_UP_ROUNDS
            .contains(&round)
            .then(|| format!("and after round {round}?"));
        if let Some(text) = &follow_up {
            let queued = self.api.say(&session, text).await;
            assert_eq!(queued["status"], "queued", "{queued}");
            assert_eq!(queued["message"]["delivery"], "follow_up");
        }

        let streamed = stream_until_saved(
            &mut events,
            before_text,
            &self.upstream,
            round,
            &run_id,
            self.last_event_id,
        )
        .await;
        self.last_event_id = streamed.last_event_id;
        kill_hard(&mut self.gateway);
        Lost {
            run_id,
            committed,
            follow_up,
            streamed,
        }
    }

    /// `mosaic serve` again, on the same data directory.
    fn restart(&mut self) {
        self.gateway = start_gateway(&self.sandbox, &self.sandbox.path("data"));
        self.api.url = self.gateway.url.clone();
        assert!(
            self.gateway
                .log()
                .contains("closed a run interrupted by the gateway stopping"),
            "recovery says what it did:\n{}",
            self.gateway.log()
        );
    }

    /// The lost run is closed as the gateway stopping, every entry committed before the
    /// kill is there byte for byte, the text that had streamed is an answer marked
    /// interrupted, and a queued follow-up got its run. Returns the kept text.
    async fn check_recovery(&mut self, round: usize, lost: &Lost) -> String {
        let session = self.session.clone();
        self.runs
            .push(("interrupted".into(), Some("gateway_stopped".into())));
        if lost.follow_up.is_some() {
            self.runs.push(("completed".into(), Some("stop".into())));
        }
        let expected_runs = self.runs.len();
        let listed = self
            .api
            .runs_until(&session, |r| {
                r.len() == expected_runs && r.iter().all(|run| run["status"] != "running")
            })
            .await;
        let run = run_with_id(&listed, &lost.run_id);
        assert_eq!(run["status"], "interrupted", "{run}");
        assert_eq!(run["stop_reason"], "gateway_stopped", "{run}");
        assert!(run["finished_at"].is_string(), "{run}");

        let entries = self.api.entries(&session).await;
        let committed = &lost.committed;
        assert!(entries.len() > committed.len(), "{entries:#?}");
        assert_eq!(entries[..committed.len()], committed[..]);
        let partial = &entries[committed.len()];
        let kept = partial["body"]["text"].as_str().unwrap().to_string();
        assert_eq!(partial["parent_id"], committed.last().unwrap()["id"]);
        assert_eq!(partial["body"]["type"], "assistant");
        assert_eq!(partial["body"]["stop_reason"], "interrupted");
        assert_eq!(partial["body"]["model"], MODEL_ROUTE);
        assert!(
            slow_answer(round).starts_with(&kept),
            "the kept text is what streamed: {kept:?}"
        );
        let streamed = &lost.streamed;
        assert!(
            kept.starts_with(&streamed.saved),
            "the kept text holds every word a checkpoint had saved\n  kept:  {kept:?}\n  \
             saved: {:?}\n  seen:  {:?}",
            streamed.saved,
            streamed.seen
        );
        eprintln!(
            "round {round}: killed after {} words read, {} provably saved; {} kept",
            streamed.seen.matches(' ').count(),
            streamed.saved.matches(' ').count(),
            kept.matches(' ').count()
        );
        self.path
            .push(shaped("assistant", &kept, Some("interrupted")));

        if let Some(follow_up) = &lost.follow_up {
            self.path.extend([
                shaped("user", follow_up, None),
                shaped("assistant", &quick_answer(follow_up), Some("stop")),
            ]);
            let request = self.upstream.request_for(&Reply::Quick {
                to: follow_up.clone(),
            });
            assert!(
                answer_precedes(&request, &kept, follow_up),
                "the follow-up's model call has the kept text as context: {request:#}"
            );
            let state = self
                .api
                .get(&format!("/api/v1/sessions/{session}/state"))
                .await;
            assert_eq!(state["queue"], json!([]), "nothing waits any more");
        }
        assert_eq!(
            entries.iter().map(shape).collect::<Vec<_>>(),
            self.path,
            "the session's path after restart {round}"
        );
        kept
    }

    /// The session goes on: a new message gets a whole answer, the model seeing the
    /// kept text (and the follow-up's answer after it) as context.
    async fn go_on(&mut self, round: usize, lost: &Lost, kept: &str) {
        let session = self.session.clone();
        let mut events = self.api.events(&session).await;
        let next = format!("go on after round {round}");
        let posted = self.api.say(&session, &next).await;
        assert_eq!(posted["status"], "started", "{posted}");
        let run_id = posted["run_id"].as_str().unwrap().to_string();
        let seen = events
            .until(|e| e.kind == "run_finished" && e.data["run"]["id"] == run_id)
            .await;
        self.see_event_numbers(&seen);
        let finished = &seen.last().unwrap().data["run"];
        assert_eq!(finished["status"], "completed", "{finished}");
        assert_eq!(finished["stop_reason"], "stop", "{finished}");
        self.runs.push(("completed".into(), Some("stop".into())));
        self.path.extend([
            shaped("user", &next, None),
            shaped("assistant", &quick_answer(&next), Some("stop")),
        ]);

        let request = self
            .upstream
            .request_for(&Reply::Quick { to: next.clone() });
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

        let entries = self.api.entries(&session).await;
        assert_eq!(entries.iter().map(shape).collect::<Vec<_>>(), self.path);
        let listed: Vec<(String, Option<String>)> = self
            .api
            .runs(&session)
            .await
            .iter()
            .map(|r| {
                (
                    r["status"].as_str().unwrap().to_string(),
                    r["stop_reason"].as_str().map(str::to_string),
                )
            })
            .collect();
        assert_eq!(listed, self.runs, "the session's runs after round {round}");
    }
}
