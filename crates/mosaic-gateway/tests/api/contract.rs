//! The OpenAPI document and the server agree: query parameters have their real bounds and
//! formats in the document and the server refuses what the document forbids; every
//! operation lists the error statuses it can answer. (`scripts/schemathesis.sh` fuzzes
//! the same agreement at large; these pin the cases it found.)

use pretty_assertions::assert_eq;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use crate::support::{document, filled_path, TestGateway};

/// Every GET operation with a `limit` parameter: path (parameters filled with `x`) and
/// the documented maximum.
fn list_operations(doc: &Value) -> Vec<(String, u64)> {
    let mut ops = Vec::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        let Some(params) = item["get"]["parameters"].as_array() else {
            continue;
        };
        let Some(limit) = params.iter().find(|p| p["name"] == json!("limit")) else {
            continue;
        };
        assert_eq!(limit["schema"]["minimum"], json!(1), "GET {path}");
        let path = filled_path(path);
        ops.push((path, limit["schema"]["maximum"].as_u64().unwrap()));
    }
    ops
}

#[tokio::test]
async fn a_limit_outside_its_documented_range_is_a_400_on_every_list() {
    let gw = TestGateway::start().await;
    let root = gw.admin("root").await;
    let doc = document();
    let ops = list_operations(&doc);
    for named in [
        "/api/v1/teams",
        "/api/v1/tokens",
        "/api/v1/users",
        "/api/v1/workspaces",
        "/api/v1/tasks",
        "/api/v1/sessions",
    ] {
        assert!(
            ops.iter().any(|(p, _)| p == named),
            "{named} has no documented limit"
        );
    }
    let mut wrong = Vec::new();
    for (path, max) in &ops {
        let sep = if path.contains('?') { '&' } else { '?' };
        let search = if path.ends_with("/search") {
            "q=x&"
        } else {
            ""
        };
        for (limit, ok) in [
            (0, false),
            (*max, true),
            (max + 1, false),
            (2_147_483_648, false),
        ] {
            let url = format!("{path}{sep}{search}limit={limit}");
            let (status, body) = gw.call(Method::GET, &url, Some(&root), None).await;
            let expected = match (ok, path.contains("/x")) {
                (false, _) => StatusCode::BAD_REQUEST,
                (true, false) => StatusCode::OK,
                (true, true) => StatusCode::NOT_FOUND,
            };
            if status != expected {
                wrong.push(format!("GET {url}: {status} {body}"));
            }
        }
    }
    assert_eq!(wrong, Vec::<String>::new());
}

#[tokio::test]
async fn unknown_and_empty_query_parameters_are_refused_by_name() {
    let gw = TestGateway::start().await;
    let root = gw.admin("root").await;
    let (status, e) = gw
        .call(Method::GET, "/api/v1/tasks?stauts=done", Some(&root), None)
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let message = e["error"]["message"].as_str().unwrap();
    assert!(
        message.starts_with("unknown query parameter `stauts`, expected one of"),
        "{message}"
    );
    assert!(message.contains("`status`"), "{message}");
    let (status, e) = gw
        .call(Method::GET, "/api/v1/usage?to=", Some(&root), None)
        .await;
    assert_eq!(
        (status, e["error"]["message"].clone()),
        (
            StatusCode::BAD_REQUEST,
            json!("query parameter `to` is empty: leave it out instead")
        )
    );
}

#[tokio::test]
async fn times_and_days_take_exactly_the_documented_shape() {
    let gw = TestGateway::start().await;
    let root = gw.admin("root").await;
    let doc = document();
    let param = |path: &str, name: &str| {
        doc["paths"][path]["get"]["parameters"]
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["name"] == json!(name))
            .unwrap()["schema"]
            .clone()
    };
    assert_eq!(
        param("/api/v1/tasks", "due_before")["format"],
        json!("date-time")
    );
    assert_eq!(
        param("/api/v1/tasks", "due_before")["pattern"],
        json!(mosaic_api::time::TIMESTAMP_PATTERN)
    );
    assert_eq!(param("/api/v1/usage", "from")["format"], json!("date"));
    for (url, expected) in [
        (
            "/api/v1/tasks?due_before=2026-12-04T18:30:00.25Z",
            StatusCode::OK,
        ),
        (
            "/api/v1/tasks?due_before=2026-12-04T18:30:00%2B01:00",
            StatusCode::BAD_REQUEST,
        ),
        (
            "/api/v1/tasks?due_before=2026-12-04",
            StatusCode::BAD_REQUEST,
        ),
        (
            "/api/v1/usage?from=2024-02-29&to=2024-03-01",
            StatusCode::OK,
        ),
        ("/api/v1/usage?from=2023-02-29", StatusCode::BAD_REQUEST),
    ] {
        let (status, body) = gw.call(Method::GET, url, Some(&root), None).await;
        assert_eq!(status, expected, "{url}: {body}");
    }
    let task = json!({"title": "t", "due_at": "2026-12-04 18:30:00"});
    let (status, e) = gw
        .call(Method::POST, "/api/v1/tasks", Some(&root), Some(task))
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(
        e["error"]["message"]
            .as_str()
            .unwrap()
            .starts_with("invalid request body: due_at:"),
        "{e}"
    );
}

