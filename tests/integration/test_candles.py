"""OHLCV history through the candle store: paging, buckets, gaps, the open candle."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from typing import Any

import pytest

from infra.exchange_sim import ExchangeSim
from market_proxy import errors
from market_proxy.candles import BUCKET_CANDLES
from market_proxy.service import MarketData
from market_proxy.settings import Settings
from tests.support.clock import SharedClock

pytestmark = [pytest.mark.anyio, pytest.mark.integration]

MIN = 60_000
SPAN = BUCKET_CANDLES * MIN
PHASE = 17 * MIN + 30_000  # half a minute into a candle, 17 minutes into a bucket
# The latest such instant before the real now: DynamoDB Local deletes items whose TTL
# attribute has passed (by the machine's clock) within about a second, so a clock far in
# the past would see its own writes vanish.
NOW = (time.time_ns() // 1_000_000 - PHASE) // SPAN * SPAN + PHASE
OPEN = NOW // MIN * MIN
EDGE = OPEN // SPAN * SPAN - SPAN  # a bucket boundary well in the past


@pytest.fixture
def clock(sim: ExchangeSim) -> SharedClock:
    return SharedClock(NOW, sim)


@pytest.fixture
async def market(settings: Settings, clock: SharedClock) -> AsyncIterator[MarketData]:
    service = MarketData.from_settings(settings, clock)
    yield service
    await service.close()


def assert_contiguous(candles: list[list[float]], start: int, count: int) -> None:
    stamps = [int(c[0]) for c in candles]
    assert stamps == list(range(start, start + count * MIN, MIN))


def ohlcv_calls(sim: ExchangeSim, exchange: str = "binance") -> int:
    return sim.calls(exchange, "ohlcv")


async def test_the_first_request_pages_the_minimum_and_the_repeat_makes_no_call(
    market: MarketData, sim: ExchangeSim
) -> None:
    first = await market.candles("binance", "BTC/USDT", timeframe="1m", limit=3000)
    assert ohlcv_calls(sim) == 3, "3000 candles at Binance's 1000 a page"
    assert_contiguous(first.data["candles"], OPEN - 2999 * MIN, 3000)
    assert first.data["returned"]["open_candle"] is True
    assert first.data["gaps"] == []
    sim.reset_calls()
    again = await market.candles("binance", "BTC/USDT", timeframe="1m", limit=3000)
    assert ohlcv_calls(sim) == 0
    assert again.cached.source == "l1"
    assert again.data["candles"] == first.data["candles"]


async def test_another_container_reads_the_buckets_from_dynamodb(
    market: MarketData, settings: Settings, clock: SharedClock, sim: ExchangeSim
) -> None:
    first = await market.candles("binance", "BTC/USDT", timeframe="1m", limit=2500)
    sim.reset_calls()
    other = MarketData.from_settings(settings, clock)
    try:
        again = await other.candles("binance", "BTC/USDT", timeframe="1m", limit=2500)
    finally:
        await other.close()
    assert sim.calls("binance") == 0
    assert again.cached.source == "l2"
    assert again.data["candles"] == first.data["candles"]


async def test_a_range_across_a_bucket_edge_fetches_only_what_is_missing(
    market: MarketData, sim: ExchangeSim
) -> None:
    await market.candles("binance", "BTC/USDT", timeframe="1m", since=EDGE - 5 * MIN, limit=10)
    assert ohlcv_calls(sim) == 1
    sim.reset_calls()
    wider = await market.candles(
        "binance", "BTC/USDT", timeframe="1m", since=EDGE - 10 * MIN, limit=20
    )
    assert ohlcv_calls(sim) == 2, "one call for each hole on either side of what is cached"
    assert_contiguous(wider.data["candles"], EDGE - 10 * MIN, 20)
    sim.reset_calls()
    await market.candles(
        "binance", "BTC/USDT", timeframe="1m", since=EDGE - 10 * MIN, until=EDGE + 10 * MIN
    )
    assert ohlcv_calls(sim) == 0


async def test_gaps_in_the_exchanges_data_are_reported_and_never_asked_for_again(
    market: MarketData, sim: ExchangeSim
) -> None:
    start = EDGE - 50 * MIN
    sim.add_gap("binance", "ETHUSDT", start + 10 * MIN, start + 13 * MIN)
    answer = await market.candles("binance", "ETH/USDT", timeframe="1m", since=start, limit=40)
    assert answer.data["gaps"] == [[start + 10 * MIN, start + 13 * MIN]]
    assert answer.data["returned"]["candles"] == 37
    assert answer.data["requested"]["candles"] == 40
    sim.reset_calls()
    await market.candles("binance", "ETH/USDT", timeframe="1m", since=start, limit=40)
    assert ohlcv_calls(sim) == 0


async def test_the_open_candle_is_refetched_after_its_freshness_but_closed_ones_never(
    market: MarketData, settings: Settings, clock: SharedClock, sim: ExchangeSim
) -> None:
    await market.candles("binance", "BTC/USDT", timeframe="1m", limit=100)
    sim.reset_calls()
    clock.advance(settings.ohlcv_open_ttl_seconds + 1)  # same minute, open candle stale
    again = await market.candles("binance", "BTC/USDT", timeframe="1m", limit=100)
    assert ohlcv_calls(sim) == 1
    assert _first_call_since(sim) == OPEN
    assert again.data["returned"]["candles"] == 100
    sim.reset_calls()
    clock.advance(60)  # a new candle opened; the old open one closed
    later = await market.candles("binance", "BTC/USDT", timeframe="1m", limit=100)
    assert ohlcv_calls(sim) == 1
    assert _first_call_since(sim) == OPEN
    assert_contiguous(later.data["candles"], OPEN + MIN - 99 * MIN, 100)


async def test_ten_thousand_candles_take_ten_pages_then_none(
    market: MarketData, sim: ExchangeSim
) -> None:
    first = await market.candles("binance", "BTC/USDT", timeframe="1m", limit=10_000)
    assert ohlcv_calls(sim) == 10
    assert first.data["returned"]["candles"] == 10_000
    sim.reset_calls()
    await market.candles("binance", "BTC/USDT", timeframe="1m", limit=10_000)
    assert ohlcv_calls(sim) == 0


async def test_history_kraken_no_longer_keeps_is_reported_as_a_gap(
    market: MarketData, sim: ExchangeSim
) -> None:
    since = OPEN - 2000 * MIN
    answer = await market.candles("kraken", "BTC/USD", timeframe="1m", since=since, limit=100)
    assert answer.data["candles"] == []
    assert answer.data["gaps"] == [[since, since + 100 * MIN]]
    sim.reset_calls()
    await market.candles("kraken", "BTC/USD", timeframe="1m", since=since, limit=100)
    assert ohlcv_calls(sim, "kraken") == 0


async def test_kraken_pages_at_its_own_page_size(market: MarketData, sim: ExchangeSim) -> None:
    answer = await market.candles("kraken", "BTC/USDT", timeframe="1m", limit=700)
    assert answer.data["returned"]["candles"] == 700
    assert ohlcv_calls(sim, "kraken") == 1


async def test_a_stale_open_candle_is_served_marked_when_the_exchange_fails(
    market: MarketData, settings: Settings, clock: SharedClock, sim: ExchangeSim
) -> None:
    fresh = await market.candles("binance", "BTC/USDT", timeframe="1m", limit=10)
    clock.advance(settings.ohlcv_open_ttl_seconds + 1)
    sim.inject("binance", "503", endpoint="ohlcv", times=3)
    stale = await market.candles("binance", "BTC/USDT", timeframe="1m", limit=10)
    assert stale.cached.source == "stale"
    assert stale.cached.stale_reason == "upstream_unavailable"
    assert stale.data["candles"] == fresh.data["candles"]


async def test_without_anything_cached_an_exchange_failure_is_raised(
    market: MarketData, sim: ExchangeSim
) -> None:
    await market.gateway.venue("binance")
    sim.inject("binance", "503", endpoint="ohlcv", times=3)
    with pytest.raises(errors.UpstreamUnavailable):
        await market.candles("binance", "BTC/USDT", timeframe="1m", limit=10)


async def test_weekly_candles_are_cached_per_query(market: MarketData, sim: ExchangeSim) -> None:
    first = await market.candles("binance", "BTC/USDT", timeframe="1w", limit=10)
    assert 1 <= len(first.data["candles"]) <= 10
    sim.reset_calls()
    await market.candles("binance", "BTC/USDT", timeframe="1w", limit=10)
    assert ohlcv_calls(sim) == 0


@pytest.mark.parametrize(
    ("kwargs", "parameter"),
    [
        ({"timeframe": "7m"}, "timeframe"),
        ({"timeframe": "1m", "limit": 0}, "limit"),
        ({"timeframe": "1m", "limit": 10**6}, "limit"),
    ],
)
async def test_bad_parameters_name_what_is_valid(
    market: MarketData, kwargs: dict[str, Any], parameter: str
) -> None:
    with pytest.raises(errors.InvalidParameter) as caught:
        await market.candles("binance", "BTC/USDT", **kwargs)
    assert caught.value.extra["parameter"] == parameter
    assert caught.value.extra["valid"]


def _first_call_since(sim: ExchangeSim) -> int:
    (record,) = [r for r in sim.call_log() if r.endpoint == "ohlcv"]
    return int(record.params["startTime"])
