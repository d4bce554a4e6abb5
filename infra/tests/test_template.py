"""Regression tests for infra/template.yaml: least privilege, retry settings, watchdog,
packaging (the config layer and its Makefile build).

Run by scripts/infra-check.sh (pytest in the infra venv). Each `check_*` function takes
a parsed template and raises AssertionError on a violation; the `test_*` functions run
them on the real template and, for the negative tests, on mutated copies, proving the
checks can fail.
"""

from __future__ import annotations

import copy
import json
import os
import shutil
import stat
import subprocess
import sys
from pathlib import Path
from typing import Any, Iterator

import pytest

INFRA = Path(__file__).resolve().parents[1]
REPO = INFRA.parent
TEMPLATE = INFRA / "template.yaml"
sys.path.insert(0, str(INFRA / "tools"))

from sam_to_cfn import load_template, transform_template  # noqa: E402

FUNCTION = "EvaluatorFunction"
FUNCTION_ROLE = "EvaluatorRole"
SCHEDULE = "EvaluatorSchedule"
SCHEDULER_ROLE = "SchedulerRole"
TABLE = "StateTable"
KEY = "FirebellKey"
OPS_TOPIC = "OpsTopic"
TEAM_TOPICS_PARAM = "TeamTopicArns"
FAILURE_QUEUE = "EvaluatorFailureQueue"
SCHEDULE_DLQ = "ScheduleDeadLetterQueue"
LOG_GROUP = "EvaluatorLogGroup"
INVOKE_CONFIG = "EvaluatorInvokeConfig"
HEARTBEAT_ALARM = "HeartbeatAlarm"
CYCLE_ERRORS_ALARM = "CycleErrorsAlarm"
CONFIG_LAYER = "ConfigLayer"
CONFIG_MOUNT = "/opt/config"  # a layer's content is mounted at /opt

# The evaluator's complete permission set. Adding an action is a deliberate change:
# update the template, this set, and infra/README.md together.
EXPECTED_FUNCTION_ACTIONS = {
    "cloudwatch:GetMetricData",
    "cloudwatch:ListMetrics",
    "dynamodb:GetItem",
    "dynamodb:BatchGetItem",
    "dynamodb:Query",
    "dynamodb:PutItem",
    "dynamodb:DeleteItem",
    "sns:Publish",
    "sqs:SendMessage",
    "kms:Decrypt",
    "kms:GenerateDataKey",
    "logs:CreateLogStream",
    "logs:PutLogEvents",
}
EXPECTED_SCHEDULER_ACTIONS = {
    "lambda:InvokeFunction",
    "sqs:SendMessage",
    "kms:Decrypt",
    "kms:GenerateDataKey",
}
# Which template names each service's statements may point at.
FUNCTION_RESOURCE_SCOPE = {
    "dynamodb": {TABLE},
    "sns": {TEAM_TOPICS_PARAM, OPS_TOPIC},
    "sqs": {FAILURE_QUEUE},
    "kms": {KEY},
    "logs": {LOG_GROUP},
}
# AWS authorises these only on Resource "*"; nothing else may use it.
STAR_RESOURCE_ACTIONS = {"cloudwatch:GetMetricData", "cloudwatch:ListMetrics"}

REPORTER = "ReporterFunction"
REPORTER_ROLE = "ReporterRole"
REPORTER_SCHEDULE = "ReporterSchedule"
REPORTER_FAILURE_QUEUE = "ReporterFailureQueue"
REPORTER_LOG_GROUP = "ReporterLogGroup"
# The reporter reads the table and publishes to the team topics; nothing else.
EXPECTED_REPORTER_ACTIONS = {
    "dynamodb:GetItem",
    "dynamodb:BatchGetItem",
    "dynamodb:Query",
    "sns:Publish",
    "sqs:SendMessage",
    "kms:Decrypt",
    "kms:GenerateDataKey",
    "logs:CreateLogStream",
    "logs:PutLogEvents",
}
REPORTER_RESOURCE_SCOPE = {
    "dynamodb": {TABLE},
    "sns": {TEAM_TOPICS_PARAM},
    "sqs": {REPORTER_FAILURE_QUEUE},
    "kms": {KEY},
    "logs": {REPORTER_LOG_GROUP},
}


# ----------------------------------------------------------------- helpers


@pytest.fixture(scope="module")
def template() -> dict[str, Any]:
    return load_template(TEMPLATE)


def as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def resource(template: dict[str, Any], name: str) -> dict[str, Any]:
    assert name in template["Resources"], f"resource {name} missing"
    return template["Resources"][name]


def props(template: dict[str, Any], name: str) -> dict[str, Any]:
    return resource(template, name).get("Properties", {})


def walk(node: Any, path: str = "") -> Iterator[tuple[str, Any]]:
    """Yield (path, value) for every node of a parsed template."""
    yield path, node
    if isinstance(node, dict):
        for key, value in node.items():
            yield from walk(value, f"{path}/{key}")
    elif isinstance(node, list):
        for i, value in enumerate(node):
            yield from walk(value, f"{path}[{i}]")


