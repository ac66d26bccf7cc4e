//! Revocation reaches what is already open: disabling or deleting a user, revoking a
//! token, logging out and an admin's password reset end that credential's event
//! streams at once, and a disabled or deleted user's runs stop (what streamed is kept).

use std::time::Duration;

use pretty_assertions::assert_eq;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use mosaic_test_support::scripted::{Answer, Scripted};

use crate::support::{
    chunk, gateway_provider, new_session, route_default_agent, Ev, Events, TestGateway, PASSWORD,
    SCRIPTED_ROUTE,
};

/// How long a revoked stream may stay open: "at once", with room for a slow machine.
const AT_ONCE: Duration = Duration::from_secs(3);

/// A long answer, one word every 50 ms (10 s in all).
fn long_answer() -> Answer {
    let mut data = vec![chunk(json!({"role": "assistant", "content": ""}), None)];
    data.extend((0..200).map(|i| chunk(json!({"content": format!("w{i} ")}), None)));
    data.push(chunk(json!({}), Some("stop")));
    data.push("[DONE]".to_string());
    Answer::sse_data(&data).paced(Duration::from_millis(50))
}

/// An admin, a user `ana` whose default agent answers slowly from a scripted model.
struct Setup {
    gw: TestGateway,
    root: String,
    ana_id: String,
    ana: String,
    _upstream: Scripted,
}

impl Setup {
    async fn new() -> Setup {
        let upstream = Scripted::start(vec![long_answer(), long_answer(), long_answer()]).await;
        let gw = TestGateway::start().await;
        let root = gw.admin("root").await;
        gateway_provider(&gw, &root, "mock", &format!("{}/v1", upstream.base_url)).await;
        let (ana_id, ana) = gw.user(&root, "ana").await;
        route_default_agent(&gw, &ana, SCRIPTED_ROUTE, json!({})).await;
        Setup {
            gw,
            root,
            ana_id,
            ana,
            _upstream: upstream,
        }
    }

    /// Start a run in a new session of ana's; its events, read as `ana` from the start.
    async fn running(&self) -> (String, Events) {
        let session = new_session(&self.gw, &self.ana).await;
        let mut events = Events::open(&self.gw, &self.ana, &session, None).await;
        let (status, body) = self
            .gw
            .call(
                Method::POST,
                &format!("/api/v1/sessions/{session}/messages"),
                Some(&self.ana),
                Some(json!({"text": "talk"})),
            )
            .await;
        assert_eq!(status, StatusCode::ACCEPTED, "{body}");
        events.until(|e| e.kind == "text_delta").await;
        (session, events)
    }

    async fn as_root(&self, method: Method, path: &str, body: Option<Value>) -> StatusCode {
        let (status, body) = self.gw.call(method, path, Some(&self.root), body).await;
        assert!(status.is_success(), "{status} {body}");
        status
    }
}

/// The stream ended by the gateway, its last frame saying it was revoked, and no more
/// than a few deltas after the revocation.
fn assert_revoked(rest: Option<Vec<Ev>>) {
    let rest = rest.expect("the stream ended at once");
    let last = rest.last().expect("a closing frame");
    assert_eq!(last.kind, "stream_closed", "{rest:?}");
    assert_eq!(last.data["reason"], "revoked");
    let deltas = rest.iter().filter(|e| e.kind == "text_delta").count();
    assert!(deltas <= 5, "{deltas} deltas after the revocation");
}

#[tokio::test]
async fn disabling_a_user_ends_their_streams_and_interrupts_their_run() {
    let s = Setup::new().await;
    let (session, mut events) = s.running().await;
    // A second subscriber with another of ana's tokens.
    let other = s.gw.login("ana").await;
    let mut second = Events::open(&s.gw, &other, &session, None).await;
    // A follow-up waits for the run; it must not start once ana is disabled.
    let (status, body) =
        s.gw.call(
            Method::POST,
            &format!("/api/v1/sessions/{session}/messages"),
            Some(&s.ana),
            Some(json!({"text": "and then?"})),
        )
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    assert_eq!(body["status"], "queued", "{body}");
    s.as_root(
        Method::PATCH,
        &format!("/api/v1/users/{}", s.ana_id),
        Some(json!({"disabled": true})),
    )
    .await;
    assert_revoked(events.until_closed(AT_ONCE).await);
    assert_revoked(second.until_closed(AT_ONCE).await);

    // The run was interrupted, its partial answer kept; nothing else starts for ana.
    let store = s.gw.store();
    let ana = mosaic_store::Principal::user(s.ana_id.clone(), false);
    let run = wait_for_end(store, &ana, &session).await;
    assert_eq!(run.status, mosaic_api::RunStatus::Interrupted, "{run:?}");
    let path = store.session_path(&ana, &session, None).await.unwrap();
    let answer = serde_json::to_value(&path.last().unwrap().body).unwrap();
    assert_eq!(answer["type"], "assistant", "{answer}");
    let kept = answer["text"].as_str().unwrap();
    assert!(kept.starts_with("w0 ") && !kept.contains("w199"), "{kept}");
    tokio::time::sleep(Duration::from_millis(300)).await;
    let runs = store
        .list_runs(&ana, &session, &mosaic_api::PageQuery::default())
        .await
        .unwrap();
    assert_eq!(runs.items.len(), 1, "no run started for the queued message");
    assert_eq!(s.gw.active_runs(), 0);

    // Re-enabled, ana works again.
    s.as_root(
        Method::PATCH,
        &format!("/api/v1/users/{}", s.ana_id),
        Some(json!({"disabled": false})),
    )
    .await;
    let (status, _) =
        s.gw.call(
            Method::GET,
            "/api/v1/auth/me",
            Some(&s.gw.login("ana").await),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK);
}

