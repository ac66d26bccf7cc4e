//! Credentials: API tokens (owner's operations and the gateway's look-up) and web
//! sessions, including what ends them.

use mosaic_api::{ApiToken, PageQuery, Scope};
use mosaic_store::{now_ms, NewApiToken, NewWebSession, UserChanges};
use mosaic_test_support::engines;
use pretty_assertions::assert_eq;

use crate::support::{err_kind, Kind, TestDb};

engines!(
    owners_create_list_get_and_revoke_api_tokens,
    another_users_api_token_is_not_found,
    authenticate_token_resolves_the_user_and_scopes,
    expired_revoked_and_disabled_users_tokens_do_not_authenticate,
    web_sessions_are_created_authenticated_and_deleted,
    a_new_password_or_disabling_ends_web_sessions,
    purging_forgets_expired_web_sessions_only,
    a_credential_answers_with_the_user_as_they_are_now,
);

const HOUR_MS: i64 = 3_600_000;

fn token(name: &str, hash: &str, scopes: &[Scope], expires_at: Option<i64>) -> NewApiToken {
    NewApiToken {
        name: name.to_string(),
        token_hash: hash.to_string(),
        prefix: format!("msk_{}", &hash[..hash.len().min(4)]),
        scopes: scopes.to_vec(),
        expires_at,
    }
}

fn session(hash: &str, csrf: &str, expires_at: i64) -> NewWebSession {
    NewWebSession {
        token_hash: hash.to_string(),
        csrf_token: csrf.to_string(),
        expires_at,
    }
}

async fn owners_create_list_get_and_revoke_api_tokens(db: TestDb) {
    let (_, [(_, alice)]) = db.admin_and_users(["alice"]).await;
    let expires = now_ms() + HOUR_MS;
    let laptop = db
        .store
        .create_api_token(
            &alice,
            token(
                " laptop ",
                "hash-laptop",
                &[Scope::Write, Scope::Read, Scope::Write],
                Some(expires),
            ),
        )
        .await
        .unwrap();
    assert_eq!(
        laptop,
        ApiToken {
            id: laptop.id.clone(),
            name: "laptop".into(),
            prefix: "msk_hash".into(),
            scopes: vec![Scope::Read, Scope::Write],
            created_at: laptop.created_at.clone(),
            expires_at: Some(mosaic_store::format_time(expires)),
            last_used_at: None,
        }
    );
    assert_eq!(
        db.store.get_api_token(&alice, &laptop.id).await.unwrap(),
        laptop
    );

    let ci = db
        .store
        .create_api_token(&alice, token("ci", "hash-ci", &[Scope::Read], None))
        .await
        .unwrap();
    let phone = db
        .store
        .create_api_token(&alice, token("phone", "hash-phone", &[Scope::Read], None))
        .await
        .unwrap();
    let mut all = [laptop.clone(), ci.clone(), phone.clone()];
    all.sort_by(|a, b| a.id.cmp(&b.id));

    let first = db
        .store
        .list_api_tokens(
            &alice,
            &PageQuery {
                cursor: None,
                limit: Some(2),
            },
        )
        .await
        .unwrap();
    assert_eq!(first.items, all[..2]);
    assert_eq!(first.next_cursor.as_ref(), Some(&all[1].id));
    let second = db
        .store
        .list_api_tokens(
            &alice,
            &PageQuery {
                cursor: first.next_cursor,
                limit: Some(2),
            },
        )
        .await
        .unwrap();
    assert_eq!(second.items, all[2..]);
    assert_eq!(second.next_cursor, None);

    db.store.revoke_api_token(&alice, &ci.id).await.unwrap();
    assert_eq!(
        err_kind(db.store.get_api_token(&alice, &ci.id).await),
        Kind::NotFound
    );
    assert_eq!(
        err_kind(db.store.revoke_api_token(&alice, &ci.id).await),
        Kind::NotFound
    );
    let mut left = vec![laptop, phone];
    left.sort_by(|a, b| a.id.cmp(&b.id));
    assert_eq!(
        db.store
            .list_api_tokens(&alice, &PageQuery::default())
            .await
            .unwrap()
            .items,
        left
    );

    // A token needs a name and a scope.
    assert_eq!(
        err_kind(
            db.store
                .create_api_token(&alice, token("  ", "hash-x", &[Scope::Read], None))
                .await
        ),
        Kind::Invalid
    );
    assert_eq!(
        err_kind(
            db.store
                .create_api_token(&alice, token("none", "hash-y", &[], None))
                .await
        ),
        Kind::Invalid
    );
}

