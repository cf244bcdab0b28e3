"""One upstream budget for the fleet, and hot keys that never go stale:

- eight processes sharing the table ask for forty distinct tickers as fast as they can for
  twenty seconds, against a loopback exchange that takes 20 requests a second from our
  address and bans it (418) after repeated 429s: the exchange sees at most its limit in
  every second, and never has to say so; then the same run with the shared budget off, for
  contrast;
- one process, fifty clients on one key for ten seconds, tickers fresh for 2 s, the exchange
  answering in 50 ms: at most 1% of answers stale, at most one upstream call per freshness
  window (the key is refreshed ahead of expiry);
- what the budget costs in table writes per thousand upstream calls.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from typing import Any

from market_proxy.service import MarketData
from market_proxy.settings import Settings
from tests.perf.report import Report
from tests.perf.stack import Stack
from tests.support.fleet import fleet

TITLE = "One upstream budget for the fleet; hot keys refreshed ahead"
LIMIT = 20  # the loopback exchange's requests a second from our address
PROCESSES, CLIENTS, SECONDS = 8, 6, 20.0
SYMBOLS = [f"SIM{i:04d}/USDT" for i in range(40)]
# Under the exchange's limit by a margin for requests that leave in one second and arrive
# in the next.
BUDGET = {"binance": {"requests_per_second": LIMIT - 2}}
DEMAND_TTL_S = 1.0
HOT_CLIENTS, HOT_SECONDS, HOT_TTL_S, LATENCY_S = 50, 10.0, 2.0, 0.05


def run(stack: Stack) -> Report:
    report = Report(TITLE)
    busiest_by: dict[bool, int] = {}
    for shared in (True, False):
        with stack.deployed(
            "ApiFunction",
            exchange_limits=BUDGET,
            fleet_budget=shared,
            # Fresh for a second: forty keys then ask twice what the exchange takes, so the
            # run shows what the budget holds back.
            ticker_ttl_seconds=DEMAND_TTL_S,
            ticker_swr_seconds=0.0,
        ) as s:
            _prime(s)
            stack.sim.reset_calls()
            stack.sim.set_rate_limit("binance", LIMIT, ban_after=3, ban_s=60)
            outcomes = fleet(
                s, processes=PROCESSES, clients=CLIENTS, seconds=SECONDS, symbols=SYMBOLS
            )
            busiest = stack.sim.limits.busiest_second("binance")
            busiest_by[shared] = busiest
            refused = dict(stack.sim.limits.answered)
            calls = stack.sim.calls("binance", "ticker")
            stack.reset_exchange()
        total: Counter[str] = sum(outcomes, Counter())
        writes = total.pop("budget_writes", 0)
        leases = total.pop("budget_leases", 0)
        fallbacks = total.pop("budget_fallbacks", 0)
        label = "shared budget" if shared else "budget off (each process on its own)"
        label += f", tickers fresh {DEMAND_TTL_S:g} s"
        report.figure(
            f"{label}: {PROCESSES} processes x {CLIENTS} clients, {len(SYMBOLS)} tickers, "
            f"{SECONDS:.0f} s: busiest second {busiest} requests (limit {LIMIT}), "
            f"{calls} ticker calls, exchange refused {refused or 'nothing'}; "
            f"{fallbacks} grants from the local share (table too slow); "
            f"answers {dict(total.most_common())}"
        )
        if shared:
            report.target("shared budget: busiest second / exchange's limit", busiest, LIMIT)
            report.target("shared budget: 429 and 418 answers", sum(refused.values()), 0)
            report.figure(
                f"the budget's table writes: {writes} conditional UpdateItems ({leases} lease "
                f"requests) for {calls} upstream calls, {writes / max(calls, 1) * 1000:.0f} "
                "per 1,000"
            )

    report.figure(
        f"contrast: with the budget off the busiest second is {busiest_by[False] / LIMIT:.1f}x "
        f"the exchange's limit, with it {busiest_by[True] / LIMIT:.1f}x"
    )
    with stack.deployed(
        "ApiFunction", ticker_ttl_seconds=HOT_TTL_S, refresh_in_background=True
    ) as settings:
        stale, answers, calls, leases = asyncio.run(_hot_key(stack, settings))
    windows = HOT_SECONDS / HOT_TTL_S
    report.figure(
        f"one process, {HOT_CLIENTS} clients on one key for {HOT_SECONDS:.0f} s "
        f"(fresh {HOT_TTL_S:g} s, exchange {LATENCY_S * 1000:.0f} ms): {answers} answers, "
        f"{stale} stale ({stale / max(answers, 1):.2%}), {calls} upstream call(s)"
    )
    report.target("hot key: stale answers", round(stale / max(answers, 1) * 100, 2), 1, " %")
    report.target("hot key: upstream calls / freshness windows", calls, windows + 1)
    report.figure(f"hot key: {leases} budget lease(s) for {calls} upstream call(s)")
    return report


def _prime(settings: Settings) -> None:
    """Markets in the table's snapshot, so the fleet starts without downloading them."""

    async def load() -> None:
        service = MarketData.from_settings(settings)
        try:
            await service.load_markets("binance")
        finally:
            await service.close()

    asyncio.run(load())


async def _hot_key(stack: Stack, settings: Settings) -> tuple[int, int, int, int]:
    service = MarketData.from_settings(settings)
    store: Any = service._budget._store if service._budget else None
    taken = {"n": 0}
    if store is not None:
        original = store.take_units

        async def counting(*args: Any, **kwargs: Any) -> Any:
            taken["n"] += 1
            return await original(*args, **kwargs)

        store.take_units = counting
    try:
        await service.ticker("binance", "BTC/USDT")
        stack.sim.set_latency(LATENCY_S)
        stack.sim.reset_calls()
        end = time.monotonic() + HOT_SECONDS
        sources: Counter[str] = Counter()

        async def client() -> None:
            while time.monotonic() < end:
                answer = await service.ticker("binance", "BTC/USDT")
                sources[answer.freshness.source] += 1
                await asyncio.sleep(0.01)

        await asyncio.gather(*(client() for _ in range(HOT_CLIENTS)))
        calls = stack.sim.calls("binance", "ticker")
    finally:
        stack.sim.set_latency(0.0)
        await service.close()
    return sources["stale"], sum(sources.values()), calls, taken["n"]
