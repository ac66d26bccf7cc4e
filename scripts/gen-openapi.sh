#!/usr/bin/env bash
# Regenerate the checked-in OpenAPI document from the Rust types and routes.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo run --quiet -p mosaic-cli -- openapi > openapi.json.tmp
mv openapi.json.tmp openapi.json
echo "wrote openapi.json" >&2
