# shellcheck shell=bash
# What scripts/*.sh share: version pins, logging, free ports, tool venvs, and a
# script's private emulator and processes with their cleanup. Sourced, not run;
# a script sets ROOT (the repository root) first, and LOG_NAME before it logs:
#
#   ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
#   # shellcheck source=scripts/lib.sh
#   source "$ROOT/scripts/lib.sh"
#   LOG_NAME=my-script
#
# Variables set here are read by the scripts that source it.
# shellcheck disable=SC2034

# ---- version pins: every pinned tool, each written once ----------------------

# The AWS wire-protocol emulator and the CBOR codec it needs, in ./.venv.
MINISTACK_VERSION="1.5.33"
CBOR2_VERSION="6.3.0"
# cargo-lambda (its PyPI wheel bundles the binary and zig): the Lambda runtime
# emulator `cargo lambda watch` for lambda-test.sh and coldstart.sh (in
# ./.venv), and the arm64 cross build of package.sh (in infra/.venv-cargo-lambda).
CARGO_LAMBDA_VERSION="1.9.2"
# aws-sam-cli, in infra/.venv-sam: `sam validate --lint` (infra-check.sh with
# INFRA_CHECK_SAM=1) and `sam build` (package.sh).
SAM_CLI_VERSION="1.170.0"
# cfn-lint, aws-sam-translator, checkov and pytest (infra-check.sh) are pinned
# in infra/requirements.txt, their whole resolved set in infra/constraints.txt:
# pip reads them from there.

# Headless Chromium for the HTML report's browser test (cli/tests/html_browser.rs),
# from the system packages (Debian: `chromium`), installed by chromium_install
# when missing. The archive moves with security updates, so the version is
# checked, not pinned: at least CHROMIUM_MIN_MAJOR (tested with 156.0.8078.108).
CHROMIUM_PACKAGE="chromium"
CHROMIUM_MIN_MAJOR="120"

# The emulator venv: ministack and cbor2 (emulator_install), cargo-lambda
# (scripts/emulator.sh install-lambda). $PY is its python.
EMULATOR_VENV="$ROOT/.venv"
PY="$EMULATOR_VENV/bin/python"

# ---- logging -----------------------------------------------------------------

# log MSG: "$LOG_NAME: MSG" on stderr.
log() { printf '%s: %s\n' "${LOG_NAME:-firebell}" "$*" >&2; }

# die MSG: logs "FAIL: MSG" and exits 1. A script whose errors carry no tag sets
# LOG_FAIL="" (the tag, default "FAIL: ").
die() {
    log "${LOG_FAIL-FAIL: }$*"
    exit 1
}

# step TITLE: a section header, "\n==> TITLE", on stdout (on stderr with STEP_FD=2).
step() { printf '\n==> %s\n' "$*" >&"${STEP_FD:-1}"; }

# ---- ports -------------------------------------------------------------------

# Prints a free TCP port on 127.0.0.1 (uses $PY).
free_port() {
    "$PY" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()'
}

# Waits (bounded, 30 s) until 127.0.0.1:$1 accepts connections; $2 is the pid
# that must stay alive meanwhile. Returns 1 if it dies or time runs out.
wait_port() {
    local port="$1" pid="$2"
    for _ in $(seq 1 120); do
        if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
            return 0
        fi
        kill -0 "$pid" 2>/dev/null || return 1
        sleep 0.25
    done
    return 1
}

# ---- tool venvs --------------------------------------------------------------

