"""Ten thousand one-minute Binance candles through ApiFunction's handler, on a new container
and an empty table: the first request pages the exchange the fewest times its page size
allows (its markets load aside); repeats, from the container's memory and then from DynamoDB
as another container would read them, make no upstream call: every candle asked for is closed.
"""

from __future__ import annotations

import json
import math
import time
from types import ModuleType
from typing import Any

from market_proxy.exchanges.gateway import ohlcv_page_limit
from tests.perf.report import Report, Spread
from tests.perf.stack import Stack, cold_start, invoke

TITLE = "10,000 one-minute candles on Binance"
EXCHANGE = "binance"
PATH = f"/historical/{EXCHANGE}/BTC-USDT"
CANDLES, MINUTE_MS = 10_000, 60_000
REPEATS = 15


def run(stack: Stack) -> Report:
    report = Report(TITLE)
    # Ends a few minutes before the open candle: every candle asked for is closed.
    since = (time.time_ns() // 1_000_000 // MINUTE_MS - CANDLES - 5) * MINUTE_MS
    query = {"timeframe": "1m", "since": str(since), "limit": str(CANDLES)}
    with stack.deployed("ApiFunction") as settings, cold_start("api_handler", settings) as module:
        first_s, first = _get(module, query, "upstream")
        page = ohlcv_page_limit(module.service._gateway.client(EXCHANGE))
        first_ohlcv = stack.sim.calls(EXCHANGE, "ohlcv")
        markets = stack.sim.calls(EXCHANGE, "markets")
        stack.sim.reset_calls()
        from_memory = Spread.of([_get(module, query, "l1")[0] for _ in range(REPEATS)])
        from_table = Spread.of([_get(module, query, "l2", clear=True)[0] for _ in range(REPEATS)])
        repeat_calls = stack.sim.calls(EXCHANGE)
    returned = first["returned"]
    if returned["candles"] != CANDLES or returned["start"] != since:
        raise RuntimeError(f"asked {CANDLES} candles from {since}, got {returned}")

    fewest = math.ceil(CANDLES / page)
    report.figure(
        f"first request: {first_s * 1000:.0f} ms, {first_ohlcv} OHLCV call(s) at "
        f"{page} a page, {markets} markets call(s) (not counted); {len(first['gaps'])} gap(s)"
    )
    report.figure(from_memory.line("repeat from memory (l1), handler"))
    report.figure(from_table.line("repeat from DynamoDB (l2), handler"))
    report.figure(f"repeats: {repeat_calls} upstream call(s) of any kind")
    report.target("first request: OHLCV calls", first_ohlcv, fewest)
    report.target("repeats: upstream calls", repeat_calls, 0)
    return report


def _get(
    module: ModuleType, query: dict[str, str], tier: str, *, clear: bool = False
) -> tuple[float, dict[str, Any]]:
    """One request through the handler: its seconds and its body, answered from ``tier``."""
    if clear:
        module.service._memory.clear()
    elapsed, response = invoke(module.handler, PATH, tier=tier, query=query)
    body: dict[str, Any] = json.loads(response["body"])
    return elapsed, body
