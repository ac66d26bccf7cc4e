//! The Mosaic contract: every type that crosses the HTTP API, shared by the gateway
//! (which serves it), the client crate (which speaks it) and, through the generated
//! OpenAPI document, the web UI.
//!
//! Wire conventions, everywhere: snake_case fields, timestamps named `*_at` in RFC 3339,
//! cursor pagination (`cursor`, `limit` in; `items`, `next_cursor` out), errors as
//! `{ "error": { "code", "message" } }`.

pub mod agents;
pub mod auth;
pub mod brain;
pub mod error;
pub mod page;
pub mod prefs;
pub mod principal;
pub mod providers;
pub mod runs;
pub mod sessions;
pub mod teams;
pub mod time;
pub mod tokens;
pub mod users;
pub mod workspaces;

pub use agents::*;
pub use auth::*;
pub use brain::*;
pub use error::*;
pub use page::*;
pub use prefs::*;
pub use principal::Principal;
pub use providers::*;
pub use runs::*;
pub use sessions::*;
pub use teams::*;
pub use tokens::*;
pub use users::*;
pub use workspaces::*;

/// The path prefix of every versioned API route.
pub const API_PREFIX: &str = "/api/v1";

/// Name of the HttpOnly cookie that carries a web session.
pub const SESSION_COOKIE: &str = "mosaic_session";

/// Name of the readable cookie that carries the CSRF token of a web session.
pub const CSRF_COOKIE: &str = "mosaic_csrf";

/// Header a cookie-authenticated client must echo the CSRF token in, on unsafe methods.
pub const CSRF_HEADER: &str = "x-csrf-token";
