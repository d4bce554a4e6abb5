"""Regression tests for infra/template.yaml: least privilege, retry settings, watchdog,
the AppConfig config delivery (application, environment, profiles, validator, strategy),
the shards (ShardCount > 1: the tick state machine), the sentinel alarms (the evaluator's
prefix, its alarm permissions, the EventBridge fast path), packaging (the config layer
and its Makefile build) and infra/samconfig.toml.

Run by scripts/infra-check.sh (pytest in the infra venv). Each `check_*` function takes
a template rendered for one ShardCount (`render`: conditions evaluated, `Fn::If`
resolved, resources of false conditions dropped, `Ref ShardCount` replaced by the
count) and raises AssertionError on a violation; the `test_*` functions run them on the
real template rendered for every count in SHARD_COUNTS and, for the negative tests, on
mutated copies, proving the checks can fail.
"""

from __future__ import annotations

import copy
import json
import os
import re
import shutil
import stat
import subprocess
import sys
import tomllib
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
# Roles in source accounts the evaluator may assume (`accounts:`), and the condition
# that leaves sts:AssumeRole out entirely when none is listed.
SOURCE_ROLES_PARAM = "SourceAccountRoleArns"
HAS_SOURCE_ROLES = "HasSourceAccountRoles"
FAILURE_QUEUE = "EvaluatorFailureQueue"
SCHEDULE_DLQ = "ScheduleDeadLetterQueue"
LOG_GROUP = "EvaluatorLogGroup"
INVOKE_CONFIG = "EvaluatorInvokeConfig"
HEARTBEAT_ALARM = "HeartbeatAlarm"
CYCLE_ERRORS_ALARM = "CycleErrorsAlarm"
CONFIG_LAYER = "ConfigLayer"
CONFIG_MOUNT = "/opt/config"  # a layer's content is mounted at /opt
ERRORS_ALARM = "ErrorsAlarm"

# Shards (ShardCount > 1): the tick state machine and what exists only with it.
SHARD_COUNT_PARAM = "ShardCount"
SHARDED = "Sharded"  # the condition
TICK = "TickStateMachine"
TICK_ROLE = "TickStateMachineRole"
TICK_LOG_GROUP = "TickLogGroup"
TICK_FAILURES_ALARM = "TickFailuresAlarm"
THROTTLES_ALARM = "EvaluatorThrottlesAlarm"
# Sentinel alarms: the evaluator's prefix and alarm permissions, and the fast path (an
# alarm entering ALARM starts a tick): the rule, and what lets it start the tick.
SENTINEL_RULE = "SentinelEventRule"
SENTINEL_PERMISSION = "SentinelEventPermission"  # unsharded: EventBridge -> evaluator
SENTINEL_ROLE = "SentinelEventRole"  # sharded: EventBridge -> TickStateMachine
UNSHARDED = "Unsharded"  # the condition
SENTINEL_PREFIX_ENV = "FIREBELL_SENTINEL_PREFIX"  # what the Rust side reads
SENTINEL_PREFIX = "${AWS::StackName}.sentinel."  # an Fn::Sub
SENTINEL_ALARM_ARN = "arn:${AWS::Partition}:cloudwatch:${AWS::Region}:${AWS::AccountId}:alarm:" + SENTINEL_PREFIX + "*"
SHARDED_ONLY = {TICK, TICK_ROLE, TICK_LOG_GROUP, TICK_FAILURES_ALARM, THROTTLES_ALARM, SENTINEL_ROLE}
# Every check runs on the template rendered for each of these.
SHARD_COUNTS = [1, 4]
# The state machine's role: invoke the evaluator; Step Functions' documented set for
# logging to CloudWatch Logs; X-Ray tracing.
TICK_LOG_DELIVERY_ACTIONS = {
    "logs:CreateLogDelivery",
    "logs:GetLogDelivery",
    "logs:UpdateLogDelivery",
    "logs:DeleteLogDelivery",
    "logs:ListLogDeliveries",
    "logs:PutResourcePolicy",
    "logs:DescribeResourcePolicies",
    "logs:DescribeLogGroups",
}
TICK_XRAY_ACTIONS = {
    "xray:PutTraceSegments",
    "xray:PutTelemetryRecords",
    "xray:GetSamplingRules",
    "xray:GetSamplingTargets",
}
EXPECTED_TICK_ACTIONS = (
    {"lambda:InvokeFunction", "logs:CreateLogStream", "logs:PutLogEvents"}
    | TICK_LOG_DELIVERY_ACTIONS
    | TICK_XRAY_ACTIONS
)

# AppConfig: the rules config deployed by `firebell push` (names are a contract with
# the Rust side: the functions' env vars, the CLI's --env resolution).
CONFIG_APP = "ConfigApplication"
CONFIG_ENV = "ConfigEnvironment"
CONFIG_PROFILE = "ConfigProfile"
STACK_PROFILE = "StackProfile"
STACK_INFO = "StackInfo"
CONFIG_STRATEGY = "ConfigDeploymentStrategy"
CONFIG_MONITOR_ROLE = "ConfigMonitorRole"
ENVIRONMENT_PARAM = "Environment"
BAKE_PARAM = "ConfigBakeMinutes"
DEPLOY_MINUTES_PARAM = "ConfigDeployMinutes"
STRICT_PARAM = "StrictValidation"
# The alarms a config deployment rolls back on during its bake.
ROLLBACK_ALARMS = {HEARTBEAT_ALARM, ERRORS_ALARM, CYCLE_ERRORS_ALARM}
# The only AppConfig actions a function may call: the data API on its own environment's
# configuration, `arn:...:application/<app>/environment/<env>/configuration/<profile>`.
APPCONFIG_READ_ACTIONS = {"appconfig:StartConfigurationSession", "appconfig:GetLatestConfiguration"}
APPCONFIG_CONFIGURATION_ARN = (
    "arn:${AWS::Partition}:appconfig:${AWS::Region}:${AWS::AccountId}:"
    "application/${ConfigApplication}/environment/${ConfigEnvironment}/configuration/${ConfigProfile}"
)
# Every function that runs the rules config gets these, with these values.
APPCONFIG_ENV_VARS = {
    "FIREBELL_APPCONFIG_APPLICATION": {"Ref": CONFIG_APP},
    "FIREBELL_APPCONFIG_ENVIRONMENT": {"Ref": CONFIG_ENV},
    "FIREBELL_APPCONFIG_PROFILE": {"Ref": CONFIG_PROFILE},
}

VALIDATOR = "ValidatorFunction"
VALIDATOR_ROLE = "ValidatorRole"
VALIDATOR_LOG_GROUP = "ValidatorLogGroup"
VALIDATOR_PERMISSION = "ValidatorPermission"
# The validator writes its logs (and Lambda decrypts its environment); nothing else.
EXPECTED_VALIDATOR_ACTIONS = {"kms:Decrypt", "logs:CreateLogStream", "logs:PutLogEvents"}

# The evaluator's complete permission set. Adding an action is a deliberate change:
# update the template, this set, and infra/README.md together.
EXPECTED_FUNCTION_ACTIONS = {
    "cloudwatch:GetMetricData",
    "cloudwatch:ListMetrics",
    "cloudwatch:DescribeAlarms",
    "cloudwatch:PutMetricAlarm",
    "cloudwatch:TagResource",
    "cloudwatch:DeleteAlarms",
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
    "appconfig:StartConfigurationSession",
    "appconfig:GetLatestConfiguration",
}
EXPECTED_SCHEDULER_ACTIONS = {
    "lambda:InvokeFunction",
    "sqs:SendMessage",
    "kms:Decrypt",
    "kms:GenerateDataKey",
}
# Sharded, the scheduler starts the tick state machine instead of invoking the evaluator
# (it still invokes the reporter).
EXPECTED_SHARDED_SCHEDULER_ACTIONS = EXPECTED_SCHEDULER_ACTIONS | {"states:StartExecution"}
# Which template names each service's statements may point at.
FUNCTION_RESOURCE_SCOPE = {
    "dynamodb": {TABLE},
    "sns": {TEAM_TOPICS_PARAM, OPS_TOPIC},
    "sqs": {FAILURE_QUEUE},
    "kms": {KEY},
    "logs": {LOG_GROUP},
    "appconfig": {CONFIG_APP, CONFIG_ENV, CONFIG_PROFILE},
    "sts": {SOURCE_ROLES_PARAM},
}
# AWS authorises these only on Resource "*" (DescribeAlarms: a listing by name prefix,
# see the template); nothing else may use it.
STAR_RESOURCE_ACTIONS = {"cloudwatch:GetMetricData", "cloudwatch:ListMetrics", "cloudwatch:DescribeAlarms"}
# The evaluator's statements on its sentinel alarms, exactly (check_sentinels).
SENTINEL_STATEMENTS = [
    {
        "Sid": "PutSentinelAlarms",
        "Effect": "Allow",
        "Action": "cloudwatch:PutMetricAlarm",
        "Resource": {"Fn::Sub": SENTINEL_ALARM_ARN},
        # No alarm actions: the role cannot make an alarm publish, stop or terminate.
        "Condition": {"Null": {"cloudwatch:AlarmActions": "true"}},
    },
    {
        "Sid": "TagAndDeleteSentinelAlarms",
        "Effect": "Allow",
        "Action": ["cloudwatch:TagResource", "cloudwatch:DeleteAlarms"],
        "Resource": {"Fn::Sub": SENTINEL_ALARM_ARN},
    },
    {
        "Sid": "FindSentinelAlarms",
        "Effect": "Allow",
        "Action": "cloudwatch:DescribeAlarms",
        "Resource": "*",
    },
]
SENTINEL_WRITE_ACTIONS = {"cloudwatch:PutMetricAlarm", "cloudwatch:TagResource", "cloudwatch:DeleteAlarms"}

REPORTER = "ReporterFunction"
REPORTER_ROLE = "ReporterRole"
REPORTER_SCHEDULE = "ReporterSchedule"
REPORTER_FAILURE_QUEUE = "ReporterFailureQueue"
REPORTER_LOG_GROUP = "ReporterLogGroup"
# The reporter reads the table and the deployed config, and publishes to the team
# topics; nothing else.
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
    "appconfig:StartConfigurationSession",
    "appconfig:GetLatestConfiguration",
}
REPORTER_RESOURCE_SCOPE = {
    "dynamodb": {TABLE},
    "sns": {TEAM_TOPICS_PARAM},
    "sqs": {REPORTER_FAILURE_QUEUE},
    "kms": {KEY},
    "logs": {REPORTER_LOG_GROUP},
    "appconfig": {CONFIG_APP, CONFIG_ENV, CONFIG_PROFILE},
}


# ----------------------------------------------------------------- helpers


@pytest.fixture(scope="module")
def raw_template() -> dict[str, Any]:
    return load_template(TEMPLATE)


@pytest.fixture(scope="module", params=SHARD_COUNTS, ids=lambda n: f"shards={n}")
def template(raw_template: dict[str, Any], request) -> dict[str, Any]:
    """The template as CloudFormation deploys it with ShardCount = the param."""
    return render(raw_template, request.param)


_NO_VALUE = object()


def render(template: dict[str, Any], shards: int, overrides: dict[str, Any] | None = None) -> dict[str, Any]:
    """The template with ShardCount = `shards`, the other parameters at their defaults:
    Conditions evaluated (Fn::Equals, Not, And, Or, Condition), resources and outputs
    whose condition is false dropped (the others lose their Condition), Fn::If resolved
    (AWS::NoValue removed), and every `Ref ShardCount` replaced by the count, which the
    parameter's Default then records (`shard_count`)."""
    t = copy.deepcopy(template)
    values = {name: p.get("Default") for name, p in t["Parameters"].items()}
    values[SHARD_COUNT_PARAM] = shards
    values.update(overrides or {})
    conditions = t.pop("Conditions", {})
    memo: dict[str, bool] = {}

    def operand(x: Any) -> Any:
        if isinstance(x, dict) and set(x) == {"Ref"}:
            return values[x["Ref"]]
        # A CommaDelimitedList joined (its value given as CloudFormation takes it: "a,b").
        if isinstance(x, dict) and set(x) == {"Fn::Join"}:
            sep, items = x["Fn::Join"]
            assert isinstance(items, dict) and set(items) == {"Ref"}, f"cannot evaluate {x!r}"
            return sep.join(str(values[items["Ref"]]).split(","))
        assert not isinstance(x, (dict, list)), f"cannot evaluate {x!r}"
        return x

    def holds(expr: Any) -> bool:
        (fn, arg), = expr.items()
        if fn == "Fn::Equals":
            a, b = (operand(x) for x in arg)
            return str(a) == str(b)
        if fn == "Fn::Not":
            return not holds(arg[0])
        if fn == "Fn::And":
            return all(holds(x) for x in arg)
        if fn == "Fn::Or":
            return any(holds(x) for x in arg)
        if fn == "Condition":
            return cond(arg)
        raise AssertionError(f"unknown condition function {fn}")

    def cond(name: str) -> bool:
        if name not in memo:
            memo[name] = holds(conditions[name])
        return memo[name]

    def walk(node: Any) -> Any:
        if isinstance(node, dict):
            if set(node) == {"Fn::If"}:
                name, yes, no = node["Fn::If"]
                return walk(yes if cond(name) else no)
            if node == {"Ref": "AWS::NoValue"}:
                return _NO_VALUE
            if node == {"Ref": SHARD_COUNT_PARAM}:
                return shards
            out = {k: walk(v) for k, v in node.items()}
            return {k: v for k, v in out.items() if v is not _NO_VALUE}
        if isinstance(node, list):
            return [v for v in (walk(x) for x in node) if v is not _NO_VALUE]
        return node

    for section in ("Resources", "Outputs"):
        kept = {}
        for name, item in t.get(section, {}).items():
            if "Condition" in item and not cond(item["Condition"]):
                continue
            item = {k: v for k, v in item.items() if k != "Condition"}
            kept[name] = walk(item)
        t[section] = kept
    t["Parameters"][SHARD_COUNT_PARAM]["Default"] = shards
    for name, value in (overrides or {}).items():
        t["Parameters"][name]["Default"] = value
    return t


