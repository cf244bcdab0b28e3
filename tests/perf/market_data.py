"""The market data beyond single tickers, on one container and on four:

- 20 symbols through ``/tickers`` on a cold cache cost one upstream call where the exchange
  batches (Binance), and then ``/ticker`` for each of them costs nothing (the same entries);
- 200 concurrent order book requests at mixed depths for one market, after its book expired,
  cost one upstream call, in one process and across four sharing the table;
- ``/compare`` over three exchanges that each answer in 50 ms takes about as long as the
  slowest one alone, not their sum (the venues are asked at once).
"""

from __future__ import annotations

import asyncio
import statistics
import time

from market_proxy.service import MarketData
from market_proxy.settings import Settings
from tests.perf.report import Report
from tests.perf.stack import Stack
from tests.support.swarm import ask, swarm

TITLE = "Batch tickers, order books and the cross-exchange view"
REQUESTS, PROCESSES = 200, 4
STRICT_BOOK = {"orderbook_ttl_ms": 1000, "orderbook_swr_seconds": 0.0}
VENUES = ("binance", "bybit", "okx")
LATENCY_S = 0.05
ROUNDS = 7


def run(stack: Stack) -> Report:
    report = Report(TITLE)
    with stack.deployed("ApiFunction") as settings:
        batch, singles = asyncio.run(_batch(stack, settings))
    report.figure(
        f"20 symbols through /tickers, cold: {batch} upstream call(s); "
        f"then /ticker for each: {singles}"
    )
    report.target("/tickers of 20 cold symbols: upstream calls", batch, 1)
    report.target("then /ticker for each: upstream calls", singles, 0)

    with stack.deployed("ApiFunction", **STRICT_BOOK) as settings:
        calls = asyncio.run(_books_one_container(stack, settings))
    report.figure(
        f"{REQUESTS} book requests at depths 5/10/20/50 after expiry, one container: "
        f"{calls} call(s)"
    )
    report.target("order books, one container: upstream calls", calls, 1)
    with stack.deployed("ApiFunction", **STRICT_BOOK) as settings:
        expired_at = asyncio.run(_prime_book(settings))
        stack.sim.set_latency(0.2)
        stack.sim.reset_calls()
        swarm(
            settings,
            processes=PROCESSES,
            each=REQUESTS // PROCESSES,
            kind="orderbook",
            not_before=expired_at,
        )
        calls = stack.sim.calls("binance", "orderbook")
        stack.reset_exchange()
    report.figure(f"the same from {PROCESSES} processes x {REQUESTS // PROCESSES}: {calls} call(s)")
    report.target(f"order books, {PROCESSES} processes: upstream calls", calls, 1)

    with stack.deployed("ApiFunction") as settings:
        compared, slowest = asyncio.run(_compare(stack, settings))
    ratio = compared / slowest
    report.figure(
        f"/compare over {len(VENUES)} venues at {LATENCY_S * 1000:.0f} ms each: p50 "
        f"{compared * 1000:.0f} ms; the slowest venue alone {slowest * 1000:.0f} ms"
    )
    report.target("/compare wall time / slowest single venue", round(ratio, 2), 1.5, "x")
    return report


async def _batch(stack: Stack, settings: Settings) -> tuple[int, int]:
    service = MarketData.from_settings(settings)
    try:
        await service.load_markets("binance")
        symbols = [f"SIM{i:04d}/USDT" for i in range(20)]
        stack.sim.reset_calls()
        answer = await service.tickers("binance", symbols)
        if len(answer.data["tickers"]) != 20:
            raise RuntimeError(f"the batch answered {answer.data['errors']}")
        batch = stack.sim.calls("binance")
        for symbol in symbols:
            await service.ticker("binance", symbol)
        singles = stack.sim.calls("binance") - batch
    finally:
        await service.close()
    return batch, singles


async def _prime_book(settings: Settings) -> float:
    service = MarketData.from_settings(settings)
    try:
        await service.order_book("binance", "BTC/USDT")
    finally:
        await service.close()
    return time.time() + settings.orderbook_ttl_ms / 1000


async def _books_one_container(stack: Stack, settings: Settings) -> int:
    service = MarketData.from_settings(settings)
    try:
        primed = await service.order_book("binance", "BTC/USDT")
        await asyncio.sleep(
            max(0.0, (primed.freshness.lifetime.fresh_until - service.clock()) / 1000)
        )
        stack.sim.set_latency(0.2)
        stack.sim.reset_calls()
        await asyncio.gather(
            *(ask(service, "orderbook", "binance", "BTC/USDT", i) for i in range(REQUESTS))
        )
        return stack.sim.calls("binance", "orderbook")
    finally:
        stack.sim.set_latency(0.0)
        await service.close()


async def _compare(stack: Stack, settings: Settings) -> tuple[float, float]:
    """p50 of a cold /compare over VENUES, and p50 of the slowest venue's ticker alone (both
    on a cold cache, markets loaded), every exchange answering in LATENCY_S."""
    quick = settings.model_copy(update={"ticker_ttl_seconds": 0.001, "ticker_swr_seconds": 0.0})
    service = MarketData.from_settings(quick)
    try:
        for venue in VENUES:
            await service.load_markets(venue)
        stack.sim.set_latency(LATENCY_S)
        together, alone = [], []
        for _ in range(ROUNDS):
            await asyncio.sleep(0.01)  # every ticker expired
            started = time.perf_counter()
            answer = await service.compare("BTC/USDT", list(VENUES))
            together.append(time.perf_counter() - started)
            if any("problem" in venue for venue in answer.data["venues"]):
                raise RuntimeError(f"a venue failed: {answer.data['venues']}")
            singles = []
            for venue in VENUES:
                await asyncio.sleep(0.01)
                started = time.perf_counter()
                await service.ticker(venue, "BTC/USDT")
                singles.append(time.perf_counter() - started)
            alone.append(max(singles))
        return statistics.median(together), statistics.median(alone)
    finally:
        stack.sim.set_latency(0.0)
        await service.close()
