//! Brain tools end to end: an agent run against a scripted model creates a task and
//! later marks it done; the task is the session owner's, seen through the HTTP API, and
//! another user neither sees it nor can have their agent change it.

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use mosaic_test_support::chat::{ChatModel, Reply, Turn};

use crate::support::{
    chat, route_default_agent, scripted_model, tasks, TestGateway, SCRIPTED_ROUTE,
};

/// The scripted model: "add: TITLE" creates a task, "done: ID" completes one, and a
/// tool's result is answered with a line quoting it (so a test can read it back).
fn model() -> ChatModel {
    ChatModel::start(|turn: &Turn| {
        if turn.role == "tool" {
            return Reply::text(&[format!("tool said: {}", turn.text)]);
        }
        if let Some(title) = turn.text.strip_prefix("add: ") {
            let args = json!({"title": title, "labels": ["garden"]}).to_string();
            return Reply::tool_call("call_add", "create_task", &args);
        }
        if let Some(id) = turn.text.strip_prefix("done: ") {
            let args = json!({"id": id, "status": "done"}).to_string();
            return Reply::tool_call("call_done", "update_task", &args);
        }
        Reply::text(&["?"])
    })
}

/// The agent fields that allow the task tools.
fn task_tools() -> Value {
    json!({"tools": [
        {"name": "create_task", "policy": "allowed"},
        {"name": "update_task", "policy": "allowed"},
        {"name": "list_tasks", "policy": "allowed"},
    ]})
}

/// The (output, is_error) of the one tool result among `entries`.
fn tool_result(entries: &[Value]) -> (Value, bool) {
    let result = entries
        .iter()
        .map(|e| &e["body"])
        .find(|b| b["type"] == "tool_result")
        .expect("a tool result");
    let output = result["output"].as_str().unwrap();
    let parsed = serde_json::from_str(output).unwrap_or_else(|_| json!(output));
    (parsed, result["is_error"].as_bool().unwrap())
}

#[tokio::test]
async fn an_agent_creates_and_completes_a_task_for_its_session_owner_only() {
    let upstream = model();
    let gw = TestGateway::start().await;
    let alice = gw.admin("alice").await;
    let (_, bob) = gw.user(&alice, "bob").await;
    scripted_model(&gw, &alice, &upstream.base_url, task_tools()).await;
    route_default_agent(&gw, &bob, SCRIPTED_ROUTE, task_tools()).await;

    // The model is offered the tools the agent lists, with their schemas.
    let (_, entries) = chat(&gw, &alice, "add: Buy seeds").await;
    let requests = upstream.requests();
    let offered: Vec<&str> = requests[0]["tools"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["function"]["name"].as_str().unwrap())
        .collect();
    assert_eq!(offered, vec!["create_task", "update_task", "list_tasks"]);
    let (created, is_error) = tool_result(&entries);
    assert!(!is_error, "{created}");
    assert_eq!(created["title"], "Buy seeds");
    let id = created["id"].as_str().unwrap().to_string();

    // The task is alice's, through the API; bob sees nothing of it.
    let mine = tasks(&gw, &alice).await;
    assert_eq!(mine.len(), 1);
    assert_eq!(
        (&mine[0]["id"], &mine[0]["status"], &mine[0]["labels"]),
        (&json!(id), &json!("todo"), &json!(["garden"]))
    );
    assert_eq!(tasks(&gw, &bob).await, Vec::<Value>::new());
    let (status, _) = gw
        .call(
            Method::GET,
            &format!("/api/v1/tasks/{id}"),
            Some(&bob),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    // Bob's agent cannot complete it: the tool acts as bob, who cannot see it.
    let (_, entries) = chat(&gw, &bob, &format!("done: {id}")).await;
    let (refused, is_error) = tool_result(&entries);
    assert!(is_error);
    assert_eq!(refused, json!(format!("no task {id} visible to you")));
    assert_eq!(tasks(&gw, &alice).await[0]["status"], "todo");

    // Alice's agent can.
    let (_, entries) = chat(&gw, &alice, &format!("done: {id}")).await;
    let (done, is_error) = tool_result(&entries);
    assert!(!is_error, "{done}");
    assert_eq!(done["status"], "done");
    let (status, task) = gw
        .call(
            Method::GET,
            &format!("/api/v1/tasks/{id}"),
            Some(&alice),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{task}");
    assert_eq!(task["status"], "done");
    assert!(task["done_at"].is_string(), "{task}");
}
