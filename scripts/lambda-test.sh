#!/usr/bin/env bash
# The evaluator under a real Lambda runtime: `cargo lambda watch` (cargo-lambda's
# Runtime API emulator, pinned, in ./.venv) runs the debug `evaluator` binary
# with the Lambda's environment (FIREBELL_CONFIG, FIREBELL_TABLE, AWS_*) against
# the AWS emulator. After metric data that breaches the test rule it invokes an
# EventBridge Scheduler event and checks that
#
#   1. the invocation returns a completed cycle that sent a notification;
#   2. the notification arrives on the SQS queue subscribed to the receiver's topic;
#   3. the function's stdout carries the EMF heartbeat line (Heartbeat 1);
#   4. a stale tick is refused, with an EMF line whose Heartbeat is 0;
#   5. a tick of a stack with two shards (on a fresh table), invoked as its
#      Step Functions state machine does (shard 1/2, shard 2/2, the delivery
#      stage), answers each stage with a small status and notifies once.
#
# Then the reporter (`reporter` binary) runs the same way on the same table
# and config: invoked with its weekly event, it publishes the noise report,
# which arrives on the same queue (the ops summary: the receiver is the
# routing tree's root) with the `firebell.report/v1` document and the cost,
# and prints its EMF heartbeat.
#
# Then config shipping (AppConfig, set up as infra/template.yaml does): the
# evaluator starts on its bundled config; `firebell push` of a config with a
# second rule completes, and the next cycle evaluates both rules without a
# redeploy (printed: the push time, and push -> first cycle on the new
# config); an invalid push is refused with exactly `firebell validate`'s
# errors; a config deployed around `push` that cannot load (a topic outside
# the stack's) keeps the previous one running and pages ops
# (FirebellUnhealthy check=config on the queue). Last, the AppConfig
# validator (`validator` binary) refuses an invalid bundle with validate's
# errors and accepts a valid one.
#
# Usage: scripts/lambda-test.sh
#   Uses the emulator at AWS_ENDPOINT_URL when set (scripts/test.sh exports
#   one); otherwise starts a private ministack and stops it on exit. Fails
#   loudly, never skips; every wait is bounded.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

# shellcheck source=scripts/lib.sh
source "$ROOT/scripts/lib.sh"
LOG_NAME=lambda-test

INVOKE_TIMEOUT_SECS="${FIREBELL_LAMBDA_TEST_TIMEOUT:-300}"

CARGO_LAMBDA="$(scripts/emulator.sh install-lambda)"
private_begin lambda-test
on_failure() {
    log "cargo lambda watch log ($WORK/watch.log), last lines:"
    tail -n 40 "$WORK/watch.log" >&2 2>/dev/null || true
}
private_emulator

# Debug build, shared target dir: `cargo test` already built the dependencies.
log "building the evaluator and the reporter (debug)"
cargo build -q -p firebell-evaluator --bin evaluator
cargo build -q -p firebell-reporter --bin reporter
cargo build -q -p firebell-validator --bin validator
cargo build -q -p firebell --bin firebell

# After the build: the scheduled tick must be fresh when it is invoked.
log "fixture: table, topic, subscribed queue, breaching metric data, config ($WORK)"
"$PY" scripts/lambda_fixture.py setup "$WORK" >"$WORK/fixture.out"

port="$(free_port)"
log "cargo lambda watch on 127.0.0.1:$port"
lambda_watch "$port" --bin evaluator --ignore-changes --env-file "$WORK/env"

invoke() { # event file -> response file [function, default evaluator]
    timeout "$INVOKE_TIMEOUT_SECS" "$CARGO_LAMBDA" lambda invoke "${3:-evaluator}" \
        -A 127.0.0.1 -P "$port" --data-file "$1" >"$2" ||
        die "invoking ${3:-evaluator} with $1 failed or took over ${INVOKE_TIMEOUT_SECS}s: $(cat "$2")"
}

