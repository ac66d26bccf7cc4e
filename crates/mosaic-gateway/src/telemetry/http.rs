//! One span per inbound request, continuing the caller's trace when it sent a valid
//! `traceparent`. Headers that are malformed or oversized start a new trace; baggage is
//! not read. The response names the trace in `x-trace-id`.

use axum::extract::{MatchedPath, Request, State};
use axum::http::{HeaderMap, HeaderValue};
use axum::middleware::Next;
use axum::response::Response;
use opentelemetry::propagation::Extractor;
use opentelemetry::trace::TraceContextExt;
use tracing::Instrument;
use tracing_opentelemetry::OpenTelemetrySpanExt;

/// The response header that names the request's trace.
pub const TRACE_ID_HEADER: &str = "x-trace-id";

/// Longest `traceparent` accepted (version 00 is 55 characters; later versions may add
/// fields, so some room is left).
const MAX_TRACEPARENT: usize = 128;
/// Longest `tracestate` accepted (the specification's limit).
const MAX_TRACESTATE: usize = 512;

struct Headers<'a>(&'a HeaderMap);

impl Extractor for Headers<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        // Exactly one of each: a repeated header is malformed.
        let mut values = self.0.get_all(key).iter();
        let first = values.next()?;
        if values.next().is_some() {
            return None;
        }
        first.to_str().ok()
    }

    fn keys(&self) -> Vec<&str> {
        self.0.keys().map(|k| k.as_str()).collect()
    }
}

/// The caller's trace context, when its headers are present, well formed and of sane
/// size.
pub fn remote_context(headers: &HeaderMap) -> Option<opentelemetry::Context> {
    let parent = headers.get("traceparent")?;
    if parent.len() > MAX_TRACEPARENT
        || headers
            .get("tracestate")
            .is_some_and(|s| s.len() > MAX_TRACESTATE)
    {
        return None;
    }
    let cx = opentelemetry::global::get_text_map_propagator(|p| p.extract(&Headers(headers)));
    cx.span().span_context().is_valid().then_some(cx)
}

/// The middleware: a server span named `METHOD route`, with the status recorded, and
/// the request counted in the metrics.
pub async fn trace_request(
    State(state): State<crate::AppState>,
    req: Request,
    next: Next,
) -> Response {
    let started = std::time::Instant::now();
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map(|m| m.as_str().to_string())
        .unwrap_or_else(|| "unmatched".to_string());
    let method = req.method().as_str().to_string();
    let span = tracing::info_span!(
        "http.request",
        otel.name = %format!("{method} {route}"),
        otel.kind = "server",
        otel.status_code = tracing::field::Empty,
        http.request.method = %method,
        http.route = %route,
        http.response.status_code = tracing::field::Empty,
        trace_id = tracing::field::Empty,
    );
    if let Some(cx) = remote_context(req.headers()) {
        let _ = span.set_parent(cx);
    }
    let trace_id = span.context().span().span_context().trace_id();
    span.record("trace_id", tracing::field::display(trace_id));
    let mut response = next.run(req).instrument(span.clone()).await;
    let status = response.status();
    state
        .metrics
        .http_request(&method, &route, status.as_u16(), started.elapsed());
    span.record("http.response.status_code", status.as_u16());
    if status.is_server_error() {
        span.record("otel.status_code", "ERROR");
    }
    if let Ok(v) = HeaderValue::from_str(&trace_id.to_string()) {
        response.headers_mut().insert(TRACE_ID_HEADER, v);
    }
    response
}
