//! The OpenAPI document and the router, from one list: every route is registered
//! through its `#[utoipa::path]` description, so the document lists exactly the routes
//! that exist. Serving builds only the router; the document is built when asked for
//! ([`lazy`]). The document is checked in (`openapi.json` at the repository root) and a
//! test fails when it is stale. What holds for every operation alike is added in
//! [`rules`], after the routes are collected.

pub mod lazy;
mod rules;
mod shapes;

use axum::Router;
use lazy::ApiRouter;
use utoipa::openapi::security::{ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

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
    let (router, described) = ApiRouter::new()
        .merge(crate::routes::router())
        .split_for_parts();
    let mut doc = described.document(ApiDoc::openapi());
    shapes::apply(&mut doc);
    rules::apply(&mut doc);
    (router, doc)
}

/// The API routes, to serve: their document is not built (see [`lazy`]).
pub fn router() -> Router<AppState> {
    crate::routes::router().split_for_parts().0
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
