"""What operators see when the functions run: Powertools' JSON logs with the request's
correlation id, EMF metrics flushed on every path, and X-Ray subsegments for the upstream and
DynamoDB calls.

Traces are read the way the X-Ray daemon reads them: the functions' X-Ray SDK sends UDP
datagrams to ``AWS_XRAY_DAEMON_ADDRESS``; here a loopback socket stands in for the daemon,
and the handler runs in a fresh interpreter set up as Lambda sets one up.
"""

from __future__ import annotations

import json
import os
import socket
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from types import ModuleType
from typing import Any

import httpx
import pytest
from aws_lambda_powertools.metrics.provider.cold_start import reset_cold_start_flag

from infra.exchange_sim import ExchangeSim
from market_proxy.settings import Settings
from tests.support.apigw import LambdaContext, rest_event
from tests.support.emf import documents, log_records, metric_total
from tests.support.http import serve
from tests.support.interpreter import last_json, run_fresh
from tests.support.lambda_module import cold_starts
from tests.support.output import captured
from tests.support.stack import environment_for

pytestmark = pytest.mark.e2e
TRACE_ROOT = "1-6744c3a0-5f1e2d3c4b5a69788796a5b4"
LAMBDA_PARENT = "53995c3f42cd8ad8"


@pytest.fixture
def cold_start(monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[..., ModuleType]]:
    """Import an entry module afresh, in a process Powertools sees as cold again."""
    reset_cold_start_flag()  # type: ignore[no-untyped-call]
    with cold_starts(monkeypatch) as start:
        yield start


def test_a_log_record_carries_api_gateways_request_id_which_the_answer_echoes(
    cold_start: Callable[..., ModuleType],
    settings: Settings,
    sim: ExchangeSim,
) -> None:
    module = cold_start("api_handler", settings)
    sim.inject("binance", "503", endpoint="ticker")
    with captured() as output:
        response = module.handler(
            rest_event("/ticker/binance/BTC-USDT", request_id="gw-req-42"), LambdaContext()
        )

    assert response["statusCode"] == 503
    assert response["headers"]["x-request-id"] == "gw-req-42"
    (record,) = log_records(output.getvalue(), "upstream call failed")
    assert record["correlation_id"] == "gw-req-42"
    assert record["level"] == "WARNING"
    assert record["service"] == "market-data-proxy"
    assert (record["exchange"], record["code"]) == ("binance", "upstream_unavailable")


def test_each_invocation_flushes_its_metrics_with_and_without_the_exchange_dimension(
    cold_start: Callable[..., ModuleType],
    settings: Settings,
    sim: ExchangeSim,
) -> None:
    module = cold_start("api_handler", settings)
    sim.set_latency(0.03)
    with captured() as output:
        module.handler(rest_event("/ticker/binance/BTC-USDT"), LambdaContext())
    first = output.getvalue()
    with captured() as output:
        module.handler(rest_event("/ticker/binance/BTC-USDT"), LambdaContext())
    second = output.getvalue()

    assert metric_total(first, "ColdStart") == 1
    assert metric_total(first, "CacheMiss") >= 1
    assert metric_total(first, "UpstreamCalls") >= 2  # markets, then the ticker
    assert metric_total(first, "UpstreamCalls", exchange="binance") == metric_total(
        first, "UpstreamCalls"
    )
    # Two calls of at least the exchange's 30 ms each.
    assert metric_total(first, "UpstreamLatency", exchange="binance") >= 2 * 30
    assert metric_total(second, "ColdStart") == 0
    assert metric_total(second, "CacheHitL1") == 1
    assert metric_total(second, "UpstreamCalls") == 0
    namespaces = {
        doc["_aws"]["CloudWatchMetrics"][0]["Namespace"]
        for doc in documents(first + second)
        if "_aws" in doc
    }
    assert namespaces == {os.environ["POWERTOOLS_METRICS_NAMESPACE"]}