def refs(node: Any) -> set[str]:
    """Template names (resources, parameters) an expression points at."""
    found: set[str] = set()
    for _, value in walk(node):
        if not isinstance(value, dict) or len(value) != 1:
            continue
        (fn, arg), = value.items()
        if fn == "Ref" and isinstance(arg, str):
            found.add(arg)
        elif fn == "Fn::GetAtt":
            target = arg[0] if isinstance(arg, list) else str(arg).split(".", 1)[0]
            found.add(target)
        elif fn == "Fn::Sub":
            text = arg[0] if isinstance(arg, list) else arg
            found.update(
                part.split("}", 1)[0].split(".", 1)[0]
                for part in str(text).split("${")[1:]
                if not part.startswith("AWS::")
            )
    return found


def statements(document: dict[str, Any]) -> list[dict[str, Any]]:
    return as_list(document.get("Statement", []))


def role_statements(template: dict[str, Any], role: str) -> list[dict[str, Any]]:
    p = props(template, role)
    assert not p.get("ManagedPolicyArns"), f"{role}: managed policies are not allowed"
    found = []
    for policy in p.get("Policies", []):
        found.extend(statements(policy["PolicyDocument"]))
    # Policies attached to the role from separate resources count too.
    for name, res in template["Resources"].items():
        if res.get("Type") in ("AWS::IAM::Policy", "AWS::IAM::ManagedPolicy"):
            rp = res.get("Properties", {})
            if role in refs(rp.get("Roles", [])):
                found.extend(statements(rp["PolicyDocument"]))
    return found


def actions(statement: dict[str, Any]) -> list[str]:
    assert "NotAction" not in statement, f"NotAction is not allowed: {statement}"
    return [str(a) for a in as_list(statement.get("Action", []))]


def function_role_name(template: dict[str, Any]) -> str:
    role = props(template, FUNCTION).get("Role")
    names = refs(role)
    assert len(names) == 1, f"{FUNCTION} must use a role defined in this template, got {role!r}"
    return names.pop()


# ------------------------------------------------------------------ checks


def check_no_wildcard_actions(template: dict[str, Any]) -> None:
    """No '*' in any Action of any policy (IAM, key, topic, queue) anywhere."""
    seen = 0
    for path, node in walk(template):
        if not isinstance(node, dict):
            continue
        assert "NotAction" not in node, f"{path}: NotAction is not allowed"
        if "Action" in node and ("Effect" in node or "Principal" in node or "Resource" in node):
            for action in as_list(node["Action"]):
                seen += 1
                assert isinstance(action, str), f"{path}: Action must be a literal, got {action!r}"
                assert "*" not in action, f"{path}: wildcard action {action!r}"
    assert seen, "no policy statements found: parser or template broken"


def check_function_role(template: dict[str, Any]) -> None:
    role = function_role_name(template)
    assert role == FUNCTION_ROLE, f"{FUNCTION} role is {role}, expected {FUNCTION_ROLE}"
    trust = statements(props(template, role)["AssumeRolePolicyDocument"])
    assert [s["Principal"] for s in trust] == [{"Service": "lambda.amazonaws.com"}], trust

    stmts = role_statements(template, role)
    got = {a for s in stmts for a in actions(s)}
    assert got == EXPECTED_FUNCTION_ACTIONS, (
        f"function role actions differ: extra {sorted(got - EXPECTED_FUNCTION_ACTIONS)}, "
        f"missing {sorted(EXPECTED_FUNCTION_ACTIONS - got)}"
    )

    for s in stmts:
        assert s.get("Effect") == "Allow", s
        acts = actions(s)
        services = {a.split(":", 1)[0] for a in acts}
        assert len(services) == 1, f"one service per statement: {acts}"
        service = services.pop()
        resources = as_list(s.get("Resource"))
        assert resources and "NotResource" not in s, s

        if service == "cloudwatch":
            assert set(acts) <= STAR_RESOURCE_ACTIONS, f"cloudwatch actions: {acts}"
            assert resources == ["*"], s
            continue
        for r in resources:
            assert r != "*" and isinstance(r, dict), f"{acts}: literal/star resource {r!r}"
            names = refs(r)
            allowed = FUNCTION_RESOURCE_SCOPE[service]
            assert names and names <= allowed, f"{acts} on {sorted(names)}, allowed {sorted(allowed)}"

    # sns:Publish must cover exactly the team topics parameter and the ops topic.
    publish = set()
    for s in stmts:
        if "sns:Publish" in actions(s):
            publish |= refs(s["Resource"])
    assert publish == {TEAM_TOPICS_PARAM, OPS_TOPIC}, publish
    assert template["Parameters"][TEAM_TOPICS_PARAM]["Type"] == "CommaDelimitedList"

    # "*" resources only for the two CloudWatch reads.
    for s in stmts:
        if "*" in as_list(s["Resource"]):
            assert set(actions(s)) <= STAR_RESOURCE_ACTIONS, s