# The EMF line of the invocation for tick $1 (waits for stdout to catch up).
emf_line() {
    local line
    for _ in $(seq 1 40); do
        line="$(grep -F '"_aws"' "$WORK/watch.log" | grep -E "\"tick\":$1[,}]" | tail -n 1 || true)"
        if [[ -n "$line" ]]; then
            printf '%s\n' "$line"
            return 0
        fi
        sleep 0.25
    done
    die "no EMF line for tick $1 on the function's stdout"
}

log "invoke: a scheduled tick whose rule breaches"
invoke "$WORK/event.json" "$WORK/response.json"
tick="$("$PY" -c 'import json, sys; print(json.load(open(sys.argv[1]))["tick"])' "$WORK/fixture.json")"
"$PY" - "$WORK/response.json" "$tick" <<'EOF' || die "unexpected response: $(cat "$WORK/response.json")"
import json, sys
r = json.load(open(sys.argv[1]))
assert r["tick"] == int(sys.argv[2]), r["tick"]
assert r["status"] == "completed", r["status"]
assert r["report"]["notifications_sent"] == 1, r["report"]
assert [t["rule"] for t in r["report"]["transitions"]] == ["LambdaTestHighErrors"], r["report"]
EOF
echo "response: $(cat "$WORK/response.json")"

log "the notification on the queue"
"$PY" scripts/lambda_fixture.py receive "$WORK" 30 >"$WORK/notification.json" ||
    die "no notification arrived on the queue"
"$PY" - "$WORK/notification.json" "$WORK/fixture.json" <<'EOF' || die "unexpected notification: $(cat "$WORK/notification.json")"
import json, sys
env = json.load(open(sys.argv[1]))
fixture = json.load(open(sys.argv[2]))
assert env["TopicArn"] == fixture["topic"], env["TopicArn"]
assert env["Subject"].startswith("[FIRING] Lambda test error count"), env["Subject"]
payload = json.loads(env["Message"])
assert payload["schema"] == "firebell.notification/v1", payload["schema"]
assert payload["alerts"][0]["alertname"] == "LambdaTestHighErrors", payload["alerts"]
print("notification:", env["Subject"])
EOF

log "the EMF heartbeat on stdout"
line="$(emf_line "$tick")"
"$PY" - "$line" <<'EOF' || die "bad EMF line: $line"
import json, sys
e = json.loads(sys.argv[1])
m = e["_aws"]["CloudWatchMetrics"][0]
assert m["Namespace"] == "Firebell" and m["Dimensions"] == [["Function"]], m
assert "Heartbeat" in [x["Name"] for x in m["Metrics"]], m["Metrics"]
assert e["Function"] == "evaluator", e["Function"]
assert e["Heartbeat"] == 1 and e["status"] == "completed", e
assert e["NotificationsSent"] == 1 and e["SNSCalls"] >= 1, e
EOF
echo "emf: $line"

log "invoke: a stale tick is refused without a heartbeat"
stale_tick=$((tick - 3600))
invoke "$WORK/stale-event.json" "$WORK/stale.json"
"$PY" - "$WORK/stale.json" "$(emf_line "$stale_tick")" <<'EOF' || die "stale tick not refused: $(cat "$WORK/stale.json")"
import json, sys
r = json.load(open(sys.argv[1]))
assert r["status"] == "stale" and r["report"] is None, r
e = json.loads(sys.argv[2])
assert e["Heartbeat"] == 0 and e["status"] == "stale", e
EOF
echo "stale: $(cat "$WORK/stale.json")"

log "a sharded tick: shard 1/2, shard 2/2, then the delivery stage (a fresh table)"
kill -- "-$WATCH_PID" 2>/dev/null || true
wait "$WATCH_PID" 2>/dev/null || true
WATCH_PID=""
SHARDED="$WORK/sharded"
mkdir -p "$SHARDED"
"$PY" scripts/lambda_fixture.py setup "$SHARDED" >"$SHARDED/fixture.out"
port="$(free_port)"
lambda_watch "$port" --bin evaluator --ignore-changes --env-file "$SHARDED/env"
for stage in shard-1 shard-2 deliver; do
    invoke "$SHARDED/$stage.json" "$SHARDED/$stage-response.json"
