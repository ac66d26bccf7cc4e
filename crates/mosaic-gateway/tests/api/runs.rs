//! Runs end to end: a real gateway, a scripted model server speaking the Chat
//! Completions stream, and SSE subscribers reading the session's numbered events.

use std::time::Duration;

use pretty_assertions::assert_eq;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use mosaic_test_support::scripted::{Answer, Scripted};

use crate::support::{chunk, scripted_model, Engine, Ev, Events, TestGateway};

/// A streamed text answer, one chunk a word, reporting the given token usage.
fn text(words: &[&str], input_tokens: u64, output_tokens: u64) -> Answer {
    let mut data = vec![chunk(json!({"role": "assistant", "content": ""}), None)];
    data.extend(words.iter().map(|w| chunk(json!({"content": w}), None)));
    data.push(chunk(json!({}), Some("stop")));
    data.push(
        json!({"choices": [], "usage": {"prompt_tokens": input_tokens, "completion_tokens": output_tokens}})
            .to_string(),
    );
    data.push("[DONE]".to_string());
    Answer::sse_data(&data)
}

/// An answer that calls one tool.
fn tool_call(id: &str, name: &str, arguments: &str) -> Answer {
    Answer::sse_data(&[
        chunk(
            json!({"tool_calls": [{"index": 0, "id": id, "type": "function",
                "function": {"name": name, "arguments": ""}}]}),
            None,
        ),
        chunk(
            json!({"tool_calls": [{"index": 0, "function": {"arguments": arguments}}]}),
            None,
        ),
        chunk(json!({}), Some("tool_calls")),
        json!({"choices": [], "usage": {"prompt_tokens": 40, "completion_tokens": 10}}).to_string(),
        "[DONE]".to_string(),
    ])
}

/// A user with a gateway-wide provider `mock` on the scripted server, whose default
/// agent answers through `mock/test-model` with the given tool policies and limits.
struct Setup {
    gw: TestGateway,
    token: String,
    upstream: Scripted,
}

impl Setup {
    async fn new(answers: Vec<Answer>, agent: Value) -> Setup {
        Self::on(Engine::Sqlite, answers, agent).await
    }

    async fn on(engine: Engine, answers: Vec<Answer>, agent: Value) -> Setup {
        let upstream = Scripted::start(answers).await;
        let gw = TestGateway::start_on(engine).await;
        let token = gw.admin("root").await;
        let base = format!("{}/v1", upstream.base_url);
        scripted_model(&gw, &token, &base, agent).await;
        Setup {
            gw,
            token,
            upstream,
        }
    }

