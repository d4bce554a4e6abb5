"""Emulator fixture for scripts/lambda-test.sh and scripts/coldstart.sh.

Talks to whatever AWS_ENDPOINT_URL points at (the ministack emulator) with
botocore, which the pinned ministack in ./.venv brings along.

    lambda_fixture.py setup DIR      # table, topic, subscribed queue, breaching
                                     # metric data, DIR/config/, DIR/event.json,
                                     # DIR/stale-event.json, DIR/report-event.json,
                                     # DIR/shard-1.json, DIR/shard-2.json,
                                     # DIR/deliver.json (a tick of a stack with
                                     # two shards), DIR/env, DIR/fixture.json
    lambda_fixture.py receive DIR SECONDS
                                     # waits (bounded) for one notification on
                                     # the queue and prints its SNS envelope
    lambda_fixture.py collect DIR SECONDS
                                     # receives (and deletes) every notification
                                     # for SECONDS; prints each body as a JSON
                                     # string, one a line
    lambda_fixture.py receive-alert DIR SECONDS ALERTNAME
                                     # the same, skipping (and deleting) the
                                     # messages whose first alert is another
    lambda_fixture.py appconfig DIR  # what infra/template.yaml creates in
                                     # AppConfig for an environment (application
                                     # firebell-ENV, environment ENV, profiles
                                     # config and stack, strategy firebell-ENV),
                                     # the configs to push (DIR/config2 adds a
                                     # rule, DIR/config3 is invalid), DIR/env2
                                     # (DIR/env plus the AppConfig settings),
                                     # DIR/appconfig.json
    lambda_fixture.py deploy-raw DIR NAME
                                     # deploys DIR/NAME as a bundle straight
                                     # through the control plane (as a console
                                     # user could), bypassing `firebell push`
    lambda_fixture.py validator-event DIR NAME
                                     # DIR/validator-NAME.json: the AppConfig
                                     # validator event for DIR/NAME as a bundle

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
    # What the Step Functions state machine of a stack with ShardCount 2
    # sends for the tick: each shard (the Map state), then the delivery stage.
    for name, extra in (
        ("shard-1.json", {"shard": 1, "shards": 2}),
        ("shard-2.json", {"shard": 2, "shards": 2}),
        ("deliver.json", {"stage": "deliver", "shards": 2}),
    ):
        with open(os.path.join(out_dir, name), "w") as f:
            json.dump(
                {
                    "source": "firebell.schedule",
                    "scheduled_time": rfc3339(tick),
                    "execution_id": f"lambda-test-{suffix}",
                    **extra,
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


def _fixture_queue(out_dir):
    with open(os.path.join(out_dir, "fixture.json")) as f:
        return json.load(f)["queue"]


def _messages(queue, seconds):
    """Every message received within `seconds`, each deleted once taken."""
    sqs = client("sqs")
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        got = sqs.receive_message(
            QueueUrl=queue, MaxNumberOfMessages=10, WaitTimeSeconds=1
        ).get("Messages", [])
        for m in got:
            sqs.delete_message(QueueUrl=queue, ReceiptHandle=m["ReceiptHandle"])
            yield m


def receive(out_dir, seconds):
    queue = _fixture_queue(out_dir)
    for m in _messages(queue, seconds):
        print(m["Body"])
        return
    sys.exit(f"lambda_fixture: no notification on {queue} within {seconds}s")


def collect(out_dir, seconds):
    # All of them, for the whole time: one body per line (JSON-quoted).
    for m in _messages(_fixture_queue(out_dir), seconds):
        print(json.dumps(m["Body"]))


def receive_alert(out_dir, seconds, alertname):
    seen = []
    for m in _messages(_fixture_queue(out_dir), seconds):
        env = json.loads(m["Body"])
        try:
            alerts = json.loads(env["Message"]).get("alerts", [])
        except ValueError:
            alerts = []
        if alerts and alerts[0].get("alertname") == alertname:
            print(m["Body"])
            return
        seen.append(env.get("Subject"))
    sys.exit(f"lambda_fixture: no {alertname} notification within {seconds}s (saw {seen})")


def bundle(out_dir, name):
    """DIR/NAME as a firebell bundle, its paths as `firebell validate --config NAME`
    run in DIR names them."""
    root = os.path.join(out_dir, name)
    files = []
    for dirpath, _, names in sorted(os.walk(root)):
        for n in sorted(names):
            if n.endswith((".yaml", ".yml")):
                full = os.path.join(dirpath, n)
                with open(full) as f:
                    files.append({"path": os.path.relpath(full, out_dir), "text": f.read()})
    files.sort(key=lambda f: f["path"])
    return json.dumps({"format": "firebell.bundle/v1", "files": files}).encode()


def appconfig(out_dir):
    with open(os.path.join(out_dir, "fixture.json")) as f:
        state = json.load(f)
    env = "lt" + uuid.uuid4().hex[:10]
    ac = client("appconfig")
    app = ac.create_application(Name=f"firebell-{env}")["Id"]
    env_id = ac.create_environment(ApplicationId=app, Name=env)["Id"]
    profile = ac.create_configuration_profile(
        ApplicationId=app, Name="config", LocationUri="hosted", Type="AWS.Freeform"
    )["Id"]
    stack = ac.create_configuration_profile(
        ApplicationId=app, Name="stack", LocationUri="hosted", Type="AWS.Freeform"
    )["Id"]
    ac.create_hosted_configuration_version(
        ApplicationId=app,
        ConfigurationProfileId=stack,
        Content=json.dumps(
            {"format": "firebell.stack/v1", "environment": env, "topics": [state["topic"]]}
        ).encode(),
        ContentType="application/json",
    )
    strategy = ac.create_deployment_strategy(
        Name=f"firebell-{env}",
        DeploymentDurationInMinutes=0,
        FinalBakeTimeInMinutes=0,
        GrowthFactor=100.0,
        GrowthType="LINEAR",
        ReplicateTo="NONE",
    )["Id"]
    # config2: the fixture's config plus a rule; config3: invalid.
    src = os.path.join(out_dir, "config")
    for name in ("config2", "config3"):
        os.makedirs(os.path.join(out_dir, name), exist_ok=True)
        for n in ("rules.yaml", "routing.yaml"):
            with open(os.path.join(src, n)) as f:
                text = f.read()
            if n == "rules.yaml" and name == "config2":
                text += text[len("rules:\n"):].replace(RULE, RULE + "Any").replace(
                    "threshold: 5", "threshold: 1"
                ).replace("severity: page", "severity: ticket")
            if n == "rules.yaml" and name == "config3":
                text = text.replace('op: ">"', 'op: ">>"').replace("stat: Sum", "stat: Total")
            with open(os.path.join(out_dir, name, n), "w") as f:
                f.write(text)
    # config4 loads nowhere it runs: a topic outside the stack's list.
    os.makedirs(os.path.join(out_dir, "config4"), exist_ok=True)
    for n in ("rules.yaml", "routing.yaml"):
        with open(os.path.join(src, n)) as f:
            text = f.read()
        if n == "routing.yaml":
            text = text.replace(state["topic"], state["topic"] + "-elsewhere")
        with open(os.path.join(out_dir, "config4", n), "w") as f:
            f.write(text)
    with open(os.path.join(out_dir, "env")) as f:
        base = f.read()
    with open(os.path.join(out_dir, "env2"), "w") as f:
        f.write(base)
        f.write(f"FIREBELL_APPCONFIG_APPLICATION={app}\n")
        f.write(f"FIREBELL_APPCONFIG_ENVIRONMENT={env_id}\n")
        f.write(f"FIREBELL_APPCONFIG_PROFILE={profile}\n")
        f.write(f"FIREBELL_ALLOWED_TOPICS={state['topic']}\n")
    with open(os.path.join(out_dir, "validator-env"), "w") as f:
        f.write(f"FIREBELL_ALLOWED_TOPICS={state['topic']}\nFIREBELL_STRICT=false\nRUST_LOG=info\n")
    for name, at in (("event2.json", 60), ("event3.json", 120), ("event4.json", 180), ("event5.json", 240)):
        with open(os.path.join(out_dir, name), "w") as f:
            json.dump(
                {"source": "firebell.schedule", "scheduled_time": rfc3339(state["tick"] + at)}, f
            )
    info = {"env": env, "application": app, "environment": env_id, "profile": profile, "strategy": strategy}
    with open(os.path.join(out_dir, "appconfig.json"), "w") as f:
        json.dump(info, f)
    print(json.dumps(info))


def deploy_raw(out_dir, name):
    with open(os.path.join(out_dir, "appconfig.json")) as f:
        info = json.load(f)
    ac = client("appconfig")
    version = ac.create_hosted_configuration_version(
        ApplicationId=info["application"],
        ConfigurationProfileId=info["profile"],
        Content=bundle(out_dir, name),
        ContentType="application/json",
    )["VersionNumber"]
    d = ac.start_deployment(
        ApplicationId=info["application"],
        EnvironmentId=info["environment"],
        DeploymentStrategyId=info["strategy"],
        ConfigurationProfileId=info["profile"],
        ConfigurationVersion=str(version),
    )
    for _ in range(100):
        got = ac.get_deployment(
            ApplicationId=info["application"],
            EnvironmentId=info["environment"],
            DeploymentNumber=d["DeploymentNumber"],
        )
        if got["State"] == "COMPLETE":
            print(json.dumps({"version": version, "deployment": d["DeploymentNumber"]}))
            return
        time.sleep(0.1)
    sys.exit(f"lambda_fixture: deployment of {name} did not complete")


def validator_event(out_dir, name):
    import base64

    event = {
        "applicationId": "app",
        "configurationProfileId": "profile",
        "configurationVersion": "7",
        "content": base64.b64encode(bundle(out_dir, name)).decode(),
        "uri": "hosted",
    }
    with open(os.path.join(out_dir, f"validator-{name}.json"), "w") as f:
        json.dump(event, f)


def main(argv):
    if len(argv) == 3 and argv[1] == "setup":
        setup(argv[2])
    elif len(argv) == 4 and argv[1] == "receive":
        receive(argv[2], float(argv[3]))
    elif len(argv) == 4 and argv[1] == "collect":
        collect(argv[2], float(argv[3]))
    elif len(argv) == 5 and argv[1] == "receive-alert":
        receive_alert(argv[2], float(argv[3]), argv[4])
    elif len(argv) == 3 and argv[1] == "appconfig":
        appconfig(argv[2])
    elif len(argv) == 4 and argv[1] == "deploy-raw":
        deploy_raw(argv[2], argv[3])
    elif len(argv) == 4 and argv[1] == "validator-event":
        validator_event(argv[2], argv[3])
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main(sys.argv)
