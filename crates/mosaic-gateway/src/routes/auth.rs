//! Logging in and out, the first admin's bootstrap, who-am-I and password changes.

use std::time::Duration;

use crate::openapi::lazy::routes;
use crate::openapi::lazy::ApiRouter;
use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue};
use axum::response::{IntoResponse, Response};
use mosaic_api::{
    BootstrapRequest, BootstrapStatus, ChangePasswordRequest, ErrorBody, ErrorCode, LoginRequest,
    LoginResponse, WhoAmI, CSRF_COOKIE, SESSION_COOKIE,
};

use crate::accounts::LoggedIn;
use crate::auth::{Auth, Credential};
use crate::error::{ApiError, ApiResult};
use crate::extract::Json;
use crate::routes::{client_ip, no_content};
use crate::AppState;

/// The routes of logging in and out, the bootstrap of the first admin, who am I, password
/// changes.
pub fn router() -> ApiRouter<AppState> {
    ApiRouter::new()
        .routes(routes!(bootstrap_status, bootstrap))
        .routes(routes!(login))
        .routes(routes!(logout))
        .routes(routes!(whoami))
        .routes(routes!(change_password))
}

fn rate_limited(retry_after: Duration) -> Response {
    let secs = retry_after.as_secs().max(1);
    let mut resp = ApiError::new(
        ErrorCode::RateLimited,
        format!("too many attempts; try again in {secs} s"),
    )
    .into_response();
    if let Ok(v) = HeaderValue::from_str(&secs.to_string()) {
        resp.headers_mut().insert(header::RETRY_AFTER, v);
    }
    resp
}

/// Whether the gateway still waits for its first admin.
#[utoipa::path(get, path = "/api/v1/auth/bootstrap", tag = "auth", operation_id = "bootstrap_status",
    security(()), responses((status = 200, body = BootstrapStatus)))]
pub async fn bootstrap_status(State(state): State<AppState>) -> ApiResult<Json<BootstrapStatus>> {
    Ok(Json(BootstrapStatus {
        needs_bootstrap: state.store.needs_bootstrap().await?,
    }))
}

/// Redeem the one-shot bootstrap token: creates the first admin. Works exactly once.
#[utoipa::path(post, path = "/api/v1/auth/bootstrap", tag = "auth", operation_id = "bootstrap",
    security(()), request_body = BootstrapRequest,
    responses((status = 400, body = ErrorBody), (status = 201, body = mosaic_api::User), (status = 401, body = ErrorBody),
        (status = 409, body = ErrorBody), (status = 429, body = ErrorBody)))]
pub async fn bootstrap(
    State(state): State<AppState>,
    request_parts: axum::http::Extensions,
    Json(req): Json<BootstrapRequest>,
) -> Response {
    if let Err(wait) = state.bootstrap_limiter.check(&client_ip(&request_parts)) {
        return rate_limited(wait);
    }
    let result = crate::accounts::redeem_bootstrap(&state.store, req).await;
    match result {
        Ok(user) => {
            tracing::info!(user = %user.username, "first admin created through bootstrap");
            (axum::http::StatusCode::CREATED, Json(user)).into_response()
        }
        Err(e) => e.into_response(),
    }
}

/// Log in with a username and password: a cookie session (web) or a bearer token (CLI).
#[utoipa::path(post, path = "/api/v1/auth/login", tag = "auth", operation_id = "login",
    security(()), request_body = LoginRequest,
    responses((status = 400, body = ErrorBody), (status = 200, body = LoginResponse), (status = 401, body = ErrorBody),
        (status = 429, body = ErrorBody)))]
pub async fn login(
    State(state): State<AppState>,
    request_parts: axum::http::Extensions,
    Json(req): Json<LoginRequest>,
) -> Response {
    let ip = client_ip(&request_parts);
    // Guesses at one account are limited wherever they come from (a distributed guess
    // gets no more tries); the per-address limit slows one client spraying many names.
    let account: String = req
        .username
        .trim()
        .to_ascii_lowercase()
        .chars()
        .take(64)
        .collect();
    if let Err(wait) = state
        .login_ip_limiter
        .check(&ip)
        .and_then(|()| state.login_user_limiter.check(&account))
    {
        return rate_limited(wait);
    }
    match do_login(&state, req).await {
        Ok(resp) => resp,
        Err(e) => e.into_response(),
    }
}

