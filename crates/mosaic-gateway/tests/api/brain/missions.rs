//! Missions over HTTP: created, listed with filters and pages, changed (milestones
//! replaced, project cleared with `null`) and deleted; progress counted from the
//! linked tasks; team missions shared with members and deleted only by managers.

use mosaic_test_support::engines;
use pretty_assertions::assert_eq;
use reqwest::{Method, StatusCode};
use serde_json::json;

use super::{create, error, field, id, ok};
use crate::support::TestGateway;

engines!(missions_round_trip_with_progress_from_their_tasks);

async fn missions_round_trip_with_progress_from_their_tasks(gw: TestGateway) {
    let root = gw.admin("root").await;
    let (alice_id, alice) = gw.user(&root, "alice").await;
    let garden = create(&gw, &alice, "/api/v1/projects", json!({"name": "Garden"})).await;

    let harvest = create(
        &gw,
        &alice,
        "/api/v1/missions",
        json!({"goal": " Grow our own vegetables ", "success_criteria": "A summer without buying *any*",
            "milestones": [{"title": "Beds built"}, {"title": "Seeds sown", "done": true}],
            "project_id": id(&garden)}),
    )
    .await;
    assert_eq!(
        harvest,
        json!({
            "id": id(&harvest),
            "goal": "Grow our own vegetables",
            "success_criteria": "A summer without buying *any*",
            "milestones": [{"title": "Beds built", "done": false}, {"title": "Seeds sown", "done": true}],
            "project_id": id(&garden),
            "owner": {"type": "user", "id": alice_id},
            "status": "active",
            "progress": {"tasks_total": 0, "tasks_done": 0},
            "created_at": harvest["created_at"],
            "updated_at": harvest["updated_at"],
        })
    );
    let fitness = create(
        &gw,
        &alice,
        "/api/v1/missions",
        json!({"goal": "Run a marathon", "status": "abandoned"}),
    )
    .await;
    let loose = create(
        &gw,
        &alice,
        "/api/v1/missions",
        json!({"goal": "Read more"}),
    )
    .await;

    // Lists: newest first, filtered by status and project, paged by cursor.
    let all = ok(&gw, &alice, Method::GET, "/api/v1/missions", None).await;
    assert_eq!(field(&all, "id"), [id(&loose), id(&fitness), id(&harvest)]);
    let active = ok(
        &gw,
        &alice,
        Method::GET,
        "/api/v1/missions?status=active",
        None,
    )
    .await;
    assert_eq!(field(&active, "id"), [id(&loose), id(&harvest)]);
    let in_garden = ok(
        &gw,
        &alice,
        Method::GET,
        &format!("/api/v1/missions?project_id={}", id(&garden)),
        None,
    )
    .await;
    assert_eq!(field(&in_garden, "id"), [id(&harvest)]);
    let page = ok(&gw, &alice, Method::GET, "/api/v1/missions?limit=2", None).await;
    assert_eq!(field(&page, "id"), [id(&loose), id(&fitness)]);
    let cursor = page["next_cursor"].as_str().unwrap();
    let rest = ok(
        &gw,
        &alice,
        Method::GET,
        &format!("/api/v1/missions?limit=2&cursor={cursor}"),
        None,
    )
    .await;
    assert_eq!(field(&rest, "id"), [id(&harvest)]);
    assert_eq!(rest.get("next_cursor"), None);

    // Progress is counted from the linked tasks, whatever moves them.
    let path = format!("/api/v1/missions/{}", id(&harvest));
    let mut tasks = Vec::new();
    for title in ["Build beds", "Sow seeds", "Water"] {
        let task = create(
            &gw,
            &alice,
            "/api/v1/tasks",
            json!({"title": title, "mission_id": id(&harvest)}),
        )
        .await;
        assert_eq!(task["mission_id"], json!(id(&harvest)));
        tasks.push(task);
    }
    create(&gw, &alice, "/api/v1/tasks", json!({"title": "Unrelated"})).await;
    let progress = |m: &serde_json::Value| m["progress"].clone();
    let got = ok(&gw, &alice, Method::GET, &path, None).await;
    assert_eq!(progress(&got), json!({"tasks_total": 3, "tasks_done": 0}));
    ok(
        &gw,
        &alice,
        Method::PATCH,
        &format!("/api/v1/tasks/{}", id(&tasks[0])),
        Some(json!({"status": "done"})),
    )
    .await;
    let got = ok(&gw, &alice, Method::GET, &path, None).await;
    assert_eq!(progress(&got), json!({"tasks_total": 3, "tasks_done": 1}));
    let linked = ok(
        &gw,
        &alice,
        Method::GET,
        &format!("/api/v1/tasks?mission_id={}", id(&harvest)),
        None,
    )
    .await;
    assert_eq!(
        field(&linked, "title"),
        ["Water", "Sow seeds", "Build beds"]
    );
    // A task moved to another mission, or unlinked with `null`, stops counting.
    ok(
        &gw,
        &alice,
        Method::PATCH,
        &format!("/api/v1/tasks/{}", id(&tasks[1])),
        Some(json!({"mission_id": id(&loose)})),
    )
    .await;
    let unlinked = ok(
        &gw,
        &alice,
        Method::PATCH,
        &format!("/api/v1/tasks/{}", id(&tasks[2])),
        Some(json!({"mission_id": null})),
    )
    .await;
    assert_eq!(unlinked["mission_id"], json!(null));
    let all = ok(&gw, &alice, Method::GET, "/api/v1/missions", None).await;
    let progresses: Vec<_> = all["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(progress)
        .collect();
    assert_eq!(
        progresses,
        [
            json!({"tasks_total": 1, "tasks_done": 0}),
            json!({"tasks_total": 0, "tasks_done": 0}),
            json!({"tasks_total": 1, "tasks_done": 1}),
        ]
    );

    // Changes: absent fields stay, milestones are replaced, `null` clears the project.
    let changed = ok(
        &gw,
        &alice,
        Method::PATCH,
        &path,
        Some(json!({"milestones": [{"title": "Beds built", "done": true},
            {"title": "Seeds sown", "done": true}, {"title": "First harvest"}]})),
    )
    .await;
    assert_eq!(
        changed["milestones"],
        json!([{"title": "Beds built", "done": true}, {"title": "Seeds sown", "done": true},
            {"title": "First harvest", "done": false}])
    );
    assert_eq!(changed["goal"], json!("Grow our own vegetables"));
    assert_eq!(changed["project_id"], json!(id(&garden)));
    let changed = ok(
        &gw,
        &alice,
        Method::PATCH,
        &path,
        Some(json!({"project_id": null, "status": "achieved", "goal": "Eat our own vegetables"})),
    )
    .await;
    assert_eq!(
        (
            changed["project_id"].clone(),
            changed["status"].clone(),
            changed["goal"].clone(),
            changed["milestones"].as_array().unwrap().len(),
        ),
        (
            json!(null),
            json!("achieved"),
            json!("Eat our own vegetables"),
            3
        )
    );
    let in_garden = ok(
        &gw,
        &alice,
        Method::GET,
        &format!("/api/v1/missions?project_id={}", id(&garden)),
        None,
    )
    .await;
    assert_eq!(in_garden["items"], json!([]));

    // Deleting a mission leaves its tasks, linked to nothing.
    let (s, _) = gw.call(Method::DELETE, &path, Some(&alice), None).await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    error(&gw, &alice, Method::GET, &path, None, StatusCode::NOT_FOUND).await;
    let task = ok(
        &gw,
        &alice,
        Method::GET,
        &format!("/api/v1/tasks/{}", id(&tasks[0])),
        None,
    )
    .await;
    assert_eq!(
        (task["status"].clone(), task["mission_id"].clone()),
        (json!("done"), json!(null))
    );
}

#[tokio::test]
async fn a_teams_mission_is_shared_with_members_and_deleted_only_by_its_managers() {
    let gw = TestGateway::start().await;
    let root = gw.admin("root").await;
    let (_, alice) = gw.user(&root, "alice").await;
    let (_, bob) = gw.user(&root, "bob").await;
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
    let mission = create(
        &gw,
        &alice,
        "/api/v1/missions",
        json!({"goal": "Feed the street", "team_id": team_id,
            "milestones": [{"title": "Plot rented"}]}),
    )
    .await;
    assert_eq!(mission["owner"], json!({"type": "team", "id": team_id}));
    let path = format!("/api/v1/missions/{}", id(&mission));

    // Bob, a plain member, sees the mission, ticks a milestone and links his team task ...
    let theirs = ok(&gw, &bob, Method::GET, "/api/v1/missions", None).await;
    assert_eq!(field(&theirs, "id"), [id(&mission)]);
    let ticked = ok(
        &gw,
        &bob,
        Method::PATCH,
        &path,
        Some(json!({"milestones": [{"title": "Plot rented", "done": true}]})),
    )
    .await;
    assert_eq!(
        ticked["milestones"],
        json!([{"title": "Plot rented", "done": true}])
    );
    create(
        &gw,
        &bob,
        "/api/v1/tasks",
        json!({"title": "Sign the lease", "team_id": team_id, "mission_id": id(&mission),
            "status": "done"}),
    )
    .await;
    // ... but a task of his own may not count towards the team's mission ...
    let code = error(
        &gw,
        &bob,
        Method::POST,
        "/api/v1/tasks",
        Some(json!({"title": "Mine", "mission_id": id(&mission)})),
        StatusCode::CONFLICT,
    )
    .await;
    assert_eq!(code, "conflict");
    let got = ok(&gw, &bob, Method::GET, &path, None).await;
    assert_eq!(got["progress"], json!({"tasks_total": 1, "tasks_done": 1}));
    // ... and he does not delete it.
    let code = error(
        &gw,
        &bob,
        Method::DELETE,
        &path,
        None,
        StatusCode::FORBIDDEN,
    )
    .await;
    assert_eq!(code, "forbidden");

    // Carol is no member: the mission does not exist for her.
    for (method, body) in [
        (Method::GET, None),
        (Method::PATCH, Some(json!({"goal": "Mine now"}))),
        (Method::DELETE, None),
    ] {
        error(&gw, &carol, method, &path, body, StatusCode::NOT_FOUND).await;
    }
    let hers = ok(&gw, &carol, Method::GET, "/api/v1/missions", None).await;
    assert_eq!(hers["items"], json!([]));
    error(
        &gw,
        &carol,
        Method::POST,
        "/api/v1/missions",
        Some(json!({"goal": "x", "team_id": team_id})),
        StatusCode::NOT_FOUND,
    )
    .await;

    // The team's owner deletes.
    let (s, _) = gw.call(Method::DELETE, &path, Some(&alice), None).await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    error(&gw, &bob, Method::GET, &path, None, StatusCode::NOT_FOUND).await;
}

#[tokio::test]
async fn bad_mission_input_and_unknown_ids_get_the_contract_error_shapes() {
    let gw = TestGateway::start().await;
    let root = gw.admin("root").await;
    let (_, alice) = gw.user(&root, "alice").await;
    let bad = StatusCode::BAD_REQUEST;
    let too_many: Vec<_> = (0..51).map(|i| json!({"title": format!("m{i}")})).collect();
    for (method, path, body) in [
        (Method::GET, "/api/v1/missions?status=someday", None),
        (Method::GET, "/api/v1/missions?limit=many", None),
        (
            Method::POST,
            "/api/v1/missions",
            Some(json!({"goal": "  "})),
        ),
        (
            Method::POST,
            "/api/v1/missions",
            Some(json!({"goal": "x", "status": "done"})),
        ),
        (
            Method::POST,
            "/api/v1/missions",
            Some(json!({"goal": "x", "milestones": [{"title": ""}]})),
        ),
        (
            Method::POST,
            "/api/v1/missions",
            Some(json!({"goal": "x", "milestones": too_many})),
        ),
        (
            Method::POST,
            "/api/v1/missions",
            Some(json!({"goal": "x", "success_criteria": "c".repeat(10_001)})),
        ),
    ] {
        let code = error(&gw, &alice, method, path, body, bad).await;
        assert_eq!(code, "bad_request", "{path}");
    }
    // Well formed, but naming nothing of the same owner: a conflict with what exists.
    for (path, body) in [
        (
            "/api/v1/missions",
            json!({"goal": "x", "project_id": "nope"}),
        ),
        ("/api/v1/tasks", json!({"title": "x", "mission_id": "nope"})),
    ] {
        let conflict = StatusCode::CONFLICT;
        let code = error(&gw, &alice, Method::POST, path, Some(body), conflict).await;
        assert_eq!(code, "conflict", "{path}");
    }
    let path = "/api/v1/missions/0190f0f0-0000-7000-8000-000000000000";
    for (method, body) in [
        (Method::GET, None),
        (Method::PATCH, Some(json!({}))),
        (Method::DELETE, None),
    ] {
        let code = error(&gw, &alice, method, path, body, StatusCode::NOT_FOUND).await;
        assert_eq!(code, "not_found");
    }
}
