//! The checked-in OpenAPI document matches what the code generates.

/// Where the document is checked in.
fn checked_in_path() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../openapi.json")
}

#[test]
fn the_checked_in_openapi_document_is_current() {
    let generated = mosaic_gateway::openapi::document_json();
    let path = checked_in_path();
    if std::env::var_os("MOSAIC_BLESS").is_some() {
        std::fs::write(&path, &generated).unwrap();
        return;
    }
    let checked_in = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        checked_in == generated,
        "openapi.json is stale: regenerate it with `scripts/gen-openapi.sh` \
         (or MOSAIC_BLESS=1 cargo test -p mosaic-gateway --test api openapi)"
    );
}

#[test]
fn every_operation_has_an_id_and_a_tag() {
    let (_, doc) = mosaic_gateway::openapi::api();
    let doc = serde_json::to_value(&doc).unwrap();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (method, op) in item.as_object().unwrap() {
            assert!(
                op["operationId"].is_string(),
                "{method} {path} has no operationId"
            );
            assert!(op["tags"].is_array(), "{method} {path} has no tag");
        }
    }
}
