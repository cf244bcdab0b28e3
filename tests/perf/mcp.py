"""A cached MCP tool call (``get_ticker`` over ``POST /mcp``) through ApiFunction's handler,
fed API Gateway REST (v1) events, against the same cached ticker asked of ``/ticker``.

Both read the same L1 entry on a container started as Lambda starts one; each round times
every case once, in a rotated order, so that the machine's noise falls on all alike. The
other cases show what the rest of the protocol costs: the 2026-07-28 era, ``tools/list``,
an error result, a bad argument. Then, in a fresh interpreter with the service's libraries
loaded (a container after init), what the first ``/mcp`` request adds: the SDK's import
and the tools' build, which the REST cold start does not pay.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Any

from tests.perf.report import Report, Spread
from tests.perf.stack import Stack, cold_start, invoke
from tests.support.apigw import LambdaContext
from tests.support.interpreter import last_json, run_fresh
from tests.support.mcp_events import MODERN, mcp_event, reply, tool_call

TITLE = "Cached MCP tool call through the Lambda handler"
TICKER = {"exchange": "binance", "symbol": "BTC-USDT"}
PATH = "/ticker/binance/BTC-USDT"
ROUNDS_WARMUP, ROUNDS = 100, 1500
TTL_S = 3600.0  # every timed request hits L1, however long the run takes
TARGET = 1.5

REST = "REST /ticker, L1 hit"
MCP = "MCP get_ticker, L1 hit (2025-11-25)"
Case = Callable[[], float]

FIRST_REQUEST = """
import json, time
import fastapi, pydantic, ccxt.async_support
from market_proxy.service import MarketData
from market_proxy.settings import Settings
started = time.perf_counter()
from market_proxy.mcp_server import endpoint
imported = time.perf_counter()
endpoint.Endpoint(MarketData(Settings(), None))
built = time.perf_counter()
print(json.dumps({"import": imported - started, "build": built - imported}))
"""


def run(stack: Stack) -> Report:
    report = Report(TITLE)
    with (
        stack.deployed("ApiFunction", ticker_ttl_seconds=TTL_S) as settings,
        cold_start("api_handler", settings) as module,
    ):
        invoke(module.handler, PATH, tier="upstream")
        started = time.perf_counter()
        _mcp(module, tool_call("get_ticker", TICKER))
        first = time.perf_counter() - started
        timings = _rounds(_cases(module))
    spreads = {name: Spread.of(samples) for name, samples in timings.items()}
    rest, mcp = spreads[REST], spreads[MCP]
    cost = last_json(run_fresh(FIRST_REQUEST, env=_environment(), cwd=Path.cwd()))

    report.figure(f"{ROUNDS} rounds timing each case once, in a rotated order:")
    for name, spread in spreads.items():
        report.figure(spread.line(name, f"p50 {spread.p50 / rest.p50:4.2f}x REST's"))
    report.figure(f"p90 of the MCP call: {mcp.p90 / rest.p90:.2f}x REST's")
    report.figure(
        f"first /mcp request in this process: {first * 1000:.0f} ms (the SDK may be loaded)"
    )
    report.figure(
        f"first /mcp request of a container: SDK import {cost['import'] * 1000:.0f} ms, "
        f"tools built {cost['build'] * 1000:.0f} ms (fresh interpreter; not on REST's path)"
    )
    report.target(
        "MCP get_ticker p50 / REST /ticker p50", round(mcp.p50 / rest.p50, 2), TARGET, "x"
    )
    return report


def _cases(module: ModuleType) -> dict[str, Case]:
    def rest() -> float:
        return invoke(module.handler, PATH, tier="l1")[0]

    def legacy() -> float:
        return _mcp(module, tool_call("get_ticker", TICKER), source="l1")

    def modern() -> float:
        return _mcp(module, tool_call("get_ticker", TICKER, version=MODERN), source="l1")

    def listed() -> float:
        return _mcp(module, mcp_event("tools/list"))

    def problem() -> float:
        unknown = {"exchange": "binance", "symbol": "NOPE-USDT"}
        return _mcp(module, tool_call("get_ticker", unknown), error_result=True)

    def bad() -> float:
        return _mcp(module, tool_call("get_ticker", {"exchange": "binance"}), code=-32602)

    return {
        REST: rest,
        MCP: legacy,
        "MCP get_ticker, L1 hit (2026-07-28)": modern,
        "MCP tools/list (cached per version)": listed,
        "MCP get_ticker, unknown market (isError)": problem,
        "MCP get_ticker, missing argument (-32602)": bad,
    }


def _mcp(
    module: ModuleType,
    event: dict[str, Any],
    *,
    source: str | None = None,
    error_result: bool = False,
    code: int | None = None,
) -> float:
    """One MCP request through the handler: the seconds it took, its answer checked."""
    context = LambdaContext()
    started = time.perf_counter()
    response = module.handler(event, context)
    elapsed = time.perf_counter() - started
    answer = reply(response)
    if answer.status != 200:
        raise RuntimeError(f"/mcp answered {answer.status}: {str(answer.body)[:300]}")
    if code is not None:
        if answer.error["code"] != code:
            raise RuntimeError(f"expected error {code}, got {answer.body}")
        return elapsed
    result = answer.result
    if bool(result.get("isError")) != error_result:
        raise RuntimeError(f"unexpected result: {json.dumps(result)[:300]}")
    if source is not None and result["structuredContent"]["freshness"]["source"] != source:
        raise RuntimeError(f"expected {source}: {result['structuredContent']['freshness']}")
    return elapsed


def _rounds(cases: dict[str, Case]) -> dict[str, list[float]]:
    timings: dict[str, list[float]] = {name: [] for name in cases}
    names = list(cases)
    for index in range(ROUNDS_WARMUP + ROUNDS):
        shift = index % len(names)
        for name in names[shift:] + names[:shift]:
            elapsed = cases[name]()
            if index >= ROUNDS_WARMUP:
                timings[name].append(elapsed)
    return timings


def _environment() -> dict[str, str]:
    """The benchmark's own environment for the fresh interpreter (no settings needed)."""
    return {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "PYTHONPATH": "functions:.",
        **{k: v for k, v in os.environ.items() if k.startswith(("AWS_", "POWERTOOLS_"))},
    }
