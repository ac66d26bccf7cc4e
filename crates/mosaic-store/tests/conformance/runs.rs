//! Runs, checkpointed answers, recovery after a crash, event numbers and the message
//! queue.

use mosaic_api::{Delivery, EntryBody, PageQuery, RunStatus, RunUsage, StopReason};
use mosaic_store::{Parent, PartialAnswer, RunEnd, RunProgress};
use mosaic_test_support::engines;
use pretty_assertions::assert_eq;

use crate::support::{err_kind, Kind, TestDb};

engines!(
    one_run_at_a_time_per_session_and_only_for_its_owner,
    a_run_cut_off_by_a_crash_is_recovered_with_its_partial_answer,
    an_entry_made_by_a_run_forgets_the_partial_copy,
    event_numbers_never_repeat,
    queued_messages_are_delivered_once_in_order,
);

fn user(text: &str) -> EntryBody {
    EntryBody::User { text: text.into() }
}

async fn one_run_at_a_time_per_session_and_only_for_its_owner(db: TestDb) {
    let (_, [(_, alice), (_, bob)]) = db.admin_and_users(["alice", "bob"]).await;
    let s = db.store.create_session(&alice, None, "").await.unwrap();
    let run = db.store.start_run(&alice, &s.id).await.unwrap();
    assert_eq!(run.status, RunStatus::Running);
    assert_eq!(
        err_kind(db.store.start_run(&alice, &s.id).await),
        Kind::Conflict
    );
    assert_eq!(
        err_kind(db.store.start_run(&bob, &s.id).await),
        Kind::NotFound
    );
    assert_eq!(
        err_kind(db.store.get_run(&bob, &run.id).await),
        Kind::NotFound
    );
    let end = RunEnd {
        status: RunStatus::Completed,
        stop_reason: Some("stop".into()),
        error: None,
    };
    let progress = RunProgress {
        model_calls: 2,
        usage: RunUsage {
            input_tokens: 10,
            output_tokens: 5,
            cached_tokens: 1,
        },
    };
    assert_eq!(
        err_kind(db.store.finish_run(&bob, &run.id, &end, &progress).await),
        Kind::NotFound
    );
    let done = db
        .store
        .finish_run(&alice, &run.id, &end, &progress)
        .await
        .unwrap();
    assert_eq!(done.status, RunStatus::Completed);
    assert_eq!(done.model_calls, 2);
    assert_eq!(done.usage, progress.usage);
    assert!(done.finished_at.is_some());
    // The next may start now.
    let next = db.store.start_run(&alice, &s.id).await.unwrap();
    let page = db
        .store
        .list_runs(&alice, &s.id, &PageQuery::default())
        .await
        .unwrap();
    let ids: Vec<&str> = page.items.iter().map(|r| r.id.as_str()).collect();
    assert_eq!(ids, vec![next.id.as_str(), run.id.as_str()]);
    assert_eq!(
        err_kind(db.store.list_runs(&bob, &s.id, &PageQuery::default()).await),
        Kind::NotFound
    );
}