#[tokio::test]
async fn the_default_agent_cannot_be_deleted_which_is_a_conflict() {
    let gw = TestGateway::start().await;
    let root = gw.admin("root").await;
    let (_, agents) = gw
        .call(Method::GET, "/api/v1/agents", Some(&root), None)
        .await;
    let id = agents["items"][0]["id"].as_str().unwrap();
    let (status, e) = gw
        .call(
            Method::DELETE,
            &format!("/api/v1/agents/{id}"),
            Some(&root),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT, "{e}");
    let responses = &document()["paths"]["/api/v1/agents/{id}"]["delete"]["responses"];
    assert!(responses["409"].is_object(), "{responses}");
}

#[test]
fn every_operation_lists_the_errors_it_can_answer() {
    let doc = document();
    let mut missing = Vec::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (method, op) in item.as_object().unwrap() {
            let public = op["security"] == json!([{}]);
            let has_params = op["parameters"].as_array().is_some_and(|p| !p.is_empty());
            let has_body = op["requestBody"].is_object();
            let has_path = path.contains('{');
            let expected = [
                ("500", true),
                ("401", !public),
                ("403", !public),
                ("400", has_params || has_body),
                ("413", has_body),
                ("404", has_path),
                ("409", !public && method != "get"),
            ];
            for (status, due) in expected {
                if due && !op["responses"][status].is_object() {
                    missing.push(format!("{method} {path}: {status}"));
                }
            }
        }
    }
    assert_eq!(missing, Vec::<String>::new());
    // The ones Schemathesis found answering a 400 the document did not list.
    for path in [
        "/api/v1/teams",
        "/api/v1/tokens",
        "/api/v1/users",
        "/api/v1/workspaces",
    ] {
        assert!(
            doc["paths"][path]["get"]["responses"]["400"].is_object(),
            "GET {path}"
        );
    }
}

#[test]
fn request_objects_are_closed_in_the_document() {
    let doc = document();
    let schemas = &doc["components"]["schemas"];
    for name in [
        "UpdateUserRequest",
        "CreateAgentRequest",
        "AgentLimits",
        "AgentTool",
        "Milestone",
    ] {
        assert_eq!(
            schemas[name]["additionalProperties"],
            json!(false),
            "{name}"
        );
    }
    // Response-only types stay open: a newer gateway may add fields.
    assert_eq!(schemas["User"]["additionalProperties"], Value::Null);
}

#[tokio::test]
async fn what_the_document_allows_on_entries_and_events_is_taken() {
    let gw = TestGateway::start().await;
    let root = gw.admin("root").await;
    let doc = document();
    let params = |path: &str| {
        doc["paths"][path]["get"]["parameters"]
            .as_array()
            .unwrap()
            .clone()
    };
    let events = params("/api/v1/sessions/{id}/events");
    let last_event_id = events
        .iter()
        .find(|p| p["name"] == json!("Last-Event-ID"))
        .unwrap();
    assert_eq!(
        last_event_id["schema"]["type"],
        json!("integer"),
        "{last_event_id}"
    );
    let entries = params("/api/v1/sessions/{id}/entries");
    let leaf = entries.iter().find(|p| p["name"] == json!("leaf")).unwrap();
    assert_eq!(leaf["schema"]["minLength"], json!(1), "{leaf}");

    let (_, session) = gw
        .call(
            Method::POST,
            "/api/v1/sessions",
            Some(&root),
            Some(json!({})),
        )
        .await;
    let id = session["id"].as_str().unwrap();
    // A leaf the document allows but that names nothing is not found, not a bad request.
    let (status, _) = gw
        .call(
            Method::GET,
            &format!("/api/v1/sessions/{id}/entries?leaf=00"),
            Some(&root),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    // An event number beyond int64 is refused as the document says.
    let resp = gw
        .http
        .get(format!(
            "{}/api/v1/sessions/{id}/events?after=9223372036854775808",
            gw.url
        ))
        .bearer_auth(&root)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
}
