//! Memories over HTTP, and hybrid search through a gateway with an embedding model: a
//! local server speaking the OpenAI embeddings wire format, whose vectors follow a few
//! topic words, so a test knows which texts are near which queries.

use std::time::{Duration, Instant};

use axum::routing::post;
use axum::{Json, Router};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use crate::support::TestGateway;

/// Topics and the words that put a text on each (axis = index).
const TOPICS: [&[&str]; 3] = [
    &["tea", "coffee", "beverage", "drink"],
    &["garden", "tomato", "plant"],
    &["flight", "trip", "travel"],
];

fn vector(text: &str) -> Vec<f32> {
    let text = text.to_lowercase();
    let mut v: Vec<f32> = TOPICS
        .iter()
        .map(|words| words.iter().filter(|w| text.contains(*w)).count() as f32)
        .collect();
    v.push(0.1);
    v
}

/// An embeddings server on loopback; stops when the returned sender is dropped.
async fn embeddings_server() -> (String, tokio::sync::oneshot::Sender<()>) {
    async fn embed(Json(body): Json<Value>) -> Json<Value> {
        let inputs: Vec<String> = match &body["input"] {
            Value::String(s) => vec![s.clone()],
            Value::Array(items) => items
                .iter()
                .map(|i| i.as_str().unwrap_or_default().to_string())
                .collect(),
            _ => Vec::new(),
        };
        let data: Vec<Value> = inputs
            .iter()
            .enumerate()
            .map(|(i, text)| json!({"object": "embedding", "index": i, "embedding": vector(text)}))
            .collect();
        Json(
            json!({"object": "list", "data": data, "model": body["model"],
            "usage": {"prompt_tokens": 1, "total_tokens": 1}}),
        )
    }
    let app = Router::new().route("/v1/embeddings", post(embed));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/v1", listener.local_addr().unwrap());
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(async move {
        let _ = axum::serve(listener, app)
            .with_graceful_shutdown(async {
                let _ = stopped.await;
            })
            .await;
    });
    (url, stop)
}

async fn ok(
    gw: &TestGateway,
    token: &str,
    method: Method,
    path: &str,
    body: Option<Value>,
) -> Value {
    let (status, value) = gw.call(method, path, Some(token), body).await;
    assert!(status.is_success(), "{path}: {status} {value}");
    value
}

