//! A provider's failures as callers see them: an upstream that quotes the gateway's key
//! in its error leaks it nowhere (API errors, stored runs, the model list, the log); a
//! refused key is an upstream failure (502, `upstream_auth_failed`); users of an
//! admin's provider read the kind of failure, admins the redacted detail.

use std::io::Write;
use std::sync::{Arc, Mutex};

use pretty_assertions::assert_eq;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use mosaic_test_support::scripted::{Answer, Scripted};

use crate::support::{chunk, new_session, Events, TestGateway};

const KEY: &str = "sk-admin-7fQ2xLp9Vb3Nm8Rt4Kw6Yz1Hc5Jd0Gs";

/// What some proxies and self-hosted servers answer to a bad key: the key itself.
fn quoting_the_key() -> Answer {
    Answer::json(
        401,
        json!({"error": {"message": format!(
            "Incorrect API key provided: Bearer {KEY} (also seen as sk-admin-7fQ2****Jd0Gs)"),
            "type": "invalid_request_error"}}),
    )
}

/// Everything the gateway logs on this thread, for as long as the guard lives. Tests run
/// on a current-thread runtime, so the gateway's tasks log here too.
#[derive(Clone, Default)]
struct Log(Arc<Mutex<Vec<u8>>>);

impl Write for Log {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Log {
    fn capture() -> (Log, tracing::subscriber::DefaultGuard) {
        let log = Log::default();
        let writer = log.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_max_level(tracing::Level::TRACE)
            .with_writer(move || writer.clone())
            .finish();
        (log, tracing::subscriber::set_default(subscriber))
    }

    fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
    }
}

/// Neither the whole key nor a telling piece of it.
fn assert_no_key(what: &str, text: &str) {
    for piece in [KEY, "7fQ2xLp9Vb3Nm8Rt", "Hc5Jd0Gs"] {
        assert!(!text.contains(piece), "{what} holds the key: {text}");
    }
}

/// A gateway whose admin (root) set up the provider `shared` with [`KEY`] on a scripted
/// upstream answering `answer`, and a plain user (alice) who uses it.
async fn shared_provider(answer: Answer) -> (Scripted, TestGateway, String, String) {
    let upstream = Scripted::start(vec![answer]).await;
    let gw = TestGateway::start().await;
    let root = gw.admin("root").await;
    let (_, alice) = gw.user(&root, "alice").await;
    let base_url = format!("{}/v1", upstream.base_url);
    gw.provider(&root, "gateway", "shared", &base_url, KEY)
        .await;
    (upstream, gw, root, alice)
}

async fn complete(gw: &TestGateway, token: &str) -> (StatusCode, Value) {
    gw.call(
        Method::POST,
        "/v1/chat/completions",
        Some(token),
        Some(json!({"model": "shared/tiny", "messages": [{"role": "user", "content": "hi"}]})),
    )
    .await
}

#[tokio::test]
async fn an_upstream_quoting_the_key_leaks_it_nowhere_and_users_read_only_the_kind_of_failure() {
    let (log, _guard) = Log::capture();
    let (upstream, gw, root, alice) = shared_provider(quoting_the_key()).await;

    // The OpenAI-compatible endpoint: an upstream failure, in words each may read.
    let (status, as_alice) = complete(&gw, &alice).await;
    assert_eq!(status, StatusCode::BAD_GATEWAY, "{as_alice}");
    assert_eq!(
        as_alice["error"],
        json!({"code": "upstream_auth_failed",
            "message": "shared/tiny: the provider answered 401: details are shown to admins only"})
    );
    let (status, as_root) = complete(&gw, &root).await;
    assert_eq!(status, StatusCode::BAD_GATEWAY, "{as_root}");
    assert_eq!(
        as_root["error"],
        json!({"code": "upstream_auth_failed",
            "message": "shared/tiny: the provider answered 401: Incorrect API key provided: \
                Bearer [redacted] (also seen as [redacted])"})
    );

    // The model list.
    let (_, models) = gw
        .call(Method::GET, "/api/v1/models", Some(&alice), None)
        .await;
    assert_eq!(
        models["errors"],
        json!(["shared: the provider answered 401: details are shown to admins only"])
    );
    let (_, admin_models) = gw
        .call(Method::GET, "/api/v1/models", Some(&root), None)
        .await;
    assert_no_key("the admin's model list", &admin_models.to_string());
    assert!(admin_models["errors"][0]
        .as_str()
        .unwrap()
        .contains("Incorrect API key provided"));

    // A run of alice's agent through the provider fails, and its stored error is clean.
    let (_, agents) = gw
        .call(Method::GET, "/api/v1/agents", Some(&alice), None)
        .await;
    let agent = agents["items"][0]["id"].as_str().unwrap().to_string();
    let route = json!({"route": "shared/tiny"});
    let agent_path = format!("/api/v1/agents/{agent}");
    gw.expect(StatusCode::OK, Method::PATCH, &agent_path, &alice, route)
        .await;
    let session = new_session(&gw, &alice).await;
    let mut events = Events::open(&gw, &alice, &session, None).await;
    let messages = format!("/api/v1/sessions/{session}/messages");
    let hello = json!({"text": "hello"});
    gw.expect(StatusCode::ACCEPTED, Method::POST, &messages, &alice, hello)
        .await;
    let finished = events.until_finished().await;
    let run = finished.last().unwrap().data["run"].clone();
    assert_eq!(run["status"], json!("failed"), "{run}");
    let (_, runs) = gw
        .call(
            Method::GET,
            &format!("/api/v1/sessions/{session}/runs"),
            Some(&alice),
            None,
        )
        .await;
    let stored = runs["items"][0]["error"].as_str().unwrap().to_string();
    assert!(
        stored.contains("details are shown to admins only"),
        "{stored}"
    );
    assert_no_key("the run's error", &runs.to_string());

    // Nothing in the data directory (the SQLite file and its WAL) holds it either.
    for entry in std::fs::read_dir(gw.data_dir()).unwrap() {
        let path = entry.unwrap().path();
        let bytes = std::fs::read(&path).unwrap();
        let found = bytes.windows(KEY.len()).any(|w| w == KEY.as_bytes())
            || bytes.windows(16).any(|w| w == b"7fQ2xLp9Vb3Nm8Rt");
        assert!(!found, "the key is in plain text in {}", path.display());
    }

    assert_eq!(upstream.received().len(), 5);
    let logged = log.text();
    assert!(logged.contains("Incorrect API key provided"), "{logged}");
    assert_no_key("the gateway's log", &logged);
}

