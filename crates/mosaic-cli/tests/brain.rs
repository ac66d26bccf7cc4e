//! End-to-end tests of `mosaic projects|tasks|missions|notes|search`: a real gateway and the
//! real binary, one process per command, as in `cli.rs`.

#![allow(clippy::unwrap_used, clippy::expect_used)]

#[allow(dead_code)] // each test binary uses part of the shared support
mod support;

use pretty_assertions::assert_eq;
use serde_json::Value;

use crate::support::{ids, World};

fn id(v: &Value) -> String {
    v["id"]
        .as_str()
        .unwrap_or_else(|| panic!("no id in {v}"))
        .to_string()
}

#[test]
fn a_project_by_name_holds_tasks_that_filter_change_and_finish() {
    let world = World::new();
    let bob = world.user("bob");
    let me = id(&bob.run(&["whoami", "--json"]).ok().json()["user"]);

    let project = bob
        .run(&[
            "projects",
            "create",
            "ops",
            "--description",
            "Keeping the lights on",
            "--json",
        ])
        .ok()
        .json();
    assert_eq!(project["status"], "active");
    assert_eq!(project["owner"]["type"], "user");

    // --project takes a name; --assignee takes `me`; a bare day is midnight UTC.
    let cert = bob
        .run(&[
            "tasks",
            "create",
            "Renew the certificate",
            "--project",
            "ops",
            "--due",
            "2026-12-01",
            "--label",
            "infra,urgent",
            "--assignee",
            "me",
            "--priority",
            "high",
            "--json",
        ])
        .ok()
        .json();
    assert_eq!(cert["project_id"], project["id"]);
    assert_eq!(cert["assignee_user_id"].as_str(), Some(me.as_str()));
    assert_eq!(cert["labels"], serde_json::json!(["infra", "urgent"]));
    assert_eq!(cert["status"], "todo");
    assert_eq!(cert["priority"], "high");
    assert!(
        cert["due_at"].as_str().unwrap().starts_with("2026-12-01"),
        "{cert}"
    );
    let backup = bob
        .run(&[
            "tasks",
            "create",
            "Test the backups",
            "--body",
            "Restore one **whole** day.",
            "--status",
            "doing",
            "--json",
        ])
        .ok()
        .json();
    let sub = bob
        .run(&[
            "tasks",
            "create",
            "Pick a day",
            "--parent",
            &id(&backup),
            "--json",
        ])
        .ok()
        .json();
    assert_eq!(sub["parent_task_id"], backup["id"]);

    let list = |args: &[&str]| {
        let mut full = vec!["tasks", "list", "--json"];
        full.extend_from_slice(args);
        ids(&bob.run(&full).ok().json())
    };
    assert_eq!(list(&["--project", "ops"]), vec![id(&cert)]);
    assert_eq!(list(&["--status", "doing"]), vec![id(&backup)]);
    assert_eq!(list(&["--label", "infra"]), vec![id(&cert)]);
    assert_eq!(list(&["--assignee", "me"]), vec![id(&cert)]);
    assert_eq!(list(&["--due-before", "2026-12-02"]), vec![id(&cert)]);
    assert_eq!(list(&["--due-before", "2026-12-01"]), Vec::<String>::new());
    assert_eq!(list(&["--parent", &id(&backup)]), vec![id(&sub)]);
    assert_eq!(list(&["--q", "backups"]), vec![id(&backup)]);
    assert_eq!(list(&[]).len(), 3);
    let paged = bob
        .run(&["tasks", "list", "--limit", "1", "--all", "--json"])
        .ok()
        .json();
    assert_eq!(ids(&paged).len(), 3, "--all follows the cursor: {paged}");

    // Edits are partial; --no-… clears.
    let edited = bob
        .run(&[
            "tasks",
            "edit",
            &id(&cert),
            "--no-due",
            "--no-project",
            "--label",
            "infra",
            "--json",
        ])
        .ok()
        .json();
    assert_eq!(edited["due_at"], Value::Null);
    assert_eq!(edited["project_id"], Value::Null);
    assert_eq!(edited["labels"], serde_json::json!(["infra"]));
    assert_eq!(edited["title"], cert["title"]);
    assert_eq!(edited["priority"], "high");
    let nothing = bob.run(&["tasks", "edit", &id(&cert)]).expect_code(2);
    assert!(nothing.stderr.contains("nothing to change"), "{nothing}");

    let done = bob
        .run(&["tasks", "done", &id(&cert), "--json"])
        .ok()
        .json();
    assert_eq!(done["status"], "done");
    assert!(done["done_at"].is_string(), "{done}");

    // Tables and fields for people.
    let table = bob.run(&["tasks", "list"]).ok();
    assert!(table.stdout.starts_with("ID"), "{table}");
    assert!(table.stdout.contains("Renew the certificate"), "{table}");
    let shown = bob.run(&["tasks", "show", &id(&backup)]).ok();
    assert!(shown.stdout.contains("status:"), "{shown}");
    assert!(
        shown.stdout.ends_with("\nRestore one **whole** day.\n"),
        "the body follows the fields: {shown}"
    );

    let projects = bob.run(&["projects", "list", "--json"]).ok().json();
    assert_eq!(ids(&projects), vec![id(&project)]);
    let paused = bob
        .run(&["projects", "edit", "ops", "--status", "paused", "--json"])
        .ok()
        .json();
    assert_eq!(paused["status"], "paused");
    assert_eq!(
        ids(&bob
            .run(&["projects", "list", "--status", "active", "--json"])
            .ok()
            .json()),
        Vec::<String>::new()
    );
    let shown = bob.run(&["projects", "show", "ops"]).ok();
    assert!(shown.stdout.contains("Keeping the lights on"), "{shown}");

    bob.run(&["tasks", "delete", &id(&sub)]).ok();
    bob.run(&["tasks", "show", &id(&sub)]).expect_code(5);
    bob.run(&["projects", "delete", "ops"]).ok();
    bob.run(&["projects", "show", &id(&project)]).expect_code(5);
    bob.run(&["tasks", "create", "x", "--status", "someday"])
        .expect_code(2);
}