def check_scheduler_role(template: dict[str, Any]) -> None:
    target = props(template, SCHEDULE)["Target"]
    assert refs(target["RoleArn"]) == {SCHEDULER_ROLE}
    trust = statements(props(template, SCHEDULER_ROLE)["AssumeRolePolicyDocument"])
    assert [s["Principal"] for s in trust] == [{"Service": "scheduler.amazonaws.com"}], trust
    stmts = role_statements(template, SCHEDULER_ROLE)
    got = {a for s in stmts for a in actions(s)}
    assert got == EXPECTED_SCHEDULER_ACTIONS, f"scheduler role actions: {sorted(got)}"
    scope = {"lambda": {FUNCTION, REPORTER}, "sqs": {SCHEDULE_DLQ}, "kms": {KEY}}
    for s in stmts:
        services = {a.split(":", 1)[0] for a in actions(s)}
        assert len(services) == 1, f"one service per statement: {s}"
        allowed = scope[services.pop()]
        for r in as_list(s["Resource"]):
            assert r != "*" and isinstance(r, dict), s
            assert refs(r) and refs(r) <= allowed, f"{actions(s)} on {sorted(refs(r))}"


def check_reporter(template: dict[str, Any]) -> None:
    """The reporter: its own role, read-only on the table, publish to the team
    topics only; weekly by default; packaged like the evaluator."""
    p = props(template, REPORTER)
    assert refs(p["Role"]) == {REPORTER_ROLE}
    trust = statements(props(template, REPORTER_ROLE)["AssumeRolePolicyDocument"])
    assert [s["Principal"] for s in trust] == [{"Service": "lambda.amazonaws.com"}], trust
    stmts = role_statements(template, REPORTER_ROLE)
    got = {a for s in stmts for a in actions(s)}
    assert got == EXPECTED_REPORTER_ACTIONS, (
        f"reporter role actions differ: extra {sorted(got - EXPECTED_REPORTER_ACTIONS)}, "
        f"missing {sorted(EXPECTED_REPORTER_ACTIONS - got)}"
    )
    for s in stmts:
        assert s.get("Effect") == "Allow", s
        services = {a.split(":", 1)[0] for a in actions(s)}
        assert len(services) == 1, f"one service per statement: {s}"
        allowed = REPORTER_RESOURCE_SCOPE[services.pop()]
        for r in as_list(s["Resource"]):
            assert r != "*" and isinstance(r, dict), f"{actions(s)}: literal/star resource {r!r}"
            assert refs(r) and refs(r) <= allowed, f"{actions(s)} on {sorted(refs(r))}, allowed {sorted(allowed)}"
    fn = resource(template, REPORTER)
    assert fn["Metadata"]["BuildMethod"] == "rust-cargolambda"
    assert fn["Metadata"]["BuildProperties"]["Binary"] == "reporter"
    assert p["Runtime"] == "provided.al2023" and p["Architectures"] == ["arm64"]
    assert refs(p["Layers"]) == {CONFIG_LAYER}
    env = p["Environment"]["Variables"]
    assert env["FIREBELL_CONFIG"] == CONFIG_MOUNT
    assert refs(env["FIREBELL_TABLE"]) == {TABLE}
    assert refs(p["LoggingConfig"]["LogGroup"]) == {REPORTER_LOG_GROUP}
    sched = props(template, REPORTER_SCHEDULE)
    assert refs(sched["ScheduleExpression"]) == {"ReportSchedule"}
    assert template["Parameters"]["ReportSchedule"]["Default"] == "cron(0 8 ? * MON *)"
    assert refs(sched["Target"]["Arn"]) == {REPORTER}
    assert sched["Target"]["RetryPolicy"]["MaximumRetryAttempts"] == 0


def check_function_packaging(template: dict[str, Any]) -> None:
    fn = resource(template, FUNCTION)
    assert fn["Type"] == "AWS::Serverless::Function"
    p = fn["Properties"]
    assert p["Runtime"] == "provided.al2023"
    assert p["Architectures"] == ["arm64"]
    assert p["Handler"] == "bootstrap"
    assert fn["Metadata"]["BuildMethod"] == "rust-cargolambda"
    assert fn["Metadata"]["BuildProperties"]["Binary"] == "evaluator"
    assert p["ReservedConcurrentExecutions"] == 1
    assert p["Timeout"] < 60, "a cycle must end before the next one-minute tick"
    env = p["Environment"]["Variables"]
    assert refs(env["FIREBELL_TABLE"]) == {TABLE}
    assert refs(p["LoggingConfig"]["LogGroup"]) == {LOG_GROUP}
    assert refs(p["KmsKeyArn"]) == {KEY}


