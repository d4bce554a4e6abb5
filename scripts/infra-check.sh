#!/usr/bin/env bash
# Static checks for the AWS deployment in infra/ (no AWS account or credentials needed).
#
#   1. cfn-lint on infra/template.yaml (the SAM template)          - must be clean
#   2. SAM -> CloudFormation transform (infra/tools/sam_to_cfn.py, aws-sam-translator)
#   3. cfn-lint on the transformed template                         - must be clean
#   4. checkov (framework cloudformation) on the transformed template - zero failures;
#      skips live in the template as Metadata checkov:skip entries with a reason each
#   5. pytest infra/tests: least privilege, retry settings, watchdog, packaging, the
#      shards (the template rendered for ShardCount 1 and 4), and negative cases proving
#      those assertions fail on a bad template; the tick state machine's definition run
#      on a Step Functions emulator (a private ministack, unless AWS_ENDPOINT_URL is set)
#   6. optional (INFRA_CHECK_SAM=1): `sam validate --lint` with aws-sam-cli from its own venv
#
# Tools come from PyPI only, pinned in infra/requirements.txt + infra/constraints.txt and
# installed into infra/.venv (reused while the pins are unchanged); the emulator (pinned
# in scripts/lib.sh) into ./.venv. After that first install every step runs offline.
# Exits non-zero on any finding.
#
# Environment:
#   PYTHON            interpreter used to create the venvs (default: python3, >= 3.10)
#   INFRA_VENV        tool venv (default: infra/.venv)
#   INFRA_CHECK_SAM   1 = also install aws-sam-cli into infra/.venv-sam and run sam validate --lint
#   AWS_ENDPOINT_URL  an emulator already running (loopback only) instead of a private one
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
# shellcheck source=scripts/lib.sh
source "$ROOT/scripts/lib.sh"

PYTHON="${PYTHON:-python3}"
VENV="${INFRA_VENV:-$ROOT/infra/.venv}"
SAM_VENV="$ROOT/infra/.venv-sam"
TEMPLATE="infra/template.yaml"
BUILD_DIR="infra/.build"
TRANSFORMED="$BUILD_DIR/template.cfn.json"

export PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_INPUT=1 PYTHONDONTWRITEBYTECODE=1
# checkov: no update checks, no platform calls, no telemetry.
export CHECKOV_DISABLE_VERSION_CHECK=1 BC_SKIP_MAPPING=TRUE
export SAM_CLI_TELEMETRY=0

"$PYTHON" - <<'EOF'
import sys
if sys.version_info < (3, 10):
    sys.exit(f"infra-check needs Python >= 3.10, found {sys.version.split()[0]}")
EOF

step "tools: $(grep -v '^#' infra/requirements.txt | tr '\n' ' ')"
pins="$(cat infra/requirements.txt infra/constraints.txt | sha256sum | cut -d' ' -f1)"
venv_install "$VENV" "$pins" -r infra/requirements.txt -c infra/constraints.txt
"$VENV/bin/python" -m pip check >/dev/null

step "cfn-lint $TEMPLATE"
"$VENV/bin/cfn-lint" "$TEMPLATE"

step "SAM transform -> $TRANSFORMED"
rm -rf "$BUILD_DIR"
"$VENV/bin/python" infra/tools/sam_to_cfn.py "$TEMPLATE" "$TRANSFORMED"

step "cfn-lint $TRANSFORMED"
"$VENV/bin/cfn-lint" "$TRANSFORMED"

step "checkov (cloudformation) $TRANSFORMED"
"$VENV/bin/checkov" --file "$TRANSFORMED" --framework cloudformation \
    --skip-download --compact --quiet --output cli

step "template tests (and the tick state machine on the emulator)"
LOG_NAME=infra-check
private_begin infra-check
private_emulator
"$VENV/bin/python" -m pytest infra/tests -q -p no:cacheprovider

if [[ "${INFRA_CHECK_SAM:-0}" == "1" ]]; then
    step "sam validate --lint (aws-sam-cli $SAM_CLI_VERSION, own venv)"
    venv_install "$SAM_VENV" "aws-sam-cli==$SAM_CLI_VERSION"
    "$SAM_VENV/bin/sam" validate --lint --template-file "$TEMPLATE" --region us-east-1
else
    step "sam validate: skipped (set INFRA_CHECK_SAM=1 to run it)"
fi

printf '\ninfra-check: all checks passed\n'
