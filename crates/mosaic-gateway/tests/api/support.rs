//! What the API tests share: the test gateway and its helpers (from
//! `mosaic-test-support`, shared with the telemetry and metrics test binaries), and the
//! OpenAPI document's paths.

pub use mosaic_test_support::gateway::*;
use serde_json::Value;

/// The OpenAPI document the gateway serves, as JSON.
pub fn document() -> Value {
    let (_, doc) = mosaic_gateway::openapi::api();
    serde_json::to_value(&doc).unwrap()
}

/// A documented path with every `{parameter}` filled in with `x`.
pub fn filled_path(path: &str) -> String {
    path.split('/')
        .map(|seg| if seg.starts_with('{') { "x" } else { seg })
        .collect::<Vec<_>>()
        .join("/")
}