async fn wait_for_end(
    store: &mosaic_store::Store,
    p: &mosaic_store::Principal,
    session: &str,
) -> mosaic_api::Run {
    let deadline = tokio::time::Instant::now() + AT_ONCE;
    loop {
        let page = store
            .list_runs(p, session, &mosaic_api::PageQuery::default())
            .await
            .unwrap();
        let run = page.items[0].clone();
        if run.status != mosaic_api::RunStatus::Running {
            return run;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the run still runs: {run:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn deleting_a_user_ends_their_streams_and_stops_their_run() {
    let s = Setup::new().await;
    let (_session, mut events) = s.running().await;
    s.as_root(Method::DELETE, &format!("/api/v1/users/{}", s.ana_id), None)
        .await;
    assert_revoked(events.until_closed(AT_ONCE).await);
    // The run's task ends too (its session went with the user).
    let deadline = tokio::time::Instant::now() + AT_ONCE;
    while s.gw.active_runs() > 0 {
        assert!(tokio::time::Instant::now() < deadline, "a run still runs");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn revoking_a_token_ends_only_that_tokens_streams() {
    let s = Setup::new().await;
    let (session, mut events) = s.running().await;
    let other = s.gw.login("ana").await;
    let mut kept = Events::open(&s.gw, &other, &session, None).await;
    // Find the id of the token `events` was opened with: the older of ana's two.
    let (_, tokens) =
        s.gw.call(Method::GET, "/api/v1/tokens", Some(&other), None)
            .await;
    let items = tokens["items"].as_array().unwrap();
    assert_eq!(items.len(), 2, "{tokens}");
    let oldest = items
        .iter()
        .min_by_key(|t| t["created_at"].as_str().unwrap().to_string())
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string();
    let (status, body) =
        s.gw.call(
            Method::DELETE,
            &format!("/api/v1/tokens/{oldest}"),
            Some(&other),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{body}");
    assert_revoked(events.until_closed(AT_ONCE).await);
    // The other token's stream goes on to the end of the run, which was not stopped.
    let rest = kept.until_finished().await;
    let run = &rest.last().unwrap().data["run"];
    assert_eq!(run["status"], "completed", "{run}");
}

/// Log in with a cookie; the `mosaic_session=…` pair and the CSRF token.
async fn cookie_login(gw: &TestGateway, username: &str) -> (String, String) {
    let resp = gw
        .http
        .post(format!("{}/api/v1/auth/login", gw.url))
        .json(&json!({"username": username, "password": PASSWORD}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let cookie = resp
        .headers()
        .get_all(reqwest::header::SET_COOKIE)
        .iter()
        .map(|v| v.to_str().unwrap().to_string())
        .find(|c| c.starts_with("mosaic_session="))
        .unwrap();
    let body: Value = resp.json().await.unwrap();
    (
        cookie.split(';').next().unwrap().to_string(),
        body["csrf_token"].as_str().unwrap().to_string(),
    )
}

#[tokio::test]
async fn logging_out_ends_the_cookie_sessions_streams() {
    let s = Setup::new().await;
    let (session, _events) = s.running().await;
    let (cookie, csrf) = cookie_login(&s.gw, "ana").await;
    let mut web = Events::open_with_cookie(&s.gw, &cookie, &session).await;
    let (other_cookie, _) = cookie_login(&s.gw, "ana").await;
    let mut other_tab = Events::open_with_cookie(&s.gw, &other_cookie, &session).await;
    let resp =
        s.gw.http
            .post(format!("{}/api/v1/auth/logout", s.gw.url))
            .header(reqwest::header::COOKIE, &cookie)
            .header("x-csrf-token", &csrf)
            .send()
            .await
            .unwrap();
    assert!(resp.status().is_success(), "{}", resp.status());
    assert_revoked(web.until_closed(AT_ONCE).await);
    // Another web session of the same user is not logged out.
    assert!(other_tab
        .until_closed(Duration::from_millis(500))
        .await
        .is_none());
}

#[tokio::test]
async fn an_admins_password_reset_ends_cookie_and_token_streams() {
    let s = Setup::new().await;
    let (session, mut events) = s.running().await;
    let (cookie, _) = cookie_login(&s.gw, "ana").await;
    let mut web = Events::open_with_cookie(&s.gw, &cookie, &session).await;
    s.as_root(
        Method::PATCH,
        &format!("/api/v1/users/{}", s.ana_id),
        Some(json!({"password": "a brand new password"})),
    )
    .await;
    assert_revoked(web.until_closed(AT_ONCE).await);
    assert_revoked(events.until_closed(AT_ONCE).await);
}
