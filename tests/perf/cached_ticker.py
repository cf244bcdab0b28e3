"""A cached ticker through ApiFunction's handler (``api_handler.handler``), fed API Gateway
REST (v1) proxy events, on a container started as Lambda starts one.

L1: answers from the container's memory. L2: the memory tier is cleared before each request,
so the answer comes from DynamoDB. L2 is timed in rounds with a bare boto3 ``GetItem`` of the
same item on the same table and with the layers in between, each round in a rotated order so
that the machine's noise falls on all alike; the layers show where the handler's time goes.
The store reads without boto3 (``market_proxy.cache.direct``), so the same ``GetItem`` made
that way is timed too: the handler's time over it is what the service and the frameworks add.

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

from botocore.credentials import Credentials

from infra.local.dynamodb import local_client
from market_proxy.cache.direct import DirectReads
from tests.perf.report import Report, Spread
from tests.perf.stack import Handler, Stack, cold_start, invoke

TITLE = "Cached ticker through the Lambda handler"
EXCHANGE, SYMBOL = "binance", "BTC-USDT"
PATH = f"/ticker/{EXCHANGE}/{SYMBOL}"
KEY = "ticker#binance#BTC/USDT"
L1_WARMUP, L1_SAMPLES = 300, 3000
ROUNDS_WARMUP, ROUNDS = 60, 400
# Every timed request must hit the tier under test, however long the run takes; how long a
# ticker stays fresh does not enter the cost of a hit. Everything else is as deployed.
TTL_S = 3600.0

BARE = "GetItem, bare boto3"
DIRECT = "GetItem, direct (the store's wire path)"
HANDLER = "L2 hit, handler"
Layer = Callable[[], float]  # one request; returns the seconds it took


def run(stack: Stack) -> Report:
    report = Report(TITLE)
    with (
        stack.deployed("ApiFunction", ticker_ttl_seconds=TTL_S) as settings,
        cold_start("api_handler", settings) as module,
    ):
        _timed(module.handler, "upstream")
        l1 = [_timed(module.handler, "l1") for _ in range(L1_WARMUP + L1_SAMPLES)]
        timings = _rounds(_layers(module, stack.dynamodb.endpoint, settings.table_name))
    l1_hit = Spread.of(l1[L1_WARMUP:])
    spreads = {name: Spread.of(samples) for name, samples in timings.items()}
    bare, handler = spreads[BARE], spreads[HANDLER]

    report.figure(l1_hit.line("L1 hit, handler"))
    report.figure(f"L2, {ROUNDS} rounds timing each layer once, in a rotated order:")
    for name, spread in spreads.items():
        report.figure(spread.line(name, f"p50 {spread.p50 / bare.p50:4.2f}x GetItem's"))
    report.figure(f"p90 of the L2 hit: {handler.p90 / bare.p90:.2f}x GetItem's")
    direct = spreads[DIRECT]
    report.figure(
        f"the handler adds {handler.p50 - direct.p50:.3f} ms (p50) to the direct GetItem it makes; "
        f"boto3 adds {bare.p50 - direct.p50:.3f} ms to the same GetItem"
    )
    report.target("L1 hit p50", round(l1_hit.p50, 3), 0.5, " ms", inclusive=False)
    report.target("L2 hit p50 / bare GetItem p50", round(handler.p50 / bare.p50, 2), 1.3, "x")
    return report


def _timed(handler: Handler, tier: str) -> float:
    return invoke(handler, PATH, tier=tier)[0]


def _layers(module: ModuleType, endpoint: str, table: str) -> dict[str, Layer]:
    """From a bare ``GetItem`` to the whole handler, each layer adding one thing."""
    client: Any = local_client(endpoint)
    service = module.service
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

    direct = DirectReads(endpoint, "us-east-1", Credentials("local", "local"), timeout_s=1.0)

    def direct_read() -> float:
        started = time.perf_counter()
        found = direct.call("get_item", request)
        elapsed = time.perf_counter() - started
        if "Item" not in found:
            raise RuntimeError(f"{KEY} is not in the table")
        return elapsed

    def on_worker_thread() -> float:
        started = time.perf_counter()
        loop.run_until_complete(asyncio.to_thread(direct.call, "get_item", request))
        return time.perf_counter() - started

    def store_get() -> float:
        started = time.perf_counter()
        loop.run_until_complete(service.store.get(KEY))
        return time.perf_counter() - started

    def service_ticker() -> float:
        service.cache.memory.clear()
        started = time.perf_counter()
        answer = loop.run_until_complete(service.ticker(EXCHANGE, SYMBOL))
        elapsed = time.perf_counter() - started
        if answer.cached.source != "l2":
            raise RuntimeError(f"expected l2, the service answered from {answer.cached.source}")
        return elapsed

    def without_powertools() -> float:
        service.cache.memory.clear()
        return _timed(undecorated, "l2")

    def handler() -> float:
        service.cache.memory.clear()
        return _timed(module.handler, "l2")

    return {
        BARE: bare,
        DIRECT: direct_read,
        "direct GetItem on a worker thread": on_worker_thread,
        "DynamoDBStore.get, decoded": store_get,
        "MarketData.ticker, memory cleared": service_ticker,
        "handler without Powertools' decorators": without_powertools,
        HANDLER: handler,
    }


def _rounds(layers: dict[str, Layer]) -> dict[str, list[float]]:
    timings: dict[str, list[float]] = {name: [] for name in layers}
    names = list(layers)
    for index in range(ROUNDS_WARMUP + ROUNDS):
        shift = index % len(names)
        for name in names[shift:] + names[:shift]:
            elapsed = layers[name]()
            if index >= ROUNDS_WARMUP:
                timings[name].append(elapsed)
    return timings
