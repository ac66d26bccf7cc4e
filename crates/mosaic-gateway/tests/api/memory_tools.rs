//! Agent memory end to end, against a scripted model: an agent remembers what the user
//! says and recalls it in a later session (for that user only), pinned memories ride
//! in every model call's system prompt and leave it the moment the agent unpins one,
//! and a run about to compact its context first gets a chance to save what matters.
//! Memories are read back through the store, so these tests do not depend on the
//! memory routes.

use std::collections::HashSet;
use std::sync::Mutex;

use mosaic_api::{CreateMemoryRequest, Memory, MemoryKind, MemoryQuery};
use mosaic_store::Principal;
use pretty_assertions::assert_eq;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use mosaic_test_support::chat::{ChatModel, Reply, Turn};

use crate::support::{
    chat, gateway_provider, new_session, say, tasks, TestGateway, SCRIPTED_ROUTE,
};

/// How the memory flush's system prompt opens (see the runtime).
const FLUSH_OPENING: &str = "The conversation below is about to be summarised";
/// How the compaction's system prompt opens.
const SUMMARY_OPENING: &str = "Summarise the conversation below";
/// What the scripted model summarises any conversation as.
const SUMMARY: &str = "The user talked about their pets.";

/// The scripted model. "remember: TEXT", "add: TITLE", "recall: QUERY" and "unpin: ID"
/// call the matching tool; a recall's result is answered by quoting the memories found;
/// a transcript to compact ("User: …") is answered, the first time it is seen and when
/// it mentions Rex, with a `remember` call (the memory flush), and otherwise with a
/// summary (the flush and the summary request carry the same transcript).
fn model() -> ChatModel {
    let transcripts = Mutex::new(HashSet::new());
    ChatModel::start(move |turn: &Turn| {
        if turn.role == "tool" {
            let result: Value = serde_json::from_str(&turn.text).unwrap_or(Value::Null);
            let Some(found) = result["memories"].as_array() else {
                return Reply::text(&["Done."]);
            };
            if found.is_empty() {
                return Reply::text(&["I have nothing on that."]);
            }
            let texts: Vec<&str> = found.iter().filter_map(|m| m["text"].as_str()).collect();
            return Reply::text(&[format!("You told me: {}", texts.join("; "))]);
        }
        if turn.text.starts_with("User: ") {
            let first = transcripts.lock().unwrap().insert(turn.text.clone());
            if first && turn.text.contains("dog is called Rex") {
                let args = json!({"text": "User's dog is called Rex", "kind": "fact",
                    "tags": ["pets"]});
                return Reply::tool_call("call_flush", "remember", &args.to_string());
            }
            return Reply::text(&[SUMMARY]);
        }
        if let Some(text) = turn.text.strip_prefix("remember: ") {
            let args = json!({"text": text, "kind": "fact", "tags": ["health"]});
            return Reply::tool_call("call_remember", "remember", &args.to_string());
        }
        if let Some(title) = turn.text.strip_prefix("add: ") {
            let args = json!({"title": title});
            return Reply::tool_call("call_add", "create_task", &args.to_string());
        }
        if let Some(query) = turn.text.strip_prefix("recall: ") {
            let args = json!({"query": query});
            return Reply::tool_call("call_recall", "recall", &args.to_string());
        }
        if let Some(id) = turn.text.strip_prefix("unpin: ") {
            let args = json!({"id": id, "pinned": false});
            return Reply::tool_call("call_unpin", "update_memory", &args.to_string());
        }
        Reply::text(&["Noted."])
    })
}

/// A gateway whose admin alice has a gateway-wide provider `mock` pointing at `upstream`;
/// alice's token.
async fn gateway(upstream: &ChatModel) -> (TestGateway, String) {
    let gw = TestGateway::start().await;
    let alice = gw.admin("alice").await;
    gateway_provider(&gw, &alice, "mock", &upstream.base_url).await;
    (gw, alice)
}

/// The store principal of `token`'s user.
async fn principal(gw: &TestGateway, token: &str) -> Principal {
    let (status, me) = gw
        .call(Method::GET, "/api/v1/auth/me", Some(token), None)
        .await;
    assert_eq!(status, StatusCode::OK, "{me}");
    Principal::user(me["user"]["id"].as_str().unwrap(), false)
}

/// Patch `token`'s default agent: the scripted model's route, plus `more`.
async fn arm_default_agent(gw: &TestGateway, token: &str, more: Value) -> String {
    crate::support::route_default_agent(gw, token, SCRIPTED_ROUTE, more).await
}