async fn another_users_api_token_is_not_found(db: TestDb) {
    let (_, [(_, alice), (_, bob)]) = db.admin_and_users(["alice", "bob"]).await;
    let bobs = db
        .store
        .create_api_token(&bob, token("bob's", "hash-bob", &[Scope::Read], None))
        .await
        .unwrap();

    assert_eq!(
        err_kind(db.store.get_api_token(&alice, &bobs.id).await),
        Kind::NotFound
    );
    assert_eq!(
        err_kind(db.store.revoke_api_token(&alice, &bobs.id).await),
        Kind::NotFound
    );
    assert_eq!(
        db.store
            .list_api_tokens(&alice, &PageQuery::default())
            .await
            .unwrap()
            .items,
        vec![]
    );
    // Bob's token is untouched and still works.
    assert_eq!(db.store.get_api_token(&bob, &bobs.id).await.unwrap(), bobs);
    assert!(db
        .store
        .authenticate_token("hash-bob")
        .await
        .unwrap()
        .is_some());
}

async fn authenticate_token_resolves_the_user_and_scopes(db: TestDb) {
    let (admin, [(alice_user, alice)]) = db.admin_and_users(["alice"]).await;
    let created = db
        .store
        .create_api_token(
            &alice,
            token("cli", "hash-cli", &[Scope::Admin, Scope::Read], None),
        )
        .await
        .unwrap();

    let auth = db
        .store
        .authenticate_token("hash-cli")
        .await
        .unwrap()
        .expect("a live token authenticates");
    assert_eq!(auth.token_id, created.id);
    assert_eq!(auth.user, alice_user);
    assert_eq!(auth.scopes, vec![Scope::Read, Scope::Admin]);
    // Use is recorded.
    let used = db.store.get_api_token(&alice, &created.id).await.unwrap();
    assert!(used.last_used_at.is_some());
    assert_eq!(
        used,
        ApiToken {
            last_used_at: used.last_used_at.clone(),
            ..created
        }
    );

    assert!(db
        .store
        .authenticate_token("hash-unknown")
        .await
        .unwrap()
        .is_none());
    // The user seen through the token is the user as they are now.
    let renamed = db
        .store
        .update_user(
            &admin,
            &alice_user.id,
            UserChanges {
                display_name: Some("Alice".into()),
                ..UserChanges::default()
            },
        )
        .await
        .unwrap();
    let auth = db
        .store
        .authenticate_token("hash-cli")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(auth.user, renamed);
}

async fn expired_revoked_and_disabled_users_tokens_do_not_authenticate(db: TestDb) {
    let (admin, [(alice_user, alice)]) = db.admin_and_users(["alice"]).await;
    db.store
        .create_api_token(
            &alice,
            token("old", "hash-old", &[Scope::Read], Some(now_ms() - 1)),
        )
        .await
        .unwrap();
    assert!(db
        .store
        .authenticate_token("hash-old")
        .await
        .unwrap()
        .is_none());

    let revoked = db
        .store
        .create_api_token(&alice, token("gone", "hash-gone", &[Scope::Read], None))
        .await
        .unwrap();
    assert!(db
        .store
        .authenticate_token("hash-gone")
        .await
        .unwrap()
        .is_some());
    db.store
        .revoke_api_token(&alice, &revoked.id)
        .await
        .unwrap();
    assert!(db
        .store
        .authenticate_token("hash-gone")
        .await
        .unwrap()
        .is_none());

    db.store
        .create_api_token(
            &alice,
            token(
                "live",
                "hash-live",
                &[Scope::Read],
                Some(now_ms() + HOUR_MS),
            ),
        )
        .await
        .unwrap();
    let set_disabled = |disabled| UserChanges {
        disabled: Some(disabled),
        ..UserChanges::default()
    };
    db.store
        .update_user(&admin, &alice_user.id, set_disabled(true))
        .await
        .unwrap();
    assert!(db
        .store
        .authenticate_token("hash-live")
        .await
        .unwrap()
        .is_none());
    db.store
        .update_user(&admin, &alice_user.id, set_disabled(false))
        .await
        .unwrap();
    assert!(db
        .store
        .authenticate_token("hash-live")
        .await
        .unwrap()
        .is_some());
}