done
"$PY" - "$SHARDED" <<'EOF' || die "unexpected sharded responses: $(cat "$SHARDED"/*-response.json)"
import json, os, sys
d = sys.argv[1]
tick = json.load(open(os.path.join(d, "fixture.json")))["tick"]
for name, stage in (
    ("shard-1", "shard 1/2"),
    ("shard-2", "shard 2/2"),
    ("deliver", "delivery stage after 2 shard(s)"),
):
    r = json.load(open(os.path.join(d, f"{name}-response.json")))
    # Small answers for Step Functions: the report stays in the log.
    assert (r["tick"], r["stage"], r["status"], r["report"]) == (tick, stage, "completed", None), r
EOF
# Everything that arrives within 15 s (each message taken and deleted, so a
# second copy cannot hide behind the first one's visibility timeout).
"$PY" scripts/lambda_fixture.py collect "$SHARDED" 15 >"$SHARDED/notifications.txt"
got="$(grep -c . "$SHARDED/notifications.txt" || true)"
[[ "$got" == 1 ]] || die "the sharded tick notified $got times, not once: $(cat "$SHARDED/notifications.txt")"
grep -q 'LambdaTestHighErrors' "$SHARDED/notifications.txt" ||
    die "unexpected notification from the sharded tick: $(cat "$SHARDED/notifications.txt")"
echo "sharded tick: one notification, from the delivery stage"

log "the reporter: cargo lambda watch --bin reporter"
kill -- "-$WATCH_PID" 2>/dev/null || true
wait "$WATCH_PID" 2>/dev/null || true
WATCH_PID=""
port="$(free_port)"
lambda_watch "$port" --bin reporter --ignore-changes --env-file "$WORK/env"

log "invoke: the weekly report"
invoke "$WORK/report-event.json" "$WORK/report-response.json" reporter
"$PY" - "$WORK/report-response.json" "$tick" <<'EOF' || die "unexpected reporter response: $(cat "$WORK/report-response.json")"
import json, sys
r = json.load(open(sys.argv[1]))
assert r["status"] == "completed", r
assert r["until"] == int(sys.argv[2]) and r["since"] == int(sys.argv[2]) - 7 * 86400, r
assert (r["receivers"], r["messages_sent"], r["publish_failures"]) == (1, 1, 0), r
EOF
echo "reporter response: $(cat "$WORK/report-response.json")"

log "the report on the queue"
"$PY" scripts/lambda_fixture.py receive "$WORK" 30 >"$WORK/report.json" ||
    die "no report arrived on the queue"
"$PY" - "$WORK/report.json" "$WORK/fixture.json" <<'EOF' || die "unexpected report: $(cat "$WORK/report.json")"
import json, sys
env = json.load(open(sys.argv[1]))
fixture = json.load(open(sys.argv[2]))
assert env["TopicArn"] == fixture["topic"], env["TopicArn"]
assert env["Subject"].startswith("firebell ops summary "), env["Subject"]
doc = json.loads(env["Message"])
assert doc["schema"] == "firebell.report/v1", doc["schema"]
assert [t["receiver"] for t in doc["teams"]] == ["test-oncall"], doc["teams"]
# The evaluator's page above is in the history the reporter read.
assert (doc["teams"][0]["notifications"], doc["teams"][0]["pages"]) == (1, 1), doc["teams"]
assert doc["cost"]["total"] > 0, doc.get("cost")
print("report:", env["Subject"])
EOF

line=""
for _ in $(seq 1 40); do
    line="$(grep -F '"_aws"' "$WORK/watch.log" | grep -F '"ReportsSent"' | tail -n 1 || true)"
    [[ -n "$line" ]] && break
    sleep 0.25
