//! End-to-end tests of the `mosaic` binary: a real gateway (`mosaic serve` on a loopback
//! port the kernel picks, SQLite in a temporary directory) driven by the CLI the way a
//! person would drive it, one process per command.
//!
//! Every process gets a scratch HOME and XDG directories and no inherited `MOSAIC_*`
//! variables, so nothing reads or writes the real home; each identity (admin, a user)
//! has its own credentials file through `MOSAIC_CREDENTIALS`.

#![allow(clippy::unwrap_used, clippy::expect_used)]

#[allow(dead_code)] // each test binary uses part of the shared support
mod support;

use std::time::Duration;

use pretty_assertions::assert_eq;

use crate::support::{
    bootstrap_token_in, claim, closed_address, http_status, ids, Gateway, Sandbox, World,
    USER_PASSWORD,
};

// --- the first admin ----------------------------------------------------------------------

#[test]
fn the_first_admin_claims_the_gateway_with_the_token_serve_printed() {
    let sandbox = Sandbox::new();
    let gateway = Gateway::start(&sandbox, &sandbox.path("data"));
    let token = gateway
        .bootstrap_token()
        .expect("a fresh gateway prints a bootstrap token");
    let admin = sandbox.identity("admin");

    let status = admin
        .run(&["--url", &gateway.url, "--json", "admin", "status"])
        .ok()
        .json();
    assert_eq!(status["ready"], true);
    assert_eq!(status["needs_bootstrap"], true);

    claim(&admin, &gateway.url, &token).ok();

    let mode = {
        use std::os::unix::fs::PermissionsExt;
        std::fs::metadata(&admin.creds)
            .unwrap()
            .permissions()
            .mode()
            & 0o777
    };
    assert_eq!(
        mode, 0o600,
        "the credentials file is readable by its owner only"
    );

    // No --url from here on: the saved credentials name the gateway.
    let me = admin.run(&["whoami", "--json"]).ok().json();
    assert_eq!(me["user"]["username"], "root");
    assert_eq!(me["user"]["is_admin"], true);
    assert_eq!(me["credential"], "token");
    let status = admin.run(&["admin", "status", "--json"]).ok().json();
    assert_eq!(status["needs_bootstrap"], false);

    // The token is one-shot.
    let intruder = sandbox.identity("intruder");
    claim(&intruder, &gateway.url, &token).expect_code(3);
    assert!(!intruder.creds.exists(), "a refused claim saves nothing");
}

#[test]
fn offline_bootstrap_works_beside_the_printed_token_and_closes_once_an_admin_exists() {
    let sandbox = Sandbox::new();
    let data = sandbox.path("data");
    let gateway = Gateway::start(&sandbox, &data);
    let lost = gateway.bootstrap_token().unwrap();
    let admin = sandbox.identity("admin");

    let printed = admin
        .run(&["admin", "bootstrap", "--data-dir", data.to_str().unwrap()])
        .ok();
    let fresh = bootstrap_token_in(&printed.stdout).unwrap_or_else(|| panic!("{printed}"));
    assert_ne!(fresh, lost);

    // Either token would do; the first one redeemed closes bootstrap for both.
    claim(&admin, &gateway.url, &fresh).ok();
    claim(&admin, &gateway.url, &lost).expect_code(3);

    let refused = admin
        .run(&["admin", "bootstrap", "--data-dir", data.to_str().unwrap()])
        .expect_code(1);
    assert!(refused.stderr.contains("already has an admin"), "{refused}");
    assert_eq!(bootstrap_token_in(&refused.stdout), None, "{refused}");
}

#[test]
fn offline_bootstrap_token_is_accepted_by_a_gateway_started_later() {
    let sandbox = Sandbox::new();
    let data = sandbox.path("data");
    let admin = sandbox.identity("admin");
    let printed = admin
        .run(&["admin", "bootstrap", "--data-dir", data.to_str().unwrap()])
        .ok();
    let token = bootstrap_token_in(&printed.stdout).unwrap_or_else(|| panic!("{printed}"));

    let gateway = Gateway::start(&sandbox, &data);
    claim(&admin, &gateway.url, &token).ok();
    let me = admin.run(&["whoami", "--json"]).ok().json();
    assert_eq!(me["user"]["is_admin"], true);
}

