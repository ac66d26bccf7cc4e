//! Embeddings against a scripted OpenAI-compatible `/v1/embeddings` server.

use mosaic_llm::embeddings::{Embedded, OpenAiEmbeddings};
use mosaic_llm::LlmError;
use pretty_assertions::assert_eq;
use serde_json::json;

use crate::support::{Answer, Scripted};

fn client(server: &Scripted) -> OpenAiEmbeddings {
    OpenAiEmbeddings::new(
        reqwest::Client::new(),
        &format!("{}/v1", server.base_url),
        Some("k".into()),
    )
}

#[tokio::test]
async fn vectors_come_back_in_input_order_with_the_request_as_the_api_expects() {
    let server = Scripted::start(vec![Answer::json(
        200,
        json!({"object": "list", "data": [
            {"object": "embedding", "index": 1, "embedding": [0.0, 1.0]},
            {"object": "embedding", "index": 0, "embedding": [1.0, 0.0]}],
            "usage": {"prompt_tokens": 6, "total_tokens": 6}}),
    )])
    .await;
    let got = client(&server)
        .embed("e5-small", &["first".into(), "second".into()])
        .await
        .unwrap();
    assert_eq!(
        got,
        Embedded {
            vectors: vec![vec![1.0, 0.0], vec![0.0, 1.0]],
            input_tokens: 6
        }
    );
    let sent = &server.received()[0];
    assert_eq!(sent.path, "/v1/embeddings");
    assert_eq!(
        sent.body,
        json!({"model": "e5-small", "input": ["first", "second"], "encoding_format": "float"})
    );
}

#[tokio::test]
async fn malformed_or_mismatched_embeddings_are_protocol_errors() {
    for (name, body) in [
        ("no data", json!({})),
        (
            "missing one",
            json!({"data": [{"index": 0, "embedding": [1.0]}]}),
        ),
        (
            "ragged",
            json!({"data": [{"index": 0, "embedding": [1.0]}, {"index": 1, "embedding": [1.0, 2.0]}]}),
        ),
        (
            "not numbers",
            json!({"data": [{"index": 0, "embedding": ["a"]}, {"index": 1, "embedding": ["b"]}]}),
        ),
        (
            "bad index",
            json!({"data": [{"index": 7, "embedding": [1.0]}, {"index": 1, "embedding": [1.0]}]}),
        ),
    ] {
        let server = Scripted::start(vec![Answer::json(200, body)]).await;
        let result = client(&server).embed("m", &["a".into(), "b".into()]).await;
        assert!(
            matches!(result, Err(LlmError::Protocol(_))),
            "{name}: {result:?}"
        );
    }
}

#[tokio::test]
async fn http_errors_keep_the_providers_message() {
    let server = Scripted::start(vec![Answer::json(
        404,
        json!({"error": {"message": "model not found"}}),
    )])
    .await;
    let err = client(&server)
        .embed("nope", &["a".into()])
        .await
        .err()
        .unwrap();
    assert!(
        matches!(err, LlmError::Http { status: 404, ref message, .. } if message == "model not found"),
        "{err:?}"
    );
}