async fn do_login(state: &AppState, req: LoginRequest) -> ApiResult<Response> {
    match crate::accounts::log_in(state, req).await? {
        LoggedIn::Cookie {
            user,
            session,
            csrf,
        } => {
            let config = &state.config;
            let max_age = config.session_ttl_hours * 3600;
            let secure = if config.cookies_secure() {
                "; Secure"
            } else {
                ""
            };
            let mut headers = HeaderMap::new();
            for cookie in [
                format!("{SESSION_COOKIE}={session}; Path=/; HttpOnly; SameSite=Strict; Max-Age={max_age}{secure}"),
                format!("{CSRF_COOKIE}={csrf}; Path=/; SameSite=Strict; Max-Age={max_age}{secure}"),
            ] {
                if let Ok(v) = HeaderValue::from_str(&cookie) {
                    headers.append(header::SET_COOKIE, v);
                }
            }
            let body = LoginResponse {
                user,
                csrf_token: Some(csrf),
                token: None,
                token_info: None,
            };
            Ok((headers, Json(body)).into_response())
        }
        LoggedIn::Token { user, token, info } => {
            let body = LoginResponse {
                user,
                csrf_token: None,
                token: Some(token),
                token_info: Some(info),
            };
            Ok(Json(body).into_response())
        }
    }
}

/// End the session or revoke the token this request is made with.
#[utoipa::path(post, path = "/api/v1/auth/logout", tag = "auth", operation_id = "logout",
    responses((status = 403, body = ErrorBody), (status = 204), (status = 401, body = ErrorBody)))]
pub async fn logout(State(state): State<AppState>, auth: Auth) -> ApiResult<Response> {
    match &auth.credential {
        Credential::Cookie { session_id } => {
            state
                .store
                .delete_web_session(&auth.principal, session_id)
                .await?;
            let mut headers = HeaderMap::new();
            for name in [SESSION_COOKIE, CSRF_COOKIE] {
                if let Ok(v) = HeaderValue::from_str(&format!("{name}=; Path=/; Max-Age=0")) {
                    headers.append(header::SET_COOKIE, v);
                }
            }
            Ok((axum::http::StatusCode::NO_CONTENT, headers).into_response())
        }
        Credential::Token { token_id, .. } => {
            state
                .store
                .revoke_api_token(&auth.principal, token_id)
                .await?;
            Ok(no_content())
        }
    }
}

/// Who the caller is.
#[utoipa::path(get, path = "/api/v1/auth/me", tag = "auth", operation_id = "whoami",
    responses((status = 403, body = ErrorBody), (status = 200, body = WhoAmI), (status = 401, body = ErrorBody)))]
pub async fn whoami(auth: Auth) -> Json<WhoAmI> {
    let credential = match auth.credential {
        Credential::Cookie { .. } => "cookie",
        Credential::Token { .. } => "token",
    };
    Json(WhoAmI {
        scopes: auth.scopes(),
        user: auth.user,
        credential: credential.into(),
    })
}

/// Change your own password (needs the current one). Ends your web sessions.
#[utoipa::path(put, path = "/api/v1/auth/password", tag = "auth", operation_id = "change_password",
    request_body = ChangePasswordRequest,
    responses((status = 403, body = ErrorBody), (status = 204), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 429, body = ErrorBody, description = "Too many wrong current passwords")))]
pub async fn change_password(
    State(state): State<AppState>,
    auth: Auth,
    Json(req): Json<ChangePasswordRequest>,
) -> ApiResult<Response> {
    // Checking the current password is a password guess like a login.
    if let Err(wait) = state.login_user_limiter.check(&auth.user.username) {
        return Ok(rate_limited(wait));
    }
    crate::accounts::change_password(&state.store, &auth, &req).await?;
    Ok(no_content())
}