def check_config_layer(template: dict[str, Any]) -> None:
    """The config ships as a layer built by config-layer/Makefile, mounted where the
    function reads it."""
    layer = resource(template, CONFIG_LAYER)
    assert layer["Type"] == "AWS::Serverless::LayerVersion", layer["Type"]
    assert layer.get("Metadata", {}).get("BuildMethod") == "makefile", (
        f"{CONFIG_LAYER} must be built by its Makefile (copy + validate), not zipped as is"
    )
    lp = layer["Properties"]
    fn = props(template, FUNCTION)
    assert fn["Runtime"] in lp["CompatibleRuntimes"], lp["CompatibleRuntimes"]
    assert set(fn["Architectures"]) <= set(lp["CompatibleArchitectures"]), lp["CompatibleArchitectures"]
    makefile = INFRA / lp["ContentUri"] / "Makefile"
    assert makefile.is_file(), f"{makefile} missing"
    assert f"build-{CONFIG_LAYER}:" in makefile.read_text(), f"{makefile}: no build-{CONFIG_LAYER} target"

    assert [refs(x) for x in fn.get("Layers", [])] == [{CONFIG_LAYER}], f"{FUNCTION} layers: {fn.get('Layers')}"
    assert fn["Environment"]["Variables"].get("FIREBELL_CONFIG") == CONFIG_MOUNT


def check_retries(template: dict[str, Any]) -> None:
    target = props(template, SCHEDULE)["Target"]
    assert target["RetryPolicy"] == {"MaximumRetryAttempts": 0, "MaximumEventAgeInSeconds": 60}
    assert refs(target["Arn"]) == {FUNCTION}
    assert refs(target["DeadLetterConfig"]["Arn"]) == {SCHEDULE_DLQ}
    expr = props(template, SCHEDULE)["ScheduleExpression"]
    assert refs(expr) == {"ScheduleExpression"}
    assert template["Parameters"]["ScheduleExpression"]["Default"] == "rate(1 minute)"
    assert props(template, SCHEDULE)["FlexibleTimeWindow"] == {"Mode": "OFF"}

    configs = [n for n, r in template["Resources"].items() if r["Type"] == "AWS::Lambda::EventInvokeConfig"]
    assert sorted(configs) == sorted([INVOKE_CONFIG, "ReporterInvokeConfig"]), configs
    rc = props(template, "ReporterInvokeConfig")
    assert refs(rc["FunctionName"]) == {REPORTER}
    assert rc["MaximumRetryAttempts"] == 0, "a retried report reaches teams twice"
    assert refs(rc["DestinationConfig"]["OnFailure"]["Destination"]) == {REPORTER_FAILURE_QUEUE}
    ic = props(template, INVOKE_CONFIG)
    assert refs(ic["FunctionName"]) == {FUNCTION}
    assert ic["MaximumRetryAttempts"] == 0
    assert ic["MaximumEventAgeInSeconds"] == 60
    on_failure = ic.get("DestinationConfig", {}).get("OnFailure", {})
    assert refs(on_failure.get("Destination")) == {FAILURE_QUEUE}, "on-failure destination"
    for queue in (FAILURE_QUEUE, SCHEDULE_DLQ):
        assert refs(props(template, queue).get("KmsMasterKeyId")) == {KEY}, queue


def check_watchdog(template: dict[str, Any]) -> None:
    a = props(template, HEARTBEAT_ALARM)
    assert a["Namespace"] == "Firebell"
    assert a["MetricName"] == "Heartbeat"
    assert [d["Name"] for d in a["Dimensions"]] == ["Function"]
    assert refs(a["Dimensions"][0]["Value"]) == {FUNCTION}
    assert a["Statistic"] == "Sum"
    assert a["ComparisonOperator"] == "LessThanThreshold" and a["Threshold"] == 1
    assert a["TreatMissingData"] == "breaching"
    assert refs(a["AlarmActions"]) == {OPS_TOPIC} and refs(a["OKActions"]) == {OPS_TOPIC}
    default_period = template["Parameters"]["WatchdogPeriodSeconds"]["Default"]
    default_n = template["Parameters"]["WatchdogEvaluationPeriods"]["Default"]
    assert (default_period, default_n) == (60, 3)

    alarms = [
        r["Properties"] for r in template["Resources"].values() if r["Type"] == "AWS::CloudWatch::Alarm"
    ]
    errors = [p for p in alarms if (p["Namespace"], p["MetricName"]) == ("AWS/Lambda", "Errors")]
    assert len(errors) == 1 and refs(errors[0]["Dimensions"]) == {FUNCTION}, "Errors alarm"
    check_cycle_errors_alarm(template)
    queues = {q for p in alarms if p["Namespace"] == "AWS/SQS" for q in refs(p["Dimensions"])}
    assert queues == {FAILURE_QUEUE, SCHEDULE_DLQ}, f"queue depth alarms cover {queues}"
    for p in alarms:
        assert refs(p["AlarmActions"]) == {OPS_TOPIC}, p


