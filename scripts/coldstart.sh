#!/usr/bin/env bash
# Cold-start figure: process start -> first response under the Lambda runtime
# emulator, for the evaluator and for a hello-world `lambda_runtime` binary
# (functions/hello), measured the same way and printed side by side.
#
# `cargo lambda watch --only-lambda-apis` serves the Runtime API and the invoke
# endpoint without starting any function. For each run an invocation is queued
# first; then the built binary is started with AWS_LAMBDA_RUNTIME_API pointing
# at the server, and the clock runs from spawning the process until the invoke
# returns its response: exec, the binary's own init (for the evaluator: config,
# SDK config, clients, the warm-up calls to DynamoDB and CloudWatch on the
# emulator) and one handler call. The evaluator gets a stale tick, so its
# handler refuses at once and the figure is init, not an evaluation cycle.
# Each process is killed after its response: every run is a cold start.
#
# Usage: scripts/coldstart.sh [RUNS]        (default 20; a benchmark, not a test)
#   FIREBELL_COLDSTART_PROFILE=dev|release  (default release: what ships)
#   Uses the emulator at AWS_ENDPOINT_URL when set, else a private ministack.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

# shellcheck source=scripts/lib.sh
source "$ROOT/scripts/lib.sh"
LOG_NAME=coldstart

RUNS="${1:-20}"
PROFILE="${FIREBELL_COLDSTART_PROFILE:-release}"

[[ "$RUNS" =~ ^[1-9][0-9]*$ ]] || die "RUNS must be a positive number, got $RUNS"
case "$PROFILE" in
release) profile_dir=release ;;
dev) profile_dir=debug ;;
*) die "FIREBELL_COLDSTART_PROFILE must be dev or release, got $PROFILE" ;;
esac

CARGO_LAMBDA="$(scripts/emulator.sh install-lambda)"
private_begin coldstart
on_failure() { tail -n 20 "$WORK/watch.log" >&2 2>/dev/null || true; }

log "building evaluator and hello ($PROFILE)"
cargo build -q --profile "$PROFILE" -p firebell-evaluator --bin evaluator -p firebell-hello --bin hello
target_dir="$(cargo metadata --format-version 1 --no-deps | "$PY" -c 'import json, sys; print(json.load(sys.stdin)["target_directory"])')"
BIN_DIR="$target_dir/$profile_dir"

private_emulator
"$PY" scripts/lambda_fixture.py setup "$WORK" >/dev/null

port="$(free_port)"
lambda_watch "$port" --only-lambda-apis

"$PY" - "$port" "$RUNS" "$BIN_DIR" "$WORK" "$PROFILE" <<'EOF'
import json, os, statistics, subprocess, sys, threading, time, urllib.request

port, runs, bin_dir, work, profile = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4], sys.argv[5]
invoke_url = f"http://127.0.0.1:{port}/2015-03-31/functions/_/invocations"

base_env = dict(os.environ)
base_env.update({
    "AWS_LAMBDA_RUNTIME_API": f"http://127.0.0.1:{port}/.rt",
    "AWS_LAMBDA_FUNCTION_VERSION": "1",
    "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "512",
    "AWS_LAMBDA_LOG_STREAM_NAME": "coldstart",
})
fixture_env = dict(
    line.split("=", 1) for line in open(os.path.join(work, "env")).read().splitlines() if line
)
stale = open(os.path.join(work, "stale-event.json"), "rb").read()

def once(binary, env, payload):
    result = {}
    def invoke():
        req = urllib.request.Request(invoke_url, data=payload, method="POST")
        with urllib.request.urlopen(req, timeout=60) as r:
            result["body"] = r.read()
        result["t1"] = time.perf_counter()
    t = threading.Thread(target=invoke)
    t.start()
    time.sleep(0.05)  # the invocation is queued before the process exists
    t0 = time.perf_counter()
    p = subprocess.Popen([binary], env=env, stdin=subprocess.DEVNULL,
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    t.join(65)
    p.kill()
    p.wait()
    if "t1" not in result:
        sys.exit(f"coldstart: {binary} did not answer within 60s")
    return (result["t1"] - t0) * 1000, result["body"]

cases = [
    ("hello", dict(base_env, AWS_LAMBDA_FUNCTION_NAME="hello"), b'{"source":"firebell.schedule"}'),
    ("evaluator", dict(base_env, AWS_LAMBDA_FUNCTION_NAME="evaluator", **fixture_env), stale),
]
figures = {}
for name, env, payload in cases:
    binary = os.path.join(bin_dir, name)
    ms, body = once(binary, env, payload)  # warms the page cache, not counted
    if name == "evaluator" and json.loads(body).get("status") != "stale":
        sys.exit(f"coldstart: unexpected evaluator response {body!r}")
    samples = [once(binary, env, payload)[0] for _ in range(runs)]
    figures[name] = (samples, os.path.getsize(binary))

print(f"cold start: process start -> first response, {runs} runs each, {profile} build, "
      f"cargo lambda watch runtime API on loopback")
print(f"{'':<10} {'median':>9} {'min':>9} {'p90':>9} {'max':>9} {'binary':>10}")
for name, (s, size) in figures.items():
    s = sorted(s)
    p90 = s[min(len(s) - 1, int(round(0.9 * (len(s) - 1))))]
    print(f"{name:<10} {statistics.median(s):>7.1f}ms {s[0]:>7.1f}ms {p90:>7.1f}ms "
          f"{s[-1]:>7.1f}ms {size / 1e6:>8.1f}MB")
print(f"evaluator - hello (median): "
      f"{statistics.median(figures['evaluator'][0]) - statistics.median(figures['hello'][0]):.1f}ms")
EOF
