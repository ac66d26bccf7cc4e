//! Liveness and readiness, for supervisors and load balancers.

use crate::openapi::lazy::routes;
use crate::openapi::lazy::ApiRouter;
use axum::extract::State;
use axum::http::StatusCode;
use serde::Serialize;
use utoipa::ToSchema;

use crate::extract::Json;
use crate::AppState;

/// The routes of liveness and readiness.
pub fn router() -> ApiRouter<AppState> {
    ApiRouter::new()
        .routes(routes!(healthz))
        .routes(routes!(readyz))
}

#[derive(Debug, Serialize, ToSchema)]
pub struct HealthResponse {
    /// `ok`, or what is wrong.
    pub status: String,
}

/// The process is up.
#[utoipa::path(get, path = "/healthz", tag = "health", operation_id = "healthz",
    security(()), responses((status = 200, body = HealthResponse)))]
pub async fn healthz() -> Json<HealthResponse> {
    Json(HealthResponse {
        status: "ok".into(),
    })
}

/// What the start-up check found of the database's structure.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum Integrity {
    /// Still reading it (every page of an SQLite file).
    #[default]
    Checking,
    Sound,
    Damaged(String),
}

/// Check the database's structure in the background; readiness waits for the answer.
pub fn check_integrity(state: &AppState) {
    let state = state.clone();
    tokio::spawn(async move {
        let found = match state.store.check_integrity().await {
            Ok(None) => Integrity::Sound,
            Ok(Some(problems)) => {
                tracing::error!(%problems, "the database is damaged; restore it from a backup");
                Integrity::Damaged(problems)
            }
            Err(e) => {
                tracing::error!(error = %e, "the database could not be checked");
                Integrity::Damaged(e.to_string())
            }
        };
        *crate::lock(&state.integrity) = found;
    });
}

/// The gateway can serve requests: its database is sound and answers.
#[utoipa::path(get, path = "/readyz", tag = "health", operation_id = "readyz",
    security(()), responses((status = 200, body = HealthResponse), (status = 503, body = HealthResponse)))]
pub async fn readyz(State(state): State<AppState>) -> (StatusCode, Json<HealthResponse>) {
    let unavailable = |status: String| {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(HealthResponse { status }),
        )
    };
    let integrity = crate::lock(&state.integrity).clone();
    match integrity {
        Integrity::Checking => return unavailable("checking the database".into()),
        Integrity::Damaged(problems) => {
            return unavailable(format!("database damaged: {problems}"))
        }
        Integrity::Sound => {}
    }
    match state.store.ping().await {
        Ok(()) => (
            StatusCode::OK,
            Json(HealthResponse {
                status: "ok".into(),
            }),
        ),
        Err(e) => {
            tracing::warn!(error = %e, "readiness check failed");
            unavailable("database unavailable".into())
        }
    }
}
