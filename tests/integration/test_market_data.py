"""Batch tickers, order books, trades, funding, markets and the cross-exchange view, through
the service on DynamoDB Local and the loopback exchange in every wire format it speaks."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest

from infra.exchange_sim import ExchangeSim, activity
from market_proxy import errors
from market_proxy.catalog import MarketQuery
from market_proxy.clock import now_ms
from market_proxy.keys import Kind, MarketKey
from market_proxy.service import MarketData
from market_proxy.settings import Settings
from tests.support.clock import SharedClock
from tests.support.sim_clients import EXCHANGES, PERP, PERP_IDS, SPOT, SPOT_IDS

pytestmark = [pytest.mark.anyio, pytest.mark.integration]
LISTED_EVERYWHERE = ("BTC/USDT", "ETH/USDT")


@pytest.fixture
def clock(sim: ExchangeSim) -> SharedClock:
    return SharedClock(now_ms(), sim)


@pytest.fixture
async def market(settings: Settings, clock: SharedClock) -> AsyncIterator[MarketData]:
    service = MarketData.from_settings(settings, clock)
    yield service
    await service.close()


# Coinbase Exchange's batch (spark-lines) holds last prices only: see the test after this one.
FULL_BATCHES = [exchange for exchange in EXCHANGES if exchange != "coinbaseexchange"]


@pytest.mark.parametrize("exchange", FULL_BATCHES)
async def test_a_batch_costs_one_call_and_fills_the_entries_single_tickers_read(
    market: MarketData, sim: ExchangeSim, exchange: str
) -> None:
    # Given markets loaded and nothing cached,
    await market.load_markets(exchange)
    sim.reset_calls()

    # when a batch names markets the exchange lists and one it does not,
    batch = await market.tickers(exchange, [*LISTED_EVERYWHERE, "btc-usdt", "NOPE/USDT"])

    # then one upstream batch call answers them, the unknown one is reported alone,
    assert sim.calls(exchange, "tickers") == 1
    assert sim.calls(exchange, "ticker") == 0
    assert set(batch.data["tickers"]) == set(LISTED_EVERYWHERE)
    assert batch.data["errors"]["NOPE/USDT"]["code"] == "unknown_market"
    sent = sim.ticker_state(exchange, SPOT_IDS[exchange])
    btc = batch.data["tickers"]["BTC/USDT"]
    assert btc["last"] == pytest.approx(sent["last"])
    assert btc["freshness"]["source"] == "upstream"
    # and each single ticker is then the same cache entry: no further call.
    for symbol in LISTED_EVERYWHERE:
        single = await market.ticker(exchange, symbol)
        assert single.freshness.source == "l1"
        assert single.data == {
            k: v for k, v in batch.data["tickers"][symbol].items() if k != "freshness"
        }
    assert sim.calls(exchange) == 1


async def test_a_batch_without_bid_and_ask_is_not_kept_as_tickers(
    market: MarketData, sim: ExchangeSim
) -> None:
    await market.load_markets("coinbaseexchange")
    symbols = ["BTC/USD", "ETH/USD"]
    # Given an exchange whose batch of tickers carries last prices only,
    first = await market.tickers("coinbaseexchange", symbols)
    # then the batch's tickers are each fetched alone, as /ticker would, with bid and ask,
    assert all(first.data["tickers"][s]["bid"] is not None for s in symbols)
    assert sim.calls("coinbaseexchange", "ticker") == len(symbols)
    # and the next batch goes to single tickers at once, without the batch call.
    sim.reset_calls()
    await market.tickers("coinbaseexchange", ["SOL/USD", "BTC/USDT"])
    assert sim.calls("coinbaseexchange", "tickers") == 0
    assert sim.calls("coinbaseexchange", "ticker") == 2


@pytest.mark.parametrize("exchange", ["binance", "bybit", "okx"])
async def test_a_batch_of_spot_and_swaps_is_one_call_per_kind(
    market: MarketData, sim: ExchangeSim, exchange: str
) -> None:
    await market.load_markets(exchange)
    sim.reset_calls()
    # ccxt refuses a batch mixing market types on these exchanges.
    batch = await market.tickers(exchange, [SPOT, "ETH/USDT", PERP, "ETH/USDT:USDT"])
    assert batch.data["errors"] == {}
    assert len(batch.data["tickers"]) == 4
    assert sim.calls(exchange, "tickers") <= 2


async def test_a_batch_asks_only_for_what_single_tickers_have_not_cached(
    market: MarketData, sim: ExchangeSim
) -> None:
    await market.ticker("binance", "BTC/USDT")
    sim.reset_calls()
    batch = await market.tickers("binance", ["BTC/USDT"])
    assert batch.data["tickers"]["BTC/USDT"]["freshness"]["source"] == "l1"
    assert sim.calls("binance") == 0
    await market.tickers("binance", ["BTC/USDT", "ETH/USDT", "SOL/USDT"])
    (call,) = [c for c in sim.call_log() if c.endpoint == "tickers"]
    assert "BTCUSDT" not in str(call.params), "the cached one is not asked for again"


async def test_a_batch_over_the_bound_is_refused(market: MarketData) -> None:
    with pytest.raises(errors.InvalidParameter) as refused:
        await market.tickers("binance", [f"SIM{i:04d}/USDT" for i in range(51)])
    assert refused.value.extra["valid"] == "1..50"


@pytest.mark.parametrize("exchange", EXCHANGES)
async def test_one_book_fetch_serves_every_depth(
    market: MarketData, sim: ExchangeSim, exchange: str
) -> None:
    await market.load_markets(exchange)
    sim.reset_calls()
    books = await asyncio.gather(
        *(market.order_book(exchange, SPOT, depth) for depth in (5, 20, 50, 1, 5, 10) * 10)
    )
    assert sim.calls(exchange, "orderbook") == 1
    shallow, deep = books[0].data, books[2].data
    assert shallow["depth"] == 5
    assert len(deep["bids"]) == len(deep["asks"]) == 50
    assert shallow["bids"] == deep["bids"][:5]
    assert [p for p, _ in deep["bids"]] == sorted((p for p, _ in deep["bids"]), reverse=True)
    assert [p for p, _ in deep["asks"]] == sorted(p for p, _ in deep["asks"])
    best_bid, best_ask = deep["bids"][0][0], deep["asks"][0][0]
    assert deep["spread"] == pytest.approx(best_ask - best_bid)
    assert deep["mid"] == pytest.approx((best_ask + best_bid) / 2)
    assert books[0].etag != books[2].etag, "each depth is its own representation"
    if exchange == "binance":
        assert isinstance(deep["nonce"], int), "Binance's lastUpdateId"


async def test_a_depth_past_the_bound_is_refused_with_the_bound(market: MarketData) -> None:
    with pytest.raises(errors.InvalidParameter) as refused:
        await market.order_book("binance", SPOT, 101)
    assert refused.value.extra == {"parameter": "depth", "valid": "1..100"}


async def test_a_depth_the_exchange_refuses_is_asked_once_then_its_own_depth_every_refresh(
    settings: Settings, clock: SharedClock, sim: ExchangeSim
) -> None:
    # Given books fetched deeper than Bybit's spot books go (1 to 200 levels),
    deep = settings.model_copy(update={"orderbook_max_depth": 300})
    service = MarketData.from_settings(deep, clock)
    try:
        await service.load_markets("bybit")
        sim.reset_calls()
        # when a book is asked for, then refreshed,
        first = await service.order_book("bybit", SPOT, 300)
        assert sim.calls("bybit", "orderbook") == 2, "refused, then the exchange's own depth"
        clock.advance(60)
        assert await service.warm(MarketKey(Kind.ORDERBOOK, "bybit", SPOT)) is not None
        again = await service.order_book("bybit", SPOT, 300)
    finally:
        await service.close()
    # then the refresh asks once, as the refusal taught, for the same depth as before.
    refused, fallback, refresh = [c.params for c in sim.call_log() if c.endpoint == "orderbook"]
    assert refused["limit"] == "300"
    assert refresh == fallback
    assert again.data["depth"] == first.data["depth"] >= 1


async def test_a_depth_ccxt_itself_refuses_with_an_exchange_error_falls_back(
    settings: Settings, clock: SharedClock, sim: ExchangeSim
) -> None:
    # Given an exchange whose ccxt code takes 20 or 100 levels only, and refuses others
    # with a plain ExchangeError before sending anything (as Kucoin's does),
    from ccxt.base.errors import ExchangeError

    service = MarketData.from_settings(settings.model_copy(update={"orderbook_max_depth": 50}))
    try:
        client = service._gateway.client("okx")
        real = client.fetch_order_book

        async def twenty_or_a_hundred(symbol: str, limit: int | None = None) -> Any:
            if limit not in (None, 20, 100):
                raise ExchangeError("okx fetchOrderBook() limit argument must be 20 or 100")
            return await real(symbol, limit)

        client.fetch_order_book = twenty_or_a_hundred
        # when a book is asked for,
        book = await service.order_book("okx", SPOT, 50)
    finally:
        await service.close()
    # then it is the exchange's own depth, not a failure.
    assert book.data["depth"] > 0
    assert sim.calls("okx", "orderbook") == 1


@pytest.mark.parametrize("exchange", EXCHANGES)
async def test_recent_trades_come_newest_last_and_bounded(
    market: MarketData, sim: ExchangeSim, exchange: str
) -> None:
    answer = await market.trades(exchange, SPOT, limit=7)
    trades = answer.data["trades"]
    assert len(trades) == 7
    stamps = [t["timestamp"] for t in trades]
    assert stamps == sorted(stamps)
    assert all(t["side"] in ("buy", "sell") and t["price"] > 0 and t["amount"] > 0 for t in trades)
    assert answer.data["timestamp"] == stamps[-1]
    calls = sim.calls(exchange, "trades")
    later = await market.trades(exchange, SPOT, since=stamps[3])
    assert all(t["timestamp"] >= stamps[3] for t in later.data["trades"])
    assert sim.calls(exchange, "trades") == calls, "the same recent trades, from the cache"


@pytest.mark.parametrize("exchange", sorted(PERP_IDS))
async def test_a_perpetuals_funding(market: MarketData, exchange: str) -> None:
    answer = await market.funding(exchange, PERP)
    assert answer.data["symbol"] == PERP
    assert isinstance(answer.data["funding_rate"], float)
    assert answer.freshness.source == "upstream"


@pytest.mark.parametrize("exchange", sorted(PERP_IDS))
async def test_next_funding_timestamp_is_the_next_funding_on_every_exchange(
    market: MarketData, sim: ExchangeSim, exchange: str
) -> None:
    # Given a perpetual whose funding settles every 8 hours,
    perpetual = sim.book.find(exchange, PERP_IDS[exchange], "linear")
    assert perpetual is not None
    # when its funding is asked for,
    answer = (await market.funding(exchange, PERP)).data
    # then next_funding_timestamp is the coming settlement, whatever ccxt calls it there,
    expected = activity.funding(sim.book, perpetual)
    assert answer["next_funding_timestamp"] == expected.next_ms
    assert answer["funding_rate"] == pytest.approx(expected.rate)
    if exchange == "okx":
        # and the one after is only where the exchange gives it; OKX's funding has no prices.
        assert answer["following_funding_timestamp"] == expected.next_ms + expected.interval_ms
        assert (answer["mark_price"], answer["index_price"]) == (None, None)
    else:
        assert answer["following_funding_timestamp"] is None
        assert answer["mark_price"] == pytest.approx(expected.mark)


@pytest.mark.parametrize("exchange", sorted(PERP_IDS))
async def test_a_spot_market_has_no_funding_and_says_where_it_is(
    market: MarketData, exchange: str
) -> None:
    with pytest.raises(errors.InvalidParameter) as refused:
        await market.funding(exchange, SPOT)
    assert refused.value.extra["parameter"] == "symbol"
    assert PERP in refused.value.extra["valid"]


@pytest.mark.parametrize("exchange", sorted(set(EXCHANGES) - set(PERP_IDS)))
async def test_an_exchange_without_funding_rates_is_not_supported_whatever_the_market(
    market: MarketData, sim: ExchangeSim, exchange: str
) -> None:
    await market.load_markets(exchange)
    sim.reset_calls()
    for symbol in (SPOT, "BTC/USD"):
        with pytest.raises(errors.NotSupported):
            await market.funding(exchange, symbol)
    with pytest.raises(errors.UnknownMarket):
        await market.funding(exchange, "NOPE/USDT")
    assert sim.calls(exchange) == 0


@pytest.mark.parametrize("exchange", EXCHANGES)
async def test_markets_are_filtered_and_paged_from_the_snapshot(
    market: MarketData, sim: ExchangeSim, exchange: str
) -> None:
    await market.load_markets(exchange)
    sim.reset_calls()
    everything, cursor = [], None
    while True:
        page = await market.markets(exchange, MarketQuery(quote="USDT", cursor=cursor), limit=7)
        everything += page.data["markets"]
        cursor = page.data["next_cursor"]
        if cursor is None:
            break
    assert sim.calls(exchange) == 0, "from the markets snapshot"
    symbols = [m["symbol"] for m in everything]
    assert symbols == sorted(set(symbols))
    assert len(symbols) == page.data["total"]
    assert all(m["quote"] == "USDT" for m in everything)
    btc = next(m for m in everything if m["symbol"] == SPOT)
    assert {SPOT, "BTC-USDT", "BTC_USDT", SPOT_IDS[exchange]} <= set(btc["accepted"])
    for form in btc["accepted"]:
        assert (await market.ticker(exchange, form)).data["symbol"] == SPOT
    searched = await market.markets(exchange, MarketQuery(q="eth", type="spot"), limit=50)
    assert {m["symbol"] for m in searched.data["markets"]} >= {"ETH/USDT"}


async def test_a_cursor_of_another_query_is_refused(market: MarketData) -> None:
    first = await market.markets("binance", MarketQuery(quote="USDT"), limit=2)
    with pytest.raises(errors.InvalidParameter) as refused:
        await market.markets(
            "binance", MarketQuery(quote="BTC", cursor=first.data["next_cursor"]), limit=2
        )
    assert refused.value.extra["parameter"] == "cursor"


async def test_one_symbol_across_every_exchange_that_lists_it(
    market: MarketData, sim: ExchangeSim
) -> None:
    sim.set_ticker("kraken", "XBTUSDT", last=60_000.0, bid=59_990.0, ask=60_010.0)
    sim.set_ticker("okx", "BTC-USDT", last=60_100.0, bid=60_050.0, ask=60_150.0)
    sim.inject("bybit", "503", endpoint="ticker", times=5)
    sim.inject("bybit", "503", endpoint="tickers", times=5)
    answer = await market.compare("btc-usdt")
    venues = {v["exchange"]: v for v in answer.data["venues"]}
    assert set(venues) == set(EXCHANGES)
    assert venues["bybit"]["problem"]["code"] == "upstream_unavailable"
    fine = [v for v in venues.values() if "problem" not in v]
    assert answer.data["best_bid"] == {
        "exchange": max(fine, key=lambda v: v["bid"])["exchange"],
        "price": max(v["bid"] for v in fine),
    }
    assert answer.data["best_ask"]["price"] == min(v["ask"] for v in fine)
    assert answer.data["spread"] == pytest.approx(
        answer.data["best_ask"]["price"] - answer.data["best_bid"]["price"]
    )


async def test_a_venue_whose_markets_cannot_be_loaded_is_listed_with_its_problem(
    market: MarketData, sim: ExchangeSim
) -> None:
    # Given Kraken down while its markets are not loaded yet,
    sim.inject("kraken", "503", endpoint="markets", times=20)
    # when one symbol is compared on every exchange,
    answer = await market.compare("BTC/USDT")
    # then Kraken is listed with why it could not answer, the others side by side.
    venues = {v["exchange"]: v for v in answer.data["venues"]}
    assert set(venues) == set(EXCHANGES)
    assert venues["kraken"]["problem"]["retryable"] is True
    assert all(v["last"] > 0 for name, v in venues.items() if name != "kraken")


async def test_a_symbol_no_exchange_lists_is_an_unknown_market_with_suggestions(
    market: MarketData,
) -> None:
    with pytest.raises(errors.UnknownMarket) as refused:
        await market.compare("BTC/USDTT")
    assert "BTC/USDT" in refused.value.extra["suggestions"]
    with pytest.raises(errors.UnknownMarket):
        await market.compare("NOPE/USDT")


async def test_a_symbol_no_loaded_exchange_lists_still_reports_the_venue_that_failed(
    market: MarketData, sim: ExchangeSim
) -> None:
    sim.inject("okx", "503", endpoint="markets", times=20)
    answer = await market.compare("NOPE/USDT")
    assert [v["exchange"] for v in answer.data["venues"]] == ["okx"]
    assert answer.data["venues"][0]["problem"]["retryable"] is True
    assert answer.data["best_bid"] is None


async def test_a_named_exchange_that_lacks_the_market_is_listed_with_its_problem(
    market: MarketData,
) -> None:
    answer = await market.compare("SOL/USDT", ["binance", "kraken"])
    venues = {v["exchange"]: v for v in answer.data["venues"]}
    assert venues["kraken"]["problem"]["code"] == "unknown_market"
    assert venues["binance"]["last"] > 0


async def test_every_exchange_says_what_it_offers(market: MarketData) -> None:
    offered = {e["id"]: e for e in market.exchanges()}
    assert offered["binance"]["funding"] is True
    assert offered["kraken"]["funding"] is False
    assert all(e["orderbook"] and e["trades"] and e["tickers"] for e in offered.values())
