//! The live event bus: each session's events, numbered, delivered to every subscriber
//! in order, replayed to one that resumes after a number, and a `resync` for one that
//! resumes from a number no longer held or falls too far behind.
//!
//! The runtime and the gateway use a bus through [`EventBus`]: publish, and subscribe
//! after a number as a stream. [`Bus`] (`local.rs`) is the in-process implementation;
//! one shared by several replicas (Valkey streams, or the database) implements the same
//! trait and passes the same suite ([`crate::conformance::event_bus`]).

use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use futures_util::Stream;
use mosaic_api::SessionEvent;
use mosaic_llm::BoxFuture;
use mosaic_store::{Principal, StoreError};

mod local;

pub use local::{Bus, BusLimits, SessionBus, Subscription};

/// What a subscriber receives, in order.
#[derive(Debug, Clone)]
pub enum Received {
    /// The next event: numbers rise by one, none is delivered twice.
    Event(Arc<Numbered>),
    /// Events were lost to this subscriber (it fell too far behind, or resumed from a
    /// number the bus no longer holds): read the session again. Events after `latest`
    /// follow.
    Resync { reason: String, latest: u64 },
}

/// A subscriber's events, until the bus forgets the session.
pub type Events = Pin<Box<dyn Stream<Item = Received> + Send>>;

/// A subscription: the latest number when it began, and the events from there (after
/// the replay of missed ones, when it resumed).
pub struct Subscribed {
    pub latest: u64,
    pub events: Events,
}

/// Why a bus could not do something.
#[derive(Debug, thiserror::Error)]
pub enum BusError {
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The bus's own backend (another process's) failed.
    #[error("the event bus is unavailable: {0}")]
    Unavailable(String),
}

impl From<BusError> for StoreError {
    fn from(e: BusError) -> StoreError {
        match e {
            BusError::Store(e) => e,
            // A backend of its own failing is, to callers, the storage failing.
            BusError::Unavailable(why) => StoreError::Db(sqlx::Error::Io(std::io::Error::other(
                format!("the event bus is unavailable: {why}"),
            ))),
        }
    }
}

/// Each session's numbered live events. Every method is async and fallible and hands
/// out owned values, so an implementation may keep events in another process.
pub trait EventBus: Send + Sync + 'static {
    /// Number an event of a session `owner` may see (the caller checked) and deliver it
    /// to every subscriber of the session.
    fn publish<'a>(
        &'a self,
        owner: &'a Principal,
        session_id: &'a str,
        event: SessionEvent,
    ) -> BoxFuture<'a, Result<Arc<Numbered>, BusError>>;

    /// Follow a session: with `after`, first the events after it (or a resync when they
    /// are no longer held), then the live ones.
    fn subscribe<'a>(
        &'a self,
        owner: &'a Principal,
        session_id: &'a str,
        after: Option<u64>,
    ) -> BoxFuture<'a, Result<Subscribed, BusError>>;

    /// The number of the session's latest event (0 when none was ever sent).
    fn last_event_id<'a>(
        &'a self,
        owner: &'a Principal,
        session_id: &'a str,
    ) -> BoxFuture<'a, Result<u64, BusError>>;

    /// A deleted session: its events go (a later subscriber starts afresh).
    fn forget<'a>(&'a self, session_id: &'a str) -> BoxFuture<'a, ()>;

    /// Subscribers of this process, over all sessions.
    fn subscriber_count(&self) -> usize;

    /// Drop what quiet sessions hold here (`busy` ones keep theirs). Nothing to do for
    /// a bus that keeps events elsewhere.
    fn sweep(&self, _idle: Duration, _busy: &(dyn Fn(&str) -> bool + Sync)) {}
}

/// One numbered event, its SSE data serialised once for every subscriber.
#[derive(Debug)]
pub struct Numbered {
    pub id: u64,
    pub event: SessionEvent,
    pub data: String,
}

impl Numbered {
    fn new(id: u64, event: SessionEvent) -> Numbered {
        let data = serde_json::to_string(&event).unwrap_or_else(|e| {
            format!(r#"{{"type":"error","message":"event could not be encoded: {e}"}}"#)
        });
        Numbered { id, event, data }
    }
}