def check_cycle_errors_alarm(template: dict[str, Any]) -> None:
    """The second line behind in-engine self-monitoring: the evaluator's own
    `Firebell/Errors{Function}` EMF metric pages the ops topic."""
    a = props(template, CYCLE_ERRORS_ALARM)
    assert (a["Namespace"], a["MetricName"]) == ("Firebell", "Errors"), "Firebell/Errors"
    assert [d["Name"] for d in a["Dimensions"]] == ["Function"]
    assert refs(a["Dimensions"][0]["Value"]) == {FUNCTION}
    assert a["Statistic"] == "Sum"
    assert a["ComparisonOperator"] == "GreaterThanOrEqualToThreshold" and a["Threshold"] == 1
    assert a["DatapointsToAlarm"] <= a["EvaluationPeriods"]
    # A dead evaluator emits no Errors: the heartbeat alarm covers it, so no
    # data is not breaching here.
    assert a["TreatMissingData"] == "notBreaching"
    assert refs(a["AlarmActions"]) == {OPS_TOPIC} and refs(a["OKActions"]) == {OPS_TOPIC}


def check_storage_and_keys(template: dict[str, Any]) -> None:
    t = props(template, TABLE)
    assert t["BillingMode"] == "PAY_PER_REQUEST"
    assert t["PointInTimeRecoverySpecification"]["PointInTimeRecoveryEnabled"] is True
    assert t["SSESpecification"]["SSEEnabled"] is True and t["SSESpecification"]["SSEType"] == "KMS"
    assert refs(t["SSESpecification"]["KMSMasterKeyId"]) == {KEY}
    assert t["TimeToLiveSpecification"] == {"AttributeName": "expires_at", "Enabled": True}
    assert t["DeletionProtectionEnabled"] is True
    assert {k["AttributeName"]: k["KeyType"] for k in t["KeySchema"]} == {"pk": "HASH", "sk": "RANGE"}
    for name, r in template["Resources"].items():
        if r["Type"] == "AWS::KMS::Key":
            assert r["Properties"]["EnableKeyRotation"] is True, name
            for s in statements(r["Properties"]["KeyPolicy"]):
                assert s["Principal"] != "*" and s["Principal"].get("AWS") != "*", (name, s)
    assert refs(props(template, OPS_TOPIC)["KmsMasterKeyId"]) == {KEY}
    assert refs(props(template, LOG_GROUP)["KmsKeyId"]) == {KEY}
    assert props(template, LOG_GROUP)["RetentionInDays"] > 0


def check_key_service_principals_are_scoped(template: dict[str, Any]) -> None:
    """Every service principal in a key policy acts only for this account's and this
    stack's resources: CloudWatch (alarms publishing to the encrypted ops topic) with
    aws:SourceAccount and aws:SourceArn, CloudWatch Logs with the log group's
    encryption context."""
    for name, r in template["Resources"].items():
        if r["Type"] != "AWS::KMS::Key":
            continue
        for s in statements(r["Properties"]["KeyPolicy"]):
            service = s.get("Principal", {}).get("Service")
            if service is None:
                continue
            cond = s.get("Condition", {})
            assert cond, f"{name}: {service} may use the key unconditionally"
            if service == "cloudwatch.amazonaws.com":
                assert cond.get("StringEquals", {}).get("aws:SourceAccount") == {"Ref": "AWS::AccountId"}, (name, cond)
                arn = cond.get("ArnLike", {}).get("aws:SourceArn") or cond.get("ArnEquals", {}).get("aws:SourceArn")
                text = json.dumps(arn)
                assert arn is not None and ":alarm:${AWS::StackName}-" in text and "${AWS::AccountId}" in text, (name, cond)
                assert set(actions(s)) == {"kms:Decrypt", "kms:GenerateDataKey"}, (name, s)


TOPIC_ARN_OK = [
    "arn:aws:sns:us-east-1:123456789012:payments-oncall",
    "arn:aws:sns:eu-west-1:123456789012:checkout_oncall.fifo",
    "arn:aws-us-gov:sns:us-gov-west-1:123456789012:Ops",
    "arn:aws-cn:sns:cn-north-1:123456789012:a",
]
TOPIC_ARN_BAD = [
    "*",
    "arn:aws:sns:us-east-1:123456789012:*",
    "arn:aws:sns:*:*:*",
    "arn:aws:sqs:us-east-1:123456789012:queue",
    "arn:aws:sns:us-east-1:12345678901:short-account",
    " arn:aws:sns:us-east-1:123456789012:space",
    "arn:aws:sns:us-east-1:123456789012:",
    "arn:aws:sns:us-east-1:123456789012:" + "x" * 257,
    "arn:aws:sns:us-east-1:123456789012:a,arn:aws:sns:us-east-1:123456789012:b",
]


