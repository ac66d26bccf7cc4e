//! Workspaces: personal ones are their owner's alone; a team's are visible to its
//! members and changed by its owners and admins.

use mosaic_api::{Owner, PageQuery, TeamRole, Workspace};
use mosaic_test_support::engines;
use pretty_assertions::assert_eq;

use crate::support::{err_kind, Kind, TestDb};

engines!(
    personal_workspaces_belong_to_their_owner_alone,
    team_workspaces_are_visible_to_members_and_managed_by_team_admins,
    workspaces_are_listed_page_by_page,
);

async fn personal_workspaces_belong_to_their_owner_alone(db: TestDb) {
    let (admin, [(alice_user, alice), (_, bob)]) = db.admin_and_users(["alice", "bob"]).await;
    let ws = db
        .store
        .create_workspace(&alice, " Notes ", "my notes", None)
        .await
        .unwrap();
    assert_eq!(
        ws,
        Workspace {
            id: ws.id.clone(),
            name: "Notes".into(),
            description: "my notes".into(),
            owner: Owner::User {
                id: alice_user.id.clone(),
            },
            created_at: ws.created_at.clone(),
            updated_at: ws.created_at.clone(),
        }
    );
    assert_eq!(db.store.get_workspace(&alice, &ws.id).await.unwrap(), ws);

    // Nobody else sees it; a gateway admin is nobody special here.
    for other in [&bob, &admin] {
        assert_eq!(
            err_kind(db.store.get_workspace(other, &ws.id).await),
            Kind::NotFound
        );
        assert_eq!(
            err_kind(
                db.store
                    .update_workspace(other, &ws.id, Some("taken"), None)
                    .await
            ),
            Kind::NotFound
        );
        assert_eq!(
            err_kind(db.store.delete_workspace(other, &ws.id).await),
            Kind::NotFound
        );
        assert_eq!(
            db.store
                .list_workspaces(other, &PageQuery::default())
                .await
                .unwrap()
                .items,
            vec![]
        );
    }

    let updated = db
        .store
        .update_workspace(&alice, &ws.id, None, Some("all my notes"))
        .await
        .unwrap();
    assert_eq!(
        updated,
        Workspace {
            description: "all my notes".into(),
            updated_at: updated.updated_at.clone(),
            ..ws.clone()
        }
    );
    assert_eq!(
        db.store
            .list_workspaces(&alice, &PageQuery::default())
            .await
            .unwrap()
            .items,
        vec![updated]
    );

    assert_eq!(
        err_kind(db.store.create_workspace(&alice, "  ", "", None).await),
        Kind::Invalid
    );
    assert_eq!(
        err_kind(
            db.store
                .update_workspace(&alice, &ws.id, Some(""), None)
                .await
        ),
        Kind::Invalid
    );

    db.store.delete_workspace(&alice, &ws.id).await.unwrap();
    assert_eq!(
        err_kind(db.store.get_workspace(&alice, &ws.id).await),
        Kind::NotFound
    );
    assert_eq!(
        err_kind(db.store.delete_workspace(&alice, &ws.id).await),
        Kind::NotFound
    );
}

