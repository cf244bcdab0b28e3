"""Bybit's v5 public market data (api.bybit.com), in its wire format.

Followed: Bybit V5 API, Market (bybit-exchange.github.io/docs/v5/market/...): "Get
Instruments Info" (``instruments-info``; perpetuals carry ``launchTime`` and
``fundingInterval`` in minutes), "Get Tickers" (``tickers``: one symbol, or every symbol of a
category; perpetuals carry ``fundingRate``, ``nextFundingTime``, ``markPrice``,
``indexPrice``), "Get Kline" (``kline``), "Get Orderbook" (``orderbook``: spot ``limit`` 1 to
200, default 1; linear 1 to 500, default 25), "Get Public Recent Trading History"
(``recent-trade``: spot ``limit`` 1 to 60, default 60; linear 1 to 1000, default 500; newest
first) and "Get Bybit Server Time" (``/v5/market/time``). Every answer is wrapped in
``{"retCode", "retMsg", "result", "retExtInfo", "time"}``; numbers are strings.

Kline: ``interval`` 1, 3, 5, 15, 30, 60, 120, 240, 360, 720 (minutes, on multiples since the
epoch), D, W (weeks open on Monday 00:00 UTC) or M (months on the 1st); ``limit`` 1 to 1000,
default 200. Both bounds hold: the candle holding ``start`` counts, and so does the one
opening at ``end`` (the docs' example asks start=00:00, end=02:00 of hourly candles and gets
02:00, 01:00, 00:00). With ``start`` and ``end``, the NEWEST ``limit`` candles of the window
(the mark-price page's example asks that window with limit=1 and gets 02:00); with ``end``
alone or no bound, the newest ``limit`` up to ``end`` or now; with ``start`` alone, the
OLDEST ``limit`` from the candle holding ``start`` (ccxt/ccxt#26736 and its fix #29402: a
limit=1 request from mid-candle gets that candle back; pybit#186: start=9999&limit=1 gets the
first candle ever). Always newest first; the open candle is included.
"""

from __future__ import annotations

from typing import Any

from infra.exchange_sim import activity
from infra.exchange_sim.frames import DAY_MS, MINUTE_MS, Frame
from infra.exchange_sim.market_data import Market, MarketBook
from infra.exchange_sim.routing import decimal

INTERVALS: dict[str, Frame] = {
    **{str(m): Frame.fixed(m * MINUTE_MS) for m in (1, 3, 5, 15, 30, 60, 120, 240, 360, 720)},
    "D": Frame.fixed(DAY_MS),
    "W": Frame.weeks(),
    "M": Frame.calendar_months(),
}
CATEGORIES = {"spot": "spot", "linear": "linear", "inverse": "inverse", "option": "option"}
DEFAULT_LAUNCH_MS = 1_585_526_400_000


def envelope(book: MarketBook, result: Any) -> dict[str, Any]:
    return {"retCode": 0, "retMsg": "OK", "result": result, "retExtInfo": {}, "time": book.now_ms()}


def error(now_ms: int, code: int, message: str) -> dict[str, Any]:
    return {"retCode": code, "retMsg": message, "result": {}, "retExtInfo": {}, "time": now_ms}


def _spot_instrument(market: Market) -> dict[str, Any]:
    return {
        "symbol": market.id,
        "baseCoin": market.base,
        "quoteCoin": market.quote,
        "innovation": "0",
        "status": "Trading",
        "marginTrading": "utaOnly",
        "stTag": "0",
        "lotSizeFilter": {
            "basePrecision": "0.000001",
            "quotePrecision": "0.00000001",
            "minOrderQty": "0.000048",
            "maxOrderQty": "71.73956243",
            "minOrderAmt": "1",
            "maxOrderAmt": "2000000",
        },
        "priceFilter": {"tickSize": "0.01"},
        "riskParameters": {"priceLimitRatioX": "0.01", "priceLimitRatioY": "0.02"},
    }


def _linear_instrument(book: MarketBook, market: Market) -> dict[str, Any]:
    listed = book.listed_ms(market)
    return {
        "symbol": market.id,
        "contractType": "LinearPerpetual",
        "status": "Trading",
        "baseCoin": market.base,
        "quoteCoin": market.quote,
        "launchTime": str(listed if listed is not None else DEFAULT_LAUNCH_MS),
        "deliveryTime": "0",
        "deliveryFeeRate": "",
        "priceScale": "2",
        "leverageFilter": {"minLeverage": "1", "maxLeverage": "100.00", "leverageStep": "0.01"},
        "priceFilter": {"minPrice": "0.10", "maxPrice": "1999999.80", "tickSize": "0.10"},
        "lotSizeFilter": {
            "maxOrderQty": "1190.000",
            "minOrderQty": "0.001",
            "qtyStep": "0.001",
            "postOnlyMaxOrderQty": "1190.000",
            "maxMktOrderQty": "500.000",
            "minNotionalValue": "5",
        },
        "unifiedMarginTrade": True,
        "fundingInterval": activity.FUNDING_EVERY_MS // MINUTE_MS,
        "settleCoin": market.quote,
        "copyTrading": "both",
        "upperFundingRate": "0.00375",
        "lowerFundingRate": "-0.00375",
        "isPreListing": False,
        "preListingInfo": None,
    }


