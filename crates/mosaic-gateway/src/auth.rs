//! Authentication: turns the credential of a request (a bearer token, or a session
//! cookie plus its CSRF token on unsafe methods) into the acting principal. Handlers
//! that take an [`Auth`] cannot run for an unauthenticated request.

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{header, Method};
use mosaic_api::{Scope, User, CSRF_HEADER, SESSION_COOKIE};
use mosaic_store::Principal;

use crate::credentials::{constant_time_eq, token_hash};
use crate::error::{ApiError, ApiResult};
use crate::AppState;

/// How the request proved who it is.
#[derive(Debug, Clone)]
pub enum Credential {
    Token {
        token_id: String,
        scopes: Vec<Scope>,
    },
    Cookie {
        session_id: String,
    },
}

/// An authenticated request: the user, the principal the store sees, the credential.
#[derive(Debug, Clone)]
pub struct Auth {
    pub user: User,
    pub principal: Principal,
    pub credential: Credential,
    /// The revocation epoch when the credential was checked (see `revocation.rs`).
    pub epoch: u64,
}

impl Auth {
    /// The scopes in force: a cookie session holds them all.
    pub fn scopes(&self) -> Vec<Scope> {
        match &self.credential {
            Credential::Token { scopes, .. } => scopes.clone(),
            Credential::Cookie { .. } => Scope::ALL.to_vec(),
        }
    }

    /// Admin operations need an admin user acting through an admin-scoped credential.
    pub fn require_admin(&self) -> ApiResult<()> {
        if self.principal.is_admin() {
            Ok(())
        } else if self.user.is_admin {
            Err(ApiError::forbidden("this credential lacks the admin scope"))
        } else {
            Err(ApiError::forbidden("this needs an admin"))
        }
    }
}

fn bearer(parts: &Parts) -> Option<&str> {
    let value = parts.headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
}

/// The value of a cookie, from every `Cookie` header of the request.
pub fn cookie<'a>(parts: &'a Parts, name: &str) -> Option<&'a str> {
    parts
        .headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
}

fn is_safe(method: &Method) -> bool {
    matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS)
}

impl FromRequestParts<AppState> for Auth {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        if let Some(auth) = parts.extensions.get::<Auth>() {
            return Ok(auth.clone());
        }
        let auth = authenticate(parts, state).await?;
        parts.extensions.insert(auth.clone());
        Ok(auth)
    }
}

async fn authenticate(parts: &Parts, state: &AppState) -> ApiResult<Auth> {
    let store = &state.store;
    // Noted before the store is asked, so a revocation that lands after the check is
    // seen by whatever this request keeps open (see `revocation.rs`).
    let epoch = state.revocations.epoch();
    if let Some(token) = bearer(parts) {
        let found = store.authenticate_token(&token_hash(token)).await?;
        let Some(found) = found else {
            return Err(ApiError::unauthorized("invalid, expired or revoked token"));
        };
        let needed = if is_safe(&parts.method) {
            [Scope::Read, Scope::Write].as_slice()
        } else {
            [Scope::Write].as_slice()
        };
        if !found.scopes.iter().any(|s| needed.contains(s)) {
            return Err(ApiError::forbidden(format!(
                "this token lacks the {} scope",
                needed[needed.len() - 1].as_str()
            )));
        }
        let is_admin = found.user.is_admin && found.scopes.contains(&Scope::Admin);
        return Ok(Auth {
            principal: Principal::user(found.user.id.clone(), is_admin),
            user: found.user,
            credential: Credential::Token {
                token_id: found.token_id,
                scopes: found.scopes,
            },
            epoch,
        });
    }
    if let Some(session) = cookie(parts, SESSION_COOKIE) {
        let found = store.authenticate_web_session(&token_hash(session)).await?;
        let Some(found) = found else {
            return Err(ApiError::unauthorized("session expired; log in again"));
        };
        if !is_safe(&parts.method) {
            let sent = parts
                .headers
                .get(CSRF_HEADER)
                .and_then(|v| v.to_str().ok())
                .unwrap_or("");
            if !constant_time_eq(sent, &found.csrf_token) {
                return Err(ApiError::forbidden(
                    "missing or wrong X-CSRF-Token header for this session",
                ));
            }
        }
        return Ok(Auth {
            principal: Principal::user(found.user.id.clone(), found.user.is_admin),
            user: found.user,
            credential: Credential::Cookie {
                session_id: found.session_id,
            },
            epoch,
        });
    }
    Err(ApiError::unauthorized(
        "no credential: log in (mosaic login) or send Authorization: Bearer TOKEN",
    ))
}
