//! Memories, embeddings and hybrid search. Memories are owned and shared like the other
//! brain items; pinned ones are what a run starts with; embeddings are pending until
//! the embedder saves them and pending again after any text change; hybrid search
//! fuses words and nearest neighbours and never shows another tenant's items.

use mosaic_api::{
    BrainKind, CreateMemoryRequest, CreateNoteRequest, CreateTaskRequest, Memory, MemoryKind,
    MemoryQuery, Owner, UpdateMemoryRequest, UpdateNoteRequest, UpdateTaskRequest,
    DEFAULT_IMPORTANCE, MAX_MEMORY_CHARS, MAX_PINNED,
};
use mosaic_store::{default_agent, PendingText, Principal, QueryVector, Store};
use mosaic_test_support::engines;
use pretty_assertions::assert_eq;

use crate::support::{err_kind, Kind, TestDb};

engines!(
    memories_round_trip_filter_page_and_delete,
    memories_follow_owner_and_team_rules,
    pinned_memories_are_shared_or_for_one_agent,
    memory_sizes_importance_and_references_are_checked,
    embeddings_are_pending_until_saved_and_again_after_text_changes,
    hybrid_search_fuses_words_and_meaning_within_the_callers_items,
    lexical_search_covers_memories,
    vectors_of_another_model_or_size_are_ignored,
    common_words_rank_the_newest_matches_and_rare_ones_find_old_items,
    team_items_are_found_by_their_members_only,
    many_hybrid_searches_at_once_on_a_small_pool_all_finish,
);

const MODEL: &str = "test-embedder";

fn memory(text: &str) -> CreateMemoryRequest {
    CreateMemoryRequest {
        text: text.into(),
        ..Default::default()
    }
}

fn task_text(title: &str, body: &str) -> CreateTaskRequest {
    CreateTaskRequest {
        title: title.into(),
        body: body.into(),
        ..Default::default()
    }
}

fn note_text(title: &str, body: &str) -> CreateNoteRequest {
    CreateNoteRequest {
        title: title.into(),
        body: body.into(),
        ..Default::default()
    }
}

async fn memory_ids(store: &Store, p: &Principal, q: MemoryQuery) -> Vec<String> {
    store
        .list_memories(p, &q)
        .await
        .unwrap()
        .items
        .into_iter()
        .map(|m| m.id)
        .collect()
}

/// A unit vector along `axis` of 8, nudged a little towards `towards`.
fn near(axis: usize, towards: usize, by: f32) -> Vec<f32> {
    let mut v = vec![0.0; 8];
    v[axis] = 1.0;
    v[towards] += by;
    v
}

/// Save embeddings for every pending item, from a function of its text.
async fn embed_all(store: &Store, f: impl Fn(&str) -> Vec<f32>) -> usize {
    let mut n = 0;
    loop {
        let pending = store.pending_embeddings(50).await.unwrap();
        if pending.is_empty() {
            return n;
        }
        for item in &pending {
            let v = f(&item.input());
            assert!(store.save_embedding(item, MODEL, Some(&v)).await.unwrap());
            n += 1;
        }
    }
}