done
[[ -n "$line" ]] || die "no EMF line of the reporter on its stdout"
"$PY" - "$line" <<'EOF' || die "bad reporter EMF line: $line"
import json, sys
e = json.loads(sys.argv[1])
assert e["Function"] == "reporter", e["Function"]
assert e["Heartbeat"] == 1 and e["status"] == "completed" and e["ReportsSent"] == 1, e
assert e["SNSCalls"] >= 1 and e["DynamoDBCalls"] >= 1, e
EOF
echo "reporter emf: $line"

# ---- a rule change ships as config (AppConfig), without a redeploy --------
log "config shipping: an AppConfig environment as infra/template.yaml makes it"
"$PY" scripts/lambda_fixture.py appconfig "$WORK" >"$WORK/appconfig.out"
ENV_NAME="$("$PY" -c 'import json, sys; print(json.load(open(sys.argv[1]))["env"])' "$WORK/appconfig.json")"
FIREBELL="$ROOT/target/debug/firebell"
kill -- "-$WATCH_PID" 2>/dev/null || true
wait "$WATCH_PID" 2>/dev/null || true
WATCH_PID=""
port="$(free_port)"
lambda_watch "$port" --bin evaluator --ignore-changes --env-file "$WORK/env2"

rules_of() { # response file -> rules evaluated
    "$PY" -c 'import json, sys; r = json.load(open(sys.argv[1])); assert r["status"] == "completed", r; print(r["report"]["rules_evaluated"])' "$1"
}

log "invoke: nothing deployed yet, the bundled config runs"
invoke "$WORK/event2.json" "$WORK/response2.json"
polled_at="$(date +%s)"
[[ "$(rules_of "$WORK/response2.json")" == 1 ]] || die "bundled config: $(cat "$WORK/response2.json")"

log "firebell push: a rule added"
push_started="$(date +%s.%N)"
(cd "$WORK" && "$FIREBELL" push --config config2 --env "$ENV_NAME") >"$WORK/push.out" 2>"$WORK/push.err" ||
    die "push failed: $(cat "$WORK/push.out" "$WORK/push.err")"
push_done="$(date +%s.%N)"
grep -q "^  + LambdaTestHighErrorsAny$" "$WORK/push.out" || die "push showed no diff: $(cat "$WORK/push.out")"
grep -q "^deployment 1: COMPLETE: $ENV_NAME runs config " "$WORK/push.out" || die "push did not complete: $(cat "$WORK/push.out")"
cat "$WORK/push.out"
# The function polls at most once per AppConfig poll interval (15 s, the
# shortest AppConfig allows); the next scheduled tick after that runs it.
wait_secs=$((polled_at + 15 - $(date +%s)))
if ((wait_secs > 0)); then sleep "$wait_secs"; fi
log "invoke: the next cycle runs the pushed config (no redeploy)"
invoke "$WORK/event3.json" "$WORK/response3.json"
first_cycle="$(date +%s.%N)"
[[ "$(rules_of "$WORK/response3.json")" == 2 ]] || die "pushed config not running: $(cat "$WORK/response3.json")"
grep -q 'switching to the deployed config' "$WORK/watch.log" || die "no switch in the function's log"
"$PY" -c 'import sys; s, d, f = map(float, sys.argv[1:]); print(f"figures: firebell push {d - s:.2f} s (validate, diff, version, deployment COMPLETE); push -> first cycle on the new config {f - s:.2f} s (incl. the 15 s AppConfig poll interval)")' \
    "$push_started" "$push_done" "$first_cycle"

log "firebell push: an invalid config is refused with validate's errors"
if (cd "$WORK" && "$FIREBELL" push --config config3 --env "$ENV_NAME") >"$WORK/push3.out" 2>"$WORK/push3.err"; then
    die "an invalid config was pushed: $(cat "$WORK/push3.out")"
fi
if (cd "$WORK" && "$FIREBELL" validate --config config3) >/dev/null 2>"$WORK/validate3.err"; then
    die "config3 validates"
