//! The first admin comes from a one-shot token, never from signing up first.

use mosaic_test_support::engines;
use pretty_assertions::assert_eq;
use reqwest::{Method, StatusCode};
use serde_json::json;

use crate::support::{TestGateway, PASSWORD};

engines!(concurrent_redemption_yields_exactly_one_admin);

#[tokio::test]
async fn bootstrap_token_works_once_and_then_bootstrap_is_closed() {
    let gw = TestGateway::start().await;
    let (_, status) = gw
        .call(Method::GET, "/api/v1/auth/bootstrap", None, None)
        .await;
    assert_eq!(status, json!({"needs_bootstrap": true}));
    let token = gw.bootstrap_token().await;
    let body = json!({"token": token, "username": "root", "password": PASSWORD});
    let (first, user) = gw
        .call(
            Method::POST,
            "/api/v1/auth/bootstrap",
            None,
            Some(body.clone()),
        )
        .await;
    assert_eq!(first, StatusCode::CREATED);
    assert_eq!(user["is_admin"], json!(true));
    let (second, err) = gw
        .call(Method::POST, "/api/v1/auth/bootstrap", None, Some(body))
        .await;
    assert_eq!(second, StatusCode::UNAUTHORIZED);
    assert_eq!(err["error"]["code"], json!("unauthorized"));
    let (_, status) = gw
        .call(Method::GET, "/api/v1/auth/bootstrap", None, None)
        .await;
    assert_eq!(status, json!({"needs_bootstrap": false}));
    // No new token can be issued once an admin exists.
    assert!(mosaic_gateway::accounts::issue_bootstrap_token(
        gw.store(),
        mosaic_store::BootstrapSource::Startup
    )
    .await
    .unwrap()
    .is_none());
}

#[tokio::test]
async fn a_wrong_bootstrap_token_is_refused_and_creates_nobody() {
    let gw = TestGateway::start().await;
    let _real = gw.bootstrap_token().await;
    let (status, _) = gw
        .call(
            Method::POST,
            "/api/v1/auth/bootstrap",
            None,
            Some(json!({"token": "msb_guess", "username": "eve", "password": PASSWORD})),
        )
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (status, _) = gw
        .call(
            Method::POST,
            "/api/v1/auth/login",
            None,
            Some(json!({"username": "eve", "password": PASSWORD, "mode": "token"})),
        )
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn signing_up_is_not_a_way_to_become_admin() {
    let gw = TestGateway::start().await;
    // There is no self-registration: creating users needs an admin credential.
    let (status, _) = gw
        .call(
            Method::POST,
            "/api/v1/users",
            None,
            Some(json!({"username": "first", "password": PASSWORD, "is_admin": true})),
        )
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
}

async fn concurrent_redemption_yields_exactly_one_admin(gw: TestGateway) {
    let token = gw.bootstrap_token().await;
    let attempts = (0..8).map(|i| {
        let body = json!({"token": token, "username": format!("admin{i}"), "password": PASSWORD});
        gw.call(Method::POST, "/api/v1/auth/bootstrap", None, Some(body))
    });
    let results = futures::future::join_all(attempts).await;
    let created: Vec<_> = results
        .iter()
        .filter(|(s, _)| *s == StatusCode::CREATED)
        .collect();
    assert_eq!(created.len(), 1, "{results:?}");
    assert!(results
        .iter()
        .all(|(s, _)| *s == StatusCode::CREATED || *s == StatusCode::UNAUTHORIZED));
    let winner = created[0].1["username"].as_str().unwrap();
    let admin = gw.login(winner).await;
    let (_, users) = gw
        .call(Method::GET, "/api/v1/users", Some(&admin), None)
        .await;
    assert_eq!(users["items"].as_array().unwrap().len(), 1);
}
