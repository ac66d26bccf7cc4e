//! Fan-out under load: hundreds of subscribers of one session each get every event of
//! a streaming run, while other requests (new sessions, state reads) keep answering.
//! A probe once saw a run stop streaming at 183 of 200 tokens and `POST
//! /api/v1/sessions` go unanswered for 30 s in such a round; this would catch it.

use std::time::{Duration, Instant};

use reqwest::{Method, StatusCode};
use serde_json::json;

use mosaic_test_support::scripted::{Answer, Scripted};

use crate::support::{chunk, new_session, scripted_model, Events, TestGateway};

const SUBSCRIBERS: usize = 100;
const TOKENS: usize = 200;
const ROUNDS: usize = 2;

fn answer() -> Answer {
    let mut data = vec![chunk(json!({"role": "assistant", "content": ""}), None)];
    data.extend((0..TOKENS).map(|i| chunk(json!({"content": format!("t{i} ")}), None)));
    data.push(chunk(json!({}), Some("stop")));
    data.push("[DONE]".to_string());
    Answer::sse_data(&data).paced(Duration::from_millis(5))
}

#[tokio::test]
async fn hundreds_of_subscribers_get_every_event_while_other_requests_answer() {
    let upstream = Scripted::start((0..ROUNDS).map(|_| answer()).collect()).await;
    let gw = TestGateway::start().await;
    let root = gw.admin("root").await;
    scripted_model(&gw, &root, &format!("{}/v1", upstream.base_url), json!({})).await;
    let session = new_session(&gw, &root).await;
    for round in 0..ROUNDS {
        let mut followers = Vec::with_capacity(SUBSCRIBERS);
        for _ in 0..SUBSCRIBERS {
            followers.push(Events::open(&gw, &root, &session, None).await);
        }
        let (status, body) = gw
            .call(
                Method::POST,
                &format!("/api/v1/sessions/{session}/messages"),
                Some(&root),
                Some(json!({"text": format!("round {round}")})),
            )
            .await;
        assert_eq!(status, StatusCode::ACCEPTED, "{body}");
        // Meanwhile, other work: each request answers within a few seconds.
        let others = async {
            for _ in 0..10 {
                let started = Instant::now();
                let (status, _) = gw
                    .call(
                        Method::POST,
                        "/api/v1/sessions",
                        Some(&root),
                        Some(json!({})),
                    )
                    .await;
                assert_eq!(status, StatusCode::CREATED);
                assert!(
                    started.elapsed() < Duration::from_secs(5),
                    "{:?}",
                    started.elapsed()
                );
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        };
        let readers = futures::future::join_all(followers.iter_mut().map(|f| async move {
            let seen = f.until_finished().await;
            let deltas = seen.iter().filter(|e| e.kind == "text_delta").count();
            let resynced = seen.iter().any(|e| e.kind == "resync");
            (
                deltas,
                resynced,
                seen.last().map(|e| e.data["run"]["status"].clone()),
            )
        }));
        let (_, results) = tokio::time::timeout(Duration::from_secs(120), async {
            tokio::join!(others, readers)
        })
        .await
        .expect("the round finished within 120 s");
        for (deltas, resynced, status) in results {
            assert_eq!(status, Some(json!("completed")), "round {round}");
            // A subscriber that fell behind is told so and then goes on; otherwise it
            // got every delta.
            assert!(
                resynced || deltas == TOKENS,
                "round {round}: {deltas} deltas"
            );
        }
    }
}
