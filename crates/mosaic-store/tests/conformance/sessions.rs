//! Sessions: append-only entry trees with branches and an active leaf, search, and a
//! JSONL export that imports back unchanged.

use mosaic_api::{EntryBody, SessionQuery};
use mosaic_store::Parent;
use mosaic_test_support::engines;
use pretty_assertions::assert_eq;

use crate::support::{err_kind, Kind, TestDb};

engines!(
    entries_append_under_the_active_leaf_and_an_edit_branches,
    sessions_are_found_by_title_and_content_and_filtered_by_archive,
    an_export_imports_back_unchanged,
    malformed_imports_are_refused_whole,
    other_users_sessions_are_not_found,
);

fn user(text: &str) -> EntryBody {
    EntryBody::User { text: text.into() }
}

fn assistant(text: &str) -> EntryBody {
    EntryBody::Assistant {
        text: text.into(),
        thinking: String::new(),
        model: Some("local/tiny".into()),
        stop_reason: Some("stop".into()),
        reasoning: Vec::new(),
    }
}

fn texts(entries: &[mosaic_api::Entry]) -> Vec<String> {
    entries.iter().map(|e| e.body.searchable_text()).collect()
}

async fn entries_append_under_the_active_leaf_and_an_edit_branches(db: TestDb) {
    let (_, [(_, alice)]) = db.admin_and_users(["alice"]).await;
    let s = db
        .store
        .create_session(&alice, None, "  trip  ")
        .await
        .unwrap();
    assert_eq!(s.title, "trip");
    assert!(s.agent_id.is_some(), "the default agent");
    let q1 = db
        .store
        .append_entry(&alice, &s.id, Parent::ActiveLeaf, user("where to?"))
        .await
        .unwrap();
    let a1 = db
        .store
        .append_entry(&alice, &s.id, Parent::ActiveLeaf, assistant("Lisbon"))
        .await
        .unwrap();
    assert_eq!(a1.parent_id.as_deref(), Some(q1.id.as_str()));
    // Retrying the answer: a sibling of a1 under q1, which becomes the active branch.
    let a2 = db
        .store
        .append_entry(&alice, &s.id, Parent::Entry(&q1.id), assistant("Porto"))
        .await
        .unwrap();
    let path = db.store.session_path(&alice, &s.id, None).await.unwrap();
    assert_eq!(texts(&path), vec!["where to?", "Porto"]);
    // Editing the first question: a new root.
    let q2 = db
        .store
        .append_entry(&alice, &s.id, Parent::Root, user("where in May?"))
        .await
        .unwrap();
    assert_eq!(q2.parent_id, None);
    db.store
        .set_active_leaf(&alice, &s.id, &a2.id)
        .await
        .unwrap();
    let branches = db.store.session_branches(&alice, &s.id).await.unwrap();
    let leaves: Vec<(String, u32, bool)> = branches
        .iter()
        .map(|b| (b.leaf.body.searchable_text(), b.length, b.active))
        .collect();
    assert!(
        leaves.contains(&("Lisbon".to_string(), 2, false)),
        "{leaves:?}"
    );
    assert!(
        leaves.contains(&("Porto".to_string(), 2, true)),
        "{leaves:?}"
    );
    assert!(
        leaves.contains(&("where in May?".to_string(), 1, false)),
        "{leaves:?}"
    );
    // Switch back; the other branch is untouched.
    let switched = db
        .store
        .set_active_leaf(&alice, &s.id, &a1.id)
        .await
        .unwrap();
    assert_eq!(switched.active_leaf_id.as_deref(), Some(a1.id.as_str()));
    assert_eq!(
        texts(&db.store.session_path(&alice, &s.id, None).await.unwrap()),
        vec!["where to?", "Lisbon"]
    );
    assert_eq!(
        texts(
            &db.store
                .session_path(&alice, &s.id, Some(&a2.id))
                .await
                .unwrap()
        ),
        vec!["where to?", "Porto"]
    );
    assert_eq!(
        err_kind(
            db.store
                .set_active_leaf(&alice, &s.id, "no-such-entry")
                .await
        ),
        Kind::NotFound
    );
    assert_eq!(
        err_kind(
            db.store
                .append_entry(&alice, &s.id, Parent::Entry("no-such-entry"), user("x"))
                .await
        ),
        Kind::NotFound
    );
}

