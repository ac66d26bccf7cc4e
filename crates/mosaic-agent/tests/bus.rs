//! The event bus against a real SQLite store: numbering, replay, resync of subscribers
//! that fall behind or resume from numbers no longer held, numbers that keep rising
//! across a new bus (a restart).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use mosaic_agent::bus::{Bus, BusLimits};
use mosaic_api::SessionEvent;
use mosaic_store::{Principal, Store};
use mosaic_test_support::people::{people, sqlite_store};
use tokio::sync::broadcast::error::TryRecvError;

async fn session(dir: &std::path::Path) -> (Store, Principal, String) {
    let store = sqlite_store(dir, "bus.db").await;
    let (_, [p]) = people(&store, ["ann"]).await;
    let s = store.create_session(&p, None, "bus").await.unwrap();
    (store, p, s.id)
}

fn delta(i: usize) -> SessionEvent {
    SessionEvent::TextDelta {
        run_id: "r".into(),
        text: format!("{i}"),
    }
}

const SMALL: BusLimits = BusLimits {
    ring: 8,
    channel: 4,
    block: 5,
    retained_bytes: 1 << 20,
};

#[tokio::test]
async fn numbers_rise_across_blocks_and_buses_and_resume_replays_what_was_missed() {
    let dir = tempfile::tempdir().unwrap();
    let (store, p, id) = session(dir.path()).await;
    let bus = Bus::new(store.clone(), SMALL);
    let s = bus.session(&p, &id).await.unwrap();
    let mut ids = Vec::new();
    for i in 0..12 {
        ids.push(s.publish(delta(i)).await.id);
    }
    // Consecutive across three reserved blocks.
    assert!(ids.windows(2).all(|w| w[1] == w[0] + 1), "{ids:?}");
    assert_eq!(s.last_event_id().await, ids[11]);

    // Resume after the 6th: exactly the 7th to the 12th, from the ring.
    let sub = s.subscribe(Some(ids[5])).await;
    assert!(sub.resync.is_none());
    let replayed: Vec<u64> = sub.replay.iter().map(|e| e.id).collect();
    assert_eq!(replayed, ids[6..].to_vec());

    // Older than the ring holds (8 events): resync.
    let sub = s.subscribe(Some(ids[1])).await;
    assert!(sub.resync.is_some());
    assert!(sub.replay.is_empty());

    // A new bus (a restart) never reuses a number; an old one means resync.
    let again = Bus::new(store.clone(), SMALL);
    let s2 = again.session(&p, &id).await.unwrap();
    let first_after = s2.publish(delta(99)).await.id;
    assert!(first_after > ids[11], "{first_after} after {}", ids[11]);
    assert!(s2.subscribe(Some(ids[11])).await.resync.is_some());
}

#[tokio::test]
async fn a_subscriber_that_falls_behind_is_told_and_never_slows_the_publisher() {
    let dir = tempfile::tempdir().unwrap();
    let (store, p, id) = session(dir.path()).await;
    let bus = Bus::new(store, SMALL);
    let s = bus.session(&p, &id).await.unwrap();
    let mut slow = s.subscribe(None).await.live;
    let mut fast = s.subscribe(None).await.live;
    for i in 0..10 {
        s.publish(delta(i)).await;
        // The fast one keeps up.
        assert!(fast.try_recv().is_ok());
    }
    // The slow one read nothing: its channel (4) overflowed; publishing went on.
    assert!(matches!(slow.try_recv(), Err(TryRecvError::Lagged(6))));
    assert_eq!(bus.subscriber_count(), 2);
}

#[tokio::test]
async fn what_quiet_sessions_keep_is_bounded_and_followed_ones_keep_theirs() {
    let dir = tempfile::tempdir().unwrap();
    let (store, p, first) = session(dir.path()).await;
    let limits = BusLimits {
        ring: 1000,
        channel: 16,
        block: 100,
        retained_bytes: 200_000,
    };
    let bus = Bus::new(store.clone(), limits);
    let followed = bus.session(&p, &first).await.unwrap();
    let sub = followed.subscribe(None).await;
    for i in 0..200 {
        followed.publish(delta(i)).await;
    }
    let mut quiet = Vec::new();
    for n in 0..10 {
        let id = store
            .create_session(&p, None, &format!("s{n}"))
            .await
            .unwrap()
            .id;
        let s = bus.session(&p, &id).await.unwrap();
        for i in 0..200 {
            s.publish(delta(i)).await;
        }
        quiet.push(id);
    }
    let before = bus.retained_bytes();
    assert!(before > 200_000, "{before}");
    bus.sweep(std::time::Duration::from_secs(600), |_| false);
    let after = bus.retained_bytes();
    assert!(after <= 200_000, "{after} bytes kept");
    // The followed session keeps its events; the longest idle quiet ones went first.
    let again = bus.session(&p, &first).await.unwrap();
    assert_eq!(again.subscribe(Some(0)).await.replay.len(), 200);
    drop(sub);
    let newest = bus.session(&p, quiet.last().unwrap()).await.unwrap();
    assert!(
        !newest.subscribe(Some(0)).await.replay.is_empty(),
        "the newest stays"
    );
}