def instruments(book: MarketBook, category: str, status: str | None) -> dict[str, Any]:
    """Every instrument of ``category`` (none are pre-launch, inverse or options here)."""
    markets = [] if status == "PreLaunch" else book.of_kind("bybit", category)
    listing = [
        _spot_instrument(m) if category == "spot" else _linear_instrument(book, m) for m in markets
    ]
    return envelope(book, {"category": category, "list": listing, "nextPageCursor": ""})


def _ticker(book: MarketBook, market: Market) -> dict[str, Any]:
    values = book.ticker(market).as_dict()
    ticker = {
        "symbol": market.id,
        "bid1Price": decimal(values["bid"]),
        "bid1Size": "1.5",
        "ask1Price": decimal(values["ask"]),
        "ask1Size": "1.2",
        "lastPrice": decimal(values["last"]),
        "prevPrice24h": decimal(values["open"]),
        "price24hPcnt": decimal(values["percentage"] / 100, 4),
        "highPrice24h": decimal(values["high"]),
        "lowPrice24h": decimal(values["low"]),
        "turnover24h": decimal(values["quote_volume"], 4),
        "volume24h": decimal(values["base_volume"], 4),
    }
    if market.kind == "spot":
        ticker["usdIndexPrice"] = decimal(values["last"])
        return ticker
    funding = activity.funding(book, market)
    ticker.update(
        {
            "indexPrice": decimal(funding.index),
            "markPrice": decimal(funding.mark),
            "prevPrice1h": decimal(values["last"]),
            "openInterest": "52000.123",
            "openInterestValue": decimal(52000.123 * funding.mark, 2),
            "fundingRate": decimal(funding.rate),
            "nextFundingTime": str(funding.next_ms),
            "fundingIntervalHour": str(funding.interval_ms // 3_600_000),
            "fundingCap": "0.005",
            "predictedDeliveryPrice": "",
            "basisRate": "",
            "deliveryFeeRate": "",
            "deliveryTime": "0",
            "basis": "",
            "preOpenPrice": "",
            "preQty": "",
            "curPreListingPhase": "",
        }
    )
    return ticker


def tickers(book: MarketBook, category: str, markets: list[Market]) -> dict[str, Any]:
    return envelope(book, {"category": category, "list": [_ticker(book, m) for m in markets]})


def kline(
    book: MarketBook,
    market: Market,
    category: str,
    interval: str,
    *,
    start: int | None,
    end: int | None,
    limit: int,
) -> dict[str, Any]:
    frame = INTERVALS[interval]
    low = frame.floor(start) if start is not None else 0
    stop = (end if end is not None else book.now_ms()) + 1
    # With a start and no end, the page runs forward from the candle holding start.
    newest = start is None or end is not None
    rows = []
    for open_ms in reversed(book.served(market, frame, low, stop, limit=limit, newest=newest)):
        first, high, low_price, close, volume = book.candle(market, frame.length(open_ms), open_ms)
        rows.append(
            [
                str(open_ms),
                decimal(first),
                decimal(high),
                decimal(low_price),
                decimal(close),
                decimal(volume),
                decimal(volume * close),
            ]
        )
    return envelope(book, {"category": category, "symbol": market.id, "list": rows})


def orderbook(book: MarketBook, market: Market, limit: int) -> dict[str, Any]:
    bids, asks = activity.depth(book, market, limit)
    now = book.now_ms()
    return envelope(
        book,
        {
            "s": market.id,
            "b": [[decimal(p), decimal(s)] for p, s in bids],
            "a": [[decimal(p), decimal(s)] for p, s in asks],
            "ts": now,
            "u": now // 100,
            "seq": now // 10,
            "cts": now - 3,
        },
    )


def recent_trades(book: MarketBook, market: Market, category: str, limit: int) -> dict[str, Any]:
    found = activity.trades_until(book, market, None, limit=limit)
    rows = [
        {
            "execId": f"{market.id}-{t.id}",
            "symbol": market.id,
            "price": decimal(t.price),
            "size": decimal(t.amount, 6),
            "side": "Buy" if t.side == "buy" else "Sell",
            "time": str(t.ts),
            "isBlockTrade": False,
            "isRPITrade": False,
            "seq": str(t.id),
        }
        for t in reversed(found)
    ]
    return envelope(book, {"category": category, "list": rows})


def server_time(book: MarketBook) -> dict[str, Any]:
    now = book.now_ms()
    return envelope(book, {"timeSecond": str(now // 1000), "timeNano": str(now * 1_000_000)})
