//! Moving the active leaf and deleting a session hold the session's lane: a run cannot
//! start between their check and their change. Each test polls the two operations in a
//! fixed order on one thread (see [`in_order`]), so the interleaving is the same on
//! every run.

use std::sync::Arc;

use mosaic_agent::control::{LocalControl, RunControl};
use mosaic_agent::tools::Registry;
use mosaic_agent::{Runtime, RuntimeConfig};
use mosaic_api::RunStatus;
use mosaic_store::StoreError;
use pretty_assertions::assert_eq;

/// Both operations, the first polled first. Unconstrained by tokio's cooperative budget,
/// which could otherwise make the first one's uncontended lock wait a turn and let the
/// second one in ahead of it; the lane's lock is fair, so the rest follows.
async fn in_order<A: std::future::Future, B: std::future::Future>(
    a: A,
    b: B,
) -> (A::Output, B::Output) {
    tokio::task::unconstrained(futures_util::future::join(a, b)).await
}

use crate::support::{message, runtime, started, Events, Reply, ScriptedModel, World};

#[tokio::test(flavor = "current_thread")]
async fn a_message_posted_while_the_leaf_moves_waits_and_goes_on_from_the_new_leaf() {
    let w = World::open().await;
    let (model, _arrived) = ScriptedModel::new(vec![Reply::text("first")]);
    let rt = runtime(&w, model, Registry::default());
    let mut events = Events::follow(&rt, &w).await;
    let one = events.exchange(&rt, &w, "one").await;

    // Back to the first message (a branch), and a new message in the same instant: the
    // move holds the lane first, so the message waits for it and hangs off the new leaf.
    let (moved, posted) = in_order(
        rt.set_leaf(&w.alice, &w.session_id, &one.id),
        rt.post_message(&w.alice, &w.session_id, message("two")),
    )
    .await;
    assert_eq!(
        moved.unwrap().active_leaf_id.as_deref(),
        Some(one.id.as_str())
    );
    let (two, run) = started(posted.unwrap());
    assert_eq!(two.parent_id.as_deref(), Some(one.id.as_str()));
    events.finished(&run).await;
    let path: Vec<String> = w
        .store
        .session_path(&w.alice, &w.session_id, None)
        .await
        .unwrap()
        .into_iter()
        .map(|e| e.id)
        .collect();
    assert_eq!(&path[..2], &[one.id.clone(), two.id.clone()]);
}

#[tokio::test(flavor = "current_thread")]
async fn the_leaf_does_not_move_under_a_run_that_started_first() {
    let w = World::open().await;
    let (held, release) = Reply::text("second").held();
    let (model, mut arrived) = ScriptedModel::new(vec![Reply::text("first"), held]);
    let rt = runtime(&w, model, Registry::default());
    let mut events = Events::follow(&rt, &w).await;
    let one = events.exchange(&rt, &w, "one").await;
    arrived.recv().await.unwrap();

    // The message first: its run starts and holds at the model; the move is refused.
    let (posted, moved) = in_order(
        rt.post_message(&w.alice, &w.session_id, message("two")),
        rt.set_leaf(&w.alice, &w.session_id, &one.id),
    )
    .await;
    let (two, run) = started(posted.unwrap());
    assert!(
        matches!(&moved, Err(StoreError::Conflict(m)) if m.contains("a run is active")),
        "{moved:?}"
    );
    arrived.recv().await.unwrap();
    release.send(()).unwrap();
    assert_eq!(events.finished(&run).await.status, RunStatus::Completed);
    let session = w.store.get_session(&w.alice, &w.session_id).await.unwrap();
    let path = w
        .store
        .session_path(&w.alice, &w.session_id, None)
        .await
        .unwrap();
    // The run's answer follows its message; the leaf never went back to "one".
    assert_eq!(path[path.len() - 2].id, two.id);
    assert_eq!(session.active_leaf_id, path.last().map(|e| e.id.clone()));
}

#[tokio::test(flavor = "current_thread")]
async fn deleting_a_session_stops_its_run_and_no_message_starts_another_meanwhile() {
    let w = World::open().await;
    let (held, _release) = Reply::text("never").held();
    let (model, mut arrived) = ScriptedModel::new(vec![held]);
    let control = Arc::new(LocalControl::default());
    let rt = Runtime::builder(
        w.store.clone(),
        model.clone(),
        Registry::default(),
        RuntimeConfig::default(),
    )
    .control(control.clone())
    .build();
    let (_, _run) = started(
        rt.post_message(&w.alice, &w.session_id, message("one"))
            .await
            .unwrap(),
    );
    arrived.recv().await.unwrap();

    // Bob may not delete it, and his attempt leaves the run alone.
    assert!(matches!(
        rt.delete_session(&w.bob, &w.session_id).await,
        Err(StoreError::NotFound)
    ));
    assert_eq!(rt.active_runs(), 1);

    // Alice's delete holds the lane; the message posted in the same instant waits and
    // then finds no session.
    let (deleted, posted) = in_order(
        rt.delete_session(&w.alice, &w.session_id),
        rt.post_message(&w.alice, &w.session_id, message("two")),
    )
    .await;
    deleted.unwrap();
    assert!(matches!(posted, Err(StoreError::NotFound)), "{posted:?}");
    // The held run was interrupted and ends without a second model call.
    rt.shutdown(std::time::Duration::from_secs(5)).await;
    assert_eq!(rt.active_runs(), 0);
    assert_eq!(model.requests().len(), 1);
    assert!(matches!(
        w.store.get_session(&w.alice, &w.session_id).await,
        Err(StoreError::NotFound)
    ));
    // The run left run control although its session (and lane) went first.
    assert_eq!(control.active(&w.session_id).await, Ok(None));
}
