//! W3C Trace Context on outbound calls: every request to a provider carries the
//! `traceparent` (and `tracestate`) of the span it is made in, so a trace continues into
//! the provider. Baggage is never sent.

use opentelemetry::propagation::Injector;
use reqwest::header::{HeaderMap, HeaderName, HeaderValue};
use tracing_opentelemetry::OpenTelemetrySpanExt;

struct Headers<'a>(&'a mut HeaderMap);

impl Injector for Headers<'_> {
    fn set(&mut self, key: &str, value: String) {
        // An empty `tracestate` is not sent (W3C: avoid empty headers).
        if value.is_empty() {
            return;
        }
        if let (Ok(name), Ok(value)) = (
            HeaderName::from_bytes(key.as_bytes()),
            HeaderValue::from_str(&value),
        ) {
            self.0.insert(name, value);
        }
    }
}

/// The trace headers of the current span (none when it is not traced).
pub fn outbound_headers() -> HeaderMap {
    let mut map = HeaderMap::new();
    let cx = tracing::Span::current().context();
    opentelemetry::global::get_text_map_propagator(|p| {
        p.inject_context(&cx, &mut Headers(&mut map))
    });
    map
}

/// A request with the current span's trace headers.
pub fn traced(req: reqwest::RequestBuilder) -> reqwest::RequestBuilder {
    req.headers(outbound_headers())
}
