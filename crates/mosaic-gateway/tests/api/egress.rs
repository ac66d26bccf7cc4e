//! What users' own providers can reach: the address policy holds at call time, on every
//! connection, whatever the URL's form, through redirects and across restarts.
//!
//! The "allowed" upstream listens on 127.0.0.2, which the gateway lets users' providers
//! reach through `user_provider_allow_networks`; the internal service on 127.0.0.1 (and
//! `[::1]`) must never see a request.

use pretty_assertions::assert_eq;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use mosaic_test_support::scripted::{Answer, Scripted};

use crate::support::TestGateway;

const INTERNAL_MODEL: &str = "internal-only-model";

fn port(s: &Scripted) -> String {
    s.base_url.rsplit(':').next().unwrap().to_string()
}

/// A model list that must never reach a user.
fn internal_models() -> Answer {
    Answer::json(
        200,
        json!({"object": "list", "data": [{"id": INTERNAL_MODEL}]}),
    )
}

async fn own_provider(gw: &TestGateway, token: &str, name: &str, base_url: &str) -> Value {
    gw.provider(token, "user", name, base_url, "sk-alice-own-key-0000000000")
        .await
}

#[tokio::test]
async fn a_users_provider_redirecting_to_loopback_literals_shows_nothing_of_the_internal_service() {
    let internal = Scripted::start(vec![internal_models()]).await;
    let internal_v6 = Scripted::start_on("[::1]:0", vec![internal_models()]).await;
    let gw = TestGateway::start_with(|c| {
        c.user_provider_allow_networks = vec!["127.0.0.2/32".into()];
    })
    .await;
    let root = gw.admin("root").await;
    let (_, alice) = gw.user(&root, "alice").await;
    let targets = [
        format!("http://127.0.0.1:{}/v1/models", port(&internal)),
        format!("http://[::1]:{}/v1/models", port(&internal_v6)),
        format!("http://2130706433:{}/v1/models", port(&internal)),
    ];
    let mut redirectors = Vec::new();
    for status in [302, 307] {
        for (i, target) in targets.iter().enumerate() {
            let redirector = Scripted::start_on(
                "127.0.0.2:0",
                vec![Answer::json(status, json!({})).with_header("location", target)],
            )
            .await;
            let name = format!("moved{status}x{i}");
            own_provider(&gw, &alice, &name, &format!("{}/v1", redirector.base_url)).await;
            redirectors.push(redirector);
        }
    }
    let (status, models) = gw
        .call(Method::GET, "/api/v1/models", Some(&alice), None)
        .await;
    assert_eq!(status, StatusCode::OK, "{models}");
    assert!(!models.to_string().contains(INTERNAL_MODEL), "{models}");
    let errors = models["errors"].as_array().unwrap();
    assert_eq!(errors.len(), 6, "{models}");
    for e in errors {
        assert!(e.as_str().unwrap().contains("redirect"), "{e}");
    }
    for r in &redirectors {
        assert_eq!(r.received().len(), 1);
    }
    assert_eq!(internal.received().len(), 0);
    assert_eq!(internal_v6.received().len(), 0);
}

#[tokio::test]
async fn a_users_provider_at_a_loopback_literal_is_refused_at_call_time() {
    let internal = Scripted::start(vec![internal_models()]).await;
    let gw = TestGateway::start_with(|c| c.allow_private_user_providers = true).await;
    let root = gw.admin("root").await;
    let (_, alice) = gw.user(&root, "alice").await;
    let literal = format!("http://2130706433:{}/v1", port(&internal));
    own_provider(&gw, &alice, "mine", &literal).await;

    // The gateway comes back with private addresses forbidden again.
    let gw = gw.restart_with(|_| {}).await;
    let alice = gw.login("alice").await;
    let (status, models) = gw
        .call(Method::GET, "/api/v1/models", Some(&alice), None)
        .await;
    assert_eq!(status, StatusCode::OK, "{models}");
    assert_eq!(models["items"], json!([]));
    let error = models["errors"][0].as_str().unwrap();
    assert!(
        error.contains(
            "127.0.0.1 is a loopback address; users' providers may not reach it unless the \
             gateway sets allow_private_user_providers"
        ),
        "{error}"
    );
    let (status, answer) = gw
        .call(
            Method::POST,
            "/v1/chat/completions",
            Some(&alice),
            Some(json!({"model": "mine/tiny", "messages": [{"role": "user", "content": "hi"}]})),
        )
        .await;
    assert!(status.is_server_error(), "{status} {answer}");
    let message = answer["error"]["message"].as_str().unwrap();
    assert!(message.contains("is a loopback address"), "{message}");
    assert_eq!(internal.received().len(), 0);
}

#[tokio::test]
async fn creating_a_users_provider_names_the_refused_address_and_the_settings() {
    let gw = TestGateway::start_with(|c| {
        c.user_provider_allow_networks = vec!["127.0.0.2/32".into()];
    })
    .await;
    let root = gw.admin("root").await;
    let (_, alice) = gw.user(&root, "alice").await;
    let (status, body) = gw
        .call(
            Method::POST,
            "/api/v1/providers",
            Some(&alice),
            Some(
                json!({"name": "x", "kind": "openai-compatible", "base_url": "http://0x7f.1:9/v1"}),
            ),
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    assert_eq!(
        body["error"]["message"],
        json!(
            "base_url reaches 127.0.0.1, a loopback address; your own providers may not use \
             loopback or private addresses unless the gateway sets allow_private_user_providers \
             (or lists it in user_provider_allow_networks); an admin can add it for the gateway \
             instead"
        )
    );
    // An allowed block is allowed.
    own_provider(&gw, &alice, "lan", "http://127.0.0.2:9/v1").await;
}
