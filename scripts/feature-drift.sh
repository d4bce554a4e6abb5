#!/usr/bin/env bash
# The README's first command (`cargo run -p firebell -- demo`) must build the
# dependency graph `scripts/test.sh` reuses: every shared dependency with the
# features the whole workspace's test build turns on. cli/Cargo.toml asks
# for them (its "feature unification" block); this fails, naming the
# package and the features, when a dependency change makes them drift.
set -euo pipefail
cd "$(dirname "$0")/.."
first=$(mktemp) tests=$(mktemp)
trap 'rm -f "$first" "$tests"' EXIT
cargo tree -q -p firebell -e normal,build -f '{p} [{f}]' --prefix none | sort -u >"$first"
cargo tree -q --workspace -e normal,build,dev -f '{p} [{f}]' --prefix none | sort -u >"$tests"
python3 - "$first" "$tests" <<'PY'
import re, sys
def load(path):
    out = {}
    for line in open(path):
        m = re.match(r'(\S+) (v\S+)(?: \(.*?\))? \[(.*)\]', line.strip())
        if m:
            out.setdefault((m.group(1), m.group(2)), set()).update(f for f in m.group(3).split(',') if f)
    return out
first, tests = load(sys.argv[1]), load(sys.argv[2])
drift = [(k, sorted(tests[k] - first[k])) for k in sorted(first) if k in tests and tests[k] != first[k]]
for (name, version), missing in drift:
    print(f"feature drift: {name} {version}: the test build adds {missing}; add them to cli/Cargo.toml's feature unification block")
sys.exit(1 if drift else 0)
PY
echo "feature-drift: the first command's build is the one the tests reuse"
