//! The tenant-isolation sweep: for every operation in the OpenAPI document, without
//! credentials the answer is 401 (unless the operation is public), and for every
//! operation that takes an id, user B using user A's ids gets 404 and nothing of A's.
//! An operation the sweep has no fixture for fails it, so new routes must be covered.

use mosaic_test_support::engines;
use std::collections::BTreeMap;

use pretty_assertions::assert_eq;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use crate::support::TestGateway;

engines!(every_operation_is_authenticated_and_scoped_to_its_owner);

/// A request body for every operation that takes one.
fn body_for(operation_id: &str) -> Option<Value> {
    Some(match operation_id {
        "bootstrap" => json!({"token": "msb_x", "username": "x", "password": "long enough pw"}),
        "login" => json!({"username": "x", "password": "long enough pw"}),
        "change_password" => json!({"current_password": "a", "new_password": "bbbbbbbbbb"}),
        "create_user" => json!({"username": "sweepuser", "password": "long enough pw"}),
        "update_user" => json!({"display_name": "taken over"}),
        "create_token" => json!({"name": "sweep"}),
        "create_team" => json!({"name": "sweep"}),
        "update_team" => json!({"name": "taken over"}),
        "add_team_member" => json!({"username": "bob", "role": "owner"}),
        "create_workspace" => json!({"name": "sweep"}),
        "update_workspace" => json!({"name": "taken over"}),
        "set_preference" => json!({"value": "light"}),
        "create_provider" => {
            json!({"name": "sweep", "kind": "openai-compatible", "base_url": "http://1.1.1.1/v1"})
        }
        "update_provider" => json!({"api_key": "sk-taken-over"}),
        "test_provider" => json!({"model": "m"}),
        "set_route" => json!({"name": "sweep", "steps": [{"provider": "alice-llm", "model": "m"}]}),
        "create_agent" => json!({"name": "sweep"}),
        "update_agent" => json!({"system_prompt": "taken over"}),
        "create_session" => json!({"title": "sweep"}),
        "update_session" => json!({"title": "taken over", "archived": true}),
        "set_session_leaf" => json!({"entry_id": "taken-over"}),
        // Sent as JSON by this sweep; refused before the body is read without credentials.
        "import_session" => json!("{\"format\": \"mosaic.session\"}"),
        "post_message" => json!({"text": "taken over"}),
        "start_run" => json!({}),
        "answer_approval" => json!({"approve": true}),
        "create_project" => json!({"name": "sweep"}),
        "update_project" => json!({"name": "taken over", "status": "archived"}),
        "create_task" => json!({"title": "sweep"}),
        "update_task" => json!({"title": "taken over", "status": "done"}),
        "create_mission" => json!({"goal": "sweep"}),
        "update_mission" => json!({"goal": "taken over", "status": "abandoned",
            "milestones": [{"title": "taken over", "done": true}]}),
        "create_note" => json!({"title": "sweep"}),
        "update_note" => json!({"title": "taken over", "tags": ["taken over"]}),
        "create_memory" => json!({"text": "sweep"}),
        "update_memory" => json!({"text": "taken over", "pinned": true}),
        "chat_completions" => {
            json!({"model": "default", "messages": [{"role": "user", "content": "hi"}]})
        }
        _ => return None,
    })
}

/// Operations whose path parameter names something in the caller's own namespace
/// rather than someone's row: B acting on them touches only B's data (checked below).
const OWN_NAMESPACE: &[&str] = &["set_preference"];

struct Op {
    method: Method,
    path: String,
    id: String,
    public: bool,
    has_body: bool,
}

fn operations() -> Vec<Op> {
    let (_, doc) = mosaic_gateway::openapi::api();
    let doc = serde_json::to_value(&doc).unwrap();
    let mut ops = Vec::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (method, op) in item.as_object().unwrap() {
            let method = match method.as_str() {
                "get" => Method::GET,
                "post" => Method::POST,
                "put" => Method::PUT,
                "patch" => Method::PATCH,
                "delete" => Method::DELETE,
                other => panic!("sweep does not know method {other} of {path}"),
            };
            let public = op["security"] == json!([{}]);
            ops.push(Op {
                method,
                path: path.clone(),
                id: op["operationId"].as_str().unwrap().to_string(),
                public,
                has_body: op.get("requestBody").is_some(),
            });
        }
    }
    ops
}

