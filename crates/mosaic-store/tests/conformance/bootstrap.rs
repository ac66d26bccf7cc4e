//! The first admin: a one-shot bootstrap token, redeemable exactly once, even when many
//! redeem it at the same moment.

use mosaic_api::PageQuery;
use mosaic_store::now_ms;
use mosaic_store::BootstrapSource;
use mosaic_test_support::engines;
use pretty_assertions::assert_eq;

use crate::support::{err_kind, new_user, principal, Kind, TestDb};

engines!(
    redeeming_the_bootstrap_token_creates_the_first_admin_once,
    a_wrong_expired_or_replaced_bootstrap_token_is_not_found,
    a_startup_token_does_not_replace_an_offline_one,
    bootstrap_is_closed_once_an_admin_exists,
    concurrent_redemptions_create_exactly_one_admin,
);

const HOUR_MS: i64 = 3_600_000;

async fn redeeming_the_bootstrap_token_creates_the_first_admin_once(db: TestDb) {
    assert!(db.store.needs_bootstrap().await.unwrap());
    db.store
        .issue_bootstrap_token(BootstrapSource::Startup, "boot-1", now_ms() + HOUR_MS)
        .await
        .unwrap();
    // The admin flag of the request does not matter: the bootstrap user is an admin.
    let admin = db
        .store
        .redeem_bootstrap("boot-1", new_user("Root", false))
        .await
        .unwrap();
    assert_eq!(admin.username, "root");
    assert!(admin.is_admin);
    assert!(!admin.disabled);
    assert!(!db.store.needs_bootstrap().await.unwrap());

    assert_eq!(
        err_kind(
            db.store
                .redeem_bootstrap("boot-1", new_user("root2", false))
                .await
        ),
        Kind::NotFound
    );
    let users = db
        .store
        .list_users(&principal(&admin), &PageQuery::default())
        .await
        .unwrap();
    assert_eq!(users.items, vec![admin]);
}

async fn a_wrong_expired_or_replaced_bootstrap_token_is_not_found(db: TestDb) {
    db.store
        .issue_bootstrap_token(BootstrapSource::Startup, "boot-1", now_ms() + HOUR_MS)
        .await
        .unwrap();
    assert_eq!(
        err_kind(
            db.store
                .redeem_bootstrap("not-the-token", new_user("root", false))
                .await
        ),
        Kind::NotFound
    );

    // A new token replaces the old one.
    db.store
        .issue_bootstrap_token(BootstrapSource::Startup, "boot-2", now_ms() + HOUR_MS)
        .await
        .unwrap();
    assert_eq!(
        err_kind(
            db.store
                .redeem_bootstrap("boot-1", new_user("root", false))
                .await
        ),
        Kind::NotFound
    );

    // An expired one is as good as none.
    db.store
        .issue_bootstrap_token(BootstrapSource::Startup, "boot-3", now_ms() - 1)
        .await
        .unwrap();
    assert_eq!(
        err_kind(
            db.store
                .redeem_bootstrap("boot-3", new_user("root", false))
                .await
        ),
        Kind::NotFound
    );
    assert!(db.store.needs_bootstrap().await.unwrap());

    db.store
        .issue_bootstrap_token(BootstrapSource::Startup, "boot-4", now_ms() + HOUR_MS)
        .await
        .unwrap();
    let admin = db
        .store
        .redeem_bootstrap("boot-4", new_user("root", false))
        .await
        .unwrap();
    assert!(admin.is_admin);
}

async fn bootstrap_is_closed_once_an_admin_exists(db: TestDb) {
    let (_, admin) = db.first_admin("root").await;
    assert_eq!(
        err_kind(
            db.store
                .issue_bootstrap_token(BootstrapSource::Startup, "boot-again", now_ms() + HOUR_MS)
                .await
        ),
        Kind::Conflict
    );
    assert_eq!(
        err_kind(
            db.store
                .redeem_bootstrap("boot-again", new_user("usurper", false))
                .await
        ),
        Kind::NotFound
    );
    let users = db
        .store
        .list_users(&admin, &PageQuery::default())
        .await
        .unwrap();
    assert_eq!(users.items.len(), 1);
}

async fn concurrent_redemptions_create_exactly_one_admin(db: TestDb) {
    db.store
        .issue_bootstrap_token(BootstrapSource::Startup, "boot-race", now_ms() + HOUR_MS)
        .await
        .unwrap();
    let barrier = std::sync::Arc::new(tokio::sync::Barrier::new(8));
    let tasks: Vec<_> = (0..8)
        .map(|i| {
            let store = db.store.clone();
            let barrier = barrier.clone();
            tokio::spawn(async move {
                barrier.wait().await;
                store
                    .redeem_bootstrap("boot-race", new_user(&format!("racer{i}"), false))
                    .await
            })
        })
        .collect();
    let mut winners = Vec::new();
    let mut losers = Vec::new();
    for task in tasks {
        match task.await.unwrap() {
            Ok(user) => winners.push(user),
            Err(e) => losers.push(err_kind::<()>(Err(e))),
        }
    }
    assert_eq!(winners.len(), 1, "exactly one redemption wins: {winners:?}");
    assert_eq!(losers, vec![Kind::NotFound; 7]);

    let admin = principal(&winners[0]);
    let users = db
        .store
        .list_users(&admin, &PageQuery::default())
        .await
        .unwrap();
    assert_eq!(users.items, winners);
}

async fn a_startup_token_does_not_replace_an_offline_one(db: TestDb) {
    db.store
        .issue_bootstrap_token(BootstrapSource::Offline, "offline", now_ms() + HOUR_MS)
        .await
        .unwrap();
    // The gateway starts (again) and prints a token of its own.
    db.store
        .issue_bootstrap_token(BootstrapSource::Startup, "startup", now_ms() + HOUR_MS)
        .await
        .unwrap();
    let admin = db
        .store
        .redeem_bootstrap("offline", new_user("root", false))
        .await
        .unwrap();
    assert!(admin.is_admin);
    // Once redeemed, the other token is gone with it.
    assert_eq!(
        err_kind(
            db.store
                .redeem_bootstrap("startup", new_user("second", false))
                .await
        ),
        Kind::NotFound
    );
}