/// The (parsed output, is_error) of the last tool result among `entries`.
fn last_tool_result(entries: &[Value]) -> (Value, bool) {
    let result = entries
        .iter()
        .map(|e| &e["body"])
        .rev()
        .find(|b| b["type"] == "tool_result")
        .expect("a tool result");
    let output = result["output"].as_str().unwrap();
    let parsed = serde_json::from_str(output).unwrap_or_else(|_| json!(output));
    (parsed, result["is_error"].as_bool().unwrap())
}

/// The text of the last assistant entry among `entries`.
fn last_answer(entries: &[Value]) -> &str {
    entries
        .iter()
        .map(|e| &e["body"])
        .rev()
        .find(|b| b["type"] == "assistant")
        .expect("an answer")["text"]
        .as_str()
        .unwrap()
}

/// A chat message's text, whether its content is a string or an array of text parts.
fn content(message: &Value) -> String {
    match &message["content"] {
        Value::String(text) => text.clone(),
        Value::Array(parts) => parts.iter().filter_map(|p| p["text"].as_str()).collect(),
        _ => String::new(),
    }
}

/// The system message of a chat request ("" when it has none).
fn system_of(request: &Value) -> String {
    request["messages"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["role"] == "system")
        .map(content)
        .unwrap_or_default()
}

/// The names of the tools a chat request offered.
fn offered(request: &Value) -> Vec<String> {
    request["tools"]
        .as_array()
        .map(|tools| {
            tools
                .iter()
                .map(|t| t["function"]["name"].as_str().unwrap().to_string())
                .collect()
        })
        .unwrap_or_default()
}

async fn memories(gw: &TestGateway, p: &Principal) -> Vec<Memory> {
    gw.store()
        .list_memories(p, &MemoryQuery::default())
        .await
        .unwrap()
        .items
}

#[tokio::test]
async fn an_agent_creates_a_task_and_later_recalls_a_memory() {
    let upstream = model();
    let (gw, alice) = gateway(&upstream).await;
    let (_, bob) = gw.user(&alice, "bob").await;
    let (alice_p, bob_p) = (principal(&gw, &alice).await, principal(&gw, &bob).await);
    // Only the route changes: the default agent's own tools are what is offered.
    arm_default_agent(&gw, &alice, json!({})).await;
    arm_default_agent(&gw, &bob, json!({})).await;

    // Session 1: the agent saves a memory, then a task.
    let s1 = new_session(&gw, &alice).await;
    let entries = say(&gw, &alice, &s1, "remember: Alice is allergic to peanuts").await;
    let default_tools = [
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
        "http_fetch",
    ];
    assert_eq!(offered(&upstream.requests()[0]), default_tools);
    let (saved, is_error) = last_tool_result(&entries);
    assert!(!is_error, "{saved}");
    assert_eq!(saved["saved"]["text"], "Alice is allergic to peanuts");
    let entries = say(&gw, &alice, &s1, "add: Buy oat milk").await;
    let (created, is_error) = last_tool_result(&entries);
    assert!(!is_error, "{created}");
    assert_eq!(created["title"], "Buy oat milk");

    // Both are alice's: the memory remembers the session it came from, unused so far.
    let saved = memories(&gw, &alice_p).await;
    assert_eq!(saved.len(), 1, "{saved:?}");
    let memory = saved[0].clone();
    assert_eq!(
        (
            memory.text.as_str(),
            memory.kind,
            memory.tags.clone(),
            memory.source_session_id.as_deref(),
            memory.used_at.as_deref(),
        ),
        (
            "Alice is allergic to peanuts",
            MemoryKind::Fact,
            vec!["health".to_string()],
            Some(s1.as_str()),
            None,
        )
    );
    let mine = tasks(&gw, &alice).await;
    let titles: Vec<&Value> = mine.iter().map(|t| &t["title"]).collect();
    assert_eq!(titles, vec![&json!("Buy oat milk")]);
    assert_eq!(tasks(&gw, &bob).await, Vec::<Value>::new());

    // Bob's agent acts as bob: the same recall finds nothing, and uses nothing.
    let (_, entries) = chat(&gw, &bob, "recall: peanuts").await;
    let (found, is_error) = last_tool_result(&entries);
    assert!(!is_error, "{found}");
    assert_eq!(found, json!({"memories": [], "note": "nothing found"}));
    assert_eq!(last_answer(&entries), "I have nothing on that.");
    assert_eq!(memories(&gw, &bob_p).await, Vec::<Memory>::new());
    let untouched = gw.store().get_memory(&alice_p, &memory.id).await.unwrap();
    assert_eq!(untouched.used_at, None);

    // Session 2, later: alice's agent recalls it and answers with it.
    let (s2, entries) = chat(&gw, &alice, "recall: peanuts").await;
    assert_ne!(s1, s2);
    let (found, is_error) = last_tool_result(&entries);
    assert!(!is_error, "{found}");
    assert_eq!(
        found,
        json!({"memories": [{"id": memory.id, "text": "Alice is allergic to peanuts",
            "kind": "fact", "importance": 3, "tags": ["health"]}]})
    );
    assert_eq!(
        last_answer(&entries),
        "You told me: Alice is allergic to peanuts"
    );
    let recalled = gw.store().get_memory(&alice_p, &memory.id).await.unwrap();
    let used_at = recalled.used_at.expect("a recalled memory is marked used");
    assert!(
        used_at >= memory.created_at,
        "{used_at} < {}",
        memory.created_at
    );
}

