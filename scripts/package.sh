#!/usr/bin/env bash
# Builds firebell's AWS deployment package, offline, and prints its sizes:
#
#   1. the evaluator, the reporter and the AppConfig validator: `cargo lambda build
#      --release --arm64 -p firebell-evaluator -p firebell-reporter -p firebell-validator`
#      (cross-compiled for Lambda's arm64 runtime with zig; no Docker)
#   2. `sam build` from infra/: copies that bootstrap into the function artifact (its
#      cargo lambda build is then a no-op) and builds ConfigLayer from the config
#      directory (FIREBELL_CONFIG_DIR, default examples/), validating it first
#   3. zips the function and the layer the way `sam deploy` does and prints the sizes
#
# The result is infra/.aws-sam/build (what `sam deploy` uploads) plus the zips under
# infra/.aws-sam/zips/ for inspection. Deploying is a separate step: `cd infra && sam deploy`.
#
# NOT part of CI (scripts/test.sh): a release cross-build of the AWS SDK takes several
# minutes on a 2-core machine. Run it before a deploy, or when packaging changes.
#
# Usage: scripts/package.sh
#        FIREBELL_CONFIG_DIR=path/to/config scripts/package.sh
#
# Environment:
#   FIREBELL_CONFIG_DIR  config directory to ship (default: examples/); relative to the
#                        current directory
#   PYTHON               interpreter for the tool venvs (default: python3)
#   FIREBELL             command running the firebell CLI for validation (see
#                        infra/config-layer/stage-config.sh)
#
# Tools (PyPI, pinned; installed once, then reused offline): cargo-lambda (brings zig as
# `ziglang`) in infra/.venv-cargo-lambda, aws-sam-cli in infra/.venv-sam (shared with
# `INFRA_CHECK_SAM=1 scripts/infra-check.sh`). The Rust target aarch64-unknown-linux-gnu
# is added with rustup if missing (network, once).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
# shellcheck source=scripts/lib.sh
source "$ROOT/scripts/lib.sh"
LOG_NAME=package
LOG_FAIL=""

PYTHON="${PYTHON:-python3}"
CL_VENV="$ROOT/infra/.venv-cargo-lambda"
SAM_VENV="$ROOT/infra/.venv-sam"
RUST_TARGET="aarch64-unknown-linux-gnu"
BUILD="$ROOT/infra/.aws-sam/build"
ZIPS="$ROOT/infra/.aws-sam/zips"

export PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_INPUT=1 PYTHONDONTWRITEBYTECODE=1
export SAM_CLI_TELEMETRY=0

# A relative config dir is relative to where the script was started.
if [[ -n "${FIREBELL_CONFIG_DIR:-}" ]]; then
    [[ -d "$FIREBELL_CONFIG_DIR" ]] || die "FIREBELL_CONFIG_DIR=$FIREBELL_CONFIG_DIR is not a directory"
    FIREBELL_CONFIG_DIR="$(cd "$FIREBELL_CONFIG_DIR" && pwd -P)"
    export FIREBELL_CONFIG_DIR
fi
cd "$ROOT"

step "tools: rust target $RUST_TARGET, cargo-lambda $CARGO_LAMBDA_VERSION, aws-sam-cli $SAM_CLI_VERSION"
if ! rustup target list --installed | grep -qx "$RUST_TARGET"; then
    rustup target add "$RUST_TARGET"
fi
venv_install "$CL_VENV" "cargo-lambda==$CARGO_LAMBDA_VERSION"
venv_install "$SAM_VENV" "aws-sam-cli==$SAM_CLI_VERSION"
# cargo-lambda (and its zig, `python3 -m ziglang`) first on PATH: sam build runs it too.
export PATH="$CL_VENV/bin:$PATH"
cargo lambda --version

start=$SECONDS
step "cargo lambda build --release --arm64 -p firebell-evaluator -p firebell-reporter -p firebell-validator"
cargo lambda build --release --arm64 -p firebell-evaluator -p firebell-reporter -p firebell-validator
cargo_secs=$((SECONDS - start))

step "sam build (infra/template.yaml; config: ${FIREBELL_CONFIG_DIR:-examples/})"
sam_start=$SECONDS
(cd infra && "$SAM_VENV/bin/sam" build)
sam_secs=$((SECONDS - sam_start))

step "check and zip (as sam deploy does)"
bootstrap="$BUILD/EvaluatorFunction/bootstrap"
layer="$BUILD/ConfigLayer"
[[ -x "$bootstrap" ]] || die "$bootstrap missing"
[[ -d "$layer/config" ]] || die "$layer/config missing"
[[ -x "$BUILD/ReporterFunction/bootstrap" ]] || die "$BUILD/ReporterFunction/bootstrap missing"
[[ -x "$BUILD/ValidatorFunction/bootstrap" ]] || die "$BUILD/ValidatorFunction/bootstrap missing"
# ELF e_machine (bytes 18-19, little endian): 183 = AArch64.
machine="$(od -An -tu2 -j18 -N2 "$bootstrap" | tr -d ' ')"
[[ "$machine" == "183" ]] || die "$bootstrap is not an AArch64 ELF (e_machine $machine)"
# provided.al2023 has glibc 2.34: the binary must not need newer symbols.
if command -v readelf >/dev/null; then
    glibc="$(readelf -V "$bootstrap" | grep -o 'GLIBC_[0-9.]*' | sort -uV | tail -1)"
    [[ "$(printf '%s\n' "$glibc" GLIBC_2.34 | sort -V | tail -1)" == GLIBC_2.34 ]] ||
        die "$bootstrap needs $glibc, provided.al2023 has GLIBC_2.34"
    echo "bootstrap: AArch64 ELF, needs up to $glibc (provided.al2023: GLIBC_2.34)"
fi
rm -rf "$ZIPS"
mkdir -p "$ZIPS"
"$SAM_VENV/bin/python" - "$BUILD" "$ZIPS" <<'EOF'
import sys
from samcli.lib.package.utils import make_zip_with_lambda_permissions as make_zip
build, zips = sys.argv[1:]
for name in ("EvaluatorFunction", "ReporterFunction", "ValidatorFunction", "ConfigLayer"):
    make_zip(f"{zips}/{name}", f"{build}/{name}")
EOF

size() { stat -c %s "$1"; }
human() { numfmt --to=iec-i --suffix=B --round=nearest --format='%.1f' "$1"; }
bootstrap_bytes=$(size "$bootstrap")
fn_zip_bytes=$(size "$ZIPS/EvaluatorFunction.zip")
layer_bytes=$(find "$layer" -type f -printf '%s\n' | awk '{s += $1} END {print s + 0}')
layer_files=$(find "$layer" -type f | wc -l)
layer_zip_bytes=$(size "$ZIPS/ConfigLayer.zip")

step "deployment package"
printf '%-34s %12s  %s\n' \
    "bootstrap (arm64, stripped)" "$bootstrap_bytes" "$(human "$bootstrap_bytes")" \
    "function zip" "$fn_zip_bytes" "$(human "$fn_zip_bytes")" \
    "config layer ($layer_files files, unzipped)" "$layer_bytes" "$(human "$layer_bytes")" \
    "config layer zip" "$layer_zip_bytes" "$(human "$layer_zip_bytes")"
echo "Lambda limits: 50 MiB zipped per direct upload, 250 MiB unzipped function + layers."
echo "time: cargo lambda build ${cargo_secs}s, sam build ${sam_secs}s, total $((SECONDS - start))s"
echo "built: $BUILD (deploy: cd infra && sam deploy), zips: $ZIPS"
