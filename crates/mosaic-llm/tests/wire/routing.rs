//! The routing matrix over real wire APIs (scripted Chat Completions servers):
//! fallback before the first token, cool-down, probing, and what is final.

use std::sync::Arc;
use std::time::Duration;

use futures_util::StreamExt;
use mosaic_llm::openai_chat::OpenAiChat;
use mosaic_llm::routing::{Route, RouteEntry, RouteError, Router};
use mosaic_llm::{collect, ChatRequest, LlmError, Message};
use pretty_assertions::assert_eq;
use serde_json::json;

use crate::support::{Answer, Scripted};

fn ok_answer(text: &str) -> Answer {
    Answer::sse_data(&[
        json!({"choices": [{"index": 0, "delta": {"content": text}, "finish_reason": "stop"}]})
            .to_string(),
        "[DONE]".to_string(),
    ])
}

fn router(servers: &[(&str, &Scripted)], cooldown: Duration) -> Router {
    let router = Router::with_cooldown(cooldown, cooldown * 4);
    for (name, server) in servers {
        router.set_provider(
            name,
            Arc::new(OpenAiChat::new(
                reqwest::Client::new(),
                &format!("{}/v1", server.base_url),
                None,
            )),
        );
    }
    router
}

fn route(entries: &[(&str, &str, u64)]) -> Route {
    Route {
        name: "default".into(),
        entries: entries
            .iter()
            .map(|(p, m, ms)| RouteEntry {
                provider: p.to_string(),
                model: m.to_string(),
                timeout: Duration::from_millis(*ms),
                idle_timeout: Duration::from_secs(60),
            })
            .collect(),
    }
}

fn request() -> ChatRequest {
    ChatRequest {
        model: String::new(),
        messages: vec![Message::user("hi")],
        ..ChatRequest::default()
    }
}

#[tokio::test]
async fn a_server_error_falls_back_to_the_next_entry_and_says_why() {
    let down = Scripted::start(vec![Answer::json(
        503,
        json!({"error": {"message": "maintenance"}}),
    )])
    .await;
    let up = Scripted::start(vec![ok_answer("from b")]).await;
    let router = router(&[("a", &down), ("b", &up)], Duration::from_secs(60));
    let routed = router
        .stream(&route(&[("a", "m1", 2000), ("b", "m2", 2000)]), request())
        .await
        .unwrap();
    assert_eq!(
        (routed.provider.as_str(), routed.model.as_str()),
        ("b", "m2")
    );
    assert_eq!(routed.fallbacks.len(), 1);
    assert_eq!(routed.fallbacks[0].provider, "a");
    assert!(
        routed.fallbacks[0].error.contains("503")
            && routed.fallbacks[0].error.contains("maintenance")
    );
    assert_eq!(collect(routed.stream).await.unwrap().text, "from b");
    // Each entry got the request with its own model name.
    assert_eq!(down.received()[0].body["model"], json!("m1"));
    assert_eq!(up.received()[0].body["model"], json!("m2"));
}