// --- accounts -------------------------------------------------------------------------------

#[test]
fn a_user_the_admin_created_logs_in_and_organises_teams_and_workspaces() {
    let world = World::new();
    let bob = world.user("bob");

    let me = bob.run(&["whoami", "--json"]).ok().json();
    assert_eq!(me["user"]["username"], "bob");
    assert_eq!(me["user"]["is_admin"], false);
    let admin_me = world.admin.run(&["whoami", "--json"]).ok().json();
    assert_eq!(
        admin_me["user"]["username"], "root",
        "each credentials file keeps its own identity"
    );

    let team = bob
        .run(&["teams", "create", "platform", "--json"])
        .ok()
        .json();
    let team_id = team["id"].as_str().unwrap();
    assert_eq!(team["name"], "platform");
    assert_eq!(team["role"], "owner");

    let own = bob
        .run(&[
            "workspaces",
            "create",
            "notes",
            "--description",
            "bob's notes",
            "--json",
        ])
        .ok()
        .json();
    assert_eq!(own["owner"]["type"], "user");
    let shared = bob
        .run(&["workspaces", "create", "infra", "--team", team_id, "--json"])
        .ok()
        .json();
    assert_eq!(shared["owner"]["type"], "team");
    assert_eq!(shared["owner"]["id"], team["id"]);

    let teams = bob.run(&["teams", "list", "--json"]).ok().json();
    assert_eq!(ids(&teams), vec![team_id.to_string()]);
    let mut workspaces = ids(&bob.run(&["workspaces", "list", "--json"]).ok().json());
    workspaces.sort();
    let mut expected = vec![
        own["id"].as_str().unwrap().to_string(),
        shared["id"].as_str().unwrap().to_string(),
    ];
    expected.sort();
    assert_eq!(workspaces, expected);
    let paged = bob
        .run(&["workspaces", "list", "--limit", "1", "--all", "--json"])
        .ok()
        .json();
    assert_eq!(ids(&paged).len(), 2, "--all follows the cursor: {paged}");

    let users = world.admin.run(&["users", "list", "--json"]).ok().json();
    let names: Vec<&str> = users["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["username"].as_str().unwrap())
        .collect();
    assert!(names.contains(&"root") && names.contains(&"bob"), "{users}");

    // Tables for people, too.
    let table = bob.run(&["workspaces", "list"]).ok();
    assert!(table.stdout.starts_with("ID"), "{table}");
    assert!(table.stdout.contains("infra"), "{table}");

    bob.run(&["logout"]).ok();
    bob.run(&["whoami"]).expect_code(3);
}

// --- exit codes -------------------------------------------------------------------------------

#[test]
fn exit_codes_name_what_went_wrong() {
    let world = World::new();
    let bob = world.user("bob");
    let url = world.gateway.url.as_str();

    let stranger = world.sandbox.identity("stranger");
    let wrong = stranger.run_with_stdin(
        &["login", "--url", url, "-u", "root", "--password-stdin"],
        "not the password\n",
    );
    wrong.expect_code(3);
    assert!(!stranger.creds.exists(), "a failed login saves nothing");

    world.admin.run(&["users", "show", "nope"]).expect_code(5);
    bob.run(&["users", "list"]).expect_code(4);
    let invalid = bob.run(&["prefs", "set", "theme", "pink"]).expect_code(7);
    assert!(invalid.stderr.contains("error:"), "{invalid}");
    bob.run(&["prefs", "set", "theme", "dark"]).ok();
    world
        .admin
        .run_with_stdin(
            &["users", "create", "bob", "--password-stdin"],
            &format!("{USER_PASSWORD}\n"),
        )
        .expect_code(6);
    world.admin.run(&["users", "frobnicate"]).expect_code(2);

    let down = format!("http://{}", closed_address());
    let unreachable = stranger
        .run(&["--url", &down, "--token", "msa_whatever", "whoami"])
        .expect_code(10);
    assert!(unreachable.stderr.contains("cannot reach"), "{unreachable}");

    // Never logged in anywhere: 3, with a hint; nonsense arguments: 2.
    let nowhere = stranger.run(&["whoami"]).expect_code(3);
    assert!(nowhere.stderr.contains("mosaic login"), "{nowhere}");
    world
        .admin
        .run(&["tokens", "create", "x", "--scopes", "superuser"])
        .expect_code(2);
}

#[test]
fn a_revoked_api_token_is_refused() {
    let world = World::new();
    let created = world
        .admin
        .run(&["tokens", "create", "ci", "--scopes", "read", "--json"])
        .ok()
        .json();
    let token = created["token"].as_str().unwrap();
    let id = created["info"]["id"].as_str().unwrap();

    let me = world
        .admin
        .run(&["--token", token, "whoami", "--json"])
        .ok()
        .json();
    assert_eq!(me["user"]["username"], "root");
    assert_eq!(me["scopes"], serde_json::json!(["read"]));

    world.admin.run(&["tokens", "revoke", id]).ok();
    world
        .admin
        .run(&["--token", token, "whoami"])
        .expect_code(3);
    // The saved login token is a different token and still works.
    world.admin.run(&["whoami"]).ok();
}

// --- offline commands -----------------------------------------------------------------------

#[test]
fn completions_are_printed_for_every_shell() {
    let sandbox = Sandbox::new();
    let nobody = sandbox.identity("nobody");
    for shell in ["bash", "zsh", "fish"] {
        let out = nobody.run(&["completions", shell]).ok();
        assert!(out.stdout.contains("mosaic"), "{out}");
    }
}

#[test]
fn config_show_never_prints_the_database_password() {
    let sandbox = Sandbox::new();
    let nobody = sandbox.identity("nobody");
    let url = "postgres://u:secret@h/db";
    let shown = nobody.run(&["config", "show", "--database-url", url]).ok();
    assert!(!shown.stdout.contains("secret"), "{shown}");
    assert!(shown.stdout.contains("postgres://u:"), "{shown}");
    let json = nobody
        .run(&["--json", "config", "show", "--database-url", url])
        .ok();
    assert!(!json.stdout.contains("secret"), "{json}");
    assert!(json.json()["database_url"].is_string(), "{json}");
}

// --- the server's life cycle ------------------------------------------------------------------

#[test]
fn sigterm_stops_the_gateway_cleanly() {
    let mut world = World::new();
    world.admin.run(&["whoami"]).ok();
    let addr = world.gateway.addr;

    let (status, took) = world.gateway.terminate();
    let status = status.unwrap_or_else(|| panic!("still running:\n{}", world.gateway.log()));
    assert!(status.success(), "{status}:\n{}", world.gateway.log());
    assert!(took < Duration::from_secs(5), "took {took:?}");
    assert!(world.gateway.log().contains("shutting down"));
    assert_eq!(
        http_status(addr, "/healthz"),
        None,
        "nothing listens any more"
    );
}

#[test]
fn sigterm_as_soon_as_the_gateway_answers_still_stops_it_cleanly() {
    let sandbox = Sandbox::new();
    for run in 0..50 {
        let data = sandbox.path(&format!("data-{run}"));
        let mut gateway = Gateway::start_on(&sandbox, &data, Some(closed_address()));
        let (status, _) = gateway.terminate();
        let status = status.unwrap_or_else(|| panic!("still running:\n{}", gateway.log()));
        assert!(status.success(), "run {run}: {status}:\n{}", gateway.log());
    }
}

#[test]
fn agents_are_listed_created_changed_and_deleted_by_name() {
    let world = World::new();
    let bob = world.user("bob");

    let list = bob.run(&["agents", "list", "--json"]).ok().json();
    let names: Vec<&str> = list["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        vec!["default"],
        "every user starts with a default agent"
    );

    let made = bob
        .run(&[
            "agents",
            "create",
            "coder",
            "--route",
            "code",
            "--tool",
            "current_time=allowed",
            "--tool",
            "http_fetch=denied",
            "--json",
        ])
        .ok()
        .json();
    assert_eq!(made["route"], "code");
    assert_eq!(
        made["tools"],
        serde_json::json!([{"name": "current_time", "policy": "allowed"}, {"name": "http_fetch", "policy": "denied"}])
    );
    let changed = bob
        .run_with_stdin(
            &[
                "agents",
                "update",
                "coder",
                "--system-prompt",
                "-",
                "--no-tools",
                "--json",
            ],
            "Write Rust.\n",
        )
        .ok()
        .json();
    assert_eq!(changed["system_prompt"], "Write Rust.\n");
    assert_eq!(changed["tools"], serde_json::json!([]));
    // Limits: each flag sets its own, the others stay as they were.
    let limited = bob
        .run(&[
            "agents",
            "update",
            "coder",
            "--thinking-budget",
            "2048",
            "--max-model-calls",
            "7",
            "--json",
        ])
        .ok()
        .json();
    assert_eq!(
        limited["limits"],
        serde_json::json!({"max_model_calls": 7, "thinking_budget": 2048})
    );
    let shown = bob.run(&["agents", "show", "coder"]).ok().stdout;
    assert!(shown.contains("thinking 2048 tokens"), "{shown}");
    bob.run(&["agents", "update", "coder", "--thinking-budget", "100"])
        .expect_code(2);
    bob.run(&["agents", "create", "coder"]).expect_code(6);
    bob.run(&["agents", "create", "x", "--tool", "fetch=sometimes"])
        .expect_code(2);
    bob.run(&["agents", "delete", "default"]).expect_code(6);
    bob.run(&["agents", "delete", "coder"]).ok();
    bob.run(&["agents", "show", "coder"]).expect_code(5);
    // Another user's agents are not there.
    let root_list = world.admin.run(&["agents", "list", "--json"]).ok().json();
    assert_eq!(root_list["items"].as_array().unwrap().len(), 1);
}

// --- sessions ---------------------------------------------------------------------------------

/// A session export with an edited second turn: u1 → a1 → { u2 → a2, u2b → a2b (active) }.
const EXPORT: &str = r#"{"format":"mosaic.session","version":1,"title":"Colours","agent":"coder","active_leaf_id":"a2b","archived":false,"created_at":"2025-01-01T10:00:00.000Z"}
{"id":"u1","parent_id":null,"created_at":"2025-01-01T10:00:01.000Z","body":{"type":"user","text":"Name a colour."}}
{"id":"a1","parent_id":"u1","created_at":"2025-01-01T10:00:02.000Z","body":{"type":"assistant","text":"Blue.","model":"local/m","stop_reason":"stop"}}
{"id":"u2","parent_id":"a1","created_at":"2025-01-01T10:00:03.000Z","body":{"type":"user","text":"Another?"}}
{"id":"a2","parent_id":"u2","created_at":"2025-01-01T10:00:04.000Z","body":{"type":"assistant","text":"Green."}}
{"id":"u2b","parent_id":"a1","created_at":"2025-01-01T10:00:05.000Z","body":{"type":"user","text":"A warmer one?"}}
{"id":"a2b","parent_id":"u2b","created_at":"2025-01-01T10:00:06.000Z","body":{"type":"assistant","text":"Orange."}}
"#;

#[test]
fn sessions_are_created_read_renamed_archived_exported_imported_and_deleted() {
    let world = World::new();
    let bob = world.user("bob");
    let coder = bob
        .run(&["agents", "create", "coder", "--json"])
        .ok()
        .json();
    let made = bob
        .run(&[
            "sessions", "create", "--agent", "coder", "--title", "First", "--json",
        ])
        .ok()
        .json();
    assert_eq!(made["agent_id"], coder["id"]);
    let untitled = bob.run(&["sessions", "create", "--json"]).ok().json();
    assert_ne!(untitled["agent_id"], coder["id"], "the default agent");

    let file = world.sandbox.path("colours.jsonl");
    std::fs::write(&file, EXPORT).unwrap();
    let colours = bob
        .run(&["sessions", "import", file.to_str().unwrap(), "--json"])
        .ok()
        .json();
    let id = colours["id"].as_str().unwrap();
    assert_eq!(colours["agent_id"], coder["id"], "matched by name");
    assert_eq!(colours["active_leaf_id"], "a2b");

    let list = bob.run(&["sessions", "list", "--json"]).ok().json();
    let all = vec![
        id.to_string(),
        untitled["id"].as_str().unwrap().to_string(),
        made["id"].as_str().unwrap().to_string(),
    ];
    assert_eq!(ids(&list), all, "newest first");
    let paged = bob
        .run(&["sessions", "list", "--limit", "1", "--all", "--json"])
        .ok()
        .json();
    assert_eq!(ids(&paged), all);
    let found = bob
        .run(&["sessions", "list", "--q", "WARMER", "--json"])
        .ok()
        .json();
    assert_eq!(ids(&found), vec![id.to_string()], "found by entry text");
    let table = bob.run(&["sessions", "list"]).ok();
    assert!(table.stdout.starts_with("ID"), "{table}");
    assert!(
        table.stdout.contains("Colours") && table.stdout.contains("coder"),
        "{table}"
    );

    // The transcript of the active branch, then of the other one.
    let shown = bob.run(&["sessions", "show", id]).ok();
    for text in [
        "── user · ",
        "Name a colour.",
        "── assistant (local/m, stop) · ",
        "A warmer one?",
        "Orange.",
    ] {
        assert!(shown.stdout.contains(text), "{text}: {shown}");
    }
    assert!(!shown.stdout.contains("Green."), "{shown}");
    let other = bob
        .run(&["sessions", "show", id, "--leaf", "a2", "--json"])
        .ok()
        .json();
    assert_eq!(ids(&other), ["u1", "a1", "u2", "a2"]);
    let branches = bob.run(&["sessions", "branches", id, "--json"]).ok().json();
    let leaves: Vec<(&str, bool)> = branches["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| {
            (
                b["leaf"]["id"].as_str().unwrap(),
                b["active"].as_bool().unwrap(),
            )
        })
        .collect();
    assert_eq!(leaves, [("a2", false), ("a2b", true)]);
    let switched = bob
        .run(&["sessions", "switch", id, "a2", "--json"])
        .ok()
        .json();
    assert_eq!(switched["active_leaf_id"], "a2");
    let active = bob.run(&["sessions", "show", id, "--json"]).ok().json();
    assert_eq!(ids(&active), ["u1", "a1", "u2", "a2"]);
    bob.run(&["sessions", "switch", id, "nope"]).expect_code(5);

    let renamed = bob
        .run(&["sessions", "rename", id, "Colour chat", "--json"])
        .ok()
        .json();
    assert_eq!(renamed["title"], "Colour chat");
    bob.run(&["sessions", "archive", id]).ok();
    let active_list = bob.run(&["sessions", "list", "--json"]).ok().json();
    assert!(
        !ids(&active_list).contains(&id.to_string()),
        "{active_list}"
    );
    let archived = bob
        .run(&["sessions", "list", "--archived", "--json"])
        .ok()
        .json();
    assert_eq!(ids(&archived), vec![id.to_string()]);

    // Export to a file and to stdout; import the file back (and from stdin).
    let out = world.sandbox.path("out.jsonl");
    bob.run(&["sessions", "export", id, "-o", out.to_str().unwrap()])
        .ok();
    let exported = std::fs::read_to_string(&out).unwrap();
    assert_eq!(bob.run(&["sessions", "export", id]).ok().stdout, exported);
    assert!(exported.contains("\"title\":\"Colour chat\""), "{exported}");
    assert!(exported.contains("\"archived\":true"), "{exported}");
    let copy = bob
        .run(&["sessions", "import", out.to_str().unwrap(), "--json"])
        .ok()
        .json();
    let copy_id = copy["id"].as_str().unwrap();
    assert_ne!(copy_id, id);
    assert_eq!(
        bob.run(&["sessions", "export", copy_id]).ok().stdout,
        exported
    );
    let piped = bob
        .run_with_stdin(&["sessions", "import", "-", "--json"], &exported)
        .ok()
        .json();
    assert_eq!(piped["title"], "Colour chat");
    let bad = bob
        .run_with_stdin(&["sessions", "import", "-"], "{\"format\": \"nope\"}\n")
        .expect_code(7);
    assert!(bad.stderr.contains("line 1"), "{bad}");

    bob.run(&["sessions", "unarchive", id]).ok();
    bob.run(&["sessions", "delete", id]).ok();
    bob.run(&["sessions", "show", id]).expect_code(5);
    // Another user sees none of it.
    let theirs = world.admin.run(&["sessions", "list", "--json"]).ok().json();
    assert_eq!(theirs["items"], serde_json::json!([]));
    world
        .admin
        .run(&["sessions", "export", copy_id])
        .expect_code(5);
}