async fn web_sessions_are_created_authenticated_and_deleted(db: TestDb) {
    let (_, [(alice_user, alice), (_, bob)]) = db.admin_and_users(["alice", "bob"]).await;
    let id = db
        .store
        .create_web_session(&alice, session("ws-alice", "csrf-1", now_ms() + HOUR_MS))
        .await
        .unwrap();
    let auth = db
        .store
        .authenticate_web_session("ws-alice")
        .await
        .unwrap()
        .expect("a live session authenticates");
    assert_eq!(auth.session_id, id);
    assert_eq!(auth.user, alice_user);
    assert_eq!(auth.csrf_token, "csrf-1");

    assert!(db
        .store
        .authenticate_web_session("ws-unknown")
        .await
        .unwrap()
        .is_none());
    db.store
        .create_web_session(&alice, session("ws-expired", "csrf-2", now_ms() - 1))
        .await
        .unwrap();
    assert!(db
        .store
        .authenticate_web_session("ws-expired")
        .await
        .unwrap()
        .is_none());

    // Someone else cannot log Alice out.
    db.store.delete_web_session(&bob, &id).await.unwrap();
    assert!(db
        .store
        .authenticate_web_session("ws-alice")
        .await
        .unwrap()
        .is_some());

    db.store.delete_web_session(&alice, &id).await.unwrap();
    assert!(db
        .store
        .authenticate_web_session("ws-alice")
        .await
        .unwrap()
        .is_none());
}

async fn a_new_password_or_disabling_ends_web_sessions(db: TestDb) {
    let (admin, [(alice_user, alice), (bob_user, bob)]) =
        db.admin_and_users(["alice", "bob"]).await;
    let live = || now_ms() + HOUR_MS;
    let is_live = |hash: &'static str| {
        let store = db.store.clone();
        async move {
            store
                .authenticate_web_session(hash)
                .await
                .unwrap()
                .is_some()
        }
    };

    // Alice changes her own password: her sessions end, Bob's do not.
    db.store
        .create_web_session(&alice, session("ws-alice-1", "c", live()))
        .await
        .unwrap();
    db.store
        .create_web_session(&bob, session("ws-bob-1", "c", live()))
        .await
        .unwrap();
    db.store
        .update_user(
            &alice,
            &alice_user.id,
            UserChanges {
                password_hash: Some("new-hash-of-alice".into()),
                ..UserChanges::default()
            },
        )
        .await
        .unwrap();
    assert!(!is_live("ws-alice-1").await);
    assert!(is_live("ws-bob-1").await);
    assert_eq!(
        db.store.own_password_hash(&alice).await.unwrap(),
        "new-hash-of-alice"
    );

    // An admin sets a new password for Bob: Bob's sessions end.
    db.store
        .update_user(
            &admin,
            &bob_user.id,
            UserChanges {
                password_hash: Some("reset-hash-of-bob".into()),
                ..UserChanges::default()
            },
        )
        .await
        .unwrap();
    assert!(
        !is_live("ws-bob-1").await,
        "an admin's password reset ends sessions"
    );
    assert_eq!(
        db.store.own_password_hash(&bob).await.unwrap(),
        "reset-hash-of-bob"
    );

    // Disabling ends them for good: re-enabling does not bring them back.
    db.store
        .create_web_session(&bob, session("ws-bob-2", "c", live()))
        .await
        .unwrap();
    for disabled in [true, false] {
        db.store
            .update_user(
                &admin,
                &bob_user.id,
                UserChanges {
                    disabled: Some(disabled),
                    ..UserChanges::default()
                },
            )
            .await
            .unwrap();
    }
    assert!(!is_live("ws-bob-2").await, "disabling a user ends sessions");
}