    async fn session(&self) -> String {
        let (status, body) = self
            .gw
            .call(
                Method::POST,
                "/api/v1/sessions",
                Some(&self.token),
                Some(json!({})),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        body["id"].as_str().unwrap().to_string()
    }

    async fn post(&self, session: &str, body: Value) -> Value {
        let (status, answer) = self
            .gw
            .call(
                Method::POST,
                &format!("/api/v1/sessions/{session}/messages"),
                Some(&self.token),
                Some(body),
            )
            .await;
        assert_eq!(status, StatusCode::ACCEPTED, "{answer}");
        answer
    }

    async fn say(&self, session: &str, text: &str) -> Value {
        self.post(session, json!({"text": text})).await
    }

    async fn events(&self, session: &str) -> Events {
        Events::open(&self.gw, &self.token, session, None).await
    }

    async fn entries(&self, session: &str) -> Vec<Value> {
        let (status, body) = self
            .gw
            .call(
                Method::GET,
                &format!("/api/v1/sessions/{session}/entries"),
                Some(&self.token),
                None,
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        body["items"].as_array().unwrap().clone()
    }

    async fn get(&self, path: &str) -> Value {
        let (status, body) = self
            .gw
            .call(Method::GET, path, Some(&self.token), None)
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        body
    }

    async fn send(&self, method: Method, path: &str, body: Option<Value>) -> (StatusCode, Value) {
        self.gw.call(method, path, Some(&self.token), body).await
    }
}

/// The entry bodies of a path, as (type, main text).
fn shape(entries: &[Value]) -> Vec<(String, String)> {
    entries
        .iter()
        .map(|e| {
            let b = &e["body"];
            let t = b["type"].as_str().unwrap().to_string();
            let text = match t.as_str() {
                "user" | "assistant" => b["text"].as_str().unwrap().to_string(),
                "tool_call" => b["name"].as_str().unwrap().to_string(),
                "tool_result" => format!("error={}", b["is_error"]),
                "compaction" => b["summary"].as_str().unwrap().to_string(),
                _ => String::new(),
            };
            (t, text)
        })
        .collect()
}

fn s(t: &str, text: &str) -> (String, String) {
    (t.to_string(), text.to_string())
}

fn kinds(events: &[Ev]) -> Vec<&str> {
    events.iter().map(|e| e.kind.as_str()).collect()
}

fn finished_run(events: &[Ev]) -> Value {
    events
        .iter()
        .rev()
        .find(|e| e.kind == "run_finished")
        .map(|e| e.data["run"].clone())
        .expect("a run_finished event")
}

#[tokio::test]
async fn a_tool_using_turn_streams_commits_and_sends_the_result_back() {
    let setup = Setup::new(
        vec![
            tool_call("call_1", "current_time", "{}"),
            text(&["It is ", "noon."], 60, 5),
        ],
        json!({}),
    )
    .await;
    let session = setup.session().await;
    let mut events = setup.events(&session).await;
    let posted = setup.say(&session, "What time is it?").await;
    assert_eq!(posted["status"], "started");
    let run_id = posted["run_id"].as_str().unwrap().to_string();
    let seen = events.until_finished().await;

    // Numbered, strictly rising, all for this run.
    let ids: Vec<u64> = seen.iter().map(|e| e.id.unwrap()).collect();
    assert!(ids.windows(2).all(|w| w[1] == w[0] + 1), "{ids:?}");
    assert_eq!(
        kinds(&seen),
        vec![
            "entry",
            "run_started",
            "model_call",
            "entry",
            "entry",
            "model_call",
            "text_delta",
            "text_delta",
            "entry",
            "run_finished"
        ]
    );
    let run = finished_run(&seen);
    assert_eq!(run["id"], json!(run_id));
    assert_eq!(run["status"], "completed");
    assert_eq!(run["stop_reason"], "stop");
    assert_eq!(run["model_calls"], 2);
    assert_eq!(run["usage"]["input_tokens"], 100);
    assert_eq!(run["usage"]["output_tokens"], 15);

    assert_eq!(
        shape(&setup.entries(&session).await),
        vec![
            s("user", "What time is it?"),
            s("tool_call", "current_time"),
            s("tool_result", "error=false"),
            s("assistant", "It is noon."),
        ]
    );
    let result = &setup.entries(&session).await[2]["body"]["output"];
    let parsed: Value = serde_json::from_str(result.as_str().unwrap()).unwrap();
    assert!(parsed["unix"].as_u64().unwrap() > 1_700_000_000);

    // The model was offered the agent's allowed tools, and got the result back.
    let requests = setup.upstream.received();
    assert_eq!(requests.len(), 2);
    let tools: Vec<&str> = requests[0].body["tools"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["function"]["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        tools,
        vec![
            "current_time",
            "remember",
            "recall",
            "update_memory",
            "search_brain",
            "get_brain_item",
            "list_tasks",
            "create_task",
            "update_task",
            "create_note",
            "http_fetch"
        ]
    );
    let second = requests[1].body["messages"].as_array().unwrap();
    let last = second.last().unwrap();
    assert_eq!(last["role"], "tool");
    assert_eq!(last["tool_call_id"], "call_1");
    assert_eq!(second[second.len() - 2]["tool_calls"][0]["id"], "call_1");

    let runs = setup.get(&format!("/api/v1/sessions/{session}/runs")).await;
    assert_eq!(runs["items"][0]["status"], "completed");
}

#[tokio::test]
async fn arguments_that_fail_the_schema_and_unknown_tools_go_back_to_the_model() {
    let setup = Setup::new(
        vec![
            tool_call("c1", "current_time", r#"{"zone": "UTC"}"#),
            tool_call("c2", "rm_rf", "{}"),
            tool_call("c3", "current_time", "{not json"),
            text(&["Sorry."], 10, 2),
        ],
        json!({}),
    )
    .await;
    let session = setup.session().await;
    let mut events = setup.events(&session).await;
    setup.say(&session, "time?").await;
    events.until_finished().await;
    let entries = setup.entries(&session).await;
    let results: Vec<(bool, String)> = entries
        .iter()
        .filter(|e| e["body"]["type"] == "tool_result")
        .map(|e| {
            (
                e["body"]["is_error"].as_bool().unwrap(),
                e["body"]["output"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    assert_eq!(results.len(), 3);
    assert!(results.iter().all(|(err, _)| *err));
    assert!(results[0].1.contains("schema"), "{}", results[0].1);
    assert!(
        results[1].1.contains("no tool named 'rm_rf'"),
        "{}",
        results[1].1
    );
    assert!(results[2].1.contains("not valid JSON"), "{}", results[2].1);
    // The model saw each refusal as the tool's answer.
    let last = setup.upstream.received().pop().unwrap();
    let msgs = last.body["messages"].as_array().unwrap();
    assert!(msgs
        .iter()
        .any(|m| m["role"] == "tool" && m["content"].as_str().unwrap().contains("schema")));
}

#[tokio::test]
async fn an_approval_is_asked_of_every_subscriber_and_any_of_them_answers() {
    let setup = Setup::new(
        vec![
            tool_call("call_a", "current_time", "{}"),
            text(&["Done."], 10, 2),
            tool_call("call_b", "current_time", "{}"),
            text(&["Fine."], 10, 2),
        ],
        json!({"tools": [{"name": "current_time", "policy": "needs_approval"},
                         {"name": "http_fetch", "policy": "denied"}]}),
    )
    .await;
    let session = setup.session().await;
    let mut first = setup.events(&session).await;
    let mut second = setup.events(&session).await;
    setup.say(&session, "time?").await;
    let asked = first.until(|e| e.kind == "approval_needed").await;
    let approval = &asked.last().unwrap().data["approval"];
    assert_eq!(approval["call_id"], "call_a");
    assert_eq!(approval["name"], "current_time");
    second.until(|e| e.kind == "approval_needed").await;
    // The session's state lists it too.
    let state = setup
        .get(&format!("/api/v1/sessions/{session}/state"))
        .await;
    assert_eq!(state["approvals"][0]["call_id"], "call_a");
    assert_eq!(state["run"]["status"], "running");
    // Only allowed and approval-needing tools are offered.
    let offered = &setup.upstream.received()[0].body["tools"];
    assert_eq!(offered.as_array().unwrap().len(), 1);

    // The second client approves; an unknown call id is 404.
    let (status, _) = setup
        .send(
            Method::POST,
            &format!("/api/v1/sessions/{session}/approvals/nope"),
            Some(json!({"approve": true})),
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, body) = setup
        .send(
            Method::POST,
            &format!("/api/v1/sessions/{session}/approvals/call_a"),
            Some(json!({"approve": true})),
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{body}");
    let rest = first.until_finished().await;
    assert!(rest
        .iter()
        .any(|e| e.kind == "approval_resolved" && e.data["approved"] == json!(true)));
    second.until_finished().await;

    // Declined, with a note the model reads.
    setup.say(&session, "again?").await;
    first.until(|e| e.kind == "approval_needed").await;
    setup
        .send(
            Method::POST,
            &format!("/api/v1/sessions/{session}/approvals/call_b"),
            Some(json!({"approve": false, "note": "not now"})),
        )
        .await;
    first.until_finished().await;
    let results: Vec<Value> = setup
        .entries(&session)
        .await
        .into_iter()
        .filter(|e| e["body"]["type"] == "tool_result")
        .collect();
    assert_eq!(results[0]["body"]["is_error"], json!(false));
    assert_eq!(results[1]["body"]["is_error"], json!(true));
    assert_eq!(
        results[1]["body"]["output"],
        "the user declined this tool call: not now"
    );
}

#[tokio::test]
async fn a_steer_joins_the_run_after_the_current_tool_call() {
    let setup = Setup::new(
        vec![
            // Slow enough that the steer arrives while the model is still answering.
            tool_call("c1", "current_time", "{}").with_delay(Duration::from_millis(600)),
            text(&["Answering the steer."], 10, 2),
        ],
        json!({}),
    )
    .await;
    let session = setup.session().await;
    let mut events = setup.events(&session).await;
    setup.say(&session, "first").await;
    events.until(|e| e.kind == "run_started").await;
    let queued = setup
        .post(
            &session,
            json!({"text": "actually, in UTC", "delivery": "steer"}),
        )
        .await;
    assert_eq!(queued["status"], "queued");
    assert_eq!(queued["message"]["delivery"], "steer");
    let seen = events.until_finished().await;
    assert_eq!(
        seen.iter().filter(|e| e.kind == "run_finished").count(),
        1,
        "one run"
    );
    assert!(seen.iter().any(|e| e.kind == "queued"));
    assert_eq!(
        shape(&setup.entries(&session).await),
        vec![
            s("user", "first"),
            s("tool_call", "current_time"),
            s("tool_result", "error=false"),
            s("user", "actually, in UTC"),
            s("assistant", "Answering the steer."),
        ]
    );
    let second = &setup.upstream.received()[1].body["messages"];
    let last = second.as_array().unwrap().last().unwrap();
    assert_eq!(last["role"], "user");
    assert_eq!(last["content"], "actually, in UTC");
}

#[tokio::test]
async fn a_follow_up_waits_for_the_run_and_starts_the_next() {
    let setup = Setup::new(
        vec![
            text(&["one ", "two ", "three"], 10, 3).paced(Duration::from_millis(150)),
            text(&["Second answer."], 10, 2),
        ],
        json!({}),
    )
    .await;
    let session = setup.session().await;
    let mut events = setup.events(&session).await;
    setup.say(&session, "count").await;
    events.until(|e| e.kind == "text_delta").await;
    let queued = setup.say(&session, "and then?").await;
    assert_eq!(queued["status"], "queued");
    assert_eq!(queued["message"]["delivery"], "follow_up");
    let state = setup
        .get(&format!("/api/v1/sessions/{session}/state"))
        .await;
    assert_eq!(state["queue"][0]["text"], "and then?");
    let first = events.until_finished().await;
    let second = events.until_finished().await;
    assert_eq!(finished_run(&first)["status"], "completed");
    assert_eq!(finished_run(&second)["status"], "completed");
    assert_ne!(finished_run(&first)["id"], finished_run(&second)["id"]);
    assert_eq!(
        shape(&setup.entries(&session).await),
        vec![
            s("user", "count"),
            s("assistant", "one two three"),
            s("user", "and then?"),
            s("assistant", "Second answer."),
        ]
    );
    let state = setup
        .get(&format!("/api/v1/sessions/{session}/state"))
        .await;
    assert_eq!(state["queue"], json!([]));
    assert!(state.get("run").is_none());
}

#[tokio::test]
async fn an_interrupt_stops_the_run_and_keeps_what_streamed() {
    let words: Vec<String> = (0..40).map(|i| format!("w{i} ")).collect();
    let words: Vec<&str> = words.iter().map(String::as_str).collect();
    let setup = Setup::new(
        vec![
            text(&words, 10, 40).paced(Duration::from_millis(50)),
            text(&["After."], 10, 2),
        ],
        json!({}),
    )
    .await;
    let session = setup.session().await;
    let mut events = setup.events(&session).await;
    setup.say(&session, "talk").await;
    events
        .until(|e| e.kind == "text_delta" && e.data["text"] == "w2 ")
        .await;
    let (status, body) = setup
        .send(
            Method::POST,
            &format!("/api/v1/sessions/{session}/interrupt"),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert!(body["run_id"].is_string());
    let seen = events.until_finished().await;
    let run = finished_run(&seen);
    assert_eq!(run["status"], "interrupted");
    assert_eq!(run["stop_reason"], "interrupted");
    let streamed: String = seen
        .iter()
        .filter(|e| e.kind == "text_delta")
        .map(|e| e.data["text"].as_str().unwrap().to_string())
        .collect();
    let entries = setup.entries(&session).await;
    let answer = &entries.last().unwrap()["body"];
    assert_eq!(answer["type"], "assistant");
    assert_eq!(answer["stop_reason"], "interrupted");
    let kept = answer["text"].as_str().unwrap();
    assert!(kept.starts_with("w0 w1 w2 "), "{kept}");
    assert!(kept.ends_with(&streamed) && kept.len() < words.concat().len());

    // Nothing runs now; the session goes on normally.
    let (_, nothing) = setup
        .send(
            Method::POST,
            &format!("/api/v1/sessions/{session}/interrupt"),
            None,
        )
        .await;
    assert_eq!(nothing, json!({}));
    setup.say(&session, "go on").await;
    let seen = events.until_finished().await;
    assert_eq!(finished_run(&seen)["status"], "completed");
    let msgs = &setup.upstream.received()[1].body["messages"];
    assert!(
        msgs.to_string().contains("w0 w1 w2"),
        "the partial answer is context"
    );
}

#[tokio::test]
async fn a_retry_makes_a_branch_and_the_leaf_switches_between_them() {
    let setup = Setup::new(
        vec![
            text(&["First answer."], 10, 2),
            text(&["Second answer."], 10, 2),
            text(&["Edited answer."], 10, 2),
        ],
        json!({}),
    )
    .await;
    let session = setup.session().await;
    let mut events = setup.events(&session).await;
    let posted = setup.say(&session, "hello").await;
    let user_entry = posted["entry"]["id"].as_str().unwrap().to_string();
    events.until_finished().await;
    let first_answer = setup.entries(&session).await[1]["id"].clone();

    // Retry: a run from the user message, so a second answer beside the first.
    let (status, body) = setup
        .send(
            Method::POST,
            &format!("/api/v1/sessions/{session}/runs"),
            Some(json!({"from_entry_id": user_entry})),
        )
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    let seen = events.until_finished().await;
    assert_eq!(seen[0].kind, "leaf_changed");
    assert_eq!(
        shape(&setup.entries(&session).await),
        vec![s("user", "hello"), s("assistant", "Second answer.")]
    );
    // An edit of the first message: a new root.
    setup
        .post(&session, json!({"text": "hello, edited", "new_root": true}))
        .await;
    events.until_finished().await;
    assert_eq!(
        shape(&setup.entries(&session).await),
        vec![s("user", "hello, edited"), s("assistant", "Edited answer.")]
    );
    let branches = setup
        .get(&format!("/api/v1/sessions/{session}/branches"))
        .await;
    assert_eq!(branches["items"].as_array().unwrap().len(), 3);

    // Switch back to the first answer; subscribers hear of it.
    let (status, _) = setup
        .send(
            Method::PUT,
            &format!("/api/v1/sessions/{session}/leaf"),
            Some(json!({"entry_id": first_answer})),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let e = events.next().await;
    assert_eq!(e.kind, "leaf_changed");
    assert_eq!(e.data["leaf_id"], first_answer);
    assert_eq!(
        shape(&setup.entries(&session).await),
        vec![s("user", "hello"), s("assistant", "First answer.")]
    );
}

#[tokio::test]
async fn compaction_summarises_old_entries_and_keeps_them_stored() {
    let old = format!("OLDFACT {}", "a".repeat(400));
    let recent = format!("RECENT {}", "b".repeat(400));
    let setup = Setup::new(
        vec![
            text(&["ok one"], 100, 2),
            text(&["SUMMARY: they said OLDFACT."], 100, 10),
            text(&["ok two"], 100, 2),
        ],
        // Without `remember` there is no memory flush before the summary (that is
        // memory_tools' subject).
        json!({"limits": {"context_window": 256}, "system_prompt": "sys",
            "tools": [{"name": "current_time", "policy": "allowed"}]}),
    )
    .await;
    let session = setup.session().await;
    let mut events = setup.events(&session).await;
    setup.say(&session, &old).await;
    events.until_finished().await;
    setup.say(&session, &recent).await;
    let seen = events.until_finished().await;
    assert_eq!(finished_run(&seen)["status"], "completed");

    let requests = setup.upstream.received();
    assert_eq!(requests.len(), 3);
    let summarise = requests[1].body["messages"].to_string();
    assert!(
        summarise.contains("Summarise the conversation"),
        "{summarise}"
    );
    assert!(summarise.contains("OLDFACT"));
    let after = requests[2].body["messages"].as_array().unwrap();
    assert!(after[0]["content"]
        .as_str()
        .unwrap()
        .contains("SUMMARY: they said OLDFACT."));
    let rest = serde_json::to_string(&after[1..]).unwrap();
    assert!(
        !rest.contains("OLDFACT"),
        "the old message is compacted away"
    );
    assert!(rest.contains("RECENT"));

    // Everything stays stored and visible; the summary is an entry of its own.
    let kinds: Vec<String> = setup
        .entries(&session)
        .await
        .iter()
        .map(|e| e["body"]["type"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(
        kinds,
        vec!["user", "assistant", "user", "compaction", "assistant"]
    );
    assert!(seen
        .iter()
        .any(|e| e.kind == "entry" && e.data["entry"]["body"]["type"] == "compaction"));
}

#[tokio::test]
async fn run_limits_stop_with_a_clear_reason() {
    // Always a tool call: only a limit ends it.
    let calls = Setup::new(
        vec![tool_call("c", "current_time", "{}")],
        json!({"limits": {"max_model_calls": 2}}),
    )
    .await;
    let session = calls.session().await;
    let mut events = calls.events(&session).await;
    calls.say(&session, "loop").await;
    let run = finished_run(&events.until_finished().await);
    assert_eq!(run["status"], "limited");
    assert_eq!(run["stop_reason"], "max_model_calls");
    assert_eq!(run["model_calls"], 2);
    assert_eq!(calls.upstream.received().len(), 2);

    // 50 tokens a call against a budget of 120: the third call would exceed it.
    let budget = Setup::new(
        vec![tool_call("c", "current_time", "{}")],
        json!({"limits": {"token_budget": 120}}),
    )
    .await;
    let session = budget.session().await;
    let mut events = budget.events(&session).await;
    budget.say(&session, "loop").await;
    let run = finished_run(&events.until_finished().await);
    assert_eq!(run["status"], "limited");
    assert_eq!(run["stop_reason"], "token_budget");
    assert_eq!(run["model_calls"], 3);
    assert_eq!(run["usage"]["input_tokens"], 120);

    // Zero is refused.
    let (status, _) = budget
        .send(
            Method::POST,
            "/api/v1/agents",
            Some(json!({"name": "x", "limits": {"max_model_calls": 0}})),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn a_reconnect_with_last_event_id_gets_exactly_what_it_missed() {
    let setup = Setup::new(
        vec![text(&["a", "b", "c", "d"], 10, 4), text(&["e"], 10, 1)],
        json!({}),
    )
    .await;
    let session = setup.session().await;
    let mut whole = setup.events(&session).await;
    setup.say(&session, "go").await;
    let all = whole.until_finished().await;

    // Resume after the third event: the rest, in order, once.
    let third = all[2].id.unwrap();
    let mut resumed = Events::open(&setup.gw, &setup.token, &session, Some(third)).await;
    let replay = resumed.until_finished().await;
    assert_eq!(replay, all[3..].to_vec());
    assert!(resumed.try_next(Duration::from_millis(200)).await.is_none());

    // Resuming at the latest gets nothing old, then the new events, same as others.
    let latest = all.last().unwrap().id.unwrap();
    let mut caught_up = Events::open(&setup.gw, &setup.token, &session, Some(latest)).await;
    setup.say(&session, "more").await;
    let fresh = caught_up.until_finished().await;
    assert_eq!(fresh[0].id, Some(latest + 1));
    assert_eq!(fresh, whole.until_finished().await);
    assert_eq!(fresh, resumed.until_finished().await);

    // `?after=` does the same; a number never handed out means resync.
    let mut bogus = Events::open(&setup.gw, &setup.token, &session, Some(latest + 1000)).await;
    let e = bogus.next().await;
    assert_eq!(e.kind, "resync");
    assert_eq!(e.id, None);
    let (status, _) = setup
        .send(
            Method::GET,
            &format!("/api/v1/sessions/{session}/events?after=x"),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let state = setup
        .get(&format!("/api/v1/sessions/{session}/state"))
        .await;
    assert_eq!(state["last_event_id"], json!(fresh.last().unwrap().id));
}

#[tokio::test]
async fn two_subscribers_see_identical_sequences() {
    let setup = Setup::new(
        vec![
            tool_call("c1", "current_time", "{}"),
            text(&["x", "y", "z"], 10, 3),
        ],
        json!({}),
    )
    .await;
    let session = setup.session().await;
    let mut a = setup.events(&session).await;
    let mut b = setup.events(&session).await;
    setup.say(&session, "go").await;
    let seen_a = a.until_finished().await;
    let seen_b = b.until_finished().await;
    assert!(seen_a.len() >= 10);
    assert_eq!(seen_a, seen_b);
}

#[tokio::test]
async fn another_users_session_has_no_runs_or_events_for_you() {
    let setup = Setup::new(vec![text(&["hi"], 1, 1)], json!({})).await;
    let session = setup.session().await;
    let (_, bob) = setup.gw.user(&setup.token, "bob").await;
    for (method, path, body) in [
        (Method::POST, "messages", Some(json!({"text": "hi"}))),
        (Method::POST, "runs", Some(json!({}))),
        (Method::GET, "runs", None),
        (Method::POST, "interrupt", None),
        (Method::POST, "approvals/x", Some(json!({"approve": true}))),
        (Method::GET, "state", None),
        (Method::GET, "events", None),
    ] {
        let (status, _) = setup
            .gw
            .call(
                method.clone(),
                &format!("/api/v1/sessions/{session}/{path}"),
                Some(&bob),
                body,
            )
            .await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{method} {path}");
    }
}

#[tokio::test]
async fn runs_work_on_postgres_too() {
    let setup = Setup::on(
        Engine::Postgres,
        vec![
            tool_call("call_1", "current_time", "{}"),
            text(&["Noon."], 10, 2),
        ],
        json!({}),
    )
    .await;
    let session = setup.session().await;
    let mut events = setup.events(&session).await;
    setup.say(&session, "time?").await;
    let seen = events.until_finished().await;
    assert_eq!(finished_run(&seen)["status"], "completed");
    assert_eq!(
        shape(&setup.entries(&session).await),
        vec![
            s("user", "time?"),
            s("tool_call", "current_time"),
            s("tool_result", "error=false"),
            s("assistant", "Noon."),
        ]
    );
}

#[tokio::test]
async fn another_model_answering_is_recorded_as_a_model_change() {
    let setup = Setup::new(
        vec![text(&["From one."], 10, 2), text(&["From two."], 10, 2)],
        json!({}),
    )
    .await;
    let session = setup.session().await;
    let mut events = setup.events(&session).await;
    setup.say(&session, "hi").await;
    events.until_finished().await;
    let (_, agents) = setup.send(Method::GET, "/api/v1/agents", None).await;
    let id = agents["items"][0]["id"].as_str().unwrap().to_string();
    let (status, _) = setup
        .send(
            Method::PATCH,
            &format!("/api/v1/agents/{id}"),
            Some(json!({"route": "mock/other-model"})),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    setup.say(&session, "again").await;
    events.until_finished().await;
    let entries = setup.entries(&session).await;
    let kinds: Vec<&str> = entries
        .iter()
        .map(|e| e["body"]["type"].as_str().unwrap())
        .collect();
    assert_eq!(
        kinds,
        vec!["user", "assistant", "user", "model_change", "assistant"]
    );
    assert_eq!(entries[3]["body"]["route"], "mock/other-model");
    assert_eq!(entries[4]["body"]["model"], "mock/other-model");
    assert_eq!(entries[1]["body"]["model"], "mock/test-model");
}

#[tokio::test]
async fn after_a_resync_the_subscriber_gets_the_state_and_keeps_streaming() {
    let setup = Setup::new(
        vec![text(&["a", "b"], 10, 2), text(&["c", "d"], 10, 2)],
        json!({}),
    )
    .await;
    let session = setup.session().await;
    let mut whole = setup.events(&session).await;
    setup.say(&session, "go").await;
    let latest = whole.until_finished().await.last().unwrap().id.unwrap();

    // A number never handed out: told to resync, with what runs and waits now.
    let mut lost = Events::open(&setup.gw, &setup.token, &session, Some(latest + 1000)).await;
    let resync = lost.next().await;
    assert_eq!(resync.kind, "resync");
    assert_eq!(resync.data["state"]["last_event_id"], json!(latest));
    assert_eq!(resync.data["state"]["queue"], json!([]));
    // And then the stream goes on like any other, to the next run's end.
    setup.say(&session, "again").await;
    let next = lost.until_finished().await;
    assert_eq!(next, whole.until_finished().await);
    assert_eq!(next[0].id, Some(latest + 1));
}
