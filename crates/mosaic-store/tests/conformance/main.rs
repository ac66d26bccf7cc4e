//! The storage conformance suite: every case runs unchanged against SQLite and against
//! PostgreSQL (as an ordinary role, so row-level security applies), one test per case
//! and engine, named `<area>::<engine>::<behaviour>`.
//!
//! PostgreSQL comes from `MOSAIC_TEST_POSTGRES_URL` (a superuser URL); without it the
//! PostgreSQL tests fail and say how to start one:
//!
//! ```text
//! eval "$(scripts/services.sh start-postgres)"
//! cargo test -p mosaic-store
//! scripts/services.sh stop-postgres
//! ```
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

mod agents;
mod bootstrap;
mod brain;
mod corrupt;
mod credentials;
mod memories;
mod missions;
mod model_routing;
mod prefs;
mod providers;
mod rls;
mod runs;
mod schema;
mod sessions;
mod teams;
mod usage;
mod users;
mod workspaces;
