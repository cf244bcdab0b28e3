"""Tickers through the cache, against DynamoDB Local and the loopback exchange."""

from __future__ import annotations

import asyncio

import pytest

from infra.exchange_sim import ExchangeSim
from market_proxy import errors
from market_proxy.clock import now_ms
from market_proxy.service import MarketData
from market_proxy.settings import Settings
from tests.support.clock import SharedClock

pytestmark = [pytest.mark.anyio, pytest.mark.integration]


async def test_a_ticker_carries_exactly_what_the_exchange_sent(
    service: MarketData, sim: ExchangeSim
) -> None:
    sim.set_ticker("binance", "BTCUSDT", last=50123.5, bid=50123.25, ask=50124.75)
    answer = await service.ticker("binance", "BTC/USDT")
    sent = sim.ticker_state("binance", "BTCUSDT")
    assert answer.data["symbol"] == "BTC/USDT"
    assert answer.data["market_id"] == "BTCUSDT"
    assert (answer.data["last"], answer.data["bid"], answer.data["ask"]) == (
        50123.5,
        50123.25,
        50124.75,
    )
    for field in ("high", "low"):
        assert answer.data[field] == pytest.approx(sent[field])
    assert answer.data["base_volume"] is not None
    assert answer.data["quote_volume"] is not None
    assert isinstance(answer.data["timestamp"], int)
    assert answer.freshness.source == "upstream"


@pytest.mark.parametrize(
    ("exchange", "typed", "symbol", "market_id"),
    [
        ("binance", "btc-usdt", "BTC/USDT", "BTCUSDT"),
        ("binance", "BTC_USDT", "BTC/USDT", "BTCUSDT"),
        ("binance", "BTCUSDT", "BTC/USDT", "BTCUSDT"),
        ("binance", "BTC/USDT:USDT", "BTC/USDT:USDT", "BTCUSDT"),
        ("kraken", "XBTUSDT", "BTC/USDT", "XBTUSDT"),
        ("kraken", "btc-usd", "BTC/USD", "XXBTZUSD"),
    ],
)
async def test_every_spelling_reaches_the_same_market(
    service: MarketData, exchange: str, typed: str, symbol: str, market_id: str
) -> None:
    answer = await service.ticker(exchange, typed)
    assert (answer.data["symbol"], answer.data["market_id"]) == (symbol, market_id)


async def test_a_repeat_within_freshness_makes_no_upstream_call(
    service: MarketData, sim: ExchangeSim
) -> None:
    await service.ticker("binance", "ETH/USDT")
    sim.reset_calls()
    again = await service.ticker("binance", "ETH-USDT")
    assert again.freshness.source == "l1"
    assert sim.calls("binance") == 0


async def test_after_freshness_exactly_one_upstream_call(
    settings: Settings, sim: ExchangeSim
) -> None:
    clock = SharedClock(now_ms(), sim)
    service = MarketData.from_settings(
        settings.model_copy(update={"ticker_ttl_seconds": 0.3}), clock
    )
    try:
        await service.ticker("binance", "BTC/USDT")
        sim.reset_calls()
        clock.advance(0.35)
        later = await asyncio.gather(*(service.ticker("binance", "BTC/USDT") for _ in range(20)))
    finally:
        await service.close()
    assert sim.calls("binance", "ticker") == 1
    assert sim.calls("binance", "markets") == 0
    sources = [answer.freshness.source for answer in later]
    assert sources.count("upstream") >= 1, "the refresher waits for the exchange"
    stale = [answer for answer in later if answer.freshness.source == "stale"]
    assert all(answer.freshness.stale_reason == "revalidating" for answer in stale), (
        "the others need not"
    )


async def test_a_second_container_answers_from_dynamodb(
    settings: Settings, sim: ExchangeSim
) -> None:
    first, second = MarketData.from_settings(settings), MarketData.from_settings(settings)
    try:
        await first.ticker("kraken", "BTC/USD")
        sim.reset_calls()
        answer = await second.ticker("kraken", "BTC/USD")
    finally:
        await first.close()
        await second.close()
    assert answer.freshness.source == "l2"
    assert sim.calls("kraken") == 0, "markets from the snapshot, ticker from the table"


async def test_two_hundred_concurrent_misses_make_one_upstream_call(
    service: MarketData, sim: ExchangeSim
) -> None:
    await service.load_markets("binance")
    sim.reset_calls()
    sim.set_latency(0.05)
    answers = await asyncio.gather(*(service.ticker("binance", "BTC/USDT") for _ in range(200)))
    assert sim.calls("binance", "ticker") == 1
    assert len({answer.data["last"] for answer in answers}) == 1


async def test_a_cold_container_loads_markets_once_for_many_requests(
    service: MarketData, sim: ExchangeSim
) -> None:
    await asyncio.gather(*(service.ticker("binance", s) for s in ("BTC/USDT", "ETH/USDT") * 10))
    assert sim.calls("binance", "markets") == 3, "spot, linear and inverse exchangeInfo, once each"


async def test_stale_ticker_is_served_and_marked_while_the_exchange_is_down(
    settings: Settings, sim: ExchangeSim
) -> None:
    clock = SharedClock(now_ms(), sim)
    service = MarketData.from_settings(
        settings.model_copy(update={"ticker_ttl_seconds": 0.2, "ticker_swr_seconds": 0}), clock
    )
    try:
        fresh = await service.ticker("binance", "BTC/USDT")
        clock.advance(0.25)
        sim.inject("binance", "503", endpoint="ticker", times=5)
        stale = await service.ticker("binance", "BTC/USDT")
    finally:
        await service.close()
    assert stale.freshness.source == "stale"
    assert stale.freshness.stale_reason == "upstream_unavailable"
    assert stale.data == fresh.data


async def test_an_unknown_symbol_never_reaches_the_exchange(
    service: MarketData, sim: ExchangeSim
) -> None:
    await service.load_markets("binance")
    sim.reset_calls()
    for _ in range(3):
        with pytest.raises(errors.UnknownMarket):
            await service.ticker("binance", "NOPE/USDT")
    assert sim.calls("binance") == 0


async def test_an_exchange_off_the_allow_list_is_unknown(
    service: MarketData, sim: ExchangeSim
) -> None:
    with pytest.raises(errors.UnknownExchange):
        await service.ticker("bitstamp", "BTC/USDT")
    assert sim.calls() == 0
