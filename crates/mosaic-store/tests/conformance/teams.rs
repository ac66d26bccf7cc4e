//! Teams: visible to members only, managed by owners and admins of the team, and never
//! without an owner.

use mosaic_api::{PageQuery, Team, TeamMember, TeamRole};
use mosaic_test_support::engines;
use pretty_assertions::assert_eq;

use crate::support::{err_kind, Kind, TestDb};

engines!(
    creating_a_team_makes_the_caller_its_owner,
    users_list_only_the_teams_they_belong_to,
    another_users_team_is_not_found,
    owners_add_members_change_their_roles_and_remove_them,
    plain_members_cannot_manage_the_team,
    a_team_keeps_its_last_owner,
    outsiders_learn_nothing_about_usernames_through_a_team,
);

async fn creating_a_team_makes_the_caller_its_owner(db: TestDb) {
    let (_, [(alice_user, alice)]) = db.admin_and_users(["alice"]).await;
    let team = db.store.create_team(&alice, "  Core  ").await.unwrap();
    assert_eq!(
        team,
        Team {
            id: team.id.clone(),
            name: "Core".into(),
            role: TeamRole::Owner,
            created_at: team.created_at.clone(),
        }
    );
    assert_eq!(db.store.get_team(&alice, &team.id).await.unwrap(), team);
    assert_eq!(
        db.store.list_team_members(&alice, &team.id).await.unwrap(),
        vec![TeamMember {
            user_id: alice_user.id.clone(),
            username: "alice".into(),
            role: TeamRole::Owner,
            added_at: team.created_at.clone(),
        }]
    );

    let renamed = db
        .store
        .rename_team(&alice, &team.id, "Core team")
        .await
        .unwrap();
    assert_eq!(
        renamed,
        Team {
            name: "Core team".into(),
            ..team.clone()
        }
    );
    assert_eq!(
        err_kind(db.store.create_team(&alice, "   ").await),
        Kind::Invalid
    );
    assert_eq!(
        err_kind(db.store.rename_team(&alice, &team.id, "").await),
        Kind::Invalid
    );

    db.store.delete_team(&alice, &team.id).await.unwrap();
    assert_eq!(
        err_kind(db.store.get_team(&alice, &team.id).await),
        Kind::NotFound
    );
    assert_eq!(
        db.store
            .list_teams(&alice, &PageQuery::default())
            .await
            .unwrap()
            .items,
        vec![]
    );
}

async fn users_list_only_the_teams_they_belong_to(db: TestDb) {
    let (_, [(_, alice), (_, bob)]) = db.admin_and_users(["alice", "bob"]).await;
    let mut alices = Vec::new();
    for name in ["a1", "a2", "a3"] {
        alices.push(db.store.create_team(&alice, name).await.unwrap());
    }
    alices.sort_by(|a, b| a.id.cmp(&b.id));
    let bobs = db.store.create_team(&bob, "b1").await.unwrap();

    let first = db
        .store
        .list_teams(
            &alice,
            &PageQuery {
                cursor: None,
                limit: Some(2),
            },
        )
        .await
        .unwrap();
    assert_eq!(first.items, alices[..2]);
    let rest = db
        .store
        .list_teams(
            &alice,
            &PageQuery {
                cursor: first.next_cursor.clone(),
                limit: Some(2),
            },
        )
        .await
        .unwrap();
    assert_eq!(rest.items, alices[2..]);
    assert_eq!(rest.next_cursor, None);

    assert_eq!(
        db.store
            .list_teams(&bob, &PageQuery::default())
            .await
            .unwrap()
            .items,
        vec![bobs]
    );
}

async fn another_users_team_is_not_found(db: TestDb) {
    let (_, [(_, alice), (bob_user, bob)]) = db.admin_and_users(["alice", "bob"]).await;
    let team = db.store.create_team(&alice, "private").await.unwrap();

    assert_eq!(
        err_kind(db.store.get_team(&bob, &team.id).await),
        Kind::NotFound
    );
    assert_eq!(
        err_kind(db.store.list_team_members(&bob, &team.id).await),
        Kind::NotFound
    );
    assert_eq!(
        err_kind(db.store.rename_team(&bob, &team.id, "mine now").await),
        Kind::NotFound
    );
    assert_eq!(
        err_kind(db.store.delete_team(&bob, &team.id).await),
        Kind::NotFound
    );
    assert_eq!(
        err_kind(
            db.store
                .put_team_member(&bob, &team.id, "bob", TeamRole::Owner)
                .await
        ),
        Kind::NotFound
    );
    assert_eq!(
        err_kind(
            db.store
                .remove_team_member(&bob, &team.id, alice.local_user().unwrap())
                .await
        ),
        Kind::NotFound
    );
    // Nothing changed for Alice.
    assert_eq!(db.store.get_team(&alice, &team.id).await.unwrap(), team);
    let members = db.store.list_team_members(&alice, &team.id).await.unwrap();
    assert_eq!(members.len(), 1);
    assert!(members.iter().all(|m| m.user_id != bob_user.id));
}

