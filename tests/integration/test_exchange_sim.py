"""The loopback exchange in all five wire formats, read by ccxt's own clients and parsers.

Given the loopback exchange at a frozen instant, when a real ccxt client (no credentials)
loads markets and fetches tickers, books, trades, funding and candles, then ccxt parses
exactly what MarketBook holds, candles page the way each exchange pages them, listings,
history limits and gaps are honoured in each format, and each fault raises the ccxt error
the real exchange's answer raises.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from ccxt.base import errors as ccxt_errors

from infra.exchange_sim import ExchangeSim, activity
from infra.exchange_sim.faults import ALTERED, KINDS
from infra.exchange_sim.frames import DAY_MS, HOUR_MS, MINUTE_MS, Frame
from tests.support.sim_clients import (
    ETH_IDS,
    EXCHANGES,
    PERP,
    PERP_IDS,
    SPOT,
    SPOT_IDS,
    assert_candles,
    ccxt_client,
)

pytestmark = [pytest.mark.anyio, pytest.mark.integration]

NOW = int(datetime(2025, 10, 9, 8, 17, 30, tzinfo=UTC).timestamp() * 1000)  # a Thursday
H0 = NOW // HOUR_MS * HOUR_MS  # the open hourly candle
S = H0 - 100 * HOUR_MS
HOURLY = Frame.fixed(HOUR_MS)
BOOK_DEPTH = {"coinbaseexchange": 50}  # level 2 whatever the limit; the others honour 5


def hours(first: int, count: int) -> list[int]:
    return [first + i * HOUR_MS for i in range(count)]


@pytest.fixture
def clock(sim: ExchangeSim) -> int:
    sim.set_clock(NOW)
    return NOW


@pytest.mark.parametrize("exchange", EXCHANGES)
async def test_markets_load_with_nothing_but_market_data_asked(
    sim: ExchangeSim, clock: int, exchange: str
) -> None:
    async with ccxt_client(sim, exchange) as client:
        assert {SPOT, "ETH/USDT"} <= set(client.symbols)
        if exchange in PERP_IDS:
            perp = client.market(PERP)
            assert (perp["swap"], perp["linear"]) == (True, True)
    assert sim.calls(exchange) == sim.calls(exchange, "markets") > 0


@pytest.mark.parametrize("exchange", EXCHANGES)
async def test_tickers_one_and_many_carry_what_was_set(
    sim: ExchangeSim, clock: int, exchange: str
) -> None:
    sim.set_ticker(exchange, SPOT_IDS[exchange], last=61234.5, bid=61234.25, ask=61235.0)
    sim.set_ticker(exchange, ETH_IDS[exchange], last=3210.5)
    async with ccxt_client(sim, exchange) as client:
        one = await client.fetch_ticker(SPOT)
        many = await client.fetch_tickers([SPOT, "ETH/USDT"])
    assert one["last"] == 61234.5
    if exchange != "coinbaseexchange":  # its spark-lines carry closes only
        assert (one["bid"], one["ask"]) == (61234.25, 61235.0)
    assert {s: t["last"] for s, t in many.items()} == {SPOT: 61234.5, "ETH/USDT": 3210.5}
    assert (sim.calls(exchange, "ticker"), sim.calls(exchange, "tickers")) == (1, 1)


@pytest.mark.parametrize("exchange", EXCHANGES)
async def test_the_order_book_lies_around_the_ticker(
    sim: ExchangeSim, clock: int, exchange: str
) -> None:
    sim.set_ticker(exchange, SPOT_IDS[exchange], last=60000.0, bid=59999.5, ask=60000.5)
    market = sim.book.find(exchange, SPOT_IDS[exchange], "spot")
    assert market is not None
    depth = BOOK_DEPTH.get(exchange, 5)
    bids, asks = activity.depth(sim.book, market, depth)
    async with ccxt_client(sim, exchange) as client:
        book = await client.fetch_order_book(SPOT, 5)
    assert [level[:2] for level in book["bids"]] == [list(b) for b in bids]
    assert [level[:2] for level in book["asks"]] == [list(a) for a in asks]
    assert (book["bids"][0][0], book["asks"][0][0]) == (59999.5, 60000.5)
    if exchange in ("binance", "coinbaseexchange"):
        assert book["nonce"] == NOW
    assert sim.calls(exchange, "orderbook") == 1


@pytest.mark.parametrize("exchange", EXCHANGES)
async def test_recent_trades_are_the_books_own(sim: ExchangeSim, clock: int, exchange: str) -> None:
    market = sim.book.find(exchange, SPOT_IDS[exchange], "spot")
    assert market is not None
    async with ccxt_client(sim, exchange) as client:
        trades = await client.fetch_trades(SPOT, limit=7)
    expected = activity.trades_until(sim.book, market, None, limit=7)
    assert [int(t["id"].split("-")[-1]) for t in trades] == [t.id for t in expected]
    for got, want in zip(trades, expected, strict=True):
        assert got["timestamp"] == pytest.approx(want.ts, abs=1)  # Kraken: float seconds
        assert (got["side"], got["amount"]) == (want.side, want.amount)
        assert got["price"] == pytest.approx(want.price, abs=1e-5)  # Kraken: five places
    assert trades[-1]["timestamp"] <= NOW
    assert sim.calls(exchange, "trades") == 1


async def test_binance_trades_since_page_forward_within_its_hour(
    sim: ExchangeSim, clock: int
) -> None:
    since = NOW - 30 * MINUTE_MS
    async with ccxt_client(sim, "binance") as client:
        trades = await client.fetch_trades(SPOT, since=since, limit=5)
    market = sim.book.find("binance", "BTCUSDT", "spot")
    assert market is not None
    expected = activity.trades_from(sim.book, market, since, until_ms=None, limit=5)
    assert [t["timestamp"] for t in trades] == [t.ts for t in expected]
    (call,) = [c for c in sim.call_log() if c.endpoint == "trades"]
    assert int(call.params["endTime"]) - int(call.params["startTime"]) == HOUR_MS


@pytest.mark.parametrize("exchange", sorted(PERP_IDS))
async def test_funding_of_the_perpetual(sim: ExchangeSim, clock: int, exchange: str) -> None:
    market = sim.book.find(exchange, PERP_IDS[exchange], "linear")
    assert market is not None
    sim.set_ticker(exchange, market.id, last=60100.0)
    funding = activity.funding(sim.book, market)
    async with ccxt_client(sim, exchange) as client:
        rate = await client.fetch_funding_rate(PERP)
        mark = (await client.fetch_mark_price(PERP))["markPrice"] if exchange == "okx" else None
    assert rate["fundingRate"] == funding.rate
    assert rate["fundingTimestamp"] == funding.next_ms == NOW // DAY_MS * DAY_MS + 16 * HOUR_MS
    if exchange == "okx":  # its funding-rate carries no prices; mark-price does
        assert (rate["markPrice"], mark) == (None, funding.mark)
        assert rate["nextFundingTimestamp"] == funding.next_ms + 8 * HOUR_MS
    else:
        assert (rate["markPrice"], rate["indexPrice"]) == (funding.mark, funding.index)
    # Bybit's fetch_funding_rate sends the very request fetch_ticker sends.
    assert sim.calls(exchange, "ticker" if exchange == "bybit" else "funding") >= 1


@pytest.mark.parametrize("exchange", EXCHANGES)
async def test_candles_latest_and_from_since(sim: ExchangeSim, clock: int, exchange: str) -> None:
    async with ccxt_client(sim, exchange) as client:
        latest = await client.fetch_ohlcv(SPOT, "1h", limit=5)
        aligned = await client.fetch_ohlcv(SPOT, "1h", since=S, limit=5)
        mid = await client.fetch_ohlcv(SPOT, "1h", since=S + 17 * MINUTE_MS, limit=5)
    assert_candles(latest, sim, exchange, hours(H0 - 4 * HOUR_MS, 5), HOURLY)  # open one too
    assert_candles(aligned, sim, exchange, hours(S, 5), HOURLY)
    # ccxt asks Coinbase for since + (limit - 1) candles whatever since's phase, so a since
    # inside a candle gets one candle fewer.
    count = 4 if exchange == "coinbaseexchange" else 5
    assert_candles(mid, sim, exchange, hours(S + HOUR_MS, count), HOURLY)


@pytest.mark.parametrize(
    ("exchange", "count"), [("binance", 10), ("coinbaseexchange", 10), ("bybit", 10), ("okx", 9)]
)
async def test_candles_between_since_and_until(
    sim: ExchangeSim, clock: int, exchange: str, count: int
) -> None:
    """ccxt sends until as OKX's exclusive ``after``: the candle opening at until is out."""
    async with ccxt_client(sim, exchange) as client:
        rows = await client.fetch_ohlcv(SPOT, "1h", since=S, params={"until": S + 9 * HOUR_MS})
    assert_candles(rows, sim, exchange, hours(S, count), HOURLY)