def shard_count(template: dict[str, Any]) -> int:
    """The ShardCount a template was rendered with (`render`)."""
    n = template["Parameters"][SHARD_COUNT_PARAM]["Default"]
    assert isinstance(n, int) and 1 <= n <= 64, n
    return n


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
        # A conditional policy (`!If [cond, policy, !Ref AWS::NoValue]`) counts with
        # every branch that holds one: the most the role may be granted.
        branches = policy["Fn::If"][1:] if "Fn::If" in policy else [policy]
        for branch in branches:
            if "PolicyDocument" in branch:
                found.extend(statements(branch["PolicyDocument"]))
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


def evaluator_name(template: dict[str, Any]) -> Any:
    """The evaluator's FunctionName expression: the alarms' Function dimensions repeat it
    (a !Ref would close a cycle through ConfigEnvironment's monitors)."""
    name = props(template, FUNCTION).get("FunctionName")
    assert name is not None, f"{FUNCTION} needs an explicit FunctionName (the alarms name it)"
    assert not refs(name), f"{FUNCTION} FunctionName must not depend on other resources: {name!r}"
    return name


# Sample deploy-time values, to evaluate the expressions that build strings.
SAMPLE_TEAM_TOPICS = [
    "arn:aws:sns:us-east-1:123456789012:payments-oncall",
    "arn:aws:sns:us-east-1:123456789012:checkout-oncall.fifo",
]
SAMPLE_OPS_TOPIC = "arn:aws:sns:us-east-1:123456789012:firebell-staging-OpsTopic-AbC123"
SAMPLE_VALUES: dict[str, Any] = {
    TEAM_TOPICS_PARAM: SAMPLE_TEAM_TOPICS,
    OPS_TOPIC: SAMPLE_OPS_TOPIC,
    ENVIRONMENT_PARAM: "staging",
    STRICT_PARAM: "true",
    "AWS::Partition": "aws",
    "AWS::Region": "us-east-1",
    "AWS::AccountId": "123456789012",
    "AWS::StackName": "firebell-staging",
    "EvaluatorFunction.Arn": "arn:aws:lambda:us-east-1:123456789012:function:firebell-staging-evaluator",
}


def resolve(node: Any, values: dict[str, Any] = SAMPLE_VALUES) -> Any:
    """Evaluate Ref, Fn::GetAtt, Fn::Join and Fn::Sub with `values` (KeyError on a name
    without a value)."""
    if isinstance(node, list):
        return [resolve(x, values) for x in node]
    if not isinstance(node, dict):
        return node
    if len(node) == 1:
        (fn, arg), = node.items()
        if fn == "Ref":
            return values[arg]
        if fn == "Fn::GetAtt":
            return values[arg if isinstance(arg, str) else ".".join(arg)]
        if fn == "Fn::Join":
            sep, items = arg
            items = resolve(items, values)
            assert all(isinstance(i, str) for i in items), items
            return sep.join(items)
        if fn == "Fn::Sub":
            text, extra = (arg, {}) if isinstance(arg, str) else arg
            local = {**values, **{k: resolve(v, values) for k, v in extra.items()}}

            def var(m: re.Match[str]) -> str:
                value = local[m.group(1)]
                assert isinstance(value, str), (m.group(1), value)
                return value

            return re.sub(r"\$\{([^}!]+)\}", var, text)
    return {k: resolve(v, values) for k, v in node.items()}


