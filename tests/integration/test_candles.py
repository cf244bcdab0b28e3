"""OHLCV history through the candle store: paging, buckets, gaps, the open candle."""

from __future__ import annotations

import asyncio
import itertools
import time
from collections.abc import AsyncIterator
from typing import Any

import pytest

from infra.exchange_sim import ExchangeSim
from infra.local.dynamodb import DynamoDBLocal
from market_proxy import errors
from market_proxy.answers import Answer
from market_proxy.candles import BUCKET_CANDLES
from market_proxy.service import MarketData
from market_proxy.settings import Settings
from tests.support.clock import SharedClock
from tests.support.dynamodb_faults import dynamodb_fault_proxy
from tests.support.sim_clients import EXCHANGES, SPOT

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


def assert_kept_briefly(answer: Answer, clock: SharedClock, settings: Settings) -> None:
    """No client or cache is told to keep ``answer`` longer than an open candle."""
    limit = clock.now + settings.ohlcv_open_ttl_seconds * 1000
    assert answer.freshness.lifetime.fresh_until <= limit


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
    assert again.freshness.source == "l1"
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
    assert again.freshness.source == "l2"
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
    assert ohlcv_calls(sim) == 1, "both holes and what lies between fit one page"
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


async def test_a_wider_request_while_the_open_candle_is_fresh_loses_no_candle(
    market: MarketData, sim: ExchangeSim
) -> None:
    # Given the latest ten candles, the open one included, fresh in the cache,
    await market.candles("binance", "BTC/USDT", timeframe="1m", limit=10)
    sim.reset_calls()

    # when, within the open candle's freshness, a client asks for the latest twenty,
    wider = await market.candles("binance", "BTC/USDT", timeframe="1m", limit=20)
    again = await market.candles("binance", "BTC/USDT", timeframe="1m", limit=20)

    # then all twenty come back, the open one last, in one page (the ten older candles and
    # the open one fetched again together), and the repeat is whole too, from memory.
    assert_contiguous(wider.data["candles"], OPEN - 19 * MIN, 20)
    assert wider.data["returned"]["open_candle"] is True
    assert wider.data["gaps"] == []
    assert ohlcv_calls(sim) == 1
    assert again.data["candles"] == wider.data["candles"]
    assert ohlcv_calls(sim) == 1


async def test_candles_that_closed_across_a_minute_boundary_stay_in_the_answer(
    market: MarketData, settings: Settings, clock: SharedClock, sim: ExchangeSim
) -> None:
    # Given the latest ten candles fetched late in a minute,
    clock.advance(25)  # 55 s into the open candle
    await market.candles("binance", "BTC/USDT", timeframe="1m", limit=10)

    # when a new minute opens while that answer is still fresh, and a client asks again,
    clock.advance(settings.ohlcv_open_ttl_seconds - 1)
    later = await market.candles("binance", "BTC/USDT", timeframe="1m", limit=10)
    clock.advance(settings.ohlcv_open_ttl_seconds + 1)
    last = await market.candles("binance", "BTC/USDT", timeframe="1m", limit=10)

    # then no candle is missing from either answer: the one that closed in between included.
    assert_contiguous(later.data["candles"], OPEN + MIN - 9 * MIN, 10)
    assert_contiguous(last.data["candles"], OPEN + MIN - 9 * MIN, 10)
    assert later.data["gaps"] == last.data["gaps"] == []


