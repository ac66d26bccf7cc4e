//! Credentials: cookie sessions with CSRF, bearer tokens with scopes and expiry.

use pretty_assertions::assert_eq;
use reqwest::header::{COOKIE, SET_COOKIE};
use reqwest::{Method, StatusCode};
use serde_json::json;

use crate::support::{TestGateway, PASSWORD};

#[tokio::test]
async fn cookie_sessions_are_http_only_and_unsafe_methods_need_the_csrf_token() {
    let gw = TestGateway::start().await;
    let _root = gw.admin("root").await;
    let resp = gw
        .http
        .post(format!("{}/api/v1/auth/login", gw.url))
        .json(&json!({"username": "root", "password": PASSWORD}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let cookies: Vec<String> = resp
        .headers()
        .get_all(SET_COOKIE)
        .iter()
        .map(|v| v.to_str().unwrap().to_string())
        .collect();
    let session = cookies
        .iter()
        .find(|c| c.starts_with("mosaic_session="))
        .unwrap();
    assert!(
        session.contains("HttpOnly") && session.contains("SameSite=Strict"),
        "{session}"
    );
    let body: serde_json::Value = resp.json().await.unwrap();
    let csrf = body["csrf_token"].as_str().unwrap().to_string();
    assert!(body.get("token").is_none());
    let cookie = session.split(';').next().unwrap().to_string();

    let me = gw
        .http
        .get(format!("{}/api/v1/auth/me", gw.url))
        .header(COOKIE, &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(me.status(), StatusCode::OK);

    let create = |csrf: Option<&str>| {
        let mut req = gw
            .http
            .post(format!("{}/api/v1/teams", gw.url))
            .header(COOKIE, &cookie)
            .json(&json!({"name": "t"}));
        if let Some(c) = csrf {
            req = req.header("x-csrf-token", c);
        }
        req.send()
    };
    assert_eq!(create(None).await.unwrap().status(), StatusCode::FORBIDDEN);
    assert_eq!(
        create(Some("wrong")).await.unwrap().status(),
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        create(Some(&csrf)).await.unwrap().status(),
        StatusCode::CREATED
    );

    let out = gw
        .http
        .post(format!("{}/api/v1/auth/logout", gw.url))
        .header(COOKIE, &cookie)
        .header("x-csrf-token", &csrf)
        .send()
        .await
        .unwrap();
    assert_eq!(out.status(), StatusCode::NO_CONTENT);
    let after = gw
        .http
        .get(format!("{}/api/v1/auth/me", gw.url))
        .header(COOKIE, &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(after.status(), StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn token_scopes_limit_what_a_token_can_do() {
    let gw = TestGateway::start().await;
    let root = gw.admin("root").await;
    let make = |scopes: serde_json::Value| {
        gw.call(
            Method::POST,
            "/api/v1/tokens",
            Some(&root),
            Some(json!({"name": "t", "scopes": scopes})),
        )
    };
    let (_, read_only) = make(json!(["read"])).await;
    let read_only = read_only["token"].as_str().unwrap().to_string();
    let (_, no_admin) = make(json!(["read", "write"])).await;
    let no_admin = no_admin["token"].as_str().unwrap().to_string();

    let (s, _) = gw
        .call(Method::GET, "/api/v1/teams", Some(&read_only), None)
        .await;
    assert_eq!(s, StatusCode::OK);
    let (s, e) = gw
        .call(
            Method::POST,
            "/api/v1/teams",
            Some(&read_only),
            Some(json!({"name": "x"})),
        )
        .await;
    assert_eq!(s, StatusCode::FORBIDDEN, "{e}");
    // An admin's token without the admin scope acts as a plain user.
    let (s, _) = gw
        .call(Method::GET, "/api/v1/users", Some(&no_admin), None)
        .await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    let (s, _) = gw
        .call(Method::GET, "/api/v1/users", Some(&root), None)
        .await;
    assert_eq!(s, StatusCode::OK);
    // A token cannot mint a token stronger than itself.
    let (s, _) = gw
        .call(
            Method::POST,
            "/api/v1/tokens",
            Some(&no_admin),
            Some(json!({"name": "up", "scopes": ["admin"]})),
        )
        .await;
    assert_eq!(s, StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn revoked_expired_and_disabled_credentials_answer_401() {
    let gw = TestGateway::start().await;
    let root = gw.admin("root").await;
    let (carol_id, carol) = gw.user(&root, "carol").await;
    let (_, short) = gw
        .call(
            Method::POST,
            "/api/v1/tokens",
            Some(&carol),
            Some(json!({"name": "short", "expires_in_secs": 1})),
        )
        .await;
    let short_token = short["token"].as_str().unwrap().to_string();
    let (s, _) = gw
        .call(Method::GET, "/api/v1/auth/me", Some(&short_token), None)
        .await;
    assert_eq!(s, StatusCode::OK);
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    let (s, e) = gw
        .call(Method::GET, "/api/v1/auth/me", Some(&short_token), None)
        .await;
    assert_eq!(s, StatusCode::UNAUTHORIZED, "expired token: {e}");

    let (_, other) = gw
        .call(
            Method::POST,
            "/api/v1/tokens",
            Some(&carol),
            Some(json!({"name": "o"})),
        )
        .await;
    let other_token = other["token"].as_str().unwrap().to_string();
    let other_id = other["info"]["id"].as_str().unwrap();
    let (s, _) = gw
        .call(
            Method::DELETE,
            &format!("/api/v1/tokens/{other_id}"),
            Some(&carol),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    let (s, _) = gw
        .call(Method::GET, "/api/v1/auth/me", Some(&other_token), None)
        .await;
    assert_eq!(s, StatusCode::UNAUTHORIZED, "revoked token");

    let (s, _) = gw
        .call(
            Method::PATCH,
            &format!("/api/v1/users/{carol_id}"),
            Some(&root),
            Some(json!({"disabled": true})),
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    let (s, _) = gw
        .call(Method::GET, "/api/v1/auth/me", Some(&carol), None)
        .await;
    assert_eq!(s, StatusCode::UNAUTHORIZED, "disabled user");
    let (s, _) = gw
        .call(
            Method::POST,
            "/api/v1/auth/login",
            None,
            Some(json!({"username": "carol", "password": PASSWORD, "mode": "token"})),
        )
        .await;
    assert_eq!(s, StatusCode::UNAUTHORIZED, "disabled user cannot log in");
}

#[tokio::test]
async fn users_change_their_password_with_the_current_one() {
    let gw = TestGateway::start().await;
    let root = gw.admin("root").await;
    let (_, dave) = gw.user(&root, "dave").await;
    let (s, _) = gw
        .call(
            Method::PUT,
            "/api/v1/auth/password",
            Some(&dave),
            Some(
                json!({"current_password": "not it at all", "new_password": "a new long password"}),
            ),
        )
        .await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    let (s, _) = gw
        .call(
            Method::PUT,
            "/api/v1/auth/password",
            Some(&dave),
            Some(json!({"current_password": PASSWORD, "new_password": "short"})),
        )
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "password policy");
    let (s, _) = gw
        .call(
            Method::PUT,
            "/api/v1/auth/password",
            Some(&dave),
            Some(json!({"current_password": PASSWORD, "new_password": "a new long password"})),
        )
        .await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    let (s, _) = gw
        .call(
            Method::POST,
            "/api/v1/auth/login",
            None,
            Some(json!({"username": "dave", "password": "a new long password", "mode": "token"})),
        )
        .await;
    assert_eq!(s, StatusCode::OK);
}
