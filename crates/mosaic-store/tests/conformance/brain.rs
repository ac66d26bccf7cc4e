//! The brain: projects, tasks and notes. Personal items are their owner's alone; a
//! team's are read and written by its members and deleted by its owners and admins;
//! references stay within one owner; lexical search sees only what the caller may.

use mosaic_test_support::engines;
use std::collections::HashSet;

use mosaic_api::{
    BrainKind, CreateNoteRequest, CreateProjectRequest, CreateTaskRequest, NoteQuery, Owner,
    Project, ProjectQuery, ProjectStatus, Task, TaskPriority, TaskQuery, TaskStatus, TeamRole,
    UpdateNoteRequest, UpdateProjectRequest, UpdateTaskRequest,
};
use mosaic_store::{Principal, Store};
use pretty_assertions::assert_eq;

use crate::support::{err_kind, Kind, TestDb};

engines!(
    projects_round_trip_and_belong_to_their_owner_alone,
    tasks_round_trip_with_labels_due_dates_and_done_times,
    task_lists_filter_and_page_newest_first,
    notes_round_trip_and_filter_by_tag_project_and_words,
    other_users_items_are_not_found_and_never_listed,
    team_members_read_and_write_team_items_and_only_team_admins_delete_them,
    references_must_be_visible_and_have_the_same_owner,
    a_task_cannot_become_its_own_ancestor,
    sizes_and_labels_are_checked_and_normalised,
    search_finds_words_in_titles_and_bodies_and_ranks_titles_first,
    search_treats_hostile_input_as_plain_words,
    search_never_shows_other_users_items,
);

fn task(title: &str) -> CreateTaskRequest {
    CreateTaskRequest {
        title: title.into(),
        ..Default::default()
    }
}

fn note(title: &str, body: &str) -> CreateNoteRequest {
    CreateNoteRequest {
        title: title.into(),
        body: body.into(),
        ..Default::default()
    }
}

async fn task_ids(store: &Store, p: &Principal, q: TaskQuery) -> Vec<String> {
    store
        .list_tasks(p, &q)
        .await
        .unwrap()
        .items
        .into_iter()
        .map(|t| t.id)
        .collect()
}

async fn search_ids(store: &Store, p: &Principal, q: &str) -> Vec<String> {
    store
        .search_brain(p, q, &[], 50)
        .await
        .unwrap()
        .into_iter()
        .map(|h| h.id)
        .collect()
}