def env_vars(template: dict[str, Any], function: str) -> dict[str, Any]:
    return props(template, function).get("Environment", {}).get("Variables", {})


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
    # sts:AssumeRole only when source-account roles are listed (check_source_account_roles).
    expected = EXPECTED_FUNCTION_ACTIONS | ({"sts:AssumeRole"} if source_roles(template) else set())
    assert got == expected, (
        f"function role actions differ: extra {sorted(got - expected)}, "
        f"missing {sorted(expected - got)}"
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
            # Reads on "*"; writes on the sentinel alarms only (check_sentinels).
            if set(acts) <= STAR_RESOURCE_ACTIONS:
                assert resources == ["*"], s
            else:
                assert set(acts) <= SENTINEL_WRITE_ACTIONS, f"cloudwatch actions: {acts}"
                assert resources == [{"Fn::Sub": SENTINEL_ALARM_ARN}], s
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

    # "*" resources only for the CloudWatch reads.
    for s in stmts:
        if "*" in as_list(s["Resource"]):
            assert set(actions(s)) <= STAR_RESOURCE_ACTIONS, s


SAMPLE_SOURCE_ROLES = "arn:aws:iam::111122223333:role/firebell-read,arn:aws:iam::444455556666:role/ops/firebell-read"


def source_roles(template: dict[str, Any]) -> str:
    """The SourceAccountRoleArns a template was rendered with (`render`)."""
    return str(template["Parameters"][SOURCE_ROLES_PARAM].get("Default", ""))


def with_source_roles(raw: dict[str, Any]) -> dict[str, Any]:
    return render(raw, 1, {SOURCE_ROLES_PARAM: SAMPLE_SOURCE_ROLES})


def check_source_account_roles(template: dict[str, Any]) -> None:
    """A rendered template: sts:AssumeRole on exactly the listed source-account roles,
    none at all when the list is empty (the default); no other role assumes roles."""
    param = template["Parameters"][SOURCE_ROLES_PARAM]
    # A String checked whole: a CommaDelimitedList checks each element, and an
    # empty one (a trailing comma) would pass as "" and become a "" Resource.
    assert param["Type"] == "String", param
    pattern = re.compile(param["AllowedPattern"])
    one = "arn:aws:iam::111122223333:role/firebell-read"
    for ok in ["", one, "arn:aws-cn:iam::111122223333:role/ops/r", SAMPLE_SOURCE_ROLES]:
        assert pattern.fullmatch(ok), ok
    for bad in ["*", "arn:aws:iam::111122223333:role/*", "arn:aws:iam::*:role/x",
                "arn:aws:iam::111122223333:user/x", "arn:aws:sts::111122223333:role/x",
                one + ",", "," + one, one + ",," + one, ",", one + ", " + one]:
        assert not pattern.fullmatch(bad), bad
    assume = [s for s in role_statements(template, FUNCTION_ROLE) if any(a.startswith("sts:") for a in actions(s))]
    if source_roles(template) == "":
        assert assume == [], f"sts without source-account roles: {assume}"
    else:
        assert len(assume) == 1, assume
        assert actions(assume[0]) == ["sts:AssumeRole"], assume
        assert assume[0]["Resource"] == {"Fn::Split": [",", {"Ref": SOURCE_ROLES_PARAM}]}, assume
        assert "Condition" not in assume[0], assume
    for role in stack_roles(template) - {FUNCTION_ROLE}:
        for s in role_statements(template, role):
            assert not any(a.startswith("sts:") for a in actions(s)), (role, s)


def check_source_roles_conditional(raw: dict[str, Any]) -> None:
    """The raw template: the policy granting sts:AssumeRole exists only under
    HasSourceAccountRoles (the list not empty); nothing else mentions sts."""
    param = raw["Parameters"][SOURCE_ROLES_PARAM]
    assert param.get("Default") == "", param
    cond = raw["Conditions"][HAS_SOURCE_ROLES]
    assert cond == {"Fn::Not": [{"Fn::Equals": [{"Ref": SOURCE_ROLES_PARAM}, ""]}]}, cond
    policies = props(raw, FUNCTION_ROLE)["Policies"]
    holders = [p for p in policies if "sts:" in json.dumps(p)]
    assert len(holders) == 1, holders
    branch = holders[0].get("Fn::If")
    assert branch and branch[0] == HAS_SOURCE_ROLES and branch[2] == {"Ref": "AWS::NoValue"}, holders
    assert [actions(s) for s in statements(branch[1]["PolicyDocument"])] == [["sts:AssumeRole"]], branch


def check_scheduler_role(template: dict[str, Any]) -> None:
    target = props(template, SCHEDULE)["Target"]
    assert refs(target["RoleArn"]) == {SCHEDULER_ROLE}
    trust = statements(props(template, SCHEDULER_ROLE)["AssumeRolePolicyDocument"])
    assert [s["Principal"] for s in trust] == [{"Service": "scheduler.amazonaws.com"}], trust
    stmts = role_statements(template, SCHEDULER_ROLE)
    got = {a for s in stmts for a in actions(s)}
    sharded = shard_count(template) > 1
    expected = EXPECTED_SHARDED_SCHEDULER_ACTIONS if sharded else EXPECTED_SCHEDULER_ACTIONS
    assert got == expected, f"scheduler role actions: {sorted(got)}"
    # Sharded, it starts the tick state machine and no longer invokes the evaluator.
    scope = {
        "lambda": {REPORTER} if sharded else {FUNCTION, REPORTER},
        "states": {TICK},
        "sqs": {SCHEDULE_DLQ},
        "kms": {KEY},
    }
    invoked = {n for s in stmts if "lambda:InvokeFunction" in actions(s) for n in refs(s["Resource"])}
    assert invoked == scope["lambda"], f"the scheduler invokes {sorted(invoked)}"
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
    # One invocation per shard at once (the deliver stage runs after the shards).
    assert p["ReservedConcurrentExecutions"] == shard_count(template)
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
    # The evaluator itself, or sharded the tick state machine; the same retry policy
    # and DLQ either way.
    assert refs(target["Arn"]) == ({TICK} if shard_count(template) > 1 else {FUNCTION})
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
    assert a["Dimensions"][0]["Value"] == evaluator_name(template), "heartbeat of another function"
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
    errors = [p for p in alarms if (p.get("Namespace"), p.get("MetricName")) == ("AWS/Lambda", "Errors")]
    assert len(errors) == 1 and errors[0] is props(template, ERRORS_ALARM), "Errors alarm"
    assert [d["Name"] for d in errors[0]["Dimensions"]] == ["FunctionName"]
    assert errors[0]["Dimensions"][0]["Value"] == evaluator_name(template), "Errors of another function"
    check_cycle_errors_alarm(template)
    queues = {q for p in alarms if p.get("Namespace") == "AWS/SQS" for q in refs(p["Dimensions"])}
    assert queues == {FAILURE_QUEUE, SCHEDULE_DLQ}, f"queue depth alarms cover {queues}"
    for p in alarms:
        assert refs(p["AlarmActions"]) == {OPS_TOPIC}, p
        assert refs(p["OKActions"]) == {OPS_TOPIC}, p
    names = {n for n, r in template["Resources"].items() if r["Type"] == "AWS::CloudWatch::Alarm"}
    always = {HEARTBEAT_ALARM, ERRORS_ALARM, CYCLE_ERRORS_ALARM, "FailureQueueDepthAlarm", "ScheduleDlqDepthAlarm"}
    sharded = {TICK_FAILURES_ALARM, THROTTLES_ALARM}
    assert names == (always | sharded if shard_count(template) > 1 else always), sorted(names)


def check_cycle_errors_alarm(template: dict[str, Any]) -> None:
    """The second line behind in-engine self-monitoring: the evaluator's own
    `Firebell/Errors{Function}` EMF metric pages the ops topic."""
    a = props(template, CYCLE_ERRORS_ALARM)
    assert (a["Namespace"], a["MetricName"]) == ("Firebell", "Errors"), "Firebell/Errors"
    assert [d["Name"] for d in a["Dimensions"]] == ["Function"]
    assert a["Dimensions"][0]["Value"] == evaluator_name(template)
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
    groups = {n for n, r in template["Resources"].items() if r["Type"] == "AWS::Logs::LogGroup"}
    expected = {LOG_GROUP, REPORTER_LOG_GROUP, VALIDATOR_LOG_GROUP}
    assert groups == (expected | {TICK_LOG_GROUP} if shard_count(template) > 1 else expected), groups
    # CloudWatch Logs may use the key for exactly this stack's log groups.
    logs_stmt = [
        s for s in statements(props(template, KEY)["KeyPolicy"])
        if s.get("Principal", {}).get("Service") == {"Fn::Sub": "logs.${AWS::Region}.amazonaws.com"}
    ]
    assert len(logs_stmt) == 1, logs_stmt
    allowed_groups = logs_stmt[0]["Condition"]["ArnEquals"]["kms:EncryptionContext:aws:logs:arn"]
    for g in groups:
        gp = props(template, g)
        assert refs(gp["KmsKeyId"]) == {KEY}, g
        assert gp["RetentionInDays"] > 0, g
        arn = {"Fn::Sub": "arn:${AWS::Partition}:logs:${AWS::Region}:${AWS::AccountId}:log-group:"
               + gp["LogGroupName"]["Fn::Sub"]}
        assert arn in allowed_groups, f"the key policy does not let CloudWatch Logs encrypt {g}"


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


def stack_roles(template: dict[str, Any]) -> set[str]:
    """The IAM roles the stack has with its ShardCount."""
    roles = {FUNCTION_ROLE, SCHEDULER_ROLE, REPORTER_ROLE, VALIDATOR_ROLE, CONFIG_MONITOR_ROLE}
    return roles | {TICK_ROLE, SENTINEL_ROLE} if shard_count(template) > 1 else roles


def check_star_resources(template: dict[str, Any]) -> None:
    """Across every role of the stack: a "*" in a Resource only for the actions AWS
    authorises on nothing else: the evaluator's CloudWatch reads (metrics, and the
    sentinel alarms' listing), and the tick state machine's log delivery and X-Ray
    actions; the stack has exactly these roles."""
    roles = {n for n, r in template["Resources"].items() if r["Type"] == "AWS::IAM::Role"}
    assert roles == stack_roles(template), roles
    star_actions = {FUNCTION_ROLE: STAR_RESOURCE_ACTIONS, TICK_ROLE: TICK_LOG_DELIVERY_ACTIONS | TICK_XRAY_ACTIONS}
    for role in roles:
        for s in role_statements(template, role):
            assert "NotResource" not in s, (role, s)
            if role == FUNCTION_ROLE and as_list(s.get("Resource")) == [{"Fn::Sub": SENTINEL_ALARM_ARN}]:
                # The one prefix wildcard: the evaluator's own sentinel alarms.
                assert set(actions(s)) <= SENTINEL_WRITE_ACTIONS, s
                continue
            if any("*" in json.dumps(r) for r in as_list(s.get("Resource"))):
                assert set(actions(s)) <= star_actions.get(role, set()), (
                    f"{role}: {actions(s)} on {s['Resource']!r}"
                )


def check_reads_deployed_config(template: dict[str, Any]) -> None:
    """The evaluator and the reporter may start a configuration session and get the
    latest configuration, only of their environment's configuration profile; nothing
    else of AppConfig."""
    for role in (FUNCTION_ROLE, REPORTER_ROLE):
        stmts = [s for s in role_statements(template, role) if any(a.startswith("appconfig:") for a in actions(s))]
        assert len(stmts) == 1, f"{role}: one AppConfig statement, got {stmts}"
        s = stmts[0]
        assert s.get("Sid") == "ReadDeployedConfig", s
        assert s.get("Effect") == "Allow" and "Condition" not in s, s
        assert set(actions(s)) == APPCONFIG_READ_ACTIONS and len(actions(s)) == 2, f"{role}: {actions(s)}"
        resources = as_list(s["Resource"])
        assert len(resources) == 1, f"{role}: {resources}"
        arn = resources[0]
        assert isinstance(arn, dict) and set(arn) == {"Fn::Sub"}, f"{role}: {arn!r}"
        text = arn["Fn::Sub"]
        assert isinstance(text, str) and "*" not in text, f"{role}: wildcard in {text!r}"
        assert refs(arn) == {CONFIG_APP, CONFIG_ENV, CONFIG_PROFILE}, refs(arn)
        assert text == APPCONFIG_CONFIGURATION_ARN, f"{role}: {text!r}"


def check_functions_config_env(template: dict[str, Any]) -> None:
    """The evaluator and the reporter read the deployed config (the AppConfig names), fall
    back to the bundled layer, and know the topics the stack allows; the validator gets
    the same topics and the strictness, nothing of AppConfig."""
    allowed = env_vars(template, FUNCTION).get("FIREBELL_ALLOWED_TOPICS")
    assert allowed is not None, "FIREBELL_ALLOWED_TOPICS missing"
    assert resolve(allowed) == ",".join(SAMPLE_TEAM_TOPICS + [SAMPLE_OPS_TOPIC]), resolve(allowed)
    for fn in (FUNCTION, REPORTER):
        env = env_vars(template, fn)
        for name, value in APPCONFIG_ENV_VARS.items():
            assert env.get(name) == value, f"{fn}: {name} = {env.get(name)!r}, expected {value!r}"
        assert env.get("FIREBELL_ALLOWED_TOPICS") == allowed, f"{fn}: FIREBELL_ALLOWED_TOPICS differs"
        assert env.get("FIREBELL_CONFIG") == CONFIG_MOUNT, f"{fn}: the bundled fallback"
        assert [refs(x) for x in props(template, fn).get("Layers", [])] == [{CONFIG_LAYER}], fn
    # The evaluator looks again once a rollout can no longer roll back.
    env = env_vars(template, FUNCTION)
    assert env.get("FIREBELL_APPCONFIG_DEPLOY_MINUTES") == {"Ref": DEPLOY_MINUTES_PARAM}, env
    assert env.get("FIREBELL_APPCONFIG_BAKE_MINUTES") == {"Ref": BAKE_PARAM}, env
    env = env_vars(template, VALIDATOR)
    assert env.get("FIREBELL_ALLOWED_TOPICS") == allowed, "validator: FIREBELL_ALLOWED_TOPICS differs"
    assert env.get("FIREBELL_STRICT") == {"Ref": STRICT_PARAM}, env.get("FIREBELL_STRICT")
    assert set(env) == {"FIREBELL_ALLOWED_TOPICS", "FIREBELL_STRICT", "RUST_LOG"}, sorted(env)
    assert not props(template, VALIDATOR).get("Layers"), "the validator checks what it is given, no layer"


def check_validator(template: dict[str, Any]) -> None:
    """The AppConfig Lambda validator: built like the evaluator, its own role with its
    own logs only, invoked by AppConfig only (this account, this application)."""
    fn = resource(template, VALIDATOR)
    assert fn["Type"] == "AWS::Serverless::Function"
    assert fn["Metadata"]["BuildMethod"] == "rust-cargolambda"
    assert fn["Metadata"]["BuildProperties"]["Binary"] == "validator"
    p = fn["Properties"]
    assert p["CodeUri"] == props(template, FUNCTION)["CodeUri"] == "../"
    assert (p["Runtime"], p["Architectures"], p["Handler"]) == ("provided.al2023", ["arm64"], "bootstrap")
    assert (p["MemorySize"], p["Timeout"]) == (256, 60)
    assert not p.get("Events"), "no schedule, no event source: AppConfig invokes it"
    assert refs(p["KmsKeyArn"]) == {KEY}
    assert refs(p["LoggingConfig"]["LogGroup"]) == {VALIDATOR_LOG_GROUP}
    assert props(template, VALIDATOR_LOG_GROUP)["LogGroupName"] == {"Fn::Sub": "/firebell/${AWS::StackName}/validator"}

    assert refs(p["Role"]) == {VALIDATOR_ROLE}
    trust = statements(props(template, VALIDATOR_ROLE)["AssumeRolePolicyDocument"])
    assert [s["Principal"] for s in trust] == [{"Service": "lambda.amazonaws.com"}], trust
    stmts = role_statements(template, VALIDATOR_ROLE)
    got = {a for s in stmts for a in actions(s)}
    assert got == EXPECTED_VALIDATOR_ACTIONS, (
        f"validator role actions differ: extra {sorted(got - EXPECTED_VALIDATOR_ACTIONS)}, "
        f"missing {sorted(EXPECTED_VALIDATOR_ACTIONS - got)}"
    )
    for s in stmts:
        assert s.get("Effect") == "Allow", s
        services = {a.split(":", 1)[0] for a in actions(s)}
        assert len(services) == 1, f"one service per statement: {s}"
        service = services.pop()
        for r in as_list(s["Resource"]):
            assert r != "*" and isinstance(r, dict), f"{actions(s)}: literal/star resource {r!r}"
            expected = {"kms": {KEY}, "logs": {VALIDATOR_LOG_GROUP}}[service]
            assert refs(r) == expected, f"{actions(s)} on {sorted(refs(r))}"
        if service == "kms":
            assert s.get("Condition") == {
                "StringEquals": {"kms:ViaService": {"Fn::Sub": "lambda.${AWS::Region}.amazonaws.com"}}
            }, f"the stack key only through Lambda (environment variables): {s.get('Condition')}"

    # Who may invoke it: AppConfig, for this account's application, nobody else.
    # (Unsharded, EventBridge may invoke the evaluator: check_sentinels.)
    perms = {
        n: r["Properties"] for n, r in template["Resources"].items()
        if r["Type"] == "AWS::Lambda::Permission"
    }
    expected_perms = {VALIDATOR_PERMISSION} | ({SENTINEL_PERMISSION} if shard_count(template) == 1 else set())
    assert set(perms) == expected_perms, sorted(perms)
    assert not refs(perms.get(SENTINEL_PERMISSION, {}).get("FunctionName")) & {VALIDATOR}
    perm = perms[VALIDATOR_PERMISSION]
    assert refs(perm["FunctionName"]) == {VALIDATOR}
    assert perm["Action"] == "lambda:InvokeFunction"
    assert perm["Principal"] == "appconfig.amazonaws.com", perm["Principal"]
    assert perm.get("SourceAccount") == {"Ref": "AWS::AccountId"}, perm.get("SourceAccount")
    source = perm.get("SourceArn", {})
    assert refs(source) == {CONFIG_APP}, f"SourceArn must name this stack's application: {source!r}"
    assert resolve(source, {**SAMPLE_VALUES, CONFIG_APP: "abc1234"}) == (
        "arn:aws:appconfig:us-east-1:123456789012:application/abc1234*"
    ), source
    # Nothing schedules or otherwise invokes it.
    for name, r in template["Resources"].items():
        if r["Type"] == "AWS::Scheduler::Schedule":
            assert VALIDATOR not in refs(r["Properties"]["Target"]), name


def check_appconfig(template: dict[str, Any]) -> None:
    """Application, environment (rollback on the watchdog and error alarms), the config
    profile with its Lambda validator, the stack profile with the topics, the strategy;
    and no deployment (the bundled layer until the first `firebell push`)."""
    app = props(template, CONFIG_APP)
    assert resource(template, CONFIG_APP)["Type"] == "AWS::AppConfig::Application"
    assert app["Name"] == {"Fn::Sub": "firebell-${Environment}"}, app["Name"]

    env = props(template, CONFIG_ENV)
    assert resource(template, CONFIG_ENV)["Type"] == "AWS::AppConfig::Environment"
    assert env["ApplicationId"] == {"Ref": CONFIG_APP}
    assert env["Name"] == {"Ref": ENVIRONMENT_PARAM}
    monitored = set()
    for m in env.get("Monitors", []):
        assert set(m) == {"AlarmArn", "AlarmRoleArn"}, m
        assert m["AlarmArn"] == {"Fn::GetAtt": [m["AlarmArn"]["Fn::GetAtt"][0], "Arn"]}, m
        assert m["AlarmRoleArn"] == {"Fn::GetAtt": [CONFIG_MONITOR_ROLE, "Arn"]}, m
        monitored |= refs(m["AlarmArn"])
    assert monitored == ROLLBACK_ALARMS, f"rollback alarms: {sorted(monitored)}"
    for alarm in ROLLBACK_ALARMS:
        assert resource(template, alarm)["Type"] == "AWS::CloudWatch::Alarm", alarm

    # The monitor role: AppConfig only, DescribeAlarms on the monitored alarms only.
    trust = statements(props(template, CONFIG_MONITOR_ROLE)["AssumeRolePolicyDocument"])
    assert [s["Principal"] for s in trust] == [{"Service": "appconfig.amazonaws.com"}], trust
    assert all(actions(s) == ["sts:AssumeRole"] for s in trust), trust
    stmts = role_statements(template, CONFIG_MONITOR_ROLE)
    assert {a for s in stmts for a in actions(s)} == {"cloudwatch:DescribeAlarms"}, stmts
    described = set()
    for s in stmts:
        assert s.get("Effect") == "Allow", s
        for r in as_list(s["Resource"]):
            assert r != "*" and isinstance(r, dict) and "Fn::GetAtt" in r, f"DescribeAlarms on {r!r}"
            described |= refs(r)
    assert described == ROLLBACK_ALARMS, f"DescribeAlarms on {sorted(described)}"

    profile = props(template, CONFIG_PROFILE)
    assert resource(template, CONFIG_PROFILE)["Type"] == "AWS::AppConfig::ConfigurationProfile"
    assert profile["ApplicationId"] == {"Ref": CONFIG_APP}
    assert (profile["Name"], profile["LocationUri"], profile["Type"]) == ("config", "hosted", "AWS.Freeform")
    assert profile.get("Validators") == [
        {"Type": "LAMBDA", "Content": {"Fn::GetAtt": [VALIDATOR, "Arn"]}}
    ], profile.get("Validators")

    stack = props(template, STACK_PROFILE)
    assert stack["ApplicationId"] == {"Ref": CONFIG_APP}
    assert (stack["Name"], stack["LocationUri"], stack["Type"]) == ("stack", "hosted", "AWS.Freeform")
    info = resource(template, STACK_INFO)
    assert info["Type"] == "AWS::AppConfig::HostedConfigurationVersion"
    ip = info["Properties"]
    assert ip["ApplicationId"] == {"Ref": CONFIG_APP}
    assert ip["ConfigurationProfileId"] == {"Ref": STACK_PROFILE}
    assert ip["ContentType"] == "application/json"
    assert {TEAM_TOPICS_PARAM, OPS_TOPIC, ENVIRONMENT_PARAM, STRICT_PARAM} <= refs(ip["Content"]), ip["Content"]
    content = json.loads(resolve(ip["Content"]))
    # `strict`: `firebell push` / `validate --env` lint as strictly as the validator.
    assert content == {
        "format": "firebell.stack/v1",
        "environment": "staging",
        "strict": True,
        "topics": SAMPLE_TEAM_TOPICS + [SAMPLE_OPS_TOPIC],
    }, content
    lax = json.loads(resolve(ip["Content"], {**SAMPLE_VALUES, STRICT_PARAM: "false"}))
    assert lax["strict"] is False, lax
    one = json.loads(resolve(ip["Content"], {**SAMPLE_VALUES, TEAM_TOPICS_PARAM: SAMPLE_TEAM_TOPICS[:1]}))
    assert one["topics"] == SAMPLE_TEAM_TOPICS[:1] + [SAMPLE_OPS_TOPIC], one

    strategy = props(template, CONFIG_STRATEGY)
    assert resource(template, CONFIG_STRATEGY)["Type"] == "AWS::AppConfig::DeploymentStrategy"
    assert strategy["Name"] == {"Fn::Sub": "firebell-${Environment}"}, strategy["Name"]
    assert strategy["FinalBakeTimeInMinutes"] == {"Ref": BAKE_PARAM}, strategy.get("FinalBakeTimeInMinutes")
    assert strategy["DeploymentDurationInMinutes"] == {"Ref": DEPLOY_MINUTES_PARAM}
    assert (strategy["GrowthFactor"], strategy["GrowthType"], strategy["ReplicateTo"]) == (100, "LINEAR", "NONE")

    kinds = {r["Type"] for r in template["Resources"].values()}
    assert "AWS::AppConfig::Deployment" not in kinds, "no initial deployment: the layer is the fallback"
    appconfig = sorted(n for n, r in template["Resources"].items() if r["Type"].startswith("AWS::AppConfig::"))
    assert appconfig == sorted([CONFIG_APP, CONFIG_ENV, CONFIG_PROFILE, STACK_PROFILE, STACK_INFO, CONFIG_STRATEGY])

    params = template["Parameters"]
    bake = params[BAKE_PARAM]
    assert (bake["Type"], bake["Default"], bake["MinValue"], bake["MaxValue"]) == ("Number", 10, 0, 1440), bake
    dur = params[DEPLOY_MINUTES_PARAM]
    assert (dur["Type"], dur["Default"], dur["MinValue"], dur["MaxValue"]) == ("Number", 0, 0, 1440), dur
    strict = params[STRICT_PARAM]
    assert (strict["Type"], strict["Default"], strict["AllowedValues"]) == ("String", "true", ["true", "false"])
    outputs = template["Outputs"]
    for name, target in {
        "ConfigApplicationId": {"Ref": CONFIG_APP},
        "ConfigEnvironmentId": {"Ref": CONFIG_ENV},
        "ConfigProfileId": {"Ref": CONFIG_PROFILE},
        "ConfigDeploymentStrategyId": {"Ref": CONFIG_STRATEGY},
        "ValidatorFunctionArn": {"Fn::GetAtt": [VALIDATOR, "Arn"]},
    }.items():
        assert outputs.get(name, {}).get("Value") == target, (name, outputs.get(name))


ENVIRONMENT_OK = ["prod", "staging", "dev-2", "a", "a" + "b" * 30]
ENVIRONMENT_BAD = ["", "Prod", "2prod", "-prod", "prod_1", "pr od", "a" + "b" * 31, "prod\n", "firebell*"]


def check_environment_pattern(template: dict[str, Any]) -> None:
    """Environment names the AppConfig application and strategy (firebell-<name>) and
    the environment: lowercase, at most 31 characters."""
    p = template["Parameters"][ENVIRONMENT_PARAM]
    assert (p["Type"], p["Default"]) == ("String", "prod"), p
    pattern = p.get("AllowedPattern")
    assert pattern, "Environment has no AllowedPattern"
    for name in ENVIRONMENT_OK:
        assert re.fullmatch(pattern, name), (pattern, name)
    for name in ENVIRONMENT_BAD:
        assert not re.fullmatch(pattern, name), (pattern, name)


# ------------------------------------------------------------------ shards


def resolve_substitutions(text: str, substitutions: dict[str, Any]) -> str:
    """A state machine definition's `${Name}` placeholders replaced by their
    DefinitionSubstitutions values (evaluated with SAMPLE_VALUES), as CloudFormation does."""

    def var(m: re.Match[str]) -> str:
        name = m.group(1)
        assert name in substitutions, f"no substitution for ${{{name}}}"
        value = resolve(substitutions[name])
        assert isinstance(value, (str, int)) and not isinstance(value, bool), (name, value)
        return str(value)

    return re.sub(r"\$\{([A-Za-z0-9_]+)\}", var, text)


def tick_definition(template: dict[str, Any]) -> dict[str, Any]:
    """The tick state machine's definition as Step Functions receives it."""
    p = props(template, TICK)
    return json.loads(resolve_substitutions(json.dumps(p["Definition"]), p.get("DefinitionSubstitutions", {})))


def _path(path: str, data: Any, ctx: dict[str, Any]) -> Any:
    if path.startswith("$$."):
        node: Any = ctx
        parts = path[3:].split(".")
    else:
        assert path == "$" or path.startswith("$."), path
        node = data
        parts = path[2:].split(".") if path != "$" else []
    for part in parts:
        node = node[part]  # KeyError: States.Runtime in Step Functions
    return node


def _value(template_node: Any, data: Any, ctx: dict[str, Any]) -> Any:
    """Parameters / ItemSelector / ResultSelector: `key.$` entries by path or by the
    intrinsics the tick uses (States.ArrayRange, States.ArrayLength)."""
    if not isinstance(template_node, dict):
        return template_node
    out = {}
    for key, v in template_node.items():
        if not key.endswith(".$"):
            out[key] = _value(v, data, ctx)
            continue
        m = re.fullmatch(r"States\.ArrayRange\((\d+), (\d+), (\d+)\)", v)
        if m:
            lo, hi, step = map(int, m.groups())
            result: Any = list(range(lo, hi + 1, step))
        elif v.startswith("States.ArrayLength("):
            result = len(_path(v[len("States.ArrayLength("):-1], data, ctx))
        else:
            result = _path(v, data, ctx)
        out[key[:-2]] = result
    return out


def _with_result(data: Any, result_path: str | None, result: Any) -> Any:
    if result_path is None:
        return data
    if result_path == "$":
        return result
    assert result_path.startswith("$.") and "." not in result_path[2:], result_path
    return {**data, result_path[2:]: result}


class TaskFailed(Exception):
    pass


def run_states(machine: dict[str, Any], data: Any, invoke, ctx: dict[str, Any]) -> Any:
    """Runs the subset of the Amazon States Language (JSONPath) the tick uses:
    Pass (Parameters), Task (lambda:invoke: Parameters, ResultSelector, ResultPath,
    Catch), Map (ItemsPath, ItemSelector, an inline ItemProcessor), Next/End.
    `invoke(function, payload)` stands in for Lambda: it returns the payload the
    function returned or raises TaskFailed(error_name)."""
    name = machine["StartAt"]
    while True:
        state = machine["States"][name]
        kind = state["Type"]
        assert "Retry" not in state, f"{name}: retries"
        if kind == "Pass":
            out = _value(state["Parameters"], data, ctx) if "Parameters" in state else data
        elif kind == "Task":
            assert state["Resource"].endswith(":states:::lambda:invoke"), state["Resource"]
            params = _value(state["Parameters"], data, ctx)
            try:
                payload = invoke(params["FunctionName"], params["Payload"])
            except TaskFailed as e:
                catcher = next(
                    (c for c in state.get("Catch", []) if "States.ALL" in c["ErrorEquals"] or str(e) in c["ErrorEquals"]),
                    None,
                )
                if catcher is None:
                    raise
                data = _with_result(data, catcher.get("ResultPath", "$"), {"Error": str(e), "Cause": "test"})
                name = catcher["Next"]
                continue
            result = {"Payload": payload, "StatusCode": 200}
            if "ResultSelector" in state:
                result = _value(state["ResultSelector"], result, ctx)
            out = _with_result(data, state.get("ResultPath", "$"), result)
        elif kind == "Map":
            items = _path(state["ItemsPath"], data, ctx)
            processor = state["ItemProcessor"]
            assert processor["ProcessorConfig"]["Mode"] == "INLINE"
            results = []
            for i, item in enumerate(items):
                item_ctx = {**ctx, "Map": {"Item": {"Index": i, "Value": item}}}
                item_input = _value(state["ItemSelector"], data, item_ctx) if "ItemSelector" in state else item
                results.append(run_states(processor, item_input, invoke, item_ctx))
            out = _with_result(data, state.get("ResultPath", "$"), results)
        else:
            raise AssertionError(f"{name}: state type {kind} not simulated")
        if state.get("End"):
            return out
        data, name = out, state["Next"]


TICK_INPUT = {
    "source": "firebell.schedule",
    "scheduled_time": "2026-01-01T12:34:00Z",
    "execution_id": "a1b2c3",
    "attempt": "1",
}


def simulate_tick(template: dict[str, Any], fail: set[Any] = frozenset()) -> list[dict[str, Any]]:
    """The evaluator invocations of one tick, in order, with the shards of `fail` (and
    "deliver") raising a Lambda error. Raises TaskFailed when the execution fails."""
    calls: list[dict[str, Any]] = []

    def invoke(function: str, payload: dict[str, Any]) -> dict[str, Any]:
        assert function == SAMPLE_VALUES["EvaluatorFunction.Arn"], function
        calls.append(payload)
        if payload.get("shard", payload.get("stage")) in fail:
            raise TaskFailed("Lambda.Unknown")
        return {"status": "ok"}

    try:
        run_states(tick_definition(template), TICK_INPUT, invoke, {})
    except TaskFailed:
        calls.append({"execution": "failed"})
    return calls


def shard_payload(k: int, n: int) -> dict[str, Any]:
    return {"source": "firebell.schedule", "scheduled_time": TICK_INPUT["scheduled_time"],
            "execution_id": TICK_INPUT["execution_id"], "shard": k, "shards": n}


def deliver_payload(n: int) -> dict[str, Any]:
    return {"source": "firebell.schedule", "scheduled_time": TICK_INPUT["scheduled_time"],
            "execution_id": TICK_INPUT["execution_id"], "stage": "deliver", "shards": n}


def check_shards(template: dict[str, Any]) -> None:
    """ShardCount 1: none of the shard resources; the schedule invokes the evaluator.
    ShardCount N > 1: an Express state machine with its own role, KMS-encrypted logs and
    tracing; each tick invokes the evaluator once per shard 1..N (a Map, every item
    catching every error, nothing retried) and then once to deliver."""
    n = shard_count(template)
    resources = template["Resources"]
    machines = [k for k, r in resources.items() if "StateMachine" in r["Type"] and r["Type"] != "AWS::IAM::Role"]
    if n == 1:
        assert not SHARDED_ONLY & set(resources), sorted(SHARDED_ONLY & set(resources))
        assert machines == [], machines
        assert "TickStateMachineArn" not in template["Outputs"]
        return
    assert SHARDED_ONLY <= set(resources), sorted(SHARDED_ONLY - set(resources))
    assert machines == [TICK], machines
    sm = resource(template, TICK)
    assert sm["Type"] == "AWS::Serverless::StateMachine"
    p = sm["Properties"]
    assert p["Type"] == "EXPRESS", p["Type"]
    assert refs(p["Role"]) == {TICK_ROLE} and "Policies" not in p, "its own role, nothing generated"
    assert not p.get("Events"), "the schedule starts it (EvaluatorSchedule), nothing else"
    log = p.get("Logging", {})
    assert log.get("Level") in ("ERROR", "ALL") and log["IncludeExecutionData"] is True, log
    assert [refs(d["CloudWatchLogsLogGroup"]["LogGroupArn"]) for d in log["Destinations"]] == [{TICK_LOG_GROUP}], log
    assert p["Tracing"] == {"Enabled": True}
    assert refs(p["DefinitionSubstitutions"]) - {"AWS::Partition"} == {FUNCTION}, "invokes the evaluator only"

    # The definition: Shards (1..N) -> EvaluateShards (Map) -> Deliver.
    d = tick_definition(template)
    invoke = "arn:aws:states:::lambda:invoke"
    evaluator = SAMPLE_VALUES["EvaluatorFunction.Arn"]
    assert "Retry" not in json.dumps(d), "a retried tick is a stale tick: no Retry anywhere"
    timeout = props(template, FUNCTION)["Timeout"]
    assert 2 * timeout <= d["TimeoutSeconds"] <= 300, "shards then delivery fit; Express runs 5 minutes at most"
    assert d["StartAt"] == "Shards" and set(d["States"]) == {"Shards", "EvaluateShards", "Deliver"}
    shards = d["States"]["Shards"]
    assert (shards["Type"], shards["Next"]) == ("Pass", "EvaluateShards")
    assert shards["Parameters"] == {
        "scheduled_time.$": "$.scheduled_time",
        "execution_id.$": "$.execution_id",
        "shards.$": f"States.ArrayRange(1, {n}, 1)",
    }, shards["Parameters"]
    m = d["States"]["EvaluateShards"]
    assert (m["Type"], m["ItemsPath"], m["Next"]) == ("Map", "$.shards", "Deliver")
    # 0 is "no limit": the Map has exactly N items, so N at once.
    assert m["MaxConcurrency"] in (0, n), m["MaxConcurrency"]
    assert "Catch" not in m and m["ResultPath"] == "$.shard_results", "the tick's input stays for Deliver"
    assert m["ItemSelector"] == {
        "scheduled_time.$": "$.scheduled_time",
        "execution_id.$": "$.execution_id",
        "shard.$": "$$.Map.Item.Value",
        "shards.$": "States.ArrayLength($.shards)",
    }, m["ItemSelector"]
    proc = m["ItemProcessor"]
    assert proc["ProcessorConfig"] == {"Mode": "INLINE"} and proc["StartAt"] == "EvaluateShard"
    task = proc["States"]["EvaluateShard"]
    assert (task["Type"], task["Resource"], task.get("End")) == ("Task", invoke, True), task
    assert task["Parameters"] == {
        "FunctionName": evaluator,
        "Payload": {
            "source": "firebell.schedule",
            "scheduled_time.$": "$.scheduled_time",
            "execution_id.$": "$.execution_id",
            "shard.$": "$.shard",
            "shards.$": "$.shards",
        },
    }, task["Parameters"]
    assert task.get("Catch") == [{"ErrorEquals": ["States.ALL"], "ResultPath": "$.error", "Next": "ShardFailed"}], (
        "every error of a shard is caught: delivery runs for the others"
    )
    assert proc["States"]["ShardFailed"] == {"Type": "Pass", "End": True}
    assert set(proc["States"]) == {"EvaluateShard", "ShardFailed"}
    deliver = d["States"]["Deliver"]
    assert (deliver["Type"], deliver["Resource"], deliver.get("End")) == ("Task", invoke, True), deliver
    assert deliver["Parameters"] == {
        "FunctionName": evaluator,
        "Payload": {
            "source": "firebell.schedule",
            "scheduled_time.$": "$.scheduled_time",
            "execution_id.$": "$.execution_id",
            "stage": "deliver",
            "shards.$": "States.ArrayLength($.shards)",
        },
    }, deliver["Parameters"]
    assert "Catch" not in deliver, "a failed deliver stage fails the execution (TickFailuresAlarm)"

    # What a tick invokes, run on the definition: shards 1..N, then deliver; a failed
    # shard still delivers; a failed deliver fails the execution.
    everything = [shard_payload(k, n) for k in range(1, n + 1)] + [deliver_payload(n)]
    assert simulate_tick(template) == everything
    assert simulate_tick(template, fail={2}) == everything
    assert simulate_tick(template, fail=set(range(1, n + 1))) == everything
    assert simulate_tick(template, fail={"deliver"}) == everything + [{"execution": "failed"}]
    # The schedule's input carries what the first state reads.
    schedule_input = json.loads(props(template, SCHEDULE)["Target"]["Input"])
    assert set(schedule_input) == set(TICK_INPUT), schedule_input

    # The role: Step Functions of this account; invoke the evaluator; logs; tracing.
    trust = statements(props(template, TICK_ROLE)["AssumeRolePolicyDocument"])
    assert [s["Principal"] for s in trust] == [{"Service": "states.amazonaws.com"}], trust
    assert all(s["Condition"] == {"StringEquals": {"aws:SourceAccount": {"Ref": "AWS::AccountId"}}} for s in trust)
    stmts = role_statements(template, TICK_ROLE)
    got = {a for s in stmts for a in actions(s)}
    assert got == EXPECTED_TICK_ACTIONS, (
        f"tick role actions differ: extra {sorted(got - EXPECTED_TICK_ACTIONS)}, "
        f"missing {sorted(EXPECTED_TICK_ACTIONS - got)}"
    )
    for s in stmts:
        assert s.get("Effect") == "Allow" and "Condition" not in s, s
        acts = set(actions(s))
        resources_ = as_list(s["Resource"])
        if acts <= TICK_LOG_DELIVERY_ACTIONS or acts <= TICK_XRAY_ACTIONS:
            assert resources_ == ["*"], s  # AWS takes no other resource for these
        elif acts == {"lambda:InvokeFunction"}:
            assert [refs(r) for r in resources_] == [{FUNCTION}], s
        else:
            assert acts <= {"logs:CreateLogStream", "logs:PutLogEvents"}, s
            assert [refs(r) for r in resources_] == [{TICK_LOG_GROUP}], s

    group = props(template, TICK_LOG_GROUP)
    assert group["LogGroupName"] == {"Fn::Sub": "/aws/vendedlogs/states/firebell/${AWS::StackName}/tick"}
    assert refs(group["KmsKeyId"]) == {KEY}

    # Failed or timed-out executions page ops.
    alarm = props(template, TICK_FAILURES_ALARM)
    stats = {
        q["MetricStat"]["Metric"]["MetricName"]: q for q in alarm["Metrics"] if "MetricStat" in q
    }
    assert set(stats) == {"ExecutionsFailed", "ExecutionsTimedOut"}, sorted(stats)
    for q in stats.values():
        metric = q["MetricStat"]["Metric"]
        assert metric["Namespace"] == "AWS/States" and q["ReturnData"] is False
        assert metric["Dimensions"] == [{"Name": "StateMachineArn", "Value": {"Ref": TICK}}], metric
        assert q["MetricStat"]["Stat"] == "Sum"
    shown = [q for q in alarm["Metrics"] if q.get("ReturnData", True)]
    assert len(shown) == 1, shown
    ids = {q["Id"] for q in stats.values()}
    assert set(re.findall(r"[a-z]+(?=\s*,\s*0\))", shown[0]["Expression"])) == ids, shown[0]["Expression"]
    assert alarm["ComparisonOperator"] == "GreaterThanOrEqualToThreshold" and alarm["Threshold"] == 1
    assert alarm["TreatMissingData"] == "notBreaching"
    throttles = props(template, THROTTLES_ALARM)
    assert (throttles["Namespace"], throttles["MetricName"]) == ("AWS/Lambda", "Throttles")
    assert throttles["Dimensions"] == [{"Name": "FunctionName", "Value": evaluator_name(template)}]
    assert template["Outputs"]["TickStateMachineArn"]["Value"] == {"Ref": TICK}


# ---------------------------------------------------------------- sentinels

SAMPLE_ALARM_ARN = "arn:aws:cloudwatch:us-east-1:123456789012:alarm:"
# Alarm names under the sample stack's prefix ("firebell-staging.sentinel."): a rule's,
# an SLO's, and the hashed form of a name too long for CloudWatch.
SENTINEL_NAMES = [
    "firebell-staging.sentinel.rule.HighErrorRate",
    "firebell-staging.sentinel.slo.checkout-availability",
    "firebell-staging.sentinel.rule#0123456789abcdef",
]
# Alarms the evaluator must never touch: the stack's own (CloudFormation names them
# <stack>-<LogicalId>-<suffix>), another stack's sentinels (a stack name extending
# ours), the default prefix of a deployment that names none, anybody's.
OTHER_ALARM_NAMES = [
    "firebell-staging-HeartbeatAlarm-1A2B3C4D5E6F",
    "firebell-staging-eu.sentinel.rule.HighErrorRate",
    "firebell-staging-sentinel-rule.HighErrorRate",
    "firebell-sentinel-rule.HighErrorRate",
    "firebell-staging.sentinel",
    "payments-5xx",
]
SENTINEL_EVENT_PATTERN = {
    "source": ["aws.cloudwatch"],
    "detail-type": ["CloudWatch Alarm State Change"],
    "detail": {
        "alarmName": [{"prefix": {"Fn::Sub": SENTINEL_PREFIX}}],
        "state": {"value": ["ALARM"]},
    },
}
SENTINEL_RETRY = {"MaximumRetryAttempts": 0, "MaximumEventAgeInSeconds": 60}


def iam_matches(pattern: str, value: str) -> bool:
    """IAM's ARN matching (ArnLike, a Resource): `*` any run of characters, `?` any one,
    everything else literal and case-sensitive."""
    regex = "".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern)
    return re.fullmatch(regex, value, re.S) is not None


