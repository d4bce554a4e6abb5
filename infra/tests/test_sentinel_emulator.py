"""The sentinel fast path (template.yaml, SentinelEventRule) on the emulator's EventBridge:
its event pattern asked with TestEventPattern (a sentinel of this stack entering ALARM
matches; its other states, the stack's own alarms, other stacks' sentinels and other
alarms do not), its InputTransformer applied by a rule that delivers to an SQS queue,
and the tick that input becomes run through the tick state machine's definition on the
emulator's Step Functions.

One substitution, said where it is made: PutEvents refuses `aws.*` sources (as AWS
does: only AWS services emit them) and the emulator's CloudWatch emits no alarm
state-change events, so the delivery test's rule carries the template's pattern with
`source` swapped for a test source; TestEventPattern gets the template's pattern
unchanged.

Needs the emulator: scripts/infra-check.sh starts a private one and sets
AWS_ENDPOINT_URL; with it unset, or not on loopback, these tests fail rather than touch
an account.
"""

from __future__ import annotations

import json
import os
import sys
import time
import urllib.parse
import uuid
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

from test_template import (  # noqa: E402
    OTHER_ALARM_NAMES,
    SAMPLE_VALUES,
    SENTINEL_NAMES,
    SENTINEL_RULE,
    TEMPLATE,
    alarm_event,
    deliver_payload,
    load_template,
    props,
    render,
    resolve,
    sentinel_tick,
    shard_payload,
    tick_definition,
)

SHARDS = 4
TEST_SOURCE = "firebell.test.cloudwatch"


def _client(service: str):
    endpoint = os.environ.get("AWS_ENDPOINT_URL", "")
    assert endpoint, "AWS_ENDPOINT_URL is not set: run scripts/infra-check.sh (it starts an emulator)"
    host = urllib.parse.urlparse(endpoint).hostname
    assert host in ("127.0.0.1", "localhost", "::1"), f"{endpoint} is not a local emulator"
    import boto3
    from botocore.config import Config

    return boto3.client(
        service,
        endpoint_url=endpoint,
        region_name=os.environ.get("AWS_REGION", "us-east-1"),
        aws_access_key_id="test",
        aws_secret_access_key="test",
        # StartSyncExecution's endpoint has a host prefix (sync-) the emulator does not serve.
        config=Config(inject_host_prefix=False, retries={"max_attempts": 1}),
    )


@pytest.fixture(scope="module")
def events():
    return _client("events")


def _rule(shards: int) -> dict[str, Any]:
    """SentinelEventRule's properties for the sample stack (firebell-staging)."""
    return props(render(load_template(TEMPLATE), shards), SENTINEL_RULE)


def _pattern(shards: int = 1) -> dict[str, Any]:
    pattern = resolve(_rule(shards)["EventPattern"])
    assert pattern["detail"]["alarmName"] == [{"prefix": "firebell-staging.sentinel."}], pattern
    return pattern


def _matches(events, pattern: dict[str, Any], event: dict[str, Any]) -> bool:
    return events.test_event_pattern(EventPattern=json.dumps(pattern), Event=json.dumps(event))["Result"]


def test_the_pattern_is_the_same_sharded_or_not() -> None:
    assert _pattern(1) == _pattern(SHARDS)


@pytest.mark.parametrize("name", SENTINEL_NAMES)
def test_a_sentinel_entering_alarm_matches(events, name: str) -> None:
    assert _matches(events, _pattern(), alarm_event(name)) is True


@pytest.mark.parametrize("state", ["OK", "INSUFFICIENT_DATA"])
@pytest.mark.parametrize("name", SENTINEL_NAMES)
def test_a_sentinel_leaving_alarm_does_not_match(events, name: str, state: str) -> None:
    assert _matches(events, _pattern(), alarm_event(name, state=state)) is False


@pytest.mark.parametrize("name", OTHER_ALARM_NAMES)
def test_other_alarms_do_not_match(events, name: str) -> None:
    assert _matches(events, _pattern(), alarm_event(name)) is False


def test_only_cloudwatch_events_match(events) -> None:
    event = alarm_event(SENTINEL_NAMES[0], source="firebell.forged")
    assert _matches(events, _pattern(), event) is False
    other_kind = {**alarm_event(SENTINEL_NAMES[0]), "detail-type": "CloudWatch Alarm Configuration Change"}
    assert _matches(events, _pattern(), other_kind) is False
    # The control: the same events with the template's source and detail-type match.
    assert _matches(events, _pattern(), alarm_event(SENTINEL_NAMES[0])) is True


