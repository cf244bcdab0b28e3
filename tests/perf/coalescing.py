"""Two hundred concurrent requests for an expired ticker: in one container (200 asyncio tasks
on one MarketData service), then from four processes sharing the table (50 each), as four
Lambda containers would. Each case should cost the exchange one ticker call.

The primed ticker expires with no stale-while-revalidate window, so every caller must wait for
fresh data rather than be answered stale at once: the strict case for coalescing. The
exchange answers slowly, which widens the window in which callers could pile in.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter

from market_proxy.service import MarketData
from market_proxy.settings import Settings
from tests.perf.report import Report
from tests.perf.stack import Stack
from tests.support.swarm import swarm

TITLE = "200 concurrent requests for an expired key"
EXCHANGE, SYMBOL = "binance", "BTC/USDT"
REQUESTS, PROCESSES = 200, 4
EXCHANGE_LATENCY_S = 0.2
STRICT = {"ticker_ttl_seconds": 1.0, "ticker_swr_seconds": 0.0}


def run(stack: Stack) -> Report:
    report = Report(TITLE)
    report.figure(
        f"ticker fresh {STRICT['ticker_ttl_seconds']:g} s, no stale-while-revalidate; "
        f"the exchange answers in {EXCHANGE_LATENCY_S * 1000:.0f} ms"
    )
    with stack.deployed("ApiFunction", **STRICT) as settings:
        calls, wall, sources = asyncio.run(_one_container(stack, settings))
    report.figure(
        f"one container, {REQUESTS} tasks: {calls} ticker call(s), {wall * 1000:.0f} ms wall; "
        f"answers {_counted(sources)}"
    )
    report.target("one container: upstream ticker calls", calls, 1)

    with stack.deployed("ApiFunction", **STRICT) as settings:
        expired_at = asyncio.run(_prime(settings))
        stack.sim.set_latency(EXCHANGE_LATENCY_S)
        stack.sim.reset_calls()
        result = swarm(
            settings,
            processes=PROCESSES,
            each=REQUESTS // PROCESSES,
            exchange=EXCHANGE,
            symbol=SYMBOL,
            not_before=expired_at,
        )
        calls = stack.sim.calls(EXCHANGE, "ticker")
        markets = stack.sim.calls(EXCHANGE, "markets")
        stack.reset_exchange()
    per_process = "; ".join(_counted(sources) for sources in result.sources)
    report.figure(
        f"{PROCESSES} processes x {REQUESTS // PROCESSES}: {calls} ticker call(s), "
        f"{markets} markets call(s), {result.wall_s * 1000:.0f} ms wall "
        f"(all ready {result.ready_after_s:.1f} s after launch); answers {per_process}"
    )
    report.target(f"{PROCESSES} processes: upstream ticker calls", calls, 1)
    return report


async def _prime(settings: Settings) -> float:
    """Cache markets and a ticker; returns when (epoch seconds) the ticker expires."""
    service = MarketData.from_settings(settings)
    try:
        await service.ticker(EXCHANGE, SYMBOL)
    finally:
        await service.close()
    return time.time() + settings.ticker_ttl_seconds


async def _one_container(stack: Stack, settings: Settings) -> tuple[int, float, list[str]]:
    service = MarketData.from_settings(settings)
    try:
        primed = await service.ticker(EXCHANGE, SYMBOL)
        await asyncio.sleep(
            max(0.0, (primed.freshness.lifetime.fresh_until - service.clock()) / 1000)
        )
        stack.sim.set_latency(EXCHANGE_LATENCY_S)
        stack.sim.reset_calls()
        started = time.perf_counter()
        answers = await asyncio.gather(*(service.ticker(EXCHANGE, SYMBOL) for _ in range(REQUESTS)))
        wall = time.perf_counter() - started
        calls = stack.sim.calls(EXCHANGE, "ticker")
    finally:
        stack.sim.set_latency(0.0)
        await service.close()
    return calls, wall, [answer.freshness.source for answer in answers]


def _counted(sources: list[str]) -> str:
    return ", ".join(f"{count} {source}" for source, count in Counter(sources).most_common())
