//! Mosaic persistence. The store exposes domain operations, never SQL, and every
//! operation takes the acting [`Principal`]: there is no way to read or write a row
//! without saying who asks. Rows that belong to someone else are indistinguishable from
//! rows that do not exist ([`StoreError::NotFound`]).
//!
//! One implementation serves both engines through sqlx's `Any` driver: SQLite (the
//! embedded default, WAL) and PostgreSQL (where row-level security, set up by the
//! migrations, is a second wall behind the scoping done here). SQL is written once with
//! `$n` placeholders and translated for SQLite. What a principal may see is decided in
//! one place (`visibility.rs`); rows are read back through `row.rs`.

mod agents;
mod bootstrap;
mod brain;
mod cache;
mod credentials;
mod db;
mod error;
mod migrate;
mod model_routing;
mod page;
mod prefs;
mod principal;
mod providers;
mod revocation;
mod row;
mod runs;
mod sessions;
mod teams;
mod usage;
mod users;
mod visibility;
mod workspaces;

pub use agents::{default_agent, AgentChanges, NewAgent};
pub use bootstrap::BootstrapSource;
pub use brain::{PendingText, QueryVector, MAX_EMBED_CHARS, MAX_HITS};
pub use credentials::{AuthenticatedToken, NewApiToken, NewWebSession, WebSessionAuth};
pub use db::{redact_url, Backend, Store, StoreOptions};
pub use error::StoreError;
pub use principal::Principal;
pub use providers::{NewProvider, ProviderChanges, ProviderForCall};
pub use revocation::{RevokeListener, Revoked};
pub use runs::{check_message, OrphanRun, PartialAnswer, RunEnd, RunProgress, MAX_MESSAGE_BYTES};
pub use sessions::Parent;
pub use usage::day_of;
pub use users::{LoginRecord, NewUser, UserChanges};

/// Result of a store operation.
pub type Result<T> = std::result::Result<T, StoreError>;

/// Milliseconds since the Unix epoch: the one time representation in the store.
pub fn now_ms() -> i64 {
    use std::time::{SystemTime, UNIX_EPOCH};
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// A new time-ordered identifier (UUIDv7): ids sort by creation, which cursor
/// pagination relies on.
pub fn new_id() -> String {
    uuid::Uuid::now_v7().to_string()
}

/// RFC 3339 form of a stored time, as the API shows it.
pub fn format_time(ms: i64) -> String {
    let t = std::time::UNIX_EPOCH + std::time::Duration::from_millis(ms.max(0) as u64);
    humantime::format_rfc3339_millis(t).to_string()
}