def _deliver(events, shards: int, entries: list[dict[str, Any]], expect: int) -> list[Any]:
    """Puts `entries` (alarm events, sent with TEST_SOURCE) on a bus of their own with a
    rule carrying the template's pattern (source swapped) and the template's target
    InputTransformer, delivering to an SQS queue; returns the bodies that arrived."""
    sqs = _client("sqs")
    tag = uuid.uuid4().hex[:8]
    bus = f"firebell-sentinels-{tag}"
    rule = f"firebell-sentinels-{tag}"
    queue_url = sqs.create_queue(QueueName=f"firebell-sentinels-{tag}")["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    target = _rule(shards)["Targets"][0]
    pattern = {**_pattern(shards), "source": [TEST_SOURCE]}
    events.create_event_bus(Name=bus)
    try:
        events.put_rule(Name=rule, EventBusName=bus, EventPattern=json.dumps(pattern), State="ENABLED")
        events.put_targets(Rule=rule, EventBusName=bus, Targets=[{
            "Id": target["Id"],
            "Arn": queue_arn,
            "InputTransformer": target["InputTransformer"],
        }])
        put = events.put_events(Entries=[
            {
                "Source": TEST_SOURCE,
                "DetailType": e["detail-type"],
                "Detail": json.dumps(e["detail"]),
                "Resources": e["resources"],
                "EventBusName": bus,
            }
            for e in entries
        ])
        assert put["FailedEntryCount"] == 0, put
        # Until `expect` have arrived (at most 5 s), then one more second for extras.
        bodies: list[Any] = []
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            got = sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=1)
            bodies += [json.loads(m["Body"]) for m in got.get("Messages", [])]
            if len(bodies) >= expect:
                got = sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=1)
                bodies += [json.loads(m["Body"]) for m in got.get("Messages", [])]
                break
        return bodies
    finally:
        events.remove_targets(Rule=rule, EventBusName=bus, Ids=[target["Id"]])
        events.delete_rule(Name=rule, EventBusName=bus)
        events.delete_event_bus(Name=bus)
        sqs.delete_queue(QueueUrl=queue_url)


@pytest.mark.parametrize("shards", [1, SHARDS], ids=lambda n: f"shards={n}")
def test_a_sentinel_event_becomes_a_tick(events, shards: int) -> None:
    """Of a sentinel entering ALARM, a sentinel back to OK and another alarm, only the
    first arrives, as the schedule's input with the event's time as the tick."""
    fired = alarm_event(SENTINEL_NAMES[0])
    resolved = alarm_event(SENTINEL_NAMES[1], state="OK")
    other = alarm_event(OTHER_ALARM_NAMES[0])
    before = int(time.time())
    bodies = _deliver(events, shards, [fired, resolved, other], expect=1)
    after = int(time.time())
    assert len(bodies) == 1, bodies
    tick = bodies[0]
    # The event's id and time are the ones EventBridge stamped on it (the emulator
    # stamps its clock's time: it ignores PutEvents' Time).
    assert isinstance(tick.get("execution_id"), str) and tick["execution_id"], tick
    stamped = tick.get("scheduled_time")
    assert isinstance(stamped, str) and stamped.endswith("Z"), tick
    at = int(datetime.fromisoformat(stamped.replace("Z", "+00:00")).timestamp())
    assert before - 1 <= at <= after + 1, (before, stamped, after)
    assert tick == {**sentinel_tick(fired), "execution_id": tick["execution_id"], "scheduled_time": stamped}, tick


def _as_pass(task: dict[str, Any], result_path: str) -> dict[str, Any]:
    state = {"Type": "Pass", "Parameters": task["Parameters"]["Payload"], "ResultPath": result_path}
    for key in ("Next", "End"):
        if key in task:
            state[key] = task[key]
    return state


def test_the_tick_runs_every_shard_then_delivery_on_step_functions() -> None:
    """Sharded, the tick a sentinel event becomes starts the real state machine
    definition (the Lambda tasks as Pass states returning the payload they would send):
    every shard and the deliver stage get the event's time and id."""
    sfn = _client("stepfunctions")
    d = tick_definition(render(load_template(TEMPLATE), SHARDS))
    processor = d["States"]["EvaluateShards"]["ItemProcessor"]
    task = processor["States"]["EvaluateShard"]
    processor["States"]["EvaluateShard"] = _as_pass(task, task["ResultPath"])
    d["States"]["Deliver"] = _as_pass(d["States"]["Deliver"], "$.deliver")
    event = alarm_event(SENTINEL_NAMES[0])
    tick = sentinel_tick(event)
    arn = sfn.create_state_machine(
        name=f"firebell-sentinel-tick-{uuid.uuid4().hex[:8]}",
        definition=json.dumps(d),
        roleArn="arn:aws:iam::000000000000:role/firebell-tick",
        type="EXPRESS",
    )["stateMachineArn"]
    try:
        result = sfn.start_sync_execution(stateMachineArn=arn, input=json.dumps(tick))
    finally:
        sfn.delete_state_machine(stateMachineArn=arn)
    assert result["status"] == "SUCCEEDED", result
    out = json.loads(result["output"])
    at = {"scheduled_time": event["time"], "execution_id": event["id"]}
    assert [i["result"] for i in out["shard_results"]] == [
        {**shard_payload(k, SHARDS), **at} for k in range(1, SHARDS + 1)
    ], out["shard_results"]
    assert out["deliver"] == {**deliver_payload(SHARDS), **at}, out["deliver"]
    assert SAMPLE_VALUES["AWS::StackName"] == "firebell-staging"
