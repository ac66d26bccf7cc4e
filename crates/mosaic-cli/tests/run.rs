//! End-to-end tests of `mosaic run`, `mosaic chat` and the run commands of `mosaic
//! sessions`: a real gateway whose default agent routes to `mock/test-model`, a scripted
//! OpenAI Chat Completions server on loopback. The server answers from what it is sent,
//! so concurrent runs cannot take each other's answers: it echoes the last user message
//! ("You said: …"), calls `current_time` when asked "time?", fails on "FAIL", streams
//! slowly on "slow", and holds its answer on "hold".

#![allow(clippy::unwrap_used, clippy::expect_used)]

// The harness is shared with the other test binaries; not all of it is used here.
#[allow(dead_code)]
mod support;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::process::{Child, Stdio};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use mosaic_api::{EntryBody, NumberedEvent, RunStatus, SessionEvent};
use mosaic_client::LiveEvent;
use pretty_assertions::assert_eq;
use serde_json::{json, Value};

use crate::support::{mosaic, wait_with_deadline, Identity, World};

const MODEL: &str = "test-model";

/// The scripted upstream; every chat completion request body is recorded.
struct Upstream {
    addr: SocketAddr,
    requests: Arc<Mutex<Vec<Value>>>,
}

impl Upstream {
    fn start() -> Upstream {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let upstream = Upstream {
            addr: listener.local_addr().unwrap(),
            requests: Arc::default(),
        };
        let requests = upstream.requests.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let requests = requests.clone();
                std::thread::spawn(move || serve(stream, &requests));
            }
        });
        upstream
    }

    fn requests(&self) -> Vec<Value> {
        self.requests.lock().unwrap().clone()
    }
}

/// The (role, text) of each message the model was sent, the system prompt left out.
fn conversation(request: &Value) -> Vec<(String, String)> {
    request["messages"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|m| m["role"] != "system")
        .map(|m| {
            let text = match &m["content"] {
                Value::String(s) => s.clone(),
                Value::Null => String::new(),
                other => other.to_string(),
            };
            (m["role"].as_str().unwrap().to_string(), text)
        })
        .collect()
}

