//! Users: administration by admins, what ordinary users may see, unique usernames, and
//! the rule that the gateway always keeps an active admin.

use mosaic_api::{PageQuery, Scope, TeamRole, User};
use mosaic_store::{now_ms, NewApiToken, NewWebSession, Principal, UserChanges};
use mosaic_test_support::engines;
use pretty_assertions::assert_eq;
use serde_json::json;

use crate::support::{err_kind, new_user, principal, Kind, TestDb};

engines!(
    admin_creates_gets_updates_and_deletes_users,
    admin_lists_users_page_by_page_with_a_cursor,
    non_admin_cannot_list_users_and_sees_nobody_else,
    a_taken_username_is_a_conflict,
    the_last_active_admin_cannot_be_demoted_disabled_or_deleted,
    deleting_a_user_deletes_what_they_own,
    login_record_finds_a_user_by_username,
    a_deleted_sole_owner_hands_the_team_to_its_longest_standing_admin,
    two_admins_disabling_each_other_at_once_leave_one_active,
    an_admin_password_reset_revokes_the_users_api_tokens,
);

async fn admin_creates_gets_updates_and_deletes_users(db: TestDb) {
    let (_, admin) = db.first_admin("root").await;
    let alice = db
        .store
        .create_user(
            &admin,
            mosaic_store::NewUser {
                display_name: "Alice Liddell".into(),
                ..new_user(" Alice ", false)
            },
        )
        .await
        .unwrap();
    assert_eq!(
        alice,
        User {
            id: alice.id.clone(),
            username: "alice".into(),
            display_name: "Alice Liddell".into(),
            is_admin: false,
            disabled: false,
            created_at: alice.created_at.clone(),
            updated_at: alice.created_at.clone(),
        }
    );
    assert_eq!(db.store.get_user(&admin, &alice.id).await.unwrap(), alice);
    // Users see themselves.
    assert_eq!(
        db.store
            .get_user(&principal(&alice), &alice.id)
            .await
            .unwrap(),
        alice
    );

    // An empty display name falls back to the username.
    let (bob, _) = db.user(&admin, "bob").await;
    assert_eq!(bob.display_name, "bob");

    let updated = db
        .store
        .update_user(
            &admin,
            &alice.id,
            UserChanges {
                display_name: Some("Alice L.".into()),
                is_admin: Some(true),
                ..UserChanges::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(
        updated,
        User {
            display_name: "Alice L.".into(),
            is_admin: true,
            updated_at: updated.updated_at.clone(),
            ..alice.clone()
        }
    );
    assert_eq!(db.store.get_user(&admin, &alice.id).await.unwrap(), updated);

    // Users change their own display name.
    let renamed = db
        .store
        .update_user(
            &principal(&bob),
            &bob.id,
            UserChanges {
                display_name: Some("Bobby".into()),
                ..UserChanges::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(renamed.display_name, "Bobby");

    db.store.delete_user(&admin, &alice.id).await.unwrap();
    assert_eq!(
        err_kind(db.store.get_user(&admin, &alice.id).await),
        Kind::NotFound
    );
    assert_eq!(
        err_kind(db.store.delete_user(&admin, &alice.id).await),
        Kind::NotFound
    );
    assert_eq!(
        err_kind(
            db.store
                .update_user(&admin, &alice.id, UserChanges::default())
                .await
        ),
        Kind::NotFound
    );
    // The deleted name is free again.
    db.user(&admin, "alice").await;
}

async fn admin_lists_users_page_by_page_with_a_cursor(db: TestDb) {
    let (root, admin) = db.first_admin("root").await;
    let mut everyone = vec![root];
    for name in ["u1", "u2", "u3", "u4", "u5", "u6"] {
        everyone.push(db.user(&admin, name).await.0);
    }
    everyone.sort_by(|a, b| a.id.cmp(&b.id));

    let mut seen = Vec::new();
    let mut cursor = None;
    let mut pages = 0;
    loop {
        let page = db
            .store
            .list_users(
                &admin,
                &PageQuery {
                    cursor: cursor.clone(),
                    limit: Some(3),
                },
            )
            .await
            .unwrap();
        pages += 1;
        assert!(page.items.len() <= 3, "a page holds at most `limit` items");
        seen.extend(page.items.clone());
        match page.next_cursor {
            Some(next) => {
                assert_eq!(Some(&next), page.items.last().map(|u| &u.id));
                cursor = Some(next);
            }
            None => break,
        }
        assert!(pages < 10, "pagination does not end");
    }
    assert_eq!(seen, everyone);
    // Seven users, three a page: the last page is the one with a single user.
    assert_eq!(pages, 3);

    // A page exactly as long as the rest of the list is the last one.
    let all = db
        .store
        .list_users(
            &admin,
            &PageQuery {
                cursor: None,
                limit: Some(7),
            },
        )
        .await
        .unwrap();
    assert_eq!(all.items, everyone);
    assert_eq!(all.next_cursor, None);
}

async fn non_admin_cannot_list_users_and_sees_nobody_else(db: TestDb) {
    let (admin, [(alice, alice_p), (bob, _)]) = db.admin_and_users(["alice", "bob"]).await;

    assert_eq!(
        err_kind(db.store.list_users(&alice_p, &PageQuery::default()).await),
        Kind::Forbidden
    );
    assert_eq!(
        err_kind(db.store.get_user(&alice_p, &bob.id).await),
        Kind::NotFound
    );
    assert_eq!(
        err_kind(
            db.store
                .get_user(&alice_p, admin.local_user().unwrap())
                .await
        ),
        Kind::NotFound
    );
    assert_eq!(
        err_kind(
            db.store
                .update_user(
                    &alice_p,
                    &bob.id,
                    UserChanges {
                        display_name: Some("mallory".into()),
                        ..UserChanges::default()
                    },
                )
                .await
        ),
        Kind::NotFound
    );
    // Someone else's id is not there; one's own is, but not to delete.
    assert_eq!(
        err_kind(db.store.delete_user(&alice_p, &bob.id).await),
        Kind::NotFound
    );
    assert_eq!(
        err_kind(db.store.delete_user(&alice_p, &alice.id).await),
        Kind::Forbidden
    );
    assert_eq!(
        err_kind(
            db.store
                .create_user(&alice_p, new_user("carol", false))
                .await
        ),
        Kind::Forbidden
    );
    // Nor may users make themselves admins or switch themselves off.
    for changes in [
        UserChanges {
            is_admin: Some(true),
            ..UserChanges::default()
        },
        UserChanges {
            disabled: Some(true),
            ..UserChanges::default()
        },
    ] {
        assert_eq!(
            err_kind(db.store.update_user(&alice_p, &alice.id, changes).await),
            Kind::Forbidden
        );
    }
    // Nothing changed.
    assert_eq!(db.store.get_user(&admin, &bob.id).await.unwrap(), bob);
    assert_eq!(db.store.get_user(&alice_p, &alice.id).await.unwrap(), alice);
}

async fn a_taken_username_is_a_conflict(db: TestDb) {
    let (_, admin) = db.first_admin("root").await;
    db.user(&admin, "alice").await;
    for taken in ["alice", "ALICE", " alice "] {
        assert_eq!(
            err_kind(db.store.create_user(&admin, new_user(taken, false)).await),
            Kind::Conflict,
            "{taken:?}"
        );
    }
    assert_eq!(
        err_kind(db.store.create_user(&admin, new_user("root", true)).await),
        Kind::Conflict
    );
    assert_eq!(
        err_kind(
            db.store
                .create_user(&admin, new_user("no spaces", false))
                .await
        ),
        Kind::Invalid
    );
    assert_eq!(
        db.store
            .list_users(&admin, &PageQuery::default())
            .await
            .unwrap()
            .items
            .len(),
        2
    );
}

async fn the_last_active_admin_cannot_be_demoted_disabled_or_deleted(db: TestDb) {
    let (root, admin) = db.first_admin("root").await;
    let demote = || UserChanges {
        is_admin: Some(false),
        ..UserChanges::default()
    };
    let disable = || UserChanges {
        disabled: Some(true),
        ..UserChanges::default()
    };

    assert_eq!(
        err_kind(db.store.update_user(&admin, &root.id, demote()).await),
        Kind::Conflict
    );
    assert_eq!(
        err_kind(db.store.update_user(&admin, &root.id, disable()).await),
        Kind::Conflict
    );
    assert_eq!(
        err_kind(db.store.delete_user(&admin, &root.id).await),
        Kind::Forbidden
    );

    // A disabled admin is no admin: it does not make the last active one expendable.
    let second = db
        .store
        .create_user(&admin, new_user("second", true))
        .await
        .unwrap();
    db.store
        .update_user(&admin, &second.id, disable())
        .await
        .unwrap();
    assert_eq!(
        err_kind(db.store.update_user(&admin, &root.id, demote()).await),
        Kind::Conflict
    );

    // With two active admins, one may step down; then the other is the last.
    db.store
        .update_user(
            &admin,
            &second.id,
            UserChanges {
                disabled: Some(false),
                ..UserChanges::default()
            },
        )
        .await
        .unwrap();
    let stepped_down = db
        .store
        .update_user(&admin, &root.id, demote())
        .await
        .unwrap();
    assert!(!stepped_down.is_admin);
    let second_p = principal(&second);
    assert_eq!(
        err_kind(db.store.update_user(&second_p, &second.id, demote()).await),
        Kind::Conflict
    );
    assert_eq!(
        err_kind(db.store.update_user(&second_p, &second.id, disable()).await),
        Kind::Conflict
    );
    // Even a principal that still claims admin rights (root's, from before it stepped
    // down) cannot delete the last active admin.
    let stale: Principal = admin;
    assert_eq!(
        err_kind(db.store.delete_user(&stale, &second.id).await),
        Kind::Conflict
    );
    let still = db.store.get_user(&second_p, &second.id).await.unwrap();
    assert_eq!(
        still,
        User {
            updated_at: still.updated_at.clone(),
            ..second
        }
    );
}

async fn deleting_a_user_deletes_what_they_own(db: TestDb) {
    let (admin, [(alice_user, alice), (bob_user, bob)]) =
        db.admin_and_users(["alice", "bob"]).await;
    let ws = db
        .store
        .create_workspace(&alice, "mine", "", None)
        .await
        .unwrap();
    db.store
        .create_api_token(
            &alice,
            NewApiToken {
                name: "cli".into(),
                token_hash: "hash-alice".into(),
                prefix: "msk_".into(),
                scopes: vec![Scope::Read],
                expires_at: None,
            },
        )
        .await
        .unwrap();
    db.store
        .create_web_session(
            &alice,
            NewWebSession {
                token_hash: "session-alice".into(),
                csrf_token: "csrf".into(),
                expires_at: now_ms() + 3_600_000,
            },
        )
        .await
        .unwrap();
    db.store
        .set_preference(&alice, "theme", &json!("dark"))
        .await
        .unwrap();
    let team = db.store.create_team(&bob, "crew").await.unwrap();
    db.store
        .put_team_member(&bob, &team.id, "alice", TeamRole::Member)
        .await
        .unwrap();

    db.store.delete_user(&admin, &alice_user.id).await.unwrap();

    assert!(db
        .store
        .authenticate_token("hash-alice")
        .await
        .unwrap()
        .is_none());
    assert!(db
        .store
        .authenticate_web_session("session-alice")
        .await
        .unwrap()
        .is_none());
    let members = db.store.list_team_members(&bob, &team.id).await.unwrap();
    assert_eq!(
        members
            .iter()
            .map(|m| m.user_id.as_str())
            .collect::<Vec<_>>(),
        vec![bob_user.id.as_str()]
    );
    // A new user of the same name starts with nothing of the old one's.
    let (_, new_alice) = db.user(&admin, "alice").await;
    assert_eq!(
        err_kind(db.store.get_workspace(&new_alice, &ws.id).await),
        Kind::NotFound
    );
    assert_eq!(
        db.store
            .list_workspaces(&new_alice, &PageQuery::default())
            .await
            .unwrap()
            .items,
        vec![]
    );
    assert_eq!(db.store.list_preferences(&new_alice).await.unwrap(), vec![]);
    assert_eq!(
        db.store
            .list_teams(&new_alice, &PageQuery::default())
            .await
            .unwrap()
            .items,
        vec![]
    );
    // The stale principal of the deleted user finds nothing either.
    assert_eq!(
        err_kind(db.store.get_user(&alice, &alice_user.id).await),
        Kind::NotFound
    );
}

async fn login_record_finds_a_user_by_username(db: TestDb) {
    let (_, [(alice, _)]) = db.admin_and_users(["alice"]).await;
    let record = db
        .store
        .login_record(" Alice ")
        .await
        .unwrap()
        .expect("alice can log in");
    assert_eq!(record.user, alice);
    assert_eq!(record.password_hash, "hash-of-alice");
    assert!(db.store.login_record("nobody").await.unwrap().is_none());
    assert!(db.store.login_record("not a name").await.unwrap().is_none());
}

async fn a_deleted_sole_owner_hands_the_team_to_its_longest_standing_admin(db: TestDb) {
    let (admin, [(_, alice), (_, bob), (_, carol)]) =
        db.admin_and_users(["alice", "bob", "carol"]).await;
    let shared = db.store.create_team(&alice, "shared").await.unwrap();
    db.store
        .put_team_member(&alice, &shared.id, "bob", TeamRole::Member)
        .await
        .unwrap();
    db.store
        .put_team_member(&alice, &shared.id, "carol", TeamRole::Admin)
        .await
        .unwrap();
    let ws = db
        .store
        .create_workspace(&alice, "team ws", "", Some(&shared.id))
        .await
        .unwrap();

    db.store
        .delete_user(&admin, alice.local_user().unwrap())
        .await
        .unwrap();

    // Carol (admin of the team) now owns it; Bob stays a member; the work survives.
    assert_eq!(
        db.store.get_team(&carol, &shared.id).await.unwrap().role,
        TeamRole::Owner
    );
    let members = db.store.list_team_members(&bob, &shared.id).await.unwrap();
    let roles: Vec<(String, TeamRole)> = members
        .iter()
        .map(|m| (m.username.clone(), m.role))
        .collect();
    assert_eq!(
        roles,
        vec![
            ("bob".to_string(), TeamRole::Member),
            ("carol".to_string(), TeamRole::Owner)
        ]
    );
    assert_eq!(
        db.store.get_workspace(&bob, &ws.id).await.unwrap().id,
        ws.id
    );
}

async fn two_admins_disabling_each_other_at_once_leave_one_active(db: TestDb) {
    let (root_user, root) = db.first_admin("root").await;
    let (other_user, _) = db.user(&root, "other").await;
    let promote = UserChanges {
        is_admin: Some(true),
        ..UserChanges::default()
    };
    db.store
        .update_user(&root, &other_user.id, promote)
        .await
        .unwrap();
    let other = Principal::user(&other_user.id, true);
    let disable = || UserChanges {
        disabled: Some(true),
        ..UserChanges::default()
    };
    let (a, b) = tokio::join!(
        db.store.update_user(&root, &other_user.id, disable()),
        db.store.update_user(&other, &root_user.id, disable()),
    );
    assert_eq!(
        [a.is_ok(), b.is_ok()].iter().filter(|ok| **ok).count(),
        1,
        "{a:?} / {b:?}"
    );
    assert!(!db.store.needs_bootstrap().await.unwrap());
}

async fn an_admin_password_reset_revokes_the_users_api_tokens(db: TestDb) {
    let (admin, [(_, alice)]) = db.admin_and_users(["alice"]).await;
    let token = |hash: &str| NewApiToken {
        name: "cli".into(),
        token_hash: hash.into(),
        prefix: "mos_".into(),
        scopes: vec![Scope::Read],
        expires_at: None,
    };
    db.store
        .create_api_token(&alice, token("alice-1"))
        .await
        .unwrap();
    // Her own password change keeps her tokens.
    db.store
        .update_user(
            &alice,
            alice.local_user().unwrap(),
            UserChanges {
                password_hash: Some("new-1".into()),
                ..UserChanges::default()
            },
        )
        .await
        .unwrap();
    assert!(db
        .store
        .authenticate_token("alice-1")
        .await
        .unwrap()
        .is_some());
    // An admin's reset does not.
    db.store
        .update_user(
            &admin,
            alice.local_user().unwrap(),
            UserChanges {
                password_hash: Some("new-2".into()),
                ..UserChanges::default()
            },
        )
        .await
        .unwrap();
    assert!(db
        .store
        .authenticate_token("alice-1")
        .await
        .unwrap()
        .is_none());
}