@pytest.mark.parametrize(("exchange", "first"), [("binance", S), ("bybit", S + 7 * HOUR_MS)])
async def test_a_window_wider_than_the_limit(
    sim: ExchangeSim, clock: int, exchange: str, first: int
) -> None:
    """Binance pages forward from startTime; Bybit answers start+end with the newest."""
    async with ccxt_client(sim, exchange) as client:
        rows = await client.fetch_ohlcv(
            SPOT, "1h", since=S, limit=3, params={"until": S + 9 * HOUR_MS}
        )
    assert_candles(rows, sim, exchange, hours(first, 3), HOURLY)


async def test_coinbase_windows(sim: ExchangeSim, clock: int) -> None:
    start = H0 - 1000 * HOUR_MS
    async with ccxt_client(sim, "coinbaseexchange") as client:
        widest = await client.fetch_ohlcv(
            SPOT, "1h", since=start, params={"until": start + 300 * HOUR_MS}
        )
        with pytest.raises(ccxt_errors.ExchangeError, match="exceeds 300"):
            await client.fetch_ohlcv(
                SPOT, "1h", since=start, params={"until": start + 301 * HOUR_MS}
            )
        with pytest.raises(ccxt_errors.ExchangeError, match="Unsupported granularity"):
            await client.publicGetProductsIdCandles({"id": "BTC-USDT", "granularity": 120})
        raw = await client.publicGetProductsIdCandles({"id": "BTC-USDT", "granularity": 3600})
    # Both bounds hold, so 300 granularities span 301 candles: the newest 300 come back.
    assert_candles(widest, sim, "coinbaseexchange", hours(start + HOUR_MS, 300), HOURLY)
    assert (len(raw), raw[0][0], raw[-1][0]) == (300, H0 // 1000, (H0 - 299 * HOUR_MS) // 1000)


async def test_okx_candles_serve_the_latest_1440_and_history_all(
    sim: ExchangeSim, clock: int
) -> None:
    since = NOW // MINUTE_MS * MINUTE_MS - 2000 * MINUTE_MS
    minutes = [since + i * MINUTE_MS for i in range(4)]
    async with ccxt_client(sim, "okx") as client:
        chosen = await client.fetch_ohlcv(SPOT, "1m", since=since, limit=4)
        recent = await client.fetch_ohlcv(
            SPOT, "1m", since=since, limit=4, params={"type": "Candles"}
        )
        raw = await client.publicGetMarketCandles({"instId": "BTC-USDT", "bar": "1H", "limit": 3})
    assert_candles(chosen, sim, "okx", minutes, Frame.fixed(MINUTE_MS))
    assert recent == []
    assert [row[8] for row in raw["data"]] == ["0", "1", "1"]  # the open candle first
    assert [c.path for c in sim.call_log() if c.endpoint == "ohlcv"][:2] == [
        "/api/v5/market/history-candles",
        "/api/v5/market/candles",
    ]


@pytest.mark.parametrize(
    ("exchange", "timeframe", "options", "weekday", "hour"),
    [
        ("binance", "1w", {}, 0, 0),
        ("bybit", "1w", {}, 0, 0),
        ("okx", "1w", {}, 0, 0),
        ("okx", "1w", {"fetchOHLCV": {"timezone": "HK"}}, 6, 16),  # Monday 00:00 in Hong Kong
        ("okx", "1d", {"fetchOHLCV": {"timezone": "HK"}}, None, 16),
        ("bybit", "1M", {}, None, 0),
        ("okx", "1M", {}, None, 0),
    ],
)
async def test_weeks_and_months_follow_the_exchanges_calendar(
    sim: ExchangeSim,
    clock: int,
    exchange: str,
    timeframe: str,
    options: dict[str, Any],
    weekday: int | None,
    hour: int,
) -> None:
    async with ccxt_client(sim, exchange, options=options) as client:
        rows = await client.fetch_ohlcv(SPOT, timeframe, limit=3)
    opened = [datetime.fromtimestamp(row[0] / 1000, UTC) for row in rows]
    assert len(opened) == 3
    assert all(moment.hour == hour and moment.minute == 0 for moment in opened)
    if weekday is not None:
        assert {moment.weekday() for moment in opened} == {weekday}
    if timeframe == "1M":
        assert [(m.month, m.day) for m in opened] == [(8, 1), (9, 1), (10, 1)]
    assert opened[-1].timestamp() * 1000 <= NOW < opened[-1].timestamp() * 1000 + 32 * DAY_MS


async def test_coinbase_has_no_weeks(sim: ExchangeSim, clock: int) -> None:
    async with ccxt_client(sim, "coinbaseexchange") as client:
        assert "1w" not in client.timeframes
        assert set(client.timeframes.values()) == {60, 300, 900, 3600, 21600, 86400}


LISTED = NOW // DAY_MS * DAY_MS - 10 * DAY_MS
# Since five hours before the listing, ten candles asked: those who page forward serve ten
# from the listing, those who answer a window only what of it lies after the listing.
FROM_LISTING = {"binance": 10, "kraken": 10, "coinbaseexchange": 5, "bybit": 10, "okx": 5}


@pytest.mark.parametrize("exchange", EXCHANGES)
async def test_nothing_exists_before_the_listing(
    sim: ExchangeSim, clock: int, exchange: str
) -> None:
    for market_id in {SPOT_IDS[exchange], PERP_IDS.get(exchange, SPOT_IDS[exchange])}:
        sim.set_listing(exchange, market_id, LISTED)
    sim.set_listing(exchange, ETH_IDS[exchange], NOW - MINUTE_MS)
    async with ccxt_client(sim, exchange) as client:
        rows = await client.fetch_ohlcv(SPOT, "1h", since=LISTED - 5 * HOUR_MS, limit=10)
        before = await client.fetch_ohlcv(SPOT, "1h", since=LISTED - 20 * HOUR_MS, limit=10)
        trades = await client.fetch_trades("ETH/USDT")
        created = client.market(PERP)["created"] if exchange in PERP_IDS else LISTED
    assert_candles(rows, sim, exchange, hours(LISTED, FROM_LISTING[exchange]), HOURLY)
    assert before == ([] if FROM_LISTING[exchange] == 5 else rows)
    assert created == LISTED  # onboardDate, launchTime, listTime
    assert len(trades) > 0
    assert min(t["timestamp"] for t in trades) >= NOW - MINUTE_MS


@pytest.mark.parametrize("exchange", EXCHANGES)
async def test_a_history_limit_empties_older_windows(
    sim: ExchangeSim, clock: int, exchange: str
) -> None:
    sim.set_history_limit(exchange, 50)
    oldest = H0 - 49 * HOUR_MS
    async with ccxt_client(sim, exchange) as client:
        recent = await client.fetch_ohlcv(SPOT, "1h", since=H0 - 20 * HOUR_MS, limit=5)
        if exchange == "kraken":  # no window: whatever since asks, the latest 50 come back
            older = await client.fetch_ohlcv(SPOT, "1h", since=S)
        else:
            older = await client.fetch_ohlcv(SPOT, "1h", since=S, params={"until": S + 9 * HOUR_MS})
    assert_candles(recent, sim, exchange, hours(H0 - 20 * HOUR_MS, 5), HOURLY)
    if exchange == "kraken":
        assert_candles(older, sim, exchange, hours(oldest, 50), HOURLY)
    else:
        assert older == []


@pytest.mark.parametrize("exchange", EXCHANGES)
async def test_gaps_are_missing_in_every_format(
    sim: ExchangeSim, clock: int, exchange: str
) -> None:
    gap = (S + 2 * HOUR_MS, S + 5 * HOUR_MS)
    sim.add_gap(exchange, SPOT_IDS[exchange], *gap)
    async with ccxt_client(sim, exchange) as client:
        rows = await client.fetch_ohlcv(SPOT, "1h", since=S, limit=8)
    held = [o for o in hours(S, 20) if not gap[0] <= o < gap[1]]
    # Forward pagers fill the page past the gap; windows keep their span.
    expected = [o for o in held if o < S + 8 * HOUR_MS] if FROM_LISTING[exchange] == 5 else held
    assert_candles(rows, sim, exchange, expected[:8], HOURLY)


def _outcome(result: Any) -> str:
    if isinstance(result, BaseException):
        return type(result).__name__
    usable = [row for row in result if row[4] is not None]
    return "ok" if usable else "nothing"


# What each fault makes ccxt do to fetch_ohlcv. "nothing": no error, and no usable candle
# (bare ccxt reads a body that is not JSON as no body; the proxy's own client refuses it).
COMMON = {
    "timeout": "RequestTimeout",
    "reset": "ExchangeNotAvailable",
    "502": "ExchangeNotAvailable",
    "html_maintenance": "ExchangeNotAvailable",
    "malformed_json": "nothing",
    "html_200": "nothing",
    "empty": "nothing",
    "truncated": "ExchangeError",
    # Bare ccxt raises nothing for numbers it cannot use (it passes them on, or makes
    # nulls of them); the proxy's models refuse them.
    "nonfinite": "no error",
    "negative": "no error",
}
# What ccxt makes of each exchange's "no such market" (Kraken's maps to nothing of its own).
UNKNOWN_MARKET = {
    "binance": "BadSymbol",
    "kraken": "ExchangeError",
    "coinbaseexchange": "OrderNotFound",
    "bybit": "BadSymbol",
    "okx": "BadSymbol",
}
OWN = {
    "binance": ("DDoSProtection", "DDoSProtection", "OperationFailed", "ExchangeNotAvailable"),
    "kraken": ("DDoSProtection", "DDoSProtection", "ExchangeNotAvailable", "ExchangeNotAvailable"),
    "coinbaseexchange": (
        "RateLimitExceeded",
        "ExchangeNotAvailable",
        "ExchangeNotAvailable",
        "ExchangeNotAvailable",
    ),
    "bybit": ("RateLimitExceeded", "RateLimitExceeded", "ExchangeError", "ExchangeNotAvailable"),
    "okx": ("RateLimitExceeded", "ExchangeNotAvailable", "ExchangeNotAvailable", "OnMaintenance"),
}
BANNED = {
    "binance": "banned",
    "kraken": "lockout",
    "coinbaseexchange": "you have been blocked",
    "bybit": "access too frequent",
    "okx": "Access Denied",
}


@pytest.mark.parametrize("exchange", EXCHANGES)
async def test_each_fault_raises_what_the_real_answer_raises(
    sim: ExchangeSim, clock: int, exchange: str
) -> None:
    expected = {
        **COMMON,
        **dict(zip(("429", "418", "500", "503"), OWN[exchange], strict=True)),
        "unknown_market": UNKNOWN_MARKET[exchange],
    }
    seen: dict[str, str] = {}
    ban = ""
    async with ccxt_client(sim, exchange, timeout=150) as client:
        for kind in (kind for kind in KINDS if kind != "huge"):  # huge: the gateway's test
            sim.inject(exchange, kind, endpoint="ohlcv", times=2, retry_after=7, delay_s=0.4)
            try:
                result: Any = await client.fetch_ohlcv(SPOT, "1h", limit=2)
            except ccxt_errors.BaseError as exc:
                result = exc
                ban = str(exc) if kind == "418" else ban
            seen[kind] = _outcome(result)
            if kind in ALTERED and not isinstance(result, BaseException):
                seen[kind] = "no error"
            sim.clear_faults()
    assert seen == {kind: expected[kind] for kind in seen}
    assert set(seen) == set(expected)
    assert BANNED[exchange] in ban
