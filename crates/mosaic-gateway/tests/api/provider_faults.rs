//! A provider misbehaving, as `/v1/chat/completions` and runs report it: a model that
//! goes quiet mid-answer is cut off after its step's idle timeout, keeping what it said;
//! bytes that are not UTF-8 cost only the event they are in; a 200 that is no event
//! stream, or bad bytes before the first token, are upstream errors (502), not the
//! caller's; an upstream's 429 reaches the caller as 429 with its `Retry-After`; a stream
//! that breaks off says so instead of "cannot connect".

use std::time::{Duration, Instant};

use pretty_assertions::assert_eq;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use mosaic_test_support::scripted::{Answer, Scripted};

use crate::support::{chunk, entries, route_default_agent, Events, TestGateway};

/// The route every test calls through: one step on the scripted provider `up`, whose
/// idle timeout is 1 s.
const ROUTE: &str = "quick";

/// "Hello there" in three tokens, then whatever `rest` adds: the answer is not finished.
fn three_tokens() -> Answer {
    Answer::sse_data(&[
        chunk(json!({"role": "assistant", "content": ""}), None),
        chunk(json!({"content": "Hel"}), None),
        chunk(json!({"content": "lo "}), None),
        chunk(json!({"content": "there"}), None),
    ])
}

/// The end of an answer, as its last events.
fn the_end() -> String {
    [chunk(json!({}), Some("stop")), "[DONE]".to_string()]
        .iter()
        .map(|d| format!("data: {d}\n\n"))
        .collect()
}

/// Three tokens, then silence for longer than any test waits.
fn going_quiet() -> Answer {
    three_tokens().then_bytes(Duration::from_secs(60), the_end().as_bytes())
}

/// Three tokens and, in the same piece, an event that is not UTF-8.
fn bad_bytes_after_three_tokens() -> Answer {
    let mut body: Vec<u8> = three_tokens()
        .chunks
        .into_iter()
        .flat_map(|(_, bytes)| bytes)
        .collect();
    body.extend_from_slice(
        b"data: {\"choices\": [{\"index\": 0, \"delta\": {\"content\": \"\xff\xfe\"}}]}\n\n",
    );
    body.extend_from_slice(the_end().as_bytes());
    Answer::sse_raw::<&str>(&[]).then_bytes(Duration::ZERO, &body)
}

/// A gateway whose admin (root, who reads upstream detail) has the provider `up` on a
/// scripted server answering `answers` in turn, and the route [`ROUTE`] over `up/m`.
async fn setup(answers: Vec<Answer>) -> (Scripted, TestGateway, String) {
    setup_with(answers, |_| {}).await
}

async fn setup_with(
    answers: Vec<Answer>,
    tweak: impl FnOnce(&mut mosaic_gateway::Config),
) -> (Scripted, TestGateway, String) {
    let upstream = Scripted::start(answers).await;
    let gw = TestGateway::start_with(tweak).await;
    let root = gw.admin("root").await;
    let base_url = format!("{}/v1", upstream.base_url);
    gw.provider(&root, "gateway", "up", &base_url, "k").await;
    let route = json!({"name": ROUTE, "scope": "gateway", "steps": [
        {"provider": "up", "model": "m", "timeout_ms": 5000, "idle_timeout_ms": 1000}]});
    gw.expect(StatusCode::OK, Method::POST, "/api/v1/routes", &root, route)
        .await;
    (upstream, gw, root)
}

async fn complete(gw: &TestGateway, token: &str, model: &str) -> (StatusCode, Value) {
    gw.call(
        Method::POST,
        "/v1/chat/completions",
        Some(token),
        Some(json!({"model": model, "messages": [{"role": "user", "content": "hi"}]})),
    )
    .await
}

/// A streamed completion as its client reads it.
#[derive(Debug)]
struct Streamed {
    /// The text of its content deltas.
    text: String,
    /// Its error chunks.
    errors: Vec<Value>,
    /// Whether it ended with `[DONE]`.
    done: bool,
}

