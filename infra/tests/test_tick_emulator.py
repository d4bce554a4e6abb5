"""The tick state machine's definition (template.yaml, TickStateMachine) run by a Step
Functions emulator (ministack, StartSyncExecution on an Express state machine), with the
evaluator's Lambda tasks replaced by Pass states that return the payload they would send
(and, for the failing shard, kept as a Lambda task of a function the emulator does not
let it invoke).

Needs the emulator: scripts/infra-check.sh starts a private one (scripts/lib.sh,
private_emulator) and sets AWS_ENDPOINT_URL; with AWS_ENDPOINT_URL unset, or not on
loopback, these tests fail rather than touch an account.
"""

from __future__ import annotations

import copy
import json
import os
import sys
import urllib.parse
import uuid
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

from test_template import (  # noqa: E402
    TEMPLATE,
    TICK_INPUT,
    deliver_payload,
    load_template,
    render,
    shard_payload,
    tick_definition,
)

SHARDS = 4
FAILING_SHARD = 2


@pytest.fixture(scope="module")
def sfn():
    endpoint = os.environ.get("AWS_ENDPOINT_URL", "")
    assert endpoint, "AWS_ENDPOINT_URL is not set: run scripts/infra-check.sh (it starts an emulator)"
    host = urllib.parse.urlparse(endpoint).hostname
    assert host in ("127.0.0.1", "localhost", "::1"), f"{endpoint} is not a local emulator"
    import boto3
    from botocore.config import Config

    # StartSyncExecution's endpoint has a host prefix (sync-) the emulator does not serve.
    return boto3.client(
        "stepfunctions",
        endpoint_url=endpoint,
        region_name=os.environ.get("AWS_REGION", "us-east-1"),
        aws_access_key_id="test",
        aws_secret_access_key="test",
        config=Config(inject_host_prefix=False, retries={"max_attempts": 1}),
    )


def _as_pass(task: dict[str, Any], result_path: str) -> dict[str, Any]:
    """A Pass state standing in for a lambda:invoke task: its output is the task's
    input with the payload it would send at `result_path`."""
    state = {"Type": "Pass", "Parameters": task["Parameters"]["Payload"], "ResultPath": result_path}
    for key in ("Next", "End"):
        if key in task:
            state[key] = task[key]
    return state


def _definition() -> dict[str, Any]:
    """The real definition with 4 shards: shard 2's task stays a Lambda task (the
    emulator refuses the invocation: a failed shard), the other shards' and the
    deliver stage's become Pass states."""
    d = tick_definition(render(load_template(TEMPLATE), SHARDS))
    processor = d["States"]["EvaluateShards"]["ItemProcessor"]
    task = processor["States"]["EvaluateShard"]
    processor["States"]["EvaluateShardPass"] = _as_pass(task, task["ResultPath"])
    processor["States"]["Pick"] = {
        "Type": "Choice",
        "Choices": [{"Variable": "$.shard", "NumericEquals": FAILING_SHARD, "Next": "EvaluateShard"}],
        "Default": "EvaluateShardPass",
    }
    processor["StartAt"] = "Pick"
    d["States"]["Deliver"] = _as_pass(d["States"]["Deliver"], "$.deliver")
    return d


def _run(sfn, definition: dict[str, Any]) -> dict[str, Any]:
    arn = sfn.create_state_machine(
        name=f"firebell-tick-{uuid.uuid4().hex[:8]}",
        definition=json.dumps(definition),
        roleArn="arn:aws:iam::000000000000:role/firebell-tick",
        type="EXPRESS",
    )["stateMachineArn"]
    try:
        return sfn.start_sync_execution(stateMachineArn=arn, input=json.dumps(TICK_INPUT))
    finally:
        sfn.delete_state_machine(stateMachineArn=arn)


def test_every_shard_then_delivery_and_a_failed_shard_is_passed_over(sfn) -> None:
    result = _run(sfn, _definition())
    assert result["status"] == "SUCCEEDED", result
    out = json.loads(result["output"])
    # The tick's input is kept for the deliver stage, beside the shards' results.
    assert (out["scheduled_time"], out["execution_id"]) == (TICK_INPUT["scheduled_time"], TICK_INPUT["execution_id"])
    items = out["shard_results"]
    assert [i["shard"] for i in items] == list(range(1, SHARDS + 1)), items
    for k, item in enumerate(items, start=1):
        base = {"scheduled_time": TICK_INPUT["scheduled_time"], "execution_id": TICK_INPUT["execution_id"],
                "shard": k, "shards": SHARDS}
        if k == FAILING_SHARD:
            # Caught (States.ALL), recorded under "error", nothing retried.
            error = item.get("error", {})
            assert error.get("Error", "").startswith("Lambda."), item
            assert item == {**base, "error": error}, item
        else:
            assert item == {**base, "result": shard_payload(k, SHARDS)}, item
    assert out["deliver"] == deliver_payload(SHARDS), out["deliver"]


def test_without_the_catch_a_failed_shard_fails_the_tick(sfn) -> None:
    """The control: the same failing shard without its Catch stops the tick before
    delivery (so the test above shows the Catch at work)."""
    d = _definition()
    del d["States"]["EvaluateShards"]["ItemProcessor"]["States"]["EvaluateShard"]["Catch"]
    result = _run(sfn, copy.deepcopy(d))
    assert result["status"] == "FAILED", result
    assert "deliver" not in json.loads(result.get("output") or "{}")
