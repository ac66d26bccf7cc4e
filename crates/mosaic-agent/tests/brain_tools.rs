//! The brain tools against a real SQLite store, called the way the runtime calls them
//! (through the registry's `decide`, so the schema is applied first): what each does,
//! what its schema refuses, and that a tool sees and changes only what its caller may.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use mosaic_agent::tools::brain::Op;
use mosaic_agent::tools::{Decision, Registry, ToolContext};
use mosaic_api::{AgentTool, TeamRole, ToolPolicy};
use mosaic_store::{Principal, Store};
use mosaic_test_support::people::{people, sqlite_store};
use pretty_assertions::assert_eq;
use serde_json::{json, Value};
use tokio_util::sync::CancellationToken;

/// A store with users alice, bob and carol; alice owns team "crew", bob is a member.
struct Brain {
    store: Store,
    registry: Registry,
    alice: Principal,
    bob: Principal,
    carol: Principal,
    team_id: String,
    _dir: tempfile::TempDir,
}

impl Brain {
    async fn open() -> Brain {
        let dir = tempfile::tempdir().unwrap();
        let store = sqlite_store(dir.path(), "brain.db").await;
        let (_, [alice, bob, carol]) = people(&store, ["alice", "bob", "carol"]).await;
        let team = store.create_team(&alice, "crew").await.unwrap();
        store
            .put_team_member(&alice, &team.id, "bob", TeamRole::Member)
            .await
            .unwrap();
        Brain {
            registry: Registry::default().with_brain(store.clone(), None),
            store,
            alice,
            bob,
            carol,
            team_id: team.id,
            _dir: dir,
        }
    }

    fn policy() -> Vec<AgentTool> {
        Op::ALL
            .iter()
            .map(|op| AgentTool {
                name: op.name().into(),
                policy: ToolPolicy::Allowed,
            })
            .collect()
    }

    /// Call a tool as `p`: `Ok(output as JSON)` or `Err(error text)`. A schema refusal
    /// fails the test; use [`Brain::refusal`] for those.
    async fn call(&self, p: &Principal, name: &str, args: Value) -> Result<Value, String> {
        let (tool, args) = match self
            .registry
            .decide(&Self::policy(), name, &args.to_string())
        {
            Decision::Run(tool, args) => (tool, args),
            Decision::Ask(..) => panic!("{name} asked for approval"),
            Decision::Refuse(message) => panic!("{name} was refused: {message}"),
        };
        let ctx = ToolContext {
            principal: p.clone(),
            session_id: "s".into(),
            agent_id: None,
            cancel: CancellationToken::new(),
        };
        let out = tool.call(&ctx, args).await;
        if out.is_error {
            Err(out.output)
        } else {
            Ok(serde_json::from_str(&out.output).unwrap())
        }
    }

    async fn ok(&self, p: &Principal, name: &str, args: Value) -> Value {
        self.call(p, name, args.clone())
            .await
            .unwrap_or_else(|e| panic!("{name} {args} failed: {e}"))
    }

    async fn err(&self, p: &Principal, name: &str, args: Value) -> String {
        match self.call(p, name, args.clone()).await {
            Ok(v) => panic!("{name} {args} succeeded: {v}"),
            Err(e) => e,
        }
    }

    /// What the schema says about arguments it refuses.
    fn refusal(&self, name: &str, args: Value) -> String {
        match self
            .registry
            .decide(&Self::policy(), name, &args.to_string())
        {
            Decision::Refuse(message) => message,
            Decision::Run(..) | Decision::Ask(..) => panic!("{name} accepted {args}"),
        }
    }
}

