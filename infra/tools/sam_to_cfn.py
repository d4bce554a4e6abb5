#!/usr/bin/env python3
"""Transform infra/template.yaml (AWS SAM) into plain CloudFormation JSON, offline.

Uses the same translator CloudFormation runs for `Transform: AWS::Serverless-2016-10-31`
(PyPI package aws-sam-translator), so checkov can scan the resources that will really
exist (AWS::Lambda::Function, AWS::Lambda::LayerVersion, ...) and not the SAM shorthand.

Offline adjustments, none of which change a resource's security properties:
  * local CodeUri/ContentUri paths become placeholder S3 locations (that is what
    `sam package` would put there);
  * the region/account used to render ARNs are fixed placeholders;
  * managed-policy lookups (which would call IAM) resolve to an empty map: the template
    uses no SAM policy templates or managed policy names, and the test asserts that.

Resource Metadata (checkov skips with their reasons) is carried onto the generated
resources (passthrough_metadata), so a skip written in the SAM template applies to the
resource checkov sees.

Usage: sam_to_cfn.py TEMPLATE [OUTPUT.json]   (stdout when OUTPUT is omitted)
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

PLACEHOLDER_BUCKET = "firebell-offline-transform"
PLACEHOLDER_PARAMETERS = {
    "AWS::Region": "us-east-1",
    "AWS::Partition": "aws",
    "AWS::AccountId": "123456789012",
    "AWS::StackName": "firebell",
    "AWS::StackId": "arn:aws:cloudformation:us-east-1:123456789012:stack/firebell/00000000-0000-0000-0000-000000000000",
    "AWS::URLSuffix": "amazonaws.com",
    "AWS::NotificationARNs": [],
}
_LOCAL_CODE_PROPERTIES = {
    "AWS::Serverless::Function": "CodeUri",
    "AWS::Serverless::LayerVersion": "ContentUri",
}


class _NoManagedPolicies:
    """Stands in for samtranslator's IAM-backed ManagedPolicyLoader."""

    def load(self) -> dict[str, str]:
        return {}


def load_template(path: str | Path) -> dict[str, Any]:
    """Load a CloudFormation/SAM YAML or JSON template as plain Python data.

    cfn-lint's decoder understands the short-form intrinsics (!Ref, !GetAtt, !Sub, ...)
    and returns the long forms ({"Ref": ...}, {"Fn::GetAtt": [...]}).
    """
    from cfnlint.decode import decode

    template, matches = decode(str(path))
    if matches:
        raise SystemExit(f"{path}: cannot parse: " + "; ".join(str(m) for m in matches))
    # The decoder returns dict/str subclasses that carry line marks; round-trip through
    # JSON to get plain data.
    return json.loads(json.dumps(template))


def localize(template: dict[str, Any]) -> dict[str, Any]:
    """Replace local code paths with placeholder S3 URIs (in place) and return the template."""
    for name, resource in template.get("Resources", {}).items():
        prop = _LOCAL_CODE_PROPERTIES.get(resource.get("Type", ""))
        if not prop:
            continue
        props = resource.setdefault("Properties", {})
        value = props.get(prop)
        if isinstance(value, str) and not value.startswith("s3://"):
            props[prop] = f"s3://{PLACEHOLDER_BUCKET}/{name}.zip"
    return template


def transform_template(template: dict[str, Any]) -> dict[str, Any]:
    import boto3
    from samtranslator.parser.parser import Parser
    from samtranslator.translator.translator import Translator
    from samtranslator.utils.py27hash_fix import (
        to_py27_compatible_template,
        undo_mark_unicode_str_in_template,
    )

    region = PLACEHOLDER_PARAMETERS["AWS::Region"]
    parameters = dict(PLACEHOLDER_PARAMETERS)
    template = localize(template)
    # Same steps as samtranslator.translator.transform.transform(), but with an explicit
    # (credential-less, offline) boto session so the region never comes from the caller's
    # environment.
    to_py27_compatible_template(template, parameters)
    translator = Translator(None, Parser(), boto_session=boto3.session.Session(region_name=region))
    transformed = translator.translate(
        template,
        parameter_values=parameters,
        passthrough_metadata=True,
        get_managed_policy_map=_NoManagedPolicies().load,
    )
    return undo_mark_unicode_str_in_template(transformed)


def main(argv: list[str]) -> int:
    if len(argv) not in (2, 3):
        print(__doc__.strip().splitlines()[-1], file=sys.stderr)
        return 2
    out = json.dumps(transform_template(load_template(argv[1])), indent=2, sort_keys=True)
    if len(argv) == 3:
        Path(argv[2]).parent.mkdir(parents=True, exist_ok=True)
        Path(argv[2]).write_text(out + "\n")
    else:
        print(out)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
