"""What CloudFormation will deploy: the SAM transform run offline, and asserts on its output."""

from __future__ import annotations

import json
import re
from functools import cache
from pathlib import Path
from typing import Any

import pytest

from infra.checks.template import lint, transformed
from infra.local.template import load_template
from market_proxy.cache.codec import TTL_ATTRIBUTE


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
    assert (
        "/2015-03-31/functions/${ApiFunctionAliaslive}/invocations" in integration["uri"]["Fn::Sub"]
    )


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


def test_the_api_function_starts_from_a_snapshot_behind_an_alias_the_api_invokes() -> None:
    properties = resources("AWS::Lambda::Function")["ApiFunction"]["Properties"]
    assert properties["SnapStart"] == {"ApplyOn": "PublishedVersions"}
    (alias,) = resources("AWS::Lambda::Alias").values()
    assert alias["Properties"]["FunctionName"] == {"Ref": "ApiFunction"}
    (api,) = resources("AWS::ApiGateway::RestApi").values()
    for path, method in (("/", "get"), ("/{proxy+}", "x-amazon-apigateway-any-method")):
        uri = api["Properties"]["Body"]["paths"][path][method]["x-amazon-apigateway-integration"]
        assert "${ApiFunctionAliaslive}/invocations" in uri["uri"]["Fn::Sub"], path
    permissions = [
        p["Properties"]
        for p in resources("AWS::Lambda::Permission").values()
        if p["Properties"]["Principal"] == "apigateway.amazonaws.com"
    ]
    assert {"Ref": "ApiFunctionAliaslive"} in [p["FunctionName"] for p in permissions]


def test_the_stage_is_throttled_by_parameters() -> None:
    (stage,) = resources("AWS::ApiGateway::Stage").values()
    (setting,) = stage["Properties"]["MethodSettings"]
    assert setting["ThrottlingRateLimit"] == {"Ref": "ThrottleRateLimit"}
    assert setting["ThrottlingBurstLimit"] == {"Ref": "ThrottleBurstLimit"}
    assert (setting["ResourcePath"], setting["HttpMethod"]) == ("/*", "*")


def test_a_parameter_switches_the_api_key_and_its_usage_plan_on() -> None:
    template = deployed()
    assert template["Conditions"]["UseApiKey"] == {
        "Fn::Equals": [{"Ref": "ApiKeyRequired"}, "true"]
    }
    for kind in ("AWS::ApiGateway::UsagePlan", "AWS::ApiGateway::ApiKey"):
        (resource,) = resources(kind).values()
        assert resource["Condition"] == "UseApiKey", kind
    (api,) = resources("AWS::ApiGateway::RestApi").values()
    paths = api["Properties"]["Body"]["paths"]
    keyed = {"Fn::If": ["UseApiKey", [{"api_key": []}], []]}
    assert paths["/{proxy+}"]["x-amazon-apigateway-any-method"]["security"] == keyed
    assert paths["/sse/{proxy+}"]["get"]["security"] == keyed
    # Browsers' CORS preflights carry no key.
    assert paths["/{proxy+}"]["options"]["security"] == []
    url = resources("AWS::Lambda::Url")["StreamFunctionUrl"]["Properties"]
    assert url["AuthType"] == {"Fn::If": ["UseApiKey", "AWS_IAM", "NONE"]}


def test_api_gateways_own_refusals_are_problem_json() -> None:
    (api,) = resources("AWS::ApiGateway::RestApi").values()
    responses = api["Properties"]["Body"]["x-amazon-apigateway-gateway-responses"]
    for kind in ("THROTTLED", "QUOTA_EXCEEDED", "API_KEY_REQUIRED", "INVALID_API_KEY"):
        body = responses[kind]["responseTemplates"]["application/json"]
        shaped = json.loads(
            body.replace("$context.error.message", "m").replace("$context.path", "/")
        )
        assert {"type", "title", "status", "code", "retryable"} <= set(shaped), kind


def test_cors_origins_reach_the_functions_from_a_parameter() -> None:
    variables = load_template()["Globals"]["Function"]["Environment"]["Variables"]
    assert variables["CORS_ALLOW_ORIGINS"] == {"Ref": "CorsAllowOrigins"}


def test_streams_and_warmer_runs_are_bounded_in_concurrency() -> None:
    functions = resources("AWS::Lambda::Function")
    assert functions["StreamFunction"]["Properties"]["ReservedConcurrentExecutions"] == {
        "Ref": "StreamConcurrencyLimit"
    }
    assert functions["WarmerFunction"]["Properties"]["ReservedConcurrentExecutions"] == 1


def emitted_metrics() -> set[str]:
    """Every metric name the code records (observability.count / latency calls)."""
    names: set[str] = set()
    for source in Path("functions").rglob("*.py"):
        names.update(
            re.findall(r"""\b(?:count|latency)\(\s*f?["']([A-Za-z0-9]+)["']""", source.read_text())
        )
    return names


def test_alarms_watch_metrics_the_code_emits_under_the_globals_namespace() -> None:
    template = load_template()
    names = template["Mappings"]["Observability"]["Names"]
    variables = template["Globals"]["Function"]["Environment"]["Variables"]
    assert variables["POWERTOOLS_METRICS_NAMESPACE"] == {
        "Fn::FindInMap": ["Observability", "Names", "Namespace"]
    }
    custom = set()
    for alarm in resources("AWS::CloudWatch::Alarm").values():
        properties = alarm["Properties"]
        stats = [
            m["MetricStat"]["Metric"] for m in properties.get("Metrics", []) if "MetricStat" in m
        ]
        for metric in [*stats, properties]:
            if metric.get("Namespace") == {
                "Fn::FindInMap": ["Observability", "Names", "Namespace"]
            }:
                custom.add(metric["MetricName"])
    assert custom == {
        "UpstreamErrors",
        "UpstreamCalls",
        "CacheStoreErrors",
        "WarmFailures",
        "BudgetPauses",
    }
    assert custom <= emitted_metrics()
    assert names["Namespace"] != "MarketDataProxyTest"  # the tests' own namespace


def test_there_is_an_alarm_for_each_operational_risk() -> None:
    described = " ".join(
        a["Properties"]["AlarmDescription"] for a in resources("AWS::CloudWatch::Alarm").values()
    )
    for risk in ("5xx", "exchanges fail", "throttled", "warmer failed", "exchange paused"):
        assert risk in described, risk


def test_the_dashboard_is_valid_json_and_charts_only_emitted_metrics() -> None:
    body = load_template()["Resources"]["Dashboard"]["Properties"]["DashboardBody"]["Fn::Sub"][0]
    dashboard = json.loads(re.sub(r"\$\{([^}]+)\}", r"\1", body))
    assert len(dashboard["widgets"]) >= 10
    charted: set[str] = set()
    for widget in dashboard["widgets"]:
        namespace = None
        for row in widget["properties"].get("metrics", []):
            head = row[0]
            if isinstance(head, dict):  # a SEARCH expression
                charted.update(re.findall(r'MetricName="(\w+)"', head["expression"]))
                continue
            if head != ".":
                namespace = head if head != "..." else namespace
            if namespace == "Ns" and head != "...":
                charted.add(row[1])
    assert charted <= emitted_metrics() | {"ColdStart"}, charted - emitted_metrics()
    assert {"CacheHitL1", "CacheMiss", "UpstreamCalls", "UpstreamErrors", "WarmFailures"} <= charted