def test_under_the_web_adapter_a_stream_flushes_its_metrics_when_it_ends_and_echoes_the_id(
    cold_start: Callable[..., ModuleType],
    settings: Settings,
) -> None:
    module = cold_start("stream_app", settings.model_copy(update={"stream_max_seconds": 1.0}))
    context = json.dumps({"requestId": "adapter-req-7", "stage": "v1"})
    with serve(module.app) as url, captured() as output:
        with httpx.stream(
            "GET",
            f"{url}/sse/ticker/binance/BTC-USDT",
            headers={"x-amzn-request-context": context},
            timeout=10,
        ) as response:
            assert response.headers["x-request-id"] == "adapter-req-7"
            text = "".join(response.iter_text())
        deadline = time.monotonic() + 5
        while metric_total(output.getvalue(), "StreamsClosed") < 1:
            assert time.monotonic() < deadline, "the stream's metrics were never flushed"
            time.sleep(0.05)

    printed = output.getvalue()
    assert "event: reconnect" in text
    assert metric_total(printed, "StreamsOpened") == 1
    assert metric_total(printed, "StreamsClosed") == 1
    assert metric_total(printed, "StreamEvents") >= 1


@contextmanager
def xray_daemon() -> Iterator[tuple[str, list[dict[str, Any]]]]:
    """A loopback UDP socket in the X-Ray daemon's place. Yields its address and a list that,
    once the block ends, holds the segment documents that arrived."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    sock.settimeout(0.2)
    host, port = sock.getsockname()
    received: list[dict[str, Any]] = []
    try:
        yield f"{host}:{port}", received
        deadline = time.monotonic() + 1
        while time.monotonic() < deadline:
            try:
                datagram, _ = sock.recvfrom(65535)
            except TimeoutError:
                continue
            header, _, document = datagram.decode().partition("\n")
            assert json.loads(header) == {"format": "json", "version": 1}
            received.append(json.loads(document))
    finally:
        sock.close()


def subsegments(received: list[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    pending = list(received)
    while pending:
        segment = pending.pop()
        yield segment
        pending.extend(segment.get("subsegments", []))


def test_upstream_and_dynamodb_calls_are_traced_under_the_lambda_invocation(
    settings: Settings, sim: ExchangeSim
) -> None:
    invocation = (
        "import api_handler\n"
        "from tests.support.apigw import LambdaContext, rest_event\n"
        "r = api_handler.handler(rest_event('/ticker/binance/BTC-USDT'), LambdaContext())\n"
        "print(r['statusCode'])\n"
    )
    with xray_daemon() as (address, received):
        environment = {
            **os.environ,
            **environment_for(settings),
            # What Lambda's runtime sets, and what makes the X-Ray SDK trace as it does there.
            "LAMBDA_TASK_ROOT": os.getcwd(),
            "AWS_LAMBDA_FUNCTION_NAME": "market-data-proxy-ApiFunction",
            "_X_AMZN_TRACE_ID": f"Root={TRACE_ROOT};Parent={LAMBDA_PARENT};Sampled=1",
            "AWS_XRAY_DAEMON_ADDRESS": address,
            "POWERTOOLS_TRACE_DISABLED": "false",
            "PYTHONPATH": os.pathsep.join(["functions", "."]),
        }
        status = last_json(run_fresh(invocation, env=environment, cwd=Path.cwd()))

    assert status == 200
    segments = list(subsegments(received))
    assert {s["trace_id"] for s in segments} == {TRACE_ROOT}
    by_name: dict[str, list[dict[str, Any]]] = {}
    for segment in segments:
        by_name.setdefault(segment["name"], []).append(segment)
    (handler,) = by_name["## handler"]
    assert handler["parent_id"] == LAMBDA_PARENT
    assert handler["annotations"]["ColdStart"] is True
    upstream = {s["annotations"]["call"]: s for s in by_name["## upstream ticker"]} | {
        s["annotations"]["call"]: s for s in by_name.get("## upstream markets", [])
    }
    assert set(upstream) == {"ticker", "markets"}
    assert {s["annotations"]["exchange"] for s in upstream.values()} == {"binance"}
    assert all(s["end_time"] >= s["start_time"] for s in upstream.values())
    operations = {s["aws"]["operation"] for s in by_name["dynamodb"]}
    assert {"GetItem", "UpdateItem", "PutItem"} <= operations
    assert {s["aws"]["table_name"] for s in by_name["dynamodb"]} == {settings.table_name}