async fn a_run_cut_off_by_a_crash_is_recovered_with_its_partial_answer(db: TestDb) {
    let (_, [(_, alice), (_, bob)]) = db.admin_and_users(["alice", "bob"]).await;
    let s = db.store.create_session(&alice, None, "").await.unwrap();
    let question = db
        .store
        .append_entry(&alice, &s.id, Parent::ActiveLeaf, user("tell me"))
        .await
        .unwrap();
    let run = db.store.start_run(&alice, &s.id).await.unwrap();
    let partial = PartialAnswer {
        text: "Once upon".into(),
        thinking: "hmm".into(),
        parent_id: Some(question.id.clone()),
        model: Some("mock/m".into()),
    };
    db.store
        .checkpoint_run(&alice, &run.id, &partial)
        .await
        .unwrap();
    // Bob's checkpoint of Alice's run changes nothing.
    let forged = PartialAnswer {
        text: "forged".into(),
        ..partial.clone()
    };
    db.store
        .checkpoint_run(&bob, &run.id, &forged)
        .await
        .unwrap();
    // An idle run of Bob's is recovered too; nothing streamed there.
    let bs = db.store.create_session(&bob, None, "").await.unwrap();
    let bob_run = db.store.start_run(&bob, &bs.id).await.unwrap();

    let orphans = db.store.orphan_runs().await.unwrap();
    let mut found: Vec<(&str, &str)> = orphans
        .iter()
        .map(|o| (o.run_id.as_str(), o.principal.local_user().unwrap()))
        .collect();
    found.sort();
    let mut expected = vec![
        (run.id.as_str(), alice.local_user().unwrap()),
        (bob_run.id.as_str(), bob.local_user().unwrap()),
    ];
    expected.sort();
    assert_eq!(found, expected);

    let (recovered, entry) = db.store.recover_run(&alice, &run.id).await.unwrap();
    assert_eq!(recovered.status, RunStatus::Interrupted);
    assert_eq!(recovered.stop_reason, Some(StopReason::GatewayStopped));
    let entry = entry.unwrap();
    assert_eq!(entry.parent_id.as_deref(), Some(question.id.as_str()));
    assert_eq!(
        entry.body,
        EntryBody::Assistant {
            text: "Once upon".into(),
            thinking: "hmm".into(),
            model: Some("mock/m".into()),
            stop_reason: Some("interrupted".into()),
            reasoning: Vec::new(),
        }
    );
    let path = db.store.session_path(&alice, &s.id, None).await.unwrap();
    assert_eq!(path.len(), 2);
    // Recovering again changes nothing.
    let (_, again) = db.store.recover_run(&alice, &run.id).await.unwrap();
    assert!(again.is_none());
    let (bob_recovered, nothing) = db.store.recover_run(&bob, &bob_run.id).await.unwrap();
    assert_eq!(bob_recovered.status, RunStatus::Interrupted);
    assert!(nothing.is_none());
    assert!(db.store.orphan_runs().await.unwrap().is_empty());
}

async fn an_entry_made_by_a_run_forgets_the_partial_copy(db: TestDb) {
    let (_, [(_, alice)]) = db.admin_and_users(["alice"]).await;
    let s = db.store.create_session(&alice, None, "").await.unwrap();
    db.store
        .append_entry(&alice, &s.id, Parent::ActiveLeaf, user("q"))
        .await
        .unwrap();
    let run = db.store.start_run(&alice, &s.id).await.unwrap();
    let partial = PartialAnswer {
        text: "The ans".into(),
        ..PartialAnswer::default()
    };
    db.store
        .checkpoint_run(&alice, &run.id, &partial)
        .await
        .unwrap();
    let answer = EntryBody::Assistant {
        text: "The answer.".into(),
        thinking: String::new(),
        model: None,
        stop_reason: Some("stop".into()),
        reasoning: Vec::new(),
    };
    let progress = RunProgress {
        model_calls: 1,
        ..RunProgress::default()
    };
    db.store
        .append_run_entry(
            &alice,
            &s.id,
            &run.id,
            Parent::ActiveLeaf,
            answer,
            &progress,
        )
        .await
        .unwrap();
    // A crash now must not add the partial copy beside the committed answer.
    let (run, entry) = db.store.recover_run(&alice, &run.id).await.unwrap();
    assert!(entry.is_none());
    assert_eq!(run.model_calls, 1);
    let path = db.store.session_path(&alice, &s.id, None).await.unwrap();
    assert_eq!(path.len(), 2);
}

async fn event_numbers_never_repeat(db: TestDb) {
    let (_, [(_, alice), (_, bob)]) = db.admin_and_users(["alice", "bob"]).await;
    let s = db.store.create_session(&alice, None, "").await.unwrap();
    let a = db
        .store
        .reserve_event_numbers(&alice, &s.id, 100)
        .await
        .unwrap();
    let b = db
        .store
        .reserve_event_numbers(&alice, &s.id, 100)
        .await
        .unwrap();
    assert_eq!(a, 1);
    assert_eq!(b, 101);
    assert_eq!(
        err_kind(db.store.reserve_event_numbers(&bob, &s.id, 100).await),
        Kind::NotFound
    );
}

