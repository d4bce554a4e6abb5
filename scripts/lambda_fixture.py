"""Emulator fixture for scripts/lambda-test.sh and scripts/coldstart.sh.

Talks to whatever AWS_ENDPOINT_URL points at (the ministack emulator) with
botocore, which the pinned ministack in ./.venv brings along.

    lambda_fixture.py setup DIR      # table, topic, subscribed queue, breaching
                                     # metric data, DIR/config/, DIR/event.json,
                                     # DIR/stale-event.json, DIR/report-event.json,
                                     # DIR/env, DIR/fixture.json
    lambda_fixture.py receive DIR SECONDS
                                     # waits (bounded) for one notification on
                                     # the queue and prints its SNS envelope

Everything it creates has a unique name, so runs never see each other's data.
"""

import datetime
import json
import os
import sys
import time
import uuid

import botocore.session

RULE = "LambdaTestHighErrors"
TITLE = "Lambda test error count"


def client(service):
    endpoint = os.environ.get("AWS_ENDPOINT_URL", "").strip()
    if not endpoint:
        sys.exit(
            "lambda_fixture: AWS_ENDPOINT_URL is not set (the emulator's URL, "
            "e.g. from `eval \"$(scripts/emulator.sh start)\"`)"
        )
    return botocore.session.get_session().create_client(
        service,
        endpoint_url=endpoint,
        region_name=os.environ.get("AWS_REGION", "us-east-1"),
        aws_access_key_id=os.environ.get("AWS_ACCESS_KEY_ID", "test"),
        aws_secret_access_key=os.environ.get("AWS_SECRET_ACCESS_KEY", "test"),
    )


def rfc3339(secs):
    return datetime.datetime.fromtimestamp(secs, datetime.timezone.utc).strftime(
        "%Y-%m-%dT%H:%M:%SZ"
    )


def setup(out_dir):
    suffix = uuid.uuid4().hex[:12]
    table = f"firebell-lambda-test-{suffix}"
    namespace = f"Firebell/LambdaTest/{suffix}"

    ddb = client("dynamodb")
    ddb.create_table(
        TableName=table,
        AttributeDefinitions=[
            {"AttributeName": "pk", "AttributeType": "S"},
            {"AttributeName": "sk", "AttributeType": "S"},
        ],
        KeySchema=[
            {"AttributeName": "pk", "KeyType": "HASH"},
            {"AttributeName": "sk", "KeyType": "RANGE"},
        ],
        BillingMode="PAY_PER_REQUEST",
    )
    for _ in range(100):
        if ddb.describe_table(TableName=table)["Table"]["TableStatus"] == "ACTIVE":
            break
        time.sleep(0.1)
    else:
        sys.exit(f"lambda_fixture: table {table} did not become ACTIVE")

    sns = client("sns")
    sqs = client("sqs")
    topic = sns.create_topic(Name=f"firebell-lambda-test-{suffix}")["TopicArn"]
    queue = sqs.create_queue(QueueName=f"firebell-lambda-test-{suffix}")["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])[
        "Attributes"
    ]["QueueArn"]
    sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=queue_arn)

    # Ten minutes of 10 errors a minute, up to the minute before the tick.
    now = int(time.time())
    tick = now // 60 * 60
    cw = client("cloudwatch")
    cw.put_metric_data(
        Namespace=namespace,
        MetricData=[
            {
                "MetricName": "Errors",
                "Dimensions": [{"Name": "Service", "Value": "lambda-test"}],
                "Timestamp": datetime.datetime.fromtimestamp(
                    tick - 60 * k, datetime.timezone.utc
                ),
                "Value": 10.0,
                "Unit": "Count",
            }
            for k in range(1, 11)
        ],
    )

    config = os.path.join(out_dir, "config")
    os.makedirs(config, exist_ok=True)
    with open(os.path.join(config, "rules.yaml"), "w") as f:
        f.write(
            f"""rules:
  - name: {RULE}
    metrics:
      errors:
        namespace: {namespace}
        metric: Errors
        dimensions: {{Service: lambda-test}}
        stat: Sum
        period: 1m
    expression: errors
    unit: count
    condition: {{op: ">", threshold: 5}}
    labels: {{team: test, severity: page}}
    annotations:
      title: {TITLE}
"""
        )
    with open(os.path.join(config, "routing.yaml"), "w") as f:
        f.write(
            f"""receivers:
  test-oncall:
    topics: [{topic}]
route:
  receiver: test-oncall
  group_by: [alertname]
  group_wait: 0s
"""
        )
    # The reporter's weekly event (infra/template.yaml, ReporterSchedule).
    with open(os.path.join(out_dir, "report-event.json"), "w") as f:
        json.dump({"source": "firebell.report", "scheduled_time": rfc3339(tick)}, f)
    # What EventBridge Scheduler sends (infra/README.md, "Contract").
    for name, at in (("event.json", tick), ("stale-event.json", tick - 3600)):
        with open(os.path.join(out_dir, name), "w") as f:
            json.dump(
                {
                    "source": "firebell.schedule",
                    "scheduled_time": rfc3339(at),
                    "execution_id": f"lambda-test-{suffix}",
                    "attempt": "1",
                },
                f,
            )
    with open(os.path.join(out_dir, "env"), "w") as f:
        f.write(f"FIREBELL_CONFIG={config}\nFIREBELL_TABLE={table}\n")
        for k in ("AWS_ENDPOINT_URL", "AWS_REGION", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
            f.write(f"{k}={os.environ.get(k, 'test' if 'KEY' in k else 'us-east-1')}\n")
        f.write("RUST_LOG=info\n")
        # The first invocation starts the function under `cargo lambda watch`,
        # which can take over a minute on a busy 2-core machine: the default
        # 60 s would refuse the fresh tick as stale. The refusal itself is
        # tested with a tick an hour old.
        f.write("FIREBELL_MAX_TICK_AGE_SECS=900\n")
    state = {"table": table, "topic": topic, "queue": queue, "namespace": namespace, "tick": tick}
    with open(os.path.join(out_dir, "fixture.json"), "w") as f:
        json.dump(state, f)
    print(json.dumps(state))


def receive(out_dir, seconds):
    with open(os.path.join(out_dir, "fixture.json")) as f:
        state = json.load(f)
    sqs = client("sqs")
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        got = sqs.receive_message(
            QueueUrl=state["queue"], MaxNumberOfMessages=10, WaitTimeSeconds=1
        ).get("Messages", [])
        for m in got:
            sqs.delete_message(QueueUrl=state["queue"], ReceiptHandle=m["ReceiptHandle"])
            print(m["Body"])
            return
    sys.exit(f"lambda_fixture: no notification on {state['queue']} within {seconds}s")


def main(argv):
    if len(argv) == 3 and argv[1] == "setup":
        setup(argv[2])
    elif len(argv) == 4 and argv[1] == "receive":
        receive(argv[2], float(argv[3]))
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main(sys.argv)