async fn stream(gw: &TestGateway, token: &str, model: &str) -> Streamed {
    let resp = gw
        .http
        .post(format!("{}/v1/chat/completions", gw.url))
        .bearer_auth(token)
        .json(&json!({"model": model, "stream": true,
            "messages": [{"role": "user", "content": "hi"}]}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let body = resp.text().await.unwrap();
    let data: Vec<&str> = body
        .split("\n\n")
        .filter_map(|event| event.strip_prefix("data: "))
        .collect();
    let chunks: Vec<Value> = data
        .iter()
        .filter(|d| **d != "[DONE]")
        .map(|d| serde_json::from_str(d).unwrap())
        .collect();
    Streamed {
        text: chunks
            .iter()
            .filter_map(|c| c["choices"][0]["delta"]["content"].as_str())
            .collect(),
        errors: chunks
            .iter()
            .filter(|c| c.get("error").is_some())
            .cloned()
            .collect(),
        done: data.last() == Some(&"[DONE]"),
    }
}

fn message(v: &Value) -> &str {
    v["error"]["message"].as_str().unwrap_or_default()
}

/// A run of root's default agent through [`ROUTE`]: the run, its last entry.
async fn run(gw: &TestGateway, token: &str, session: &str, events: &mut Events) -> (Value, Value) {
    let messages = format!("/api/v1/sessions/{session}/messages");
    gw.expect(
        StatusCode::ACCEPTED,
        Method::POST,
        &messages,
        token,
        json!({"text": "hello"}),
    )
    .await;
    let finished = events.until_finished().await;
    let run = finished.last().unwrap().data["run"].clone();
    let entries = entries(gw, token, session).await;
    (run, entries.last().unwrap()["body"].clone())
}

/// A run whose model fails mid-answer with `fault`: the run fails with an error that
/// says `why`, what streamed is kept as its answer, and the session takes the next
/// message (answered normally).
async fn a_run_fails_keeping_the_partial_answer(fault: Answer, why: &str) {
    let fine = Answer::sse_data(&[
        chunk(json!({"role": "assistant", "content": "All good."}), None),
        chunk(json!({}), Some("stop")),
        "[DONE]".to_string(),
    ]);
    let (_upstream, gw, root) = setup(vec![fault, fine]).await;
    route_default_agent(&gw, &root, ROUTE, json!({})).await;
    let session = crate::support::new_session(&gw, &root).await;
    let mut events = Events::open(&gw, &root, &session, None).await;
    let started = Instant::now();
    let (failed, kept) = run(&gw, &root, &session, &mut events).await;
    assert!(started.elapsed() < Duration::from_secs(15));
    assert_eq!(failed["status"], json!("failed"), "{failed}");
    let error = failed["error"].as_str().unwrap();
    assert!(error.contains(why), "{error}");
    assert_eq!(
        (
            kept["type"].clone(),
            kept["text"].clone(),
            kept["stop_reason"].clone()
        ),
        (json!("assistant"), json!("Hello there"), json!("error"))
    );
    let (next, answer) = run(&gw, &root, &session, &mut events).await;
    assert_eq!(next["status"], json!("completed"), "{next}");
    assert_eq!(answer["text"], json!("All good."));
}

const STALLED: &str = "the model sent nothing for 1s mid-answer";

#[tokio::test]
async fn a_model_going_quiet_mid_stream_is_cut_off_after_the_steps_idle_timeout() {
    let (_upstream, gw, root) = setup(vec![going_quiet()]).await;
    let started = Instant::now();
    let got = stream(&gw, &root, ROUTE).await;
    assert!(started.elapsed() < Duration::from_secs(15), "{got:?}");
    assert_eq!(got.text, "Hello there");
    assert_eq!(got.errors.len(), 1, "{got:?}");
    assert!(message(&got.errors[0]).contains(STALLED), "{got:?}");
    assert_eq!(got.errors[0]["error"]["code"], json!("upstream_error"));
    assert!(got.done, "{got:?}");
}

#[tokio::test]
async fn a_model_going_quiet_unstreamed_is_an_upstream_error_with_the_partial_text() {
    // A provider/model named directly gets the gateway's default idle timeout.
    let (_upstream, gw, root) =
        setup_with(vec![going_quiet()], |c| c.model_idle_timeout_secs = 1).await;
    let started = Instant::now();
    let (status, body) = complete(&gw, &root, "up/m").await;
    assert!(started.elapsed() < Duration::from_secs(15), "{body}");
    assert_eq!(status, StatusCode::BAD_GATEWAY, "{body}");
    assert_eq!(
        body["error"],
        json!({"code": "upstream_error", "message": format!("up/m: {STALLED}"),
            "partial_content": "Hello there"})
    );
}

#[tokio::test]
async fn a_run_whose_model_goes_quiet_fails_and_keeps_what_it_said() {
    a_run_fails_keeping_the_partial_answer(going_quiet(), STALLED).await;
}

#[tokio::test]
async fn bytes_that_are_not_utf8_keep_every_token_before_them() {
    let (_upstream, gw, root) = setup(vec![bad_bytes_after_three_tokens()]).await;
    let got = stream(&gw, &root, ROUTE).await;
    assert_eq!(got.text, "Hello there");
    assert_eq!(got.errors.len(), 1, "{got:?}");
    assert!(message(&got.errors[0]).contains("not UTF-8"), "{got:?}");
    assert!(got.done, "{got:?}");

    let (status, body) = complete(&gw, &root, ROUTE).await;
    assert_eq!(status, StatusCode::BAD_GATEWAY, "{body}");
    assert_eq!(body["error"]["code"], json!("upstream_error"));
    assert_eq!(body["error"]["partial_content"], json!("Hello there"));
}

#[tokio::test]
async fn a_run_whose_model_sends_bytes_that_are_not_utf8_keeps_the_tokens_before_them() {
    a_run_fails_keeping_the_partial_answer(bad_bytes_after_three_tokens(), "not UTF-8").await;
}

#[tokio::test]
async fn an_answer_that_is_no_event_stream_is_an_upstream_error() {
    let html = "<!DOCTYPE html>\n<html><head><title>Just a moment...</title></head>\n\
        <body>Checking your browser: please wait</body></html>\n";
    let (_upstream, gw, root) = setup(vec![
        Answer::body(200, "text/html; charset=utf-8", html),
        // An HTML page that says it is an event stream.
        Answer::body(200, "text/event-stream", html),
        // A server that ignored `stream: true`, or put its error in a 200.
        Answer::json(200, json!({"error": {"message": "the model is loading"}})),
        Answer::sse_raw::<&str>(&[]).then_bytes(Duration::ZERO, b"data: \xff\xfe\n\n"),
    ])
    .await;
    let mut got = Vec::new();
    for _ in 0..4 {
        let (status, body) = complete(&gw, &root, "up/m").await;
        got.push((
            status,
            body["error"]["code"].clone(),
            message(&body).to_string(),
        ));
    }
    let upstream_error = |m: &str| {
        (
            StatusCode::BAD_GATEWAY,
            json!("upstream_error"),
            m.to_string(),
        )
    };
    assert_eq!(
        got,
        vec![
            upstream_error(
                "up/m: malformed answer from the provider: it answered 200 with text/html; \
                 charset=utf-8, not an event stream"
            ),
            upstream_error(
                "up/m: malformed answer from the provider: the answer is not an event stream: \
                 <!DOCTYPE html> <html><head><title>Just a moment...</title></head> <body>Checking \
                 your browser: please wait</body></html>"
            ),
            upstream_error(
                "up/m: malformed answer from the provider: it answered 200 with application/json, \
                 not an event stream: the model is loading"
            ),
            upstream_error(
                "up/m: malformed answer from the provider: the event stream is not UTF-8"
            ),
        ]
    );
}

#[tokio::test]
async fn an_upstream_429_is_passed_on_with_the_shortest_retry_after() {
    let limited = |secs: &str| {
        Answer::json(429, json!({"error": {"message": "slow down"}}))
            .with_header("retry-after", secs)
    };
    let (_upstream, gw, root) = setup(vec![limited("7"), limited("3"), limited("5")]).await;
    let two_steps = json!({"name": "both", "scope": "gateway", "steps": [
        {"provider": "up", "model": "a", "timeout_ms": 5000},
        {"provider": "up", "model": "b", "timeout_ms": 5000}]});
    gw.expect(
        StatusCode::OK,
        Method::POST,
        "/api/v1/routes",
        &root,
        two_steps,
    )
    .await;
    let call = |model: &'static str| {
        let (gw, root) = (&gw, &root);
        async move {
            let resp = gw
                .http
                .post(format!("{}/v1/chat/completions", gw.url))
                .bearer_auth(root)
                .json(&json!({"model": model, "messages": [{"role": "user", "content": "hi"}]}))
                .send()
                .await
                .unwrap();
            let retry_after = resp
                .headers()
                .get("retry-after")
                .map(|v| v.to_str().unwrap().to_string());
            let status = resp.status();
            let body: Value = resp.json().await.unwrap();
            (status, body["error"]["code"].clone(), retry_after)
        }
    };
    let limited = |secs: &str| {
        (
            StatusCode::TOO_MANY_REQUESTS,
            json!("rate_limited"),
            Some(secs.to_string()),
        )
    };
    assert_eq!(call("both").await, limited("3"), "every step was limited");
    assert_eq!(call("up/c").await, limited("5"), "the only step was");
}

#[tokio::test]
async fn a_stream_that_breaks_off_says_so() {
    let (_upstream, gw, root) = setup(vec![three_tokens().then_cut_off()]).await;
    let got = stream(&gw, &root, ROUTE).await;
    assert_eq!(got.text, "Hello there");
    assert_eq!(got.errors.len(), 1, "{got:?}");
    let said = message(&got.errors[0]);
    assert!(
        said.contains("the provider's stream broke off after 4 events"),
        "{got:?}"
    );
    assert!(!said.contains("cannot connect"), "{got:?}");
    assert!(got.done, "{got:?}");

    let (status, body) = complete(&gw, &root, ROUTE).await;
    assert_eq!(status, StatusCode::BAD_GATEWAY, "{body}");
    assert!(
        message(&body).contains("broke off after 4 events"),
        "{body}"
    );
    assert_eq!(body["error"]["partial_content"], json!("Hello there"));
}

#[tokio::test]
async fn a_run_whose_stream_breaks_off_keeps_what_streamed() {
    a_run_fails_keeping_the_partial_answer(
        three_tokens().then_cut_off(),
        "broke off after 4 events",
    )
    .await;
}

#[tokio::test]
async fn a_steps_idle_timeout_is_kept_with_the_route_and_checked() {
    let (_upstream, gw, root) = setup(vec![]).await;
    let (_, routes) = gw
        .call(Method::GET, "/api/v1/routes", Some(&root), None)
        .await;
    assert_eq!(
        routes["items"][0]["steps"],
        json!([{"provider": "up", "model": "m", "timeout_ms": 5000, "idle_timeout_ms": 1000}])
    );
    let too_short = json!({"name": "bad", "scope": "gateway", "steps": [
        {"provider": "up", "model": "m", "idle_timeout_ms": 10}]});
    let (status, body) = gw
        .call(Method::POST, "/api/v1/routes", Some(&root), Some(too_short))
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(
        body["error"]["message"],
        json!("idle_timeout_ms must be from 100 to 600000")
    );
}