fn ids(listing: &Value) -> Vec<&str> {
    listing["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["id"].as_str().unwrap())
        .collect()
}

fn id(item: &Value) -> String {
    item["id"].as_str().unwrap().to_string()
}

#[tokio::test]
async fn every_brain_tool_is_registered_and_none_deletes() {
    let b = Brain::open().await;
    let names = b.registry.names();
    for op in Op::ALL {
        assert!(names.contains(&op.name().to_string()), "{}", op.name());
    }
    assert!(names.iter().all(|n| !n.starts_with("delete")), "{names:?}");
    let offered = b.registry.offered(&Brain::policy());
    assert_eq!(offered.len(), Op::ALL.len());
}

#[tokio::test]
async fn tasks_are_created_listed_updated_and_completed_as_the_caller() {
    let b = Brain::open().await;
    let task = b
        .ok(
            &b.alice,
            "create_task",
            json!({"title": "Water the garden", "labels": ["Home", "home"], "priority": "high"}),
        )
        .await;
    let task_id = id(&task);
    // Compact: no empty fields, no creation time, no owner for one's own items.
    let mut shown = task.clone();
    shown["id"] = json!("-");
    shown["updated_at"] = json!("-");
    assert_eq!(
        shown,
        json!({"id": "-", "title": "Water the garden", "status": "todo", "priority": "high",
            "labels": ["home"], "updated_at": "-"})
    );

    let todo = b
        .ok(&b.alice, "list_tasks", json!({"status": "todo"}))
        .await;
    assert_eq!(ids(&todo), vec![task_id.as_str()]);
    let by_label = b
        .ok(
            &b.alice,
            "list_tasks",
            json!({"label": "home", "q": "garden"}),
        )
        .await;
    assert_eq!(ids(&by_label), vec![task_id.as_str()]);

    let done = b
        .ok(
            &b.alice,
            "update_task",
            json!({"id": task_id, "status": "done", "due_at": null}),
        )
        .await;
    assert_eq!(done["status"], "done");
    assert!(done["done_at"].is_string(), "{done}");
    assert_eq!(
        ids(&b
            .ok(&b.alice, "list_tasks", json!({"status": "todo"}))
            .await),
        Vec::<&str>::new()
    );
    assert_eq!(
        b.store.get_task(&b.alice, &task_id).await.unwrap().status,
        mosaic_api::TaskStatus::Done
    );
}

#[tokio::test]
async fn the_schemas_refuse_what_the_tools_cannot_do() {
    let b = Brain::open().await;
    let missing = b.refusal("create_task", json!({}));
    assert!(
        missing.contains("\"title\" is a required property"),
        "{missing}"
    );
    let status = b.refusal("update_task", json!({"id": "t", "status": "finished"}));
    assert!(status.contains("/status"), "{status}");
    let nothing = b.refusal("update_task", json!({"id": "t"}));
    assert!(nothing.contains("update_task"), "{nothing}");
    let extra = b.refusal("list_tasks", json!({"owner": "bob"}));
    assert!(extra.contains("owner"), "{extra}");
    let big = b.refusal("list_notes", json!({"limit": 1000}));
    assert!(big.contains("/limit"), "{big}");
    let kinds = b.refusal("search_brain", json!({"q": "x", "kinds": ["email"]}));
    assert!(kinds.contains("/kinds/0"), "{kinds}");
    let milestone = b.refusal(
        "create_mission",
        json!({"goal": "g", "milestones": [{"title": "a", "when": "soon"}]}),
    );
    assert!(milestone.contains("when"), "{milestone}");
    let blank = b.refusal("create_note", json!({"title": ""}));
    assert!(blank.contains("/title"), "{blank}");
}

#[tokio::test]
async fn store_refusals_come_back_as_errors_the_model_can_act_on() {
    let b = Brain::open().await;
    let bad_time = b
        .err(
            &b.alice,
            "create_task",
            json!({"title": "t", "due_at": "tomorrow"}),
        )
        .await;
    assert!(bad_time.contains("'tomorrow' is not a time"), "{bad_time}");
    let no_project = b
        .err(
            &b.alice,
            "create_task",
            json!({"title": "t", "project_id": "p-none"}),
        )
        .await;
    assert_eq!(no_project, "no project p-none with the same owner");
    let missing = b
        .err(
            &b.alice,
            "update_note",
            json!({"id": "n-none", "title": "x"}),
        )
        .await;
    assert_eq!(missing, "no note n-none visible to you");
    let missing = b
        .err(
            &b.alice,
            "get_brain_item",
            json!({"kind": "mission", "id": "m-none"}),
        )
        .await;
    assert_eq!(missing, "no mission m-none visible to you");
}

#[tokio::test]
async fn another_users_items_are_not_found_and_never_listed() {
    let b = Brain::open().await;
    let task = id(&b
        .ok(&b.alice, "create_task", json!({"title": "Secret plan"}))
        .await);
    let note = id(&b
        .ok(&b.alice, "create_note", json!({"title": "Secret diary"}))
        .await);
    let project = id(&b
        .ok(&b.alice, "create_project", json!({"name": "Secret"}))
        .await);
    let mission = id(&b
        .ok(&b.alice, "create_mission", json!({"goal": "Secret"}))
        .await);

    for (kind, id) in [
        ("task", &task),
        ("note", &note),
        ("project", &project),
        ("mission", &mission),
    ] {
        let got = b
            .err(&b.bob, "get_brain_item", json!({"kind": kind, "id": id}))
            .await;
        assert_eq!(got, format!("no {kind} {id} visible to you"));
    }
    let update = b
        .err(&b.bob, "update_task", json!({"id": task, "status": "done"}))
        .await;
    assert_eq!(update, format!("no task {task} visible to you"));
    let update = b
        .err(&b.bob, "update_note", json!({"id": note, "body": "mine"}))
        .await;
    assert_eq!(update, format!("no note {note} visible to you"));
    let update = b
        .err(
            &b.bob,
            "update_project",
            json!({"id": project, "status": "done"}),
        )
        .await;
    assert_eq!(update, format!("no project {project} visible to you"));
    let update = b
        .err(
            &b.bob,
            "update_mission",
            json!({"id": mission, "status": "achieved"}),
        )
        .await;
    assert_eq!(update, format!("no mission {mission} visible to you"));
    // Nor can bob hang his own items on hers.
    let linked = b
        .err(
            &b.bob,
            "create_task",
            json!({"title": "t", "mission_id": mission}),
        )
        .await;
    assert_eq!(linked, format!("no mission {mission} with the same owner"));

    for list in ["list_tasks", "list_notes", "list_projects", "list_missions"] {
        assert_eq!(
            ids(&b.ok(&b.bob, list, json!({})).await),
            Vec::<&str>::new(),
            "{list}"
        );
    }
    let found = b.ok(&b.bob, "search_brain", json!({"q": "secret"})).await;
    assert_eq!(found, json!({"items": []}));
    // Alice's task is as she left it.
    assert_eq!(
        b.store.get_task(&b.alice, &task).await.unwrap().status,
        mosaic_api::TaskStatus::Todo
    );
}

#[tokio::test]
async fn team_items_are_shared_with_members_only() {
    let b = Brain::open().await;
    let task = b
        .ok(
            &b.alice,
            "create_task",
            json!({"title": "Crew chores", "team_id": b.team_id}),
        )
        .await;
    assert_eq!(task["team_id"], json!(b.team_id));
    let task_id = id(&task);

    // Bob, a member, sees and changes it.
    assert_eq!(
        ids(&b.ok(&b.bob, "list_tasks", json!({})).await),
        vec![task_id.as_str()]
    );
    let changed = b
        .ok(
            &b.bob,
            "update_task",
            json!({"id": task_id, "status": "doing", "assignee_user_id": b.bob.local_user().unwrap()}),
        )
        .await;
    assert_eq!(changed["status"], "doing");
    assert_eq!(
        changed["assignee_user_id"],
        json!(b.bob.local_user().unwrap())
    );
    let note = b
        .ok(
            &b.bob,
            "create_note",
            json!({"title": "Crew rota", "team_id": b.team_id}),
        )
        .await;
    assert_eq!(note["team_id"], json!(b.team_id));

    // Carol, an outsider, neither sees nor changes it, nor writes into the team.
    let hidden = b
        .err(
            &b.carol,
            "update_task",
            json!({"id": task_id, "status": "done"}),
        )
        .await;
    assert_eq!(hidden, format!("no task {task_id} visible to you"));
    assert_eq!(
        ids(&b.ok(&b.carol, "list_tasks", json!({})).await),
        Vec::<&str>::new()
    );
    let outsider = b
        .err(
            &b.carol,
            "create_task",
            json!({"title": "Sneak in", "team_id": b.team_id}),
        )
        .await;
    assert_eq!(outsider, format!("no team {} visible to you", b.team_id));
}

#[tokio::test]
async fn projects_are_created_changed_and_listed_by_status() {
    let b = Brain::open().await;
    let project = b
        .ok(
            &b.alice,
            "create_project",
            json!({"name": "Garden", "description": "Veg"}),
        )
        .await;
    assert_eq!(project["status"], "active");
    let project_id = id(&project);
    let paused = b
        .ok(
            &b.alice,
            "update_project",
            json!({"id": project_id, "status": "paused"}),
        )
        .await;
    assert_eq!(paused["status"], "paused");
    assert_eq!(paused["description"], "Veg");
    let listed = b
        .ok(&b.alice, "list_projects", json!({"status": "paused"}))
        .await;
    assert_eq!(ids(&listed), vec![project_id.as_str()]);
    let active = b
        .ok(&b.alice, "list_projects", json!({"status": "active"}))
        .await;
    assert_eq!(ids(&active), Vec::<&str>::new());
    let task = b
        .ok(
            &b.alice,
            "create_task",
            json!({"title": "Dig", "project_id": project_id}),
        )
        .await;
    let in_project = b
        .ok(&b.alice, "list_tasks", json!({"project_id": project_id}))
        .await;
    assert_eq!(ids(&in_project), vec![task["id"].as_str().unwrap()]);
}

#[tokio::test]
async fn missions_track_milestones_and_the_progress_of_linked_tasks() {
    let b = Brain::open().await;
    let mission = b
        .ok(
            &b.alice,
            "create_mission",
            json!({"goal": "Harvest", "success_criteria": "10 kg",
                "milestones": [{"title": "Sow"}, {"title": "Weed"}]}),
        )
        .await;
    let mission_id = id(&mission);
    assert_eq!(
        mission["milestones"],
        json!([{"title": "Sow", "done": false}, {"title": "Weed", "done": false}])
    );
    let sow = id(&b
        .ok(
            &b.alice,
            "create_task",
            json!({"title": "Sow beans", "mission_id": mission_id}),
        )
        .await);
    b.ok(
        &b.alice,
        "create_task",
        json!({"title": "Weed beds", "mission_id": mission_id}),
    )
    .await;
    b.ok(
        &b.alice,
        "update_task",
        json!({"id": sow, "status": "done"}),
    )
    .await;

    let updated = b
        .ok(
            &b.alice,
            "update_mission",
            json!({"id": mission_id, "milestones": [{"title": "Sow", "done": true}, {"title": "Weed"}]}),
        )
        .await;
    assert_eq!(
        updated["milestones"][0],
        json!({"title": "Sow", "done": true})
    );
    assert_eq!(
        updated["progress"],
        json!({"tasks_total": 2, "tasks_done": 1})
    );
    let listed = b
        .ok(&b.alice, "list_missions", json!({"status": "active"}))
        .await;
    assert_eq!(ids(&listed), vec![mission_id.as_str()]);
    let linked = b
        .ok(
            &b.alice,
            "list_tasks",
            json!({"mission_id": mission_id, "status": "done"}),
        )
        .await;
    assert_eq!(ids(&linked), vec![sow.as_str()]);
    let achieved = b
        .ok(
            &b.alice,
            "update_mission",
            json!({"id": mission_id, "status": "achieved"}),
        )
        .await;
    assert_eq!(achieved["status"], "achieved");
}

#[tokio::test]
async fn notes_are_searchable_and_lists_cut_long_bodies() {
    let b = Brain::open().await;
    let long = format!("Tomatoes need {}", "water ".repeat(100));
    let note = b
        .ok(
            &b.alice,
            "create_note",
            json!({"title": "Tomato care", "body": long, "tags": ["Garden"]}),
        )
        .await;
    let note_id = id(&note);
    assert_eq!(note["tags"], json!(["garden"]));
    assert_eq!(note["body"], json!(long));

    let listed = b
        .ok(&b.alice, "list_notes", json!({"tag": "garden", "limit": 5}))
        .await;
    assert_eq!(ids(&listed), vec![note_id.as_str()]);
    let excerpt = listed["items"][0]["body"].as_str().unwrap();
    assert_eq!(excerpt.chars().count(), 201);
    assert!(excerpt.ends_with('…'));
    let full = b
        .ok(
            &b.alice,
            "get_brain_item",
            json!({"kind": "note", "id": note_id}),
        )
        .await;
    assert_eq!(full["body"], json!(long));

    let renamed = b
        .ok(
            &b.alice,
            "update_note",
            json!({"id": note_id, "title": "Tomato notes", "body": "Short"}),
        )
        .await;
    assert_eq!(
        (renamed["title"].as_str(), renamed["body"].as_str()),
        (Some("Tomato notes"), Some("Short"))
    );

    b.ok(
        &b.alice,
        "create_task",
        json!({"title": "Buy tomato stakes"}),
    )
    .await;
    let hits = b.ok(&b.alice, "search_brain", json!({"q": "tomato"})).await;
    assert_eq!(hits["items"].as_array().unwrap().len(), 2, "{hits}");
    let notes_only = b
        .ok(
            &b.alice,
            "search_brain",
            json!({"q": "tomato", "kinds": ["note"], "limit": 5}),
        )
        .await;
    assert_eq!(ids(&notes_only), vec![note_id.as_str()]);
    let hit = &notes_only["items"][0];
    assert_eq!(hit["kind"], "note");
    assert!(hit["snippet"].as_str().unwrap().contains("«"), "{hit}");
}

/// Schemas compile at a tool's first call, not at registration: this is where one that
/// does not compile is caught, before a release.
#[tokio::test]
async fn every_builtin_schema_compiles() {
    let b = Brain::open().await;
    let all = Registry::builtin(mosaic_agent::tools::FetchConfig::default())
        .with_brain(b.store.clone(), None);
    assert!(all.names().len() > 10, "{:?}", all.names());
    assert_eq!(all.broken_schemas(), Vec::<(String, String)>::new());
}

struct Broken;

impl mosaic_agent::tools::Tool for Broken {
    fn spec(&self) -> mosaic_llm::ToolSpec {
        mosaic_llm::ToolSpec {
            name: "broken".into(),
            description: "a schema that is not one".into(),
            parameters: json!({"type": 12}),
        }
    }

    fn call<'a>(
        &'a self,
        _ctx: &'a ToolContext,
        _args: Value,
    ) -> mosaic_llm::BoxFuture<'a, mosaic_agent::tools::ToolOutput> {
        Box::pin(async { mosaic_agent::tools::ToolOutput::ok("ran") })
    }
}

#[test]
fn a_tool_whose_schema_does_not_compile_is_never_run() {
    let mut registry = Registry::default();
    registry.add(std::sync::Arc::new(Broken));
    let policy = [AgentTool {
        name: "broken".into(),
        policy: ToolPolicy::Allowed,
    }];
    match registry.decide(&policy, "broken", "{}") {
        Decision::Refuse(why) => assert!(why.contains("is broken"), "{why}"),
        _ => panic!("a broken tool was let through"),
    }
    assert_eq!(registry.broken_schemas().len(), 1);
}
