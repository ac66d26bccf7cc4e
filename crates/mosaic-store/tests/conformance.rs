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

#[macro_use]
#[path = "conformance/support.rs"]
mod support;

#[path = "conformance/agents.rs"]
mod agents;
#[path = "conformance/bootstrap.rs"]
mod bootstrap;
#[path = "conformance/brain.rs"]
mod brain;
#[path = "conformance/credentials.rs"]
mod credentials;
#[path = "conformance/memories.rs"]
mod memories;
#[path = "conformance/missions.rs"]
mod missions;
#[path = "conformance/prefs.rs"]
mod prefs;
#[path = "conformance/providers.rs"]
mod providers;
#[path = "conformance/rls.rs"]
mod rls;
#[path = "conformance/routes.rs"]
mod routes;
#[path = "conformance/runs.rs"]
mod runs;
#[path = "conformance/sessions.rs"]
mod sessions;
#[path = "conformance/teams.rs"]
mod teams;
#[path = "conformance/usage.rs"]
mod usage;
#[path = "conformance/users.rs"]
mod users;
#[path = "conformance/workspaces.rs"]
mod workspaces;