async fn queued_messages_are_delivered_once_in_order(db: TestDb) {
    let (_, [(_, alice), (_, bob)]) = db.admin_and_users(["alice", "bob"]).await;
    let s = db.store.create_session(&alice, None, "").await.unwrap();
    let first = db
        .store
        .enqueue_message(&alice, &s.id, Delivery::FollowUp, "first")
        .await
        .unwrap();
    let second = db
        .store
        .enqueue_message(&alice, &s.id, Delivery::Steer, "second")
        .await
        .unwrap();
    assert_eq!(
        err_kind(
            db.store
                .enqueue_message(&alice, &s.id, Delivery::Steer, "  ")
                .await
        ),
        Kind::Invalid
    );
    assert_eq!(
        err_kind(
            db.store
                .enqueue_message(&bob, &s.id, Delivery::Steer, "x")
                .await
        ),
        Kind::NotFound
    );
    assert_eq!(
        err_kind(db.store.deliver_queued(&bob, &s.id, &first.id, None).await),
        Kind::NotFound
    );
    let queue = db.store.queued_messages(&alice, &s.id).await.unwrap();
    assert_eq!(queue, vec![first.clone(), second.clone()]);
    let waiting = db.store.sessions_with_queue().await.unwrap();
    assert_eq!(waiting.len(), 1);
    assert_eq!(waiting[0].1, s.id);

    let e1 = db
        .store
        .deliver_queued(&alice, &s.id, &first.id, None)
        .await
        .unwrap();
    assert_eq!(e1.body, user("first"));
    // Twice is not possible.
    assert_eq!(
        err_kind(
            db.store
                .deliver_queued(&alice, &s.id, &first.id, None)
                .await
        ),
        Kind::NotFound
    );
    let e2 = db
        .store
        .deliver_queued(&alice, &s.id, &second.id, None)
        .await
        .unwrap();
    assert_eq!(e2.parent_id.as_deref(), Some(e1.id.as_str()));
    assert!(db
        .store
        .queued_messages(&alice, &s.id)
        .await
        .unwrap()
        .is_empty());
    assert!(db.store.sessions_with_queue().await.unwrap().is_empty());
}

/// Listed in `rls.rs` with the other PostgreSQL-only cases.
pub(crate) async fn row_level_security_hides_other_users_runs_and_queues(db: TestDb) {
    let (_, [(_, alice), (_, bob)]) = db.admin_and_users(["alice", "bob"]).await;
    let s = db.store.create_session(&alice, None, "").await.unwrap();
    db.store.start_run(&alice, &s.id).await.unwrap();
    db.store
        .enqueue_message(&alice, &s.id, Delivery::FollowUp, "secret")
        .await
        .unwrap();
    let mut conn = crate::rls::connect_as_store_role(&db).await;
    let mut tx = crate::rls::acting_as(&mut conn, &bob, &[]).await;
    for table in ["runs", "queued_messages"] {
        let n: i64 = sqlx::query_scalar(&format!("SELECT count(*) FROM {table}"))
            .fetch_one(&mut *tx)
            .await
            .unwrap();
        assert_eq!(n, 0, "{table} shows Alice's rows to Bob");
    }
    let changed = sqlx::query("UPDATE runs SET status = 'completed'")
        .execute(&mut *tx)
        .await
        .unwrap()
        .rows_affected();
    assert_eq!(changed, 0);
    drop(tx);
    let mut tx = crate::rls::acting_as(&mut conn, &alice, &[]).await;
    let n: i64 = sqlx::query_scalar("SELECT count(*) FROM runs")
        .fetch_one(&mut *tx)
        .await
        .unwrap();
    assert_eq!(n, 1);
}
