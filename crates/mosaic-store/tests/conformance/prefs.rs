//! Preferences: typed values per user, checked against the contract's known keys.

use mosaic_api::Preference;
use mosaic_test_support::engines;
use pretty_assertions::assert_eq;
use serde_json::json;

use crate::support::{err_kind, Kind, TestDb};

engines!(
    preferences_are_set_got_listed_and_deleted,
    invalid_values_and_unknown_keys_are_refused,
    other_users_never_see_preferences,
);

async fn preferences_are_set_got_listed_and_deleted(db: TestDb) {
    let (_, [(_, alice)]) = db.admin_and_users(["alice"]).await;
    assert_eq!(db.store.list_preferences(&alice).await.unwrap(), vec![]);

    let theme = db
        .store
        .set_preference(&alice, "theme", &json!("dark"))
        .await
        .unwrap();
    assert_eq!(
        theme,
        Preference {
            key: "theme".into(),
            value: json!("dark"),
            updated_at: theme.updated_at.clone(),
        }
    );
    let size = db
        .store
        .set_preference(&alice, "page_size", &json!(20))
        .await
        .unwrap();
    let thinking = db
        .store
        .set_preference(&alice, "show_thinking", &json!(false))
        .await
        .unwrap();
    assert_eq!(
        db.store.get_preference(&alice, "theme").await.unwrap(),
        theme
    );
    assert_eq!(
        db.store.get_preference(&alice, "page_size").await.unwrap(),
        size
    );
    // Listed by key.
    assert_eq!(
        db.store.list_preferences(&alice).await.unwrap(),
        vec![size.clone(), thinking.clone(), theme]
    );

    // Setting again replaces.
    let light = db
        .store
        .set_preference(&alice, "theme", &json!("light"))
        .await
        .unwrap();
    assert_eq!(
        db.store.get_preference(&alice, "theme").await.unwrap(),
        light
    );

    db.store.delete_preference(&alice, "theme").await.unwrap();
    assert_eq!(
        err_kind(db.store.get_preference(&alice, "theme").await),
        Kind::NotFound
    );
    assert_eq!(
        err_kind(db.store.delete_preference(&alice, "theme").await),
        Kind::NotFound
    );
    assert_eq!(
        db.store.list_preferences(&alice).await.unwrap(),
        vec![size, thinking]
    );
}

async fn invalid_values_and_unknown_keys_are_refused(db: TestDb) {
    let (_, [(_, alice)]) = db.admin_and_users(["alice"]).await;
    for (key, value) in [
        ("theme", json!("pink")),
        ("theme", json!(1)),
        ("page_size", json!(0)),
        ("page_size", json!(501)),
        ("page_size", json!("20")),
        ("show_thinking", json!("yes")),
        ("locale", json!("x".repeat(36))),
        ("no_such_key", json!("x")),
    ] {
        assert_eq!(
            err_kind(db.store.set_preference(&alice, key, &value).await),
            Kind::Invalid,
            "{key} = {value}"
        );
    }
    // Unknown keys are simply not there.
    assert_eq!(
        err_kind(db.store.get_preference(&alice, "no_such_key").await),
        Kind::NotFound
    );
    assert_eq!(
        err_kind(db.store.delete_preference(&alice, "no_such_key").await),
        Kind::NotFound
    );
    assert_eq!(db.store.list_preferences(&alice).await.unwrap(), vec![]);
}

async fn other_users_never_see_preferences(db: TestDb) {
    let (_, [(_, alice), (_, bob)]) = db.admin_and_users(["alice", "bob"]).await;
    let alices = db
        .store
        .set_preference(&alice, "timezone", &json!("Europe/Berlin"))
        .await
        .unwrap();

    assert_eq!(db.store.list_preferences(&bob).await.unwrap(), vec![]);
    assert_eq!(
        err_kind(db.store.get_preference(&bob, "timezone").await),
        Kind::NotFound
    );
    assert_eq!(
        err_kind(db.store.delete_preference(&bob, "timezone").await),
        Kind::NotFound
    );

    // Bob's own value of the same key is his alone.
    let bobs = db
        .store
        .set_preference(&bob, "timezone", &json!("America/Chicago"))
        .await
        .unwrap();
    assert_eq!(db.store.list_preferences(&bob).await.unwrap(), vec![bobs]);
    assert_eq!(
        db.store.list_preferences(&alice).await.unwrap(),
        vec![alices]
    );
}
