"""Offline checks of ``template.yaml``: the SAM transform, then cfn-lint on what it produced.

``sam validate --lint`` reads the SAM template; what CloudFormation deploys is the
transformed one, and a wrong streaming setting is silently buffered there, so this runs
the same transform AWS runs (aws-sam-translator) and lints its output too.

    python -m infra.checks.template    # writes .aws-sam/transformed.json, lints it
"""

from __future__ import annotations

import copy
import json
import sys
from pathlib import Path
from typing import Any

from infra.local.template import TEMPLATE, load_template

PSEUDO_PARAMETERS = {
    "AWS::Region": "us-east-1",
    "AWS::AccountId": "123456789012",
    "AWS::Partition": "aws",
    "AWS::StackName": "market-data-proxy",
    "AWS::URLSuffix": "amazonaws.com",
}


def transformed(path: Path = TEMPLATE) -> dict[str, Any]:
    """The CloudFormation template the SAM transform makes of ``path``.

    The template names no AWS managed policy by name, so no IAM look-up is needed, and the
    region is given, so nothing reaches AWS.
    """
    import boto3
    from samtranslator.parser.parser import Parser
    from samtranslator.translator.translator import Translator

    document = copy.deepcopy(load_template(path))
    _as_packaged(document)
    session = boto3.session.Session(region_name=PSEUDO_PARAMETERS["AWS::Region"])
    translator = Translator(None, Parser(), boto_session=session)
    result: dict[str, Any] = translator.translate(
        document,
        parameter_values=dict(PSEUDO_PARAMETERS),
        get_managed_policy_map=dict,
    )
    return result


def _as_packaged(document: dict[str, Any]) -> None:
    """Point local code at S3, as ``sam package`` does before CloudFormation sees it."""
    sections = [document.get("Globals", {}).get("Function", {})]
    sections += [r.get("Properties", {}) for r in document.get("Resources", {}).values()]
    for properties in sections:
        if isinstance(properties.get("CodeUri"), str):
            properties["CodeUri"] = "s3://artifacts/market-data-proxy.zip"


def lint(document: dict[str, Any], where: Path) -> list[str]:
    """cfn-lint's findings on a plain CloudFormation template, one line each."""
    import cfnlint.api

    where.parent.mkdir(parents=True, exist_ok=True)
    where.write_text(json.dumps(document, indent=1, default=str))
    matches = cfnlint.api.lint_file(where, config=cfnlint.api.ManualArgs(regions=["us-east-1"]))
    return [f"{m.rule.id} {m.message} ({m.path_string})" for m in matches]


def main() -> int:
    output = Path(".aws-sam") / "transformed.json"
    findings = lint(transformed(), output)
    for finding in findings:
        print(finding)
    print(f"{output}: {len(findings)} cfn-lint finding(s) on the transformed template")
    return 1 if findings else 0


if __name__ == "__main__":
    sys.exit(main())