#[tokio::test]
async fn a_slow_first_token_times_out_and_falls_back() {
    let slow = Scripted::start(vec![
        ok_answer("late").with_delay(Duration::from_millis(1500))
    ])
    .await;
    let fast = Scripted::start(vec![ok_answer("fast")]).await;
    let router = router(&[("slow", &slow), ("fast", &fast)], Duration::from_secs(60));
    let started = std::time::Instant::now();
    let routed = router
        .stream(
            &route(&[("slow", "m", 200), ("fast", "m", 2000)]),
            request(),
        )
        .await
        .unwrap();
    assert!(
        started.elapsed() < Duration::from_millis(1200),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(routed.provider, "fast");
    assert!(
        routed.fallbacks[0].error.contains("did not answer"),
        "{:?}",
        routed.fallbacks
    );
}

#[tokio::test]
async fn a_rate_limit_cools_the_entry_down_for_as_long_as_asked() {
    let limited = Scripted::start(vec![
        Answer::json(429, json!({"error": {"message": "slow down"}}))
            .with_header("retry-after", "30"),
        ok_answer("recovered"),
    ])
    .await;
    let backup = Scripted::start(vec![ok_answer("backup")]).await;
    let router = router(
        &[("a", &limited), ("b", &backup)],
        Duration::from_millis(100),
    );
    let r = route(&[("a", "m", 2000), ("b", "m", 2000)]);
    assert_eq!(router.stream(&r, request()).await.unwrap().provider, "b");
    // While cooling, the limited entry is skipped outright: no second request to it.
    assert_eq!(router.stream(&r, request()).await.unwrap().provider, "b");
    assert_eq!(limited.received().len(), 1);
    let health = router.health();
    let a = health.iter().find(|h| h.provider == "a").unwrap();
    assert!(
        !a.healthy && a.cooldown_remaining_secs.unwrap() >= 20,
        "{a:?}"
    );
    assert!(a.last_error.as_deref().unwrap().contains("slow down"));
}

#[tokio::test]
async fn a_cooled_down_entry_is_probed_again_and_recovers() {
    let flaky = Scripted::start(vec![
        Answer::json(500, json!({"error": {"message": "boom"}})),
        ok_answer("back"),
    ])
    .await;
    let backup = Scripted::start(vec![ok_answer("backup")]).await;
    let router = router(&[("a", &flaky), ("b", &backup)], Duration::from_millis(150));
    let r = route(&[("a", "m", 2000), ("b", "m", 2000)]);
    assert_eq!(router.stream(&r, request()).await.unwrap().provider, "b");
    tokio::time::sleep(Duration::from_millis(200)).await;
    let routed = router.stream(&r, request()).await.unwrap();
    assert_eq!(routed.provider, "a");
    assert!(routed.fallbacks.is_empty());
    assert!(router.health().iter().all(|h| h.healthy));
}

#[tokio::test]
async fn when_every_entry_is_cooling_the_soonest_to_recover_is_probed() {
    let only = Scripted::start(vec![
        Answer::json(502, json!({})),
        ok_answer("probe worked"),
    ])
    .await;
    let router = router(&[("a", &only)], Duration::from_secs(60));
    let r = route(&[("a", "m", 2000)]);
    let err = router.stream(&r, request()).await.err().unwrap();
    assert!(
        matches!(err, RouteError::Exhausted(ref f) if f.len() == 1),
        "{err:?}"
    );
    let routed = router.stream(&r, request()).await.unwrap();
    assert_eq!(collect(routed.stream).await.unwrap().text, "probe worked");
}

#[tokio::test]
async fn a_bad_request_is_final_and_does_not_fall_back() {
    let picky = Scripted::start(vec![Answer::json(
        400,
        json!({"error": {"message": "unknown parameter"}}),
    )])
    .await;
    let backup = Scripted::start(vec![ok_answer("unused")]).await;
    let router = router(&[("a", &picky), ("b", &backup)], Duration::from_secs(60));
    let err = router
        .stream(&route(&[("a", "m", 2000), ("b", "m", 2000)]), request())
        .await
        .err()
        .unwrap();
    match err {
        RouteError::Final {
            provider,
            error: LlmError::Http { status: 400, .. },
            ..
        } => assert_eq!(provider, "a"),
        other => panic!("expected a final error, got {other:?}"),
    }
    assert!(backup.received().is_empty());
}

#[tokio::test]
async fn an_unknown_provider_or_an_empty_route_is_an_error() {
    let router = Router::new();
    assert!(matches!(
        router.stream(&route(&[]), request()).await.err(),
        Some(RouteError::Empty(_))
    ));
    assert!(matches!(
        router
            .stream(&route(&[("ghost", "m", 100)]), request())
            .await
            .err(),
        Some(RouteError::UnknownProvider(_))
    ));
}

#[tokio::test]
async fn an_entry_going_quiet_mid_answer_ends_stalled_after_what_it_sent() {
    let chunk =
        |text: &str| json!({"choices": [{"index": 0, "delta": {"content": text}}]}).to_string();
    let quiet = Answer::sse_data(&[chunk("Hel"), chunk("lo")])
        .then_bytes(Duration::from_secs(30), b"data: [DONE]\n\n");
    let server = Scripted::start(vec![quiet]).await;
    let router = router(&[("a", &server)], Duration::from_secs(60));
    let mut route = route(&[("a", "m", 2000)]);
    route.entries[0].idle_timeout = Duration::from_millis(300);
    let routed = router.stream(&route, request()).await.unwrap();
    let started = std::time::Instant::now();
    let items: Vec<_> = routed.stream.collect().await;
    assert!(started.elapsed() < Duration::from_secs(5));
    assert_eq!(
        items,
        vec![
            Ok(mosaic_llm::StreamEvent::TextDelta { text: "Hel".into() }),
            Ok(mosaic_llm::StreamEvent::TextDelta { text: "lo".into() }),
            Err(LlmError::Stalled(Duration::from_millis(300))),
        ]
    );
    assert_eq!(
        items[2].clone().unwrap_err().to_string(),
        "the model sent nothing for 300ms mid-answer"
    );
}

#[tokio::test]
async fn a_slow_reader_is_not_taken_for_a_silent_model() {
    let chunk =
        |text: &str| json!({"choices": [{"index": 0, "delta": {"content": text}}]}).to_string();
    let server = Scripted::start(vec![Answer::sse_data(&[
        chunk("a"),
        chunk("b"),
        json!({"choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]}).to_string(),
        "[DONE]".to_string(),
    ])])
    .await;
    let router = router(&[("a", &server)], Duration::from_secs(60));
    let mut route = route(&[("a", "m", 2000)]);
    route.entries[0].idle_timeout = Duration::from_millis(200);
    let mut stream = router.stream(&route, request()).await.unwrap().stream;
    let mut got = Vec::new();
    while let Some(item) = stream.next().await {
        got.push(item.unwrap());
        tokio::time::sleep(Duration::from_millis(400)).await;
    }
    assert_eq!(got.len(), 3, "{got:?}");
}