fn fill(path: &str, ids: &BTreeMap<&str, String>) -> String {
    let mut out = String::new();
    let mut resource = "";
    for segment in path.split('/').filter(|s| !s.is_empty()) {
        let value = if let Some(param) = segment.strip_prefix('{').and_then(|s| s.strip_suffix('}'))
        {
            let key = if param == "id" { resource } else { param };
            ids.get(key)
                .unwrap_or_else(|| panic!("tenant sweep has no fixture for {{{param}}} in {path}"))
                .clone()
        } else {
            resource = segment;
            segment.to_string()
        };
        out.push('/');
        out.push_str(&value);
    }
    out
}

async fn every_operation_is_authenticated_and_scoped_to_its_owner(gw: TestGateway) {
    let root = gw.admin("root").await;
    let (alice_id, alice) = gw.user(&root, "alice").await;
    let (_bob_id, bob) = gw.user(&root, "bob").await;

    // Alice's things.
    let (_, team) = gw
        .call(
            Method::POST,
            "/api/v1/teams",
            Some(&alice),
            Some(json!({"name": "alice-team"})),
        )
        .await;
    let (_, ws) = gw
        .call(
            Method::POST,
            "/api/v1/workspaces",
            Some(&alice),
            Some(json!({"name": "alice-ws"})),
        )
        .await;
    let (_, tok) = gw
        .call(
            Method::POST,
            "/api/v1/tokens",
            Some(&alice),
            Some(json!({"name": "alice-tok"})),
        )
        .await;
    let (_, provider) = gw
        .call(
            Method::POST,
            "/api/v1/providers",
            Some(&alice),
            Some(json!({"name": "alice-llm", "kind": "openai-compatible", "base_url": "http://1.1.1.1/v1", "api_key": "sk-alice-secret"})),
        )
        .await;
    let (_, route) = gw
        .call(
            Method::POST,
            "/api/v1/routes",
            Some(&alice),
            Some(
                json!({"name": "alice-route", "steps": [{"provider": "alice-llm", "model": "m"}]}),
            ),
        )
        .await;
    let (_, agent) = gw
        .call(
            Method::POST,
            "/api/v1/agents",
            Some(&alice),
            Some(json!({"name": "alice-agent", "system_prompt": "alice's secret instructions"})),
        )
        .await;
    let (_, session) = gw
        .call(
            Method::POST,
            "/api/v1/sessions",
            Some(&alice),
            Some(json!({"title": "alice-session"})),
        )
        .await;
    let session_id = session["id"].as_str().unwrap().to_string();
    let alice_principal = mosaic_store::Principal::user(alice_id.clone(), false);
    let first = gw
        .store()
        .append_entry(
            &alice_principal,
            &session_id,
            mosaic_store::Parent::ActiveLeaf,
            mosaic_api::EntryBody::User {
                text: "alice's secret question".into(),
            },
        )
        .await
        .unwrap();
    let (s, project) = gw
        .call(
            Method::POST,
            "/api/v1/projects",
            Some(&alice),
            Some(json!({"name": "alice-project", "description": "alice's secret plan"})),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{project}");
    let (s, mission) = gw
        .call(
            Method::POST,
            "/api/v1/missions",
            Some(&alice),
            Some(
                json!({"goal": "alice-mission", "success_criteria": "alice's secret goal",
                "milestones": [{"title": "alice-milestone"}], "project_id": project["id"]}),
            ),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{mission}");
    let (s, task) = gw
        .call(
            Method::POST,
            "/api/v1/tasks",
            Some(&alice),
            Some(
                json!({"title": "alice-task", "body": "alice's secret chore",
                "project_id": project["id"], "mission_id": mission["id"], "labels": ["alice"]}),
            ),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{task}");
    let (s, note) = gw
        .call(
            Method::POST,
            "/api/v1/notes",
            Some(&alice),
            Some(json!({"title": "alice-note", "body": "alice's secret note", "tags": ["alice"]})),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{note}");
    let (s, memory) = gw
        .call(
            Method::POST,
            "/api/v1/memories",
            Some(&alice),
            Some(
                json!({"text": "alice's secret: she hums when thinking", "tags": ["alice"],
                "pinned": true, "agent_id": agent["id"], "source_session_id": session_id}),
            ),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{memory}");
    let (s, _) = gw
        .call(
            Method::PUT,
            "/api/v1/preferences/theme",
            Some(&alice),
            Some(json!({"value": "dark"})),
        )
        .await;
    assert_eq!(s, StatusCode::OK);

    let ids: BTreeMap<&str, String> = BTreeMap::from([
        ("users", alice_id.clone()),
        ("user_id", alice_id.clone()),
        ("teams", team["id"].as_str().unwrap().to_string()),
        ("workspaces", ws["id"].as_str().unwrap().to_string()),
        ("tokens", tok["info"]["id"].as_str().unwrap().to_string()),
        ("key", "theme".to_string()),
        ("providers", provider["id"].as_str().unwrap().to_string()),
        ("routes", route["id"].as_str().unwrap().to_string()),
        ("agents", agent["id"].as_str().unwrap().to_string()),
        ("sessions", session_id.clone()),
        ("projects", project["id"].as_str().unwrap().to_string()),
        ("tasks", task["id"].as_str().unwrap().to_string()),
        ("missions", mission["id"].as_str().unwrap().to_string()),
        ("notes", note["id"].as_str().unwrap().to_string()),
        ("memories", memory["id"].as_str().unwrap().to_string()),
        // No call waits for approval; B must get 404 all the same.
        ("call_id", "call_1".to_string()),
    ]);

    let ops = operations();
    assert!(
        ops.len() >= 30,
        "the document lists only {} operations",
        ops.len()
    );
    let mut swept = 0;
    for op in &ops {
        let path = fill(&op.path, &ids);
        let body = if op.has_body {
            Some(
                body_for(&op.id)
                    .unwrap_or_else(|| panic!("tenant sweep has no body for {}", op.id)),
            )
        } else {
            None
        };
        if !op.public {
            let (status, err) = gw.call(op.method.clone(), &path, None, body.clone()).await;
            assert_eq!(
                status,
                StatusCode::UNAUTHORIZED,
                "{} {} without credentials: {err}",
                op.method,
                path
            );
            assert_eq!(err["error"]["code"], json!("unauthorized"));
        }
        if op.path.contains('{') && !OWN_NAMESPACE.contains(&op.id.as_str()) {
            let (status, resp) = gw.call(op.method.clone(), &path, Some(&bob), body).await;
            assert_eq!(
                status,
                StatusCode::NOT_FOUND,
                "{} {} as bob: {resp}",
                op.method,
                path
            );
            assert_eq!(resp["error"]["code"], json!("not_found"));
            let text = resp.to_string();
            assert!(
                !text.contains("alice") && !text.contains(&alice_id),
                "{} leaked: {text}",
                op.id
            );
            swept += 1;
        }
    }
    assert!(swept >= 15, "only {swept} id-taking operations swept");

    // Nothing of Alice's moved.
    for path in [
        format!("/api/v1/users/{alice_id}"),
        format!("/api/v1/teams/{}", ids["teams"]),
        format!("/api/v1/teams/{}/members", ids["teams"]),
        format!("/api/v1/workspaces/{}", ids["workspaces"]),
        format!("/api/v1/tokens/{}", ids["tokens"]),
        format!("/api/v1/providers/{}", ids["providers"]),
        format!("/api/v1/routes/{}", ids["routes"]),
        format!("/api/v1/agents/{}", ids["agents"]),
        format!("/api/v1/sessions/{session_id}"),
        format!("/api/v1/projects/{}", ids["projects"]),
        format!("/api/v1/tasks/{}", ids["tasks"]),
        format!("/api/v1/missions/{}", ids["missions"]),
        format!("/api/v1/notes/{}", ids["notes"]),
        format!("/api/v1/memories/{}", ids["memories"]),
    ] {
        let (status, body) = gw.call(Method::GET, &path, Some(&alice), None).await;
        assert_eq!(status, StatusCode::OK, "{path}: {body}");
        assert!(
            !body.to_string().contains("taken over"),
            "{path} was changed: {body}"
        );
    }
    let (_, pref) = gw
        .call(Method::GET, "/api/v1/preferences/theme", Some(&alice), None)
        .await;
    assert_eq!(pref["value"], json!("dark"));
    let (_, session) = gw
        .call(
            Method::GET,
            &format!("/api/v1/sessions/{session_id}"),
            Some(&alice),
            None,
        )
        .await;
    assert_eq!(session["archived"], json!(false));
    assert_eq!(session["active_leaf_id"], json!(first.id));
    let (_, entries) = gw
        .call(
            Method::GET,
            &format!("/api/v1/sessions/{session_id}/entries"),
            Some(&alice),
            None,
        )
        .await;
    assert_eq!(entries["items"].as_array().unwrap().len(), 1, "{entries}");
    let (_, members) = gw
        .call(
            Method::GET,
            &format!("/api/v1/teams/{}/members", ids["teams"]),
            Some(&alice),
            None,
        )
        .await;
    assert_eq!(
        members["items"].as_array().unwrap().len(),
        1,
        "bob got into alice's team: {members}"
    );
    // Bob's own lists show none of Alice's rows, even filtered by her ids.
    let mission_tasks = format!("/api/v1/tasks?mission_id={}", ids["missions"]);
    let project_missions = format!("/api/v1/missions?project_id={}", ids["projects"]);
    for path in [
        "/api/v1/teams",
        "/api/v1/workspaces",
        "/api/v1/tokens",
        "/api/v1/preferences",
        "/api/v1/sessions",
        "/api/v1/sessions?q=secret",
        "/api/v1/projects",
        "/api/v1/tasks",
        "/api/v1/tasks?label=alice",
        mission_tasks.as_str(),
        "/api/v1/missions",
        "/api/v1/missions?status=active",
        project_missions.as_str(),
        "/api/v1/notes",
        "/api/v1/notes?q=secret",
        "/api/v1/memories",
        "/api/v1/memories?pinned=true",
        "/api/v1/memories?q=secret",
        "/api/v1/memories?tag=alice",
        "/api/v1/brain/search?q=secret",
        "/api/v1/brain/search?q=alice",
        "/api/v1/brain/search?q=hums&kinds=memory",
    ] {
        let (_, list) = gw.call(Method::GET, path, Some(&bob), None).await;
        let text = list.to_string();
        assert!(
            !text.contains("alice"),
            "{path} as bob shows alice's rows: {text}"
        );
    }
    // Bob cannot link his own rows to Alice's mission, project, agent or session: to him
    // they are ids like any unknown one (400, the same answer as for an id that never
    // existed).
    for (path, body) in [
        (
            "/api/v1/memories",
            json!({"text": "bob-memory", "agent_id": ids["agents"]}),
        ),
        (
            "/api/v1/memories",
            json!({"text": "bob-memory", "source_session_id": session_id}),
        ),
        (
            "/api/v1/tasks",
            json!({"title": "bob-task", "mission_id": ids["missions"]}),
        ),
        (
            "/api/v1/missions",
            json!({"goal": "bob-mission", "project_id": ids["projects"]}),
        ),
    ] {
        let (status, resp) = gw.call(Method::POST, path, Some(&bob), Some(body)).await;
        // The same answer as for an id that names nothing.
        assert_eq!(status, StatusCode::CONFLICT, "{path} as bob: {resp}");
        assert!(!resp.to_string().contains("alice"), "{path} leaked: {resp}");
    }
    let (_, mission) = gw
        .call(
            Method::GET,
            &format!("/api/v1/missions/{}", ids["missions"]),
            Some(&alice),
            None,
        )
        .await;
    assert_eq!(
        mission["progress"],
        json!({"tasks_total": 1, "tasks_done": 0}),
        "{mission}"
    );
    // An admin is not a tenant of everyone: admin rights cover users, not their data.
    let (status, _) = gw
        .call(
            Method::GET,
            &format!("/api/v1/workspaces/{}", ids["workspaces"]),
            Some(&root),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}