async fn purging_forgets_expired_web_sessions_only(db: TestDb) {
    let (_, [(_, alice), (_, bob)]) = db.admin_and_users(["alice", "bob"]).await;
    for (p, name) in [(&alice, "alice"), (&bob, "bob")] {
        db.store
            .create_web_session(p, session(&format!("old-{name}"), "c", now_ms() - 1))
            .await
            .unwrap();
        db.store
            .create_web_session(p, session(&format!("live-{name}"), "c", now_ms() + HOUR_MS))
            .await
            .unwrap();
    }
    // Expired API tokens stay, listed, until their owner revokes them.
    let expired = db
        .store
        .create_api_token(
            &alice,
            token("old", "hash-old", &[Scope::Read], Some(now_ms() - 1)),
        )
        .await
        .unwrap();

    assert_eq!(db.store.purge_expired().await.unwrap(), 2);
    assert_eq!(db.store.purge_expired().await.unwrap(), 0);
    for name in ["live-alice", "live-bob"] {
        assert!(db
            .store
            .authenticate_web_session(name)
            .await
            .unwrap()
            .is_some());
    }
    assert_eq!(
        db.store.get_api_token(&alice, &expired.id).await.unwrap(),
        expired
    );
}

/// What a token or a session cookie authenticates as is kept in memory between
/// changes: a promotion, a demotion or a disabled account is seen by the very next
/// request, and an expiring token stops at its expiry.
async fn a_credential_answers_with_the_user_as_they_are_now(db: TestDb) {
    let (admin, [(alice_user, alice)]) = db.admin_and_users(["alice"]).await;
    db.store
        .create_api_token(&alice, token("cli", "hash-now", &[Scope::Admin], None))
        .await
        .unwrap();
    db.store
        .create_web_session(&alice, session("cookie-now", "csrf", now_ms() + HOUR_MS))
        .await
        .unwrap();
    let admin_flags = |db: &TestDb| {
        let store = db.store.clone();
        async move {
            let token = store.authenticate_token("hash-now").await.unwrap();
            let cookie = store.authenticate_web_session("cookie-now").await.unwrap();
            (
                token.map(|t| t.user.is_admin),
                cookie.map(|c| c.user.is_admin),
            )
        }
    };
    for _ in 0..2 {
        assert_eq!(admin_flags(&db).await, (Some(false), Some(false)));
    }
    let promote = |is_admin: bool| UserChanges {
        display_name: None,
        disabled: None,
        is_admin: Some(is_admin),
        password_hash: None,
    };
    db.store
        .update_user(&admin, &alice_user.id, promote(true))
        .await
        .unwrap();
    assert_eq!(admin_flags(&db).await, (Some(true), Some(true)));
    db.store
        .update_user(&admin, &alice_user.id, promote(false))
        .await
        .unwrap();
    // A token that expires is refused from its expiry on, read from memory or not.
    let expires = now_ms() + 300;
    db.store
        .create_api_token(
            &alice,
            token("short", "hash-short", &[Scope::Read], Some(expires)),
        )
        .await
        .unwrap();
    assert!(db
        .store
        .authenticate_token("hash-short")
        .await
        .unwrap()
        .is_some());
    tokio::time::sleep(std::time::Duration::from_millis(
        (expires - now_ms()).max(0) as u64 + 20,
    ))
    .await;
    assert!(db
        .store
        .authenticate_token("hash-short")
        .await
        .unwrap()
        .is_none());

    assert_eq!(admin_flags(&db).await, (Some(false), Some(false)));
    db.store
        .update_user(
            &admin,
            &alice_user.id,
            UserChanges {
                disabled: Some(true),
                ..promote(false)
            },
        )
        .await
        .unwrap();
    assert_eq!(admin_flags(&db).await, (None, None));
}