fn chunk(delta: Value, finish: Value) -> Value {
    json!({"id": "chatcmpl-1", "object": "chat.completion.chunk", "model": MODEL,
        "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]})
}

/// A streamed text answer in three pieces.
fn text_chunks(text: &str) -> Vec<Value> {
    let chars: Vec<char> = text.chars().collect();
    let third = chars.len().div_ceil(3);
    let mut out = vec![chunk(
        json!({"role": "assistant", "content": ""}),
        Value::Null,
    )];
    out.extend(chars.chunks(third).map(|piece| {
        chunk(
            json!({"content": piece.iter().collect::<String>()}),
            Value::Null,
        )
    }));
    out.push(chunk(json!({}), json!("stop")));
    out
}

fn tool_call_chunks() -> Vec<Value> {
    vec![
        chunk(
            json!({"role": "assistant", "tool_calls": [{"index": 0, "id": "call_1",
                "type": "function", "function": {"name": "current_time", "arguments": ""}}]}),
            Value::Null,
        ),
        chunk(
            json!({"tool_calls": [{"index": 0, "function": {"arguments": "{}"}}]}),
            Value::Null,
        ),
        chunk(json!({}), json!("tool_calls")),
    ]
}

fn serve(stream: TcpStream, requests: &Mutex<Vec<Value>>) {
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    let mut request_line = String::new();
    if reader.read_line(&mut request_line).is_err() || request_line.is_empty() {
        return;
    }
    let path = request_line
        .split_whitespace()
        .nth(1)
        .unwrap_or_default()
        .to_string();
    let mut length = 0;
    loop {
        let mut line = String::new();
        reader.read_line(&mut line).unwrap();
        let line = line.trim_end();
        if line.is_empty() {
            break;
        }
        let (name, value) = line.split_once(':').unwrap();
        if name.eq_ignore_ascii_case("content-length") {
            length = value.trim().parse().unwrap();
        }
    }
    let mut body = vec![0; length];
    reader.read_exact(&mut body).unwrap();
    let mut out = stream;
    if path != "/v1/chat/completions" {
        let list = json!({"object": "list", "data": [{"id": MODEL, "object": "model"}]});
        let list = list.to_string();
        let _ = write!(
            out,
            "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\
             connection: close\r\n\r\n{list}",
            list.len()
        );
        return;
    }
    let body: Value = serde_json::from_slice(&body).unwrap();
    requests.lock().unwrap().push(body.clone());
    let (role, last) = conversation(&body).pop().unwrap();
    let (chunks, pace) = if role == "tool" {
        let text = if last.contains("declined") {
            "I may not look at the clock."
        } else {
            "The time is now."
        };
        (text_chunks(text), Duration::ZERO)
    } else if last.contains("FAIL") {
        let error = json!({"error": {"message": "scripted outage", "type": "server_error"}});
        let error = error.to_string();
        let _ = write!(
            out,
            "HTTP/1.1 500 Internal Server Error\r\ncontent-type: application/json\r\n\
             content-length: {}\r\nconnection: close\r\n\r\n{error}",
            error.len()
        );
        return;
    } else if last.contains("time?") {
        (tool_call_chunks(), Duration::ZERO)
    } else if last.contains("slow") {
        (
            text_chunks(&format!("You said: {last}.")),
            Duration::from_millis(400),
        )
    } else if last.contains("hold") {
        (
            text_chunks(&format!("You said: {last}.")),
            Duration::from_secs(30),
        )
    } else {
        (text_chunks(&format!("You said: {last}.")), Duration::ZERO)
    };
    let _ = write!(
        out,
        "HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ncache-control: no-cache\r\n\
         connection: close\r\n\r\n"
    );
    let usage = json!({"id": "chatcmpl-1", "object": "chat.completion.chunk", "model": MODEL,
        "choices": [], "usage": {"prompt_tokens": 10, "completion_tokens": 5, "total_tokens": 15}});
    for (i, event) in chunks.iter().chain([&usage]).enumerate() {
        // The first two chunks (the role, the first piece) go at once; then the pace.
        if i >= 2 {
            std::thread::sleep(pace);
        }
        if write!(out, "data: {event}\n\n").is_err() || out.flush().is_err() {
            return;
        }
    }
    let _ = write!(out, "data: [DONE]\n\n");
    let _ = out.flush();
}

/// A gateway with the admin logged in, a gateway provider `mock` over `upstream`, and
/// the admin's default agent answering through `mock/test-model`.
fn world_with_mock(upstream: &Upstream) -> World {
    let world = World::new();
    world
        .admin
        .run_with_stdin(
            &[
                "providers",
                "add",
                "mock",
                "--kind",
                "openai-compatible",
                "--base-url",
                &format!("http://{}/v1", upstream.addr),
                "--gateway",
                "--api-key-stdin",
            ],
            "sk-mock\n",
        )
        .ok();
    world
        .admin
        .run(&["agents", "update", "default", "--route", "mock/test-model"])
        .ok();
    world
}

fn events_of(stdout: &str) -> Vec<NumberedEvent> {
    stdout
        .lines()
        .map(|line| serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line}")))
        .collect()
}

/// A `mosaic` process with piped stdio, its output read as it comes.
struct Live {
    child: Child,
    stdout: mpsc::Receiver<Vec<u8>>,
    seen: Vec<u8>,
    stderr: std::thread::JoinHandle<String>,
}

impl Live {
    fn spawn(who: &Identity, args: &[&str]) -> Live {
        let mut child = mosaic(&who.root, &who.creds, args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut stdout = child.stdout.take().unwrap();
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let mut buf = [0u8; 512];
            while let Ok(n) = stdout.read(&mut buf) {
                if n == 0 || tx.send(buf[..n].to_vec()).is_err() {
                    break;
                }
            }
        });
        let stderr = support::drain(child.stderr.take().unwrap());
        Live {
            child,
            stdout: rx,
            seen: Vec::new(),
            stderr,
        }
    }

    fn write(&mut self, text: &str) {
        let stdin = self.child.stdin.as_mut().unwrap();
        stdin.write_all(text.as_bytes()).unwrap();
        stdin.flush().unwrap();
    }

    /// Wait until stdout contains `text`.
    fn wait_for(&mut self, text: &str) {
        let deadline = Instant::now() + Duration::from_secs(30);
        while !String::from_utf8_lossy(&self.seen).contains(text) {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.stdout.recv_timeout(left) {
                Ok(bytes) => self.seen.extend(bytes),
                Err(e) => panic!(
                    "no {text:?} on stdout ({e}); so far {:?}",
                    String::from_utf8_lossy(&self.seen)
                ),
            }
        }
    }

    /// Wait for the process to end: its exit code, stdout and stderr.
    fn finish(mut self) -> (Option<i32>, String, String) {
        drop(self.child.stdin.take());
        let status = wait_with_deadline(&mut self.child, Duration::from_secs(60));
        while let Ok(bytes) = self.stdout.recv_timeout(Duration::from_secs(5)) {
            self.seen.extend(bytes);
        }
        let stderr = self.stderr.join().unwrap();
        let stdout = String::from_utf8_lossy(&self.seen).into_owned();
        let status = status.unwrap_or_else(|| panic!("still running:\n{stdout}\n{stderr}"));
        (status.code(), stdout, stderr)
    }
}

// --- mosaic run ------------------------------------------------------------------------------

#[test]
fn run_prints_the_streamed_answer_and_continues_a_session() {
    let upstream = Upstream::start();
    let world = world_with_mock(&upstream);
    let admin = &world.admin;

    let answer = admin
        .run(&["run", "hello there", "--title", "Greeting", "--verbose"])
        .ok();
    assert_eq!(answer.stdout, "You said: hello there.\n");
    assert!(
        answer.stderr.contains("answered by mock/test-model"),
        "{answer}"
    );
    assert!(
        answer
            .stderr
            .contains("tokens: 10 in (0 cached), 5 out, 1 model call(s)"),
        "{answer}"
    );
    let session = answer
        .stderr
        .lines()
        .find_map(|l| l.strip_prefix("session "))
        .unwrap_or_else(|| panic!("{answer}"))
        .to_string();
    let shown = admin.run(&["sessions", "show", &session, "--json"]).ok();
    assert_eq!(
        shown.json()["items"].as_array().unwrap().len(),
        2,
        "{shown}"
    );

    // Quiet without --verbose; the message may come from standard input.
    let again = admin
        .run_with_stdin(&["run", "--session", &session, "-"], "and again")
        .ok();
    assert_eq!(again.stdout, "You said: and again.\n");
    assert_eq!(again.stderr, "");
    let sent = upstream.requests().pop().unwrap();
    assert_eq!(
        conversation(&sent),
        vec![
            ("user".into(), "hello there".into()),
            ("assistant".into(), "You said: hello there.".into()),
            ("user".into(), "and again".into()),
        ]
    );

    let runs = admin
        .run(&["sessions", "runs", &session, "--json"])
        .ok()
        .json();
    let statuses: Vec<&str> = runs["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["status"].as_str().unwrap())
        .collect();
    assert_eq!(statuses, vec!["completed", "completed"]);
    let table = admin.run(&["sessions", "runs", &session]).ok();
    assert!(table.stdout.starts_with("ID  "), "{table}");
    let state = admin
        .run(&["sessions", "state", &session, "--json"])
        .ok()
        .json();
    assert_eq!(state["queue"], json!([]));
    assert!(state.get("run").is_none(), "{state}");
    let none = admin.run(&["sessions", "interrupt", &session]).ok();
    assert!(none.stderr.contains("no run was active"), "{none}");
    admin
        .run(&["sessions", "approve", &session, "no-such-call"])
        .expect_code(5);

    // A retry of the first answer: from the user message before it, a new branch.
    let first = shown.json()["items"][0]["id"].as_str().unwrap().to_string();
    let retried = admin
        .run(&["sessions", "retry", &session, "--from", &first])
        .ok();
    assert_eq!(retried.stdout, "You said: hello there.\n");
    let branches = admin
        .run(&["sessions", "branches", &session, "--json"])
        .ok()
        .json();
    assert_eq!(branches["items"].as_array().unwrap().len(), 2, "{branches}");

    admin.run(&["run", ""]).expect_code(2);
    admin
        .run(&["run", "hi", "--session", "nope"])
        .expect_code(5);
}

#[test]
fn run_json_prints_numbered_events_ending_with_its_run_finished() {
    let upstream = Upstream::start();
    let world = world_with_mock(&upstream);

    let out = world.admin.run(&["run", "--json", "count"]).ok();
    let events = events_of(&out.stdout);
    let ids: Vec<u64> = events.iter().map(|e| e.id.expect("numbered")).collect();
    assert!(
        ids.windows(2).all(|w| w[0] < w[1]),
        "ids rise: {ids:?}\n{out}"
    );
    let kinds: Vec<&str> = events.iter().map(|e| e.event.kind()).collect();
    assert_eq!(kinds.first(), Some(&"entry"), "the user message: {kinds:?}");
    assert_eq!(kinds.last(), Some(&"run_finished"), "{kinds:?}");
    let text: String = events
        .iter()
        .filter_map(|e| match &e.event {
            SessionEvent::TextDelta { text, .. } => Some(text.as_str()),
            _ => None,
        })
        .collect();
    assert_eq!(text, "You said: count.");
    let SessionEvent::RunFinished { run } = &events.last().unwrap().event else {
        unreachable!()
    };
    assert_eq!(run.status, RunStatus::Completed);
    assert_eq!(out.stderr, "");
}

#[test]
fn a_tool_using_turn_shows_the_call_and_its_result_on_stderr() {
    let upstream = Upstream::start();
    let world = world_with_mock(&upstream);

    let out = world.admin.run(&["run", "what is the time?"]).ok();
    assert_eq!(out.stdout, "The time is now.\n");
    let stderr: Vec<&str> = out.stderr.lines().collect();
    assert_eq!(stderr, vec!["→ current_time {}", "← ok"], "{out}");
    let requests = upstream.requests();
    assert_eq!(requests.len(), 2);
    let tool = &requests[1]["messages"].as_array().unwrap().last().unwrap()["content"];
    assert!(tool.as_str().unwrap().contains("\"utc\""), "{tool}");
}

#[test]
fn a_failing_model_fails_the_run_with_exit_11() {
    let upstream = Upstream::start();
    let world = world_with_mock(&upstream);

    let out = world.admin.run(&["run", "FAIL please"]).expect_code(11);
    assert_eq!(out.stdout, "");
    assert!(out.stderr.contains("error: the run failed: "), "{out}");
    assert!(out.stderr.contains("500"), "{out}");
    // --json ends with the failed run too, and the same exit code.
    let json = world
        .admin
        .run(&["run", "--json", "FAIL again"])
        .expect_code(11);
    let events = events_of(&json.stdout);
    let SessionEvent::RunFinished { run } = &events.last().unwrap().event else {
        panic!("{json}")
    };
    assert_eq!(run.status, RunStatus::Failed);
}

#[test]
fn a_run_at_its_model_call_limit_exits_12() {
    let upstream = Upstream::start();
    let world = world_with_mock(&upstream);
    // The CLI sets no limits (yet): through the API, with the admin's saved token.
    let creds: toml::Value =
        toml::from_str(&std::fs::read_to_string(&world.admin.creds).unwrap()).unwrap();
    let token = creds["token"].as_str().unwrap().to_string();
    let url = format!("{}/api/v1/agents/", world.gateway.url);
    let agents = world.admin.run(&["agents", "list", "--json"]).ok().json();
    let id = agents["items"][0]["id"].as_str().unwrap().to_string();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let status = rt.block_on(async {
        reqwest::Client::new()
            .patch(format!("{url}{id}"))
            .bearer_auth(&token)
            .json(&json!({"limits": {"max_model_calls": 1}}))
            .send()
            .await
            .unwrap()
            .status()
    });
    assert!(status.is_success(), "{status}");

    let out = world.admin.run(&["run", "the time?"]).expect_code(12);
    assert!(
        out.stderr
            .contains("error: the run stopped at a limit (max_model_calls)"),
        "{out}"
    );
}

#[test]
fn approvals_are_declined_headless_unless_approve_is_given() {
    let upstream = Upstream::start();
    let world = world_with_mock(&upstream);
    let admin = &world.admin;
    admin
        .run(&[
            "agents",
            "update",
            "default",
            "--tool",
            "current_time=needs_approval",
        ])
        .ok();

    let declined = admin.run(&["run", "the time?"]).ok();
    assert_eq!(declined.stdout, "I may not look at the clock.\n");
    assert!(
        declined.stderr.contains("✗ declined current_time"),
        "{declined}"
    );
    assert!(declined.stderr.contains("--approve"), "{declined}");
    assert!(declined.stderr.contains("← error: "), "{declined}");
    let refusal = upstream.requests()[1]["messages"]
        .as_array()
        .unwrap()
        .last()
        .unwrap()["content"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(
        refusal.contains("headless"),
        "the model is told why: {refusal}"
    );

    let approved = admin.run(&["run", "--approve", "the time?"]).ok();
    assert_eq!(approved.stdout, "The time is now.\n");
    assert!(
        approved.stderr.contains("✓ approved current_time"),
        "{approved}"
    );
}

#[test]
fn ctrl_c_interrupts_the_run_and_exits_13() {
    let upstream = Upstream::start();
    let world = world_with_mock(&upstream);

    let mut live = Live::spawn(&world.admin, &["run", "hold on", "--verbose"]);
    // The first piece ("You sa"); the rest waits for 30 s.
    live.wait_for("You sa");
    let kill = std::process::Command::new("kill")
        .args(["-INT", &live.child.id().to_string()])
        .status()
        .unwrap();
    assert!(kill.success());
    let (code, stdout, stderr) = live.finish();
    assert_eq!(code, Some(13), "{stdout}\n{stderr}");
    assert_eq!(stdout, "You sa\n", "what streamed stays");
    assert!(
        stderr.contains("error: the run was interrupted"),
        "{stderr}"
    );
    let session = stderr
        .lines()
        .find_map(|l| l.strip_prefix("session "))
        .unwrap()
        .to_string();
    let runs = world
        .admin
        .run(&["sessions", "runs", &session, "--json"])
        .ok()
        .json();
    assert_eq!(runs["items"][0]["status"], "interrupted");
}

// --- mosaic chat -----------------------------------------------------------------------------

#[test]
fn chat_from_a_pipe_answers_each_line_then_exits() {
    let upstream = Upstream::start();
    let world = world_with_mock(&upstream);

    let out = world
        .admin
        .run_with_stdin(&["chat"], "first question\n\nsecond question\n")
        .ok();
    assert_eq!(
        out.stdout,
        "You said: first question.\nYou said: second question.\n"
    );
    assert!(out.stderr.starts_with("session "), "{out}");
    let last = upstream.requests().pop().unwrap();
    assert_eq!(
        conversation(&last),
        vec![
            ("user".into(), "first question".into()),
            ("assistant".into(), "You said: first question.".into()),
            ("user".into(), "second question".into()),
        ]
    );
}

#[test]
fn a_line_typed_during_a_slow_answer_runs_after_it() {
    let upstream = Upstream::start();
    let world = world_with_mock(&upstream);

    let mut live = Live::spawn(&world.admin, &["chat"]);
    live.write("a slow question\n");
    live.wait_for("You s");
    live.write("the follow-up\n/branches\n");
    let (code, stdout, stderr) = live.finish();
    assert_eq!(code, Some(0), "{stdout}\n{stderr}");
    assert_eq!(
        stdout,
        "You said: a slow question.\nYou said: the follow-up.\n"
    );
    assert!(
        stderr.contains("(queued, runs when this answer ends: the follow-up)"),
        "{stderr}"
    );
    let requests = upstream.requests();
    assert_eq!(requests.len(), 2);
    assert_eq!(
        conversation(&requests[1]),
        vec![
            ("user".into(), "a slow question".into()),
            ("assistant".into(), "You said: a slow question.".into()),
            ("user".into(), "the follow-up".into()),
        ]
    );
}

#[test]
fn chat_asks_for_approval_and_answers_it_from_a_command() {
    let upstream = Upstream::start();
    let world = world_with_mock(&upstream);
    world
        .admin
        .run(&[
            "agents",
            "update",
            "default",
            "--tool",
            "current_time=needs_approval",
        ])
        .ok();

    let mut live = Live::spawn(&world.admin, &["chat"]);
    live.write("the time?\n");
    // The request reaches stderr; answer it once it is there.
    let deadline = Instant::now() + Duration::from_secs(30);
    let session = loop {
        let sessions = world.admin.run(&["sessions", "list", "--json"]).ok().json();
        if let Some(id) = sessions["items"][0]["id"].as_str() {
            let state = world
                .admin
                .run(&["sessions", "state", id, "--json"])
                .ok()
                .json();
            if state["approvals"].as_array().is_some_and(|a| !a.is_empty()) {
                break id.to_string();
            }
        }
        assert!(Instant::now() < deadline, "no approval was asked for");
        std::thread::sleep(Duration::from_millis(100));
    };
    live.write("/approve\n");
    live.wait_for("The time is now.");
    let (code, stdout, stderr) = live.finish();
    assert_eq!(code, Some(0), "{stdout}\n{stderr}");
    assert!(
        stderr.contains("? current_time {} waits for your approval"),
        "{stderr}"
    );
    assert!(stderr.contains("(approved call call_1)"), "{stderr}");

    // The same session, followed from its first event, replays the whole story.
    let mut follow = Live::spawn(
        &world.admin,
        &["sessions", "follow", &session, "--after", "0", "--json"],
    );
    follow.wait_for("run_finished");
    follow.child.kill().unwrap();
    let (_, stdout, _) = follow.finish();
    let events: Vec<LiveEvent> = stdout
        .lines()
        .map(|line| serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line}")))
        .collect();
    assert_eq!(events[0].id, Some(1), "{stdout}");
    let tool_results = events.iter().filter(|e| {
        matches!(&e.event, SessionEvent::Entry { entry, .. }
            if matches!(&entry.body, EntryBody::ToolResult { is_error: false, .. }))
    });
    assert_eq!(tool_results.count(), 1, "{stdout}");
}
