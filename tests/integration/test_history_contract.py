"""One contract for OHLCV history, held on every wire format the loopback exchange speaks.

Exchanges page history differently (forward from ``since``: Binance; only their latest 720
candles: Kraken; fixed windows of 300: Coinbase Exchange; newest first within a range:
Bybit and OKX, OKX with a recent and a history endpoint). The service derives how each one
pages from ccxt's own code; these cases check that, whichever way an exchange pages, the
answer holds exactly the candles the exchange has (their values included), reports as gaps
exactly the ranges the exchange has said are empty, costs the fewest pages the exchange's
page size allows, and costs nothing when asked again while its candles are closed.

The tables below say what each loopback exchange is (its page size as ccxt records it,
whether it tells its markets' listing times); they describe the fakes, not the code.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from typing import Any

import pytest

from infra.exchange_sim import ExchangeSim
from infra.exchange_sim.frames import DAY_MS, HOUR_MS, MINUTE_MS, WEEK_MS, Frame
from infra.local.dynamodb import DynamoDBLocal
from market_proxy import errors
from market_proxy.answers import Answer
from market_proxy.candles import BUCKET_CANDLES
from market_proxy.service import MarketData
from tests.support.clock import SharedClock
from tests.support.sim_clients import EXCHANGES, SPOT, SPOT_IDS
from tests.support.stack import settings_for

pytestmark = [pytest.mark.anyio, pytest.mark.integration]

MIN = MINUTE_MS
SPAN = BUCKET_CANDLES * MIN
PHASE = 17 * MIN + 30_000  # half a minute into a candle, 17 minutes into a bucket
# Near the real now: DynamoDB Local expires items by the machine's clock.
NOW = (time.time_ns() // 1_000_000 - PHASE) // SPAN * SPAN + PHASE
OPEN = NOW // MIN * MIN
HOUR_OPEN = NOW // HOUR_MS * HOUR_MS

# Candles per request, as ccxt records them (the smaller of `features` and its paginate page).
PAGE = {"binance": 1000, "kraken": 720, "coinbaseexchange": 300, "bybit": 1000, "okx": 200}
# Whether ccxt can bound a page with `until` (Kraken's API takes a start only).
BOUNDED = {"binance": True, "kraken": False, "coinbaseexchange": True, "bybit": True, "okx": True}
# Whether the spot markets answer says when a market was listed (ccxt's `created`).
TELLS_LISTING = {"okx"}
KRAKEN_HISTORY = 720
CALENDARS: dict[str, dict[str, Frame | None]] = {
    "binance": {"1d": Frame.fixed(DAY_MS), "1w": Frame.weeks(), "1M": Frame.calendar_months()},
    "kraken": {"1d": Frame.fixed(DAY_MS), "1w": Frame.fixed(WEEK_MS), "1M": None},
    "coinbaseexchange": {"1d": Frame.fixed(DAY_MS), "1w": None, "1M": None},
    "bybit": {"1d": Frame.fixed(DAY_MS), "1w": Frame.weeks(), "1M": Frame.calendar_months()},
    "okx": {"1d": Frame.fixed(DAY_MS), "1w": Frame.weeks(), "1M": Frame.calendar_months()},
}


def pages(candles: int, exchange: str) -> int:
    """The fewest requests for ``candles`` consecutive candles at the exchange's page size."""
    return -(-candles // PAGE[exchange])


def minutes(first: int, count: int) -> list[int]:
    return [first + i * MIN for i in range(count)]


@pytest.fixture
def clock(sim: ExchangeSim) -> SharedClock:
    return SharedClock(NOW, sim)


@pytest.fixture
async def market(
    dynamodb_local: DynamoDBLocal, table: str, sim: ExchangeSim, clock: SharedClock
) -> AsyncIterator[MarketData]:
    service = MarketData.from_settings(
        settings_for(dynamodb_local.endpoint, table, sim, exchanges=EXCHANGES), clock
    )
    yield service
    await service.close()


async def ask(
    service: MarketData, sim: ExchangeSim, exchange: str, **query: Any
) -> tuple[Answer, int]:
    """The answer to one candles request, and how many candle pages it cost upstream."""
    before = sim.calls(exchange, "ohlcv")
    answer = await service.candles(exchange, SPOT, **query)
    return answer, sim.calls(exchange, "ohlcv") - before


def assert_holds(
    answer: Answer, sim: ExchangeSim, exchange: str, opens: list[int], frame: Frame
) -> None:
    """The answer's candles open exactly at ``opens``, as integers, with the exchange's
    own values."""
    rows = answer.data["candles"]
    assert [row[0] for row in rows] == opens
    assert all(type(row[0]) is int for row in rows)
    spot = sim.book.find(exchange, SPOT_IDS[exchange], "spot")
    assert spot is not None
    for row in rows:
        expected = sim.book.candle(spot, frame.length(row[0]), row[0])
        assert row[1:] == pytest.approx(list(expected), rel=1e-7, abs=1e-5), row[0]


async def assert_repeat_is_free(
    service: MarketData, sim: ExchangeSim, exchange: str, first: Answer, **query: Any
) -> None:
    again, cost = await ask(service, sim, exchange, **query)
    assert cost == 0
    assert again.data["candles"] == first.data["candles"]
    assert again.data["gaps"] == first.data["gaps"]


@pytest.mark.parametrize("exchange", EXCHANGES)
async def test_the_latest_candles(market: MarketData, sim: ExchangeSim, exchange: str) -> None:
    answer, cost = await ask(market, sim, exchange, timeframe="1m", limit=150)
    assert_holds(answer, sim, exchange, minutes(OPEN - 149 * MIN, 150), Frame.fixed(MIN))
    assert answer.data["gaps"] == []
    assert answer.data["returned"]["open_candle"] is True
    assert cost == 1
    await assert_repeat_is_free(market, sim, exchange, answer, timeframe="1m", limit=150)


@pytest.mark.parametrize("exchange", EXCHANGES)
async def test_since_and_limit_over_several_pages(
    market: MarketData, sim: ExchangeSim, exchange: str
) -> None:
    # Kraken keeps only its latest 720 candles: one page is all its history.
    count = 700 if exchange == "kraken" else 2 * PAGE[exchange] + PAGE[exchange] // 2
    since = OPEN - (count + 10) * MIN
    answer, cost = await ask(market, sim, exchange, timeframe="1m", since=since, limit=count)
    assert_holds(answer, sim, exchange, minutes(since, count), Frame.fixed(MIN))
    assert answer.data["gaps"] == []
    assert cost == pages(count, exchange)
    await assert_repeat_is_free(
        market, sim, exchange, answer, timeframe="1m", since=since, limit=count
    )


@pytest.mark.parametrize("exchange", EXCHANGES)
async def test_the_last_candles_before_until(
    market: MarketData, sim: ExchangeSim, exchange: str
) -> None:
    until = OPEN - 100 * MIN
    answer, cost = await ask(market, sim, exchange, timeframe="1m", until=until, limit=400)
    assert_holds(answer, sim, exchange, minutes(until - 400 * MIN, 400), Frame.fixed(MIN))
    assert answer.data["gaps"] == []
    assert answer.data["returned"]["open_candle"] is False
    assert cost == pages(400, exchange)
    await assert_repeat_is_free(
        market, sim, exchange, answer, timeframe="1m", until=until, limit=400
    )


@pytest.mark.parametrize("exchange", EXCHANGES)
async def test_a_range_between_since_and_until(
    market: MarketData, sim: ExchangeSim, exchange: str
) -> None:
    since, until = OPEN - 600 * MIN, OPEN - 100 * MIN
    answer, cost = await ask(market, sim, exchange, timeframe="1m", since=since, until=until)
    assert_holds(answer, sim, exchange, minutes(since, 500), Frame.fixed(MIN))
    assert answer.data["gaps"] == []
    assert cost == pages(500, exchange)
    await assert_repeat_is_free(
        market, sim, exchange, answer, timeframe="1m", since=since, until=until
    )


@pytest.mark.parametrize("exchange", EXCHANGES)
async def test_a_hole_of_more_than_a_page_is_one_gap_and_loses_nothing_after_it(
    market: MarketData, sim: ExchangeSim, exchange: str
) -> None:
    # Given a hole in the exchange's data wider than its page (Kraken's whole history is one
    # page: its hole is as wide as fits),
    hole = 100 if exchange == "kraken" else PAGE[exchange] + 50
    count = 700 if exchange == "kraken" else 2 * PAGE[exchange] + 100
    since = OPEN - (count + 5) * MIN
    start = since + (count - hole) // 2 * MIN
    sim.add_gap(exchange, SPOT_IDS[exchange], start, start + hole * MIN)

    # when the range around it is asked for,
    answer, cost = await ask(market, sim, exchange, timeframe="1m", since=since, limit=count)

    # then every candle before and after it comes back, the hole is the only gap, and the
    # pages are the fewest: windows of a page (Kraken's one page reaches past the hole).
    held = [ts for ts in minutes(since, count) if not start <= ts < start + hole * MIN]
    assert_holds(answer, sim, exchange, held, Frame.fixed(MIN))
    assert answer.data["gaps"] == [[start, start + hole * MIN]]
    assert cost == (pages(count, exchange) if BOUNDED[exchange] else 1)
    await assert_repeat_is_free(
        market, sim, exchange, answer, timeframe="1m", since=since, limit=count
    )


@pytest.mark.parametrize("exchange", EXCHANGES)
async def test_a_market_listed_after_since_has_candles_from_its_listing(
    market: MarketData, sim: ExchangeSim, exchange: str
) -> None:
    # Given a market listed 200 hours ago,
    listed = HOUR_OPEN - 199 * HOUR_MS
    sim.set_listing(exchange, SPOT_IDS[exchange], listed, kind="spot")
    # (a container whose markets, downloaded now, carry the listing time where the
    # exchange tells it)
    fresh = MarketData(market.settings, None, market.clock)
    await fresh.load_markets(exchange)
    sim.reset_calls()

    # when a client asks for its latest thousand hourly candles,
    try:
        answer, cost = await ask(fresh, sim, exchange, timeframe="1h", limit=1000)
    finally:
        await fresh.close()

    # then it gets the 200 the exchange has, the time before the listing as one gap, in the
    # fewest pages: none before the listing where the exchange says when that was.
    hourly = [listed + i * HOUR_MS for i in range(200)]
    assert_holds(answer, sim, exchange, hourly, Frame.fixed(HOUR_MS))
    start = answer.data["requested"]["start"]
    assert answer.data["gaps"] == [[start, listed]]
    if exchange in TELLS_LISTING:
        assert cost == pages(200, exchange)
    elif BOUNDED[exchange]:
        assert cost == pages(1000, exchange)
    else:
        assert cost == 1


@pytest.mark.parametrize("exchange", EXCHANGES)
async def test_history_the_exchange_no_longer_keeps_is_a_gap(
    market: MarketData, sim: ExchangeSim, exchange: str
) -> None:
    # Given an exchange that serves only its latest 500 one-minute candles,
    sim.set_history_limit(exchange, 500)
    since = OPEN - 800 * MIN

    # when a range starting before that and ending within it is asked for,
    answer, cost = await ask(market, sim, exchange, timeframe="1m", since=since, limit=600)

    # then the candles it keeps come back, and what it no longer keeps is a gap.
    oldest = OPEN - 499 * MIN
    assert_holds(answer, sim, exchange, minutes(oldest, 299), Frame.fixed(MIN))
    assert answer.data["gaps"] == [[since, oldest]]
    assert cost == (pages(600, exchange) if BOUNDED[exchange] else 1)
    await assert_repeat_is_free(
        market, sim, exchange, answer, timeframe="1m", since=since, limit=600
    )


@pytest.mark.parametrize("exchange", EXCHANGES)
@pytest.mark.parametrize("timeframe", ["1d", "1w", "1M"])
async def test_days_weeks_and_months_follow_the_exchanges_calendar(
    market: MarketData, sim: ExchangeSim, exchange: str, timeframe: str
) -> None:
    frame = CALENDARS[exchange][timeframe]
    if frame is None:
        with pytest.raises(errors.InvalidParameter) as refused:
            await market.candles(exchange, SPOT, timeframe=timeframe, limit=5)
        assert timeframe not in refused.value.extra["valid"]
        return
    answer, cost = await ask(market, sim, exchange, timeframe=timeframe, limit=5)
    newest = frame.floor(NOW)
    opens = [newest]
    while len(opens) < 5:
        opens.insert(0, frame.previous(opens[0]))
    assert_holds(answer, sim, exchange, opens, frame)
    assert answer.data["returned"]["open_candle"] is True
    assert cost == 1


@pytest.mark.parametrize("exchange", ["binance", "bybit", "okx"])
async def test_closed_weeks_are_kept_for_good_whatever_form_the_request_took(
    market: MarketData, sim: ExchangeSim, clock: SharedClock, exchange: str
) -> None:
    # Given three weeks of 2017 asked for with since and limit (the range ends "now"),
    since = 1_500_000_000_000
    first, cost = await ask(market, sim, exchange, timeframe="1w", since=since, limit=3)
    assert len(first.data["candles"]) == 3
    assert cost >= 1

    # when the same is asked a day later, then it costs nothing: closed is closed.
    clock.advance(86_400)
    again, cost = await ask(market, sim, exchange, timeframe="1w", since=since, limit=3)
    assert cost == 0
    assert again.data["candles"] == first.data["candles"]
