//! Stored rows that cannot be read back (damaged in the database, not by a request)
//! are `Corrupt`, which the gateway answers as an internal error, never `Invalid` (a
//! 400 blaming the caller).

use mosaic_api::{CreateTaskRequest, EntryBody, TaskQuery};
use mosaic_store::{Parent, Principal};
use mosaic_test_support::engines;
use sqlx::{Connection, Executor};

use crate::support::{err_kind, Engine, Kind, TestDb};

engines!(
    a_stored_unknown_enum_text_is_corrupt,
    a_stored_entry_that_is_not_json_is_corrupt,
);

/// Change one row behind the store's back, as `owner` (so that row-level security
/// lets the change through on PostgreSQL). `sql` binds the row's id as `$1`.
async fn tamper(db: &TestDb, owner: &Principal, sql: &str, id: &str) {
    let mut conn = sqlx::AnyConnection::connect(&db.url).await.unwrap();
    let sql = match db.engine {
        Engine::Sqlite => sql.replace("$1", "?1"),
        Engine::Postgres => {
            let uid = owner.local_user().unwrap();
            conn.execute(
                format!(
                    "SELECT set_config('mosaic.uid', '{uid}', false), \
                     set_config('mosaic.role', 'user', false)"
                )
                .as_str(),
            )
            .await
            .unwrap();
            sql.to_string()
        }
    };
    let changed = sqlx::query(&sql).bind(id).execute(&mut conn).await.unwrap();
    assert_eq!(changed.rows_affected(), 1, "{sql}");
    conn.close().await.unwrap();
}

async fn a_stored_unknown_enum_text_is_corrupt(db: TestDb) {
    let (_, [(_, alice)]) = db.admin_and_users(["alice"]).await;
    let task = db
        .store
        .create_task(
            &alice,
            &CreateTaskRequest {
                title: "water the plants".into(),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    tamper(
        &db,
        &alice,
        "UPDATE tasks SET status = 'exploded' WHERE id = $1",
        &task.id,
    )
    .await;
    assert_eq!(
        err_kind(db.store.get_task(&alice, &task.id).await),
        Kind::Corrupt
    );
    assert_eq!(
        err_kind(db.store.list_tasks(&alice, &TaskQuery::default()).await),
        Kind::Corrupt
    );
}

async fn a_stored_entry_that_is_not_json_is_corrupt(db: TestDb) {
    let (_, [(_, alice)]) = db.admin_and_users(["alice"]).await;
    let session = db
        .store
        .create_session(&alice, None, "notes")
        .await
        .unwrap();
    let entry = db
        .store
        .append_entry(
            &alice,
            &session.id,
            Parent::ActiveLeaf,
            EntryBody::User {
                text: "hello".into(),
            },
        )
        .await
        .unwrap();
    tamper(
        &db,
        &alice,
        "UPDATE session_entries SET body = '{not json' WHERE id = $1",
        &entry.id,
    )
    .await;
    assert_eq!(
        err_kind(db.store.session_path(&alice, &session.id, None).await),
        Kind::Corrupt
    );
}