def alarm_event(name: str, state: str = "ALARM", time: str = "2026-01-01T12:34:27Z",
                source: str = "aws.cloudwatch") -> dict[str, Any]:
    """A "CloudWatch Alarm State Change" event as CloudWatch sends it to EventBridge
    (the fields of the documented example; the metric part trimmed)."""
    previous = "OK" if state == "ALARM" else "ALARM"
    return {
        "version": "0",
        "id": "c4c1c1c9-6542-e61b-6ef0-8c4d36933a92",
        "detail-type": "CloudWatch Alarm State Change",
        "source": source,
        "account": "123456789012",
        "time": time,
        "region": "us-east-1",
        "resources": [SAMPLE_ALARM_ARN + name],
        "detail": {
            "alarmName": name,
            "state": {
                "value": state,
                "reason": "Threshold Crossed: 1 datapoint [12.0 (01/01/26 12:33:00)] was greater than the threshold (5.0).",
                "timestamp": "2026-01-01T12:34:27.123+0000",
            },
            "previousState": {"value": previous, "timestamp": "2026-01-01T12:20:27.021+0000"},
            "configuration": {"description": "firebell sentinel", "metrics": []},
        },
    }


def render_input(transformer: dict[str, Any], event: dict[str, Any]) -> Any:
    """An InputTransformer applied to an event, for a JSON InputTemplate whose
    placeholders all stand unquoted in value position (the only form this template
    uses; asserted): each becomes its InputPathsMap value, JSON-encoded, as EventBridge
    renders it. The emulator test runs the same transformer through EventBridge."""
    values = {}
    for var, path in transformer["InputPathsMap"].items():
        assert re.fullmatch(r"\$(\.[A-Za-z0-9_-]+)+", path), path
        node: Any = event
        for part in path[2:].split("."):
            node = node[part]
        values[var] = node
    template = transformer["InputTemplate"]
    assert re.findall(r'"<|>"', template) == [], f"a quoted placeholder: {template}"

    def sub(m: re.Match[str]) -> str:
        assert m.group(1) in values, f"<{m.group(1)}> is not in InputPathsMap"
        return json.dumps(values[m.group(1)])

    return json.loads(re.sub(r"<([A-Za-z0-9_.-]+)>", sub, template))


