//! Request bodies are read strictly, everywhere: an array where an object is required and
//! a field the type does not name are both a 400 that says so. The operations come from
//! the OpenAPI document itself, so a new route cannot be forgotten.

use pretty_assertions::assert_eq;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use crate::support::{document, filled_path, TestGateway};

/// Every documented operation whose body is a JSON object: method, path with its
/// parameters filled in, and the name of its request schema.
fn object_body_operations() -> Vec<(Method, String, String)> {
    let doc = document();
    let mut ops = Vec::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (method, op) in item.as_object().unwrap() {
            let schema = &op["requestBody"]["content"]["application/json"]["schema"];
            let Some(name) = schema["$ref"].as_str() else {
                continue;
            };
            let name = name.trim_start_matches("#/components/schemas/").to_string();
            let component = &doc["components"]["schemas"][&name];
            // Objects open by design (the OpenAI request) are read as free JSON.
            if component["type"] != json!("object")
                || component["additionalProperties"] == json!(true)
            {
                continue;
            }
            let path = filled_path(path);
            ops.push((method.to_uppercase().parse().unwrap(), path, name));
        }
    }
    ops
}

async fn send(
    gw: &TestGateway,
    token: &str,
    method: &Method,
    path: &str,
    body: Value,
) -> (StatusCode, String) {
    let (status, e) = gw.call(method.clone(), path, Some(token), Some(body)).await;
    (
        status,
        e["error"]["message"]
            .as_str()
            .unwrap_or_default()
            .to_string(),
    )
}

#[tokio::test]
async fn an_array_body_is_a_400_on_every_operation_that_takes_an_object() {
    let gw = TestGateway::start().await;
    let root = gw.admin("root").await;
    let ops = object_body_operations();
    // The operations the issue named are among them.
    for named in [
        "/api/v1/agents/x",
        "/api/v1/users/x",
        "/api/v1/workspaces/x",
        "/api/v1/sessions",
    ] {
        assert!(
            ops.iter().any(|(_, p, _)| p == named),
            "{named} is not walked"
        );
    }
    let mut wrong = Vec::new();
    for (method, path, schema) in &ops {
        let (status, message) = send(&gw, &root, method, path, json!([])).await;
        let expected =
            format!("invalid request body: invalid type: sequence, expected struct {schema}");
        if (status, message.as_str()) != (StatusCode::BAD_REQUEST, expected.as_str()) {
            wrong.push(format!("{method} {path}: {status} {message}"));
        }
    }
    assert_eq!(wrong, Vec::<String>::new());
}

#[tokio::test]
async fn an_unknown_field_is_a_400_naming_it_on_every_operation() {
    let gw = TestGateway::start().await;
    let root = gw.admin("root").await;
    let mut wrong = Vec::new();
    for (method, path, _) in object_body_operations() {
        let (status, message) = send(&gw, &root, &method, &path, json!({"disabeld": true})).await;
        if status != StatusCode::BAD_REQUEST
            || !message.starts_with("invalid request body: unknown field `disabeld`, expected")
        {
            wrong.push(format!("{method} {path}: {status} {message}"));
        }
    }
    assert_eq!(wrong, Vec::<String>::new());
}

#[tokio::test]
async fn nested_objects_are_held_to_their_shape() {
    let gw = TestGateway::start().await;
    let root = gw.admin("root").await;
    let (status, message) = send(
        &gw,
        &root,
        &Method::POST,
        "/api/v1/agents",
        json!({"name": "a", "limits": [1, 2]}),
    )
    .await;
    assert_eq!(
        (status, message.as_str()),
        (
            StatusCode::BAD_REQUEST,
            "invalid request body: limits: invalid type: sequence, expected struct AgentLimits"
        )
    );
    let (status, message) = send(
        &gw,
        &root,
        &Method::PATCH,
        "/api/v1/agents/default",
        json!({"limits": {"max_model_cals": 3}}),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{message}");
    assert!(
        message.starts_with("invalid request body: limits: unknown field `max_model_cals`"),
        "{message}"
    );
    // Nothing changed: the default agent still has the gateway's limits.
    let (_, agents) = gw
        .call(Method::GET, "/api/v1/agents", Some(&root), None)
        .await;
    assert_eq!(agents["items"][0]["limits"], json!({}));
}

#[tokio::test]
async fn a_typo_in_a_field_no_longer_passes_as_a_no_op() {
    let gw = TestGateway::start().await;
    let root = gw.admin("root").await;
    let (id, _) = gw.user(&root, "erin").await;
    let (status, message) = send(
        &gw,
        &root,
        &Method::PATCH,
        &format!("/api/v1/users/{id}"),
        json!({"disabeld": true}),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(
        message.contains("unknown field `disabeld`, expected one of"),
        "{message}"
    );
    assert!(message.contains("`disabled`"), "{message}");
}
