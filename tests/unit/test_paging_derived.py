"""History from exchanges whose paging no loopback exchange plays, read off ccxt's own code.

Each test drives a real ccxt class through :class:`CandleSource` (the paging derived from
ccxt, then the walk), with the instance's transport swapped for a fake exchange that answers
the request ccxt built as that exchange's API does (nothing leaves the process): one that
ccxt pages backward from ``until`` and that ignores ``since`` (DeepCoin, Extended), one
whose limit ccxt caps below what ``features`` records (ApeX), one whose ``since`` ccxt turns
into the day's file (bitbank). The answer must hold every candle the exchange has in the
range and no gap where it has candles, in the fewest pages the exchange allows.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import AsyncIterator, Callable
from typing import Any, cast
from urllib.parse import parse_qs, urlparse

import pytest

from market_proxy.cache.entry import Lifetime
from market_proxy.candles.upstream import CandleSource
from market_proxy.candles.walk import Walked
from market_proxy.exchanges.gateway import ExchangeGateway
from market_proxy.exchanges.paging import derive
from market_proxy.exchanges.venue import Venue
from market_proxy.intervals import Interval
from market_proxy.symbols import SymbolIndex

pytestmark = pytest.mark.anyio
MIN, DAY = 60_000, 86_400_000
NOW = 1_790_000_000_000 // DAY * DAY + 30 * MIN + 20_000  # 00:30:20 UTC
OPEN = NOW // MIN * MIN  # the open candle
Query = dict[str, list[str]]


class Held:
    """The exchange's one-minute candles: every minute from ``first`` to now."""

    def __init__(self, first: int = OPEN - 30 * DAY) -> None:
        self.first = first
        self.urls: list[str] = []

    def between(self, start: int, stop: int) -> list[int]:
        low = max(-(-start // MIN) * MIN, self.first)
        return list(range(low, min(stop, OPEN + MIN), MIN))


def price(ts: int) -> str:
    return str(100 + ts // MIN % 97)


def deepcoin(held: Held, path: str, query: Query) -> Any:
    # GET /deepcoin/market/candles: the newest `limit` candles before `after`, newest first.
    after, limit = int(query.get("after", [str(NOW)])[0]), int(query["limit"][0])
    stamps = held.between(0, after)[-limit:][::-1]
    return {"code": "0", "msg": "", "data": [[str(t), *[price(t)] * 4, "1", "1"] for t in stamps]}


def extended(held: Held, path: str, query: Query) -> Any:
    # GET /info/candles/{market}/trades: the newest `limit` candles up to `endTime`.
    end, limit = int(query.get("endTime", [str(NOW)])[0]), int(query["limit"][0])
    stamps = held.between(0, end + 1)[-limit:][::-1]
    candle = {"o": "1", "h": "1", "l": "1", "c": "1", "v": "1"}
    return {"status": "OK", "data": [{**candle, "c": price(t), "T": t} for t in stamps]}


def apex(held: Held, path: str, query: Query) -> Any:
    # GET /v3/klines: [start, end] in seconds, at most 200 candles (ccxt caps its limit).
    start, end = int(query["start"][0]) * 1000, int(query["end"][0]) * 1000
    stamps = held.between(start, end + 1)[: min(200, int(query["limit"][0]))]
    candles = [
        {"start": t, "open": price(t), "high": price(t), "low": price(t), "close": price(t)}
        for t in stamps
    ]
    return {"data": {"BTCUSDT": [{**c, "volume": "1"} for c in candles]}}


def bitbank(held: Held, path: str, query: Query) -> Any:
    # GET /{pair}/candlestick/1min/{YYYYMMDD}: that UTC day's candles, whatever was asked.
    day = dt.datetime.strptime(path.rsplit("/", 1)[-1], "%Y%m%d").replace(tzinfo=dt.UTC)
    start = int(day.timestamp() * 1000)
    rows = [[*[price(t)] * 4, "1", t] for t in held.between(start, start + DAY)]
    data = {"candlestick": [{"type": "1min", "ohlcv": rows}], "timestamp": NOW}
    return {"success": 1, "data": data}


Answer = Callable[[Held, str, Query], Any]
FAKES: dict[str, Answer] = {
    "deepcoin": deepcoin,
    "extended": extended,
    "apex": apex,
    "bitbank": bitbank,
}


class Direct:
    """The gateway's part a page needs: run the request (no budget, no breaker)."""

    async def call(self, exchange_id: str, what: str, request: Callable[[], Any]) -> Any:
        return await request()


def spot(symbol: str) -> dict[str, Any]:
    base, quote = symbol.split("/")
    return {
        **{"id": f"{base}-{quote}", "id2": f"{base}{quote}", "symbol": symbol},
        **{"base": base, "quote": quote, "baseId": base, "quoteId": quote},
        **{"type": "spot", "spot": True, "swap": False, "future": False, "option": False},
        **{"contract": False, "linear": None, "inverse": None, "active": True},
        **{"precision": {"amount": 1e-8, "price": 0.01}, "limits": {}, "info": {}},
    }


@pytest.fixture
async def venue(request: pytest.FixtureRequest) -> AsyncIterator[tuple[Venue, Held]]:
    import ccxt.async_support as ccxt_async

    name, symbol = request.param
    client = getattr(ccxt_async, name)({"timeout_on_exit": 0})
    client.milliseconds = lambda: NOW
    market = spot(symbol) | ({"id": "btc_jpy"} if name == "bitbank" else {})
    client.set_markets([market])
    held = Held()

    async def fetch(url: str, method: str = "GET", headers: Any = None, body: Any = None) -> Any:
        held.urls.append(url)
        parts = urlparse(url)
        return FAKES[name](held, parts.path, parse_qs(parts.query))

    client.fetch = fetch
    yield Venue(name, client, SymbolIndex({symbol: market}), Lifetime(0, 0, 0, 0)), held
    await client.close()


SOURCE = CandleSource(cast(ExchangeGateway, Direct()), walk_seconds=60)


def market_of(venue: Venue) -> Any:
    return venue.client.market(next(iter(venue.client.markets)))


async def fetched(venue: Venue, ranges: list[Interval]) -> Walked:
    source = CandleSource(cast(ExchangeGateway, Direct()), walk_seconds=60)
    return await source.fetch(venue, market_of(venue), "1m", ranges, step_ms=MIN)


def day_of(ts: int) -> str:
    return dt.datetime.fromtimestamp(ts / 1000, dt.UTC).strftime("%Y%m%d")


def gaps(walked: Walked) -> list[Interval]:
    """The firm ranges without a candle: what the answer would report as the exchange's."""
    have = {int(row[0]) for row in walked.rows}
    return [
        (t, t + MIN) for start, end in walked.firm for t in range(start, end, MIN) if t not in have
    ]


def stamps(walked: Walked) -> list[int]:
    return [int(row[0]) for row in walked.rows]


@pytest.mark.parametrize(
    "venue", [("deepcoin", "BTC/USDT"), ("extended", "BTC/USD")], indirect=True
)
async def test_an_exchange_paged_back_from_until_serves_a_past_range_window_by_window(
    venue: tuple[Venue, Held],
) -> None:
    exchange, held = venue
    start = OPEN - 3 * DAY
    walked = await fetched(exchange, [(start, start + 500 * MIN)])
    assert stamps(walked) == list(range(start, start + 500 * MIN, MIN))
    assert gaps(walked) == []
    paging = await SOURCE.paging(exchange, market_of(exchange), "1m")
    assert walked.pages == -(-500 // paging.page)  # ccxt's page: 300 (DeepCoin), 500
    assert all(("after=" in url) or ("endTime=" in url) for url in held.urls)  # each by its end


@pytest.mark.parametrize("venue", [("deepcoin", "BTC/USDT")], indirect=True)
async def test_an_exchange_paged_back_from_until_reports_the_time_before_its_listing_as_a_gap(
    venue: tuple[Venue, Held],
) -> None:
    exchange, held = venue
    held.first = OPEN - 3 * DAY + 400 * MIN  # listed in the middle of the range
    start = OPEN - 3 * DAY
    walked = await fetched(exchange, [(start, start + 600 * MIN)])
    assert stamps(walked) == list(range(held.first, start + 600 * MIN, MIN))
    assert gaps(walked) == [(t, t + MIN) for t in range(start, held.first, MIN)]


@pytest.mark.parametrize("venue", [("apex", "BTC/USDT")], indirect=True)
async def test_pages_are_no_larger_than_the_limit_ccxt_caps_a_request_at(
    venue: tuple[Venue, Held],
) -> None:
    exchange, held = venue
    start = OPEN - 3 * DAY
    walked = await fetched(exchange, [(start, start + 1000 * MIN)])
    assert stamps(walked) == list(range(start, start + 1000 * MIN, MIN))
    assert gaps(walked) == []
    assert walked.pages == 5  # ccxt sends at most 200 (apex.py), whatever was asked
    assert all("limit=200" in url for url in held.urls)


@pytest.mark.parametrize("venue", [("bitbank", "BTC/JPY")], indirect=True)
async def test_a_since_sent_as_its_day_still_pages_from_since(venue: tuple[Venue, Held]) -> None:
    exchange, held = venue
    start = OPEN - 3 * DAY
    walked = await fetched(exchange, [(start, start + 500 * MIN)])
    assert stamps(walked) == list(range(start, start + 500 * MIN, MIN))
    assert gaps(walked) == []
    assert walked.pages == 1
    assert [url.rsplit("/", 1)[-1] for url in held.urls] == [day_of(start)]


@pytest.mark.parametrize("venue", [("bitbank", "BTC/JPY")], indirect=True)
async def test_the_latest_candles_across_midnight_come_from_both_days_files(
    venue: tuple[Venue, Held],
) -> None:
    exchange, held = venue
    walked = await fetched(exchange, [(OPEN - 199 * MIN, OPEN + MIN)])
    assert stamps(walked) == list(range(OPEN - 199 * MIN, OPEN + MIN, MIN))
    assert walked.pages == 2
    assert [url.rsplit("/", 1)[-1] for url in held.urls] == [day_of(OPEN - DAY), day_of(OPEN)]


@pytest.mark.parametrize("venue", [("bitbank", "BTC/JPY")], indirect=True)
async def test_an_empty_day_speaks_for_that_day_only_not_for_the_next_days_candles(
    venue: tuple[Venue, Held],
) -> None:
    exchange, held = venue
    midnight = OPEN // DAY * DAY - DAY
    held.first = midnight  # nothing before this midnight: the day before is empty
    start = midnight - 4 * 60 * MIN  # a page of 1000 from 20:00 runs into the next day
    walked = await fetched(exchange, [(start, start + 1000 * MIN)])
    assert stamps(walked) == list(range(midnight, start + 1000 * MIN, MIN))
    assert gaps(walked) == [(t, t + MIN) for t in range(start, midnight, MIN)]


@pytest.mark.parametrize(
    ("venue", "expected"),
    [
        (("apex", "BTC/USDT"), {"page": 200, "follows_since": True, "bounded": True}),
        (
            ("bitbank", "BTC/JPY"),
            {"page": 1000, "follows_since": True, "bounded": False, "since_grain_ms": DAY},
        ),
    ],
    indirect=["venue"],
)
async def test_a_capped_limit_and_a_since_sent_as_a_day_are_read_off_the_requests_ccxt_builds(
    venue: tuple[Venue, Held], expected: dict[str, Any]
) -> None:
    exchange, held = venue
    paging = await derive(exchange.client, market_of(exchange), "1m")
    assert {name: getattr(paging, name, None) for name in expected} == expected
    assert held.urls == []  # read off ccxt's code: nothing reached the exchange
