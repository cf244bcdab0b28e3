"""What CloudFormation will deploy: the SAM transform run offline, and asserts on its output."""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import Any

import pytest

from infra.checks.template import lint, transformed
from infra.local.template import load_template
from market_proxy.cache.dynamodb import TTL_ATTRIBUTE


@cache
def deployed() -> dict[str, Any]:
    return transformed()


def resources(kind: str) -> dict[str, dict[str, Any]]:
    return {name: r for name, r in deployed()["Resources"].items() if r["Type"] == kind}


def test_the_transformed_template_passes_cfn_lint(tmp_path: Path) -> None:
    assert lint(deployed(), tmp_path / "transformed.json") == []


def test_the_stream_route_is_a_streaming_integration_with_a_long_timeout() -> None:
    (api,) = resources("AWS::ApiGateway::RestApi").values()
    integration = api["Properties"]["Body"]["paths"]["/sse/{proxy+}"]["get"][
        "x-amazon-apigateway-integration"
    ]
    assert integration["responseTransferMode"] == "STREAM"
    assert integration["uri"]["Fn::Sub"].endswith(
        "/2021-11-15/functions/${StreamFunction.Arn}/response-streaming-invocations"
    )
    assert integration["timeoutInMillis"] == 900000


def test_other_routes_stay_buffered_on_the_api_function() -> None:
    (api,) = resources("AWS::ApiGateway::RestApi").values()
    integration = api["Properties"]["Body"]["paths"]["/{proxy+}"]["x-amazon-apigateway-any-method"][
        "x-amazon-apigateway-integration"
    ]
    assert "responseTransferMode" not in integration
    assert "${ApiFunction.Arn}/invocations" in integration["uri"]["Fn::Sub"]


def test_the_api_is_regional() -> None:
    (api,) = resources("AWS::ApiGateway::RestApi").values()
    assert api["Properties"]["EndpointConfiguration"]["Types"] == ["REGIONAL"]


def test_the_function_url_streams() -> None:
    (url,) = resources("AWS::Lambda::Url").values()
    assert url["Properties"]["InvokeMode"] == "RESPONSE_STREAM"
    assert url["Properties"]["TargetFunctionArn"] == {"Ref": "StreamFunction"}


def test_the_stream_function_runs_under_the_web_adapter_matching_its_architecture() -> None:
    function = resources("AWS::Lambda::Function")["StreamFunction"]["Properties"]
    variables = function["Environment"]["Variables"]
    assert variables["AWS_LAMBDA_EXEC_WRAPPER"] == "/opt/bootstrap"
    assert variables["AWS_LWA_INVOKE_MODE"] == "response_stream"
    assert variables["AWS_LWA_READINESS_CHECK_PATH"] == "/health"
    assert function["Handler"] == "run.sh"
    assert function["Timeout"] == 900
    (layer,) = function["Layers"]
    architecture = function["Architectures"][0]
    expected = {"arm64": "LambdaAdapterLayerArm64", "x86_64": "LambdaAdapterLayerX86"}[architecture]
    assert f":753240598075:layer:{expected}:" in layer["Fn::Sub"]
    assert int(variables["STREAM_MAX_SECONDS"]) < function["Timeout"]


def test_every_function_may_use_only_the_cache_table_and_only_the_calls_it_makes() -> None:
    (policy,) = resources("AWS::IAM::ManagedPolicy").values()
    (statement,) = policy["Properties"]["PolicyDocument"]["Statement"]
    assert statement["Resource"] == {"Fn::GetAtt": ["CacheTable", "Arn"]}
    assert sorted(statement["Action"]) == sorted(
        [
            "dynamodb:GetItem",
            "dynamodb:BatchGetItem",
            "dynamodb:PutItem",
            "dynamodb:BatchWriteItem",
            "dynamodb:UpdateItem",
            "dynamodb:DescribeTable",
        ]
    )
    for name, role in resources("AWS::IAM::Role").items():
        managed = role["Properties"]["ManagedPolicyArns"]
        assert {"Ref": "CacheAccessPolicy"} in managed, name
        assert "Policies" not in role["Properties"] or not role["Properties"]["Policies"], name


def test_the_table_expires_items_on_the_attribute_the_code_writes() -> None:
    table = resources("AWS::DynamoDB::Table")["CacheTable"]["Properties"]
    assert table["TimeToLiveSpecification"] == {"AttributeName": TTL_ATTRIBUTE, "Enabled": True}
    assert table["BillingMode"] == "PAY_PER_REQUEST"
    assert table["KeySchema"] == [{"AttributeName": "pk", "KeyType": "HASH"}]


def test_the_warmer_runs_on_its_schedule() -> None:
    (rule,) = resources("AWS::Events::Rule").values()
    assert rule["Properties"]["ScheduleExpression"]["Fn::If"][1] == "rate(1 minute)"
    (target,) = rule["Properties"]["Targets"]
    assert target["Arn"] == {"Fn::GetAtt": ["WarmerFunction", "Arn"]}


@pytest.mark.parametrize("function", ["ApiFunction", "StreamFunction", "WarmerFunction"])
def test_functions_run_python_3_12_with_tracing_and_the_table_name(function: str) -> None:
    properties = resources("AWS::Lambda::Function")[function]["Properties"]
    assert properties["Runtime"] == "python3.12"
    assert properties["TracingConfig"] == {"Mode": "Active"}
    assert properties["Environment"]["Variables"]["TABLE_NAME"] == {"Ref": "CacheTable"}


def test_the_sam_template_is_the_only_place_the_table_schema_lives() -> None:
    table = load_template()["Resources"]["CacheTable"]["Properties"]
    assert table["AttributeDefinitions"] == [{"AttributeName": "pk", "AttributeType": "S"}]
