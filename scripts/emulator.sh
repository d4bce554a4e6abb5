#!/usr/bin/env bash
# Local AWS wire-protocol emulator (ministack) for firebell's AWS adapter tests.
#
#   eval "$(scripts/emulator.sh start)"   # install (once), start, export the env
#   cargo test -p firebell-aws
#   scripts/emulator.sh stop
#
# `start` installs the pinned ministack + cbor2 into ./.venv when missing,
# starts the emulator on a free loopback port (log: target/emulator.log), waits
# until it answers and prints `export` lines for AWS_ENDPOINT_URL, dummy
# credentials, AWS_REGION and FIREBELL_EMULATOR_PID. Running `start` again while
# the emulator is up prints the same lines. `stop` ends it. `status` says
# whether it runs. `install-lambda` installs the pinned cargo-lambda into
# ./.venv and prints its path. Everything but the export lines (and that path)
# goes to stderr.
set -euo pipefail

START_TIMEOUT_SECS="${FIREBELL_EMULATOR_TIMEOUT:-30}"

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
# shellcheck source=scripts/lib.sh
source "$ROOT/scripts/lib.sh"
LOG_NAME=emulator
LOG_FAIL=""
STATE_DIR="$ROOT/target"
LOG="$STATE_DIR/emulator.log"
PID_FILE="$STATE_DIR/emulator.pid"
ENV_FILE="$STATE_DIR/emulator.env"

# True when $1 is a live process running ministack.
is_emulator_pid() {
    local pid="$1"
    [[ "$pid" =~ ^[0-9]+$ ]] || return 1
    kill -0 "$pid" 2>/dev/null || return 1
    [[ -r "/proc/$pid/cmdline" ]] || return 0
    tr '\0' ' ' <"/proc/$pid/cmdline" | grep -q 'ministack'
}

# True when the emulator at $1 (a URL) answers its health check.
answers() {
    "$PY" - "$1" <<'EOF' >/dev/null 2>&1
import sys, urllib.request
with urllib.request.urlopen(sys.argv[1] + "/_ministack/health", timeout=2) as r:
    sys.exit(0 if r.status == 200 else 1)
EOF
}

# Installs the pinned cargo-lambda into ./.venv (once) and prints its path.
cmd_install_lambda() {
    emulator_install
    local bin="$EMULATOR_VENV/bin/cargo-lambda"
    if ! [[ -x "$bin" ]] || ! pins_installed "cargo-lambda==$CARGO_LAMBDA_VERSION"; then
        log "installing cargo-lambda==$CARGO_LAMBDA_VERSION into $EMULATOR_VENV"
        "$PY" -m pip install --disable-pip-version-check --no-input -q \
            "cargo-lambda==$CARGO_LAMBDA_VERSION" >&2 </dev/null ||
            die "pip install of cargo-lambda failed"
    fi
    printf '%s\n' "$bin"
}

print_env() {
    local port="$1" pid="$2"
    cat <<EOF
export AWS_ENDPOINT_URL=http://127.0.0.1:$port
export AWS_ACCESS_KEY_ID=test
export AWS_SECRET_ACCESS_KEY=test
export AWS_REGION=us-east-1
export FIREBELL_EMULATOR_PID=$pid
EOF
}

running_pid() {
    local pid
    [[ -f "$PID_FILE" ]] || return 1
    pid="$(cat "$PID_FILE")"
    is_emulator_pid "$pid" || return 1
    printf '%s\n' "$pid"
}

cmd_start() {
    mkdir -p "$STATE_DIR"
    emulator_install

    local pid port
    if pid="$(running_pid)" && [[ -f "$ENV_FILE" ]]; then
        port="$(sed -n 's/^export AWS_ENDPOINT_URL=http:\/\/127\.0\.0\.1:\([0-9]*\)$/\1/p' "$ENV_FILE")"
        if [[ -n "$port" ]] && answers "http://127.0.0.1:$port"; then
            log "already running (pid $pid, port $port)"
            cat "$ENV_FILE"
            return 0
        fi
        log "stale emulator (pid $pid) does not answer: restarting it"
        cmd_stop
    fi

    port="$(free_port)"
    : >"$LOG"
    # Own session, stdin/stdout/stderr detached: `eval "$(... start)"` must not
    # wait on the emulator's output.
    BIND_HOST=127.0.0.1 GATEWAY_PORT="$port" \
        nohup setsid "$PY" -m ministack </dev/null >>"$LOG" 2>&1 &
    pid=$!
    echo "$pid" >"$PID_FILE"

    local url="http://127.0.0.1:$port" waited=0
    until answers "$url"; do
        if ! kill -0 "$pid" 2>/dev/null; then
            log "ministack exited during startup; last lines of $LOG:"
            tail -n 40 "$LOG" >&2 || true
            rm -f "$PID_FILE"
            exit 1
        fi
        if ((waited >= START_TIMEOUT_SECS * 2)); then
            log "ministack did not answer on $url within ${START_TIMEOUT_SECS}s; last lines of $LOG:"
            tail -n 40 "$LOG" >&2 || true
            kill "$pid" 2>/dev/null || true
            rm -f "$PID_FILE"
            exit 1
        fi
        sleep 0.5
        waited=$((waited + 1))
    done

    print_env "$port" "$pid" >"$ENV_FILE"
    log "ministack $MINISTACK_VERSION up on $url (pid $pid, log $LOG)"
    cat "$ENV_FILE"
}

cmd_stop() {
    local pid=""
    if [[ -f "$PID_FILE" ]]; then
        pid="$(cat "$PID_FILE")"
    elif [[ -n "${FIREBELL_EMULATOR_PID:-}" ]]; then
        pid="$FIREBELL_EMULATOR_PID"
    fi
    if [[ -z "$pid" ]] || ! is_emulator_pid "$pid"; then
        log "not running"
        rm -f "$PID_FILE" "$ENV_FILE"
        return 0
    fi
    kill "$pid" 2>/dev/null || true
    for _ in $(seq 1 50); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.2
    done
    if kill -0 "$pid" 2>/dev/null; then
        log "pid $pid ignored SIGTERM: sending SIGKILL"
        kill -9 "$pid" 2>/dev/null || true
    fi
    rm -f "$PID_FILE" "$ENV_FILE"
    log "stopped (pid $pid)"
}

cmd_status() {
    local pid
    if pid="$(running_pid)"; then
        log "running (pid $pid)"
        [[ -f "$ENV_FILE" ]] && cat "$ENV_FILE"
        return 0
    fi
    log "not running"
    return 1
}

case "${1:-}" in
start) cmd_start ;;
stop) cmd_stop ;;
status) cmd_status ;;
install-lambda) cmd_install_lambda ;;
*)
    echo "usage: $0 start|stop|status|install-lambda" >&2
    # shellcheck disable=SC2016 # a literal $(...) for the reader to paste
    echo '  eval "$('"$0"' start)" && cargo test -p firebell-aws; '"$0"' stop' >&2
    exit 2
    ;;
esac