async def test_a_candle_the_exchange_still_amends_after_its_close_is_not_kept_as_final(
    market: MarketData, settings: Settings, clock: SharedClock, sim: ExchangeSim
) -> None:
    # Given an exchange whose clock runs a second behind ours, asked half a second after
    # a candle closed by our clock (by the exchange's, it is still open),
    clock.advance(30.5)  # OPEN + 60.5 s: the candle that opened at OPEN has closed
    sim.set_clock(clock.now - 1000)
    first = await market.candles("binance", "BTC/USDT", timeframe="1m", since=OPEN, limit=1)
    provisional_close = first.data["candles"][0][4]

    # when, the exchange caught up and the answer's freshness over, it is asked again,
    clock.advance(settings.ohlcv_open_ttl_seconds + 1)
    sim.reset_calls()
    again = await market.candles("binance", "BTC/USDT", timeframe="1m", since=OPEN, limit=1)

    # then that candle was fetched again, and the answer holds its final values.
    assert ohlcv_calls(sim) == 1
    assert _first_call_since(sim) == OPEN
    final = again.data["candles"][0]
    assert final[4] != provisional_close
    market_book = sim.book.find("binance", "BTCUSDT", "spot")
    assert market_book is not None
    assert final[4] == pytest.approx(sim.book.candle(market_book, MIN, OPEN)[3])
    # Once settled, it is closed history: no further call for it.
    clock.advance(settings.ohlcv_open_ttl_seconds + 1)
    sim.reset_calls()
    await market.candles("binance", "BTC/USDT", timeframe="1m", since=OPEN, limit=1)
    assert ohlcv_calls(sim) == 0


async def test_an_empty_answer_for_past_candles_is_not_kept_as_a_gap(
    market: MarketData, settings: Settings, clock: SharedClock, sim: ExchangeSim
) -> None:
    # Given an exchange that answers once with no candles at all for a range of the past
    # (nothing in it, nothing after it: no evidence that the range is a gap),
    start = EDGE - 300 * MIN
    await market.load_markets("binance")
    sim.inject("binance", "empty", endpoint="ohlcv")
    empty = await market.candles("binance", "ETH/BTC", timeframe="1m", since=start, limit=30)

    # when it is asked again once that answer's brief freshness is over,
    assert empty.data["candles"] == []
    assert_kept_briefly(empty, clock, settings)
    clock.advance(settings.ohlcv_open_ttl_seconds + 1)
    sim.reset_calls()
    whole = await market.candles("binance", "ETH/BTC", timeframe="1m", since=start, limit=30)

    # then the candles are fetched and served, with no gap remembered.
    assert ohlcv_calls(sim) == 1
    assert_contiguous(whole.data["candles"], start, 30)
    assert whole.data["gaps"] == []