# venv_install VENV STAMP [PIP_ARGS...]: creates VENV with $PYTHON (default
# python3) when missing and pip-installs PIP_ARGS (default: STAMP, a single
# pin such as "aws-sam-cli==$SAM_CLI_VERSION") unless VENV/.pins already holds
# STAMP: reinstalls only when the pins changed.
venv_install() {
    local venv="$1" want="$2"
    shift 2
    (($#)) || set -- "$want"
    if [[ ! -x "$venv/bin/python" ]]; then
        "${PYTHON:-python3}" -m venv "$venv"
    fi
    if [[ "$(cat "$venv/.pins" 2>/dev/null || true)" != "$want" ]]; then
        "$venv/bin/python" -m pip install --quiet "$@"
        printf '%s\n' "$want" >"$venv/.pins"
    fi
}

# pins_installed NAME==VERSION...: true when the emulator venv has exactly
# these versions installed.
pins_installed() {
    [[ -x "$PY" ]] || return 1
    "$PY" - "$@" <<'EOF' >/dev/null 2>&1
import sys
from importlib.metadata import version
sys.exit(0 if all(version(n) == v for n, v in (a.split("==", 1) for a in sys.argv[1:])) else 1)
EOF
}

# emulator_install: installs the pinned ministack and cbor2 into the emulator
# venv unless they are there already. Output on stderr.
emulator_install() {
    pins_installed "ministack==$MINISTACK_VERSION" "cbor2==$CBOR2_VERSION" && return 0
    command -v python3 >/dev/null || die "python3 not found: install Python 3.10+ first"
    if [[ ! -x "$PY" ]]; then
        log "creating $EMULATOR_VENV"
        python3 -m venv "$EMULATOR_VENV" >&2 || die "python3 -m venv failed (Debian: apt-get install python3-venv)"
    fi
    log "installing ministack==$MINISTACK_VERSION cbor2==$CBOR2_VERSION into $EMULATOR_VENV"
    "$PY" -m pip install --disable-pip-version-check --no-input -q \
        "ministack==$MINISTACK_VERSION" "cbor2==$CBOR2_VERSION" >&2 </dev/null ||
        die "pip install of ministack failed"
}

# chromium_install: makes headless Chromium available (apt-get install of
# $CHROMIUM_PACKAGE when no `chromium` is on the PATH; needs root or sudo) and
# exports FIREBELL_CHROMIUM, the binary the browser test runs. Dies when it
# cannot: the browser test would fail anyway, saying the same.
chromium_install() {
    local bin major sudo=()
    bin="${FIREBELL_CHROMIUM:-$(command -v chromium || command -v chromium-browser || true)}"
    if [[ -z "$bin" ]]; then
        command -v apt-get >/dev/null || die "chromium not found and no apt-get: install Chromium and set FIREBELL_CHROMIUM"
        ((EUID == 0)) || sudo=(sudo -n)
        log "installing $CHROMIUM_PACKAGE (apt-get)"
        "${sudo[@]}" apt-get update -qq >&2 || die "apt-get update failed"
        "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$CHROMIUM_PACKAGE" >&2 ||
            die "apt-get install $CHROMIUM_PACKAGE failed"
        bin="$(command -v chromium || command -v chromium-browser || true)"
        [[ -n "$bin" ]] || die "$CHROMIUM_PACKAGE installed but no chromium on the PATH"
    fi
    major="$("$bin" --version 2>/dev/null | grep -oE '[0-9]+\.[0-9.]+' | head -1 | cut -d. -f1 || true)"
    [[ "${major:-0}" -ge "$CHROMIUM_MIN_MAJOR" ]] ||
        die "$bin is version ${major:-unknown}; the browser test needs Chromium $CHROMIUM_MIN_MAJOR or later"
    export FIREBELL_CHROMIUM="$bin"
    log "chromium: $bin (major $major)"
}

# ---- a script's private emulator and processes -------------------------------
#
#   private_begin NAME     scratch dir $WORK; the EXIT trap private_cleanup
#   private_emulator       a ministack of its own, unless AWS_ENDPOINT_URL is set
#   lambda_watch PORT ...  `cargo lambda watch` ($CARGO_LAMBDA) on PORT
#
# On exit private_cleanup stops what this script started, and only that; then
# it removes $WORK, or on failure runs the script's on_failure function (when
# it defines one) and keeps $WORK.

WORK=""
WATCH_PID=""
EMULATOR_PID=""

# private_begin NAME: creates $WORK (${TMPDIR:-/tmp}/firebell-NAME.XXXXXX) and
# installs the traps: EXIT runs private_cleanup, INT and TERM exit 130 through it.
private_begin() {
    WORK="$(mktemp -d "${TMPDIR:-/tmp}/firebell-$1.XXXXXX")"
    trap private_cleanup EXIT
    trap 'exit 130' INT TERM
}

private_cleanup() {
    local rc=$?
    if [[ -n "$WATCH_PID" ]]; then
        # Its own session: the group holds `cargo run` and the function too.
        kill -- "-$WATCH_PID" 2>/dev/null || true
        wait "$WATCH_PID" 2>/dev/null || true
    fi
    if [[ -n "$EMULATOR_PID" ]]; then
        kill "$EMULATOR_PID" 2>/dev/null || true
        wait "$EMULATOR_PID" 2>/dev/null || true
    fi
    if ((rc != 0)); then
        if declare -F on_failure >/dev/null; then
            on_failure || true
        fi
        log "kept $WORK"
    else
        rm -rf "$WORK"
    fi
    exit "$rc"
}

# private_emulator: uses the emulator (or account) at AWS_ENDPOINT_URL when it
# is set, and never stops it. Otherwise installs and starts a private ministack
# on a free port (log: $WORK/ministack.log), never the shared one
# scripts/emulator.sh manages, exports its endpoint and dummy credentials, and
# leaves it to private_cleanup to stop.
private_emulator() {
    if [[ -z "${AWS_ENDPOINT_URL:-}" ]]; then
        emulator_install
        local port
        port="$(free_port)"
        log "AWS_ENDPOINT_URL not set: starting a private ministack on port $port"
        BIND_HOST=127.0.0.1 GATEWAY_PORT="$port" \
            setsid "$PY" -m ministack </dev/null >"$WORK/ministack.log" 2>&1 &
        EMULATOR_PID=$!
        wait_port "$port" "$EMULATOR_PID" || die "ministack did not start (log: $WORK/ministack.log)"
        export AWS_ENDPOINT_URL="http://127.0.0.1:$port"
        export AWS_ACCESS_KEY_ID=test AWS_SECRET_ACCESS_KEY=test AWS_REGION=us-east-1
    fi
    export AWS_REGION="${AWS_REGION:-us-east-1}"
}

# lambda_watch PORT ARGS...: starts `$CARGO_LAMBDA lambda watch ARGS` on
# 127.0.0.1:PORT in its own session (log: $WORK/watch.log; private_cleanup
# kills the group) and waits until it listens.
lambda_watch() {
    local port="$1"
    shift
    setsid "$CARGO_LAMBDA" lambda watch "$@" -A 127.0.0.1 -P "$port" \
        </dev/null >"$WORK/watch.log" 2>&1 &
    WATCH_PID=$!
    wait_port "$port" "$WATCH_PID" || die "cargo lambda watch did not start"
}