async fn team_workspaces_are_visible_to_members_and_managed_by_team_admins(db: TestDb) {
    let (_, [(_, alice), (bob_user, bob), (_, carol)]) =
        db.admin_and_users(["alice", "bob", "carol"]).await;
    let team = db.crew(&alice).await;
    let ws = db
        .store
        .create_workspace(&alice, "Shared", "", Some(&team.id))
        .await
        .unwrap();
    assert_eq!(
        ws.owner,
        Owner::Team {
            id: team.id.clone()
        }
    );

    // Members see it.
    assert_eq!(db.store.get_workspace(&bob, &ws.id).await.unwrap(), ws);
    assert_eq!(
        db.store
            .list_workspaces(&bob, &PageQuery::default())
            .await
            .unwrap()
            .items,
        vec![ws.clone()]
    );
    // Outsiders do not.
    assert_eq!(
        err_kind(db.store.get_workspace(&carol, &ws.id).await),
        Kind::NotFound
    );
    assert_eq!(
        err_kind(
            db.store
                .update_workspace(&carol, &ws.id, Some("carol's"), None)
                .await
        ),
        Kind::NotFound
    );
    assert_eq!(
        err_kind(db.store.delete_workspace(&carol, &ws.id).await),
        Kind::NotFound
    );
    assert_eq!(
        db.store
            .list_workspaces(&carol, &PageQuery::default())
            .await
            .unwrap()
            .items,
        vec![]
    );
    assert_eq!(
        err_kind(
            db.store
                .create_workspace(&carol, "Intruder", "", Some(&team.id))
                .await
        ),
        Kind::NotFound
    );

    // Plain members may look but not touch.
    assert_eq!(
        err_kind(
            db.store
                .update_workspace(&bob, &ws.id, Some("bob's"), None)
                .await
        ),
        Kind::Forbidden
    );
    assert_eq!(
        err_kind(db.store.delete_workspace(&bob, &ws.id).await),
        Kind::Forbidden
    );
    assert_eq!(
        err_kind(
            db.store
                .create_workspace(&bob, "Another", "", Some(&team.id))
                .await
        ),
        Kind::Forbidden
    );
    assert_eq!(db.store.get_workspace(&alice, &ws.id).await.unwrap(), ws);

    // A team admin may.
    db.store
        .put_team_member(&alice, &team.id, "bob", TeamRole::Admin)
        .await
        .unwrap();
    let renamed = db
        .store
        .update_workspace(&bob, &ws.id, Some("Shared space"), None)
        .await
        .unwrap();
    assert_eq!(
        renamed,
        Workspace {
            name: "Shared space".into(),
            updated_at: renamed.updated_at.clone(),
            ..ws.clone()
        }
    );
    assert_eq!(
        db.store.get_workspace(&alice, &ws.id).await.unwrap(),
        renamed
    );

    // Leaving the team means losing sight of its workspaces.
    db.store
        .remove_team_member(&alice, &team.id, &bob_user.id)
        .await
        .unwrap();
    assert_eq!(
        err_kind(db.store.get_workspace(&bob, &ws.id).await),
        Kind::NotFound
    );

    // Deleting the team deletes its workspaces.
    db.store.delete_team(&alice, &team.id).await.unwrap();
    assert_eq!(
        err_kind(db.store.get_workspace(&alice, &ws.id).await),
        Kind::NotFound
    );
}

async fn workspaces_are_listed_page_by_page(db: TestDb) {
    let (_, [(_, alice), (_, bob)]) = db.admin_and_users(["alice", "bob"]).await;
    let team = db.store.create_team(&alice, "crew").await.unwrap();
    let mut visible = Vec::new();
    for name in ["w1", "w2", "w3"] {
        visible.push(
            db.store
                .create_workspace(&alice, name, "", None)
                .await
                .unwrap(),
        );
    }
    for name in ["t1", "t2"] {
        visible.push(
            db.store
                .create_workspace(&alice, name, "", Some(&team.id))
                .await
                .unwrap(),
        );
    }
    // Someone else's workspace never shows up in Alice's pages.
    db.store
        .create_workspace(&bob, "b1", "", None)
        .await
        .unwrap();
    visible.sort_by(|a, b| a.id.cmp(&b.id));

    let mut seen = Vec::new();
    let mut sizes = Vec::new();
    let mut cursor = None;
    loop {
        let page = db
            .store
            .list_workspaces(
                &alice,
                &PageQuery {
                    cursor: cursor.clone(),
                    limit: Some(2),
                },
            )
            .await
            .unwrap();
        sizes.push(page.items.len());
        seen.extend(page.items);
        cursor = page.next_cursor;
        if cursor.is_none() || sizes.len() > 10 {
            break;
        }
    }
    assert_eq!(sizes, vec![2, 2, 1]);
    assert_eq!(seen, visible);
}
