//! Sessions over HTTP: listing and searching, archiving, pages, reading branches,
//! switching the active leaf, and tenancy. Entries are appended through the store
//! directly (as runs will), since no route writes them; export and import are in
//! `session_export.rs`.

use mosaic_api::EntryBody;
use mosaic_store::{Parent, Principal};
use mosaic_test_support::engines;
use pretty_assertions::assert_eq;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use crate::support::TestGateway;

engines!(
    sessions_are_listed_newest_first_and_found_by_title_or_entry_text,
    branches_are_read_listed_and_switched
);
/// A user of a fresh gateway, with a token and the principal the store knows them by.
pub(crate) struct Caller {
    pub(crate) token: String,
    pub(crate) principal: Principal,
}

pub(crate) async fn caller(gw: &TestGateway) -> Caller {
    let root = gw.admin("root").await;
    let (id, token) = gw.user(&root, "alice").await;
    Caller {
        token,
        principal: Principal::user(id, false),
    }
}

pub(crate) async fn create(gw: &TestGateway, who: &Caller, title: &str) -> Value {
    let (s, session) = gw
        .call(
            Method::POST,
            "/api/v1/sessions",
            Some(&who.token),
            Some(json!({"title": title})),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{session}");
    session
}

/// Append an entry; answers its id.
pub(crate) async fn append(
    gw: &TestGateway,
    who: &Caller,
    session: &str,
    parent: Parent<'_>,
    body: EntryBody,
) -> String {
    gw.store()
        .append_entry(&who.principal, session, parent, body)
        .await
        .unwrap()
        .id
}

pub(crate) fn user(text: &str) -> EntryBody {
    EntryBody::User { text: text.into() }
}

pub(crate) fn assistant(text: &str) -> EntryBody {
    EntryBody::Assistant {
        text: text.into(),
        thinking: String::new(),
        model: Some("local/scripted".into()),
        stop_reason: Some("stop".into()),
        reasoning: Vec::new(),
    }
}

pub(crate) async fn get(gw: &TestGateway, who: &Caller, path: &str) -> Value {
    let (s, body) = gw.call(Method::GET, path, Some(&who.token), None).await;
    assert_eq!(s, StatusCode::OK, "GET {path}: {body}");
    body
}

pub(crate) fn titles(page: &Value) -> Vec<String> {
    page["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["title"].as_str().unwrap().to_string())
        .collect()
}

pub(crate) fn entry_ids(list: &Value) -> Vec<String> {
    list["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["id"].as_str().unwrap().to_string())
        .collect()
}

async fn sessions_are_listed_newest_first_and_found_by_title_or_entry_text(gw: TestGateway) {
    let alice = caller(&gw).await;
    create(&gw, &alice, "Rust lifetimes").await;
    let garden = create(&gw, &alice, "Gardening plans").await;
    create(&gw, &alice, "Trip to Oslo").await;
    create(&gw, &alice, "Ärger über Ölpreise").await;
    let garden_id = garden["id"].as_str().unwrap();
    append(
        &gw,
        &alice,
        garden_id,
        Parent::ActiveLeaf,
        user("How deep do TULIP bulbs go?"),
    )
    .await;
    append(
        &gw,
        &alice,
        garden_id,
        Parent::ActiveLeaf,
        assistant("About 15 cm, pointy end up."),
    )
    .await;

    let all = get(&gw, &alice, "/api/v1/sessions").await;
    assert_eq!(
        titles(&all),
        [
            "Ärger über Ölpreise",
            "Trip to Oslo",
            "Gardening plans",
            "Rust lifetimes"
        ]
    );
    for (q, expected) in [
        // Typed as the title has it, non-ASCII capitals included.
        ("Ärger über", vec!["Ärger über Ölpreise"]),
        ("rust", vec!["Rust lifetimes"]),
        ("PLANS", vec!["Gardening plans"]),
        ("tulip", vec!["Gardening plans"]),
        ("pointy end", vec!["Gardening plans"]),
        ("o", vec!["Trip to Oslo", "Gardening plans"]),
        ("%", vec![]),
        ("nothing like this", vec![]),
    ] {
        let page = get(
            &gw,
            &alice,
            &format!(
                "/api/v1/sessions?q={}",
                q.replace(' ', "+").replace('%', "%25")
            ),
        )
        .await;
        assert_eq!(titles(&page), expected, "q={q}");
    }
}

#[tokio::test]
async fn archived_sessions_are_listed_only_when_asked_for() {
    let gw = TestGateway::start().await;
    let alice = caller(&gw).await;
    let old = create(&gw, &alice, "old project").await;
    create(&gw, &alice, "current project").await;
    let path = format!("/api/v1/sessions/{}", old["id"].as_str().unwrap());

    let (s, archived) = gw
        .call(
            Method::PATCH,
            &path,
            Some(&alice.token),
            Some(json!({"archived": true})),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{archived}");
    assert_eq!(archived["archived"], true);
    assert_eq!(
        archived["title"], "old project",
        "archiving keeps the title"
    );

    let active = get(&gw, &alice, "/api/v1/sessions").await;
    assert_eq!(titles(&active), ["current project"]);
    let only_archived = get(&gw, &alice, "/api/v1/sessions?archived=true").await;
    assert_eq!(titles(&only_archived), ["old project"]);
    let searched = get(&gw, &alice, "/api/v1/sessions?archived=true&q=project").await;
    assert_eq!(titles(&searched), ["old project"]);

    let (s, back) = gw
        .call(
            Method::PATCH,
            &path,
            Some(&alice.token),
            Some(json!({"archived": false, "title": "  revived project "})),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{back}");
    assert_eq!(back["title"], "revived project", "titles are trimmed");
    let active = get(&gw, &alice, "/api/v1/sessions").await;
    assert_eq!(titles(&active), ["current project", "revived project"]);
}

#[tokio::test]
async fn the_list_pages_through_every_session_once() {
    let gw = TestGateway::start().await;
    let alice = caller(&gw).await;
    for i in 0..5 {
        create(&gw, &alice, &format!("s{i}")).await;
    }
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    let mut pages = 0;
    loop {
        let path = match &cursor {
            Some(c) => format!("/api/v1/sessions?limit=2&cursor={c}"),
            None => "/api/v1/sessions?limit=2".to_string(),
        };
        let page = get(&gw, &alice, &path).await;
        pages += 1;
        assert!(page["items"].as_array().unwrap().len() <= 2, "{page}");
        seen.extend(titles(&page));
        match page["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_string()),
            None => break,
        }
    }
    assert_eq!(pages, 3);
    assert_eq!(seen, ["s4", "s3", "s2", "s1", "s0"]);
}

/// A session whose second turn was edited: u1 → a1 → { u2 → a2, u2' → a2' (active) }.
pub(crate) struct Branched {
    pub(crate) id: String,
    pub(crate) u1: String,
    pub(crate) a1: String,
    pub(crate) u2: String,
    pub(crate) a2: String,
    pub(crate) edited: String,
    pub(crate) a2_edited: String,
}

pub(crate) async fn branched(gw: &TestGateway, who: &Caller) -> Branched {
    let session = create(gw, who, "branchy").await;
    let id = session["id"].as_str().unwrap().to_string();
    let u1 = append(gw, who, &id, Parent::ActiveLeaf, user("Name a colour.")).await;
    let a1 = append(gw, who, &id, Parent::ActiveLeaf, assistant("Blue.")).await;
    let u2 = append(gw, who, &id, Parent::ActiveLeaf, user("Another one?")).await;
    let a2 = append(gw, who, &id, Parent::ActiveLeaf, assistant("Green.")).await;
    let edited = append(gw, who, &id, Parent::Entry(&a1), user("A warmer one?")).await;
    let a2_edited = append(gw, who, &id, Parent::ActiveLeaf, assistant("Orange.")).await;
    Branched {
        id,
        u1,
        a1,
        u2,
        a2,
        edited,
        a2_edited,
    }
}

async fn branches_are_read_listed_and_switched(gw: TestGateway) {
    let alice = caller(&gw).await;
    let b = branched(&gw, &alice).await;
    let base = format!("/api/v1/sessions/{}", b.id);

    let active = get(&gw, &alice, &format!("{base}/entries")).await;
    assert_eq!(
        entry_ids(&active),
        [b.u1.as_str(), &b.a1, &b.edited, &b.a2_edited]
    );
    assert_eq!(
        active["items"][2]["body"],
        json!({"type": "user", "text": "A warmer one?"})
    );
    assert_eq!(active["items"][2]["parent_id"], json!(b.a1));
    let other = get(&gw, &alice, &format!("{base}/entries?leaf={}", b.a2)).await;
    assert_eq!(entry_ids(&other), [b.u1.as_str(), &b.a1, &b.u2, &b.a2]);
    let partial = get(&gw, &alice, &format!("{base}/entries?leaf={}", b.a1)).await;
    assert_eq!(entry_ids(&partial), [b.u1.as_str(), &b.a1]);

    let branches = get(&gw, &alice, &format!("{base}/branches")).await;
    let summary = |list: &Value| -> Vec<(String, u64, bool)> {
        list["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|br| {
                (
                    br["leaf"]["id"].as_str().unwrap().to_string(),
                    br["length"].as_u64().unwrap(),
                    br["active"].as_bool().unwrap(),
                )
            })
            .collect()
    };
    assert_eq!(
        summary(&branches),
        [(b.a2.clone(), 4, false), (b.a2_edited.clone(), 4, true)]
    );

    let (s, session) = gw
        .call(
            Method::PUT,
            &format!("{base}/leaf"),
            Some(&alice.token),
            Some(json!({"entry_id": b.a2})),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{session}");
    assert_eq!(session["active_leaf_id"], json!(b.a2));
    let active = get(&gw, &alice, &format!("{base}/entries")).await;
    assert_eq!(entry_ids(&active), [b.u1.as_str(), &b.a1, &b.u2, &b.a2]);
    let branches = get(&gw, &alice, &format!("{base}/branches")).await;
    assert_eq!(
        summary(&branches),
        [(b.a2.clone(), 4, true), (b.a2_edited.clone(), 4, false)]
    );

    let (s, e) = gw
        .call(
            Method::PUT,
            &format!("{base}/leaf"),
            Some(&alice.token),
            Some(json!({"entry_id": "no-such-entry"})),
        )
        .await;
    assert_eq!(s, StatusCode::NOT_FOUND, "{e}");
    let (s, _) = gw
        .call(
            Method::GET,
            &format!("{base}/entries?leaf=no-such-entry"),
            Some(&alice.token),
            None,
        )
        .await;
    // Like switching to it: the session is there, the entry is not.
    assert_eq!(s, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn an_empty_session_has_no_entries_and_no_branches() {
    let gw = TestGateway::start().await;
    let alice = caller(&gw).await;
    let session = create(&gw, &alice, "").await;
    assert_eq!(session["title"], "");
    assert_eq!(session["active_leaf_id"], Value::Null);
    assert!(
        session["agent_id"].is_string(),
        "the default agent: {session}"
    );
    let base = format!("/api/v1/sessions/{}", session["id"].as_str().unwrap());
    assert_eq!(
        get(&gw, &alice, &format!("{base}/entries")).await,
        json!({"items": []})
    );
    assert_eq!(
        get(&gw, &alice, &format!("{base}/branches")).await,
        json!({"items": []})
    );
}

#[tokio::test]
async fn another_user_gets_404_for_every_session_operation_and_sees_nothing() {
    let gw = TestGateway::start().await;
    let root = gw.admin("root").await;
    let (alice_id, alice_token) = gw.user(&root, "alice").await;
    let alice = Caller {
        token: alice_token,
        principal: Principal::user(alice_id, false),
    };
    let (_, bob) = gw.user(&root, "bob").await;
    let b = branched(&gw, &alice).await;
    let base = format!("/api/v1/sessions/{}", b.id);

    let attempts = [
        (Method::GET, base.clone(), None),
        (
            Method::PATCH,
            base.clone(),
            Some(json!({"title": "bob's now"})),
        ),
        (Method::GET, format!("{base}/entries"), None),
        (Method::GET, format!("{base}/entries?leaf={}", b.a2), None),
        (Method::GET, format!("{base}/branches"), None),
        (
            Method::PUT,
            format!("{base}/leaf"),
            Some(json!({"entry_id": b.a2})),
        ),
        (Method::GET, format!("{base}/export"), None),
        (Method::DELETE, base.clone(), None),
    ];
    for (method, path, body) in attempts {
        let (s, e) = gw.call(method.clone(), &path, Some(&bob), body).await;
        assert_eq!(s, StatusCode::NOT_FOUND, "{method} {path} as bob: {e}");
        assert_eq!(e["error"]["code"], "not_found");
        assert!(!e.to_string().contains("colour"), "{e}");
    }
    for path in [
        "/api/v1/sessions",
        "/api/v1/sessions?q=colour",
        "/api/v1/sessions?archived=true",
    ] {
        let (s, page) = gw.call(Method::GET, path, Some(&bob), None).await;
        assert_eq!(s, StatusCode::OK);
        assert_eq!(page["items"], json!([]), "{path} as bob");
    }
    // Alice's session is as she left it.
    let session = get(&gw, &alice, &base).await;
    assert_eq!(session["title"], "branchy");
    assert_eq!(session["active_leaf_id"], json!(b.a2_edited));
    let active = get(&gw, &alice, &format!("{base}/entries")).await;
    assert_eq!(entry_ids(&active).len(), 4);
}
