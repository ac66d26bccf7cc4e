//! Slow and hostile clients cannot hold the gateway: unfinished headers and bodies
//! time out, an announced oversized body is refused before it is read, connections past
//! the limit are refused at once, and a stop ends live streams with a word to the client.
//! Every test is bounded by short timeouts and talks to the gateway over loopback.

use std::time::{Duration, Instant};

use pretty_assertions::assert_eq;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use mosaic_test_support::scripted::{Answer, Scripted};

use crate::support::{chunk, new_session, scripted_model, Events, TestGateway};

/// A gateway with one-second header and body timeouts.
async fn impatient(tweak: impl FnOnce(&mut mosaic_gateway::Config)) -> TestGateway {
    TestGateway::start_with(|c| {
        c.header_timeout_secs = 1;
        c.body_timeout_secs = 1;
        tweak(c);
    })
    .await
}

/// Everything the gateway sends until it closes the connection; `None` if it is still
/// open after `wait`.
async fn read_until_closed(tcp: &mut TcpStream, wait: Duration) -> Option<String> {
    let mut out = Vec::new();
    let read = tokio::time::timeout(wait, tcp.read_to_end(&mut out)).await;
    match read {
        Ok(_) => Some(String::from_utf8_lossy(&out).into_owned()),
        Err(_) => None,
    }
}

#[tokio::test]
async fn a_client_that_sends_nothing_or_half_its_headers_is_closed() {
    let gw = impatient(|_| {}).await;
    let mut silent = TcpStream::connect(gw.addr()).await.unwrap();
    let mut partial = TcpStream::connect(gw.addr()).await.unwrap();
    partial
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
        .await
        .unwrap();
    let started = Instant::now();
    assert!(read_until_closed(&mut silent, Duration::from_secs(5))
        .await
        .is_some());
    assert!(read_until_closed(&mut partial, Duration::from_secs(5))
        .await
        .is_some());
    assert!(
        started.elapsed() < Duration::from_secs(4),
        "{:?}",
        started.elapsed()
    );

    // A keep-alive connection left idle after a request is closed as well.
    let mut idle = TcpStream::connect(gw.addr()).await.unwrap();
    idle.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    let answer = read_until_closed(&mut idle, Duration::from_secs(5)).await;
    assert!(answer.unwrap().starts_with("HTTP/1.1 200"));
}

#[tokio::test]
async fn an_unfinished_body_is_answered_408() {
    let gw = impatient(|_| {}).await;
    let mut tcp = TcpStream::connect(gw.addr()).await.unwrap();
    tcp.write_all(
        b"POST /api/v1/auth/login HTTP/1.1\r\nHost: x\r\ncontent-type: application/json\r\n\
          content-length: 100\r\n\r\n{\"username\"",
    )
    .await
    .unwrap();
    let started = Instant::now();
    let answer = read_until_closed(&mut tcp, Duration::from_secs(5))
        .await
        .expect("answered and closed");
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(answer.contains("\"request_timeout\""), "{answer}");
    assert!(started.elapsed() < Duration::from_secs(4));
}

#[tokio::test]
async fn an_announced_oversized_body_is_refused_before_it_is_read() {
    let gw = TestGateway::start().await;
    let mut tcp = TcpStream::connect(gw.addr()).await.unwrap();
    // 10 GiB announced, a few bytes sent: the answer must not wait for the rest.
    tcp.write_all(
        b"POST /api/v1/auth/login HTTP/1.1\r\nHost: x\r\ncontent-type: application/json\r\n\
          content-length: 10737418240\r\n\r\n{}",
    )
    .await
    .unwrap();
    let answer = read_until_closed(&mut tcp, Duration::from_secs(3))
        .await
        .expect("answered at once and closed");
    assert!(answer.starts_with("HTTP/1.1 413"), "{answer}");
    assert!(answer.contains("\"payload_too_large\""), "{answer}");
}

