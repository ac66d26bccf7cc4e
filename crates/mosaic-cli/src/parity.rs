//! Surface parity: every API operation has a CLI command. The table below maps each
//! OpenAPI `operationId` to the command that reaches it; a test fails when the API
//! gains an operation the table does not name, or names a command that does not exist,
//! and another when `docs/parity.md` (the table for people) differs from it.

/// (operationId, command words after `mosaic`, ending with the `--flag` that selects the
/// operation when one command reaches two).
pub const OPERATIONS: &[(&str, &str)] = &[
    ("healthz", "admin status"),
    ("readyz", "admin status"),
    ("bootstrap_status", "admin status"),
    ("bootstrap", "admin claim"),
    ("login", "login"),
    ("logout", "logout"),
    ("whoami", "whoami"),
    ("change_password", "passwd"),
    ("list_users", "users list"),
    ("create_user", "users create"),
    ("get_user", "users show"),
    ("update_user", "users update"),
    ("delete_user", "users delete"),
    ("list_tokens", "tokens list"),
    ("create_token", "tokens create"),
    ("get_token", "tokens show"),
    ("revoke_token", "tokens revoke"),
    ("list_teams", "teams list"),
    ("create_team", "teams create"),
    ("get_team", "teams show"),
    ("update_team", "teams rename"),
    ("delete_team", "teams delete"),
    ("list_team_members", "teams members"),
    ("add_team_member", "teams add-member"),
    ("remove_team_member", "teams remove-member"),
    ("list_workspaces", "workspaces list"),
    ("create_workspace", "workspaces create"),
    ("get_workspace", "workspaces show"),
    ("update_workspace", "workspaces update"),
    ("delete_workspace", "workspaces delete"),
    ("list_agents", "agents list"),
    ("create_agent", "agents create"),
    ("get_agent", "agents show"),
    ("update_agent", "agents update"),
    ("delete_agent", "agents delete"),
    ("list_sessions", "sessions list"),
    ("create_session", "sessions create"),
    ("get_session", "sessions show"),
    ("list_session_entries", "sessions show"),
    ("update_session", "sessions rename"),
    ("delete_session", "sessions delete"),
    ("list_session_branches", "sessions branches"),
    ("set_session_leaf", "sessions switch"),
    ("export_session", "sessions export"),
    ("import_session", "sessions import"),
    ("post_message", "run"),
    ("post_message", "chat"),
    ("session_events", "sessions follow"),
    ("list_runs", "sessions runs"),
    ("get_session_state", "sessions state"),
    ("interrupt_run", "sessions interrupt"),
    ("start_run", "sessions retry"),
    ("answer_approval", "sessions approve"),
    ("list_projects", "projects list"),
    ("create_project", "projects create"),
    ("get_project", "projects show"),
    ("update_project", "projects edit"),
    ("delete_project", "projects delete"),
    ("list_tasks", "tasks list"),
    ("create_task", "tasks create"),
    ("get_task", "tasks show"),
    ("update_task", "tasks edit"),
    ("update_task", "tasks done"),
    ("delete_task", "tasks delete"),
    ("list_missions", "missions list"),
    ("create_mission", "missions create"),
    ("get_mission", "missions show"),
    ("update_mission", "missions edit"),
    ("delete_mission", "missions delete"),
    ("list_notes", "notes list"),
    ("create_note", "notes create"),
    ("get_note", "notes show"),
    ("update_note", "notes edit"),
    ("delete_note", "notes delete"),
    ("list_memories", "memory list"),
    ("create_memory", "memory add"),
    ("get_memory", "memory show"),
    ("update_memory", "memory edit"),
    ("delete_memory", "memory forget"),
    ("search_brain", "search"),
    ("list_preferences", "prefs list"),
    ("get_preference", "prefs get"),
    ("set_preference", "prefs set"),
    ("delete_preference", "prefs unset"),
    ("list_providers", "providers list"),
    ("create_provider", "providers add"),
    ("get_provider", "providers show"),
    ("update_provider", "providers update"),
    ("delete_provider", "providers remove"),
    ("test_provider", "providers test"),
    ("list_models", "models list"),
    ("model_health", "routes health"),
    ("list_routes", "routes list"),
    ("set_route", "routes set"),
    ("get_route", "routes show"),
    ("delete_route", "routes remove"),
    ("get_usage", "usage"),
    ("chat_completions", "complete"),
    ("openai_models", "models list --openai"),
];

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::OPERATIONS;
    use clap::CommandFactory;
    use std::collections::BTreeSet;

    #[test]
    fn every_api_operation_has_a_cli_command() {
        let (_, doc) = mosaic_gateway::openapi::api();
        let api: BTreeSet<String> = doc
            .paths
            .paths
            .values()
            .flat_map(|item| {
                [&item.get, &item.post, &item.put, &item.patch, &item.delete]
                    .into_iter()
                    .flatten()
                    .filter_map(|op| op.operation_id.clone())
                    .collect::<Vec<_>>()
            })
            .collect();
        let mapped: BTreeSet<String> = OPERATIONS.iter().map(|(op, _)| op.to_string()).collect();
        let missing: Vec<_> = api.difference(&mapped).collect();
        assert!(
            missing.is_empty(),
            "API operations without a CLI command: {missing:?}"
        );
        let stale: Vec<_> = mapped.difference(&api).collect();
        assert!(
            stale.is_empty(),
            "parity table names operations the API lacks: {stale:?}"
        );
        let cli = crate::cli::Cli::command();
        for (op, words) in OPERATIONS {
            let mut cmd = &cli;
            for word in words.split(' ') {
                // `--flag`: an option of the command named so far.
                if let Some(flag) = word.strip_prefix("--") {
                    assert!(
                        cmd.get_arguments().any(|a| a.get_long() == Some(flag)),
                        "{op}: `mosaic {words}` has no option --{flag}"
                    );
                    continue;
                }
                cmd = cmd
                    .find_subcommand(word)
                    .unwrap_or_else(|| panic!("{op}: no command `mosaic {words}`"));
            }
        }
    }

    /// The parity table as the docs show it; web and TUI columns fill in as those
    /// surfaces arrive.
    fn docs_table() -> String {
        let mut out = String::from(
            "# Surface parity\n\nEvery API operation and the surface command that reaches it. \
             Generated from `crates/mosaic-cli/src/parity.rs`; a test fails when they differ \
             (regenerate with `MOSAIC_BLESS=1 cargo test -p mosaic-cli parity`).\n\n\
             | API operation | CLI |\n| --- | --- |\n",
        );
        for (op, words) in OPERATIONS {
            out.push_str(&format!("| `{op}` | `mosaic {words}` |\n"));
        }
        out
    }

    #[test]
    fn the_docs_parity_table_matches_the_code() {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/parity.md");
        let expected = docs_table();
        if std::env::var_os("MOSAIC_BLESS").is_some() {
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(&path, &expected).unwrap();
            return;
        }
        let actual = std::fs::read_to_string(&path).unwrap_or_default();
        assert!(actual == expected, "docs/parity.md is stale; regenerate with MOSAIC_BLESS=1 cargo test -p mosaic-cli parity");
    }
}