#[tokio::test]
async fn a_users_own_provider_shows_them_the_redacted_detail_of_its_refused_key() {
    let upstream = Scripted::start(vec![quoting_the_key()]).await;
    let gw = TestGateway::start_with(|c| c.allow_private_user_providers = true).await;
    let root = gw.admin("root").await;
    let (_, alice) = gw.user(&root, "alice").await;
    let base_url = format!("{}/v1", upstream.base_url);
    gw.provider(&alice, "user", "shared", &base_url, KEY).await;
    let (status, answer) = complete(&gw, &alice).await;
    assert_eq!(status, StatusCode::BAD_GATEWAY, "{answer}");
    assert_eq!(answer["error"]["code"], json!("upstream_auth_failed"));
    let message = answer["error"]["message"].as_str().unwrap();
    assert!(
        message.contains("Incorrect API key provided: Bearer [redacted]"),
        "{message}"
    );
    assert_no_key("the owner's error", message);
}

#[tokio::test]
async fn fallbacks_and_health_show_users_only_the_kind_of_failure() {
    let down = Scripted::start(vec![Answer::json(
        503,
        json!({"error": {"message": format!("maintenance; your key {KEY} is fine")}}),
    )])
    .await;
    let up = Scripted::start(vec![Answer::sse_data(&[
        chunk(json!({"role": "assistant", "content": "from backup"}), None),
        chunk(json!({}), Some("stop")),
        "[DONE]".to_string(),
    ])])
    .await;
    let gw = TestGateway::start().await;
    let root = gw.admin("root").await;
    let (_, alice) = gw.user(&root, "alice").await;
    gw.provider(
        &root,
        "gateway",
        "primary",
        &format!("{}/v1", down.base_url),
        KEY,
    )
    .await;
    gw.provider(
        &root,
        "gateway",
        "backup",
        &format!("{}/v1", up.base_url),
        "k2",
    )
    .await;
    let route = json!({"name": "default", "scope": "gateway", "steps": [
        {"provider": "primary", "model": "big", "timeout_ms": 2000},
        {"provider": "backup", "model": "small", "timeout_ms": 2000}]});
    gw.expect(StatusCode::OK, Method::POST, "/api/v1/routes", &root, route)
        .await;
    // (The primary then cools down, so this is the one call that falls back.)
    let resp = gw
        .http
        .post(format!("{}/v1/chat/completions", gw.url))
        .bearer_auth(&alice)
        .json(&json!({"model": "default", "messages": [{"role": "user", "content": "hi"}]}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let header = resp.headers()["x-mosaic-fallbacks"].to_str().unwrap();
    let fallbacks: Value = serde_json::from_str(header).unwrap();
    assert_eq!(
        fallbacks[0]["error"],
        json!("the provider answered 503: details are shown to admins only")
    );
    let last_error = |token: String| {
        let gw = &gw;
        async move {
            let (_, health) = gw
                .call(Method::GET, "/api/v1/models/health", Some(&token), None)
                .await;
            health["items"][0]["last_error"].clone()
        }
    };
    assert_eq!(
        last_error(alice).await,
        json!("the provider answered 503: details are shown to admins only")
    );
    assert_eq!(
        last_error(root).await,
        json!("the provider answered 503: maintenance; your key [redacted] is fine")
    );
}

#[tokio::test]
async fn an_error_mid_stream_is_redacted_and_hidden_from_users() {
    let (_upstream, gw, root, alice) = shared_provider(Answer::sse_data(&[
        chunk(json!({"role": "assistant", "content": "Hel"}), None),
        json!({"error": {"message": format!("quota of key {KEY} exhausted")}}).to_string(),
    ]))
    .await;
    let streamed = |token: String| {
        let gw = &gw;
        async move {
            gw.http
                .post(format!("{}/v1/chat/completions", gw.url))
                .bearer_auth(token)
                .json(&json!({"model": "shared/tiny", "stream": true,
                    "messages": [{"role": "user", "content": "hi"}]}))
                .send()
                .await
                .unwrap()
                .text()
                .await
                .unwrap()
        }
    };
    let as_alice = streamed(alice).await;
    assert!(as_alice.contains("Hel"), "{as_alice}");
    assert!(
        as_alice.contains("the provider reported an error: details are shown to admins only"),
        "{as_alice}"
    );
    let as_root = streamed(root).await;
    assert!(
        as_root.contains("quota of key [redacted] exhausted"),
        "{as_root}"
    );
    assert_no_key("the streams", &format!("{as_alice}{as_root}"));
}