#[tokio::test]
async fn connections_past_the_limit_are_refused_at_once_and_service_resumes() {
    let gw = TestGateway::start_with(|c| {
        c.max_connections = Some(20);
        c.header_timeout_secs = 2;
    })
    .await;
    let mut held = Vec::new();
    for _ in 0..20 {
        held.push(TcpStream::connect(gw.addr()).await.unwrap());
    }
    // Give the gateway a moment to accept them all.
    tokio::time::sleep(Duration::from_millis(200)).await;
    let started = Instant::now();
    let mut extra = TcpStream::connect(gw.addr()).await.unwrap();
    let answer = read_until_closed(&mut extra, Duration::from_secs(2))
        .await
        .expect("refused at once");
    assert!(answer.starts_with("HTTP/1.1 503"), "{answer}");
    assert!(answer.to_lowercase().contains("retry-after: 1"), "{answer}");
    assert!(started.elapsed() < Duration::from_secs(1));
    // The idle connections time out; the gateway answers again.
    drop(held);
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let (status, _) = gw.call(Method::GET, "/healthz", None, None).await;
        if status == StatusCode::OK {
            break;
        }
        assert!(Instant::now() < deadline, "still refused: {status}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// A slow answer: one word every 100 ms, 100 words.
fn slow_answer() -> Answer {
    let mut data = vec![chunk(json!({"role": "assistant", "content": ""}), None)];
    data.extend((0..100).map(|i| chunk(json!({"content": format!("w{i} ")}), None)));
    data.push(chunk(json!({}), Some("stop")));
    data.push("[DONE]".to_string());
    Answer::sse_data(&data).paced(Duration::from_millis(100))
}

#[tokio::test]
async fn event_streams_outlive_the_idle_timeout() {
    let upstream = Scripted::start(vec![slow_answer()]).await;
    let gw = impatient(|_| {}).await;
    let root = gw.admin("root").await;
    scripted_model(&gw, &root, &format!("{}/v1", upstream.base_url), json!({})).await;
    let session = new_session(&gw, &root).await;
    let mut events = Events::open(&gw, &root, &session, None).await;
    let (status, _) = gw
        .call(
            Method::POST,
            &format!("/api/v1/sessions/{session}/messages"),
            Some(&root),
            Some(json!({"text": "talk"})),
        )
        .await;
    assert_eq!(status, StatusCode::ACCEPTED);
    // Ten seconds of answer, ten times the header timeout: the stream stays open.
    let seen = events.until_finished().await;
    let deltas = seen.iter().filter(|e| e.kind == "text_delta").count();
    assert_eq!(deltas, 100);
}

#[tokio::test]
async fn a_stop_ends_every_stream_with_a_word_to_its_client() {
    let answers = (0..6).map(|_| slow_answer()).collect();
    let upstream = Scripted::start(answers).await;
    let gw = TestGateway::start().await;
    let root = gw.admin("root").await;
    scripted_model(&gw, &root, &format!("{}/v1", upstream.base_url), json!({})).await;

    // A run followed by a subscriber, and five streamed completions.
    let session = new_session(&gw, &root).await;
    let mut follower = Events::open(&gw, &root, &session, None).await;
    gw.call(
        Method::POST,
        &format!("/api/v1/sessions/{session}/messages"),
        Some(&root),
        Some(json!({"text": "talk"})),
    )
    .await;
    let mut completions = Vec::new();
    for _ in 0..5 {
        let resp = gw
            .http
            .post(format!("{}/v1/chat/completions", gw.url))
            .bearer_auth(&root)
            .json(&json!({"model": "mock/test-model", "stream": true,
                "messages": [{"role": "user", "content": "hi"}]}))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), StatusCode::OK);
        completions.push(tokio::spawn(async move {
            resp.text().await.unwrap_or_default()
        }));
    }
    follower.until(|e| e.kind == "text_delta").await;
    tokio::time::sleep(Duration::from_millis(300)).await;

    let started = Instant::now();
    gw.stop(Duration::from_secs(2)).await;
    assert!(started.elapsed() < Duration::from_secs(3));

    let rest = follower
        .until_closed(Duration::from_secs(2))
        .await
        .expect("the follower's stream ended");
    let kinds: Vec<&str> = rest.iter().map(|e| e.kind.as_str()).collect();
    assert_eq!(
        kinds[kinds.len() - 2..],
        ["run_finished", "stream_closed"],
        "the run's end, then the closing frame: {kinds:?}"
    );
    let closed = &rest.last().unwrap().data;
    assert_eq!(closed["reason"], "shutting_down");
    let run = &rest[rest.len() - 2].data["run"];
    assert_eq!(run["status"], "interrupted", "{run}");

    for c in completions {
        let body = tokio::time::timeout(Duration::from_secs(2), c)
            .await
            .expect("the completion stream ended")
            .unwrap();
        let pieces: Vec<&str> = body
            .split("\n\n")
            .filter(|p| p.starts_with("data: "))
            .collect();
        assert_eq!(pieces.last(), Some(&"data: [DONE]"), "{body}");
        let error: Value =
            serde_json::from_str(pieces[pieces.len() - 2].trim_start_matches("data: ")).unwrap();
        assert_eq!(error["error"]["code"], "shutting_down", "{body}");
    }
}
