//! The suites every implementation of the runtime's seams must pass, written once over
//! the traits: [`event_bus`] for an [`EventBus`], [`run_control`] for a
//! [`RunControl`](crate::control::RunControl). The in-process implementations run them
//! in this crate's tests; one backed by Valkey or the database (for several replicas)
//! runs the same functions in its own.
//!
//! They panic on the first broken promise, as tests do.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use futures_util::StreamExt;
use mosaic_api::SessionEvent;
use mosaic_store::Principal;

use crate::bus::{EventBus, Events, Received};

/// Longest wait for something a promise says must come.
const PATIENCE: Duration = Duration::from_secs(10);

fn delta(text: String) -> SessionEvent {
    SessionEvent::TextDelta {
        run_id: "conformance".into(),
        text,
    }
}

async fn next(events: &mut Events, what: &str) -> Received {
    match tokio::time::timeout(PATIENCE, events.next()).await {
        Ok(Some(received)) => received,
        Ok(None) => panic!("{what}: the stream ended"),
        Err(_) => panic!("{what}: nothing came within {PATIENCE:?}"),
    }
}

async fn next_event(events: &mut Events, what: &str) -> u64 {
    match next(events, what).await {
        Received::Event(e) => e.id,
        Received::Resync { reason, .. } => panic!("{what}: told to resync ({reason})"),
    }
}

/// Publish `n` events; their numbers.
async fn publish(bus: &dyn EventBus, owner: &Principal, session_id: &str, n: usize) -> Vec<u64> {
    let mut ids = Vec::new();
    for i in 0..n {
        let e = bus
            .publish(owner, session_id, delta(format!("{i}")))
            .await
            .unwrap();
        ids.push(e.id);
    }
    ids
}

/// An event bus keeps its promises: numbers rise by one and each event reaches every
/// subscriber once, in order; a subscriber resumes exactly after the number it names;
/// one that resumes from too far back, or falls more than `holds` events behind, is told
/// to resync and then gets what follows; sessions do not mix. `sessions` are two
/// sessions `owner` may see, with no subscribers yet; `holds` is how many events the bus
/// keeps for a subscriber behind (it must keep at least 2).
pub async fn event_bus(bus: &dyn EventBus, owner: &Principal, sessions: [&str; 2], holds: usize) {
    let [session, other] = sessions;
    assert!(holds >= 2, "the suite needs a bus that holds a few events");

    // Two subscribers from now on: the same events, in order, once each.
    let mut a = bus.subscribe(owner, session, None).await.unwrap();
    let mut b = bus.subscribe(owner, session, None).await.unwrap();
    assert_eq!(a.latest, b.latest);
    let mut elsewhere = bus.subscribe(owner, other, None).await.unwrap();
    let ids = publish(bus, owner, session, 2).await;
    assert_eq!(ids[0], a.latest + 1, "numbers go on from the latest");
    assert_eq!(ids[1], ids[0] + 1, "numbers rise by one");
    for (name, sub) in [
        ("first subscriber", &mut a.events),
        ("second subscriber", &mut b.events),
    ] {
        for id in &ids {
            assert_eq!(next_event(sub, name).await, *id, "{name}: in order, once");
        }
    }
    assert_eq!(bus.last_event_id(owner, session).await.unwrap(), ids[1]);

    // Another session's subscriber saw none of it: its first event is its own.
    let own = publish(bus, owner, other, 1).await;
    assert_eq!(
        next_event(&mut elsewhere.events, "the other session").await,
        own[0]
    );

    // Resume after the first: exactly the second, then the live ones.
    let mut resumed = bus.subscribe(owner, session, Some(ids[0])).await.unwrap();
    assert_eq!(resumed.latest, ids[1]);
    assert_eq!(next_event(&mut resumed.events, "resumed").await, ids[1]);
    let live = publish(bus, owner, session, 1).await[0];
    assert_eq!(next_event(&mut resumed.events, "resumed, live").await, live);
    for (name, sub) in [
        ("first subscriber", &mut a.events),
        ("second subscriber", &mut b.events),
    ] {
        assert_eq!(
            next_event(sub, name).await,
            live,
            "{name}: live after the resume"
        );
    }

    // Resuming from a number never handed out: resync, then the events that follow.
    let mut ahead = bus
        .subscribe(owner, session, Some(live + 1000))
        .await
        .unwrap();
    match next(&mut ahead.events, "resumed from the future").await {
        Received::Resync { latest, .. } => assert_eq!(latest, live),
        Received::Event(e) => panic!("resumed from the future: event {} without a resync", e.id),
    }
    let next_live = publish(bus, owner, session, 1).await[0];
    assert_eq!(next_live, live + 1);
    assert_eq!(
        next_event(&mut ahead.events, "after the resync").await,
        next_live
    );

    // Resuming from further back than the bus holds: resync at the latest, then live.
    let far = publish(bus, owner, session, holds + 2).await;
    let mut behind = bus
        .subscribe(owner, session, Some(next_live))
        .await
        .unwrap();
    match next(&mut behind.events, "resumed from too far back").await {
        Received::Resync { latest, .. } => assert_eq!(latest, *far.last().unwrap()),
        Received::Event(e) => panic!("resumed from too far back: event {} without a resync", e.id),
    }
    let after = publish(bus, owner, session, 1).await[0];
    assert_eq!(
        next_event(&mut behind.events, "after the resync").await,
        after
    );

    // The first subscriber read nothing meanwhile, far more than the bus holds: it gets
    // a resync before any gap, never an event twice or out of order, and ends at `after`.
    let mut last = live;
    loop {
        match next(&mut a.events, "a subscriber fallen behind").await {
            Received::Event(e) => {
                assert_eq!(e.id, last + 1, "a gap without a resync, or a repeat");
                last = e.id;
            }
            Received::Resync { latest, .. } => {
                assert!(latest >= last, "a resync back to {latest} after {last}");
                last = latest;
            }
        }
        if last == after {
            break;
        }
    }
}
