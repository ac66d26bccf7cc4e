//! Account operations below the HTTP surface: the first admin's bootstrap, logging in,
//! password changes, users and API tokens. Each is one call for its handler, which keeps
//! only what is HTTP (rate limits, cookies, status codes); the rules (password policy,
//! the hashes, what a token may hold and how long it lives) are here, once.

use std::time::Duration;

use mosaic_api::{
    ApiToken, BootstrapRequest, ChangePasswordRequest, CreateTokenRequest, CreateTokenResponse,
    CreateUserRequest, LoginMode, LoginRequest, Scope, UpdateUserRequest, User,
};
use mosaic_store::{
    NewApiToken, NewUser, NewWebSession, Principal, Store, StoreError, UserChanges,
};

use crate::auth::Auth;
use crate::credentials::{
    check_password_policy, hash_password, random_token, token_hash, verify_password,
    API_TOKEN_PREFIX, BOOTSTRAP_PREFIX, SESSION_PREFIX,
};
use crate::error::{ApiError, ApiResult};
use crate::AppState;

/// How long an API token lives when its request names no lifetime.
const DEFAULT_TOKEN_TTL: Duration = Duration::from_secs(90 * 86_400);
/// The longest an API token may live.
const MAX_TOKEN_TTL: Duration = Duration::from_secs(3650 * 86_400);

/// What a bootstrap redemption that does not match says (closed, expired, used, wrong).
const BAD_BOOTSTRAP: &str = "invalid, expired or already used bootstrap token";

/// Make a bootstrap token when the gateway has no admin (`None` once it has one).
pub async fn issue_bootstrap_token(
    store: &Store,
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

/// Redeem the one-shot bootstrap token: the first admin.
pub async fn redeem_bootstrap(store: &Store, req: BootstrapRequest) -> ApiResult<User> {
    // Refuse a closed bootstrap before spending a password hash on it.
    if !store.needs_bootstrap().await? {
        return Err(ApiError::unauthorized(BAD_BOOTSTRAP));
    }
    check_password_policy(&req.password)?;
    let password_hash = hash_password(&req.password).await?;
    let new = NewUser {
        username: req.username,
        display_name: req.display_name.unwrap_or_default(),
        password_hash,
        is_admin: true,
    };
    match store
        .redeem_bootstrap(&token_hash(req.token.trim()), new)
        .await
    {
        Ok(user) => Ok(user),
        Err(StoreError::NotFound) => Err(ApiError::unauthorized(BAD_BOOTSTRAP)),
        Err(e) => Err(e.into()),
    }
}

/// A successful login: the credential it made, for the caller to hand over.
pub enum LoggedIn {
    /// A web session: its cookie's value and the CSRF token that goes with it.
    Cookie {
        user: User,
        session: String,
        csrf: String,
    },
    /// A bearer token (shown once) and what is stored of it.
    Token {
        user: User,
        token: String,
        info: ApiToken,
    },
}

/// Check a username and password and make the credential the request asks for. A wrong
/// password, an unknown user and a disabled one are the same answer, in the same time.
pub async fn log_in(state: &AppState, req: LoginRequest) -> ApiResult<LoggedIn> {
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
            Ok(LoggedIn::Cookie {
                user,
                session,
                csrf,
            })
        }
        LoginMode::Token => {
            let ttl = Duration::from_secs(config.login_token_ttl_days * 86_400);
            let name = req.token_name.unwrap_or_else(|| "mosaic login".into());
            let (token, info) =
                new_api_token(&state.store, &principal, name, Scope::ALL.to_vec(), ttl).await?;
            Ok(LoggedIn::Token { user, token, info })
        }
    }
}