def check_team_topics_pattern(template: dict[str, Any]) -> None:
    """TeamTopicArns takes SNS topic ARNs only (checked per element): no wildcard."""
    import re

    p = template["Parameters"][TEAM_TOPICS_PARAM]
    assert p["Type"] == "CommaDelimitedList"
    pattern = p.get("AllowedPattern")
    assert pattern, "TeamTopicArns has no AllowedPattern"
    assert p.get("ConstraintDescription"), "TeamTopicArns has no ConstraintDescription"
    for arn in TOPIC_ARN_OK:
        assert re.fullmatch(pattern, arn), (pattern, arn)
    for arn in TOPIC_ARN_BAD:
        assert not re.fullmatch(pattern, arn), (pattern, arn)


def check_checkov_skips_have_reasons(template: dict[str, Any]) -> None:
    for name, r in template["Resources"].items():
        for skip in r.get("Metadata", {}).get("checkov", {}).get("skip", []):
            assert str(skip.get("id", "")).startswith("CKV"), (name, skip)
            assert len(str(skip.get("comment", "")).strip()) >= 20, f"{name}: skip {skip} needs a reason"


ALL_CHECKS = [
    check_no_wildcard_actions,
    check_function_role,
    check_scheduler_role,
    check_reporter,
    check_function_packaging,
    check_config_layer,
    check_retries,
    check_watchdog,
    check_storage_and_keys,
    check_key_service_principals_are_scoped,
    check_team_topics_pattern,
    check_checkov_skips_have_reasons,
]


# ------------------------------------------------------------------- tests


@pytest.mark.parametrize("check", ALL_CHECKS, ids=lambda c: c.__name__)
def test_template(template: dict[str, Any], check) -> None:
    check(template)


def test_transformed_template_adds_no_permissions(template: dict[str, Any]) -> None:
    """What CloudFormation deploys after the SAM transform has no extra IAM."""
    cfn = transform_template(copy.deepcopy(template))
    kinds: dict[str, list[str]] = {}
    for name, r in cfn["Resources"].items():
        kinds.setdefault(r["Type"], []).append(name)
    assert sorted(kinds["AWS::IAM::Role"]) == sorted([FUNCTION_ROLE, SCHEDULER_ROLE, REPORTER_ROLE]), kinds
    for kind in ("AWS::IAM::Policy", "AWS::IAM::ManagedPolicy", "AWS::Lambda::Permission"):
        assert kind not in kinds, f"SAM generated {kind}: {kinds.get(kind)}"
    assert sorted(kinds["AWS::Lambda::Function"]) == sorted([FUNCTION, REPORTER])
    check_no_wildcard_actions(cfn)
    fn = cfn["Resources"][FUNCTION]
    assert refs(fn["Properties"]["Role"]) == {FUNCTION_ROLE}
    # checkov skips must survive the transform to reach the resource checkov scans.
    assert fn["Metadata"]["checkov"]["skip"], "checkov skips lost in transform"
    assert fn["Properties"]["ReservedConcurrentExecutions"] == 1
    assert fn["Properties"]["Architectures"] == ["arm64"]


# Mutations that must each be caught: (description, mutate, check that must fail).
def _add_statement(role: str, statement: dict[str, Any]):
    def mutate(t: dict[str, Any]) -> None:
        t["Resources"][role]["Properties"]["Policies"][0]["PolicyDocument"]["Statement"].append(statement)

    return mutate


def _set(path: list[Any], value: Any):
    def mutate(t: dict[str, Any]) -> None:
        node = t
        for key in path[:-1]:
            node = node[key]
        node[path[-1]] = value

    return mutate


