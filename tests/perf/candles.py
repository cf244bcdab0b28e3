"""Ten thousand one-minute candles through ApiFunction's handler, on every wire format the
loopback exchange speaks, each on a new container and an empty table: the first request
pages the exchange the fewest times its page size allows (its markets load aside); repeats,
from the container's memory and then from DynamoDB as another container would read them,
make no upstream call: every candle asked for is closed.

The fewest pages are those of the candles the exchange holds in the range (Kraken keeps only
its latest 720: one page is all of it), at the page size ccxt records for the exchange.
"""

from __future__ import annotations

import asyncio
import json
import math
import time
from types import ModuleType
from typing import Any

from infra.exchange_sim.frames import Frame
from market_proxy.exchanges.paging import derive
from tests.perf.report import Report, Spread
from tests.perf.stack import Stack, cold_start, invoke
from tests.support.sim_clients import EXCHANGES, SPOT, SPOT_IDS

TITLE = "10,000 one-minute candles, on every loopback exchange"
CANDLES, MINUTE_MS = 10_000, 60_000
# What the loopback exchange keeps of a timeframe, where it keeps only its latest candles.
HISTORY = {"kraken": 720}
REPEATS = 10


def run(stack: Stack) -> Report:
    report = Report(TITLE)
    # Ends a few minutes before the open candle: every candle asked for is closed.
    since = (time.time_ns() // 1_000_000 // MINUTE_MS - CANDLES - 5) * MINUTE_MS
    query = {"timeframe": "1m", "since": str(since), "limit": str(CANDLES)}
    for exchange in EXCHANGES:
        path = f"/historical/{exchange}/BTC-USDT"
        spot = stack.sim.book.find(exchange, SPOT_IDS[exchange], "spot")
        assert spot is not None
        oldest = time.time_ns() // 1_000_000 // MINUTE_MS * MINUTE_MS
        oldest -= (HISTORY.get(exchange, 2 * CANDLES) - 1) * MINUTE_MS
        end = since + CANDLES * MINUTE_MS
        held = len(stack.sim.book.served(spot, Frame.fixed(MINUTE_MS), max(since, oldest), end))
        with (
            stack.deployed("ApiFunction") as settings,
            cold_start("api_handler", settings) as module,
        ):
            first_s, first = _get(module, path, query, "upstream")
            client = module.service._gateway.client(exchange)
            paging = asyncio.get_event_loop().run_until_complete(
                derive(client, client.market(SPOT), "1m")
            )
            first_ohlcv = stack.sim.calls(exchange, "ohlcv")
            stack.sim.reset_calls()
            from_memory = Spread.of([_get(module, path, query, "l1")[0] for _ in range(REPEATS)])
            from_table = Spread.of(
                [_get(module, path, query, "l2", clear=True)[0] for _ in range(REPEATS)]
            )
            repeat_calls = stack.sim.calls(exchange)
        returned = first["returned"]
        if returned["candles"] != held:
            raise RuntimeError(f"{exchange}: the exchange holds {held} candles, got {returned}")
        fewest = 1 if not paging.follows_since else math.ceil(held / paging.page)
        report.figure(
            f"{exchange}: first request {first_s * 1000:.0f} ms, {first_ohlcv} OHLCV call(s) "
            f"at {paging.page} a page for the {held} candles it holds; {len(first['gaps'])} gap(s)"
        )
        report.figure(from_memory.line(f"{exchange}: repeat from memory (l1), handler"))
        report.figure(from_table.line(f"{exchange}: repeat from DynamoDB (l2), handler"))
        report.target(f"{exchange}: first request, OHLCV calls", first_ohlcv, fewest)
        report.target(f"{exchange}: repeats, upstream calls", repeat_calls, 0)
    return report


def _get(
    module: ModuleType, path: str, query: dict[str, str], tier: str, *, clear: bool = False
) -> tuple[float, dict[str, Any]]:
    """One request through the handler: its seconds and its body, answered from ``tier``."""
    if clear:
        module.service._memory.clear()
    elapsed, response = invoke(module.handler, path, tier=tier, query=query)
    body: dict[str, Any] = json.loads(response["body"])
    return elapsed, body