async fn memories_round_trip_filter_page_and_delete(db: TestDb) {
    let (_, [(alice_user, alice)]) = db.admin_and_users(["alice"]).await;
    let first = db
        .store
        .create_memory(&alice, &memory("  Alice takes her tea without sugar  "))
        .await
        .unwrap();
    assert_eq!(
        first,
        Memory {
            id: first.id.clone(),
            text: "Alice takes her tea without sugar".into(),
            kind: MemoryKind::Fact,
            tags: vec![],
            importance: DEFAULT_IMPORTANCE,
            pinned: false,
            agent_id: None,
            source_session_id: None,
            owner: Owner::User {
                id: alice_user.id.clone()
            },
            embedded: false,
            created_at: first.created_at.clone(),
            updated_at: first.created_at.clone(),
            used_at: None,
        }
    );
    let session = db.store.create_session(&alice, None, "").await.unwrap();
    let second = db
        .store
        .create_memory(
            &alice,
            &CreateMemoryRequest {
                text: "Always answer in British English".into(),
                kind: Some(MemoryKind::Instruction),
                tags: vec!["Style".into(), "language".into()],
                importance: Some(5),
                pinned: true,
                source_session_id: Some(session.id.clone()),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(
        second.tags,
        vec!["language".to_string(), "style".to_string()]
    );
    assert_eq!(second.source_session_id, Some(session.id.clone()));
    let third = db
        .store
        .create_memory(&alice, &memory("The project deadline moved to March"))
        .await
        .unwrap();

    // Newest first; filters; pages.
    assert_eq!(
        memory_ids(&db.store, &alice, MemoryQuery::default()).await,
        vec![third.id.clone(), second.id.clone(), first.id.clone()]
    );
    let by = |q: MemoryQuery| memory_ids(&db.store, &alice, q);
    assert_eq!(
        by(MemoryQuery {
            kind: Some(MemoryKind::Instruction),
            ..Default::default()
        })
        .await,
        vec![second.id.clone()]
    );
    assert_eq!(
        by(MemoryQuery {
            tag: Some("STYLE".into()),
            ..Default::default()
        })
        .await,
        vec![second.id.clone()]
    );
    assert_eq!(
        by(MemoryQuery {
            pinned: Some(false),
            ..Default::default()
        })
        .await,
        vec![third.id.clone(), first.id.clone()]
    );
    assert_eq!(
        by(MemoryQuery {
            q: Some("tea sugar".into()),
            ..Default::default()
        })
        .await,
        vec![first.id.clone()]
    );
    let page = db
        .store
        .list_memories(
            &alice,
            &MemoryQuery {
                limit: Some(2),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(page.items.len(), 2);
    let rest = db
        .store
        .list_memories(
            &alice,
            &MemoryQuery {
                cursor: page.next_cursor.clone(),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(rest.items, vec![first.clone()]);
    assert_eq!(rest.next_cursor, None);

    // Partial update; a text change is a new text for search.
    let changed = db
        .store
        .update_memory(
            &alice,
            &first.id,
            &UpdateMemoryRequest {
                text: Some("Alice takes her coffee black".into()),
                importance: Some(4),
                pinned: Some(true),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(changed.text, "Alice takes her coffee black");
    assert_eq!((changed.importance, changed.pinned), (4, true));
    assert_eq!(changed.kind, MemoryKind::Fact);
    assert!(by(MemoryQuery {
        q: Some("tea".into()),
        ..Default::default()
    })
    .await
    .is_empty());
    assert_eq!(
        by(MemoryQuery {
            q: Some("coffee".into()),
            ..Default::default()
        })
        .await,
        vec![first.id.clone()]
    );

    // Recall marks what it returned as used.
    db.store
        .touch_memories(&alice, std::slice::from_ref(&first.id))
        .await
        .unwrap();
    assert!(db
        .store
        .get_memory(&alice, &first.id)
        .await
        .unwrap()
        .used_at
        .is_some());

    db.store.delete_memory(&alice, &first.id).await.unwrap();
    assert_eq!(
        err_kind(db.store.get_memory(&alice, &first.id).await),
        Kind::NotFound
    );
}

async fn memories_follow_owner_and_team_rules(db: TestDb) {
    let (_, [(_, alice), (_, bob), (_, carol)]) =
        db.admin_and_users(["alice", "bob", "carol"]).await;
    let private = db
        .store
        .create_memory(&alice, &memory("alice's secret"))
        .await
        .unwrap();
    assert_eq!(
        err_kind(db.store.get_memory(&bob, &private.id).await),
        Kind::NotFound
    );
    assert_eq!(
        err_kind(
            db.store
                .update_memory(&bob, &private.id, &UpdateMemoryRequest::default())
                .await
        ),
        Kind::NotFound
    );
    assert_eq!(
        err_kind(db.store.delete_memory(&bob, &private.id).await),
        Kind::NotFound
    );
    assert!(memory_ids(&db.store, &bob, MemoryQuery::default())
        .await
        .is_empty());
    db.store
        .touch_memories(&bob, std::slice::from_ref(&private.id))
        .await
        .unwrap();
    assert_eq!(
        db.store
            .get_memory(&alice, &private.id)
            .await
            .unwrap()
            .used_at,
        None
    );

    let team = db.crew(&alice).await;
    let shared = db
        .store
        .create_memory(
            &bob,
            &CreateMemoryRequest {
                team_id: Some(team.id.clone()),
                ..memory("the crew meets on Mondays")
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
        memory_ids(&db.store, &alice, MemoryQuery::default()).await,
        vec![shared.id.clone(), private.id.clone()]
    );
    db.store
        .update_memory(
            &alice,
            &shared.id,
            &UpdateMemoryRequest {
                text: Some("the crew meets on Tuesdays".into()),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(
        err_kind(db.store.delete_memory(&bob, &shared.id).await),
        Kind::Forbidden
    );
    assert_eq!(
        err_kind(db.store.get_memory(&carol, &shared.id).await),
        Kind::NotFound
    );
    assert_eq!(
        err_kind(
            db.store
                .create_memory(
                    &carol,
                    &CreateMemoryRequest {
                        team_id: Some(team.id.clone()),
                        ..memory("intruder")
                    }
                )
                .await
        ),
        Kind::NotFound
    );
    db.store.delete_memory(&alice, &shared.id).await.unwrap();
}

async fn pinned_memories_are_shared_or_for_one_agent(db: TestDb) {
    let (_, [(_, alice), (_, bob)]) = db.admin_and_users(["alice", "bob"]).await;
    let helper = db
        .store
        .create_agent(
            &alice,
            mosaic_store::NewAgent {
                name: "helper".into(),
                ..default_agent()
            },
        )
        .await
        .unwrap();
    let other = db
        .store
        .create_agent(
            &alice,
            mosaic_store::NewAgent {
                name: "other".into(),
                ..default_agent()
            },
        )
        .await
        .unwrap();
    let pin = |text: &str, importance: u8, agent: Option<&str>| CreateMemoryRequest {
        text: text.into(),
        importance: Some(importance),
        pinned: true,
        agent_id: agent.map(str::to_string),
        ..Default::default()
    };
    let everywhere = db
        .store
        .create_memory(&alice, &pin("call me Al", 3, None))
        .await
        .unwrap();
    let important = db
        .store
        .create_memory(&alice, &pin("never delete files", 5, None))
        .await
        .unwrap();
    let for_helper = db
        .store
        .create_memory(&alice, &pin("helper's own notes", 4, Some(&helper.id)))
        .await
        .unwrap();
    db.store
        .create_memory(&alice, &pin("other's notes", 4, Some(&other.id)))
        .await
        .unwrap();
    db.store
        .create_memory(&alice, &memory("not pinned"))
        .await
        .unwrap();
    db.store
        .create_memory(&bob, &pin("bob's pin", 5, None))
        .await
        .unwrap();

    let ids = |ms: Vec<Memory>| ms.into_iter().map(|m| m.id).collect::<Vec<_>>();
    assert_eq!(
        ids(db.store.pinned_memories(&alice, &helper.id).await.unwrap()),
        vec![
            important.id.clone(),
            for_helper.id.clone(),
            everywhere.id.clone()
        ]
    );
    // Unpinned ones leave the context; pins are capped per owner.
    db.store
        .update_memory(
            &alice,
            &important.id,
            &UpdateMemoryRequest {
                pinned: Some(false),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(
        ids(db.store.pinned_memories(&alice, &helper.id).await.unwrap()),
        vec![for_helper.id.clone(), everywhere.id.clone()]
    );
    let pinned_now = 3;
    for i in 0..(MAX_PINNED - pinned_now) {
        db.store
            .create_memory(&alice, &pin(&format!("pin {i}"), 1, None))
            .await
            .unwrap();
    }
    assert_eq!(
        err_kind(
            db.store
                .create_memory(&alice, &pin("one too many", 1, None))
                .await
        ),
        Kind::Invalid
    );
    assert_eq!(
        err_kind(
            db.store
                .update_memory(
                    &alice,
                    &important.id,
                    &UpdateMemoryRequest {
                        pinned: Some(true),
                        ..Default::default()
                    }
                )
                .await
        ),
        Kind::Invalid
    );
    // Re-saving an already pinned memory is not a new pin.
    db.store
        .update_memory(
            &alice,
            &everywhere.id,
            &UpdateMemoryRequest {
                pinned: Some(true),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(
        db.store
            .pinned_memories(&alice, &helper.id)
            .await
            .unwrap()
            .len(),
        MAX_PINNED - 1
    );
}

async fn memory_sizes_importance_and_references_are_checked(db: TestDb) {
    let (_, [(_, alice), (_, bob)]) = db.admin_and_users(["alice", "bob"]).await;
    for bad in [
        memory("   "),
        memory(&"x".repeat(MAX_MEMORY_CHARS + 1)),
        CreateMemoryRequest {
            importance: Some(0),
            ..memory("ok")
        },
        CreateMemoryRequest {
            importance: Some(6),
            ..memory("ok")
        },
        CreateMemoryRequest {
            tags: vec!["a,b".into()],
            ..memory("ok")
        },
    ] {
        assert_eq!(
            err_kind(db.store.create_memory(&alice, &bad).await),
            Kind::Invalid
        );
    }
    db.store
        .create_memory(&alice, &memory(&"é".repeat(MAX_MEMORY_CHARS)))
        .await
        .unwrap();
    // Agents and sessions must be the caller's own.
    let bobs_session = db.store.create_session(&bob, None, "").await.unwrap();
    let bobs_agent = db
        .store
        .create_agent(
            &bob,
            mosaic_store::NewAgent {
                name: "bobs".into(),
                ..default_agent()
            },
        )
        .await
        .unwrap();
    for bad in [
        CreateMemoryRequest {
            source_session_id: Some(bobs_session.id.clone()),
            ..memory("ok")
        },
        CreateMemoryRequest {
            agent_id: Some(bobs_agent.id.clone()),
            ..memory("ok")
        },
        CreateMemoryRequest {
            agent_id: Some("no-such-agent".into()),
            ..memory("ok")
        },
    ] {
        assert_eq!(
            err_kind(db.store.create_memory(&alice, &bad).await),
            Kind::Conflict
        );
    }
    let mine = db.store.create_memory(&alice, &memory("ok")).await.unwrap();
    assert_eq!(
        err_kind(
            db.store
                .update_memory(
                    &alice,
                    &mine.id,
                    &UpdateMemoryRequest {
                        agent_id: Some(Some(bobs_agent.id.clone())),
                        ..Default::default()
                    }
                )
                .await
        ),
        Kind::Conflict
    );
}

async fn embeddings_are_pending_until_saved_and_again_after_text_changes(db: TestDb) {
    let (_, [(_, alice), (_, bob)]) = db.admin_and_users(["alice", "bob"]).await;
    let t = db
        .store
        .create_task(&alice, &task_text("Water the plants", "every second day"))
        .await
        .unwrap();
    let n = db
        .store
        .create_note(&bob, &note_text("Recipes", "bread"))
        .await
        .unwrap();
    let m = db
        .store
        .create_memory(&alice, &memory("likes basil"))
        .await
        .unwrap();
    // The embedder sees every tenant's pending items, with the text to embed.
    let pending = db.store.pending_embeddings(10).await.unwrap();
    let mut seen: Vec<(BrainKind, String, String)> = pending
        .iter()
        .map(|p| (p.kind, p.id.clone(), p.input()))
        .collect();
    seen.sort_by_key(|(kind, _, _)| match kind {
        BrainKind::Task => 0,
        BrainKind::Note => 1,
        BrainKind::Memory => 2,
    });
    assert_eq!(
        seen,
        vec![
            (
                BrainKind::Task,
                t.id.clone(),
                "Water the plants\n\nevery second day".into()
            ),
            (BrainKind::Note, n.id.clone(), "Recipes\n\nbread".into()),
            (BrainKind::Memory, m.id.clone(), "likes basil".into()),
        ]
    );
    assert_eq!(db.store.pending_embeddings(1).await.unwrap().len(), 1);

    let stale: Vec<PendingText> = pending.clone();
    assert_eq!(embed_all(&db.store, |_| near(0, 1, 0.1)).await, 3);
    assert!(db.store.pending_embeddings(10).await.unwrap().is_empty());
    assert!(db.store.get_memory(&alice, &m.id).await.unwrap().embedded);
    // A second save of the same item does not land (somebody was first).
    assert!(!db
        .store
        .save_embedding(&stale[0], MODEL, Some(&near(0, 1, 0.1)))
        .await
        .unwrap());

    // Text changes make items pending again; status changes do not.
    db.store
        .update_task(
            &alice,
            &t.id,
            &UpdateTaskRequest {
                status: Some(mosaic_api::TaskStatus::Done),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert!(db.store.pending_embeddings(10).await.unwrap().is_empty());
    db.store
        .update_note(
            &bob,
            &n.id,
            &UpdateNoteRequest {
                body: Some("bread and soup".into()),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    db.store
        .update_memory(
            &alice,
            &m.id,
            &UpdateMemoryRequest {
                text: Some("likes basil and mint".into()),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert!(!db.store.get_memory(&alice, &m.id).await.unwrap().embedded);
    let pending = db.store.pending_embeddings(10).await.unwrap();
    assert_eq!(pending.len(), 2);
    // An embedding of the old text does not land on the new one.
    let old_memory = stale.iter().find(|p| p.kind == BrainKind::Memory).unwrap();
    assert!(!db
        .store
        .save_embedding(old_memory, MODEL, Some(&near(0, 1, 0.1)))
        .await
        .unwrap());
    // A text the model refused is not offered again until it changes.
    let note_now = pending.iter().find(|p| p.kind == BrainKind::Note).unwrap();
    assert!(db
        .store
        .save_embedding(note_now, MODEL, None)
        .await
        .unwrap());
    assert_eq!(db.store.pending_embeddings(10).await.unwrap().len(), 1);

    // Another model: everything of the old one is embedded again.
    embed_all(&db.store, |_| near(0, 1, 0.1)).await;
    assert_eq!(db.store.retire_embeddings(MODEL).await.unwrap(), 0);
    assert_eq!(db.store.retire_embeddings("new-model").await.unwrap(), 3);
    assert_eq!(db.store.pending_embeddings(10).await.unwrap().len(), 3);
}

async fn hybrid_search_fuses_words_and_meaning_within_the_callers_items(db: TestDb) {
    let (_, [(_, alice), (_, bob)]) = db.admin_and_users(["alice", "bob"]).await;
    // Axis 0 is "drinks", axis 1 "gardening", axis 2 "travel".
    let tea = db
        .store
        .create_memory(&alice, &memory("Alice prefers green tea in the morning"))
        .await
        .unwrap();
    let garden = db
        .store
        .create_task(
            &alice,
            &task_text(
                "Plant tomatoes",
                "after the last frost; water in the morning",
            ),
        )
        .await
        .unwrap();
    let trip = db
        .store
        .create_note(&alice, &note_text("Lisbon trip", "flights booked"))
        .await
        .unwrap();
    let bobs = db
        .store
        .create_memory(&bob, &memory("Bob drinks coffee, lots of it"))
        .await
        .unwrap();
    embed_all(&db.store, |text| {
        if text.contains("tea") {
            near(0, 1, 0.05)
        } else if text.contains("coffee") {
            near(0, 1, 0.0)
        } else if text.contains("tomatoes") {
            near(1, 0, 0.3)
        } else {
            near(2, 1, 0.1)
        }
    })
    .await;

    // "beverage" is in no text: only meaning finds the tea memory, never Bob's.
    let drinks = QueryVector {
        model: MODEL.into(),
        values: near(0, 1, 0.0),
    };
    let hits = db
        .store
        .search_hybrid(&alice, "beverage", &[], 10, Some(&drinks))
        .await
        .unwrap();
    let ids: Vec<&str> = hits.iter().map(|h| h.id.as_str()).collect();
    assert_eq!(ids[0], tea.id);
    assert!(!ids.contains(&bobs.id.as_str()), "{ids:?}");
    assert_eq!(hits[0].kind, BrainKind::Memory);
    assert_eq!(hits[0].title, "Alice prefers green tea in the morning");
    assert!(hits[0].snippet.contains("green tea"));
    assert_eq!(hits[0].scores.lexical_rank, None);
    assert_eq!(hits[0].scores.vector_rank, Some(1));
    let similarity = hits[0].scores.similarity.unwrap();
    assert!((similarity - 0.9988).abs() < 0.001, "{similarity}");
    assert!((hits[0].score - 1.0 / 61.0).abs() < 1e-9);
    // Every visible embedded item is a neighbour, ranked by similarity.
    assert_eq!(
        ids,
        vec![tea.id.as_str(), garden.id.as_str(), trip.id.as_str()]
    );

    // Found by both words and meaning beats found by one.
    let hits = db
        .store
        .search_hybrid(&alice, "morning", &[], 10, Some(&drinks))
        .await
        .unwrap();
    assert_eq!(hits[0].id, tea.id);
    assert_eq!(hits[0].scores.lexical_rank, Some(1));
    assert_eq!(hits[0].scores.vector_rank, Some(1));
    assert!((hits[0].score - 2.0 / 61.0).abs() < 1e-9);
    assert_eq!(hits[1].id, garden.id);
    assert!(hits[1].scores.lexical_rank.is_some() && hits[1].scores.vector_rank.is_some());

    // Kinds and limits apply to both lists.
    let notes_only = db
        .store
        .search_hybrid(&alice, "beverage", &[BrainKind::Note], 10, Some(&drinks))
        .await
        .unwrap();
    assert_eq!(
        notes_only.iter().map(|h| h.id.clone()).collect::<Vec<_>>(),
        vec![trip.id.clone()]
    );
    assert_eq!(
        db.store
            .search_hybrid(&alice, "beverage", &[], 1, Some(&drinks))
            .await
            .unwrap()
            .len(),
        1
    );

    // Bob's search by meaning finds his own memory only.
    let hits = db
        .store
        .search_hybrid(&bob, "beverage", &[], 10, Some(&drinks))
        .await
        .unwrap();
    assert_eq!(
        hits.iter().map(|h| h.id.clone()).collect::<Vec<_>>(),
        vec![bobs.id.clone()]
    );

    // Deleted and re-texted items leave the vector list at once.
    db.store.delete_memory(&alice, &tea.id).await.unwrap();
    db.store
        .update_task(
            &alice,
            &garden.id,
            &UpdateTaskRequest {
                title: Some("Plant beans".into()),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    let hits = db
        .store
        .search_hybrid(&alice, "beverage", &[], 10, Some(&drinks))
        .await
        .unwrap();
    assert_eq!(
        hits.iter().map(|h| h.id.clone()).collect::<Vec<_>>(),
        vec![trip.id.clone()]
    );
}

async fn lexical_search_covers_memories(db: TestDb) {
    let (_, [(_, alice), (_, bob)]) = db.admin_and_users(["alice", "bob"]).await;
    let m = db
        .store
        .create_memory(&alice, &memory("The wifi password is on the fridge"))
        .await
        .unwrap();
    db.store
        .create_memory(&bob, &memory("Bob's wifi password is elsewhere"))
        .await
        .unwrap();
    let hits = db
        .store
        .search_brain(&alice, "WIFI fridge", &[], 10)
        .await
        .unwrap();
    assert_eq!(hits.len(), 1);
    assert_eq!(
        (hits[0].kind, hits[0].id.clone()),
        (BrainKind::Memory, m.id)
    );
    assert!(hits[0].snippet.contains("«fridge»"), "{}", hits[0].snippet);
    assert_eq!(hits[0].scores.lexical_rank, Some(1));
    assert!(db
        .store
        .search_brain(&alice, "wifi", &[BrainKind::Task, BrainKind::Note], 10)
        .await
        .unwrap()
        .is_empty());
}

async fn vectors_of_another_model_or_size_are_ignored(db: TestDb) {
    let (_, [(_, alice)]) = db.admin_and_users(["alice"]).await;
    let m = db
        .store
        .create_memory(&alice, &memory("something"))
        .await
        .unwrap();
    embed_all(&db.store, |_| near(0, 1, 0.0)).await;
    for q in [
        QueryVector {
            model: "another".into(),
            values: near(0, 1, 0.0),
        },
        QueryVector {
            model: MODEL.into(),
            values: vec![1.0, 0.0, 0.0],
        },
    ] {
        assert!(db
            .store
            .search_hybrid(&alice, "unrelated", &[], 10, Some(&q))
            .await
            .unwrap()
            .is_empty());
    }
    let q = QueryVector {
        model: MODEL.into(),
        values: near(0, 1, 0.0),
    };
    assert_eq!(
        db.store
            .search_hybrid(&alice, "unrelated", &[], 10, Some(&q))
            .await
            .unwrap()
            .into_iter()
            .map(|h| h.id)
            .collect::<Vec<_>>(),
        vec![m.id]
    );
}

/// PostgreSQL: memories are hidden from other users by the database itself, a memory
/// cannot name another user's agent, and only the gateway's own (system) role reads
/// every tenant's text for the embedder.
pub(crate) async fn row_level_security_guards_memories(db: TestDb) {
    use sqlx::Connection;
    let (_, [(_, alice), (_, bob)]) = db.admin_and_users(["alice", "bob"]).await;
    let agent = db
        .store
        .create_agent(
            &alice,
            mosaic_store::NewAgent {
                name: "helper".into(),
                ..default_agent()
            },
        )
        .await
        .unwrap();
    db.store
        .create_memory(&alice, &memory("alice's"))
        .await
        .unwrap();

    let mut conn = crate::rls::connect_as_store_role(&db).await;
    let mut tx = crate::rls::acting_as(&mut conn, &bob, &[]).await;
    let count = "SELECT count(*) FROM memories";
    let n: i64 = sqlx::query_scalar(count).fetch_one(&mut *tx).await.unwrap();
    assert_eq!(n, 0, "Alice's memories as Bob");
    let changed = sqlx::query("UPDATE memories SET embedding_model = 'x'")
        .execute(&mut *tx)
        .await
        .unwrap()
        .rows_affected();
    assert_eq!(changed, 0);
    let insert = "INSERT INTO memories (id, text, kind, tags, importance, agent_id, \
         owner_user_id, created_at, updated_at) VALUES ($1, 'x', 'fact', '', 3, $2, $3, 0, 0)";
    let refused = sqlx::query(insert)
        .bind("m1")
        .bind(&agent.id)
        .bind(bob.local_user().unwrap())
        .execute(&mut *tx)
        .await
        .expect_err("a memory naming another user's agent");
    assert!(
        refused.to_string().contains("row-level security"),
        "{refused}"
    );
    drop(tx);

    // The embedder's role sees (and may embed) everyone's; without settings, nobody's.
    let mut tx = conn.begin().await.unwrap();
    let n: i64 = sqlx::query_scalar(count).fetch_one(&mut *tx).await.unwrap();
    assert_eq!(n, 0, "without settings");
    sqlx::query("SELECT set_config('mosaic.role', 'system', true)")
        .execute(&mut *tx)
        .await
        .unwrap();
    let n: i64 = sqlx::query_scalar(count).fetch_one(&mut *tx).await.unwrap();
    assert_eq!(n, 1, "as the gateway");
}

async fn common_words_rank_the_newest_matches_and_rare_ones_find_old_items(db: TestDb) {
    let (_, [(_, alice), (_, bob)]) = db.admin_and_users(["alice", "bob"]).await;
    // More matches of "common" than a lexical search ranks (300), the oldest marked.
    let oldest = db
        .store
        .create_memory(&alice, &memory("common word, and the marker"))
        .await
        .unwrap();
    for i in 0..310 {
        db.store
            .create_memory(&alice, &memory(&format!("common filler {i}")))
            .await
            .unwrap();
    }
    // Bob's newer matches take no room from Alice's.
    for i in 0..20 {
        db.store
            .create_memory(&bob, &memory(&format!("common bob {i}")))
            .await
            .unwrap();
    }
    let hits = db
        .store
        .search_brain(&alice, "common", &[BrainKind::Memory], 10)
        .await
        .unwrap();
    assert_eq!(hits.len(), 10);
    assert!(
        hits.iter().all(|h| h.title.starts_with("common filler")),
        "{hits:?}"
    );
    let hits = db
        .store
        .search_brain(&alice, "common marker", &[], 10)
        .await
        .unwrap();
    assert_eq!(
        hits.into_iter().map(|h| h.id).collect::<Vec<_>>(),
        vec![oldest.id]
    );
    let bobs = db
        .store
        .search_brain(&bob, "common", &[], 50)
        .await
        .unwrap();
    assert_eq!(bobs.len(), 20);
}

async fn team_items_are_found_by_their_members_only(db: TestDb) {
    let (_, [(_, alice), (bob_user, bob), (_, carol)]) =
        db.admin_and_users(["alice", "bob", "carol"]).await;
    let team = db.crew(&alice).await;
    let in_team = Some(team.id.clone());
    let task = db
        .store
        .create_task(
            &alice,
            &CreateTaskRequest {
                team_id: in_team.clone(),
                ..task_text("quince harvest", "")
            },
        )
        .await
        .unwrap();
    let note = db
        .store
        .create_note(
            &alice,
            &CreateNoteRequest {
                team_id: in_team.clone(),
                ..note_text("recipes", "quince jam")
            },
        )
        .await
        .unwrap();
    let shared = db
        .store
        .create_memory(
            &alice,
            &CreateMemoryRequest {
                team_id: in_team,
                ..memory("the quince tree is by the gate")
            },
        )
        .await
        .unwrap();
    let own = db
        .store
        .create_memory(&bob, &memory("quince paste for bob"))
        .await
        .unwrap();
    db.store
        .create_memory(&alice, &memory("alice's own quince"))
        .await
        .unwrap();

    let found = |p: Principal| {
        let store = db.store.clone();
        async move {
            let mut ids: Vec<String> = store
                .search_brain(&p, "quince", &[], 50)
                .await
                .unwrap()
                .into_iter()
                .map(|h| h.id)
                .collect();
            ids.sort();
            ids
        }
    };
    let mut expected = vec![task.id, note.id, shared.id, own.id.clone()];
    expected.sort();
    assert_eq!(found(bob.clone()).await, expected, "a member");
    assert_eq!(found(carol).await, Vec::<String>::new(), "not a member");
    // Out of the team, out of its items.
    db.store
        .remove_team_member(&alice, &team.id, &bob_user.id)
        .await
        .unwrap();
    assert_eq!(found(bob).await, vec![own.id], "a former member");
}

/// A hybrid search reads words and meaning on two connections at once. Sixteen of them
/// on a pool of two once froze: each held one connection and waited for a second.
async fn many_hybrid_searches_at_once_on_a_small_pool_all_finish(db: TestDb) {
    let (_, [(_, alice)]) = db.admin_and_users(["alice"]).await;
    db.store
        .create_memory(&alice, &memory("Alice prefers green tea in the morning"))
        .await
        .unwrap();
    embed_all(&db.store, |_| near(0, 1, 0.05)).await;
    let mut options = mosaic_store::StoreOptions::new(db.url.clone());
    options.max_connections = 2;
    let small = Store::open(&options).await.unwrap();
    let searches = (0..16).map(|_| {
        let (store, alice) = (small.clone(), alice.clone());
        tokio::spawn(async move {
            let drinks = QueryVector {
                model: MODEL.into(),
                values: near(0, 1, 0.0),
            };
            store
                .search_hybrid(&alice, "tea", &[], 10, Some(&drinks))
                .await
                .map(|hits| hits.len())
        })
    });
    let all = futures_util::future::join_all(searches);
    let found = tokio::time::timeout(std::time::Duration::from_secs(20), all)
        .await
        .expect("every search finished within 20 s");
    for f in found {
        assert_eq!(f.unwrap().unwrap(), 1);
    }
    small.close().await;
}
