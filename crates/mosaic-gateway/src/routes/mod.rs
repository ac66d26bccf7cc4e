//! The API's routes, one module per resource. Each handler carries its OpenAPI
//! description, and each module builds its router from those descriptions (utoipa-axum),
//! so a route cannot exist without appearing in the document; [`router`] merges them.

pub mod agents;
pub mod auth;
pub mod brain;
pub mod health;
pub mod memories;
pub mod metrics;
pub mod openai_compat;
pub mod prefs;
pub mod providers;
pub mod routing;
pub mod runs;
pub mod sessions;
pub mod teams;
pub mod tokens;
pub mod users;
pub mod workspaces;

use crate::openapi::lazy::ApiRouter;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

use crate::AppState;

/// Every documented route: each module's router, merged. `/metrics` is apart
/// ([`metrics::router`]): a scrape target, not an operation of the contract.
pub fn router() -> ApiRouter<AppState> {
    ApiRouter::new()
        .merge(health::router())
        .merge(auth::router())
        .merge(users::router())
        .merge(tokens::router())
        .merge(teams::router())
        .merge(workspaces::router())
        .merge(prefs::router())
        .merge(providers::router())
        .merge(routing::router())
        .merge(agents::router())
        .merge(sessions::router())
        .merge(brain::router())
        .merge(memories::router())
        .merge(runs::router())
        .merge(openai_compat::router())
}

/// 204 No Content.
pub fn no_content() -> Response {
    StatusCode::NO_CONTENT.into_response()
}

/// The client's address, when the server was started with connection info.
pub fn client_ip(parts: &axum::http::Extensions) -> String {
    parts
        .get::<axum::extract::ConnectInfo<std::net::SocketAddr>>()
        .map(|c| c.0.ip().to_string())
        .unwrap_or_else(|| "unknown".into())
}
