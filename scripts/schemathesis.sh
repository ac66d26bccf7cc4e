#!/usr/bin/env bash
# Schemathesis against a real gateway: every operation of openapi.json, with the fuzzer's
# own checks (status codes and bodies the document lists, schema-valid data accepted,
# invalid data refused, no 5xx, auth enforced, …), for a bounded number of examples per
# operation. Any finding fails the run. Part of scripts/test.sh.
#
#   scripts/schemathesis.sh                 # the CI run (10 examples an operation, fixed seed)
#   MOSAIC_SCHEMATHESIS_EXAMPLES=100 MOSAIC_SCHEMATHESIS_SEED= scripts/schemathesis.sh   # longer, random
#   scripts/schemathesis.sh --include-operation-id list_tasks   # extra schemathesis options
#
# The gateway is the debug `mosaic` binary on a free loopback port, with SQLite in a
# temporary directory and a bootstrapped admin; Schemathesis authenticates through
# scripts/schemathesis/mosaic_hooks.py (tokens minted by admins it cannot lock out).
#
# Two operations skip the check that schema-valid bodies are accepted, for the reasons in
# scripts/schemathesis/schemathesis.toml. Not fuzzed at all, because they would make the gateway call hosts the fuzzer makes up:
#   create_provider, update_provider  a provider's base_url is any URL; every later model
#                                     call (runs, chat completions, model lists, provider
#                                     tests) would go there. Without them no provider exists.
set -Eeuo pipefail
cd "$(dirname "$0")/.."

log() { printf 'schemathesis.sh: %s\n' "$*" >&2; }

# A fixed seed by default, so that a run (and CI) is reproducible; set another, or
# MOSAIC_SCHEMATHESIS_SEED= (empty) for a random one, to look further.
EXAMPLES=${MOSAIC_SCHEMATHESIS_EXAMPLES:-10}
SEED=${MOSAIC_SCHEMATHESIS_SEED-20261204}

eval "$(scripts/services.sh install-schemathesis)"

log "building the gateway"
cargo build --locked -p mosaic-cli --bin mosaic >&2
bin="${CARGO_TARGET_DIR:-target}/debug/mosaic"

work=$(mktemp -d "${TMPDIR:-/tmp}/mosaic-schemathesis.XXXXXX")
gateway_pid=
cleanup() {
    if [[ -n $gateway_pid ]]; then
        kill "$gateway_pid" 2>/dev/null || true
        wait "$gateway_pid" 2>/dev/null || true
    fi
    rm -rf "$work"
}
trap cleanup EXIT

port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
url="http://127.0.0.1:$port"
# A home of its own: no gateway.toml or credentials of the developer's are read.
export HOME="$work/home" MOSAIC_DATA_DIR="$work/data" MOSAIC_LOG=warn
mkdir -p "$HOME"
"$bin" serve --listen "127.0.0.1:$port" >"$work/gateway.log" 2>&1 &
gateway_pid=$!
for _ in $(seq 100); do
    python3 -c "import urllib.request; urllib.request.urlopen('$url/readyz', timeout=1)" 2>/dev/null && break
    kill -0 "$gateway_pid" 2>/dev/null || { cat "$work/gateway.log" >&2; log "the gateway did not start"; exit 1; }
    sleep 0.2
done

export MOSAIC_SCHEMATHESIS_URL=$url
MOSAIC_SCHEMATHESIS_PASSWORD=$(python3 -c 'import secrets; print(secrets.token_urlsafe(18))')
export MOSAIC_SCHEMATHESIS_PASSWORD
bootstrap=$("$bin" admin bootstrap 2>/dev/null)
python3 - "$url" "$bootstrap" <<'PY'
import json, os, sys, urllib.request
url, token = sys.argv[1:]
body = {"token": token, "username": "keeper-a",
        "password": os.environ["MOSAIC_SCHEMATHESIS_PASSWORD"]}
req = urllib.request.Request(url + "/api/v1/auth/bootstrap", data=json.dumps(body).encode(),
                             headers={"content-type": "application/json"}, method="POST")
urllib.request.urlopen(req, timeout=30)
PY

log "fuzzing $url with $EXAMPLES examples per operation"
started=$SECONDS
status=0
PYTHONPATH="scripts/schemathesis:$MOSAIC_TEST_SCHEMATHESIS_PYTHONPATH" SCHEMATHESIS_HOOKS=mosaic_hooks \
    python3 -c 'import sys; from schemathesis.cli import schemathesis; sys.argv[0] = "schemathesis"; schemathesis()' \
    --config-file scripts/schemathesis/schemathesis.toml \
    run openapi.json --url "$url" \
    --max-examples "$EXAMPLES" \
    ${SEED:+--seed "$SEED"} \
    --exclude-operation-id create_provider --exclude-operation-id update_provider \
    --request-timeout 30 \
    --generation-database none \
    --no-color \
    "$@" || status=$?
log "schemathesis took $((SECONDS - started)) s"
if [[ $status -ne 0 ]]; then
    log "findings above (gateway log: last lines follow)"
    tail -n 40 "$work/gateway.log" >&2
fi
exit "$status"
