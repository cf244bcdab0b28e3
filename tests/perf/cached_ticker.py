"""A cached ticker through ApiFunction's handler (``api_handler.handler``), fed API Gateway
REST (v1) proxy events, on a container started as Lambda starts one.

L1: answers from the container's memory, timed in rounds with the same handler answering a
constant route (a route added for the benchmark that returns a fixed body): what the cache
adds over the handler stack itself. L2: the memory tier is cleared before each request, so
the answer comes from DynamoDB; timed in rounds with a bare boto3 ``GetItem`` of the same
item on the same table (a client as boto3 makes it by default) and with the layers in
between. Each round runs its layers in a rotated order so that the machine's noise falls on
all alike; the layers show where the handler's time goes.

Powertools metrics stay on, as deployed: the handler's EMF output is part of its cost. The
runner captures stdout while a benchmark runs, which keeps the report readable.
"""

from __future__ import annotations

import asyncio
import inspect
import time
from collections.abc import Callable
from types import ModuleType
from typing import Any

from starlette.responses import Response

from infra.local.dynamodb import local_client
from market_proxy.cache.client import make_store
from market_proxy.keys import Kind, MarketKey
from tests.perf.report import Report, Spread
from tests.perf.stack import Handler, Stack, cold_start, invoke
from tests.support.apigw import LambdaContext, rest_event

TITLE = "Cached ticker through the Lambda handler"
EXCHANGE, SYMBOL = "binance", "BTC-USDT"
PATH = f"/ticker/{EXCHANGE}/{SYMBOL}"
KEY = MarketKey(Kind.TICKER, "binance", "BTC/USDT").text
CONSTANT = "/_bench/constant"
ROUNDS_WARMUP, ROUNDS = 60, 400
L1_ROUNDS = 2000
# Every timed request must hit the tier under test, however long the run takes; how long a
# ticker stays fresh does not enter the cost of a hit. Everything else is as deployed.
TTL_S = 3600.0

BARE = "GetItem, bare boto3"
HANDLER = "L2 hit, handler"
L1 = "L1 hit, handler"
CONSTANT_ROUTE = "constant route, handler"
Layer = Callable[[], float]  # one request; returns the seconds it took


def run(stack: Stack) -> Report:
    report = Report(TITLE)
    with (
        stack.deployed("ApiFunction", ticker_ttl_seconds=TTL_S) as settings,
        cold_start("api_handler", settings) as module,
    ):
        _constant_route(module)
        _timed(module.handler, "upstream")
        l1_rounds = _rounds(
            {L1: lambda: _timed(module.handler, "l1"), CONSTANT_ROUTE: lambda: _constant(module)},
            warmup=ROUNDS_WARMUP,
            rounds=L1_ROUNDS,
        )
        timings = _rounds(
            _layers(module, stack.dynamodb.endpoint, settings.table_name),
            warmup=ROUNDS_WARMUP,
            rounds=ROUNDS,
        )
    l1, constant = Spread.of(l1_rounds[L1]), Spread.of(l1_rounds[CONSTANT_ROUTE])
    spreads = {name: Spread.of(samples) for name, samples in timings.items()}
    bare, handler = spreads[BARE], spreads[HANDLER]

    report.figure(f"L1, {L1_ROUNDS} rounds of an L1 hit and a constant route, in turn:")
    report.figure(l1.line(L1, f"p50 {l1.p50 / constant.p50:4.2f}x the constant route's"))
    report.figure(constant.line(CONSTANT_ROUTE))
    report.figure(f"L2, {ROUNDS} rounds timing each layer once, in a rotated order:")
    for name, spread in spreads.items():
        report.figure(spread.line(name, f"p50 {spread.p50 / bare.p50:4.2f}x GetItem's"))
    report.figure(f"p90 of the L2 hit: {handler.p90 / bare.p90:.2f}x GetItem's")
    report.target("L1 hit p50 / constant route p50", round(l1.p50 / constant.p50, 2), 1.3, "x")
    report.target("L2 hit p50 / bare GetItem p50", round(handler.p50 / bare.p50, 2), 1.6, "x")
    return report


def _constant_route(module: ModuleType) -> None:
    """A route on the handler's own app that answers a fixed ticker-sized body: the cost of
    the handler stack (Powertools, Mangum, FastAPI, the middleware) with no cache at all."""
    body = b'{"exchange":"binance","symbol":"BTC/USDT","last":1.0}' * 8

    async def constant() -> Response:
        return Response(body, media_type="application/json")

    module.app.add_api_route(CONSTANT, constant, methods=["GET"], include_in_schema=False)


def _constant(module: ModuleType) -> float:
    event, context = rest_event(CONSTANT), LambdaContext()
    started = time.perf_counter()
    response = module.handler(event, context)
    elapsed = time.perf_counter() - started
    if response["statusCode"] != 200:
        raise RuntimeError(f"the constant route answered {response['statusCode']}")
    return elapsed


def _timed(handler: Handler, tier: str) -> float:
    return invoke(handler, PATH, tier=tier)[0]


def _layers(module: ModuleType, endpoint: str, table: str) -> dict[str, Layer]:
    """From a bare ``GetItem`` to the whole handler, each layer adding one thing."""
    client: Any = local_client(endpoint)
    service = module.service
    store = make_store(service.settings)  # as the service makes its own
    loop = asyncio.get_event_loop()  # the container's, which Mangum runs every request on
    request = {"TableName": table, "Key": {"pk": {"S": KEY}}}
    undecorated = inspect.unwrap(module.handler)

    def bare() -> float:
        started = time.perf_counter()
        found = client.get_item(**request)
        elapsed = time.perf_counter() - started
        if "Item" not in found:
            raise RuntimeError(f"{KEY} is not in the table")
        return elapsed

    def store_get() -> float:
        started = time.perf_counter()
        loop.run_until_complete(store.get(KEY))
        return time.perf_counter() - started

    def service_ticker() -> float:
        service._memory.clear()
        started = time.perf_counter()
        answer = loop.run_until_complete(service.ticker(EXCHANGE, SYMBOL))
        elapsed = time.perf_counter() - started
        if answer.freshness.source != "l2":
            raise RuntimeError(f"expected l2, the service answered from {answer.freshness.source}")
        return elapsed

    def without_powertools() -> float:
        service._memory.clear()
        return _timed(undecorated, "l2")

    def handler() -> float:
        service._memory.clear()
        return _timed(module.handler, "l2")

    return {
        BARE: bare,
        "DynamoDBStore.get, decoded (the service's client)": store_get,
        "MarketData.ticker, memory cleared": service_ticker,
        "handler without Powertools' decorators": without_powertools,
        HANDLER: handler,
    }


def _rounds(layers: dict[str, Layer], *, warmup: int, rounds: int) -> dict[str, list[float]]:
    timings: dict[str, list[float]] = {name: [] for name in layers}
    names = list(layers)
    for index in range(warmup + rounds):
        shift = index % len(names)
        for name in names[shift:] + names[:shift]:
            elapsed = layers[name]()
            if index >= warmup:
                timings[name].append(elapsed)
    return timings
