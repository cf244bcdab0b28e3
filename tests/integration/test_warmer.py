"""The warmer against DynamoDB Local and the loopback exchange."""

from __future__ import annotations

import asyncio
import json
import os
from collections.abc import Callable, Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from infra.exchange_sim import ExchangeSim
from market_proxy.clock import now_ms
from market_proxy.service import MarketData
from market_proxy.settings import Settings
from market_proxy.warm_targets import parse_targets
from market_proxy.warming import Pacing, warm
from tests.support.apigw import LambdaContext, rest_event
from tests.support.clock import SharedClock
from tests.support.events import scheduled_event
from tests.support.interpreter import last_json, run_fresh
from tests.support.lambda_module import cold_starts
from tests.support.stack import environment_for

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[2]
TARGETS = "binance:BTC/USDT,ETH/USDT@1m,1h kraken:BTC/USD@1h"


@pytest.fixture
def cold_start(monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[..., ModuleType]]:
    with cold_starts(monkeypatch) as start:
        yield start


def run_warmer(module: ModuleType) -> dict[str, Any]:
    summary: dict[str, Any] = module.handler(scheduled_event(), LambdaContext(timeout_ms=60_000))
    return summary


def test_a_scheduled_run_warms_its_targets_and_requests_then_cost_nothing_upstream(
    cold_start: Callable[..., ModuleType], settings: Settings, sim: ExchangeSim
) -> None:
    # Fresh for a minute here: this test is about what was warmed, not for how long.
    settings = settings.model_copy(update={"ticker_ttl_seconds": 60})
    warmer = cold_start("warmer_handler", settings, WARM_TARGETS=TARGETS)
    summary = run_warmer(warmer)
    assert summary["failed"] == []
    assert set(summary["warmed"]) == {
        "markets#binance",
        "markets#kraken",
        "ticker#binance#BTC/USDT",
        "ticker#binance#ETH/USDT",
        "ticker#kraken#BTC/USD",
        "ohlcv#binance#BTC/USDT#1m",
        "ohlcv#binance#BTC/USDT#1h",
        "ohlcv#binance#ETH/USDT#1m",
        "ohlcv#binance#ETH/USDT#1h",
        "ohlcv#kraken#BTC/USD#1h",
    }
    sim.reset_calls()
    api = cold_start("api_handler", settings)
    for path, query in (
        ("/ticker/binance/BTC/USDT", None),
        ("/ticker/kraken/BTC-USD", None),
        ("/historical/binance/ETH-USDT", {"timeframe": "1h", "limit": "200"}),
        ("/historical/kraken/XBTUSD", {"timeframe": "1h", "limit": "50"}),
    ):
        response = api.handler(rest_event(path, query=query), LambdaContext())
        assert response["statusCode"] == 200, response["body"]
        assert json.loads(response["body"])["freshness"]["source"] == "l2"
    assert sim.calls() == 0, "markets from the snapshot, data from the table"


def test_a_second_run_within_freshness_only_refreshes_what_is_expiring(
    cold_start: Callable[..., ModuleType], settings: Settings, sim: ExchangeSim
) -> None:
    warmer = cold_start(
        "warmer_handler",
        settings.model_copy(update={"ticker_ttl_seconds": 120}),
        WARM_TARGETS=TARGETS,
    )
    run_warmer(warmer)
    sim.reset_calls()
    again = run_warmer(warmer)
    assert sim.calls("binance", "markets") == 0
    assert sim.calls("binance", "ticker") == 0
    assert "ticker#binance#BTC/USDT" in again["fresh"]


def test_a_fresh_interpreter_starts_from_the_snapshot_without_downloading_markets(
    settings: Settings, sim: ExchangeSim
) -> None:
    async def snapshot() -> None:
        service = MarketData.from_settings(settings)
        await service.warm_markets("binance", unless_fresh_for_s=0)
        await service.close()

    import asyncio

    asyncio.run(snapshot())
    sim.reset_calls()
    program = (
        "import json, api_handler\n"
        "from tests.support.apigw import LambdaContext, rest_event\n"
        "r = api_handler.handler(rest_event('/ticker/binance/BTC-USDT'), LambdaContext())\n"
        "print(json.dumps({'status': r['statusCode'], 'body': json.loads(r['body'])}))\n"
    )
    env = {**os.environ, **environment_for(settings), "PYTHONPATH": f"{ROOT / 'functions'}:{ROOT}"}
    answer = last_json(run_fresh(program, env=env, cwd=ROOT))
    assert answer["status"] == 200
    assert answer["body"]["symbol"] == "BTC/USDT"
    assert sim.calls("binance", "markets") == 0
    assert sim.calls("binance", "ticker") == 1


@pytest.mark.anyio
async def test_bad_targets_and_a_failing_exchange_do_not_stop_the_others(
    settings: Settings, sim: ExchangeSim
) -> None:
    targets = parse_targets("binance:BTC/USDT,NOPE/USDT@1m bitstamp:BTC/USDT kraken:BTC/USD@1h")
    sim.inject("kraken", "503", endpoint="ticker", times=10)
    sim.inject("kraken", "503", endpoint="ohlcv", times=10)
    service = MarketData.from_settings(settings)
    try:
        report = await warm(
            service, targets, deadline=_in(30), concurrency=4, candles=50, top_keys=0, period_s=60
        )
    finally:
        await service.close()
    failed = {f["key"]: f["code"] for f in report.failed}
    assert "ticker#binance#BTC/USDT" in report.warmed
    assert "ohlcv#binance#BTC/USDT#1m" in report.warmed
    assert failed["ticker#binance#NOPE/USDT"] == "unknown_market"
    assert failed["ohlcv#binance#NOPE/USDT#1m"] == "unknown_market"
    assert failed["markets#bitstamp"] == "unknown_exchange"
    assert failed["ticker#kraken#BTC/USD"] == "upstream_unavailable"
    assert failed["ohlcv#kraken#BTC/USD#1h"] == "upstream_unavailable"
    assert {s["key"] for s in report.skipped} == {"ticker#bitstamp#BTC/USDT"}