async fn owners_add_members_change_their_roles_and_remove_them(db: TestDb) {
    let (_, [(alice_user, alice), (bob_user, bob), (carol_user, carol)]) =
        db.admin_and_users(["alice", "bob", "carol"]).await;
    let team = db.store.create_team(&alice, "crew").await.unwrap();

    let added = db
        .store
        .put_team_member(&alice, &team.id, " Bob ", TeamRole::Member)
        .await
        .unwrap();
    assert_eq!(
        added,
        TeamMember {
            user_id: bob_user.id.clone(),
            username: "bob".into(),
            role: TeamRole::Member,
            added_at: added.added_at.clone(),
        }
    );
    assert_eq!(
        db.store.get_team(&bob, &team.id).await.unwrap(),
        Team {
            role: TeamRole::Member,
            ..team.clone()
        }
    );

    // Changing a role keeps the member's place.
    let promoted = db
        .store
        .put_team_member(&alice, &team.id, "bob", TeamRole::Admin)
        .await
        .unwrap();
    assert_eq!(
        promoted,
        TeamMember {
            role: TeamRole::Admin,
            ..added.clone()
        }
    );

    // A team admin manages members too.
    let carol_member = db
        .store
        .put_team_member(&bob, &team.id, "carol", TeamRole::Member)
        .await
        .unwrap();
    assert_eq!(
        db.store.list_team_members(&carol, &team.id).await.unwrap(),
        in_listing_order(vec![
            TeamMember {
                user_id: alice_user.id.clone(),
                username: "alice".into(),
                role: TeamRole::Owner,
                added_at: team.created_at.clone(),
            },
            promoted.clone(),
            carol_member,
        ])
    );

    assert_eq!(
        err_kind(
            db.store
                .put_team_member(&alice, &team.id, "nobody", TeamRole::Member)
                .await
        ),
        Kind::Conflict
    );

    db.store
        .remove_team_member(&bob, &team.id, &carol_user.id)
        .await
        .unwrap();
    assert_eq!(
        err_kind(db.store.get_team(&carol, &team.id).await),
        Kind::NotFound
    );
    assert_eq!(
        err_kind(
            db.store
                .remove_team_member(&alice, &team.id, &carol_user.id)
                .await
        ),
        Kind::NotFound
    );
    assert_eq!(
        db.store.list_team_members(&alice, &team.id).await.unwrap(),
        in_listing_order(vec![
            TeamMember {
                user_id: alice_user.id.clone(),
                username: "alice".into(),
                role: TeamRole::Owner,
                added_at: team.created_at.clone(),
            },
            promoted,
        ])
    );
}

async fn plain_members_cannot_manage_the_team(db: TestDb) {
    let (_, [(_, alice), (bob_user, bob), (carol_user, _)]) =
        db.admin_and_users(["alice", "bob", "carol"]).await;
    let team = db.store.create_team(&alice, "crew").await.unwrap();
    for name in ["bob", "carol"] {
        db.store
            .put_team_member(&alice, &team.id, name, TeamRole::Member)
            .await
            .unwrap();
    }

    assert_eq!(
        err_kind(db.store.rename_team(&bob, &team.id, "bob's").await),
        Kind::Forbidden
    );
    assert_eq!(
        err_kind(db.store.delete_team(&bob, &team.id).await),
        Kind::Forbidden
    );
    assert_eq!(
        err_kind(
            db.store
                .put_team_member(&bob, &team.id, "carol", TeamRole::Admin)
                .await
        ),
        Kind::Forbidden
    );
    assert_eq!(
        err_kind(
            db.store
                .remove_team_member(&bob, &team.id, &carol_user.id)
                .await
        ),
        Kind::Forbidden
    );
    assert_eq!(
        err_kind(
            db.store
                .remove_team_member(&bob, &team.id, alice.local_user().unwrap())
                .await
        ),
        Kind::Forbidden
    );

    // A team admin manages members but neither deletes the team nor hands out ownership.
    db.store
        .put_team_member(&alice, &team.id, "bob", TeamRole::Admin)
        .await
        .unwrap();
    assert_eq!(
        err_kind(db.store.delete_team(&bob, &team.id).await),
        Kind::Forbidden
    );
    assert_eq!(
        err_kind(
            db.store
                .put_team_member(&bob, &team.id, "carol", TeamRole::Owner)
                .await
        ),
        Kind::Forbidden
    );
    assert_eq!(
        err_kind(
            db.store
                .put_team_member(&bob, &team.id, "alice", TeamRole::Member)
                .await
        ),
        Kind::Forbidden
    );
    assert_eq!(
        err_kind(
            db.store
                .remove_team_member(&bob, &team.id, alice.local_user().unwrap())
                .await
        ),
        Kind::Forbidden
    );
    let renamed = db
        .store
        .rename_team(&bob, &team.id, "crew 2")
        .await
        .unwrap();
    assert_eq!(renamed.role, TeamRole::Admin);

    // Anyone may leave.
    db.store
        .put_team_member(&alice, &team.id, "bob", TeamRole::Member)
        .await
        .unwrap();
    db.store
        .remove_team_member(&bob, &team.id, &bob_user.id)
        .await
        .unwrap();
    assert_eq!(
        err_kind(db.store.get_team(&bob, &team.id).await),
        Kind::NotFound
    );
}

