#!/usr/bin/env bash
# Build and run the gateway on the embedded default: 127.0.0.1:8420, one SQLite file
# in $XDG_DATA_HOME/mosaic (override with --data-dir or MOSAIC_DATA_DIR). Extra
# arguments go to `mosaic serve` (see `mosaic serve --help`).
set -Eeuo pipefail
cd "$(dirname "$0")/.."
command -v cargo >/dev/null || { echo "serve.sh: cargo is needed (https://rustup.rs)" >&2; exit 1; }
cargo build --release --locked -p mosaic-cli >&2
exec target/release/mosaic serve "$@"
