#!/usr/bin/env bash
# Runs every test firebell has, installing and starting what they need:
#
#   1. the architecture invariants: the pure crates depend on no AWS, Lambda or tokio
#      crate, and firebell-engine on no adapter crate (firebell-embedded, firebell-aws);
#   2. the AWS wire-protocol emulator (ministack, pinned, in ./.venv): the one at
#      AWS_ENDPOINT_URL when the caller exported one (left running), else a private one
#      started on a free port and stopped on exit;
#   3. cargo test for the whole workspace: unit, timeline, golden, store contract,
#      CLI and emulator-backed tests (they fail loudly if the emulator is missing),
#      and the HTML report in headless Chromium (installed with apt-get if missing);
#   4. the evaluator binary under `cargo lambda watch` against the emulator
#      (scripts/lambda-test.sh: invoke, SNS -> SQS notification, EMF heartbeat);
#   5. the infrastructure checks (cfn-lint, checkov, template assertions).
#
# Usage: scripts/test.sh            (from anywhere; CI runs it from a fresh clone)
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

# shellcheck source=scripts/lib.sh
source "$ROOT/scripts/lib.sh"
LOG_NAME="test"
STEP_FD=2

# The pure crates (normal edges) depend on no AWS, Lambda or tokio crate.
check_pure_crates() {
    local crate bad
    for crate in firebell-core firebell-notify firebell-engine; do
        bad=$(cargo tree -q -p "$crate" -e normal --prefix none \
            | grep -E '^(aws-|lambda_runtime|lambda_http|tokio )' | sort -u || true)
        if [ -n "$bad" ]; then
            echo "FAIL: $crate depends on:" >&2
            echo "$bad" >&2
            exit 1
        fi
        echo "ok: $crate" >&2
    done
}

# firebell-engine (normal edges, direct or not) depends on no adapter crate:
# the adapters implement its ports, never the other way round.
check_engine_without_adapters() {
    local adapters=(firebell-embedded firebell-aws) found=() adapter tree
    tree=$(cargo tree -q -p firebell-engine -e normal --prefix none)
    for adapter in "${adapters[@]}"; do
        if grep -q "^$adapter " <<<"$tree"; then
            found+=("$adapter")
        fi
    done
    if ((${#found[@]})); then
        echo "FAIL: firebell-engine depends on the adapter crate ${found[*]}:" \
            "the engine reaches adapters only through the ports (firebell_core::ports). Path:" >&2
        for adapter in "${found[@]}"; do
            cargo tree -q -p firebell-engine -e normal -i "$adapter" >&2
        done
        exit 1
    fi
    echo "ok: firebell-engine depends on none of ${adapters[*]}" >&2
}

step "architecture: pure crates depend on no AWS, Lambda or tokio crate; the engine on no adapter"
check_pure_crates
check_engine_without_adapters

step "feature unification: the README's first command builds what the tests reuse"
scripts/feature-drift.sh

step "emulator: ministack"
if [[ -n "${AWS_ENDPOINT_URL:-}" ]]; then
    log "using the emulator at AWS_ENDPOINT_URL=$AWS_ENDPOINT_URL (left running)"
fi
private_begin test
private_emulator

step "headless Chromium for the HTML report's browser test"
chromium_install

step "cargo test --workspace"
cargo test --workspace --lib --bins --tests --examples --no-fail-fast
cargo test --workspace --doc

step "the evaluator under the Lambda runtime emulator (cargo lambda watch)"
scripts/lambda-test.sh

step "infrastructure checks: cfn-lint, checkov, template assertions, sam validate --lint"
INFRA_CHECK_SAM=1 scripts/infra-check.sh

step "all tests passed"
