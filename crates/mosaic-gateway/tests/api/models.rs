//! Providers, routes and the OpenAI-compatible endpoint, end to end: a real gateway in
//! front of scripted upstream servers that speak the providers' wire formats.

use pretty_assertions::assert_eq;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use mosaic_test_support::scripted::{Answer, Scripted};

use crate::support::{chunk, TestGateway};

fn text_answer(text: &str, prompt_tokens: u64, completion_tokens: u64) -> Answer {
    Answer::sse_data(&[
        chunk(json!({"role": "assistant", "content": ""}), None),
        chunk(json!({"content": text}), None),
        chunk(json!({}), Some("stop")),
        json!({"choices": [], "usage": {"prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens}})
            .to_string(),
        "[DONE]".to_string(),
    ])
}

fn tool_answer() -> Answer {
    Answer::sse_data(&[
        chunk(
            json!({"tool_calls": [{"index": 0, "id": "call_1", "type": "function",
            "function": {"name": "get_time", "arguments": ""}}]}),
            None,
        ),
        chunk(
            json!({"tool_calls": [{"index": 0, "function": {"arguments": "{\"tz\": \"UTC\"}"}}]}),
            None,
        ),
        chunk(json!({}), Some("tool_calls")),
        "[DONE]".to_string(),
    ])
}

/// An admin's gateway-wide provider pointing at a scripted upstream.
async fn add_provider(
    gw: &TestGateway,
    admin: &str,
    name: &str,
    upstream: &Scripted,
    key: &str,
) -> Value {
    let (status, body) = gw
        .call(
            Method::POST,
            "/api/v1/providers",
            Some(admin),
            Some(json!({"name": name, "kind": "openai-compatible", "base_url": format!("{}/v1", upstream.base_url),
                "api_key": key, "scope": "gateway"})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    body
}

#[tokio::test]
async fn chat_completions_go_through_the_named_provider_and_are_metered() {
    let upstream = Scripted::start(vec![text_answer("Hello!", 11, 3)]).await;
    let gw = TestGateway::start().await;
    let root = gw.admin("root").await;
    let (_, alice) = gw.user(&root, "alice").await;
    let provider = add_provider(&gw, &root, "local", &upstream, "sk-upstream-secret").await;
    assert_eq!(provider["has_api_key"], json!(true));
    assert!(!provider.to_string().contains("sk-upstream-secret"));

    let (status, answer) = gw
        .call(
            Method::POST,
            "/v1/chat/completions",
            Some(&alice),
            Some(json!({"model": "local/tiny", "messages": [{"role": "user", "content": "hi"}]})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    assert_eq!(answer["object"], json!("chat.completion"));
    assert_eq!(
        answer["choices"][0]["message"],
        json!({"role": "assistant", "content": "Hello!"})
    );
    assert_eq!(answer["choices"][0]["finish_reason"], json!("stop"));
    assert_eq!(answer["usage"]["prompt_tokens"], json!(11));
    assert_eq!(answer["mosaic"]["provider"], json!("local"));
    // The upstream got the model name and the decrypted key, nothing else of ours.
    let sent = &upstream.received()[0];
    assert_eq!(sent.body["model"], json!("tiny"));
    assert_eq!(
        sent.header("authorization"),
        Some("Bearer sk-upstream-secret")
    );

    // Usage lands on alice's tally (recorded as the call ends).
    let mut rows = Value::Null;
    for _ in 0..50 {
        let (_, usage) = gw
            .call(Method::GET, "/api/v1/usage", Some(&alice), None)
            .await;
        if !usage["items"].as_array().unwrap().is_empty() {
            rows = usage["items"].clone();
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert_eq!(rows[0]["provider"], json!("local"));
    assert_eq!(rows[0]["model"], json!("tiny"));
    assert_eq!(
        (rows[0]["requests"].clone(), rows[0]["input_tokens"].clone()),
        (json!(1), json!(11))
    );
}

#[tokio::test]
async fn a_route_falls_back_and_says_so_and_health_shows_the_failure() {
    let down = Scripted::start(vec![Answer::json(
        503,
        json!({"error": {"message": "maintenance"}}),
    )])
    .await;
    let up = Scripted::start(vec![text_answer("from backup", 5, 2)]).await;
    let gw = TestGateway::start().await;
    let root = gw.admin("root").await;
    add_provider(&gw, &root, "primary", &down, "k1").await;
    add_provider(&gw, &root, "backup", &up, "k2").await;
    let (status, route) = gw
        .call(
            Method::POST,
            "/api/v1/routes",
            Some(&root),
            Some(json!({"name": "default", "scope": "gateway", "steps": [
                {"provider": "primary", "model": "big", "timeout_ms": 2000},
                {"provider": "backup", "model": "small", "timeout_ms": 2000}]})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{route}");
    let resp = gw
        .http
        .post(format!("{}/v1/chat/completions", gw.url))
        .bearer_auth(&root)
        .json(&json!({"model": "default", "messages": [{"role": "user", "content": "hi"}]}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(resp.headers()["x-mosaic-provider"], "backup");
    let fallbacks: Value =
        serde_json::from_str(resp.headers()["x-mosaic-fallbacks"].to_str().unwrap()).unwrap();
    assert_eq!(fallbacks[0]["provider"], json!("primary"));
    assert!(fallbacks[0]["error"]
        .as_str()
        .unwrap()
        .contains("maintenance"));
    let body: Value = resp.json().await.unwrap();
    assert_eq!(
        body["choices"][0]["message"]["content"],
        json!("from backup")
    );
    let (_, health) = gw
        .call(Method::GET, "/api/v1/models/health", Some(&root), None)
        .await;
    let primary = health["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|h| h["provider"] == json!("primary"))
        .unwrap()
        .clone();
    assert_eq!(primary["healthy"], json!(false));
    assert!(primary["last_error"].as_str().unwrap().contains("503"));
}

#[tokio::test]
async fn streamed_completions_arrive_as_openai_chunks() {
    let upstream = Scripted::start(vec![text_answer("Hi there", 4, 2)]).await;
    let gw = TestGateway::start().await;
    let root = gw.admin("root").await;
    add_provider(&gw, &root, "local", &upstream, "k").await;
    let text = gw
        .http
        .post(format!("{}/v1/chat/completions", gw.url))
        .bearer_auth(&root)
        .json(
            &json!({"model": "local/m", "stream": true, "stream_options": {"include_usage": true},
            "messages": [{"role": "user", "content": "hi"}]}),
        )
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let payloads: Vec<&str> = text
        .lines()
        .filter_map(|l| l.strip_prefix("data: "))
        .collect();
    assert_eq!(payloads.last(), Some(&"[DONE]"));
    let chunks: Vec<Value> = payloads[..payloads.len() - 1]
        .iter()
        .map(|p| serde_json::from_str(p).unwrap())
        .collect();
    let content: String = chunks
        .iter()
        .filter_map(|c| c["choices"][0]["delta"]["content"].as_str())
        .collect();
    assert_eq!(content, "Hi there");
    assert!(chunks
        .iter()
        .any(|c| c["choices"][0]["finish_reason"] == json!("stop")));
    assert_eq!(
        chunks.last().unwrap()["usage"]["completion_tokens"],
        json!(2)
    );
}

#[tokio::test]
async fn users_cannot_point_their_own_providers_at_internal_addresses() {
    let gw = TestGateway::start().await;
    let root = gw.admin("root").await;
    let (_, alice) = gw.user(&root, "alice").await;
    for url in [
        "http://127.0.0.1:9/v1",
        "http://169.254.169.254/v1",
        "http://[::ffff:10.0.0.1]/v1",
        "http://localhost:9/v1",
    ] {
        let (status, body) = gw
            .call(
                Method::POST,
                "/api/v1/providers",
                Some(&alice),
                Some(json!({"name": "sneaky", "kind": "openai-compatible", "base_url": url})),
            )
            .await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{url}: {body}");
    }
    // And users cannot make gateway-wide ones at all.
    let (status, _) = gw
        .call(
            Method::POST,
            "/api/v1/providers",
            Some(&alice),
            Some(json!({"name": "x", "kind": "openai-compatible", "base_url": "http://203.0.113.1/v1", "scope": "gateway"})),
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn provider_keys_are_encrypted_at_rest() {
    let gw = TestGateway::start().await;
    let root = gw.admin("root").await;
    let upstream = Scripted::start(vec![text_answer("x", 1, 1)]).await;
    add_provider(&gw, &root, "local", &upstream, "sk-find-me-if-you-can").await;
    let dir = gw.data_dir();
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        let bytes = std::fs::read(&path).unwrap();
        let found = bytes.windows(21).any(|w| w == b"sk-find-me-if-you-can");
        assert!(!found, "the key is in plain text in {}", path.display());
    }
}

#[tokio::test]
async fn the_official_openai_python_sdk_works_against_the_gateway() {
    let pythonpath = std::env::var("MOSAIC_TEST_PYTHONPATH").unwrap_or_default();
    assert!(
        !pythonpath.is_empty(),
        "MOSAIC_TEST_PYTHONPATH is not set: this test needs the `openai` Python SDK. \
         Run scripts/test.sh, or `eval \"$(scripts/services.sh install-openai-sdk)\"`"
    );
    let upstream = Scripted::start(vec![
        text_answer("Hello from Mosaic", 7, 4),
        text_answer("Streamed words", 6, 2),
        tool_answer(),
        text_answer("unused", 1, 1),
    ])
    .await;
    let gw = TestGateway::start().await;
    let root = gw.admin("root").await;
    add_provider(&gw, &root, "local", &upstream, "k").await;
    let (_, token) = gw
        .call(
            Method::POST,
            "/api/v1/tokens",
            Some(&root),
            Some(json!({"name": "sdk"})),
        )
        .await;
    let script =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/python/openai_sdk.py");
    let url = gw.url.clone();
    let token = token["token"].as_str().unwrap().to_string();
    let output = tokio::task::spawn_blocking(move || {
        std::process::Command::new("python3")
            .arg(script)
            .env("PYTHONPATH", pythonpath)
            .env("MOSAIC_BASE_URL", format!("{url}/v1"))
            .env("MOSAIC_TOKEN", token)
            .env("MOSAIC_MODEL", "local/tiny")
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let seen: Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(
        seen["plain"],
        json!({"content": "Hello from Mosaic", "finish_reason": "stop", "prompt_tokens": 7, "completion_tokens": 4})
    );
    assert_eq!(
        seen["stream"],
        json!({"content": "Streamed words", "completion_tokens": 2})
    );
    assert_eq!(
        seen["tool_call"],
        json!({"finish_reason": "tool_calls", "name": "get_time", "arguments": {"tz": "UTC"}, "id": "call_1"})
    );
    assert_eq!(seen["unknown_model"], json!(404));
    // The tool definitions reached the upstream as the SDK sent them.
    let tool_request = &upstream.received()[2].body;
    assert_eq!(
        tool_request["tools"][0]["function"]["name"],
        json!("get_time")
    );
    assert_eq!(
        tool_request["tools"][0]["function"]["parameters"]["required"],
        json!(["tz"])
    );
}
