"""Fifty SSE subscribers of one symbol, each listening ten seconds at a one-second interval,
over real HTTP to the stream function's app (``stream_app``) under uvicorn, as deployed: the
template's settings for StreamFunction, so a ticker stays fresh ``TICKER_TTL_SECONDS`` (2 s)
and is refreshed in the background. Streams read through the cache, so the exchange should
see what one subscriber costs, at most one call per second they listened, plus one.

The exchange's price moves every half second, so every refresh brings subscribers an event.
"""

from __future__ import annotations

import asyncio
import math
import time

import httpx

from infra.exchange_sim import ExchangeSim
from tests.perf.report import Report
from tests.perf.stack import Stack, cold_start
from tests.support.http import serve

TITLE = "50 SSE subscribers of one symbol, 10 s at 1 s"
SUBSCRIBERS, LISTEN_S, INTERVAL_S = 50, 10.0, 1.0
EXCHANGE, MARKET_ID = "binance", "BTCUSDT"
PATH = f"/sse/ticker/{EXCHANGE}/BTC-USDT?interval={INTERVAL_S:g}"
PRICE_STEP_S = 0.5


def run(stack: Stack) -> Report:
    report = Report(TITLE)
    with (
        stack.deployed("StreamFunction") as settings,
        cold_start("stream_app", settings) as module,
        serve(module.app) as url,
    ):
        # Not asyncio.run: it would unset the event loop the cold start is closed on.
        loop = asyncio.new_event_loop()
        try:
            heard, window = loop.run_until_complete(_audience(stack.sim, url))
        finally:
            loop.close()
        calls = stack.sim.calls(EXCHANGE, "ticker")
        markets = stack.sim.calls(EXCHANGE, "markets")
    events = [count for count, _ in heard]
    if min(events) == 0:
        raise RuntimeError(f"{events.count(0)} subscriber(s) heard no ticker event")
    listened = [seconds for _, seconds in heard]
    ttl = settings.ticker_ttl_seconds
    report.figure(
        f"ticker fresh {ttl:g} s, refreshed in the background: "
        f"{settings.refresh_in_background}; price moves every {PRICE_STEP_S:g} s"
    )
    report.figure(
        f"{len(heard)} subscribers listened {min(listened):.1f}-{max(listened):.1f} s each, "
        f"{window:.1f} s from the first connection to the last close"
    )
    report.figure(
        f"ticker events received: {sum(events)} ({min(events)}-{max(events)} per subscriber)"
    )
    report.figure(
        f"upstream: {calls} ticker call(s) ({markets} markets, not counted); "
        f"one per freshness window would be at most {math.ceil(window / ttl) + 1}"
    )
    report.target("upstream ticker calls", calls, 11)
    return report


async def _audience(sim: ExchangeSim, url: str) -> tuple[list[tuple[int, float]], float]:
    """Each subscriber's ticker events and listening time; the span of the whole audience."""
    mover = asyncio.create_task(_move_price(sim))
    limits = httpx.Limits(max_connections=SUBSCRIBERS + 1)
    timeout = httpx.Timeout(10.0, read=30.0)
    started = time.monotonic()
    try:
        async with httpx.AsyncClient(base_url=url, limits=limits, timeout=timeout) as client:
            heard = await asyncio.gather(*(_subscribe(client) for _ in range(SUBSCRIBERS)))
    finally:
        mover.cancel()
    return list(heard), time.monotonic() - started


async def _subscribe(client: httpx.AsyncClient) -> tuple[int, float]:
    events = 0
    async with client.stream("GET", PATH) as response:
        response.raise_for_status()
        opened = time.monotonic()
        try:
            async with asyncio.timeout(LISTEN_S):
                async for line in response.aiter_lines():
                    if line == "event: ticker":
                        events += 1
        except TimeoutError:
            pass
        return events, time.monotonic() - opened


async def _move_price(sim: ExchangeSim) -> None:
    last = sim.ticker_state(EXCHANGE, MARKET_ID)["last"]
    while True:
        await asyncio.sleep(PRICE_STEP_S)
        last = round(last * 1.0001, 2)
        sim.set_ticker(EXCHANGE, MARKET_ID, last=last)
