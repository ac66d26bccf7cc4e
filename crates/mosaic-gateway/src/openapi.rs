//! The OpenAPI document and the router, built together: every route is registered
//! through its `#[utoipa::path]` description, so the document lists exactly the routes
//! that exist. The document is checked in (`openapi.json` at the repository root) and a
//! test fails when it is stale. What holds for every operation alike is added in
//! [`rules`], after the routes are collected.

mod rules;
mod shapes;

use axum::Router;
use utoipa::openapi::security::{ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::routes::{
    agents, auth, brain, health, memories, openai_compat, prefs, providers, routing, runs,
    sessions, teams, tokens, users, workspaces,
};
use crate::AppState;

#[derive(OpenApi)]
#[openapi(
    info(title = "Mosaic API", description = "The contract of a Mosaic gateway: every surface (web, TUI, CLI) speaks it."),
    modifiers(&Security),
    // Not a JSON body of any operation, but the first line of every session export.
    components(schemas(mosaic_api::ExportHeader)),
    security(("bearer" = []), ("cookie" = [])),
    tags(
        (name = "auth", description = "Log in and out, bootstrap, who am I"),
        (name = "users", description = "Accounts of this gateway"),
        (name = "tokens", description = "API tokens"),
        (name = "teams", description = "Teams and their members"),
        (name = "workspaces", description = "Workspaces of users and teams"),
        (name = "preferences", description = "Per-user typed settings"),
        (name = "models", description = "Model providers, routes over them, their health, token usage"),
        (name = "agents", description = "Agents: prompt, route and tools"),
        (name = "sessions", description = "Conversations: entry trees, branches, export and import"),
        (name = "brain", description = "Projects, tasks, missions, notes and memories people and agents share, and hybrid search over them"),
        (name = "runs", description = "Runs of agents in sessions: messages, interrupts, approvals, live events"),
        (name = "openai", description = "OpenAI-compatible endpoints for existing clients"),
        (name = "health", description = "Liveness and readiness"),
    )
)]
struct ApiDoc;

struct Security;

impl Modify for Security {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
        components.add_security_scheme(
            "cookie",
            SecurityScheme::ApiKey(ApiKey::Cookie(ApiKeyValue::with_description(
                mosaic_api::SESSION_COOKIE,
                "Web session; unsafe methods also need the X-CSRF-Token header",
            ))),
        );
    }
}

/// The API routes and their document.
pub fn api() -> (Router<AppState>, utoipa::openapi::OpenApi) {
    let (router, mut doc) = OpenApiRouter::with_openapi(ApiDoc::openapi())
        .routes(routes!(health::healthz))
        .routes(routes!(health::readyz))
        .routes(routes!(auth::bootstrap_status, auth::bootstrap))
        .routes(routes!(auth::login))
        .routes(routes!(auth::logout))
        .routes(routes!(auth::whoami))
        .routes(routes!(auth::change_password))
        .routes(routes!(users::list_users, users::create_user))
        .routes(routes!(
            users::get_user,
            users::update_user,
            users::delete_user
        ))
        .routes(routes!(tokens::list_tokens, tokens::create_token))
        .routes(routes!(tokens::get_token, tokens::revoke_token))
        .routes(routes!(teams::list_teams, teams::create_team))
        .routes(routes!(
            teams::get_team,
            teams::update_team,
            teams::delete_team
        ))
        .routes(routes!(teams::list_members, teams::add_member))
        .routes(routes!(teams::remove_member))
        .routes(routes!(
            workspaces::list_workspaces,
            workspaces::create_workspace
        ))
        .routes(routes!(
            workspaces::get_workspace,
            workspaces::update_workspace,
            workspaces::delete_workspace
        ))
        .routes(routes!(prefs::list_preferences))
        .routes(routes!(
            prefs::get_preference,
            prefs::set_preference,
            prefs::delete_preference
        ))
        .routes(routes!(
            providers::list_providers,
            providers::create_provider
        ))
        .routes(routes!(
            providers::get_provider,
            providers::update_provider,
            providers::delete_provider
        ))
        .routes(routes!(providers::test_provider))
        .routes(routes!(routing::list_models))
        .routes(routes!(routing::model_health))
        .routes(routes!(routing::list_routes, routing::set_route))
        .routes(routes!(routing::get_route, routing::delete_route))
        .routes(routes!(routing::get_usage))
        .routes(routes!(agents::list_agents, agents::create_agent))
        .routes(routes!(
            agents::get_agent,
            agents::update_agent,
            agents::delete_agent
        ))
        .routes(routes!(sessions::list_sessions, sessions::create_session))
        .routes(routes!(sessions::import_session))
        .routes(routes!(
            sessions::get_session,
            sessions::update_session,
            sessions::delete_session
        ))
        .routes(routes!(sessions::list_session_entries))
        .routes(routes!(sessions::list_session_branches))
        .routes(routes!(sessions::set_session_leaf))
        .routes(routes!(sessions::export_session))
        .routes(routes!(brain::list_projects, brain::create_project))
        .routes(routes!(
            brain::get_project,
            brain::update_project,
            brain::delete_project
        ))
        .routes(routes!(brain::list_tasks, brain::create_task))
        .routes(routes!(
            brain::get_task,
            brain::update_task,
            brain::delete_task
        ))
        .routes(routes!(brain::list_missions, brain::create_mission))
        .routes(routes!(
            brain::get_mission,
            brain::update_mission,
            brain::delete_mission
        ))
        .routes(routes!(brain::list_notes, brain::create_note))
        .routes(routes!(
            brain::get_note,
            brain::update_note,
            brain::delete_note
        ))
        .routes(routes!(memories::list_memories, memories::create_memory))
        .routes(routes!(
            memories::get_memory,
            memories::update_memory,
            memories::delete_memory
        ))
        .routes(routes!(brain::search_brain))
        .routes(routes!(runs::post_message))
        .routes(routes!(runs::start_run, runs::list_runs))
        .routes(routes!(runs::interrupt_run))
        .routes(routes!(runs::answer_approval))
        .routes(routes!(runs::get_session_state))
        .routes(routes!(runs::session_events))
        .routes(routes!(openai_compat::chat_completions))
        .routes(routes!(openai_compat::openai_models))
        .split_for_parts();
    shapes::apply(&mut doc);
    rules::apply(&mut doc);
    (router, doc)
}

/// The OpenAPI document as pretty JSON, as checked in.
pub fn document_json() -> String {
    let (_, doc) = api();
    let mut text = doc
        .to_pretty_json()
        .unwrap_or_else(|e| format!("{{\"error\": \"{e}\"}}"));
    text.push('\n');
    text
}