async fn sessions_are_found_by_title_and_content_and_filtered_by_archive(db: TestDb) {
    let (_, [(_, alice)]) = db.admin_and_users(["alice"]).await;
    let garden = db
        .store
        .create_session(&alice, None, "Garden plans")
        .await
        .unwrap();
    let taxes = db
        .store
        .create_session(&alice, None, "Taxes")
        .await
        .unwrap();
    db.store
        .append_entry(
            &alice,
            &taxes.id,
            Parent::ActiveLeaf,
            user("Which FORMS do I need? 100% sure"),
        )
        .await
        .unwrap();
    let find = |q: &str| SessionQuery {
        q: Some(q.into()),
        ..SessionQuery::default()
    };
    let ids = |page: mosaic_api::Page<mosaic_api::Session>| {
        page.items.into_iter().map(|s| s.id).collect::<Vec<_>>()
    };
    assert_eq!(
        ids(db
            .store
            .list_sessions(&alice, &find("garden"))
            .await
            .unwrap()),
        vec![garden.id.clone()]
    );
    assert_eq!(
        ids(db
            .store
            .list_sessions(&alice, &find("forms"))
            .await
            .unwrap()),
        vec![taxes.id.clone()]
    );
    // Case folds beyond ASCII, in titles as in entries.
    let umlaut = db
        .store
        .create_session(&alice, None, "Über Ärger")
        .await
        .unwrap();
    assert_eq!(
        ids(db
            .store
            .list_sessions(&alice, &find("über ärger"))
            .await
            .unwrap()),
        vec![umlaut.id.clone()]
    );
    db.store.delete_session(&alice, &umlaut.id).await.unwrap();
    // LIKE wildcards in the query are literal.
    assert_eq!(
        ids(db.store.list_sessions(&alice, &find("100%")).await.unwrap()),
        vec![taxes.id.clone()]
    );
    assert_eq!(
        ids(db.store.list_sessions(&alice, &find("_")).await.unwrap()),
        Vec::<String>::new()
    );
    // Newest first, page by page.
    let first = db
        .store
        .list_sessions(
            &alice,
            &SessionQuery {
                limit: Some(1),
                ..SessionQuery::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(ids(first.clone()), vec![taxes.id.clone()]);
    let second = db
        .store
        .list_sessions(
            &alice,
            &SessionQuery {
                limit: Some(1),
                cursor: first.next_cursor.clone(),
                ..SessionQuery::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(ids(second), vec![garden.id.clone()]);
    // Archived sessions leave the default list and show in the archive.
    db.store
        .update_session(&alice, &garden.id, Some("Garden 2027"), Some(true))
        .await
        .unwrap();
    assert_eq!(
        ids(db
            .store
            .list_sessions(&alice, &SessionQuery::default())
            .await
            .unwrap()),
        vec![taxes.id.clone()]
    );
    let archive = db
        .store
        .list_sessions(
            &alice,
            &SessionQuery {
                archived: Some(true),
                ..SessionQuery::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(archive.items[0].title, "Garden 2027");
    db.store.delete_session(&alice, &garden.id).await.unwrap();
    assert_eq!(
        err_kind(db.store.get_session(&alice, &garden.id).await),
        Kind::NotFound
    );
}

async fn an_export_imports_back_unchanged(db: TestDb) {
    let (_, [(_, alice)]) = db.admin_and_users(["alice"]).await;
    let s = db
        .store
        .create_session(&alice, None, "round trip")
        .await
        .unwrap();
    let q = db
        .store
        .append_entry(&alice, &s.id, Parent::ActiveLeaf, user("time?"))
        .await
        .unwrap();
    db.store
        .append_entry(
            &alice,
            &s.id,
            Parent::ActiveLeaf,
            EntryBody::ToolCall {
                call_id: "c1".into(),
                name: "current_time".into(),
                arguments: "{}".into(),
            },
        )
        .await
        .unwrap();
    db.store
        .append_entry(
            &alice,
            &s.id,
            Parent::ActiveLeaf,
            EntryBody::ToolResult {
                call_id: "c1".into(),
                output: "12:00".into(),
                is_error: false,
            },
        )
        .await
        .unwrap();
    db.store
        .append_entry(&alice, &s.id, Parent::ActiveLeaf, assistant("It is noon."))
        .await
        .unwrap();
    db.store
        .append_entry(
            &alice,
            &s.id,
            Parent::Entry(&q.id),
            assistant("Noon, I think"),
        )
        .await
        .unwrap();
    let exported = db.store.export_session(&alice, &s.id).await.unwrap();
    assert_eq!(exported.lines().count(), 6);
    let imported = db.store.import_session(&alice, &exported).await.unwrap();
    assert_ne!(imported.id, s.id);
    assert_eq!(
        db.store.export_session(&alice, &imported.id).await.unwrap(),
        exported
    );
    assert_eq!(
        db.store
            .session_branches(&alice, &imported.id)
            .await
            .unwrap(),
        db.store.session_branches(&alice, &s.id).await.unwrap()
    );
}

async fn malformed_imports_are_refused_whole(db: TestDb) {
    let (_, [(_, alice)]) = db.admin_and_users(["alice"]).await;
    let header = r#"{"format":"mosaic.session","version":1,"title":"t","agent":null,"active_leaf_id":null,"archived":false,"created_at":"2026-01-01T00:00:00.000Z"}"#;
    let entry = |id: &str, parent: Option<&str>| {
        serde_json::json!({"id": id, "parent_id": parent, "created_at": "2026-01-01T00:00:01.000Z",
            "body": {"type": "user", "text": "hi"}})
        .to_string()
    };
    for (name, text) in [
        ("empty", String::new()),
        ("not a header", entry("a", None)),
        ("wrong format", header.replace("mosaic.session", "other")),
        ("orphan", format!("{header}\n{}", entry("b", Some("a")))),
        (
            "repeated id",
            format!("{header}\n{}\n{}", entry("a", None), entry("a", None)),
        ),
        ("garbage line", format!("{header}\n{{nope")),
        (
            "leaf missing",
            header.replace("\"active_leaf_id\":null", "\"active_leaf_id\":\"zz\""),
        ),
    ] {
        assert_eq!(
            err_kind(db.store.import_session(&alice, &text).await),
            Kind::Invalid,
            "{name}"
        );
    }
    assert!(db
        .store
        .list_sessions(&alice, &SessionQuery::default())
        .await
        .unwrap()
        .items
        .is_empty());
}

async fn other_users_sessions_are_not_found(db: TestDb) {
    let (_, [(_, alice), (_, bob)]) = db.admin_and_users(["alice", "bob"]).await;
    let s = db
        .store
        .create_session(&alice, None, "private")
        .await
        .unwrap();
    let e = db
        .store
        .append_entry(&alice, &s.id, Parent::ActiveLeaf, user("secret"))
        .await
        .unwrap();
    assert_eq!(
        err_kind(db.store.get_session(&bob, &s.id).await),
        Kind::NotFound
    );
    assert_eq!(
        err_kind(db.store.session_path(&bob, &s.id, None).await),
        Kind::NotFound
    );
    assert_eq!(
        err_kind(db.store.session_branches(&bob, &s.id).await),
        Kind::NotFound
    );
    assert_eq!(
        err_kind(db.store.set_active_leaf(&bob, &s.id, &e.id).await),
        Kind::NotFound
    );
    assert_eq!(
        err_kind(
            db.store
                .append_entry(&bob, &s.id, Parent::ActiveLeaf, user("x"))
                .await
        ),
        Kind::NotFound
    );
    assert_eq!(
        err_kind(
            db.store
                .update_session(&bob, &s.id, Some("mine"), None)
                .await
        ),
        Kind::NotFound
    );
    assert_eq!(
        err_kind(db.store.export_session(&bob, &s.id).await),
        Kind::NotFound
    );
    assert_eq!(
        err_kind(db.store.delete_session(&bob, &s.id).await),
        Kind::NotFound
    );
    let found = db
        .store
        .list_sessions(
            &bob,
            &SessionQuery {
                q: Some("secret".into()),
                ..SessionQuery::default()
            },
        )
        .await
        .unwrap();
    assert!(found.items.is_empty());
    // Nor can Bob start a session with Alice's agent.
    assert_eq!(
        err_kind(
            db.store
                .create_session(&bob, s.agent_id.as_deref(), "x")
                .await
        ),
        Kind::NotFound
    );
}