def sentinel_tick(event: dict[str, Any]) -> dict[str, Any]:
    """The input a sentinel event becomes: the schedule's, with the event's time as the
    tick (the evaluator reads `scheduled_time`), its id, and the alarm's name."""
    return {
        "source": "firebell.sentinel",
        "scheduled_time": event["time"],
        "execution_id": event["id"],
        "sentinel": event["detail"]["alarmName"],
    }


def check_sentinels(template: dict[str, Any]) -> None:
    """Sentinel alarms. The evaluator gets its alarm-name prefix ("<stack>.sentinel.")
    and may put (without alarm actions), tag and delete the alarms under it and no
    other, and list alarms; no other role gets any of that. An alarm under the prefix
    entering ALARM starts a tick at once: EventBridge invokes the evaluator (unsharded,
    a permission for this rule only) or starts the tick state machine (sharded, a role
    that may start it only) with the schedule's input, the event's time as the tick."""
    n = shard_count(template)
    env = env_vars(template, FUNCTION)
    assert env.get(SENTINEL_PREFIX_ENV) == {"Fn::Sub": SENTINEL_PREFIX}, env.get(SENTINEL_PREFIX_ENV)
    prefix = resolve(env[SENTINEL_PREFIX_ENV])
    stack = SAMPLE_VALUES["AWS::StackName"]
    assert prefix == f"{stack}.sentinel.", prefix
    # A stack name has no "." ([A-Za-z][-A-Za-z0-9]*), so no other stack's prefix, and
    # no alarm CloudFormation names, starts with this one. At most 54 + 10 characters.
    longest = resolve(env[SENTINEL_PREFIX_ENV], {**SAMPLE_VALUES, "AWS::StackName": "s" * 54})
    assert len(longest) <= 64, longest
    for fn in (REPORTER, VALIDATOR):
        assert SENTINEL_PREFIX_ENV not in env_vars(template, fn), fn
    assert template["Outputs"].get("SentinelAlarmPrefix", {}).get("Value") == env[SENTINEL_PREFIX_ENV]
    # No sentinel is a resource of the stack: the evaluator keeps them.
    alarms = [r["Properties"] for r in template["Resources"].values() if r["Type"] == "AWS::CloudWatch::Alarm"]
    assert not any("AlarmName" in a for a in alarms), "the stack's alarms are named by CloudFormation"

    # The evaluator's alarm statements, exactly.
    stmts = [
        s for s in role_statements(template, FUNCTION_ROLE)
        if any(a.startswith("cloudwatch:") for a in actions(s)) and s.get("Sid") != "ReadMetrics"
    ]
    assert stmts == SENTINEL_STATEMENTS, stmts
    read = [s for s in role_statements(template, FUNCTION_ROLE) if s.get("Sid") == "ReadMetrics"]
    assert len(read) == 1 and set(actions(read[0])) == {"cloudwatch:GetMetricData", "cloudwatch:ListMetrics"}, read
    for s in stmts[:2]:
        arn = resolve(s["Resource"])
        assert arn == SAMPLE_ALARM_ARN + prefix + "*", arn
        for name in SENTINEL_NAMES:
            assert name.startswith(prefix) and iam_matches(arn, SAMPLE_ALARM_ARN + name), (arn, name)
        for name in OTHER_ALARM_NAMES:
            assert not name.startswith(prefix) and not iam_matches(arn, SAMPLE_ALARM_ARN + name), (arn, name)
    # The stack key's alarm statement (alarms publishing to the ops topic) does not
    # cover the sentinels: they have no actions.
    for s in statements(props(template, KEY)["KeyPolicy"]):
        if s.get("Principal", {}).get("Service") == "cloudwatch.amazonaws.com":
            key_arn = resolve(s["Condition"]["ArnLike"]["aws:SourceArn"])
            assert not any(iam_matches(key_arn, SAMPLE_ALARM_ARN + name) for name in SENTINEL_NAMES), key_arn
    # No other role reads or writes alarms (the AppConfig monitor reads its three).
    for role in stack_roles(template) - {FUNCTION_ROLE}:
        for s in role_statements(template, role):
            cw = {a for a in actions(s) if a.startswith("cloudwatch:")}
            allowed = {"cloudwatch:DescribeAlarms"} if role == CONFIG_MONITOR_ROLE else set()
            assert cw <= allowed, f"{role}: {sorted(cw)}"

    # The fast path: the rule, its pattern, its one target and that target's input.
    rule = resource(template, SENTINEL_RULE)
    assert rule["Type"] == "AWS::Events::Rule", rule["Type"]
    p = rule["Properties"]
    assert p.get("State") == "ENABLED", p.get("State")
    assert "EventBusName" not in p and "ScheduleExpression" not in p, "the default bus, events only"
    assert p.get("EventPattern") == SENTINEL_EVENT_PATTERN, p.get("EventPattern")
    assert p["EventPattern"]["detail"]["alarmName"][0]["prefix"] == env[SENTINEL_PREFIX_ENV], "one prefix"
    targets = p.get("Targets", [])
    assert len(targets) == 1, targets
    t = targets[0]
    keys = {"Id", "Arn", "InputTransformer", "RetryPolicy"} | ({"RoleArn"} if n > 1 else set())
    assert set(t) == keys, sorted(t)
    assert refs(t["Arn"]) == ({TICK} if n > 1 else {FUNCTION}), t["Arn"]
    if n > 1:
        assert t["RoleArn"] == {"Fn::GetAtt": [SENTINEL_ROLE, "Arn"]}, t["RoleArn"]
    assert t["RetryPolicy"] == SENTINEL_RETRY, t["RetryPolicy"]
    event = alarm_event(SENTINEL_NAMES[0])
    tick = render_input(t["InputTransformer"], event)
    assert tick == sentinel_tick(event), tick
    # What the schedule's input carries, but "attempt" (a Scheduler retry count).
    schedule_input = json.loads(props(template, SCHEDULE)["Target"]["Input"])
    assert set(schedule_input) - {"attempt"} <= set(tick), (schedule_input, tick)
    assert not {"shard", "shards", "stage"} & set(tick), "unsharded: the whole cycle"
    if n > 1:
        # The state machine hands the event's time and id to every shard and delivery.
        calls: list[dict[str, Any]] = []
        run_states(tick_definition(template), tick, lambda f, payload: calls.append(payload) or {}, {})
        assert calls == [
            {**shard_payload(k, n), "scheduled_time": event["time"], "execution_id": event["id"]}
            for k in range(1, n + 1)
        ] + [{**deliver_payload(n), "scheduled_time": event["time"], "execution_id": event["id"]}], calls

    # Who may start the tick: EventBridge for this rule only.
    if n == 1:
        assert SENTINEL_ROLE not in template["Resources"]
        perm = resource(template, SENTINEL_PERMISSION)
        assert perm["Type"] == "AWS::Lambda::Permission"
        assert perm["Properties"] == {
            "FunctionName": {"Fn::GetAtt": [FUNCTION, "Arn"]},
            "Action": "lambda:InvokeFunction",
            "Principal": "events.amazonaws.com",
            "SourceAccount": {"Ref": "AWS::AccountId"},
            "SourceArn": {"Fn::GetAtt": [SENTINEL_RULE, "Arn"]},
        }, perm["Properties"]
    else:
        assert SENTINEL_PERMISSION not in template["Resources"]
        role = props(template, SENTINEL_ROLE)
        trust = statements(role["AssumeRolePolicyDocument"])
        assert trust == [{
            "Effect": "Allow",
            "Principal": {"Service": "events.amazonaws.com"},
            "Action": "sts:AssumeRole",
            "Condition": {"StringEquals": {"aws:SourceAccount": {"Ref": "AWS::AccountId"}}},
        }], trust
        assert role_statements(template, SENTINEL_ROLE) == [
            {"Sid": "StartTick", "Effect": "Allow", "Action": "states:StartExecution", "Resource": {"Ref": TICK}}
        ], role_statements(template, SENTINEL_ROLE)


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
    check_star_resources,
    check_reads_deployed_config,
    check_functions_config_env,
    check_validator,
    check_appconfig,
    check_environment_pattern,
    check_shards,
    check_sentinels,
    check_source_account_roles,
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
    assert sorted(kinds["AWS::IAM::Role"]) == sorted(stack_roles(template)), kinds
    for kind in ("AWS::IAM::Policy", "AWS::IAM::ManagedPolicy"):
        assert kind not in kinds, f"SAM generated {kind}: {kinds.get(kind)}"
    # The invoke permissions are ours (AppConfig -> validator; unsharded, EventBridge ->
    # evaluator); SAM adds none.
    perms = [VALIDATOR_PERMISSION] + ([SENTINEL_PERMISSION] if shard_count(template) == 1 else [])
    assert sorted(kinds.get("AWS::Lambda::Permission", [])) == sorted(perms), kinds.get("AWS::Lambda::Permission")
    assert kinds.get("AWS::Events::Rule") == [SENTINEL_RULE], kinds.get("AWS::Events::Rule")
    assert sorted(kinds["AWS::Lambda::Function"]) == sorted([FUNCTION, REPORTER, VALIDATOR])
    check_no_wildcard_actions(cfn)
    fn = cfn["Resources"][FUNCTION]
    assert refs(fn["Properties"]["Role"]) == {FUNCTION_ROLE}
    # checkov skips must survive the transform to reach the resource checkov scans.
    assert fn["Metadata"]["checkov"]["skip"], "checkov skips lost in transform"
    assert fn["Properties"]["ReservedConcurrentExecutions"] == shard_count(template)
    assert fn["Properties"]["Architectures"] == ["arm64"]
    # Sharded: the state machine uses our role (SAM generates none) and the
    # definition string CloudFormation substitutes.
    machines = kinds.get("AWS::StepFunctions::StateMachine", [])
    assert machines == ([TICK] if shard_count(template) > 1 else []), machines
    for name in machines:
        sm = cfn["Resources"][name]["Properties"]
        assert refs(sm["RoleArn"]) == {TICK_ROLE}, sm["RoleArn"]
        assert sm["StateMachineType"] == "EXPRESS"
        definition = json.loads(resolve_substitutions(
            "\n".join(sm["DefinitionString"]["Fn::Join"][1]), sm["DefinitionSubstitutions"]))
        assert definition == tick_definition(template), "the transform changed the definition"
    validator = cfn["Resources"][VALIDATOR]
    assert refs(validator["Properties"]["Role"]) == {VALIDATOR_ROLE}
    assert validator["Metadata"]["checkov"]["skip"], "checkov skips lost in transform"