@pytest.mark.parametrize("exchange", EXCHANGES)
@pytest.mark.parametrize("timeframe", ["1m", "1h", "1d"])
async def test_an_empty_answer_for_a_past_range_is_fresh_only_briefly_on_every_exchange(
    market: MarketData,
    settings: Settings,
    clock: SharedClock,
    sim: ExchangeSim,
    exchange: str,
    timeframe: str,
) -> None:
    step = {"1m": MIN, "1h": 60 * MIN, "1d": 1440 * MIN}[timeframe]
    await market.load_markets(exchange)
    # Given an exchange that once answers a range of the past with no candles at all,
    sim.inject(exchange, "empty", endpoint="ohlcv", times=20)
    start = (clock.now // step - 100) * step
    empty = await market.candles(exchange, SPOT, timeframe=timeframe, since=start, limit=10)
    # then that answer is no gap, and no client or cache is told to keep it for long.
    assert empty.data["candles"] == []
    assert empty.data["gaps"] == []
    assert_kept_briefly(empty, clock, settings)


async def test_an_empty_answer_for_past_weeks_is_not_kept_as_closed(
    market: MarketData, settings: Settings, clock: SharedClock, sim: ExchangeSim
) -> None:
    await market.load_markets("binance")
    sim.inject("binance", "empty", endpoint="ohlcv", times=20)
    since = clock.now - 100 * 7 * 1440 * MIN
    empty = await market.candles("binance", SPOT, timeframe="1w", since=since, limit=3)
    assert empty.data["candles"] == []
    assert_kept_briefly(empty, clock, settings)


async def test_latest_candles_of_a_quiet_market_are_fresh_only_briefly(
    market: MarketData, settings: Settings, clock: SharedClock, sim: ExchangeSim
) -> None:
    # Given a market with no candle for the last few minutes (an exchange that skips empty
    # candles),
    sim.add_gap("binance", "SOLUSDT", OPEN - 3 * MIN, OPEN + 60 * MIN)

    # when a client asks for its latest candles, and again within their freshness,
    answer = await market.candles("binance", "SOL/USDT", timeframe="1m", limit=10)
    sim.reset_calls()
    repeat = await market.candles("binance", "SOL/USDT", timeframe="1m", limit=10)

    # then the quiet minutes are no gap (nothing came after them: the exchange has not said
    # they stay empty), the answer may be kept only as long as an open candle (never a
    # month), and the repeat is served without a call;
    assert answer.data["gaps"] == []
    assert answer.data["returned"]["candles"] == 6
    fresh_s = (answer.freshness.lifetime.fresh_until - clock.now) / 1000
    assert 0 < fresh_s <= settings.ohlcv_open_ttl_seconds
    assert ohlcv_calls(sim) == 0
    assert repeat.data == answer.data
    # past that freshness, the quiet minutes are asked for again.
    clock.advance(settings.ohlcv_open_ttl_seconds + 1)
    await market.candles("binance", "SOL/USDT", timeframe="1m", limit=10)
    assert ohlcv_calls(sim) == 1


async def test_the_age_of_an_answer_is_that_of_its_newest_candles(
    market: MarketData, settings: Settings, clock: SharedClock, sim: ExchangeSim
) -> None:
    # Given closed candles fetched an hour ago,
    await market.candles("binance", "BTC/USDT", timeframe="1m", since=OPEN - 200 * MIN, limit=100)

    # when, an hour later, a client asks for the latest 300 (those, and recent ones),
    clock.advance(3600)
    answer = await market.candles("binance", "BTC/USDT", timeframe="1m", limit=300)

    # then the answer's age is that of its newest candles, fetched just now.
    assert answer.freshness.age_ms == 0
    assert answer.freshness.lifetime.fetched_at == clock.now


async def test_containers_asking_for_the_latest_candles_at_once_make_one_call_and_one_write(
    settings: Settings, clock: SharedClock, sim: ExchangeSim, dynamodb_local: DynamoDBLocal
) -> None:
    with dynamodb_fault_proxy(dynamodb_local.endpoint) as table:
        shared = settings.model_copy(update={"dynamodb_endpoint_url": table.url})
        containers = [MarketData.from_settings(shared, clock) for _ in range(3)]
        try:
            # Given the latest hundred candles cached, their open candle past its freshness,
            await containers[0].candles("binance", "BTC/USDT", timeframe="1m", limit=100)
            for container in containers[1:]:
                await container.load_markets("binance")
            clock.advance(settings.ohlcv_open_ttl_seconds + 1)
            sim.reset_calls()
            sim.set_latency(0.3)
            writes = table.calls("BatchWriteItem")

            # when three containers get ten requests each for them at once,
            answers = await asyncio.gather(
                *(
                    container.candles("binance", "BTC/USDT", timeframe="1m", limit=100)
                    for container in containers
                    for _ in range(10)
                )
            )
        finally:
            await asyncio.gather(*(container.close() for container in containers))

    # then the exchange is asked once and the table written once: one container refreshes
    # (its requests share that), the others wait for its write and read it;
    assert ohlcv_calls(sim) == 1
    assert table.calls("BatchWriteItem") - writes == 1
    assert {answer.freshness.source for answer in answers} == {"upstream", "l2"}
    # and every answer holds the same hundred candles, up to the open one.
    assert_contiguous(answers[0].data["candles"], OPEN - 99 * MIN, 100)
    assert all(answer.data["candles"] == answers[0].data["candles"] for answer in answers)


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
    assert stale.freshness.source == "stale"
    assert stale.freshness.stale_reason == "upstream_unavailable"
    assert stale.data["candles"] == fresh.data["candles"]


async def test_without_anything_cached_an_exchange_failure_is_raised(
    market: MarketData, sim: ExchangeSim
) -> None:
    await market.load_markets("binance")
    sim.inject("binance", "503", endpoint="ohlcv", times=3)
    with pytest.raises(errors.UpstreamUnavailable):
        await market.candles("binance", "BTC/USDT", timeframe="1m", limit=10)


async def test_weekly_candles_are_cached_per_query(market: MarketData, sim: ExchangeSim) -> None:
    first = await market.candles("binance", "BTC/USDT", timeframe="1w", limit=10)
    assert 1 <= len(first.data["candles"]) <= 10
    sim.reset_calls()
    await market.candles("binance", "BTC/USDT", timeframe="1w", limit=10)
    assert ohlcv_calls(sim) == 0


MONDAY_2024_01_01 = 1_704_067_200_000
DAY = 86_400_000


@pytest.mark.parametrize(
    ("timeframe", "opens"),
    [
        ("1w", [MONDAY_2024_01_01 + week * 7 * DAY for week in range(4)]),
        ("1M", [1_704_067_200_000, 1_706_745_600_000, 1_709_251_200_000]),  # Jan, Feb, Mar
    ],
)
async def test_weeks_and_months_open_on_the_exchanges_calendar_none_dropped(
    market: MarketData, sim: ExchangeSim, timeframe: str, opens: list[int]
) -> None:
    # Given Binance, whose weeks open on Monday and months on the first (not on multiples
    # of their length since the epoch, a Thursday),
    # when a client asks for the first candles from a Monday, the first of January,
    answer = await market.candles(
        "binance", "BTC/USDT", timeframe=timeframe, since=MONDAY_2024_01_01, limit=len(opens)
    )

    # then it gets exactly the exchange's candles from that day, the first one included;
    assert [int(row[0]) for row in answer.data["candles"]] == opens
    assert answer.data["requested"]["start"] == MONDAY_2024_01_01
    assert answer.data["returned"]["open_candle"] is False
    # and, all of them closed, a repeat a day later costs nothing.
    sim.reset_calls()
    await market.candles(
        "binance", "BTC/USDT", timeframe=timeframe, since=MONDAY_2024_01_01, limit=len(opens)
    )
    assert ohlcv_calls(sim) == 0


async def test_the_latest_weeks_end_with_the_open_one(
    market: MarketData, clock: SharedClock, sim: ExchangeSim
) -> None:
    answer = await market.candles("binance", "BTC/USDT", timeframe="1w", limit=5)
    opens = [int(row[0]) for row in answer.data["candles"]]
    assert len(opens) == 5
    assert all(later - earlier == 7 * DAY for earlier, later in itertools.pairwise(opens))
    assert (opens[-1] - MONDAY_2024_01_01) % (7 * DAY) == 0, "weeks open on Monday"
    assert opens[-1] <= clock.now < opens[-1] + 7 * DAY
    assert answer.data["returned"]["open_candle"] is True


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


async def test_history_longer_than_a_request_has_time_for_is_kept_and_goes_on_when_asked_again(
    settings: Settings, clock: SharedClock, sim: ExchangeSim
) -> None:
    # Given a request with time for one page only (OHLCV_WALK_SECONDS) and a history of
    # three pages (Binance pages 1,000 candles),
    hurried = MarketData.from_settings(settings.model_copy(update={"ohlcv_walk_seconds": 1e-6}))
    start = EDGE - 3 * SPAN
    try:
        await hurried.load_markets("binance")
        sim.reset_calls()
        # when it is asked for,
        with pytest.raises(errors.UpstreamTimeout) as cut:
            await hurried.candles("binance", "ETH/BTC", timeframe="1m", since=start, limit=3000)
        # then it answers at once that it ran out of time, to ask again, after one page,
        assert cut.value.retryable
        assert cut.value.retry_after == 1.0
        assert "ask again" in cut.value.detail
        assert ohlcv_calls(sim) == 1
    finally:
        await hurried.close()
    # and a request with time enough (another container, the same table) fetches only the
    # two pages left.
    patient = MarketData.from_settings(settings, clock)
    try:
        whole = await patient.candles("binance", "ETH/BTC", timeframe="1m", since=start, limit=3000)
    finally:
        await patient.close()
    assert_contiguous(whole.data["candles"], start, 3000)
    assert ohlcv_calls(sim) == 3