#[test]
fn notes_take_their_body_from_a_flag_stdin_or_a_file_and_search_finds_them() {
    let world = World::new();
    let bob = world.user("bob");

    let file = world.sandbox.path("checklist.md");
    std::fs::write(
        &file,
        "# Release\n\n- tag the release\n- publish the notes\n",
    )
    .unwrap();
    let from_file = bob
        .run(&[
            "notes",
            "create",
            "Release checklist",
            "--file",
            file.to_str().unwrap(),
            "--tag",
            "Release",
            "--json",
        ])
        .ok()
        .json();
    assert_eq!(
        from_file["body"],
        "# Release\n\n- tag the release\n- publish the notes\n"
    );
    assert_eq!(from_file["tags"], serde_json::json!(["release"]));
    let from_stdin = bob
        .run_with_stdin(
            &["notes", "create", "Standup", "--body", "-", "--json"],
            "The pelican deploy is blocked on review.\n",
        )
        .ok()
        .json();
    assert_eq!(
        from_stdin["body"],
        "The pelican deploy is blocked on review.\n"
    );
    let task = bob
        .run(&["tasks", "create", "Review the pelican deploy", "--json"])
        .ok()
        .json();

    assert_eq!(
        ids(&bob
            .run(&["notes", "list", "--tag", "release", "--json"])
            .ok()
            .json()),
        vec![id(&from_file)]
    );
    assert_eq!(
        ids(&bob
            .run(&["notes", "list", "--q", "pelican", "--json"])
            .ok()
            .json()),
        vec![id(&from_stdin)]
    );

    let hits = bob.run(&["search", "pelican", "--json"]).ok().json();
    let mut found: Vec<(String, String)> = hits["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| (h["kind"].as_str().unwrap().to_string(), id(h)))
        .collect();
    found.sort();
    assert_eq!(
        found,
        vec![
            ("note".to_string(), id(&from_stdin)),
            ("task".to_string(), id(&task)),
        ]
    );
    assert!(hits["items"][0]["score"].is_number(), "{hits}");
    let notes_only = bob
        .run(&["search", "pelican", "--kind", "note", "--json"])
        .ok()
        .json();
    assert_eq!(ids(&notes_only), vec![id(&from_stdin)]);
    let one = bob
        .run(&["search", "pelican", "--limit", "1", "--json"])
        .ok()
        .json();
    assert_eq!(ids(&one).len(), 1);
    let table = bob.run(&["search", "pelican"]).ok();
    assert!(table.stdout.starts_with("KIND"), "{table}");
    assert!(table.stdout.contains("«pelican»"), "{table}");

    let edited = bob
        .run(&[
            "notes",
            "edit",
            &id(&from_file),
            "--title",
            "Release list",
            "--no-tags",
            "--json",
        ])
        .ok()
        .json();
    assert_eq!(edited["title"], "Release list");
    assert_eq!(edited["tags"], serde_json::json!([]));
    assert_eq!(edited["body"], from_file["body"]);
    let shown = bob.run(&["notes", "show", &id(&from_file)]).ok();
    assert!(shown.stdout.contains("- publish the notes"), "{shown}");

    bob.run(&["notes", "delete", &id(&from_file)]).ok();
    bob.run(&["notes", "show", &id(&from_file)]).expect_code(5);
}

#[test]
fn team_items_are_shared_with_members_and_hidden_from_everyone_else() {
    let world = World::new();
    let bob = world.user("bob");
    let carol = world.user("carol");
    let dave = world.user("dave");
    let team = bob
        .run(&["teams", "create", "platform", "--json"])
        .ok()
        .json();
    bob.run(&["teams", "add-member", &id(&team), "carol"]).ok();

    // --team takes a name.
    let project = bob
        .run(&[
            "projects", "create", "infra", "--team", "platform", "--json",
        ])
        .ok()
        .json();
    assert_eq!(project["owner"]["type"], "team");
    assert_eq!(project["owner"]["id"], team["id"]);
    let note = bob
        .run(&[
            "notes",
            "create",
            "Runbook",
            "--team",
            "platform",
            "--project",
            &id(&project),
            "--body",
            "Restart the flux capacitor.",
            "--json",
        ])
        .ok()
        .json();

    let seen = carol
        .run(&["projects", "list", "--team", "platform", "--json"])
        .ok()
        .json();
    assert_eq!(ids(&seen), vec![id(&project)]);
    let task = carol
        .run(&[
            "tasks",
            "create",
            "Rotate keys",
            "--team",
            &id(&team),
            "--project",
            "infra",
            "--json",
        ])
        .ok()
        .json();
    assert_eq!(task["owner"]["type"], "team");
    assert_eq!(
        ids(&bob.run(&["tasks", "list", "--json"]).ok().json()),
        vec![id(&task)]
    );
    let hits = carol.run(&["search", "capacitor", "--json"]).ok().json();
    assert_eq!(ids(&hits), vec![id(&note)]);
    let mission = carol
        .run(&[
            "missions",
            "create",
            "Zero downtime",
            "--team",
            "platform",
            "--project",
            "infra",
            "--json",
        ])
        .ok()
        .json();
    assert_eq!(mission["owner"]["id"], team["id"]);
    bob.run(&["tasks", "edit", &id(&task), "--mission", &id(&mission)])
        .ok();
    let shown = bob
        .run(&["missions", "show", &id(&mission), "--json"])
        .ok()
        .json();
    assert_eq!(shown["progress"]["tasks_total"], 1);
    // A plain member does not delete the team's mission; its owner does, at the end.
    carol
        .run(&["missions", "delete", &id(&mission)])
        .expect_code(4);

    assert_eq!(
        ids(&dave.run(&["projects", "list", "--json"]).ok().json()),
        Vec::<String>::new()
    );
    dave.run(&["notes", "show", &id(&note)]).expect_code(5);
    dave.run(&["missions", "show", &id(&mission)])
        .expect_code(5);
    assert_eq!(
        ids(&dave.run(&["missions", "list", "--json"]).ok().json()),
        Vec::<String>::new()
    );
    bob.run(&["missions", "delete", &id(&mission)]).ok();
    assert_eq!(
        ids(&dave.run(&["search", "capacitor", "--json"]).ok().json()),
        Vec::<String>::new()
    );
}

#[test]
fn a_mission_counts_its_tasks_and_ticks_its_milestones() {
    let world = World::new();
    let bob = world.user("bob");
    bob.run(&["projects", "create", "ops", "--json"]).ok();

    let mission = bob
        .run_with_stdin(
            &[
                "missions",
                "create",
                "Ship 2.0",
                "--criteria",
                "-",
                "--milestone",
                "Feature freeze",
                "--milestone",
                "Release candidate, signed",
                "--project",
                "ops",
                "--json",
            ],
            "Every blocker closed.\n",
        )
        .ok()
        .json();
    assert_eq!(mission["goal"], "Ship 2.0");
    assert_eq!(mission["success_criteria"], "Every blocker closed.\n");
    assert_eq!(
        mission["milestones"],
        serde_json::json!([{"title": "Feature freeze", "done": false},
            {"title": "Release candidate, signed", "done": false}])
    );
    assert_eq!(mission["status"], "active");
    let other = bob
        .run(&[
            "missions",
            "create",
            "Hire",
            "--status",
            "abandoned",
            "--json",
        ])
        .ok()
        .json();
    let mid = id(&mission);

    // Tasks link with --mission; progress follows them.
    let mut tasks = Vec::new();
    for title in ["Close blockers", "Tag the RC", "Write notes"] {
        let task = bob
            .run(&["tasks", "create", title, "--mission", &mid, "--json"])
            .ok()
            .json();
        assert_eq!(task["mission_id"].as_str(), Some(mid.as_str()));
        tasks.push(id(&task));
    }
    bob.run(&["tasks", "done", &tasks[0]]).ok();
    bob.run(&["tasks", "edit", &tasks[2], "--no-mission", "--json"])
        .ok();
    let linked = bob
        .run(&["tasks", "list", "--mission", &mid, "--json"])
        .ok()
        .json();
    assert_eq!(ids(&linked), vec![tasks[1].clone(), tasks[0].clone()]);
    let shown = bob.run(&["missions", "show", &mid]).ok();
    assert!(
        shown.stdout.contains("1/2 tasks done, 50%"),
        "progress for people: {shown}"
    );
    assert!(shown.stdout.contains("  1. [ ] Feature freeze"), "{shown}");
    assert!(
        shown
            .stdout
            .ends_with("\nSuccess criteria:\nEvery blocker closed.\n"),
        "{shown}"
    );

    // Lists filter by status and project and show progress.
    let list = |args: &[&str]| {
        let mut full = vec!["missions", "list", "--json"];
        full.extend_from_slice(args);
        ids(&bob.run(&full).ok().json())
    };
    assert_eq!(list(&[]), vec![id(&other), mid.clone()]);
    assert_eq!(list(&["--status", "active"]), vec![mid.clone()]);
    assert_eq!(list(&["--project", "ops"]), vec![mid.clone()]);
    assert_eq!(list(&["--limit", "1", "--all"]).len(), 2);
    let table = bob.run(&["missions", "list"]).ok();
    assert!(table.stdout.starts_with("ID"), "{table}");
    assert!(table.stdout.contains("1/2 tasks done, 50%"), "{table}");
    assert!(table.stdout.contains("no tasks yet"), "{table}");

    // Milestones are ticked, added and removed by number.
    let edited = bob
        .run(&[
            "missions",
            "edit",
            &mid,
            "--milestone-done",
            "1",
            "--add-milestone",
            "Announce",
            "--no-project",
            "--json",
        ])
        .ok()
        .json();
    assert_eq!(
        edited["milestones"],
        serde_json::json!([{"title": "Feature freeze", "done": true},
            {"title": "Release candidate, signed", "done": false},
            {"title": "Announce", "done": false}])
    );
    assert_eq!(edited["project_id"], Value::Null);
    assert_eq!(edited["goal"], "Ship 2.0");
    let edited = bob
        .run(&[
            "missions",
            "edit",
            &mid,
            "--milestone-undone",
            "1",
            "--remove-milestone",
            "2",
            "--status",
            "achieved",
            "--json",
        ])
        .ok()
        .json();
    assert_eq!(
        edited["milestones"],
        serde_json::json!([{"title": "Feature freeze", "done": false},
            {"title": "Announce", "done": false}])
    );
    assert_eq!(edited["status"], "achieved");
    let wrong = bob
        .run(&["missions", "edit", &mid, "--milestone-done", "7"])
        .expect_code(2);
    assert!(wrong.stderr.contains("no milestone 7"), "{wrong}");
    let nothing = bob.run(&["missions", "edit", &mid]).expect_code(2);
    assert!(nothing.stderr.contains("nothing to change"), "{nothing}");
    let cleared = bob
        .run(&["missions", "edit", &mid, "--no-milestones", "--json"])
        .ok()
        .json();
    assert_eq!(cleared["milestones"], serde_json::json!([]));

    // Deleting the mission leaves its tasks.
    bob.run(&["missions", "delete", &mid]).ok();
    bob.run(&["missions", "show", &mid]).expect_code(5);
    let task = bob.run(&["tasks", "show", &tasks[0], "--json"]).ok().json();
    assert_eq!(task["mission_id"], Value::Null);
    bob.run(&["missions", "create", "x", "--status", "done"])
        .expect_code(2);
}

#[test]
fn memories_are_added_pinned_searched_and_forgotten() {
    let world = World::new();
    let bob = world.user("bob");
    let tea = bob
        .run(&[
            "memory",
            "add",
            "Bob takes his tea with lemon",
            "--kind",
            "preference",
            "--tag",
            "Food,drink",
            "--importance",
            "4",
            "--pin",
            "--json",
        ])
        .ok()
        .json();
    assert_eq!(tea["kind"], "preference");
    assert_eq!(tea["tags"], serde_json::json!(["drink", "food"]));
    assert_eq!(
        (tea["importance"].clone(), tea["pinned"].clone()),
        (4.into(), true.into())
    );
    let helper = bob
        .run(&["agents", "create", "helper", "--json"])
        .ok()
        .json();
    let standup = bob
        .run(&[
            "memory",
            "add",
            "Stand-up is at 9:30",
            "--pin",
            "--agent",
            "helper",
            "--json",
        ])
        .ok()
        .json();
    assert_eq!(standup["agent_id"], helper["id"]);
    bob.run(&["memory", "add", "Visited Porto in May", "--kind", "event"])
        .ok();

    let pinned = bob
        .run(&["memory", "list", "--pinned", "--json"])
        .ok()
        .json();
    let mut pinned_ids = ids(&pinned);
    pinned_ids.sort();
    let mut expected = vec![id(&tea), id(&standup)];
    expected.sort();
    assert_eq!(pinned_ids, expected);
    let events = bob
        .run(&["memory", "list", "--kind", "event", "--json"])
        .ok()
        .json();
    assert_eq!(events["items"][0]["text"], "Visited Porto in May");
    let table = bob.run(&["memory", "list"]).ok();
    assert!(table.stdout.starts_with("ID"), "{table}");
    assert!(
        table.stdout.contains("Bob takes his tea with lemon"),
        "{table}"
    );

    // Search finds memories by their words (this gateway has no embedding model).
    let hits = bob
        .run(&["search", "lemon", "--kind", "memory", "--json"])
        .ok()
        .json();
    assert_eq!(hits["mode"], "lexical");
    assert_eq!(ids(&hits), vec![id(&tea)]);
    assert_eq!(hits["items"][0]["scores"]["lexical_rank"], 1);

    let edited = bob
        .run(&[
            "memory",
            "edit",
            &id(&tea),
            "--unpin",
            "--no-tags",
            "--json",
        ])
        .ok()
        .json();
    assert_eq!(edited["pinned"], false);
    assert_eq!(edited["tags"], serde_json::json!([]));
    let shown = bob.run(&["memory", "show", &id(&tea)]).ok();
    assert!(shown.stdout.contains("pinned"), "{shown}");
    bob.run(&["memory", "edit", &id(&tea)]).expect_code(2);
    bob.run(&["memory", "add", "x", "--importance", "9"])
        .expect_code(2);

    // Nobody else sees them.
    let carol = world.user("carol");
    carol.run(&["memory", "show", &id(&tea)]).expect_code(5);
    assert_eq!(
        ids(&carol.run(&["memory", "list", "--json"]).ok().json()),
        Vec::<String>::new()
    );

    bob.run(&["memory", "forget", &id(&tea)]).ok();
    bob.run(&["memory", "show", &id(&tea)]).expect_code(5);
}
