//! Session export and import over HTTP: JSON Lines out, the same session (under a new
//! id) back in, byte for byte; malformed or oversized imports refused whole.

use mosaic_api::EntryBody;
use mosaic_store::Parent;
use mosaic_test_support::engines;
use pretty_assertions::assert_eq;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use crate::sessions::{append, branched, caller, get, titles, user};
use crate::support::TestGateway;

engines!(an_export_imports_back_as_a_new_session_that_exports_the_same);

/// `GET /export`: the status, the content type and the text.
async fn export(gw: &TestGateway, token: &str, id: &str) -> (StatusCode, String, String) {
    let resp = gw
        .http
        .get(format!("{}/api/v1/sessions/{id}/export", gw.url))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    let status = resp.status();
    let content_type = resp.headers()["content-type"].to_str().unwrap().to_string();
    (status, content_type, resp.text().await.unwrap())
}

/// `POST /import` with a raw body of the given content type.
async fn import(
    gw: &TestGateway,
    token: &str,
    content_type: &str,
    body: &str,
) -> (StatusCode, Value) {
    let resp = gw
        .http
        .post(format!("{}/api/v1/sessions/import", gw.url))
        .bearer_auth(token)
        .header("content-type", content_type)
        .body(body.to_string())
        .send()
        .await
        .unwrap();
    let status = resp.status();
    (status, resp.json().await.unwrap_or(Value::Null))
}

async fn an_export_imports_back_as_a_new_session_that_exports_the_same(gw: TestGateway) {
    let alice = caller(&gw).await;
    let b = branched(&gw, &alice).await;
    // Every kind of entry, a second root, and an active leaf that is not the newest entry.
    append(
        &gw,
        &alice,
        &b.id,
        Parent::Root,
        user("Start over: name a shape."),
    )
    .await;
    let call = append(
        &gw,
        &alice,
        &b.id,
        Parent::Entry(&b.a2),
        EntryBody::ToolCall {
            call_id: "call_1".into(),
            name: "time_now".into(),
            arguments: "{\"tz\": \"Europe/Oslo\"}".into(),
        },
    )
    .await;
    append(
        &gw,
        &alice,
        &b.id,
        Parent::Entry(&call),
        EntryBody::ToolResult {
            call_id: "call_1".into(),
            output: "12:00 — «noon»\nline two".into(),
            is_error: true,
        },
    )
    .await;
    append(
        &gw,
        &alice,
        &b.id,
        Parent::ActiveLeaf,
        EntryBody::ModelChange {
            route: "fast".into(),
        },
    )
    .await;
    append(
        &gw,
        &alice,
        &b.id,
        Parent::ActiveLeaf,
        EntryBody::Compaction {
            summary: "They talked about colours.".into(),
            through_entry_id: b.a1.clone(),
        },
    )
    .await;
    append(
        &gw,
        &alice,
        &b.id,
        Parent::ActiveLeaf,
        EntryBody::Assistant {
            text: "Done.".into(),
            thinking: "Let me think.".into(),
            model: None,
            stop_reason: None,
            reasoning: Vec::new(),
        },
    )
    .await;
    let (s, _) = gw
        .call(
            Method::PUT,
            &format!("/api/v1/sessions/{}/leaf", b.id),
            Some(&alice.token),
            Some(json!({"entry_id": b.a2_edited})),
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    let (s, _) = gw
        .call(
            Method::PATCH,
            &format!("/api/v1/sessions/{}", b.id),
            Some(&alice.token),
            Some(json!({"title": "Colours ✓", "archived": true})),
        )
        .await;
    assert_eq!(s, StatusCode::OK);

    let (s, content_type, first) = export(&gw, &alice.token, &b.id).await;
    assert_eq!(s, StatusCode::OK, "{first}");
    assert_eq!(content_type, "application/x-ndjson");
    let lines: Vec<Value> = first
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 1 + 12, "a header and every entry:\n{first}");
    assert_eq!(lines[0]["format"], "mosaic.session");
    assert_eq!(lines[0]["title"], "Colours ✓");
    assert_eq!(lines[0]["agent"], "default");
    assert_eq!(lines[0]["archived"], true);
    assert_eq!(lines[0]["active_leaf_id"], json!(b.a2_edited));

    let (s, imported) = import(&gw, &alice.token, "application/x-ndjson", &first).await;
    assert_eq!(s, StatusCode::CREATED, "{imported}");
    let new_id = imported["id"].as_str().unwrap();
    assert_ne!(new_id, b.id);
    assert_eq!(imported["title"], "Colours ✓");
    assert_eq!(imported["archived"], true);
    assert_eq!(imported["active_leaf_id"], json!(b.a2_edited));

    let (_, _, second) = export(&gw, &alice.token, new_id).await;
    assert_eq!(second, first);
    for tail in ["entries", "branches"] {
        assert_eq!(
            get(&gw, &alice, &format!("/api/v1/sessions/{new_id}/{tail}")).await,
            get(&gw, &alice, &format!("/api/v1/sessions/{}/{tail}", b.id)).await,
            "{tail} of the copy"
        );
    }

    // Plain text is accepted too, with Windows line ends.
    let (s, again) = import(
        &gw,
        &alice.token,
        "text/plain; charset=utf-8",
        &first.replace('\n', "\r\n"),
    )
    .await;
    assert_eq!(s, StatusCode::CREATED, "{again}");
    let (_, _, third) = export(&gw, &alice.token, again["id"].as_str().unwrap()).await;
    assert_eq!(third, first);
    let archived = get(&gw, &alice, "/api/v1/sessions?archived=true").await;
    assert_eq!(titles(&archived), ["Colours ✓", "Colours ✓", "Colours ✓"]);
}

