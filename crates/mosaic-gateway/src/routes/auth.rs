//! Logging in and out, the first admin's bootstrap, who-am-I and password changes.

use std::time::Duration;

use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue};
use axum::response::{IntoResponse, Response};
use mosaic_api::{
    BootstrapRequest, BootstrapStatus, ChangePasswordRequest, ErrorBody, ErrorCode, LoginMode,
    LoginRequest, LoginResponse, Scope, WhoAmI, CSRF_COOKIE, SESSION_COOKIE,
};
use mosaic_store::{NewApiToken, NewUser, NewWebSession, Principal, StoreError, UserChanges};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::auth::{Auth, Credential};
use crate::credentials::{
    check_password_policy, hash_password, random_token, token_hash, verify_password,
    API_TOKEN_PREFIX, BOOTSTRAP_PREFIX, SESSION_PREFIX,
};
use crate::error::{ApiError, ApiResult};
use crate::extract::Json;
use crate::routes::{client_ip, no_content};
use crate::AppState;

/// The routes of logging in and out, the bootstrap of the first admin, who am I, password
/// changes.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
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
    let result: ApiResult<mosaic_api::User> = async {
        // Refuse a closed bootstrap before spending a password hash on it.
        if !state.store.needs_bootstrap().await? {
            return Err(ApiError::unauthorized(
                "invalid, expired or already used bootstrap token",
            ));
        }
        check_password_policy(&req.password)?;
        let password_hash = hash_password(&req.password).await?;
        let new = NewUser {
            username: req.username,
            display_name: req.display_name.unwrap_or_default(),
            password_hash,
            is_admin: true,
        };
        match state
            .store
            .redeem_bootstrap(&token_hash(req.token.trim()), new)
            .await
        {
            Ok(user) => Ok(user),
            Err(StoreError::NotFound) => Err(ApiError::unauthorized(
                "invalid, expired or already used bootstrap token",
            )),
            Err(e) => Err(e.into()),
        }
    }
    .await;
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
    let record = state.store.login_record(&req.username).await?;
    let ok = verify_password(
        &req.password,
        record.as_ref().map(|r| r.password_hash.as_str()),
    )
    .await;
    let user = match record {
        Some(r) if ok && !r.user.disabled => r.user,
        _ => return Err(ApiError::unauthorized("wrong username or password")),
    };
    let principal = Principal::user(user.id.clone(), user.is_admin);
    let config = &state.config;
    match req.mode {
        LoginMode::Cookie => {
            let session = random_token(SESSION_PREFIX);
            let csrf = random_token("");
            let ttl_ms = (config.session_ttl_hours * 3_600_000) as i64;
            state
                .store
                .create_web_session(
                    &principal,
                    NewWebSession {
                        token_hash: token_hash(&session),
                        csrf_token: csrf.clone(),
                        expires_at: mosaic_store::now_ms() + ttl_ms,
                    },
                )
                .await?;
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
        LoginMode::Token => {
            let token = random_token(API_TOKEN_PREFIX);
            let ttl_ms = (config.login_token_ttl_days * 86_400_000) as i64;
            let name = req.token_name.unwrap_or_else(|| "mosaic login".into());
            let info = state
                .store
                .create_api_token(
                    &principal,
                    NewApiToken {
                        name,
                        prefix: token[..12].to_string(),
                        token_hash: token_hash(&token),
                        scopes: Scope::ALL.to_vec(),
                        expires_at: Some(mosaic_store::now_ms() + ttl_ms),
                    },
                )
                .await?;
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
    let current = state.store.own_password_hash(&auth.principal).await?;
    if !verify_password(&req.current_password, Some(&current)).await {
        return Err(ApiError::forbidden("the current password is wrong"));
    }
    check_password_policy(&req.new_password)?;
    let password_hash = hash_password(&req.new_password).await?;
    state
        .store
        .update_user(
            &auth.principal,
            &auth.user.id,
            UserChanges {
                password_hash: Some(password_hash),
                ..UserChanges::default()
            },
        )
        .await?;
    Ok(no_content())
}

/// Make a bootstrap token when the gateway has no admin (`None` once it has one).
pub async fn issue_bootstrap_token(
    store: &mosaic_store::Store,
    source: mosaic_store::BootstrapSource,
) -> Result<Option<String>, StoreError> {
    if !store.needs_bootstrap().await? {
        return Ok(None);
    }
    let token = random_token(BOOTSTRAP_PREFIX);
    let expires_at = mosaic_store::now_ms() + crate::BOOTSTRAP_TTL.as_millis() as i64;
    store
        .issue_bootstrap_token(source, &token_hash(&token), expires_at)
        .await?;
    Ok(Some(token))
}