async fn projects_round_trip_and_belong_to_their_owner_alone(db: TestDb) {
    let (admin, [(alice_user, alice), (_, bob)]) = db.admin_and_users(["alice", "bob"]).await;
    let ws = db
        .store
        .create_workspace(&alice, "Home", "", None)
        .await
        .unwrap();
    let project = db
        .store
        .create_project(
            &alice,
            &CreateProjectRequest {
                name: " Garden ".into(),
                description: "beds and paths".into(),
                workspace_id: Some(ws.id.clone()),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(
        project,
        Project {
            id: project.id.clone(),
            name: "Garden".into(),
            description: "beds and paths".into(),
            status: ProjectStatus::Active,
            owner: Owner::User {
                id: alice_user.id.clone()
            },
            workspace_id: Some(ws.id.clone()),
            created_at: project.created_at.clone(),
            updated_at: project.created_at.clone(),
        }
    );
    assert_eq!(
        db.store.get_project(&alice, &project.id).await.unwrap(),
        project
    );

    let updated = db
        .store
        .update_project(
            &alice,
            &project.id,
            &UpdateProjectRequest {
                status: Some(ProjectStatus::Paused),
                workspace_id: Some(None),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(
        updated,
        Project {
            status: ProjectStatus::Paused,
            workspace_id: None,
            updated_at: updated.updated_at.clone(),
            ..project.clone()
        }
    );
    let listed = |status| ProjectQuery {
        status,
        ..Default::default()
    };
    assert_eq!(
        db.store
            .list_projects(&alice, &listed(Some(ProjectStatus::Paused)))
            .await
            .unwrap()
            .items,
        vec![updated.clone()]
    );
    assert_eq!(
        db.store
            .list_projects(&alice, &listed(Some(ProjectStatus::Active)))
            .await
            .unwrap()
            .items,
        vec![]
    );

    for other in [&bob, &admin] {
        assert_eq!(
            err_kind(db.store.get_project(other, &project.id).await),
            Kind::NotFound
        );
        assert_eq!(
            err_kind(
                db.store
                    .update_project(other, &project.id, &UpdateProjectRequest::default())
                    .await
            ),
            Kind::NotFound
        );
        assert_eq!(
            err_kind(db.store.delete_project(other, &project.id).await),
            Kind::NotFound
        );
        assert_eq!(
            db.store
                .list_projects(other, &ProjectQuery::default())
                .await
                .unwrap()
                .items,
            vec![]
        );
    }

    // Deleting a project keeps its tasks, outside any project.
    let t = db
        .store
        .create_task(
            &alice,
            &CreateTaskRequest {
                project_id: Some(project.id.clone()),
                ..task("dig")
            },
        )
        .await
        .unwrap();
    db.store.delete_project(&alice, &project.id).await.unwrap();
    assert_eq!(
        err_kind(db.store.get_project(&alice, &project.id).await),
        Kind::NotFound
    );
    assert_eq!(
        db.store.get_task(&alice, &t.id).await.unwrap().project_id,
        None
    );
}

async fn tasks_round_trip_with_labels_due_dates_and_done_times(db: TestDb) {
    let (_, [(alice_user, alice)]) = db.admin_and_users(["alice"]).await;
    let t = db
        .store
        .create_task(
            &alice,
            &CreateTaskRequest {
                title: "File taxes".into(),
                body: "before **April**".into(),
                priority: Some(TaskPriority::High),
                due_at: Some("2030-04-15T12:00:00Z".into()),
                assignee_user_id: Some(alice_user.id.clone()),
                labels: vec![" Money ".into(), "admin".into(), "money".into()],
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(
        t,
        Task {
            id: t.id.clone(),
            title: "File taxes".into(),
            body: "before **April**".into(),
            status: TaskStatus::Todo,
            priority: TaskPriority::High,
            due_at: Some("2030-04-15T12:00:00.000Z".into()),
            assignee_user_id: Some(alice_user.id.clone()),
            labels: vec!["admin".into(), "money".into()],
            project_id: None,
            parent_task_id: None,
            mission_id: None,
            owner: Owner::User {
                id: alice_user.id.clone()
            },
            created_at: t.created_at.clone(),
            updated_at: t.created_at.clone(),
            done_at: None,
        }
    );
    assert_eq!(db.store.get_task(&alice, &t.id).await.unwrap(), t);

    let done = db
        .store
        .update_task(
            &alice,
            &t.id,
            &UpdateTaskRequest {
                status: Some(TaskStatus::Done),
                due_at: Some(None),
                assignee_user_id: Some(None),
                labels: Some(vec![]),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert!(done.done_at.is_some());
    assert_eq!(
        done,
        Task {
            status: TaskStatus::Done,
            due_at: None,
            assignee_user_id: None,
            labels: vec![],
            updated_at: done.updated_at.clone(),
            done_at: done.done_at.clone(),
            ..t.clone()
        }
    );
    // Staying done keeps the time it became done; leaving done clears it.
    let renamed = db
        .store
        .update_task(
            &alice,
            &t.id,
            &UpdateTaskRequest {
                title: Some("File the taxes".into()),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(renamed.done_at, done.done_at);
    let reopened = db
        .store
        .update_task(
            &alice,
            &t.id,
            &UpdateTaskRequest {
                status: Some(TaskStatus::Doing),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(reopened.done_at, None);
    assert_eq!(reopened.title, "File the taxes");

    db.store.delete_task(&alice, &t.id).await.unwrap();
    assert_eq!(
        err_kind(db.store.get_task(&alice, &t.id).await),
        Kind::NotFound
    );
    assert_eq!(
        err_kind(db.store.delete_task(&alice, &t.id).await),
        Kind::NotFound
    );
}

async fn task_lists_filter_and_page_newest_first(db: TestDb) {
    let (_, [(alice_user, alice)]) = db.admin_and_users(["alice"]).await;
    let project = db
        .store
        .create_project(
            &alice,
            &CreateProjectRequest {
                name: "House".into(),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    let mut ids = Vec::new();
    for i in 0..7 {
        let t = db
            .store
            .create_task(
                &alice,
                &CreateTaskRequest {
                    title: format!("task {i}"),
                    body: if i == 3 {
                        "paint the fence".into()
                    } else {
                        String::new()
                    },
                    status: Some(if i % 2 == 0 {
                        TaskStatus::Todo
                    } else {
                        TaskStatus::Blocked
                    }),
                    labels: if i < 2 {
                        vec!["Red_1".into()]
                    } else {
                        vec!["red%1".into()]
                    },
                    project_id: (i >= 5).then(|| project.id.clone()),
                    due_at: Some(format!("2030-01-0{}T00:00:00Z", i + 1)),
                    assignee_user_id: (i == 6).then(|| alice_user.id.clone()),
                    ..Default::default()
                },
            )
            .await
            .unwrap();
        ids.push(t.id);
    }
    let sub = db
        .store
        .create_task(
            &alice,
            &CreateTaskRequest {
                parent_task_id: Some(ids[0].clone()),
                ..task("subtask")
            },
        )
        .await
        .unwrap();
    let pick = |is: &[usize]| is.iter().rev().map(|&i| ids[i].clone()).collect::<Vec<_>>();

    let mut all = pick(&[0, 1, 2, 3, 4, 5, 6]);
    all.insert(0, sub.id.clone());
    assert_eq!(task_ids(&db.store, &alice, TaskQuery::default()).await, all);
    let q = |f: fn(&mut TaskQuery)| {
        let mut q = TaskQuery::default();
        f(&mut q);
        q
    };
    let mut blocked = q(|q| q.status = Some(TaskStatus::Blocked));
    assert_eq!(
        task_ids(&db.store, &alice, blocked.clone()).await,
        pick(&[1, 3, 5])
    );
    blocked.project_id = Some(project.id.clone());
    assert_eq!(task_ids(&db.store, &alice, blocked).await, pick(&[5]));
    // Label filters are exact labels, whatever LIKE would make of `_` and `%`.
    assert_eq!(
        task_ids(&db.store, &alice, q(|q| q.label = Some(" RED_1".into()))).await,
        pick(&[0, 1])
    );
    assert_eq!(
        task_ids(&db.store, &alice, q(|q| q.label = Some("red".into()))).await,
        Vec::<String>::new()
    );
    assert_eq!(
        task_ids(
            &db.store,
            &alice,
            q(|q| q.due_before = Some("2030-01-03T00:00:00Z".into()))
        )
        .await,
        pick(&[0, 1])
    );
    let assigned = TaskQuery {
        assignee: Some(alice_user.id.clone()),
        ..Default::default()
    };
    assert_eq!(task_ids(&db.store, &alice, assigned).await, pick(&[6]));
    let children = TaskQuery {
        parent_task_id: Some(ids[0].clone()),
        ..Default::default()
    };
    assert_eq!(
        task_ids(&db.store, &alice, children).await,
        vec![sub.id.clone()]
    );
    assert_eq!(
        task_ids(&db.store, &alice, q(|q| q.q = Some("FENCE paint".into()))).await,
        pick(&[3])
    );

    // Every task once, newest first, two at a time.
    let mut seen = Vec::new();
    let mut cursor = None;
    loop {
        let page = db
            .store
            .list_tasks(
                &alice,
                &TaskQuery {
                    cursor: cursor.clone(),
                    limit: Some(2),
                    ..Default::default()
                },
            )
            .await
            .unwrap();
        assert!(page.items.len() <= 2);
        seen.extend(page.items.into_iter().map(|t| t.id));
        match page.next_cursor {
            Some(c) => cursor = Some(c),
            None => break,
        }
    }
    assert_eq!(seen, all);
}

async fn notes_round_trip_and_filter_by_tag_project_and_words(db: TestDb) {
    let (_, [(alice_user, alice)]) = db.admin_and_users(["alice"]).await;
    let project = db
        .store
        .create_project(
            &alice,
            &CreateProjectRequest {
                name: "Kitchen".into(),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    let n = db
        .store
        .create_note(
            &alice,
            &CreateNoteRequest {
                tags: vec!["Recipes".into(), "bread".into()],
                project_id: Some(project.id.clone()),
                ..note("Sourdough", "# Starter\nFeed it **daily**.")
            },
        )
        .await
        .unwrap();
    assert_eq!(n.title, "Sourdough");
    assert_eq!(n.tags, vec!["bread".to_string(), "recipes".to_string()]);
    assert_eq!(
        n.owner,
        Owner::User {
            id: alice_user.id.clone()
        }
    );
    assert_eq!(db.store.get_note(&alice, &n.id).await.unwrap(), n);
    let other = db
        .store
        .create_note(&alice, &note("Shopping", "flour, salt"))
        .await
        .unwrap();

    let list = |f: fn(&mut NoteQuery)| {
        let mut q = NoteQuery::default();
        f(&mut q);
        q
    };
    let ids = |page: mosaic_api::Page<mosaic_api::Note>| {
        page.items.into_iter().map(|n| n.id).collect::<Vec<_>>()
    };
    assert_eq!(
        ids(db
            .store
            .list_notes(&alice, &NoteQuery::default())
            .await
            .unwrap()),
        vec![other.id.clone(), n.id.clone()]
    );
    assert_eq!(
        ids(db
            .store
            .list_notes(&alice, &list(|q| q.tag = Some("Bread".into())))
            .await
            .unwrap()),
        vec![n.id.clone()]
    );
    let in_project = NoteQuery {
        project_id: Some(project.id.clone()),
        ..Default::default()
    };
    assert_eq!(
        ids(db.store.list_notes(&alice, &in_project).await.unwrap()),
        vec![n.id.clone()]
    );
    assert_eq!(
        ids(db
            .store
            .list_notes(&alice, &list(|q| q.q = Some("salt".into())))
            .await
            .unwrap()),
        vec![other.id.clone()]
    );

    let updated = db
        .store
        .update_note(
            &alice,
            &n.id,
            &UpdateNoteRequest {
                body: Some("Rye, not wheat.".into()),
                tags: Some(vec![]),
                project_id: Some(None),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(updated.body, "Rye, not wheat.");
    assert_eq!(updated.tags, Vec::<String>::new());
    assert_eq!(updated.project_id, None);
    // The text index follows the change.
    assert_eq!(
        search_ids(&db.store, &alice, "daily").await,
        Vec::<String>::new()
    );
    assert_eq!(
        search_ids(&db.store, &alice, "rye").await,
        vec![n.id.clone()]
    );

    db.store.delete_note(&alice, &n.id).await.unwrap();
    assert_eq!(
        err_kind(db.store.get_note(&alice, &n.id).await),
        Kind::NotFound
    );
    assert_eq!(
        search_ids(&db.store, &alice, "rye").await,
        Vec::<String>::new()
    );
}

async fn other_users_items_are_not_found_and_never_listed(db: TestDb) {
    let (admin, [(_, alice), (_, bob)]) = db.admin_and_users(["alice", "bob"]).await;
    let t = db
        .store
        .create_task(&alice, &task("secret plan"))
        .await
        .unwrap();
    let n = db
        .store
        .create_note(&alice, &note("diary", "secret thoughts"))
        .await
        .unwrap();
    for other in [&bob, &admin] {
        assert_eq!(
            err_kind(db.store.get_task(other, &t.id).await),
            Kind::NotFound
        );
        assert_eq!(
            err_kind(
                db.store
                    .update_task(
                        other,
                        &t.id,
                        &UpdateTaskRequest {
                            title: Some("mine".into()),
                            ..Default::default()
                        }
                    )
                    .await
            ),
            Kind::NotFound
        );
        assert_eq!(
            err_kind(db.store.delete_task(other, &t.id).await),
            Kind::NotFound
        );
        assert_eq!(
            err_kind(db.store.get_note(other, &n.id).await),
            Kind::NotFound
        );
        assert_eq!(
            err_kind(
                db.store
                    .update_note(other, &n.id, &UpdateNoteRequest::default())
                    .await
            ),
            Kind::NotFound
        );
        assert_eq!(
            err_kind(db.store.delete_note(other, &n.id).await),
            Kind::NotFound
        );
        assert_eq!(
            task_ids(&db.store, other, TaskQuery::default()).await,
            Vec::<String>::new()
        );
        assert!(db
            .store
            .list_notes(other, &NoteQuery::default())
            .await
            .unwrap()
            .items
            .is_empty());
        assert_eq!(
            search_ids(&db.store, other, "secret").await,
            Vec::<String>::new()
        );
    }
    // Still there for Alice.
    assert_eq!(db.store.get_task(&alice, &t.id).await.unwrap(), t);
    assert_eq!(db.store.get_note(&alice, &n.id).await.unwrap(), n);
}

async fn team_members_read_and_write_team_items_and_only_team_admins_delete_them(db: TestDb) {
    let (_, [(_, alice), (bob_user, bob), (_, carol)]) =
        db.admin_and_users(["alice", "bob", "carol"]).await;
    let team = db.crew(&alice).await;
    // A plain member creates team items.
    let project = db
        .store
        .create_project(
            &bob,
            &CreateProjectRequest {
                name: "Launch".into(),
                team_id: Some(team.id.clone()),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(
        project.owner,
        Owner::Team {
            id: team.id.clone()
        }
    );
    let team_projects = ProjectQuery {
        team_id: Some(team.id.clone()),
        ..Default::default()
    };
    assert_eq!(
        db.store
            .list_projects(&alice, &team_projects)
            .await
            .unwrap()
            .items,
        vec![project.clone()]
    );
    let t = db
        .store
        .create_task(
            &alice,
            &CreateTaskRequest {
                team_id: Some(team.id.clone()),
                project_id: Some(project.id.clone()),
                assignee_user_id: Some(bob_user.id.clone()),
                ..task("ship it")
            },
        )
        .await
        .unwrap();
    let n = db
        .store
        .create_note(
            &bob,
            &CreateNoteRequest {
                team_id: Some(team.id.clone()),
                ..note("launch notes", "checklist")
            },
        )
        .await
        .unwrap();

    // Members read and write.
    assert_eq!(db.store.get_task(&bob, &t.id).await.unwrap(), t);
    assert_eq!(
        task_ids(&db.store, &bob, TaskQuery::default()).await,
        vec![t.id.clone()]
    );
    let moved = db
        .store
        .update_task(
            &bob,
            &t.id,
            &UpdateTaskRequest {
                status: Some(TaskStatus::Doing),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(moved.status, TaskStatus::Doing);
    db.store
        .update_project(
            &bob,
            &project.id,
            &UpdateProjectRequest {
                description: Some("Q3".into()),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(
        search_ids(&db.store, &alice, "checklist").await,
        vec![n.id.clone()]
    );

    // Only owners and admins delete.
    assert_eq!(
        err_kind(db.store.delete_task(&bob, &t.id).await),
        Kind::Forbidden
    );
    assert_eq!(
        err_kind(db.store.delete_note(&bob, &n.id).await),
        Kind::Forbidden
    );
    assert_eq!(
        err_kind(db.store.delete_project(&bob, &project.id).await),
        Kind::Forbidden
    );
    // Outsiders see nothing and cannot create team items.
    assert_eq!(
        err_kind(db.store.get_task(&carol, &t.id).await),
        Kind::NotFound
    );
    assert_eq!(
        err_kind(db.store.delete_note(&carol, &n.id).await),
        Kind::NotFound
    );
    assert_eq!(
        search_ids(&db.store, &carol, "checklist").await,
        Vec::<String>::new()
    );
    assert_eq!(
        err_kind(
            db.store
                .create_task(
                    &carol,
                    &CreateTaskRequest {
                        team_id: Some(team.id.clone()),
                        ..task("sneak")
                    }
                )
                .await
        ),
        Kind::NotFound
    );

    db.store
        .put_team_member(&alice, &team.id, "bob", TeamRole::Admin)
        .await
        .unwrap();
    db.store.delete_task(&bob, &t.id).await.unwrap();
    db.store.delete_note(&alice, &n.id).await.unwrap();
    db.store.delete_project(&bob, &project.id).await.unwrap();
    assert_eq!(
        err_kind(db.store.get_task(&alice, &t.id).await),
        Kind::NotFound
    );
}

async fn references_must_be_visible_and_have_the_same_owner(db: TestDb) {
    let (_, [(_, alice), (bob_user, bob), (carol_user, _)]) =
        db.admin_and_users(["alice", "bob", "carol"]).await;
    let team = db.crew(&alice).await;
    let mine = CreateProjectRequest {
        name: "mine".into(),
        ..Default::default()
    };
    let alice_project = db.store.create_project(&alice, &mine).await.unwrap();
    let bob_project = db.store.create_project(&bob, &mine).await.unwrap();
    let bob_task = db.store.create_task(&bob, &task("bob's")).await.unwrap();
    let bob_ws = db
        .store
        .create_workspace(&bob, "ws", "", None)
        .await
        .unwrap();
    let team_ws = db
        .store
        .create_workspace(&alice, "team ws", "", Some(&team.id))
        .await
        .unwrap();

    let conflict = Kind::Conflict;
    // Someone else's project, task or workspace.
    let in_bobs = CreateTaskRequest {
        project_id: Some(bob_project.id.clone()),
        ..task("x")
    };
    assert_eq!(
        err_kind(db.store.create_task(&alice, &in_bobs).await),
        conflict
    );
    let under_bobs = CreateTaskRequest {
        parent_task_id: Some(bob_task.id.clone()),
        ..task("x")
    };
    assert_eq!(
        err_kind(db.store.create_task(&alice, &under_bobs).await),
        conflict
    );
    let in_bobs_ws = CreateProjectRequest {
        workspace_id: Some(bob_ws.id.clone()),
        ..mine.clone()
    };
    assert_eq!(
        err_kind(db.store.create_project(&alice, &in_bobs_ws).await),
        conflict
    );
    let note_in_bobs = CreateNoteRequest {
        project_id: Some(bob_project.id.clone()),
        ..note("x", "")
    };
    assert_eq!(
        err_kind(db.store.create_note(&alice, &note_in_bobs).await),
        conflict
    );
    // Visible, but another owner: a team task in Alice's personal project, a personal
    // project in the team's workspace.
    let team_task_in_personal = CreateTaskRequest {
        team_id: Some(team.id.clone()),
        project_id: Some(alice_project.id.clone()),
        ..task("x")
    };
    assert_eq!(
        err_kind(db.store.create_task(&alice, &team_task_in_personal).await),
        conflict
    );
    let personal_in_team_ws = CreateProjectRequest {
        workspace_id: Some(team_ws.id.clone()),
        ..mine.clone()
    };
    assert_eq!(
        err_kind(db.store.create_project(&alice, &personal_in_team_ws).await),
        conflict
    );
    let alice_task = db.store.create_task(&alice, &task("a")).await.unwrap();
    assert_eq!(
        err_kind(
            db.store
                .update_task(
                    &alice,
                    &alice_task.id,
                    &UpdateTaskRequest {
                        project_id: Some(Some(bob_project.id.clone())),
                        ..Default::default()
                    }
                )
                .await
        ),
        conflict
    );
    // Assignees: the owner, or a member of the owning team.
    let to_bob = CreateTaskRequest {
        assignee_user_id: Some(bob_user.id.clone()),
        ..task("x")
    };
    assert_eq!(
        err_kind(db.store.create_task(&alice, &to_bob).await),
        conflict
    );
    let team_to_bob = CreateTaskRequest {
        team_id: Some(team.id.clone()),
        ..to_bob.clone()
    };
    db.store.create_task(&alice, &team_to_bob).await.unwrap();
    let team_to_carol = CreateTaskRequest {
        team_id: Some(team.id.clone()),
        assignee_user_id: Some(carol_user.id.clone()),
        ..task("x")
    };
    assert_eq!(
        err_kind(db.store.create_task(&alice, &team_to_carol).await),
        conflict
    );
    // Nothing was written by the refused requests.
    assert_eq!(
        task_ids(&db.store, &alice, TaskQuery::default())
            .await
            .len(),
        2
    );
}

async fn a_task_cannot_become_its_own_ancestor(db: TestDb) {
    let (_, [(_, alice)]) = db.admin_and_users(["alice"]).await;
    let a = db.store.create_task(&alice, &task("a")).await.unwrap();
    let under = |parent: &str, title: &str| CreateTaskRequest {
        parent_task_id: Some(parent.to_string()),
        ..task(title)
    };
    let b = db
        .store
        .create_task(&alice, &under(&a.id, "b"))
        .await
        .unwrap();
    let c = db
        .store
        .create_task(&alice, &under(&b.id, "c"))
        .await
        .unwrap();
    let reparent = |parent: &str| UpdateTaskRequest {
        parent_task_id: Some(Some(parent.to_string())),
        ..Default::default()
    };
    for parent in [&a.id, &b.id, &c.id] {
        assert_eq!(
            err_kind(db.store.update_task(&alice, &a.id, &reparent(parent)).await),
            Kind::Conflict,
            "a under {parent}"
        );
    }
    // Moving within the tree is fine; so is cutting loose.
    let c2 = db
        .store
        .update_task(&alice, &c.id, &reparent(&a.id))
        .await
        .unwrap();
    assert_eq!(c2.parent_task_id, Some(a.id.clone()));
    let b2 = db
        .store
        .update_task(
            &alice,
            &b.id,
            &UpdateTaskRequest {
                parent_task_id: Some(None),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(b2.parent_task_id, None);
    db.store
        .update_task(&alice, &a.id, &reparent(&b.id))
        .await
        .unwrap();
    // Deleting a parent keeps its subtasks, at the top.
    db.store.delete_task(&alice, &a.id).await.unwrap();
    assert_eq!(
        db.store
            .get_task(&alice, &c.id)
            .await
            .unwrap()
            .parent_task_id,
        None
    );
}

async fn sizes_and_labels_are_checked_and_normalised(db: TestDb) {
    let (_, [(_, alice)]) = db.admin_and_users(["alice"]).await;
    let bad = [
        task("  "),
        task(&"x".repeat(301)),
        CreateTaskRequest {
            body: "x".repeat(100_001),
            ..task("t")
        },
        CreateTaskRequest {
            labels: (0..21).map(|i| format!("l{i}")).collect(),
            ..task("t")
        },
        CreateTaskRequest {
            labels: vec!["x".repeat(51)],
            ..task("t")
        },
        CreateTaskRequest {
            labels: vec!["a,b".into()],
            ..task("t")
        },
        CreateTaskRequest {
            due_at: Some("next tuesday".into()),
            ..task("t")
        },
    ];
    for req in bad {
        assert_eq!(
            err_kind(db.store.create_task(&alice, &req).await),
            Kind::Invalid
        );
    }
    assert_eq!(
        err_kind(
            db.store
                .create_note(
                    &alice,
                    &CreateNoteRequest {
                        tags: vec!["x".repeat(51)],
                        ..note("n", "")
                    }
                )
                .await
        ),
        Kind::Invalid
    );
    // At the limits, after normalising: 20 distinct labels out of 40 spellings.
    let ok = db
        .store
        .create_task(
            &alice,
            &CreateTaskRequest {
                title: "é".repeat(300),
                body: "x".repeat(100_000),
                labels: (0..40).map(|i| format!(" L{} ", i % 20)).collect(),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(ok.labels.len(), 20);
    assert!(ok.labels.iter().all(|l| l.starts_with('l')));
    let t = db.store.create_task(&alice, &task("t")).await.unwrap();
    assert_eq!(
        err_kind(
            db.store
                .update_task(
                    &alice,
                    &t.id,
                    &UpdateTaskRequest {
                        title: Some(String::new()),
                        ..Default::default()
                    }
                )
                .await
        ),
        Kind::Invalid
    );
}

async fn search_finds_words_in_titles_and_bodies_and_ranks_titles_first(db: TestDb) {
    let (_, [(_, alice)]) = db.admin_and_users(["alice"]).await;
    let passing = db
        .store
        .create_note(
            &alice,
            &note(
                "Weekly review",
                "Went through the inbox, the calendar, the budget and, in passing, \
                 the compost heap, then planned the week ahead in some detail.",
            ),
        )
        .await
        .unwrap();
    let titled = db
        .store
        .create_task(
            &alice,
            &CreateTaskRequest {
                body: "turn it every week".into(),
                ..task("Compost heap")
            },
        )
        .await
        .unwrap();
    db.store
        .create_note(&alice, &note("Unrelated", "nothing to see"))
        .await
        .unwrap();

    let hits = db
        .store
        .search_brain(&alice, "compost", &[], 10)
        .await
        .unwrap();
    assert_eq!(
        hits.iter()
            .map(|h| (h.kind, h.id.clone()))
            .collect::<Vec<_>>(),
        vec![
            (BrainKind::Task, titled.id.clone()),
            (BrainKind::Note, passing.id.clone())
        ]
    );
    // Each is first among its kind's word matches (equal fused scores); the title
    // match's stronger lexical score puts it first.
    assert_eq!(hits[0].scores.lexical_rank, Some(1));
    assert_eq!(hits[1].scores.lexical_rank, Some(1));
    assert!(hits[0].scores.lexical_score > hits[1].scores.lexical_score);
    assert!(hits[0].scores.vector_rank.is_none());
    assert_eq!(hits[0].title, "Compost heap");
    assert!(
        hits[1].snippet.contains("«compost»"),
        "{:?}",
        hits[1].snippet
    );
    // Case, several words (all must occur), and kinds.
    assert_eq!(
        search_ids(&db.store, &alice, "COMPOST Budget").await,
        vec![passing.id.clone()]
    );
    let tasks_only = db
        .store
        .search_brain(&alice, "compost", &[BrainKind::Task], 10)
        .await
        .unwrap();
    assert_eq!(tasks_only.len(), 1);
    assert_eq!(tasks_only[0].id, titled.id);
    assert_eq!(
        db.store
            .search_brain(&alice, "compost", &[], 1)
            .await
            .unwrap()
            .len(),
        1
    );
    assert_eq!(
        search_ids(&db.store, &alice, "").await,
        Vec::<String>::new()
    );
}

async fn search_treats_hostile_input_as_plain_words(db: TestDb) {
    let (_, [(_, alice)]) = db.admin_and_users(["alice"]).await;
    let n = db
        .store
        .create_note(&alice, &note("Größe Über", "near the \"quoted\" thing -x"))
        .await
        .unwrap();
    for q in [
        "\"",
        "\"quoted",
        "*",
        "quo*",
        "NEAR(",
        "NEAR(quoted thing)",
        "-x",
        "title:x",
        "a OR b AND NOT c",
        "') OR 1=1 --",
        "\\",
        "%_",
        "^thing",
        "größe",
        "ÜBER",
        "🙂",
    ] {
        db.store
            .search_brain(&alice, q, &[], 10)
            .await
            .unwrap_or_else(|e| panic!("search for {q:?} failed: {e}"));
    }
    for q in ["NEAR(quoted thing)", "\"quoted", "größe", "ÜBER", "über -x"] {
        assert_eq!(
            search_ids(&db.store, &alice, q).await,
            vec![n.id.clone()],
            "{q}"
        );
    }
    // Operators are words, not operators: NOT finds nothing rather than everything.
    assert_eq!(
        search_ids(&db.store, &alice, "NOT quoted").await,
        Vec::<String>::new()
    );
}

async fn search_never_shows_other_users_items(db: TestDb) {
    let (_, [(_, alice), (_, bob)]) = db.admin_and_users(["alice", "bob"]).await;
    let mine = db
        .store
        .create_note(&alice, &note("pumpkin pie", "pumpkin, pumpkin, pumpkin"))
        .await
        .unwrap();
    let theirs = db
        .store
        .create_note(&bob, &note("pumpkin soup", "pumpkin"))
        .await
        .unwrap();
    db.store
        .create_task(&bob, &task("buy pumpkin"))
        .await
        .unwrap();
    assert_eq!(
        search_ids(&db.store, &alice, "pumpkin").await,
        vec![mine.id.clone()]
    );
    let bobs: HashSet<String> = search_ids(&db.store, &bob, "pumpkin")
        .await
        .into_iter()
        .collect();
    assert_eq!(bobs.len(), 2);
    assert!(bobs.contains(&theirs.id) && !bobs.contains(&mine.id));
}

/// Listed in `rls.rs` with the other PostgreSQL-only cases: raw SQL as Bob, with the
/// settings the store makes, sees and changes none of Alice's brain rows, and a team
/// member cannot delete team rows.
pub(crate) async fn row_level_security_guards_brain_rows(db: TestDb) {
    let (_, [(_, alice), (_, bob)]) = db.admin_and_users(["alice", "bob"]).await;
    let project = db
        .store
        .create_project(
            &alice,
            &CreateProjectRequest {
                name: "p".into(),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    db.store.create_task(&alice, &task("t")).await.unwrap();
    db.store.create_note(&alice, &note("n", "")).await.unwrap();
    let team = db.crew(&alice).await;
    db.store
        .create_note(
            &alice,
            &CreateNoteRequest {
                team_id: Some(team.id.clone()),
                ..note("team", "")
            },
        )
        .await
        .unwrap();

    let mut conn = crate::rls::connect_as_store_role(&db).await;
    // Bob, as a plain member of the team (not managing it).
    let mut tx = crate::rls::acting_as(&mut conn, &bob, &[&team.id]).await;
    for (table, visible) in [("projects", 0), ("tasks", 0), ("notes", 1)] {
        let n: i64 = sqlx::query_scalar(&format!("SELECT count(*) FROM {table}"))
            .fetch_one(&mut *tx)
            .await
            .unwrap();
        assert_eq!(n, visible, "{table} as Bob");
        let changed = sqlx::query(&format!("UPDATE {table} SET updated_at = 0"))
            .execute(&mut *tx)
            .await
            .unwrap()
            .rows_affected();
        assert_eq!(changed, visible as u64, "{table} updated by Bob");
        let deleted = sqlx::query(&format!("DELETE FROM {table}"))
            .execute(&mut *tx)
            .await
            .unwrap()
            .rows_affected();
        assert_eq!(deleted, 0, "{table} deleted by Bob");
    }
    // Bob may file a task of his own, but not under Alice's project.
    let insert = "INSERT INTO tasks (id, title, body, status, priority, labels, project_id, \
         owner_user_id, created_at, updated_at) \
         VALUES ($1, 'x', '', 'todo', 'normal', '', $2, $3, 0, 0)";
    sqlx::query(insert)
        .bind("own")
        .bind(None::<String>)
        .bind(bob.local_user().unwrap())
        .execute(&mut *tx)
        .await
        .unwrap();
    let refused = sqlx::query(insert)
        .bind("x")
        .bind(&project.id)
        .bind(bob.local_user().unwrap())
        .execute(&mut *tx)
        .await;
    let refused = refused.expect_err("a task in another user's project");
    assert!(
        refused.to_string().contains("row-level security"),
        "{refused}"
    );
    drop(tx);

    let mut tx = crate::rls::acting_as(&mut conn, &alice, &[&team.id]).await;
    let n: i64 = sqlx::query_scalar("SELECT count(*) FROM notes")
        .fetch_one(&mut *tx)
        .await
        .unwrap();
    assert_eq!(n, 2);
}
