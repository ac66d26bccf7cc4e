//! Missions: a goal with success criteria and milestones whose progress is counted
//! from the tasks linked to it. Tenancy and references follow the other brain items.

use mosaic_api::{
    CreateMissionRequest, CreateProjectRequest, CreateTaskRequest, Milestone, Mission,
    MissionProgress, MissionQuery, MissionStatus, Owner, TaskQuery, TaskStatus,
    UpdateMissionRequest, UpdateTaskRequest,
};
use mosaic_test_support::engines;
use pretty_assertions::assert_eq;

use crate::support::{err_kind, Kind, TestDb};

engines!(
    missions_round_trip_filter_page_and_delete,
    progress_follows_task_status_and_links,
    other_users_missions_are_not_found_and_team_members_share_them,
    mission_references_must_be_visible_and_have_the_same_owner,
    mission_sizes_are_checked,
);

fn mission(goal: &str) -> CreateMissionRequest {
    CreateMissionRequest {
        goal: goal.into(),
        ..Default::default()
    }
}

fn linked_task(title: &str, mission_id: &str) -> CreateTaskRequest {
    CreateTaskRequest {
        title: title.into(),
        mission_id: Some(mission_id.into()),
        ..Default::default()
    }
}

async fn missions_round_trip_filter_page_and_delete(db: TestDb) {
    let (_, [(alice_user, alice)]) = db.admin_and_users(["alice"]).await;
    let project = db
        .store
        .create_project(
            &alice,
            &CreateProjectRequest {
                name: "Garden".into(),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    let m = db
        .store
        .create_mission(
            &alice,
            &CreateMissionRequest {
                goal: " Grow our own vegetables ".into(),
                success_criteria: "a **summer** without buying any".into(),
                milestones: vec![
                    Milestone {
                        title: " Beds built ".into(),
                        done: true,
                    },
                    Milestone {
                        title: "First harvest".into(),
                        done: false,
                    },
                ],
                project_id: Some(project.id.clone()),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(
        m,
        Mission {
            id: m.id.clone(),
            goal: "Grow our own vegetables".into(),
            success_criteria: "a **summer** without buying any".into(),
            milestones: vec![
                Milestone {
                    title: "Beds built".into(),
                    done: true,
                },
                Milestone {
                    title: "First harvest".into(),
                    done: false,
                },
            ],
            project_id: Some(project.id.clone()),
            owner: Owner::User {
                id: alice_user.id.clone()
            },
            status: MissionStatus::Active,
            progress: MissionProgress::default(),
            created_at: m.created_at.clone(),
            updated_at: m.created_at.clone(),
        }
    );
    assert_eq!(db.store.get_mission(&alice, &m.id).await.unwrap(), m);

    // Partial update: absent fields stay, `null` project clears it.
    let achieved = db
        .store
        .update_mission(
            &alice,
            &m.id,
            &UpdateMissionRequest {
                status: Some(MissionStatus::Achieved),
                milestones: Some(vec![Milestone {
                    title: "All done".into(),
                    done: true,
                }]),
                project_id: Some(None),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(achieved.status, MissionStatus::Achieved);
    assert_eq!(achieved.goal, m.goal);
    assert_eq!(achieved.success_criteria, m.success_criteria);
    assert_eq!(achieved.project_id, None);
    assert_eq!(achieved.milestones.len(), 1);

    // Listing: newest first, filtered, in pages.
    let second = db
        .store
        .create_mission(&alice, &mission("Second"))
        .await
        .unwrap();
    let third = db
        .store
        .create_mission(
            &alice,
            &CreateMissionRequest {
                goal: "Third".into(),
                project_id: Some(project.id.clone()),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    let ids = |page: mosaic_api::Page<Mission>| -> Vec<String> {
        page.items.into_iter().map(|m| m.id).collect()
    };
    let all = db
        .store
        .list_missions(&alice, &MissionQuery::default())
        .await
        .unwrap();
    assert_eq!(
        ids(all),
        vec![third.id.clone(), second.id.clone(), m.id.clone()]
    );
    let active = db
        .store
        .list_missions(
            &alice,
            &MissionQuery {
                status: Some(MissionStatus::Active),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(ids(active), vec![third.id.clone(), second.id.clone()]);
    let in_project = db
        .store
        .list_missions(
            &alice,
            &MissionQuery {
                project_id: Some(project.id.clone()),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(ids(in_project), vec![third.id.clone()]);
    let first_page = db
        .store
        .list_missions(
            &alice,
            &MissionQuery {
                limit: Some(2),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    let cursor = first_page.next_cursor.clone();
    assert_eq!(ids(first_page), vec![third.id.clone(), second.id.clone()]);
    let rest = db
        .store
        .list_missions(
            &alice,
            &MissionQuery {
                limit: Some(2),
                cursor,
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(rest.next_cursor, None);
    assert_eq!(ids(rest), vec![m.id.clone()]);

    // Deleting a mission keeps its tasks, unlinked.
    let t = db
        .store
        .create_task(&alice, &linked_task("Dig", &second.id))
        .await
        .unwrap();
    db.store.delete_mission(&alice, &second.id).await.unwrap();
    assert_eq!(
        err_kind(db.store.get_mission(&alice, &second.id).await),
        Kind::NotFound
    );
    assert_eq!(
        db.store.get_task(&alice, &t.id).await.unwrap().mission_id,
        None
    );
}

async fn progress_follows_task_status_and_links(db: TestDb) {
    let (_, [(_, alice)]) = db.admin_and_users(["alice"]).await;
    let m = db
        .store
        .create_mission(&alice, &mission("Ship"))
        .await
        .unwrap();
    let other = db
        .store
        .create_mission(&alice, &mission("Other"))
        .await
        .unwrap();
    let progress = |total, done| MissionProgress {
        tasks_total: total,
        tasks_done: done,
    };
    let a = db
        .store
        .create_task(&alice, &linked_task("a", &m.id))
        .await
        .unwrap();
    assert_eq!(a.mission_id, Some(m.id.clone()));
    let b = db
        .store
        .create_task(
            &alice,
            &CreateTaskRequest {
                status: Some(TaskStatus::Done),
                ..linked_task("b", &m.id)
            },
        )
        .await
        .unwrap();
    let c = db
        .store
        .create_task(
            &alice,
            &CreateTaskRequest {
                title: "c".into(),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(
        db.store.get_mission(&alice, &m.id).await.unwrap().progress,
        progress(2, 1)
    );

    // A status change counts at once.
    db.store
        .update_task(
            &alice,
            &a.id,
            &UpdateTaskRequest {
                status: Some(TaskStatus::Done),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(
        db.store.get_mission(&alice, &m.id).await.unwrap().progress,
        progress(2, 2)
    );
    db.store
        .update_task(
            &alice,
            &b.id,
            &UpdateTaskRequest {
                status: Some(TaskStatus::Doing),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    // Linking, moving and unlinking.
    db.store
        .update_task(
            &alice,
            &c.id,
            &UpdateTaskRequest {
                mission_id: Some(Some(m.id.clone())),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(
        db.store.get_mission(&alice, &m.id).await.unwrap().progress,
        progress(3, 1)
    );
    db.store
        .update_task(
            &alice,
            &a.id,
            &UpdateTaskRequest {
                mission_id: Some(Some(other.id.clone())),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    let unlinked = db
        .store
        .update_task(
            &alice,
            &b.id,
            &UpdateTaskRequest {
                mission_id: Some(None),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(unlinked.mission_id, None);
    // An update that leaves mission_id absent keeps the link.
    let kept = db
        .store
        .update_task(
            &alice,
            &c.id,
            &UpdateTaskRequest {
                title: Some("c2".into()),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(kept.mission_id, Some(m.id.clone()));
    assert_eq!(
        db.store.get_mission(&alice, &m.id).await.unwrap().progress,
        progress(1, 0)
    );
    let listed = db
        .store
        .list_missions(&alice, &MissionQuery::default())
        .await
        .unwrap();
    assert_eq!(
        listed
            .items
            .iter()
            .map(|m| (m.goal.as_str(), m.progress))
            .collect::<Vec<_>>(),
        vec![("Other", progress(1, 1)), ("Ship", progress(1, 0))]
    );
    // The task list filters by mission.
    let tasks = db
        .store
        .list_tasks(
            &alice,
            &TaskQuery {
                mission_id: Some(m.id.clone()),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(
        tasks.items.into_iter().map(|t| t.id).collect::<Vec<_>>(),
        vec![c.id.clone()]
    );
    // A deleted task no longer counts.
    db.store.delete_task(&alice, &a.id).await.unwrap();
    assert_eq!(
        db.store
            .get_mission(&alice, &other.id)
            .await
            .unwrap()
            .progress,
        progress(0, 0)
    );
}

async fn other_users_missions_are_not_found_and_team_members_share_them(db: TestDb) {
    let (_, [(_, alice), (_, bob), (_, carol)]) =
        db.admin_and_users(["alice", "bob", "carol"]).await;
    let own = db
        .store
        .create_mission(&alice, &mission("Mine"))
        .await
        .unwrap();
    assert_eq!(
        err_kind(db.store.get_mission(&bob, &own.id).await),
        Kind::NotFound
    );
    assert_eq!(
        err_kind(
            db.store
                .update_mission(
                    &bob,
                    &own.id,
                    &UpdateMissionRequest {
                        goal: Some("Taken".into()),
                        ..Default::default()
                    }
                )
                .await
        ),
        Kind::NotFound
    );
    assert_eq!(
        err_kind(db.store.delete_mission(&bob, &own.id).await),
        Kind::NotFound
    );
    assert!(db
        .store
        .list_missions(&bob, &MissionQuery::default())
        .await
        .unwrap()
        .items
        .is_empty());

    let team = db.crew(&alice).await;
    // A plain member creates and edits team missions ...
    let shared = db
        .store
        .create_mission(
            &bob,
            &CreateMissionRequest {
                goal: "Launch".into(),
                team_id: Some(team.id.clone()),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(
        shared.owner,
        Owner::Team {
            id: team.id.clone()
        }
    );
    assert_eq!(
        db.store.get_mission(&alice, &shared.id).await.unwrap().id,
        shared.id
    );
    db.store
        .update_mission(
            &bob,
            &shared.id,
            &UpdateMissionRequest {
                status: Some(MissionStatus::Abandoned),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    // ... and links team tasks to them, but does not delete them.
    db.store
        .create_task(
            &bob,
            &CreateTaskRequest {
                team_id: Some(team.id.clone()),
                ..linked_task("Plan", &shared.id)
            },
        )
        .await
        .unwrap();
    assert_eq!(
        db.store
            .get_mission(&alice, &shared.id)
            .await
            .unwrap()
            .progress
            .tasks_total,
        1
    );
    assert_eq!(
        err_kind(db.store.delete_mission(&bob, &shared.id).await),
        Kind::Forbidden
    );
    // Outsiders see nothing; the team's owner deletes.
    assert_eq!(
        err_kind(db.store.get_mission(&carol, &shared.id).await),
        Kind::NotFound
    );
    db.store.delete_mission(&alice, &shared.id).await.unwrap();
    assert_eq!(
        err_kind(db.store.get_mission(&bob, &shared.id).await),
        Kind::NotFound
    );
}

async fn mission_references_must_be_visible_and_have_the_same_owner(db: TestDb) {
    let (_, [(_, alice), (_, bob)]) = db.admin_and_users(["alice", "bob"]).await;
    let alices = db
        .store
        .create_mission(&alice, &mission("Hers"))
        .await
        .unwrap();
    let bobs_task = db
        .store
        .create_task(
            &bob,
            &CreateTaskRequest {
                title: "Sneak".into(),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    // Another owner's mission is refused on create and on update.
    assert_eq!(
        err_kind(
            db.store
                .create_task(&bob, &linked_task("Sneak", &alices.id))
                .await
        ),
        Kind::Conflict
    );
    assert_eq!(
        err_kind(
            db.store
                .update_task(
                    &bob,
                    &bobs_task.id,
                    &UpdateTaskRequest {
                        mission_id: Some(Some(alices.id.clone())),
                        ..Default::default()
                    }
                )
                .await
        ),
        Kind::Conflict
    );
    // A personal task cannot count towards a team mission, even for a member.
    let team = db.store.create_team(&alice, "crew").await.unwrap();
    let team_mission = db
        .store
        .create_mission(
            &alice,
            &CreateMissionRequest {
                goal: "Team".into(),
                team_id: Some(team.id.clone()),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(
        err_kind(
            db.store
                .create_task(&alice, &linked_task("Mine", &team_mission.id))
                .await
        ),
        Kind::Conflict
    );
    // A mission's project must be the same owner's too.
    let bobs_project = db
        .store
        .create_project(
            &bob,
            &CreateProjectRequest {
                name: "His".into(),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(
        err_kind(
            db.store
                .create_mission(
                    &alice,
                    &CreateMissionRequest {
                        goal: "Steal".into(),
                        project_id: Some(bobs_project.id.clone()),
                        ..Default::default()
                    }
                )
                .await
        ),
        Kind::Conflict
    );
    assert_eq!(
        err_kind(
            db.store
                .update_mission(
                    &alice,
                    &alices.id,
                    &UpdateMissionRequest {
                        project_id: Some(Some(bobs_project.id.clone())),
                        ..Default::default()
                    }
                )
                .await
        ),
        Kind::Conflict
    );
}

async fn mission_sizes_are_checked(db: TestDb) {
    let (_, [(_, alice)]) = db.admin_and_users(["alice"]).await;
    assert_eq!(
        err_kind(db.store.create_mission(&alice, &mission("  ")).await),
        Kind::Invalid
    );
    assert_eq!(
        err_kind(
            db.store
                .create_mission(&alice, &mission(&"g".repeat(301)))
                .await
        ),
        Kind::Invalid
    );
    assert_eq!(
        err_kind(
            db.store
                .create_mission(
                    &alice,
                    &CreateMissionRequest {
                        success_criteria: "c".repeat(10_001),
                        ..mission("Big")
                    }
                )
                .await
        ),
        Kind::Invalid
    );
    let milestones = |n: usize| {
        (0..n)
            .map(|i| Milestone {
                title: format!("step {i}"),
                done: false,
            })
            .collect::<Vec<_>>()
    };
    assert_eq!(
        err_kind(
            db.store
                .create_mission(
                    &alice,
                    &CreateMissionRequest {
                        milestones: milestones(51),
                        ..mission("Many")
                    }
                )
                .await
        ),
        Kind::Invalid
    );
    let ok = db
        .store
        .create_mission(
            &alice,
            &CreateMissionRequest {
                success_criteria: "c".repeat(10_000),
                milestones: milestones(50),
                ..mission(&"g".repeat(300))
            },
        )
        .await
        .unwrap();
    assert_eq!(ok.milestones.len(), 50);
    assert_eq!(
        err_kind(
            db.store
                .update_mission(
                    &alice,
                    &ok.id,
                    &UpdateMissionRequest {
                        milestones: Some(vec![Milestone::default()]),
                        ..Default::default()
                    }
                )
                .await
        ),
        Kind::Invalid
    );
}