NEGATIVE_CASES = [
    (
        "the reporter writes the table",
        _add_statement(REPORTER_ROLE, {"Effect": "Allow", "Action": "dynamodb:PutItem", "Resource": {"Fn::GetAtt": [TABLE, "Arn"]}}),
        check_reporter,
    ),
    (
        "the reporter publishes to the ops topic",
        _add_statement(REPORTER_ROLE, {"Effect": "Allow", "Action": "sns:Publish", "Resource": {"Ref": OPS_TOPIC}}),
        check_reporter,
    ),
    (
        "the reporter publishes to any topic",
        _add_statement(REPORTER_ROLE, {"Effect": "Allow", "Action": "sns:Publish", "Resource": "*"}),
        check_reporter,
    ),
    (
        "wildcard dynamodb action",
        _add_statement(FUNCTION_ROLE, {"Effect": "Allow", "Action": "dynamodb:*", "Resource": {"Fn::GetAtt": [TABLE, "Arn"]}}),
        check_no_wildcard_actions,
    ),
    (
        "wildcard dynamodb action (role check)",
        _add_statement(FUNCTION_ROLE, {"Effect": "Allow", "Action": "dynamodb:*", "Resource": {"Fn::GetAtt": [TABLE, "Arn"]}}),
        check_function_role,
    ),
    (
        "extra action on the right resource",
        _add_statement(FUNCTION_ROLE, {"Effect": "Allow", "Action": "dynamodb:Scan", "Resource": {"Fn::GetAtt": [TABLE, "Arn"]}}),
        check_function_role,
    ),
    (
        "publish to any topic",
        _add_statement(FUNCTION_ROLE, {"Effect": "Allow", "Action": "sns:Publish", "Resource": "*"}),
        check_function_role,
    ),
    (
        "dynamodb on another table",
        _set(["Resources", FUNCTION_ROLE, "Properties", "Policies", 0, "PolicyDocument", "Statement", 1, "Resource"],
             {"Fn::Sub": "arn:${AWS::Partition}:dynamodb:${AWS::Region}:${AWS::AccountId}:table/other"}),
        check_function_role,
    ),
    (
        "cloudwatch write action",
        _set(["Resources", FUNCTION_ROLE, "Properties", "Policies", 0, "PolicyDocument", "Statement", 0, "Action"],
             ["cloudwatch:GetMetricData", "cloudwatch:PutMetricData"]),
        check_function_role,
    ),
    (
        "wildcard action in the key policy",
        _set(["Resources", KEY, "Properties", "KeyPolicy", "Statement", 0, "Action"], "kms:*"),
        check_no_wildcard_actions,
    ),
    (
        "scheduler retries",
        _set(["Resources", SCHEDULE, "Properties", "Target", "RetryPolicy", "MaximumRetryAttempts"], 2),
        check_retries,
    ),
    (
        "scheduler keeps stale events",
        _set(["Resources", SCHEDULE, "Properties", "Target", "RetryPolicy", "MaximumEventAgeInSeconds"], 3600),
        check_retries,
    ),
    (
        "lambda async retries",
        _set(["Resources", INVOKE_CONFIG, "Properties", "MaximumRetryAttempts"], 2),
        check_retries,
    ),
    (
        "no on-failure destination",
        _set(["Resources", INVOKE_CONFIG, "Properties", "DestinationConfig"], {}),
        check_retries,
    ),
    (
        "watchdog ignores missing data",
        _set(["Resources", HEARTBEAT_ALARM, "Properties", "TreatMissingData"], "notBreaching"),
        check_watchdog,
    ),
    (
        "cycle errors alarm on the Lambda's metric",
        _set(["Resources", CYCLE_ERRORS_ALARM, "Properties", "Namespace"], "AWS/Lambda"),
        check_cycle_errors_alarm,
    ),
    (
        "cycle errors alarm to a team topic",
        _set(["Resources", CYCLE_ERRORS_ALARM, "Properties", "AlarmActions"], [{"Ref": TEAM_TOPICS_PARAM}]),
        check_cycle_errors_alarm,
    ),
    (
        "x86_64",
        _set(["Resources", FUNCTION, "Properties", "Architectures"], ["x86_64"]),
        check_function_packaging,
    ),
    (
        "config layer zipped as is (no Makefile build, no validation)",
        _set(["Resources", CONFIG_LAYER, "Metadata"], {}),
        check_config_layer,
    ),
    (
        "function without the config layer",
        _set(["Resources", FUNCTION, "Properties", "Layers"], []),
        check_config_layer,
    ),
    (
        "function reads its config elsewhere",
        _set(["Resources", FUNCTION, "Properties", "Environment", "Variables", "FIREBELL_CONFIG"], "/var/task/config"),
        check_config_layer,
    ),
    (
        "layer for x86_64 only",
        _set(["Resources", CONFIG_LAYER, "Properties", "CompatibleArchitectures"], ["x86_64"]),
        check_config_layer,
    ),
    (
        "cloudwatch may use the key for any account's alarms",
        _set(["Resources", KEY, "Properties", "KeyPolicy", "Statement", 2, "Condition"], {}),
        check_key_service_principals_are_scoped,
    ),
    (
        "cloudwatch scoped to the account but not to this stack's alarms",
        _set(["Resources", KEY, "Properties", "KeyPolicy", "Statement", 2, "Condition"],
             {"StringEquals": {"aws:SourceAccount": {"Ref": "AWS::AccountId"}}}),
        check_key_service_principals_are_scoped,
    ),
    (
        "logs may use the key for any log group",
        _set(["Resources", KEY, "Properties", "KeyPolicy", "Statement", 1, "Condition"], {}),
        check_key_service_principals_are_scoped,
    ),
    (
        "team topics without a pattern",
        _set(["Parameters", TEAM_TOPICS_PARAM, "AllowedPattern"], ""),
        check_team_topics_pattern,
    ),
    (
        "team topics pattern allowing a wildcard",
        _set(["Parameters", TEAM_TOPICS_PARAM, "AllowedPattern"], "^arn:aws:sns:.+$"),
        check_team_topics_pattern,
    ),
    (
        "skip without reason",
        _set(["Resources", FUNCTION, "Metadata", "checkov", "skip", 0, "comment"], ""),
        check_checkov_skips_have_reasons,
    ),
]