#[tokio::test]
async fn memories_round_trip_over_http_and_stay_their_owners() {
    let gw = TestGateway::start().await;
    let alice = gw.admin("alice").await;
    let (_, bob) = gw.user(&alice, "bob").await;
    let (status, made) = gw
        .call(
            Method::POST,
            "/api/v1/memories",
            Some(&alice),
            Some(
                json!({"text": "Prefers short answers", "kind": "preference",
                "tags": ["Style"], "importance": 4, "pinned": true}),
            ),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{made}");
    assert_eq!(made["tags"], json!(["style"]));
    assert_eq!(
        (made["pinned"].clone(), made["embedded"].clone()),
        (json!(true), json!(false))
    );
    let id = made["id"].as_str().unwrap().to_string();
    ok(
        &gw,
        &alice,
        Method::POST,
        "/api/v1/memories",
        Some(json!({"text": "Lives in Porto"})),
    )
    .await;

    let pinned = ok(
        &gw,
        &alice,
        Method::GET,
        "/api/v1/memories?pinned=true",
        None,
    )
    .await;
    assert_eq!(pinned["items"].as_array().unwrap().len(), 1, "{pinned}");
    let facts = ok(&gw, &alice, Method::GET, "/api/v1/memories?kind=fact", None).await;
    assert_eq!(facts["items"][0]["text"], "Lives in Porto");
    let changed = ok(
        &gw,
        &alice,
        Method::PATCH,
        &format!("/api/v1/memories/{id}"),
        Some(json!({"pinned": false, "text": "Prefers very short answers"})),
    )
    .await;
    assert_eq!(changed["pinned"], false);
    assert_eq!(changed["kind"], "preference");

    for (method, body) in [
        (Method::GET, None),
        (Method::PATCH, Some(json!({"text": "taken over"}))),
        (Method::DELETE, None),
    ] {
        let (status, _) = gw
            .call(method, &format!("/api/v1/memories/{id}"), Some(&bob), body)
            .await;
        assert_eq!(status, StatusCode::NOT_FOUND);
    }
    for bad in [
        json!({"text": ""}),
        json!({"text": "x", "importance": 9}),
        json!({"text": "x", "kind": "gossip"}),
    ] {
        let (status, body) = gw
            .call(Method::POST, "/api/v1/memories", Some(&alice), Some(bad))
            .await;
        assert!(
            status == StatusCode::BAD_REQUEST || status == StatusCode::UNPROCESSABLE_ENTITY,
            "{status} {body}"
        );
    }
    let (status, _) = gw
        .call(
            Method::DELETE,
            &format!("/api/v1/memories/{id}"),
            Some(&alice),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
}

#[tokio::test]
async fn search_goes_by_meaning_with_an_embedding_model_and_by_words_without_one() {
    let (url, stop) = embeddings_server().await;
    let gw = TestGateway::start_with(|c| {
        c.embedding_url = Some(url);
        c.embedding_model = Some("topics".into());
    })
    .await;
    let alice = gw.admin("alice").await;
    let (_, bob) = gw.user(&alice, "bob").await;
    let tea = ok(
        &gw,
        &alice,
        Method::POST,
        "/api/v1/memories",
        Some(json!({"text": "Alice drinks green tea every morning"})),
    )
    .await;
    ok(
        &gw,
        &alice,
        Method::POST,
        "/api/v1/tasks",
        Some(json!({"title": "Plant tomatoes", "body": "in the garden"})),
    )
    .await;
    ok(
        &gw,
        &bob,
        Method::POST,
        "/api/v1/memories",
        Some(json!({"text": "Bob drinks coffee, black"})),
    )
    .await;

    // The embedder works in the background; the memory says when it is done.
    let id = tea["id"].as_str().unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let m = ok(
            &gw,
            &alice,
            Method::GET,
            &format!("/api/v1/memories/{id}"),
            None,
        )
        .await;
        if m["embedded"] == true {
            break;
        }
        assert!(Instant::now() < deadline, "never embedded: {m}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    // The embedder's work shows in /metrics.
    let metrics = gw
        .http
        .get(format!("{}/metrics", gw.url))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let embedded: u64 = metrics
        .lines()
        .find_map(|l| l.strip_prefix("mosaic_embeddings_total{result=\"embedded\"} "))
        .unwrap_or_else(|| panic!("no embeddings counter in\n{metrics}"))
        .parse()
        .unwrap();
    assert!(embedded >= 1, "{metrics}");

    // No text has the word "beverage": meaning finds the tea memory, never bob's.
    let found = ok(
        &gw,
        &alice,
        Method::GET,
        "/api/v1/brain/search?q=beverage",
        None,
    )
    .await;
    assert_eq!(found["mode"], "hybrid", "{found}");
    let first = &found["items"][0];
    assert_eq!(
        (first["kind"].clone(), first["id"].clone()),
        (json!("memory"), tea["id"].clone())
    );
    assert_eq!(first["scores"]["vector_rank"], 1);
    assert!(
        first["scores"]["similarity"].as_f64().unwrap() > 0.9,
        "{first}"
    );
    assert!(first["scores"].get("lexical_rank").is_none(), "{first}");
    assert!(!found.to_string().contains("Bob"), "{found}");

    // Words only, on request.
    let words = ok(
        &gw,
        &alice,
        Method::GET,
        "/api/v1/brain/search?q=beverage&mode=lexical",
        None,
    )
    .await;
    assert_eq!(words, json!({"items": [], "mode": "lexical"}));

    // The model goes away: search still answers, by words, and says why.
    drop(stop);
    tokio::time::sleep(Duration::from_millis(100)).await;
    let fallback = ok(&gw, &alice, Method::GET, "/api/v1/brain/search?q=tea", None).await;
    assert_eq!(fallback["mode"], "lexical", "{fallback}");
    assert!(
        fallback["notice"].as_str().unwrap().contains("words only"),
        "{fallback}"
    );
    assert_eq!(fallback["items"][0]["id"], tea["id"]);
    assert_eq!(fallback["items"][0]["scores"]["lexical_rank"], 1);
}