#[tokio::test]
async fn pinned_memories_are_in_every_runs_context() {
    let upstream = model();
    let (gw, alice) = gateway(&upstream).await;
    let (_, bob) = gw.user(&alice, "bob").await;
    let (alice_p, bob_p) = (principal(&gw, &alice).await, principal(&gw, &bob).await);
    let agent = arm_default_agent(&gw, &alice, json!({})).await;
    let (status, scribe) = gw
        .call(
            Method::POST,
            "/api/v1/agents",
            Some(&alice),
            Some(json!({"name": "scribe"})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{scribe}");
    let scribe = scribe["id"].as_str().unwrap().to_string();

    let create = |p: &Principal, text: &str, pinned: bool, agent_id: Option<&str>| {
        let req = CreateMemoryRequest {
            text: text.into(),
            kind: Some(MemoryKind::Instruction),
            tags: Vec::new(),
            importance: None,
            pinned,
            agent_id: agent_id.map(str::to_string),
            source_session_id: None,
            team_id: None,
        };
        let (store, p) = (gw.store().clone(), p.clone());
        async move { store.create_memory(&p, &req).await.unwrap() }
    };
    let shared = create(&alice_p, "Answer in French", true, None).await;
    let own = create(&alice_p, "Keep lists short", true, Some(&agent)).await;
    let other_agent = create(&alice_p, "Use headings", true, Some(&scribe)).await;
    let unpinned = create(&alice_p, "Likes green tea", false, None).await;
    let bobs = create(&bob_p, "Prefers metric units", true, None).await;

    // The run's first call carries the shared pin and this agent's, after its prompt.
    let entries = say(
        &gw,
        &alice,
        &new_session(&gw, &alice).await,
        &format!("unpin: {}", shared.id),
    )
    .await;
    let requests = upstream.requests();
    assert_eq!(requests.len(), 2, "the call, and the answer to the tool");
    let first = system_of(&requests[0]);
    assert!(
        first.starts_with("You are a helpful assistant.")
            && first.contains("\n\n## Pinned memory\n"),
        "{first}"
    );
    let line = |m: &Memory| format!("\n- {} (id {}, instruction)", m.text, m.id);
    assert!(first.contains(&line(&shared)), "{first}");
    assert!(first.contains(&line(&own)), "{first}");
    for absent in [&other_agent, &unpinned, &bobs] {
        assert!(!first.contains(&absent.text), "{} in {first}", absent.text);
    }

    // The agent unpins the shared memory; the same run's next call no longer has it.
    let (updated, is_error) = last_tool_result(&entries);
    assert!(!is_error, "{updated}");
    assert_eq!(updated["updated"]["pinned"], Value::Null, "{updated}");
    let second = system_of(&requests[1]);
    assert!(second.contains("## Pinned memory"), "{second}");
    assert!(second.contains(&line(&own)), "{second}");
    assert!(!second.contains(&shared.text), "{second}");
    let now = gw.store().get_memory(&alice_p, &shared.id).await.unwrap();
    assert!(!now.pinned);
}

/// A user turn long enough (about 500 estimated tokens) that a 600-token window must
/// compact the turns before it.
fn long_turn(opening: &str) -> String {
    let mut text = opening.to_string();
    while text.len() < 2_000 {
        text.push_str(" Then we walked along the river and back again.");
    }
    text
}

#[tokio::test]
async fn before_compaction_the_run_saves_what_matters_to_memory() {
    let upstream = model();
    let (gw, alice) = gateway(&upstream).await;
    let alice_p = principal(&gw, &alice).await;
    arm_default_agent(&gw, &alice, json!({"limits": {"context_window": 600}})).await;

    let session = new_session(&gw, &alice).await;
    // The first turn has nothing older to compact; the second must drop it.
    let entries = say(&gw, &alice, &session, &long_turn("My dog is called Rex.")).await;
    assert!(entries.iter().all(|e| e["body"]["type"] != "compaction"));
    let first_answer = entries.last().unwrap()["id"].clone();
    let asked_before = upstream.requests().len();
    let entries = say(&gw, &alice, &session, &long_turn("Today was sunny.")).await;

    // The flush came first, offered only `remember`, with the turns about to go.
    let requests = upstream.requests()[asked_before..].to_vec();
    let systems: Vec<String> = requests.iter().map(system_of).collect();
    assert!(systems[0].starts_with(FLUSH_OPENING), "{systems:?}");
    assert!(systems[1].starts_with(SUMMARY_OPENING), "{systems:?}");
    assert_eq!(offered(&requests[0]), vec!["remember"]);
    let transcript = content(&requests[0]["messages"][1]);
    assert!(
        transcript.starts_with("User: My dog is called Rex."),
        "{transcript}"
    );
    assert!(!transcript.contains("Today was sunny"), "{transcript}");
    // The run's own call then sees the summary in place of the first turn.
    let after = &requests[2];
    assert!(systems[2].contains(SUMMARY), "{systems:?}");
    let users: Vec<String> = after["messages"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|m| m["role"] == "user")
        .map(content)
        .collect();
    assert_eq!(users, vec![long_turn("Today was sunny.")]);
    // The flush's call and result stay out of the model's context: the latest message
    // is still what the user said, not a `remember` result.
    let last = after["messages"].as_array().unwrap().last().unwrap();
    assert_eq!(last["role"], "user", "{after}");

    // What it saved is a memory of alice's from this session.
    let saved = memories(&gw, &alice_p).await;
    let saved: Vec<(&str, Option<&str>)> = saved
        .iter()
        .map(|m| (m.text.as_str(), m.source_session_id.as_deref()))
        .collect();
    assert_eq!(
        saved,
        vec![("User's dog is called Rex", Some(session.as_str()))]
    );

    // The session shows the call and its result, then the compaction of the first turn.
    let kinds: Vec<&str> = entries
        .iter()
        .map(|e| e["body"]["type"].as_str().unwrap())
        .collect();
    let at = |kind: &str| kinds.iter().position(|k| *k == kind).unwrap();
    let (call, result, compaction) = (at("tool_call"), at("tool_result"), at("compaction"));
    assert!(call < result && result < compaction, "{kinds:?}");
    assert_eq!(entries[call]["body"]["name"], "remember");
    assert_eq!(
        entries[result]["body"]["call_id"],
        entries[call]["body"]["call_id"]
    );
    assert_eq!(entries[result]["body"]["is_error"], false);
    assert_eq!(
        (
            &entries[compaction]["body"]["summary"],
            &entries[compaction]["body"]["through_entry_id"],
        ),
        (&json!(SUMMARY), &first_answer)
    );
}

#[tokio::test]
async fn an_agent_that_may_not_remember_compacts_without_a_flush() {
    let upstream = model();
    let (gw, alice) = gateway(&upstream).await;
    let alice_p = principal(&gw, &alice).await;
    arm_default_agent(
        &gw,
        &alice,
        json!({"limits": {"context_window": 600},
            "tools": [{"name": "current_time", "policy": "allowed"}]}),
    )
    .await;

    let session = new_session(&gw, &alice).await;
    say(&gw, &alice, &session, &long_turn("My cat is called Tom.")).await;
    let entries = say(&gw, &alice, &session, &long_turn("Today was sunny.")).await;

    let systems: Vec<String> = upstream.requests().iter().map(system_of).collect();
    assert!(
        systems.iter().all(|s| !s.starts_with(FLUSH_OPENING)),
        "{systems:?}"
    );
    assert_eq!(
        systems
            .iter()
            .filter(|s| s.starts_with(SUMMARY_OPENING))
            .count(),
        1,
        "{systems:?}"
    );
    let kinds: Vec<&str> = entries
        .iter()
        .map(|e| e["body"]["type"].as_str().unwrap())
        .collect();
    assert_eq!(
        kinds,
        vec!["user", "assistant", "user", "compaction", "assistant"]
    );
    assert_eq!(memories(&gw, &alice_p).await, Vec::<Memory>::new());
}
