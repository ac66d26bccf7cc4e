//! The brain over HTTP: projects, tasks and notes created, listed with filters and
//! pages, changed and deleted; team items shared with members and deleted only by
//! managers; search with snippets; and the contract's error shapes. Missions, in
//! `brain/missions.rs`, share these helpers.

mod missions;

use mosaic_test_support::engines;
use pretty_assertions::assert_eq;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use crate::support::TestGateway;

engines!(
    projects_tasks_and_notes_round_trip,
    search_finds_tasks_and_notes_with_snippets
);

async fn ok(
    gw: &TestGateway,
    token: &str,
    method: Method,
    path: &str,
    body: Option<Value>,
) -> Value {
    let (s, v) = gw.call(method.clone(), path, Some(token), body).await;
    assert!(s.is_success(), "{method} {path}: {s} {v}");
    v
}

async fn create(gw: &TestGateway, token: &str, path: &str, body: Value) -> Value {
    let (s, v) = gw.call(Method::POST, path, Some(token), Some(body)).await;
    assert_eq!(s, StatusCode::CREATED, "POST {path}: {v}");
    v
}

fn field(page: &Value, name: &str) -> Vec<String> {
    page["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i[name].as_str().unwrap().to_string())
        .collect()
}

/// The id of the best hit of a search.
fn found_first(hits: &Value) -> String {
    id(&hits["items"][0])
}

fn id(item: &Value) -> String {
    item["id"].as_str().unwrap().to_string()
}

/// The error code of a failed call, asserting its status.
async fn error(
    gw: &TestGateway,
    token: &str,
    method: Method,
    path: &str,
    body: Option<Value>,
    status: StatusCode,
) -> String {
    let (s, v) = gw.call(method.clone(), path, Some(token), body).await;
    assert_eq!(s, status, "{method} {path}: {v}");
    assert!(v["error"]["message"].is_string(), "{v}");
    v["error"]["code"].as_str().unwrap().to_string()
}

async fn projects_tasks_and_notes_round_trip(gw: TestGateway) {
    let root = gw.admin("root").await;
    let (alice_id, alice) = gw.user(&root, "alice").await;

    // Projects.
    let garden = create(
        &gw,
        &alice,
        "/api/v1/projects",
        json!({"name": " Garden ", "description": "Beds and bulbs"}),
    )
    .await;
    assert_eq!(garden["name"], json!("Garden"));
    assert_eq!(garden["status"], json!("active"));
    assert_eq!(garden["owner"], json!({"type": "user", "id": alice_id}));
    let house = create(
        &gw,
        &alice,
        "/api/v1/projects",
        json!({"name": "House", "status": "paused"}),
    )
    .await;
    let all = ok(&gw, &alice, Method::GET, "/api/v1/projects", None).await;
    assert_eq!(field(&all, "name"), ["House", "Garden"]);
    let paused = ok(
        &gw,
        &alice,
        Method::GET,
        "/api/v1/projects?status=paused",
        None,
    )
    .await;
    assert_eq!(field(&paused, "id"), [id(&house)]);
    let page = ok(&gw, &alice, Method::GET, "/api/v1/projects?limit=1", None).await;
    assert_eq!(field(&page, "name"), ["House"]);
    let cursor = page["next_cursor"].as_str().unwrap();
    let rest = ok(
        &gw,
        &alice,
        Method::GET,
        &format!("/api/v1/projects?limit=1&cursor={cursor}"),
        None,
    )
    .await;
    assert_eq!(field(&rest, "name"), ["Garden"]);
    assert_eq!(rest.get("next_cursor"), None);
    let path = format!("/api/v1/projects/{}", id(&house));
    let changed = ok(
        &gw,
        &alice,
        Method::PATCH,
        &path,
        Some(json!({"status": "done"})),
    )
    .await;
    assert_eq!(
        (changed["name"].clone(), changed["status"].clone()),
        (json!("House"), json!("done"))
    );
    assert_eq!(ok(&gw, &alice, Method::GET, &path, None).await, changed);

    // Tasks.
    let garden_id = id(&garden);
    let bulbs = create(
        &gw,
        &alice,
        "/api/v1/tasks",
        json!({
        "title": "Plant tulip bulbs", "body": "Ten centimetres deep.", "project_id": garden_id,
        "labels": ["Outside", "autumn", "outside"], "due_at": "2026-12-01T00:00:00Z",
        "assignee_user_id": alice_id, "priority": "high"}),
    )
    .await;
    assert_eq!(bulbs["labels"], json!(["autumn", "outside"]));
    assert_eq!(bulbs["status"], json!("todo"));
    assert_eq!(bulbs["due_at"], json!("2026-12-01T00:00:00.000Z"));
    assert_eq!(bulbs.get("done_at"), None);
    let water = create(
        &gw,
        &alice,
        "/api/v1/tasks",
        json!({
        "title": "Water the beds", "project_id": garden_id, "parent_task_id": id(&bulbs),
        "status": "doing"}),
    )
    .await;
    let roof = create(
        &gw,
        &alice,
        "/api/v1/tasks",
        json!({"title": "Fix the roof"}),
    )
    .await;
    let list = |q: &str| format!("/api/v1/tasks{q}");
    for (query, expected) in [
        ("", vec![id(&roof), id(&water), id(&bulbs)]),
        (
            &*format!("?project_id={garden_id}"),
            vec![id(&water), id(&bulbs)],
        ),
        ("?status=doing", vec![id(&water)]),
        ("?label=OUTSIDE", vec![id(&bulbs)]),
        (&*format!("?assignee={alice_id}"), vec![id(&bulbs)]),
        (
            &*format!("?parent_task_id={}", id(&bulbs)),
            vec![id(&water)],
        ),
        ("?due_before=2027-01-01T00:00:00Z", vec![id(&bulbs)]),
        ("?due_before=2026-01-01T00:00:00Z", vec![]),
        ("?q=roof", vec![id(&roof)]),
        ("?q=centimetres%20tulip", vec![id(&bulbs)]),
    ] {
        let page = ok(&gw, &alice, Method::GET, &list(query), None).await;
        assert_eq!(field(&page, "id"), expected, "tasks{query}");
    }
    let path = format!("/api/v1/tasks/{}", id(&bulbs));
    let done = ok(
        &gw,
        &alice,
        Method::PATCH,
        &path,
        Some(json!({"status": "done", "due_at": null, "labels": []})),
    )
    .await;
    assert_eq!(done["status"], json!("done"));
    assert_eq!(done["due_at"], Value::Null);
    assert_eq!(done["labels"], json!([]));
    assert_eq!(
        done["project_id"],
        json!(garden_id),
        "absent fields are left as they are"
    );
    assert!(done["done_at"].is_string(), "{done}");
    let (s, _) = gw
        .call(
            Method::DELETE,
            &format!("/api/v1/tasks/{}", id(&roof)),
            Some(&alice),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    error(
        &gw,
        &alice,
        Method::GET,
        &format!("/api/v1/tasks/{}", id(&roof)),
        None,
        StatusCode::NOT_FOUND,
    )
    .await;

    // Notes.
    let note = create(
        &gw,
        &alice,
        "/api/v1/notes",
        json!({
        "title": "Bulb depths", "body": "# Tulips\nTen centimetres.", "tags": ["Garden"],
        "project_id": garden_id}),
    )
    .await;
    assert_eq!(note["tags"], json!(["garden"]));
    let loose = create(&gw, &alice, "/api/v1/notes", json!({"title": "Shopping"})).await;
    let page = ok(&gw, &alice, Method::GET, "/api/v1/notes", None).await;
    assert_eq!(field(&page, "id"), [id(&loose), id(&note)]);
    let page = ok(&gw, &alice, Method::GET, "/api/v1/notes?tag=garden", None).await;
    assert_eq!(field(&page, "id"), [id(&note)]);
    let page = ok(
        &gw,
        &alice,
        Method::GET,
        &format!("/api/v1/notes?project_id={garden_id}&q=tulips"),
        None,
    )
    .await;
    assert_eq!(field(&page, "id"), [id(&note)]);
    let path = format!("/api/v1/notes/{}", id(&note));
    let moved = ok(
        &gw,
        &alice,
        Method::PATCH,
        &path,
        Some(json!({"project_id": null, "title": "Depths"})),
    )
    .await;
    assert_eq!(
        (moved["title"].clone(), moved["project_id"].clone()),
        (json!("Depths"), Value::Null)
    );
    assert_eq!(moved["body"], note["body"]);

    // A deleted project leaves its tasks, outside any project.
    let (s, _) = gw
        .call(
            Method::DELETE,
            &format!("/api/v1/projects/{garden_id}"),
            Some(&alice),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    error(
        &gw,
        &alice,
        Method::GET,
        &format!("/api/v1/projects/{garden_id}"),
        None,
        StatusCode::NOT_FOUND,
    )
    .await;
    let water = ok(
        &gw,
        &alice,
        Method::GET,
        &format!("/api/v1/tasks/{}", id(&water)),
        None,
    )
    .await;
    assert_eq!(water["project_id"], Value::Null);
    let (s, _) = gw.call(Method::DELETE, &path, Some(&alice), None).await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    let page = ok(&gw, &alice, Method::GET, "/api/v1/notes", None).await;
    assert_eq!(field(&page, "id"), [id(&loose)]);
}

#[tokio::test]
async fn a_teams_task_is_shared_with_members_and_deleted_only_by_its_managers() {
    let gw = TestGateway::start().await;
    let root = gw.admin("root").await;
    let (_, alice) = gw.user(&root, "alice").await;
    let (bob_id, bob) = gw.user(&root, "bob").await;
    let (_, carol) = gw.user(&root, "carol").await;
    let team = create(&gw, &alice, "/api/v1/teams", json!({"name": "gardeners"})).await;
    let team_id = id(&team);
    ok(
        &gw,
        &alice,
        Method::POST,
        &format!("/api/v1/teams/{team_id}/members"),
        Some(json!({"username": "bob", "role": "member"})),
    )
    .await;

    let task = create(
        &gw,
        &alice,
        "/api/v1/tasks",
        json!({"title": "Compost", "team_id": team_id, "assignee_user_id": bob_id}),
    )
    .await;
    assert_eq!(task["owner"], json!({"type": "team", "id": team_id}));
    let note = create(
        &gw,
        &alice,
        "/api/v1/notes",
        json!({"title": "Compost ratios", "team_id": team_id}),
    )
    .await;
    let task_path = format!("/api/v1/tasks/{}", id(&task));
    let note_path = format!("/api/v1/notes/{}", id(&note));

    // Bob, a plain member, sees and moves the team's task ...
    let mine = ok(
        &gw,
        &bob,
        Method::GET,
        &format!("/api/v1/tasks?assignee={bob_id}"),
        None,
    )
    .await;
    assert_eq!(field(&mine, "id"), [id(&task)]);
    let moved = ok(
        &gw,
        &bob,
        Method::PATCH,
        &task_path,
        Some(json!({"status": "doing"})),
    )
    .await;
    assert_eq!(moved["status"], json!("doing"));
    let hits = ok(
        &gw,
        &bob,
        Method::GET,
        "/api/v1/brain/search?q=compost",
        None,
    )
    .await;
    assert_eq!(hits["items"].as_array().unwrap().len(), 2, "{hits}");
    // ... but does not delete the team's items.
    for path in [&task_path, &note_path] {
        let code = error(&gw, &bob, Method::DELETE, path, None, StatusCode::FORBIDDEN).await;
        assert_eq!(code, "forbidden");
    }
    // Carol is no member: nothing of the team's exists for her.
    for method in [Method::GET, Method::DELETE] {
        error(&gw, &carol, method, &task_path, None, StatusCode::NOT_FOUND).await;
    }
    let theirs = ok(&gw, &carol, Method::GET, "/api/v1/tasks", None).await;
    assert_eq!(theirs["items"], json!([]));
    // Nor may she file items under a team she is not in.
    error(
        &gw,
        &carol,
        Method::POST,
        "/api/v1/tasks",
        Some(json!({"title": "x", "team_id": team_id})),
        StatusCode::NOT_FOUND,
    )
    .await;

    // The team's owner deletes.
    for path in [&task_path, &note_path] {
        let (s, _) = gw.call(Method::DELETE, path, Some(&alice), None).await;
        assert_eq!(s, StatusCode::NO_CONTENT, "{path}");
    }
    error(
        &gw,
        &bob,
        Method::GET,
        &task_path,
        None,
        StatusCode::NOT_FOUND,
    )
    .await;
}

async fn search_finds_tasks_and_notes_with_snippets(gw: TestGateway) {
    let root = gw.admin("root").await;
    let (_, alice) = gw.user(&root, "alice").await;
    let (_, bob) = gw.user(&root, "bob").await;
    let task = create(
        &gw,
        &alice,
        "/api/v1/tasks",
        json!({"title": "Plant tulip bulbs", "body": "before the frost"}),
    )
    .await;
    let note = create(&gw, &alice, "/api/v1/notes", json!({"title": "Garden diary", "body": "The tulip bulbs went in on Sunday, ten centimetres deep."})).await;
    create(
        &gw,
        &alice,
        "/api/v1/notes",
        json!({"title": "Shopping", "body": "bread, milk"}),
    )
    .await;
    create(
        &gw,
        &bob,
        "/api/v1/notes",
        json!({"title": "Bob's tulip notes"}),
    )
    .await;

    let hits = ok(
        &gw,
        &alice,
        Method::GET,
        "/api/v1/brain/search?q=tulip%20bulbs",
        None,
    )
    .await;
    let items = hits["items"].as_array().unwrap();
    let mut found: Vec<(String, String)> = items
        .iter()
        .map(|h| {
            (
                h["kind"].as_str().unwrap().to_string(),
                h["id"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    found.sort();
    // Bob's note is not Alice's to find. (Scores of different kinds come from different
    // indexes, so their order is the engine's business.)
    assert_eq!(
        found,
        [
            ("note".to_string(), id(&note)),
            ("task".to_string(), id(&task))
        ]
    );
    let scores: Vec<f64> = items.iter().map(|h| h["score"].as_f64().unwrap()).collect();
    assert!(scores[0] >= scores[1], "best first: {hits}");
    for hit in items {
        let snippet = hit["snippet"].as_str().unwrap().to_lowercase();
        assert!(snippet.contains("«tulip»"), "{hit}");
        assert!(hit["score"].as_f64().unwrap() > 0.0, "{hit}");
    }
    let diary = items.iter().find(|h| h["kind"] == json!("note")).unwrap();
    assert_eq!(diary["title"], json!("Garden diary"));

    let notes = ok(
        &gw,
        &alice,
        Method::GET,
        "/api/v1/brain/search?q=tulip&kinds=note",
        None,
    )
    .await;
    assert_eq!(field(&notes, "id"), [id(&note)]);
    let tulip = ok(
        &gw,
        &alice,
        Method::GET,
        "/api/v1/brain/search?q=tulip",
        None,
    )
    .await;
    assert_eq!(tulip["items"].as_array().unwrap().len(), 2, "{tulip}");
    let one = ok(
        &gw,
        &alice,
        Method::GET,
        "/api/v1/brain/search?q=tulip&kinds=task,note&limit=1",
        None,
    )
    .await;
    assert_eq!(field(&one, "id"), [found_first(&tulip)]);
    let none = ok(
        &gw,
        &alice,
        Method::GET,
        "/api/v1/brain/search?q=%22%20*%20-",
        None,
    )
    .await;
    assert_eq!(none, json!({"items": [], "mode": "lexical"}));
}

#[tokio::test]
async fn bad_input_and_unknown_ids_get_the_contract_error_shapes() {
    let gw = TestGateway::start().await;
    let root = gw.admin("root").await;
    let (_, alice) = gw.user(&root, "alice").await;
    let bad = StatusCode::BAD_REQUEST;
    for (method, path, body) in [
        (Method::GET, "/api/v1/tasks?status=someday", None),
        (Method::GET, "/api/v1/projects?status=forgotten", None),
        (Method::GET, "/api/v1/tasks?limit=many", None),
        (Method::GET, "/api/v1/tasks?due_before=tomorrow", None),
        (
            Method::GET,
            "/api/v1/brain/search?q=x&kinds=task,memo",
            None,
        ),
        (Method::GET, "/api/v1/brain/search", None),
        (
            Method::POST,
            "/api/v1/tasks",
            Some(json!({"title": "x", "status": "someday"})),
        ),
        (Method::POST, "/api/v1/tasks", Some(json!({"title": "   "}))),
        (
            Method::POST,
            "/api/v1/tasks",
            Some(json!({"title": "x", "due_at": "soon"})),
        ),
        (
            Method::POST,
            "/api/v1/projects",
            Some(json!({"name": "x", "status": "someday"})),
        ),
        (
            Method::POST,
            "/api/v1/notes",
            Some(json!({"title": "x", "tags": ["a,b"]})),
        ),
        (
            Method::POST,
            "/api/v1/notes",
            Some(json!({"body": "no title"})),
        ),
    ] {
        let code = error(&gw, &alice, method, path, body, bad).await;
        assert_eq!(code, "bad_request", "{path}");
    }
    let body = Some(json!({"title": "x", "project_id": "nope"}));
    let conflict = StatusCode::CONFLICT;
    let code = error(&gw, &alice, Method::POST, "/api/v1/tasks", body, conflict).await;
    assert_eq!(code, "conflict", "a project that does not exist");
    let task = create(&gw, &alice, "/api/v1/tasks", json!({"title": "x"})).await;
    let code = error(
        &gw,
        &alice,
        Method::PATCH,
        &format!("/api/v1/tasks/{}", id(&task)),
        Some(json!({"status": "someday"})),
        bad,
    )
    .await;
    assert_eq!(code, "bad_request");
    for kind in ["projects", "tasks", "notes"] {
        let path = format!("/api/v1/{kind}/0190f0f0-0000-7000-8000-000000000000");
        for (method, body) in [
            (Method::GET, None),
            (Method::PATCH, Some(json!({}))),
            (Method::DELETE, None),
        ] {
            let code = error(&gw, &alice, method, &path, body, StatusCode::NOT_FOUND).await;
            assert_eq!(code, "not_found", "{path}");
        }
    }
}
