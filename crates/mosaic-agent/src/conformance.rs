//! The suites every implementation of the runtime's seams must pass, written once over
//! the traits: [`event_bus`] for an [`EventBus`], [`run_control`] for a
//! [`RunControl`]. The in-process implementations run them
//! in this crate's tests; one backed by Valkey or the database (for several replicas)
//! runs the same functions in its own.
//!
//! They panic on the first broken promise, as tests do.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use futures_util::StreamExt;
use mosaic_api::{PendingApproval, SessionEvent};
use mosaic_store::Principal;

use crate::bus::{EventBus, Events, Received};
use crate::control::{ControlError, RunControl, Signal, Signals};

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

async fn signal(signals: &mut Signals, what: &str) -> Signal {
    match tokio::time::timeout(PATIENCE, signals.next()).await {
        Ok(Some(signal)) => signal,
        Ok(None) => panic!("{what}: the run's signals ended"),
        Err(_) => panic!("{what}: no signal came within {PATIENCE:?}"),
    }
}

/// Nothing more has reached the run (signals are sent before the call returns).
async fn quiet(signals: &mut Signals, what: &str) {
    if let Ok(Some(signal)) = tokio::time::timeout(Duration::from_millis(50), signals.next()).await
    {
        panic!("{what}: an extra signal {signal:?}");
    }
}

fn approval(run_id: &str, call_id: &str) -> PendingApproval {
    PendingApproval {
        run_id: run_id.into(),
        call_id: call_id.into(),
        name: "http_fetch".into(),
        arguments: "{}".into(),
    }
}

/// Run control keeps its promises: an interrupt, an approval's answer and a steer reach
/// the session's active run, each once; an approval is answered once, and an answer
/// for a call nobody waits for is `NotFound`; a second run cannot start beside the
/// active one; a user's interrupt reaches their runs only; an ended run hears nothing
/// and leaves no approvals. `sessions` are three sessions' ids, no run active in any.
pub async fn run_control(control: &dyn RunControl, sessions: [&str; 3]) {
    let [s1, s2, s3] = sessions;
    assert_eq!(control.active(s1).await.unwrap(), None);
    assert_eq!(
        control.interrupt(s1).await.unwrap(),
        None,
        "no run to interrupt"
    );
    assert!(!control.steer(s1).await.unwrap(), "no run to steer");

    let mut run = control.started(s1, "r1", "u1").await.unwrap();
    assert_eq!(
        control.started(s1, "r2", "u1").await.err(),
        Some(ControlError::Busy),
        "a second run beside the active one"
    );

    // A steer, then an interrupt: both reach the run, in order.
    assert!(control.steer(s1).await.unwrap());
    assert_eq!(control.interrupt(s1).await.unwrap().as_deref(), Some("r1"));
    assert_eq!(signal(&mut run, "steer").await, Signal::Steer);
    assert_eq!(signal(&mut run, "interrupt").await, Signal::Interrupt);

    // An approval waits, shows, is answered once.
    control.ask(s1, approval("r1", "c1")).await.unwrap();
    control.ask(s1, approval("r1", "c2")).await.unwrap();
    let active = control.active(s1).await.unwrap().unwrap();
    assert_eq!(active.run_id, "r1");
    assert_eq!(active.owner, "u1");
    assert_eq!(
        active.approvals,
        vec![approval("r1", "c1"), approval("r1", "c2")]
    );
    control
        .answer(s1, "c2", false, Some("not that".into()))
        .await
        .unwrap();
    assert_eq!(
        signal(&mut run, "the answer").await,
        Signal::Approval {
            call_id: "c2".into(),
            approved: false,
            note: Some("not that".into()),
        }
    );
    assert_eq!(
        control.answer(s1, "c2", true, None).await,
        Err(ControlError::NotFound),
        "answered twice"
    );
    assert_eq!(
        control.answer(s1, "c9", true, None).await,
        Err(ControlError::NotFound),
        "nobody waits for c9"
    );
    assert_eq!(
        control.answer(s2, "c1", true, None).await,
        Err(ControlError::NotFound),
        "c1 waits in another session"
    );
    assert_eq!(
        control.active(s1).await.unwrap().unwrap().approvals,
        vec![approval("r1", "c1")]
    );
    // Withdrawn (the run stopped waiting): no longer to be answered.
    control.withdraw(s1, "c1").await;
    assert_eq!(
        control.answer(s1, "c1", true, None).await,
        Err(ControlError::NotFound)
    );
    quiet(&mut run, "after the answers").await;

    // A user's interrupt reaches that user's runs and no one else's.
    let mut other_user = control.started(s2, "r3", "u2").await.unwrap();
    let mut same_user = control.started(s3, "r4", "u1").await.unwrap();
    let mut interrupted = control.interrupt_user("u1").await.unwrap();
    interrupted.sort();
    assert_eq!(interrupted, vec!["r1".to_string(), "r4".to_string()]);
    assert_eq!(
        signal(&mut run, "the user's interrupt").await,
        Signal::Interrupt
    );
    assert_eq!(
        signal(&mut same_user, "the user's interrupt").await,
        Signal::Interrupt
    );
    quiet(&mut other_user, "another user's run").await;

    // Ended: nothing reaches it, its approvals went, and the session is free again.
    control.ask(s1, approval("r1", "c3")).await.unwrap();
    control.ended(s1, "r1").await;
    assert_eq!(control.active(s1).await.unwrap(), None);
    assert_eq!(control.interrupt(s1).await.unwrap(), None);
    assert_eq!(
        control.answer(s1, "c3", true, None).await,
        Err(ControlError::NotFound)
    );
    // The end of another run leaves the active one alone.
    control.ended(s2, "r1").await;
    assert_eq!(
        control
            .active(s2)
            .await
            .unwrap()
            .map(|a| a.run_id)
            .as_deref(),
        Some("r3")
    );
    let mut next = control.started(s1, "r5", "u1").await.unwrap();
    assert_eq!(control.interrupt(s1).await.unwrap().as_deref(), Some("r5"));
    assert_eq!(signal(&mut next, "the next run").await, Signal::Interrupt);
    for (s, r) in [(s1, "r5"), (s2, "r3"), (s3, "r4")] {
        control.ended(s, r).await;
    }
}