async fn a_team_keeps_its_last_owner(db: TestDb) {
    let (_, [(alice_user, alice), (bob_user, bob)]) = db.admin_and_users(["alice", "bob"]).await;
    let team = db.store.create_team(&alice, "crew").await.unwrap();

    assert_eq!(
        err_kind(
            db.store
                .put_team_member(&alice, &team.id, "alice", TeamRole::Admin)
                .await
        ),
        Kind::Conflict
    );
    assert_eq!(
        err_kind(
            db.store
                .remove_team_member(&alice, &team.id, &alice_user.id)
                .await
        ),
        Kind::Conflict
    );

    // With a second owner, the first may step down or leave; then the second is the last.
    db.store
        .put_team_member(&alice, &team.id, "bob", TeamRole::Owner)
        .await
        .unwrap();
    let stepped_down = db
        .store
        .put_team_member(&alice, &team.id, "alice", TeamRole::Member)
        .await
        .unwrap();
    assert_eq!(stepped_down.role, TeamRole::Member);
    db.store
        .remove_team_member(&alice, &team.id, &alice_user.id)
        .await
        .unwrap();
    assert_eq!(
        err_kind(
            db.store
                .put_team_member(&bob, &team.id, "bob", TeamRole::Member)
                .await
        ),
        Kind::Conflict
    );
    assert_eq!(
        err_kind(
            db.store
                .remove_team_member(&bob, &team.id, &bob_user.id)
                .await
        ),
        Kind::Conflict
    );
    let members = db.store.list_team_members(&bob, &team.id).await.unwrap();
    assert_eq!(
        members
            .iter()
            .map(|m| (m.username.as_str(), m.role))
            .collect::<Vec<_>>(),
        vec![("bob", TeamRole::Owner)]
    );

    // The owner deletes the team; it is gone for everyone.
    db.store.delete_team(&bob, &team.id).await.unwrap();
    assert_eq!(
        err_kind(db.store.get_team(&bob, &team.id).await),
        Kind::NotFound
    );
}

/// Members in the order they are listed: by when they joined, then by username.
fn in_listing_order(mut members: Vec<TeamMember>) -> Vec<TeamMember> {
    members.sort_by(|a, b| {
        a.added_at
            .cmp(&b.added_at)
            .then_with(|| a.username.cmp(&b.username))
    });
    members
}

async fn outsiders_learn_nothing_about_usernames_through_a_team(db: TestDb) {
    let (_, [(_, alice), (_, bob)]) = db.admin_and_users(["alice", "bob"]).await;
    let team = db.store.create_team(&alice, "crew").await.unwrap();
    // Bob is not in the team: existing and unknown usernames answer the same.
    for name in ["alice", "nobody-by-this-name"] {
        assert_eq!(
            err_kind(
                db.store
                    .put_team_member(&bob, &team.id, name, TeamRole::Member)
                    .await
            ),
            Kind::NotFound,
            "{name}"
        );
    }
    // The team's owner gets a clear answer about an unknown name.
    assert_eq!(
        err_kind(
            db.store
                .put_team_member(&alice, &team.id, "nobody-by-this-name", TeamRole::Member)
                .await
        ),
        Kind::Conflict
    );
}
