//! End-to-end tests of `mosaic run`, `mosaic chat` and the run commands of `mosaic
//! sessions`: a real gateway whose default agent routes to `mock/test-model`, the
//! scripted Chat Completions model of `mosaic-test-support`. It answers from the
//! request's last message, so concurrent runs cannot take each other's answers: it
//! echoes a user's message ("You said: …"), calls `current_time` when asked "time?",
//! fails on "FAIL", streams slowly on "slow", and holds its answer on "hold".

#![allow(clippy::unwrap_used, clippy::expect_used)]

// The harness is shared with the other test binaries; not all of it is used here.
#[allow(dead_code)]
mod support;

use std::io::{Read, Write};
use std::process::{Child, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use mosaic_api::{EntryBody, NumberedEvent, RunStatus, SessionEvent};
use mosaic_client::LiveEvent;
use mosaic_test_support::chat::{ChatModel, Reply, Turn, USAGE};
use pretty_assertions::assert_eq;
use serde_json::{json, Value};

use crate::support::{mosaic, wait_with_deadline, Identity, World};

/// The pause before each piece but the first of a slow echo: the follow-up typed once
/// the first piece shows has 1.6 s to be queued before the answer ends.
const SLOW: Duration = Duration::from_millis(800);
/// The same for a held echo: longer than any test waits.
const HOLD: Duration = Duration::from_secs(30);

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

/// `text` in three pieces, as the model streams its answers.
fn thirds(text: &str) -> Vec<String> {
    let chars: Vec<char> = text.chars().collect();
    let third = chars.len().div_ceil(3);
    chars
        .chunks(third)
        .map(|piece| piece.iter().collect())
        .collect()
}

/// "You said: `text`." in three pieces, the first at once, each other after `pause`.
fn echo(text: &str, pause: Duration) -> Reply {
    let pieces = thirds(&format!("You said: {text}."));
    let (first, rest) = pieces.split_at(1);
    rest.iter().fold(Reply::text(first), |reply, piece| {
        reply.then_pause(pause).then_text(&[piece])
    })
}

/// What the model answers, by the request's last message (see the module's doc); a
/// tool's result gets a last word on the time, or on its refusal.
fn reply(last: &Turn) -> Reply {
    let text = last.text.as_str();
    if last.role == "tool" {
        let answer = if text.contains("declined") {
            "I may not look at the clock."
        } else {
            "The time is now."
        };
        Reply::text(&thirds(answer))
    } else if text.contains("FAIL") {
        Reply::error(500, "scripted outage")
    } else if text.contains("time?") {
        Reply::tool_call("call_1", "current_time", "{}")
    } else if text.contains("slow") {
        echo(text, SLOW)
    } else if text.contains("hold") {
        echo(text, HOLD)
    } else {
        echo(text, Duration::ZERO)
    }
}

/// A gateway with the admin logged in, a gateway provider `mock` over `model`, and the
/// admin's default agent answering through `mock/test-model`.
fn world_with_mock(model: &ChatModel) -> World {
    World::new().with_scripted_model(&model.base_url)
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
    let model = ChatModel::start(reply);
    let world = world_with_mock(&model);
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
        answer.stderr.contains(&format!(
            "tokens: {} in (0 cached), {} out, 1 model call(s)",
            USAGE.0, USAGE.1
        )),
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
    let sent = model.requests().pop().unwrap();
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
    let model = ChatModel::start(reply);
    let world = world_with_mock(&model);

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
    let model = ChatModel::start(reply);
    let world = world_with_mock(&model);

    let out = world.admin.run(&["run", "what is the time?"]).ok();
    assert_eq!(out.stdout, "The time is now.\n");
    let stderr: Vec<&str> = out.stderr.lines().collect();
    assert_eq!(stderr, vec!["→ current_time {}", "← ok"], "{out}");
    let requests = model.requests();
    assert_eq!(requests.len(), 2);
    let tool = &requests[1]["messages"].as_array().unwrap().last().unwrap()["content"];
    assert!(tool.as_str().unwrap().contains("\"utc\""), "{tool}");
}

#[test]
fn a_failing_model_fails_the_run_with_exit_11() {
    let model = ChatModel::start(reply);
    let world = world_with_mock(&model);

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
    let model = ChatModel::start(reply);
    let world = world_with_mock(&model);
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
    let model = ChatModel::start(reply);
    let world = world_with_mock(&model);
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
    let refusal = model.requests()[1]["messages"]
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
    let model = ChatModel::start(reply);
    let world = world_with_mock(&model);

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
    let model = ChatModel::start(reply);
    let world = world_with_mock(&model);

    let out = world
        .admin
        .run_with_stdin(&["chat"], "first question\n\nsecond question\n")
        .ok();
    assert_eq!(
        out.stdout,
        "You said: first question.\nYou said: second question.\n"
    );
    assert!(out.stderr.starts_with("session "), "{out}");
    let last = model.requests().pop().unwrap();
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
    let model = ChatModel::start(reply);
    let world = world_with_mock(&model);

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
    let requests = model.requests();
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
    let model = ChatModel::start(reply);
    let world = world_with_mock(&model);
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