# Mutations that must each be caught: (description, mutate, check that must fail).
def _add_statement(role: str, statement: dict[str, Any]):
    def mutate(t: dict[str, Any]) -> None:
        t["Resources"][role]["Properties"]["Policies"][0]["PolicyDocument"]["Statement"].append(statement)

    return mutate


def _edit_statement(role: str, sid: str, key: str, value: Any):
    def mutate(t: dict[str, Any]) -> None:
        found = [
            st for st in t["Resources"][role]["Properties"]["Policies"][0]["PolicyDocument"]["Statement"]
            if st.get("Sid") == sid
        ]
        assert len(found) == 1, (role, sid)
        if value is None:
            del found[0][key]
        else:
            found[0][key] = value

    return mutate


def _drop(path: list[Any]):
    def mutate(t: dict[str, Any]) -> None:
        node = t
        for key in path[:-1]:
            node = node[key]
        del node[path[-1]]

    return mutate


def _add_resource(name: str, res: dict[str, Any]):
    def mutate(t: dict[str, Any]) -> None:
        t["Resources"][name] = res

    return mutate


def _set(path: list[Any], value: Any):
    def mutate(t: dict[str, Any]) -> None:
        node = t
        for key in path[:-1]:
            node = node[key]
        node[path[-1]] = value

    return mutate


def _assume_policy(t: dict[str, Any]) -> dict[str, Any]:
    return next(p for p in t["Resources"][FUNCTION_ROLE]["Properties"]["Policies"] if "Fn::If" in p)


def _assume_statement(key: str, value: Any):
    def mutate(t: dict[str, Any]) -> None:
        _assume_policy(t)["Fn::If"][1]["PolicyDocument"]["Statement"][0][key] = value

    return mutate


