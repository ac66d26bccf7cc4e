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

/// Whether a `traceparent` has the W3C shape: `vv-<32 hex>-<16 hex>-<2 hex>` in
/// lower-case hex, version not `ff`; version `00` has exactly these fields, a later one
/// may add more after a `-`. Checked here because the propagator's parser is lenient: it
/// reads ids with `from_str_radix`, so it takes a one-digit version, a short trace id
/// (continuing a different, zero-padded trace) or a leading `+`.
fn well_formed(traceparent: &[u8]) -> bool {
    let hex = |range: std::ops::Range<usize>| {
        traceparent
            .get(range)
            .is_some_and(|s| s.iter().all(|c| matches!(c, b'0'..=b'9' | b'a'..=b'f')))
    };
    let dash = |at: usize| traceparent.get(at) == Some(&b'-');
    let version = traceparent.get(0..2);
    let fields =
        hex(0..2) && dash(2) && hex(3..35) && dash(35) && hex(36..52) && dash(52) && hex(53..55);
    fields
        && match version {
            Some(b"00") => traceparent.len() == 55,
            Some(b"ff") => false,
            _ => traceparent.len() == 55 || dash(55),
        }
}

/// The caller's trace context, when its headers are present, well formed and of sane
/// size.
pub fn remote_context(headers: &HeaderMap) -> Option<opentelemetry::Context> {
    let parent = headers.get("traceparent")?;
    if parent.len() > MAX_TRACEPARENT
        || !well_formed(parent.as_bytes())
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

#[cfg(test)]
mod tests {
    use super::well_formed;

    #[test]
    fn only_the_w3c_shape_of_traceparent_is_accepted() {
        let t = "0af7651916cd43dd8448eb211c80319c";
        let s = "b7ad6b7169203331";
        for ok in [
            format!("00-{t}-{s}-01"),
            format!("00-{t}-{s}-00"),
            format!("01-{t}-{s}-01"),
            format!("01-{t}-{s}-01-more"),
        ] {
            assert!(well_formed(ok.as_bytes()), "{ok}");
        }
        for bad in [
            format!("0-{t}-{s}-01"),
            format!("000-{t}-{s}-01"),
            format!("ff-{t}-{s}-01"),
            format!("00-{}-{s}-01", &t[..30]),
            format!("00-+{}-{s}-01", &t[1..]),
            format!("00-{}-{s}-01", t.to_uppercase()),
            format!("00-{t}-{s}-01-more"),
            format!("01-{t}-{s}-01more"),
            format!("00-{t}-{s}"),
            String::new(),
        ] {
            assert!(!well_formed(bad.as_bytes()), "{bad}");
        }
    }
}
