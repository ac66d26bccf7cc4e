//! The seams' conformance suites, run against the in-process implementations.

use mosaic_agent::bus::{Bus, BusLimits};

use crate::support::World;

#[tokio::test]
async fn the_in_process_bus_passes_the_event_bus_suite() {
    let w = World::open().await;
    let other = w
        .store
        .create_session(&w.alice, None, "t")
        .await
        .unwrap()
        .id;
    // Small, so that falling behind and resuming from too far back are quick to reach:
    // the channel overflows after 4, the ring holds 8, numbers come 5 at a time.
    let limits = BusLimits {
        ring: 8,
        channel: 4,
        block: 5,
        retained_bytes: 1 << 20,
    };
    let bus = Bus::new(w.store.clone(), limits);
    mosaic_agent::conformance::event_bus(&bus, &w.alice, [&w.session_id, &other], 8).await;
}

#[tokio::test]
async fn the_in_process_run_control_passes_the_run_control_suite() {
    let control = mosaic_agent::control::LocalControl::default();
    mosaic_agent::conformance::run_control(&control, ["s1", "s2", "s3"]).await;
}