#[tokio::test]
async fn a_malformed_import_is_a_400_that_says_what_is_wrong_and_creates_nothing() {
    let gw = TestGateway::start().await;
    let alice = caller(&gw).await;
    let b = branched(&gw, &alice).await;
    let (_, _, good) = export(&gw, &alice.token, &b.id).await;
    let mut lines: Vec<&str> = good.lines().collect();
    let header = lines[0].to_string();
    let first_entry = lines[1].to_string();
    // The same header with no active leaf, for exports that hold only some entries.
    let bare_header = {
        let mut h: Value = serde_json::from_str(&header).unwrap();
        h["active_leaf_id"] = Value::Null;
        h.to_string()
    };
    lines.swap(1, 2);
    let child_first = lines.join("\n");
    let other_format = json!({"format": "other.thing", "version": 1, "title": "", "agent": null,
        "active_leaf_id": null, "archived": false, "created_at": "2025-01-01T00:00:00Z"});
    let entry = |id: &str, created_at: &str, body: Value| {
        json!({"id": id, "parent_id": null, "created_at": created_at, "body": body}).to_string()
    };
    let cases: Vec<(String, &str)> = vec![
        (String::new(), "empty"),
        ("   \n\n".into(), "empty"),
        ("not json at all".into(), "line 1"),
        (other_format.to_string(), "unsupported export format"),
        (format!("{header}\n{{\"id\": \"x\""), "line 2"),
        (
            format!("{bare_header}\n{first_entry}\n{first_entry}"),
            "line 3",
        ),
        (child_first, "line 2"),
        (
            format!(
                "{bare_header}\n{}",
                entry(
                    "e",
                    "2025-01-01T00:00:00Z",
                    json!({"type": "shout", "text": "hi"})
                )
            ),
            "line 2",
        ),
        (
            format!(
                "{bare_header}\n{first_entry}\n{}",
                entry("e", "yesterday", json!({"type": "user", "text": "hi"}))
            ),
            "yesterday",
        ),
        (header, "active leaf"),
    ];
    for (body, expected) in &cases {
        let (s, e) = import(&gw, &alice.token, "application/x-ndjson", body).await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "{body:?}: {e}");
        assert_eq!(e["error"]["code"], "bad_request", "{e}");
        let message = e["error"]["message"].as_str().unwrap();
        assert!(
            message.contains(expected),
            "{body:?}: expected '{expected}' in '{message}'"
        );
    }

    let (s, e) = import(&gw, &alice.token, "application/json", &good).await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{e}");
    assert!(
        e["error"]["message"]
            .as_str()
            .unwrap()
            .contains("application/x-ndjson"),
        "{e}"
    );
    let resp = gw
        .http
        .post(format!("{}/api/v1/sessions/import", gw.url))
        .bearer_auth(&alice.token)
        .header("content-type", "text/plain")
        .body(vec![0xff, 0xfe, b'{'])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
    let e: Value = resp.json().await.unwrap();
    assert!(
        e["error"]["message"].as_str().unwrap().contains("UTF-8"),
        "{e}"
    );

    for path in ["/api/v1/sessions", "/api/v1/sessions?archived=true"] {
        let page = get(&gw, &alice, path).await;
        assert!(
            titles(&page).iter().all(|t| t == "branchy"),
            "a refused import left a session behind: {page}"
        );
    }
    assert_eq!(titles(&get(&gw, &alice, "/api/v1/sessions").await).len(), 1);
}

#[tokio::test]
async fn an_import_larger_than_the_body_limit_is_a_413() {
    let gw = TestGateway::start_with(|c| c.body_limit_bytes = 4096).await;
    let alice = caller(&gw).await;
    let (s, e) = import(&gw, &alice.token, "application/x-ndjson", &"x".repeat(8192)).await;
    assert_eq!(s, StatusCode::PAYLOAD_TOO_LARGE, "{e}");
    assert_eq!(e["error"]["code"], "payload_too_large");
}
