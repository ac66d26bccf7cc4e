//! `GET /metrics`: the Prometheus scrape target. With `metrics_token` configured it
//! needs `Authorization: Bearer <token>`; without, it answers loopback clients only.

use std::net::SocketAddr;

use axum::extract::{ConnectInfo, State};
use axum::http::{header, HeaderMap, HeaderValue};
use axum::response::{IntoResponse, Response};
use mosaic_api::ErrorCode;

use crate::error::ApiError;
use crate::telemetry::metrics::Snapshot;
use crate::AppState;

/// `GET /metrics`, outside the API document: a scrape target, not an operation of the
/// contract.
pub fn router() -> axum::Router<AppState> {
    axum::Router::new().route("/metrics", axum::routing::get(metrics))
}

/// The content type of the Prometheus text format.
pub const PROMETHEUS_TEXT: &str = "text/plain; version=0.0.4; charset=utf-8";

/// Whether two secrets are equal, in time that does not depend on where they differ.
fn same(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

pub async fn metrics(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
) -> Response {
    let allowed = match &state.config.metrics_token {
        Some(token) => headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .is_some_and(|given| same(given.trim().as_bytes(), token.as_bytes())),
        None => peer.ip().is_loopback(),
    };
    if !allowed {
        let why = if state.config.metrics_token.is_some() {
            "metrics need the metrics token (Authorization: Bearer …)"
        } else {
            "metrics are served to loopback clients only (set metrics_token to scrape from elsewhere)"
        };
        return ApiError::new(ErrorCode::Forbidden, why).into_response();
    }
    let (db_pool_size, db_pool_idle, db_pool_max) = state.store.pool_stats();
    let now = Snapshot {
        active_runs: state.runtime.active_runs(),
        sse_subscribers: state.runtime.subscriber_count(),
        db_pool_size,
        db_pool_idle,
        db_pool_max,
        export: crate::telemetry::export_counts(),
        embeddings: state.embedder.as_ref().map(|e| {
            use std::sync::atomic::Ordering::Relaxed;
            (
                e.stats.embedded.load(Relaxed),
                e.stats.refused.load(Relaxed),
                e.stats.failed_requests.load(Relaxed),
            )
        }),
    };
    let mut response = state.metrics.render(&now).into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(PROMETHEUS_TEXT),
    );
    response
}