def _unconditional_assume(t: dict[str, Any]) -> None:
    policies = t["Resources"][FUNCTION_ROLE]["Properties"]["Policies"]
    i = next(i for i, p in enumerate(policies) if "Fn::If" in p)
    policies[i] = policies[i]["Fn::If"][1]


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
    # ---- AppConfig reads: the evaluator's and reporter's own configuration only
    (
        "evaluator reads any AppConfig configuration",
        _edit_statement(FUNCTION_ROLE, "ReadDeployedConfig", "Resource", "*"),
        check_reads_deployed_config,
    ),
    (
        "evaluator reads any AppConfig configuration (role check)",
        _edit_statement(FUNCTION_ROLE, "ReadDeployedConfig", "Resource", "*"),
        check_function_role,
    ),
    (
        "evaluator reads every environment of the application",
        _edit_statement(FUNCTION_ROLE, "ReadDeployedConfig", "Resource",
                        {"Fn::Sub": "arn:${AWS::Partition}:appconfig:${AWS::Region}:${AWS::AccountId}:application/${ConfigApplication}/*"}),
        check_reads_deployed_config,
    ),
    (
        "evaluator reads the stack profile instead",
        _edit_statement(FUNCTION_ROLE, "ReadDeployedConfig", "Resource",
                        {"Fn::Sub": APPCONFIG_CONFIGURATION_ARN.replace("${ConfigProfile}", "${StackProfile}")}),
        check_reads_deployed_config,
    ),
    (
        "evaluator may use the AppConfig control plane",
        _edit_statement(FUNCTION_ROLE, "ReadDeployedConfig", "Action",
                        ["appconfig:StartConfigurationSession", "appconfig:GetLatestConfiguration",
                         "appconfig:GetConfiguration"]),
        check_function_role,
    ),
    (
        "evaluator may start deployments",
        _add_statement(FUNCTION_ROLE, {"Effect": "Allow", "Action": "appconfig:StartDeployment",
                                       "Resource": {"Fn::Sub": APPCONFIG_CONFIGURATION_ARN}}),
        check_reads_deployed_config,
    ),
    (
        "reporter reads any AppConfig configuration",
        _edit_statement(REPORTER_ROLE, "ReadDeployedConfig", "Resource", "*"),
        check_reporter,
    ),
    (
        "reporter cannot read the deployed config",
        _edit_statement(REPORTER_ROLE, "ReadDeployedConfig", "Action", ["appconfig:GetLatestConfiguration"]),
        check_reads_deployed_config,
    ),
    # ---- the functions' config environment
    (
        "evaluator without FIREBELL_APPCONFIG_PROFILE",
        _drop(["Resources", FUNCTION, "Properties", "Environment", "Variables", "FIREBELL_APPCONFIG_PROFILE"]),
        check_functions_config_env,
    ),
    (
        "reporter reads another environment",
        _set(["Resources", REPORTER, "Properties", "Environment", "Variables", "FIREBELL_APPCONFIG_ENVIRONMENT"],
             "prod"),
        check_functions_config_env,
    ),
    (
        "allowed topics without the ops topic",
        _set(["Resources", FUNCTION, "Properties", "Environment", "Variables", "FIREBELL_ALLOWED_TOPICS"],
             {"Fn::Join": [",", {"Ref": TEAM_TOPICS_PARAM}]}),
        check_functions_config_env,
    ),
    (
        "validator allows other topics than the functions",
        _set(["Resources", VALIDATOR, "Properties", "Environment", "Variables", "FIREBELL_ALLOWED_TOPICS"],
             {"Fn::Join": [",", {"Ref": TEAM_TOPICS_PARAM}]}),
        check_functions_config_env,
    ),
    (
        "validator always lenient",
        _set(["Resources", VALIDATOR, "Properties", "Environment", "Variables", "FIREBELL_STRICT"], "false"),
        check_functions_config_env,
    ),
    # ---- the validator
    (
        "validator reads the state table",
        _add_statement(VALIDATOR_ROLE, {"Effect": "Allow", "Action": "dynamodb:GetItem",
                                        "Resource": {"Fn::GetAtt": [TABLE, "Arn"]}}),
        check_validator,
    ),
    (
        "validator publishes",
        _add_statement(VALIDATOR_ROLE, {"Effect": "Allow", "Action": "sns:Publish", "Resource": {"Ref": OPS_TOPIC}}),
        check_validator,
    ),
    (
        "validator reads AppConfig",
        _add_statement(VALIDATOR_ROLE, {"Effect": "Allow", "Action": "appconfig:GetLatestConfiguration",
                                        "Resource": {"Fn::Sub": APPCONFIG_CONFIGURATION_ARN}}),
        check_validator,
    ),
    (
        "validator reads metrics",
        _add_statement(VALIDATOR_ROLE, {"Effect": "Allow", "Action": "cloudwatch:GetMetricData", "Resource": "*"}),
        check_star_resources,
    ),
    (
        "validator writes the evaluator's logs",
        _edit_statement(VALIDATOR_ROLE, "WriteOwnLogs", "Resource", {"Fn::GetAtt": [LOG_GROUP, "Arn"]}),
        check_validator,
    ),
    (
        "validator uses the key through any service",
        _edit_statement(VALIDATOR_ROLE, "UseStackKeyThroughLambda", "Condition", None),
        check_validator,
    ),
    (
        "validator on a schedule",
        _set(["Resources", VALIDATOR, "Properties", "Events"],
             {"Tick": {"Type": "ScheduleV2", "Properties": {"ScheduleExpression": "rate(1 minute)"}}}),
        check_validator,
    ),
    (
        "validator is the evaluator binary",
        _set(["Resources", VALIDATOR, "Metadata", "BuildProperties", "Binary"], "evaluator"),
        check_validator,
    ),
    (
        "anyone's AppConfig may invoke the validator",
        _drop(["Resources", VALIDATOR_PERMISSION, "Properties", "SourceArn"]),
        check_validator,
    ),
    (
        "the validator may be invoked by another service",
        _set(["Resources", VALIDATOR_PERMISSION, "Properties", "Principal"], "lambda.amazonaws.com"),
        check_validator,
    ),
    (
        "any application of the account may invoke the validator",
        _set(["Resources", VALIDATOR_PERMISSION, "Properties", "SourceArn"],
             {"Fn::Sub": "arn:${AWS::Partition}:appconfig:${AWS::Region}:${AWS::AccountId}:application/*"}),
        check_validator,
    ),
    (
        "a second invoke permission",
        _add_resource("EvaluatorPermission", {"Type": "AWS::Lambda::Permission", "Properties": {
            "FunctionName": {"Fn::GetAtt": [FUNCTION, "Arn"]}, "Action": "lambda:InvokeFunction",
            "Principal": "events.amazonaws.com"}}),
        check_validator,
    ),
    # ---- AppConfig resources
    (
        "config profile without the Lambda validator",
        _drop(["Resources", CONFIG_PROFILE, "Properties", "Validators"]),
        check_appconfig,
    ),
    (
        "config profile validated by another function",
        _set(["Resources", CONFIG_PROFILE, "Properties", "Validators", 0, "Content"], {"Fn::GetAtt": [FUNCTION, "Arn"]}),
        check_appconfig,
    ),
    (
        "no rollback on the watchdog",
        _set(["Resources", CONFIG_ENV, "Properties", "Monitors"],
             [{"AlarmArn": {"Fn::GetAtt": [ERRORS_ALARM, "Arn"]}, "AlarmRoleArn": {"Fn::GetAtt": [CONFIG_MONITOR_ROLE, "Arn"]}},
              {"AlarmArn": {"Fn::GetAtt": [CYCLE_ERRORS_ALARM, "Arn"]}, "AlarmRoleArn": {"Fn::GetAtt": [CONFIG_MONITOR_ROLE, "Arn"]}}]),
        check_appconfig,
    ),
    (
        "no rollback on Lambda errors",
        _set(["Resources", CONFIG_ENV, "Properties", "Monitors"],
             [{"AlarmArn": {"Fn::GetAtt": [HEARTBEAT_ALARM, "Arn"]}, "AlarmRoleArn": {"Fn::GetAtt": [CONFIG_MONITOR_ROLE, "Arn"]}},
              {"AlarmArn": {"Fn::GetAtt": [CYCLE_ERRORS_ALARM, "Arn"]}, "AlarmRoleArn": {"Fn::GetAtt": [CONFIG_MONITOR_ROLE, "Arn"]}}]),
        check_appconfig,
    ),
    (
        "monitor role describes every alarm",
        _edit_statement(CONFIG_MONITOR_ROLE, "ReadRollbackAlarms", "Resource", "*"),
        check_appconfig,
    ),
    (
        "monitor role describes every alarm (stack-wide check)",
        _edit_statement(CONFIG_MONITOR_ROLE, "ReadRollbackAlarms", "Resource", "*"),
        check_star_resources,
    ),
    (
        "monitor role may change alarms",
        _edit_statement(CONFIG_MONITOR_ROLE, "ReadRollbackAlarms", "Action",
                        ["cloudwatch:DescribeAlarms", "cloudwatch:SetAlarmState"]),
        check_appconfig,
    ),
    (
        "monitor role assumable by Lambda",
        _set(["Resources", CONFIG_MONITOR_ROLE, "Properties", "AssumeRolePolicyDocument", "Statement", 0, "Principal"],
             {"Service": "lambda.amazonaws.com"}),
        check_appconfig,
    ),
    (
        "bake time fixed at zero",
        _set(["Resources", CONFIG_STRATEGY, "Properties", "FinalBakeTimeInMinutes"], 0),
        check_appconfig,
    ),
    (
        "gradual growth",
        _set(["Resources", CONFIG_STRATEGY, "Properties", "GrowthFactor"], 10),
        check_appconfig,
    ),
    (
        "stack info without the ops topic",
        _set(["Resources", STACK_INFO, "Properties", "Content", "Fn::Sub", 0],
             '{"format":"firebell.stack/v1","environment":"${Environment}","topics":["${TeamTopics}"]}'),
        check_appconfig,
    ),
    (
        "stack info with the team topics as one string",
        _set(["Resources", STACK_INFO, "Properties", "Content", "Fn::Sub", 1, "TeamTopics"],
             {"Fn::Join": [",", {"Ref": TEAM_TOPICS_PARAM}]}),
        check_appconfig,
    ),
    (
        "an initial deployment",
        _add_resource("ConfigDeployment", {"Type": "AWS::AppConfig::Deployment", "Properties": {}}),
        check_appconfig,
    ),
    (
        "application not named after the environment",
        _set(["Resources", CONFIG_APP, "Properties", "Name"], "firebell"),
        check_appconfig,
    ),
    (
        "environment names without a pattern",
        _set(["Parameters", ENVIRONMENT_PARAM, "AllowedPattern"], ".*"),
        check_environment_pattern,
    ),
    # ---- the alarms watch the evaluator by its name
    (
        "heartbeat of another function",
        _set(["Resources", HEARTBEAT_ALARM, "Properties", "Dimensions", 0, "Value"], {"Fn::Sub": "${AWS::StackName}-reporter"}),
        check_watchdog,
    ),
    (
        "Errors alarm of another function",
        _set(["Resources", ERRORS_ALARM, "Properties", "Dimensions", 0, "Value"], "evaluator"),
        check_watchdog,
    ),
    (
        "evaluator without an explicit name",
        _drop(["Resources", FUNCTION, "Properties", "FunctionName"]),
        check_cycle_errors_alarm,
    ),
    (
        "log group the key does not cover",
        _set(["Resources", VALIDATOR_LOG_GROUP, "Properties", "LogGroupName"], {"Fn::Sub": "/firebell/${AWS::StackName}/other"}),
        check_storage_and_keys,
    ),
    # ---- sentinel alarms
    (
        "put any alarm",
        _edit_statement(FUNCTION_ROLE, "PutSentinelAlarms", "Resource", "*"),
        check_sentinels,
    ),
    (
        "put any alarm (role check)",
        _edit_statement(FUNCTION_ROLE, "PutSentinelAlarms", "Resource", "*"),
        check_function_role,
    ),
    (
        "put any alarm (star check)",
        _edit_statement(FUNCTION_ROLE, "PutSentinelAlarms", "Resource", "*"),
        check_star_resources,
    ),
    (
        "sentinels with alarm actions",
        _edit_statement(FUNCTION_ROLE, "PutSentinelAlarms", "Condition", None),
        check_sentinels,
    ),
    (
        "delete the stack's own alarms",
        _edit_statement(FUNCTION_ROLE, "TagAndDeleteSentinelAlarms", "Resource",
                        {"Fn::Sub": "arn:${AWS::Partition}:cloudwatch:${AWS::Region}:${AWS::AccountId}:alarm:${AWS::StackName}-*"}),
        check_function_role,
    ),
    (
        "delete alarms of stacks named like this one",
        _edit_statement(FUNCTION_ROLE, "TagAndDeleteSentinelAlarms", "Resource",
                        {"Fn::Sub": "arn:${AWS::Partition}:cloudwatch:${AWS::Region}:${AWS::AccountId}:alarm:${AWS::StackName}*"}),
        check_sentinels,
    ),
    (
        "delete without tag",
        _edit_statement(FUNCTION_ROLE, "TagAndDeleteSentinelAlarms", "Action", ["cloudwatch:DeleteAlarms"]),
        check_function_role,
    ),
    (
        "list alarms through another action",
        _edit_statement(FUNCTION_ROLE, "FindSentinelAlarms", "Action", "cloudwatch:DescribeAlarmsForMetric"),
        check_sentinels,
    ),
    (
        "a prefix the permissions do not cover",
        _set(["Resources", FUNCTION, "Properties", "Environment", "Variables", SENTINEL_PREFIX_ENV], "firebell-sentinel-"),
        check_sentinels,
    ),
    (
        "no prefix for the evaluator",
        _drop(["Resources", FUNCTION, "Properties", "Environment", "Variables", SENTINEL_PREFIX_ENV]),
        check_sentinels,
    ),
    (
        "the reporter lists alarms",
        _add_statement(REPORTER_ROLE, {"Effect": "Allow", "Action": "cloudwatch:DescribeAlarms", "Resource": "*"}),
        check_sentinels,
    ),
    (
        "the scheduler deletes sentinels",
        _add_statement(SCHEDULER_ROLE, {"Effect": "Allow", "Action": "cloudwatch:DeleteAlarms",
                                        "Resource": {"Fn::Sub": SENTINEL_ALARM_ARN}}),
        check_sentinels,
    ),
    (
        "a sentinel back to OK wakes the evaluator",
        _set(["Resources", SENTINEL_RULE, "Properties", "EventPattern", "detail", "state", "value"], ["ALARM", "OK"]),
        check_sentinels,
    ),
    (
        "every alarm wakes the evaluator",
        _drop(["Resources", SENTINEL_RULE, "Properties", "EventPattern", "detail", "alarmName"]),
        check_sentinels,
    ),
    (
        "the rule watches another prefix",
        _set(["Resources", SENTINEL_RULE, "Properties", "EventPattern", "detail", "alarmName"],
             [{"prefix": {"Fn::Sub": "${AWS::StackName}-"}}]),
        check_sentinels,
    ),
    (
        "the rule disabled",
        _set(["Resources", SENTINEL_RULE, "Properties", "State"], "DISABLED"),
        check_sentinels,
    ),
    (
        "the event handed over as it is",
        _drop(["Resources", SENTINEL_RULE, "Properties", "Targets", 0, "InputTransformer"]),
        check_sentinels,
    ),
    (
        "the tick from the alarm's own timestamp",
        _set(["Resources", SENTINEL_RULE, "Properties", "Targets", 0, "InputTransformer", "InputPathsMap", "time"],
             "$.detail.state.timestamp"),
        check_sentinels,
    ),
    (
        "sentinel events retried",
        _set(["Resources", SENTINEL_RULE, "Properties", "Targets", 0, "RetryPolicy", "MaximumRetryAttempts"], 2),
        check_sentinels,
    ),
    (
        "the rule starts the reporter",
        _set(["Resources", SENTINEL_RULE, "Properties", "Targets", 0, "Arn"], {"Fn::GetAtt": [REPORTER, "Arn"]}),
        check_sentinels,
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


# ------------------------------------------------------------------ shards

DEFINITION = ["Resources", TICK, "Properties", "Definition"]
SHARD_TASK = DEFINITION + ["States", "EvaluateShards", "ItemProcessor", "States", "EvaluateShard"]
DELIVER = DEFINITION + ["States", "Deliver"]


def _edit_tick_statement(sid: str, key: str, value: Any):
    return _edit_statement(TICK_ROLE, sid, key, value)


# Mutations of the template rendered with 4 shards that check_shards (or the check
# named) must catch.
SHARDED_NEGATIVE_CASES = [
    ("a retried shard", _set(SHARD_TASK + ["Retry"], [{"ErrorEquals": ["States.ALL"], "MaxAttempts": 2}]), check_shards),
    ("a retried deliver stage", _set(DELIVER + ["Retry"], [{"ErrorEquals": ["Lambda.ServiceException"]}]), check_shards),
    ("a crashed shard stops the tick", _drop(SHARD_TASK + ["Catch"]), check_shards),
    ("only Lambda service errors caught", _set(SHARD_TASK + ["Catch", 0, "ErrorEquals"], ["Lambda.ServiceException"]), check_shards),
    ("the shard's number not passed", _drop(SHARD_TASK + ["Parameters", "Payload", "shard.$"]), check_shards),
    ("shards told a fixed count", _set(SHARD_TASK + ["Parameters", "Payload", "shards.$"], "$.shard"), check_shards),
    ("one shard too few", _set(DEFINITION + ["States", "Shards", "Parameters", "shards.$"], "States.ArrayRange(1, 3, 1)"), check_shards),
    ("the tick's time lost", _drop(DEFINITION + ["States", "Shards", "Parameters", "scheduled_time.$"]), check_shards),
    ("deliver without its stage", _drop(DELIVER + ["Parameters", "Payload", "stage"]), check_shards),
    ("deliver before the shards", _set(DEFINITION + ["StartAt"], "Deliver"), check_shards),
    ("a standard workflow", _set(["Resources", TICK, "Properties", "Type"], "STANDARD"), check_shards),
    ("no execution logs", _drop(["Resources", TICK, "Properties", "Logging"]), check_shards),
    ("tick logs not encrypted with the stack key", _set(["Resources", TICK_LOG_GROUP, "Properties", "KmsKeyId"], "alias/aws/logs"), check_shards),
    ("tick logs not encrypted with the stack key (stack-wide)", _set(["Resources", TICK_LOG_GROUP, "Properties", "KmsKeyId"], "alias/aws/logs"), check_storage_and_keys),
    ("the tick role invokes the reporter", _edit_tick_statement("InvokeEvaluator", "Resource", [{"Fn::GetAtt": [FUNCTION, "Arn"]}, {"Fn::GetAtt": [REPORTER, "Arn"]}]), check_shards),
    ("the tick role invokes any function", _edit_tick_statement("InvokeEvaluator", "Resource", "*"), check_star_resources),
    ("the tick role publishes", _add_statement(TICK_ROLE, {"Effect": "Allow", "Action": "sns:Publish", "Resource": {"Ref": OPS_TOPIC}}), check_shards),
    ("the tick role writes any log group", _edit_tick_statement("WriteTickLogs", "Resource", "*"), check_star_resources),
    ("the tick role assumable by Lambda", _set(["Resources", TICK_ROLE, "Properties", "AssumeRolePolicyDocument", "Statement", 0, "Principal"], {"Service": "lambda.amazonaws.com"}), check_shards),
    ("the scheduler still invokes the evaluator", _edit_statement(SCHEDULER_ROLE, "InvokeFunctions", "Resource", [{"Fn::GetAtt": [FUNCTION, "Arn"]}, {"Fn::GetAtt": [REPORTER, "Arn"]}]), check_scheduler_role),
    ("the scheduler starts any state machine", _edit_statement(SCHEDULER_ROLE, "StartTick", "Resource", "*"), check_scheduler_role),
    ("the schedule invokes the evaluator directly", _set(["Resources", SCHEDULE, "Properties", "Target", "Arn"], {"Fn::GetAtt": [FUNCTION, "Arn"]}), check_retries),
    ("one evaluator at a time with 4 shards", _set(["Resources", FUNCTION, "Properties", "ReservedConcurrentExecutions"], 1), check_function_packaging),
    ("tick alarm on succeeded executions", _set(["Resources", TICK_FAILURES_ALARM, "Properties", "Metrics", 0, "MetricStat", "Metric", "MetricName"], "ExecutionsSucceeded"), check_shards),
    ("tick alarm ignores timeouts", _set(["Resources", TICK_FAILURES_ALARM, "Properties", "Metrics", 2, "Expression"], "FILL(failed, 0)"), check_shards),
    ("tick alarm to a team topic", _set(["Resources", TICK_FAILURES_ALARM, "Properties", "AlarmActions"], [{"Ref": TEAM_TOPICS_PARAM}]), check_watchdog),
    ("no throttles alarm", _drop(["Resources", THROTTLES_ALARM]), check_watchdog),
    ("sentinel events start any state machine", _edit_statement(SENTINEL_ROLE, "StartTick", "Resource", "*"), check_sentinels),
    ("sentinel events start any state machine (star check)", _edit_statement(SENTINEL_ROLE, "StartTick", "Resource", "*"), check_star_resources),
    ("sentinel events invoke the evaluator, not the shards", _set(["Resources", SENTINEL_RULE, "Properties", "Targets", 0, "Arn"], {"Fn::GetAtt": [FUNCTION, "Arn"]}), check_sentinels),
    ("sentinel events without the role", _drop(["Resources", SENTINEL_RULE, "Properties", "Targets", 0, "RoleArn"]), check_sentinels),
    ("the sentinel role assumable by Lambda", _set(["Resources", SENTINEL_ROLE, "Properties", "AssumeRolePolicyDocument", "Statement", 0, "Principal"], {"Service": "lambda.amazonaws.com"}), check_sentinels),
    ("a sentinel tick without its execution id", _set(["Resources", SENTINEL_RULE, "Properties", "Targets", 0, "InputTransformer", "InputTemplate"], '{"source":"firebell.sentinel","scheduled_time":<time>}'), check_sentinels),
]


# Mutations of the template rendered with 1 shard that check_sentinels must catch.
UNSHARDED_NEGATIVE_CASES = [
    ("any rule may invoke the evaluator", _drop(["Resources", SENTINEL_PERMISSION, "Properties", "SourceArn"]), check_sentinels),
    ("anyone may invoke the evaluator", _set(["Resources", SENTINEL_PERMISSION, "Properties", "Principal"], "*"), check_sentinels),
    ("EventBridge may invoke the reporter", _set(["Resources", SENTINEL_PERMISSION, "Properties", "FunctionName"], {"Fn::GetAtt": [REPORTER, "Arn"]}), check_sentinels),
    ("an unused role for sentinel events", _set(["Resources", SENTINEL_RULE, "Properties", "Targets", 0, "RoleArn"], {"Fn::GetAtt": [SCHEDULER_ROLE, "Arn"]}), check_sentinels),
    ("sentinel events start a state machine", _set(["Resources", SENTINEL_RULE, "Properties", "Targets", 0, "Arn"], {"Ref": "SomeStateMachine"}), check_sentinels),
]


@pytest.mark.parametrize("what,mutate,check", UNSHARDED_NEGATIVE_CASES, ids=[c[0] for c in UNSHARDED_NEGATIVE_CASES])
def test_unsharded_checks_catch_regressions(raw_template: dict[str, Any], what: str, mutate, check) -> None:
    unsharded = render(raw_template, 1)
    mutated = json.loads(json.dumps(unsharded))
    mutate(mutated)
    with pytest.raises(AssertionError):
        check(mutated)
    check(unsharded)


@pytest.mark.parametrize("what,mutate,check", SHARDED_NEGATIVE_CASES, ids=[c[0] for c in SHARDED_NEGATIVE_CASES])
def test_shard_checks_catch_regressions(raw_template: dict[str, Any], what: str, mutate, check) -> None:
    sharded = render(raw_template, 4)
    mutated = json.loads(json.dumps(sharded))
    mutate(mutated)
    with pytest.raises(AssertionError):
        check(mutated)
    check(sharded)


def test_shard_count_parameter_and_condition(raw_template: dict[str, Any]) -> None:
    """ShardCount: a Number, 1 by default, 1..64; the Sharded condition is "more than
    one"; exactly the shard resources depend on it, and every Fn::If asks it."""
    p = raw_template["Parameters"][SHARD_COUNT_PARAM]
    assert (p["Type"], p["Default"], p["MinValue"], p["MaxValue"]) == ("Number", 1, 1, 64), p
    assert raw_template["Conditions"][SHARDED] == {"Fn::Not": [{"Fn::Equals": [{"Ref": SHARD_COUNT_PARAM}, 1]}]}
    assert raw_template["Conditions"][UNSHARDED] == {"Fn::Equals": [{"Ref": SHARD_COUNT_PARAM}, 1]}
    conditional = {n for n, r in raw_template["Resources"].items() if "Condition" in r}
    assert conditional == SHARDED_ONLY | {"OpsEmailSubscription", SENTINEL_PERMISSION}, sorted(conditional)
    assert all(raw_template["Resources"][n]["Condition"] == SHARDED for n in SHARDED_ONLY)
    assert raw_template["Resources"][SENTINEL_PERMISSION]["Condition"] == UNSHARDED
    ifs = [v["Fn::If"][0] for _, v in walk(raw_template) if isinstance(v, dict) and set(v) == {"Fn::If"}]
    # (and the one source-account roles policy, check_source_roles_conditional)
    assert ifs and set(ifs) == {SHARDED, HAS_SOURCE_ROLES} and ifs.count(HAS_SOURCE_ROLES) == 1, ifs
    # 1 renders the unsharded stack, anything above the sharded one.
    for n in (2, 64):
        assert TICK in render(raw_template, n)["Resources"]
    assert TICK not in render(raw_template, 1)["Resources"]
    d = tick_definition(render(raw_template, 64))
    assert d["States"]["Shards"]["Parameters"]["shards.$"] == "States.ArrayRange(1, 64, 1)"
    assert simulate_tick(render(raw_template, 2)) == [shard_payload(1, 2), shard_payload(2, 2), deliver_payload(2)]


def test_evaluator_memory_is_a_parameter(raw_template: dict[str, Any]) -> None:
    """EvaluatorMemorySize: 512 MB by default, up to Lambda's 10,240; the evaluator's
    MemorySize is it (100,000 rules need 1,024: tests/benches/aws_cycle.rs)."""
    p = raw_template["Parameters"]["EvaluatorMemorySize"]
    assert (p["Type"], p["Default"], p["MinValue"], p["MaxValue"]) == ("Number", 512, 128, 10240), p
    props = raw_template["Resources"]["EvaluatorFunction"]["Properties"]
    assert props["MemorySize"] == {"Ref": "EvaluatorMemorySize"}, props["MemorySize"]


# ------------------------------------------------------------- samconfig.toml

SAMCONFIG = INFRA / "samconfig.toml"
STAGES = {"staging": False, "prod": True}  # stage -> confirm_changeset


def check_samconfig(doc: dict[str, Any]) -> None:
    """One `--config-env` per stage: its own stack, the Environment parameter of its
    name, IAM capability, SAM's bucket; prod confirms the change set, staging does not;
    every build section turns on the beta rust-cargolambda build method."""
    assert doc["default"]["build"]["parameters"]["beta_features"] is True
    for stage, confirm in STAGES.items():
        deploy = doc[stage]["deploy"]["parameters"]
        assert deploy["stack_name"] == f"firebell-{stage}", deploy
        assert deploy["capabilities"] == "CAPABILITY_IAM", deploy
        assert deploy["resolve_s3"] is True, deploy
        assert deploy["parameter_overrides"] == f"Environment={stage}", deploy
        assert deploy["confirm_changeset"] is confirm, (stage, deploy)
        assert doc[stage]["build"]["parameters"]["beta_features"] is True, stage


def test_samconfig() -> None:
    doc = tomllib.loads(SAMCONFIG.read_text())
    check_samconfig(doc)
    # The stage's Environment passes the template's own pattern.
    pattern = load_template(TEMPLATE)["Parameters"][ENVIRONMENT_PARAM]["AllowedPattern"]
    for stage in STAGES:
        assert re.fullmatch(pattern, stage), stage


@pytest.mark.parametrize(
    "what,path,value",
    [
        ("prod deploys without confirmation", ["prod", "deploy", "parameters", "confirm_changeset"], False),
        ("staging deploys as prod", ["staging", "deploy", "parameters", "parameter_overrides"], "Environment=prod"),
        ("prod on the staging stack", ["prod", "deploy", "parameters", "stack_name"], "firebell-staging"),
        ("prod build without the beta build method", ["prod", "build", "parameters", "beta_features"], False),
    ],
)
def test_samconfig_check_catches(what: str, path: list[str], value: Any) -> None:
    doc = tomllib.loads(SAMCONFIG.read_text())
    node = doc
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value
    with pytest.raises(AssertionError):
        check_samconfig(doc)


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


# ------------------------------------------------------ source-account roles


def test_source_account_roles(raw_template: dict[str, Any]) -> None:
    """With roles listed, the evaluator may assume exactly those; the other checks hold."""
    check_source_roles_conditional(raw_template)
    t = with_source_roles(raw_template)
    check_source_account_roles(t)
    check_function_role(t)
    check_no_wildcard_actions(t)
    check_star_resources(t)


SOURCE_ROLE_NEGATIVE_CASES = [
    ("the evaluator assumes any role", _assume_statement("Resource", "*"), check_source_account_roles),
    (
        "the evaluator assumes a role named in the template",
        _assume_statement("Resource", "arn:aws:iam::111122223333:role/x"),
        check_function_role,
    ),
    (
        "the roles parameter takes wildcards",
        _set(["Parameters", SOURCE_ROLES_PARAM, "AllowedPattern"], "^.*$"),
        check_source_account_roles,
    ),
    (
        "the roles parameter takes empty elements (a trailing comma)",
        _set(
            ["Parameters", SOURCE_ROLES_PARAM, "AllowedPattern"],
            "^$|^(arn:aws[a-z-]*:iam::[0-9]{12}:role/[A-Za-z0-9+=.@_/-]{1,512})?(,(arn:aws[a-z-]*:iam::[0-9]{12}:role/[A-Za-z0-9+=.@_/-]{1,512})?)*$",
        ),
        check_source_account_roles,
    ),
    (
        "the roles parameter is a CommaDelimitedList again",
        _set(["Parameters", SOURCE_ROLES_PARAM, "Type"], "CommaDelimitedList"),
        check_source_account_roles,
    ),
    (
        "the reporter assumes roles",
        _add_statement(REPORTER_ROLE, {"Effect": "Allow", "Action": "sts:AssumeRole", "Resource": {"Ref": SOURCE_ROLES_PARAM}}),
        check_source_account_roles,
    ),
]


@pytest.mark.parametrize(
    "what,mutate,check", SOURCE_ROLE_NEGATIVE_CASES, ids=[c[0] for c in SOURCE_ROLE_NEGATIVE_CASES]
)
def test_source_role_checks_catch_regressions(raw_template: dict[str, Any], what: str, mutate, check) -> None:
    mutated = json.loads(json.dumps(raw_template))
    mutate(mutated)
    with pytest.raises(AssertionError):
        check(with_source_roles(mutated))
    check(with_source_roles(raw_template))


def test_no_sts_without_source_account_roles(raw_template: dict[str, Any]) -> None:
    """The policy made unconditional is caught: by the raw check, and in the default
    render (no roles listed) by the rendered one."""
    mutated = json.loads(json.dumps(raw_template))
    _unconditional_assume(mutated)
    with pytest.raises(AssertionError):
        check_source_roles_conditional(mutated)
    with pytest.raises(AssertionError):
        check_source_account_roles(render(mutated, 1))
    check_source_account_roles(render(raw_template, 1))