@pytest.mark.anyio
async def test_the_most_asked_keys_are_warmed_too(settings: Settings, sim: ExchangeSim) -> None:
    api = MarketData.from_settings(settings.model_copy(update={"demand_flush_seconds": 0}))
    warmer = MarketData.from_settings(settings)
    try:
        for _ in range(3):
            await api.ticker("binance", "ETH-USDT")
        await api.candles("kraken", "BTC/USDT", timeframe="5m", limit=10)
        report = await warm(
            warmer, [], deadline=_in(30), concurrency=2, candles=10, top_keys=5, period_s=60
        )
    finally:
        await api.close()
        await warmer.close()
    assert {"ticker#binance#ETH/USDT", "ohlcv#kraken#BTC/USDT#5m"} <= set(report.warmed) | set(
        report.fresh
    )
    assert report.failed == []


def test_a_run_stops_starting_work_at_its_deadline(settings: Settings, sim: ExchangeSim) -> None:
    import asyncio

    sim.set_latency(0.3)

    async def run() -> Any:
        service = MarketData.from_settings(settings)
        try:
            return await warm(
                service,
                parse_targets(TARGETS),
                deadline=_in(1.0),
                concurrency=1,
                candles=10,
                top_keys=0,
                period_s=60,
            )
        finally:
            await service.close()

    report = asyncio.run(run())
    assert report.skipped, "work left when the deadline came is reported, not silently dropped"
    assert all(s["reason"] in ("deadline", "markets_failed") for s in report.skipped)


class VirtualTime:
    """The warmer's pacing and the service's clock as one virtual time, which moves only
    when the warmer waits: what happens in between takes no time at all."""

    def __init__(self, clock: SharedClock) -> None:
        self._clock = clock
        self.now = 0.0

    def monotonic(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.now += seconds
        self._clock.advance(seconds)
        await asyncio.sleep(0)


@pytest.mark.anyio
async def test_the_ticker_loop_keeps_tickers_fresh_while_requests_keep_coming(
    settings: Settings, sim: ExchangeSim
) -> None:
    # Given tickers fresh for half a second, and a warmer that keeps them fresh for 3 s,
    clock = SharedClock(now_ms(), sim)
    time_ = VirtualTime(clock)
    quick = settings.model_copy(update={"ticker_ttl_seconds": 0.5, "ticker_swr_seconds": 0})
    warmer, api = MarketData.from_settings(quick, clock), MarketData.from_settings(quick, clock)
    try:
        await api.load_markets("binance")
        run = asyncio.create_task(
            warm(
                warmer,
                parse_targets("binance:BTC/USDT"),
                deadline=30.0,
                concurrency=2,
                candles=10,
                top_keys=0,
                period_s=60,
                ticker_loop_s=3.0,
                pacing=Pacing(time_.monotonic, time_.sleep),
            )
        )
        # when a client keeps asking for one of them all the while,
        sources = []
        while not run.done():
            if time_.now > 0:  # the warmer's first pass is over
                sources.append((await api.ticker("binance", "BTC/USDT")).freshness.source)
            await asyncio.sleep(0.005)
        report = await run
    finally:
        await warmer.close()
        await api.close()
    # then the client was never made to wait on the exchange, and the warmer refreshed each
    # ticker about once per freshness window, no more.
    assert sources
    assert "upstream" not in sources, "the API side never had to call the exchange"
    assert report.ticker_refreshes >= 3
    assert sim.calls("binance", "ticker") <= 1 + 3.0 / 0.25


def _in(seconds: float) -> float:
    import time

    return time.monotonic() + seconds


@pytest.mark.anyio
async def test_order_books_and_trades_named_in_targets_are_warmed_and_then_served_from_l2(
    settings: Settings, sim: ExchangeSim
) -> None:
    import time

    quick = settings.model_copy(update={"orderbook_ttl_ms": 60_000, "trades_ttl_seconds": 60})
    warmer, api = MarketData.from_settings(quick), MarketData.from_settings(quick)
    try:
        report = await warm(
            warmer,
            parse_targets("okx:btc-usdt@orderbook,trades"),
            deadline=time.monotonic() + 30,
            concurrency=2,
            candles=10,
            top_keys=0,
            period_s=60,
        )
        assert report.failed == []
        assert {"orderbook#okx#BTC/USDT", "trades#okx#BTC/USDT"} <= set(report.warmed)
        await api.load_markets("okx")
        sim.reset_calls()
        book = await api.order_book("okx", "BTC/USDT", 5)
        trades = await api.trades("okx", "BTC/USDT")
    finally:
        await warmer.close()
        await api.close()
    assert (book.freshness.source, trades.freshness.source) == ("l2", "l2")
    assert sim.calls("okx") == 0