fi
"$PY" - "$WORK/push3.err" "$WORK/validate3.err" "$ENV_NAME" <<'PYEOF' || die "push errors differ from validate's: $(cat "$WORK/push3.err")"
import sys
push, validate, env = (open(sys.argv[1]).read(), open(sys.argv[2]).read(), sys.argv[3])
assert validate and push == validate + f"push: not deployed: {env} runs what it ran\n", (push, validate)
PYEOF

log "a deployed config that does not load at run time: the last good one keeps running, ops is paged"
"$PY" scripts/lambda_fixture.py deploy-raw "$WORK" config4 >/dev/null
sleep 15
invoke "$WORK/event4.json" "$WORK/response4.json"
[[ "$(rules_of "$WORK/response4.json")" == 2 ]] || die "the last good config stopped: $(cat "$WORK/response4.json")"
"$PY" - "$WORK/response4.json" <<'PYEOF' || die "no config problem reported: $(cat "$WORK/response4.json")"
import json, sys
r = json.load(open(sys.argv[1]))
errors = json.dumps(r["report"]["errors"])
assert "config: the deployed config" in errors and "topics this function may not publish to" in errors, errors
PYEOF
"$PY" scripts/lambda_fixture.py receive-alert "$WORK" 30 FirebellUnhealthy >"$WORK/unhealthy.json" ||
    die "no FirebellUnhealthy page"
"$PY" - "$WORK/unhealthy.json" <<'PYEOF' || die "unexpected ops page: $(cat "$WORK/unhealthy.json")"
import json, sys
payload = json.loads(json.load(open(sys.argv[1]))["Message"])
a = payload["alerts"][0]
assert a["labels"]["check"] == "config" and a["status"] == "firing", a
print("ops page:", a["labels"])
PYEOF

log "the validator: cargo lambda watch --bin validator, an AppConfig validator event"
kill -- "-$WATCH_PID" 2>/dev/null || true
wait "$WATCH_PID" 2>/dev/null || true
WATCH_PID=""
"$PY" scripts/lambda_fixture.py validator-event "$WORK" config3
"$PY" scripts/lambda_fixture.py validator-event "$WORK" config2
port="$(free_port)"
lambda_watch "$port" --bin validator --ignore-changes --env-file "$WORK/validator-env"
invoke "$WORK/validator-config2.json" "$WORK/validator-ok.json" validator
"$PY" - "$WORK/validator-ok.json" <<'PYEOF' || die "the validator refused a valid config: $(cat "$WORK/validator-ok.json")"
import json, sys
r = json.load(open(sys.argv[1]))
assert r["valid"] is True and "ok: 2 file(s), 2 rule(s), 1 receiver(s)" in r["summary"], r
PYEOF
# The Lambda Invoke API of the runtime emulator: the function error as
# AppConfig receives it (errorType, errorMessage).
curl -sS -o "$WORK/validator-bad.json" -w '%{http_code}' -X POST \
    "http://127.0.0.1:$port/2015-03-31/functions/validator/invocations" \
    --data-binary "@$WORK/validator-config3.json" >"$WORK/validator-bad.code" ||
    die "invoking the validator failed"
"$PY" - "$WORK/validator-bad.json" "$WORK/validate3.err" <<'PYEOF' || die "the validator did not refuse with validate's errors: $(cat "$WORK/validator-bad.json")"
import json, sys
r = json.load(open(sys.argv[1]))
validate = open(sys.argv[2]).read()
assert r["errorType"] == "InvalidConfiguration", r
assert r["errorMessage"] == validate.rstrip("\n"), (r["errorMessage"], validate)
print("validator refused it with validate's errors:", r["errorMessage"].splitlines()[-1])
PYEOF

log "ok: the evaluator ran under the Lambda runtime emulator, paged through SNS and beat; the reporter published the noise report; a pushed rule ran on the next cycle without a redeploy, an invalid push was refused with validate's errors, a deployed config that did not load kept the last good one and paged ops; the validator refused what validate refuses"