@pytest.mark.parametrize("what,mutate,check", NEGATIVE_CASES, ids=[c[0] for c in NEGATIVE_CASES])
def test_checks_catch_regressions(template: dict[str, Any], what: str, mutate, check) -> None:
    mutated = json.loads(json.dumps(template))
    mutate(mutated)
    with pytest.raises(AssertionError):
        check(mutated)
    # ... and the unmutated template still passes the same check.
    check(template)


# ------------------------------------------------- the config layer's build
#
# These run infra/config-layer/Makefile the way `sam build` does (make --makefile
# <Makefile> build-ConfigLayer, from a scratch copy, ARTIFACTS_DIR set) with a stand-in
# for the firebell CLI that records how it was called. The real validation runs in
# scripts/package.sh and every `sam build`.

LAYER_SRC = INFRA / "config-layer"


def _fake_firebell(tmp: Path, rc: int) -> tuple[Path, Path]:
    log = tmp / "firebell.log"
    exe = tmp / "fake-firebell"
    exe.write_text(f'#!/bin/sh\nprintf "%s\\n" "$PWD" "$@" > "{log}"\nexit {rc}\n')
    exe.chmod(0o755)
    return exe, log


def _layer_build(tmp: Path, config_dir: str | None = None, rc: int = 0, pwd: Path | None = None):
    assert shutil.which("make"), "make is required (sam build needs it for the config layer)"
    scratch = tmp / "scratch"
    shutil.copytree(LAYER_SRC, scratch)  # sam build copies the layer source first
    artifacts = tmp / "artifacts"
    exe, log = _fake_firebell(tmp, rc)
    env = {k: v for k, v in os.environ.items() if k not in ("FIREBELL_CONFIG_DIR", "MAKEFLAGS", "MAKELEVEL")}
    env.update(ARTIFACTS_DIR=str(artifacts), FIREBELL=str(exe), PWD=str(pwd or tmp))
    if config_dir is not None:
        env["FIREBELL_CONFIG_DIR"] = config_dir
    proc = subprocess.run(
        ["make", "--makefile", str(LAYER_SRC / "Makefile"), "build-ConfigLayer"],
        cwd=scratch, env=env, capture_output=True, text=True,
    )
    return proc, artifacts / "config", log


def _shipped(config: Path) -> set[str]:
    return {p.relative_to(config).as_posix() for p in config.rglob("*") if p.is_file()}


def test_layer_build_ships_the_examples_config(tmp_path: Path) -> None:
    proc, config, log = _layer_build(tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    examples = REPO / "examples"
    expected = {
        p.relative_to(examples).as_posix()
        for p in examples.rglob("*")
        if p.is_file() and p.suffix in (".yaml", ".yml")
        and p.relative_to(examples).parts[0] not in ("demo", "tests")
    }
    assert {"routing.yaml", "rules/payments.yaml"} <= expected, expected
    assert _shipped(config) == expected
    # validated in place: `firebell validate .` from the staged directory
    assert log.read_text().splitlines() == [str(config.resolve()), "validate", "."]
    for p in config.rglob("*"):
        mode = stat.S_IMODE(p.stat().st_mode)
        assert mode == (0o755 if p.is_dir() else 0o644), (p, oct(mode))


def test_layer_build_ships_only_config_from_the_chosen_dir(tmp_path: Path) -> None:
    src = tmp_path / "conf"
    for rel in (
        "rules/a.yaml", "rules/b.yml", "routing.yaml",           # shipped
        "tests/t.yaml", "rules/tests/u.yaml", "demo/x.yaml",     # tests and demo data
        ".hidden/h.yaml", ".h.yaml", "demo/day.jsonl", "README.md", "notes.txt", "gen.py",
    ):
        (src / rel).parent.mkdir(parents=True, exist_ok=True)
        (src / rel).write_text("rules: []\n")
    # relative to the directory sam build was started in (PWD)
    proc, config, _ = _layer_build(tmp_path, config_dir="conf", pwd=tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert _shipped(config) == {"rules/a.yaml", "rules/b.yml", "routing.yaml"}


def test_layer_build_fails_on_an_invalid_config(tmp_path: Path) -> None:
    proc, config, log = _layer_build(tmp_path, rc=1)
    assert proc.returncode != 0
    assert log.exists(), "validator not called"
    assert "is not valid" in proc.stderr, proc.stderr
    assert not config.exists(), "an invalid config must not be left for packaging"


@pytest.mark.parametrize("what", ["missing", "empty"])
def test_layer_build_fails_without_config(tmp_path: Path, what: str) -> None:
    src = tmp_path / "conf"
    if what == "empty":
        (src / "tests").mkdir(parents=True)
        (src / "tests" / "t.yaml").write_text("tests: []\n")
        (src / "README.md").write_text("hi\n")
    proc, _, log = _layer_build(tmp_path, config_dir=str(src))
    assert proc.returncode != 0
    assert "does not exist" in proc.stderr if what == "missing" else "no config files" in proc.stderr
    assert not log.exists(), "nothing to validate"