/// Change the caller's own password, given the current one. Ends their web sessions.
pub async fn change_password(
    store: &Store,
    auth: &Auth,
    req: &ChangePasswordRequest,
) -> ApiResult<()> {
    let current = store.own_password_hash(&auth.principal).await?;
    if !verify_password(&req.current_password, Some(&current)).await {
        return Err(ApiError::forbidden("the current password is wrong"));
    }
    check_password_policy(&req.new_password)?;
    let password_hash = hash_password(&req.new_password).await?;
    store
        .update_user(
            &auth.principal,
            &auth.user.id,
            UserChanges {
                password_hash: Some(password_hash),
                ..UserChanges::default()
            },
        )
        .await?;
    Ok(())
}

/// Admin: create a user.
pub async fn create_user(store: &Store, auth: &Auth, req: CreateUserRequest) -> ApiResult<User> {
    auth.require_admin()?;
    check_password_policy(&req.password)?;
    let new = NewUser {
        username: req.username,
        display_name: req.display_name.unwrap_or_default(),
        password_hash: hash_password(&req.password).await?,
        is_admin: req.is_admin,
    };
    Ok(store.create_user(&auth.principal, new).await?)
}

/// Change a user: your own display name, or (admins) anything. Only an admin sets a
/// password here; a user changes their own with the current one
/// ([`change_password`]).
pub async fn update_user(
    store: &Store,
    auth: &Auth,
    id: &str,
    req: UpdateUserRequest,
) -> ApiResult<User> {
    let password_hash = match &req.password {
        Some(_) if !auth.principal.is_admin() => {
            return Err(if id == auth.user.id {
                ApiError::forbidden("change your own password with PUT /api/v1/auth/password")
            } else {
                ApiError::not_found()
            });
        }
        Some(p) => {
            check_password_policy(p)?;
            Some(hash_password(p).await?)
        }
        None => None,
    };
    let changes = UserChanges {
        display_name: req.display_name,
        disabled: req.disabled,
        is_admin: req.is_admin,
        password_hash,
    };
    Ok(store.update_user(&auth.principal, id, changes).await?)
}

/// Create an API token for the caller. It never holds more than the credential that
/// made it, only admins hold the admin scope, and it lives from a second to ten years.
pub async fn create_token(
    store: &Store,
    auth: &Auth,
    req: CreateTokenRequest,
) -> ApiResult<CreateTokenResponse> {
    let scopes = req
        .scopes
        .unwrap_or_else(|| vec![Scope::Read, Scope::Write]);
    let held = auth.scopes();
    if let Some(extra) = scopes.iter().find(|s| !held.contains(s)) {
        return Err(ApiError::forbidden(format!(
            "cannot grant the {} scope: this credential does not hold it",
            extra.as_str()
        )));
    }
    if scopes.contains(&Scope::Admin) && !auth.user.is_admin {
        return Err(ApiError::forbidden(
            "only admins can create admin-scoped tokens",
        ));
    }
    let ttl = req
        .expires_in_secs
        .map(Duration::from_secs)
        .unwrap_or(DEFAULT_TOKEN_TTL);
    if ttl.is_zero() || ttl > MAX_TOKEN_TTL {
        return Err(ApiError::bad_request(
            "expires_in_secs must be between 1 and 10 years",
        ));
    }
    let (token, info) = new_api_token(store, &auth.principal, req.name, scopes, ttl).await?;
    Ok(CreateTokenResponse { token, info })
}

/// A fresh API token of `principal`'s, stored hashed: the token and its record.
async fn new_api_token(
    store: &Store,
    principal: &Principal,
    name: String,
    scopes: Vec<Scope>,
    ttl: Duration,
) -> ApiResult<(String, ApiToken)> {
    let token = random_token(API_TOKEN_PREFIX);
    let info = store
        .create_api_token(
            principal,
            NewApiToken {
                name,
                prefix: token[..12].to_string(),
                token_hash: token_hash(&token),
                scopes,
                expires_at: Some(mosaic_store::now_ms() + ttl.as_millis() as i64),
            },
        )
        .await?;
    Ok((token, info))
}
